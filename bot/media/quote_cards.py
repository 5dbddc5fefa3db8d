"""The quote card: a product's price for one customer, valid until a date, with the partner's contact and a
QR code of their tracked link to the product. Drawn like the profile card, in a worker thread."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from PIL import Image, ImageDraw

from bot.media.cards import fit_line, png_bytes, qr_image
from bot.media.fonts import font

WIDTH, HEIGHT = 720, 1080
BACKGROUND = (247, 244, 238)
ACCENT = (32, 84, 147)
INK = (33, 33, 33)
MUTED = (110, 110, 110)
MARGIN = 48


@dataclass(frozen=True, slots=True)
class QuoteCardData:
    title: str
    """"Quote for Alice"."""
    product: str
    sku: str
    rows: tuple[tuple[str, str], ...]
    """(label, value): quantity, unit price, total, valid until."""
    partner: str
    """The partner's name and contact."""
    link: str
    scan_label: str


def render_quote_card(card: QuoteCardData) -> bytes:
    """Draw the card as PNG bytes. Blocking: call `render_quote_card_async` from the event loop."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    inner = WIDTH - 2 * MARGIN
    draw.rectangle((0, 0, WIDTH, 150), fill=ACCENT)
    draw.text((MARGIN, 45), fit_line(draw, card.title, font(48), inner), font=font(48), fill="white")
    draw.text((MARGIN, 200), fit_line(draw, card.product, font(40), inner), font=font(40), fill=INK)
    draw.text((MARGIN, 252), fit_line(draw, card.sku, font(26), inner), font=font(26), fill=MUTED)
    y = 310
    for label, value in card.rows:
        draw.text((MARGIN, y), fit_line(draw, label, font(28), inner // 2), font=font(28), fill=MUTED)
        shown = fit_line(draw, value, font(32), inner // 2)
        draw.text((WIDTH - MARGIN - draw.textlength(shown, font=font(32)), y - 2), shown, font=font(32), fill=INK)
        y += 52
    draw.line((MARGIN, y + 4, WIDTH - MARGIN, y + 4), fill=(210, 205, 195), width=2)
    draw.text((MARGIN, y + 20), fit_line(draw, card.partner, font(28), inner), font=font(28), fill=INK)
    qr_size = 300
    qr_top = HEIGHT - qr_size - 110
    image.paste(qr_image(card.link, qr_size), ((WIDTH - qr_size) // 2, qr_top))
    scan = fit_line(draw, card.scan_label, font(26), inner)
    draw.text(
        ((WIDTH - draw.textlength(scan, font=font(26))) / 2, qr_top + qr_size + 20), scan, font=font(26), fill=ACCENT
    )
    link = fit_line(draw, card.link, font(22), inner)
    draw.text(
        ((WIDTH - draw.textlength(link, font=font(22))) / 2, qr_top + qr_size + 58), link, font=font(22), fill=MUTED
    )
    return png_bytes(image)


async def render_quote_card_async(card: QuoteCardData) -> bytes:
    """Render in a worker thread so the event loop keeps serving other partners."""
    return await asyncio.to_thread(render_quote_card, card)
