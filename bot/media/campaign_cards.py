"""Shareable cards of a partner's coupon code and of an event invitation, with a QR code.

Labels come in already translated; rendering is blocking Pillow work, so the `*_async` helpers run it in a
worker thread like the poster and profile card renderers do.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from PIL import Image, ImageDraw

from bot.media.cards import fit_line, png_bytes, qr_image
from bot.media.fonts import font

WIDTH, HEIGHT = 720, 1080
BACKGROUND = (250, 246, 240)
ACCENT = (196, 60, 45)
EVENT_ACCENT = (38, 84, 124)
INK = (33, 33, 33)
MUTED = (110, 110, 110)
QR_SIZE = 400


@dataclass(frozen=True, slots=True)
class CouponCardData:
    campaign: str
    discount: str
    """The discount as shown: `10% off`, `¥20.00 off`."""
    code_label: str
    code: str
    validity: str
    """`Valid until 2026-12-31 23:59` in the partner's language and time zone."""
    partner: str
    scan_label: str
    qr_data: str


@dataclass(frozen=True, slots=True)
class InvitationCardData:
    heading: str
    """`Dear Alice, you are invited`."""
    title: str
    when: str
    where: str
    partner: str
    scan_label: str
    url: str


def _centered(draw: ImageDraw.ImageDraw, y: int, text: str, size: int, fill: tuple[int, int, int]) -> None:
    face = font(size)
    text = fit_line(draw, text, face, WIDTH - 64)
    draw.text(((WIDTH - draw.textlength(text, font=face)) / 2, y), text, font=face, fill=fill)


def render_coupon_card(card: CouponCardData) -> bytes:
    """Draw the coupon card as PNG bytes. Blocking: use `render_coupon_card_async` from the event loop."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, 170), fill=ACCENT)
    _centered(draw, 50, card.campaign, 52, (255, 255, 255))
    _centered(draw, 210, card.discount, 72, ACCENT)
    _centered(draw, 320, card.code_label, 28, MUTED)
    draw.rounded_rectangle((80, 360, WIDTH - 80, 450), radius=16, outline=INK, width=3)
    _centered(draw, 378, card.code, 52, INK)
    _centered(draw, 480, card.validity, 28, MUTED)
    image.paste(qr_image(card.qr_data, QR_SIZE), ((WIDTH - QR_SIZE) // 2, 540))
    _centered(draw, 960, card.scan_label, 28, ACCENT)
    _centered(draw, 1010, card.partner, 26, MUTED)
    return png_bytes(image)


def render_invitation_card(card: InvitationCardData) -> bytes:
    """Draw the invitation card as PNG bytes. Blocking: use `render_invitation_card_async`."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, 170), fill=EVENT_ACCENT)
    _centered(draw, 60, card.heading, 40, (255, 255, 255))
    _centered(draw, 220, card.title, 50, INK)
    _centered(draw, 310, card.when, 34, EVENT_ACCENT)
    _centered(draw, 370, card.where, 28, MUTED)
    image.paste(qr_image(card.url, QR_SIZE), ((WIDTH - QR_SIZE) // 2, 450))
    _centered(draw, 880, card.scan_label, 28, EVENT_ACCENT)
    _centered(draw, 930, card.url, 22, MUTED)
    _centered(draw, 1000, card.partner, 26, MUTED)
    return png_bytes(image)


async def render_coupon_card_async(card: CouponCardData) -> bytes:
    return await asyncio.to_thread(render_coupon_card, card)


async def render_invitation_card_async(card: InvitationCardData) -> bytes:
    return await asyncio.to_thread(render_invitation_card, card)
