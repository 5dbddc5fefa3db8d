"""Coupons and events: /campaign and /event (admins), /coupon and /invite (partners).

Admins create with one line (`/campaign add …`, `/event add …`; the usage texts show the syntax) and list with
buttons: [Deactivate]/[Activate] a campaign, [Cancel] an event. Partners take a personal code of an open
campaign in /coupon (a card with its QR code) and invite a lead to an event with /invite (a card with the RSVP
link). Everything lives in the database; no FSM state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks import CampaignCallback, CouponCallback, ProgramEventCallback
from bot.domain.errors import UsageError
from bot.domain.roles import Role
from bot.i18n import Texts
from bot.media.campaign_cards import (
    CouponCardData,
    InvitationCardData,
    render_coupon_card_async,
    render_invitation_card_async,
)
from bot.services.campaigns import (
    CampaignLine,
    CampaignList,
    CouponCode,
    CouponOverview,
    EventLine,
    EventList,
    InvitationView,
    IssuedCoupon,
)
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.filters import HasRole

# -- rendering -------------------------------------------------------------------------------------------------


def _time(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _until(line: CampaignLine, zone: ZoneInfo) -> str:
    """The last minute a code works (validity ends at the start of `valid_until`)."""
    return _time(line.valid_until - timedelta(seconds=1), zone)


def _discount(line: CampaignLine, t: Texts) -> str:
    return t("campaigns.discount", value=line.discount.label(t.language))


def _uses(line: CampaignLine, t: Texts) -> str:
    return t("campaigns.unlimited") if line.max_uses is None else str(line.max_uses)


def _levels(line: CampaignLine, t: Texts) -> str:
    return ", ".join(line.levels) if line.levels else t("campaigns.all_levels")


def campaign_list_text(listing: CampaignList, t: Texts) -> str:
    if not listing.items:
        return t("campaigns.campaign.empty")
    lines = [t("campaigns.campaign.list_title", count=len(listing.items))]
    for item in listing.items:
        lines.append(
            t(
                "campaigns.campaign.item",
                id=item.id,
                name=item.name,
                discount=_discount(item, t),
                until=_until(item, listing.zone),
                uses=_uses(item, t),
                levels=_levels(item, t),
                status=t(f"campaigns.campaign.status.{'active' if item.active else 'inactive'}"),
                issued=item.issued,
                redeemed=item.redeemed,
            )
        )
    return "\n".join(lines)


def campaign_list_keyboard(listing: CampaignList, t: Texts) -> InlineKeyboardMarkup | None:
    rows = []
    for item in listing.items:
        action = "deactivate" if item.active else "activate"
        data = CampaignCallback(action=action, id=item.id).pack()
        rows.append(
            [InlineKeyboardButton(text=t(f"campaigns.campaign.button.{action}", id=item.id), callback_data=data)]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def coupon_text(overview: CouponOverview, t: Texts) -> str:
    lines: list[str] = []
    if overview.codes:
        lines.append(t("campaigns.coupon.codes_title"))
        lines += [_code_line(code, overview.zone, t) for code in overview.codes]
    if overview.offers:
        lines.append(t("campaigns.coupon.offers_title"))
        lines += [
            t(
                "campaigns.coupon.offer",
                name=offer.name,
                discount=_discount(offer, t),
                until=_until(offer, overview.zone),
                uses=_uses(offer, t),
            )
            for offer in overview.offers
        ]
    elif overview.ineligible:
        lines.append(t("campaigns.coupon.not_for_level", level=overview.level))
    elif not overview.codes:
        lines.append(t("campaigns.coupon.empty"))
    return "\n".join(lines)


def _code_line(code: CouponCode, zone: ZoneInfo, t: Texts) -> str:
    if code.campaign is None:
        return t("campaigns.coupon.code_plain", code=code.code, used=code.redemptions)
    key = "campaigns.coupon.code_line" if code.usable else "campaigns.coupon.code_closed"
    return t(
        key,
        code=code.code,
        name=code.campaign.name,
        discount=_discount(code.campaign, t),
        until=_until(code.campaign, zone),
        used=code.redemptions,
        uses=_uses(code.campaign, t),
    )


def coupon_keyboard(overview: CouponOverview, t: Texts) -> InlineKeyboardMarkup | None:
    rows = [
        [
            InlineKeyboardButton(
                text=t("campaigns.coupon.button.take", name=offer.name),
                callback_data=CouponCallback(action="take", id=offer.id).pack(),
            )
        ]
        for offer in overview.offers
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def coupon_card(issued: IssuedCoupon, t: Texts) -> CouponCardData:
    code, campaign = issued.coupon, issued.coupon.campaign
    assert campaign is not None
    return CouponCardData(
        campaign=campaign.name,
        discount=t("campaigns.card.discount", value=campaign.discount.label(t.language)),
        code_label=t("campaigns.card.code"),
        code=code.code,
        validity=t("campaigns.card.valid_until", until=_until(campaign, issued.zone)),
        partner=issued.partner_name,
        scan_label=t("campaigns.card.scan_code"),
        qr_data=code.code,
    )


def coupon_caption(issued: IssuedCoupon, t: Texts) -> str:
    campaign = issued.coupon.campaign
    assert campaign is not None
    return t(
        "campaigns.coupon.issued" if issued.created else "campaigns.coupon.again",
        code=issued.coupon.code,
        name=campaign.name,
        discount=_discount(campaign, t),
        until=_until(campaign, issued.zone),
        used=issued.coupon.redemptions,
        uses=_uses(campaign, t),
    )


def _where(event: EventLine, t: Texts) -> str:
    return event.place or event.online_url or ""


def event_list_text(listing: EventList, t: Texts) -> str:
    if not listing.items:
        return t("campaigns.event.empty")
    lines = [t("campaigns.event.list_title", count=len(listing.items))]
    for item in listing.items:
        capacity = t("campaigns.unlimited") if item.capacity is None else str(item.capacity)
        key = "campaigns.event.item" if item.status == "active" else "campaigns.event.item_cancelled"
        lines.append(
            t(
                key,
                id=item.id,
                title=item.title,
                time=_time(item.starts_at, listing.zone),
                where=_where(item, t),
                capacity=capacity,
                invited=item.invitations,
                yes=item.yes,
                no=item.no,
                slug=item.slug,
            )
        )
    return "\n".join(lines)


def event_list_keyboard(listing: EventList, t: Texts) -> InlineKeyboardMarkup | None:
    rows = [
        [
            InlineKeyboardButton(
                text=t("campaigns.event.button.cancel", id=item.id),
                callback_data=ProgramEventCallback(action="cancel", id=item.id).pack(),
            )
        ]
        for item in listing.items
        if item.status == "active"
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def upcoming_text(listing: EventList, t: Texts) -> str:
    if not listing.items:
        return t("campaigns.invite.none")
    lines = [t("campaigns.invite.list_title")]
    lines += [
        t(
            "campaigns.invite.item",
            id=item.id,
            title=item.title,
            time=_time(item.starts_at, listing.zone),
            where=_where(item, t),
        )
        for item in listing.items
    ]
    lines.append(t("campaigns.invite.usage"))
    return "\n".join(lines)


def invitation_card(view: InvitationView, t: Texts) -> InvitationCardData:
    return InvitationCardData(
        heading=t("campaigns.card.invited", name=view.lead_name),
        title=view.event.title,
        when=_time(view.event.starts_at, view.zone),
        where=_where(view.event, t),
        partner=t("campaigns.card.from", name=view.partner_name),
        scan_label=t("campaigns.card.scan_rsvp"),
        url=view.url,
    )


def invitation_caption(view: InvitationView, t: Texts) -> str:
    return t(
        "campaigns.invite.created" if view.created else "campaigns.invite.again",
        lead=view.lead_name,
        title=view.event.title,
        time=_time(view.event.starts_at, view.zone),
        where=_where(view.event, t),
        url=view.url,
    )


# -- partners --------------------------------------------------------------------------------------------------


async def coupon_command(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    overview = await uc.campaigns.coupon_overview(partner.id)
    await message.answer(coupon_text(overview, t), reply_markup=coupon_keyboard(overview, t))


async def take_press(
    callback: CallbackQuery, callback_data: CouponCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    issued = await uc.campaigns.take_coupon(partner.id, callback_data.id)
    await callback.answer()
    png = await render_coupon_card_async(coupon_card(issued, t))
    if callback.bot is not None:
        photo = BufferedInputFile(png, f"coupon-{issued.coupon.code}.png")
        await callback.bot.send_photo(callback.from_user.id, photo, caption=coupon_caption(issued, t))


async def invite_command(
    message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    if not (command.args or "").strip():
        listing = await uc.campaigns.upcoming(partner.id)
        await message.answer(upcoming_text(listing, t))
        return
    view = await uc.campaigns.invite(partner.id, command.args)
    png = await render_invitation_card_async(invitation_card(view, t))
    photo = BufferedInputFile(png, f"invitation-{view.slug}.png")
    await message.answer_photo(photo, caption=invitation_caption(view, t))


# -- admins ----------------------------------------------------------------------------------------------------


async def campaign_command(
    message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    sub, _, rest = (command.args or "").strip().partition(" ")
    if sub.lower() == "add":
        added = await uc.campaigns.add_campaign(partner, rest)
        line, zone = added.campaign, added.zone
        text = t(
            "campaigns.campaign.added",
            id=line.id,
            name=line.name,
            discount=_discount(line, t),
            until=_until(line, zone),
            uses=_uses(line, t),
            levels=_levels(line, t),
        )
        await message.answer(text)
        return
    if sub:
        raise UsageError("campaigns.campaign.usage")
    listing = await uc.campaigns.campaigns(partner)
    await message.answer(campaign_list_text(listing, t), reply_markup=campaign_list_keyboard(listing, t))


async def campaign_press(
    callback: CallbackQuery, callback_data: CampaignCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    active = callback_data.action == "activate"
    decision = await uc.campaigns.set_campaign_active(partner, callback_data.id, active)
    state = "active" if active else "inactive"
    key = f"campaigns.campaign.{'done' if decision.changed else 'noop'}_{state}"
    await callback.answer(t(key, name=decision.campaign.name))
    if isinstance(callback.message, Message):
        listing = await uc.campaigns.campaigns(partner)
        await callback.message.edit_text(
            campaign_list_text(listing, t), reply_markup=campaign_list_keyboard(listing, t)
        )


async def event_command(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    sub, _, rest = (command.args or "").strip().partition(" ")
    if sub.lower() == "add":
        added = await uc.campaigns.add_event(partner, rest)
        line, zone = added.event, added.zone
        capacity = t("campaigns.unlimited") if line.capacity is None else str(line.capacity)
        text = t(
            "campaigns.event.added",
            id=line.id,
            title=line.title,
            time=_time(line.starts_at, zone),
            where=_where(line, t),
            capacity=capacity,
            slug=line.slug,
        )
        await message.answer(text)
        return
    if sub:
        raise UsageError("campaigns.event.usage")
    listing = await uc.campaigns.events(partner)
    await message.answer(event_list_text(listing, t), reply_markup=event_list_keyboard(listing, t))


async def event_press(
    callback: CallbackQuery, callback_data: ProgramEventCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    decision = await uc.campaigns.cancel_event(partner, callback_data.id)
    key = "campaigns.event.cancelled" if decision.changed else "campaigns.event.noop"
    await callback.answer(t(key, title=decision.event.title))
    if isinstance(callback.message, Message):
        listing = await uc.campaigns.events(partner)
        await callback.message.edit_text(event_list_text(listing, t), reply_markup=event_list_keyboard(listing, t))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only).

    /coupon and /invite are for everyone. The admin part is filtered by role: for anyone else /campaign and
    /event fall through to `denied`, which refuses them and audits the try; their button presses count as
    expired. The services check the role again.
    """
    router = Router(name=__name__)
    router.message.register(coupon_command, Command("coupon"))
    router.message.register(invite_command, Command("invite"))
    router.callback_query.register(take_press, CouponCallback.filter(F.action == "take"))

    admin = Router(name=f"{__name__}.admin")
    admin.message.filter(HasRole(Role.ADMIN))
    admin.callback_query.filter(HasRole(Role.ADMIN))
    admin.message.register(campaign_command, Command("campaign"))
    admin.message.register(event_command, Command("event"))
    admin.callback_query.register(campaign_press, CampaignCallback.filter(F.action.in_({"activate", "deactivate"})))
    admin.callback_query.register(event_press, ProgramEventCallback.filter(F.action == "cancel"))
    router.include_router(admin)
    return router
