"""The partner's profile card: name, role, invite code, team size and a QR code of the recruit link."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import qrcode
from PIL import Image, ImageDraw

from bot.media.fonts import Font, drawable, font

WIDTH, HEIGHT = 720, 1080
BACKGROUND = (247, 244, 238)
ACCENT = (196, 60, 45)
INK = (33, 33, 33)
MUTED = (110, 110, 110)


@dataclass(frozen=True, slots=True)
class CardData:
    name: str
    role_label: str
    code_label: str
    code: str
    team_label: str
    team: str
    scan_label: str
    deep_link: str


def qr_image(data: str, size: int) -> Image.Image:
    """A black-on-white QR code of `data`, `size` pixels square (profile, quote, coupon and invitation cards)."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=2)
    qr.add_data(data)
    qr.make(fit=True)
    image: Image.Image = qr.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    return image.resize((size, size), Image.Resampling.NEAREST)


def fit_line(draw: ImageDraw.ImageDraw, text: str, face: Font, width: int) -> str:
    """`text` without characters `face` cannot draw, cut with an ellipsis to fit `width` pixels."""
    text = drawable(text, face)
    if draw.textlength(text, font=face) <= width:
        return text
    while text and draw.textlength(text + "…", font=face) > width:
        text = text[:-1]
    return text + "…"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_profile_card(card: CardData) -> bytes:
    """Draw the card as PNG bytes. Blocking: call `render_profile_card_async` from the event loop."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, 180), fill=ACCENT)
    draw.text((48, 50), _fit(card.name, 18), font=font(56), fill="white")
    draw.text((48, 128), card.role_label, font=font(30), fill=(255, 228, 220))
    draw.text((48, 230), card.code_label, font=font(28), fill=MUTED)
    draw.text((48, 268), card.code, font=font(64), fill=INK)
    draw.text((48, 370), card.team_label, font=font(28), fill=MUTED)
    draw.text((48, 408), _fit(card.team, 30), font=font(36), fill=INK)
    qr_size = 440
    image.paste(qr_image(card.deep_link, qr_size), ((WIDTH - qr_size) // 2, 500))
    scan = card.scan_label
    scan_width = draw.textlength(scan, font=font(32))
    draw.text(((WIDTH - scan_width) / 2, 965), scan, font=font(32), fill=ACCENT)
    return png_bytes(image)


async def render_profile_card_async(card: CardData) -> bytes:
    """Render in a worker thread so the event loop keeps serving other partners."""
    return await asyncio.to_thread(render_profile_card, card)
