"""Tier 2: coupon campaigns (/campaign for admins), personal codes (/coupon) and their redemption rules."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.callbacks import CampaignCallback, CouponCallback
from bot.domain.events import EventType
from storage.models import AuditEntry, Coupon, CouponCampaign, CouponRedemption, Event, Order, Partner
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, START, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
BOB = tg_user(102, "Bob", lang="en")
CAROL = tg_user(103, "Carol", lang="zh")
_orders = itertools.count(1)


# -- helpers ---------------------------------------------------------------------------------------------------


async def partner(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def rows(h: BotHarness, model: Any) -> list[Any]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(model).order_by(model.created_at))).scalars().all())


async def reply(h: BotHarness, user: Any, text: str) -> list[str]:
    h.session.clear()
    await h.send(user, text)
    return h.session.texts(user.id)


async def audit(h: BotHarness) -> list[tuple[str, str | None, str]]:
    async with h.sessionmaker() as s:
        found = (await s.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
        return [(r.action, r.target, r.outcome) for r in found]


async def events_of(h: BotHarness, type_: str) -> list[Event]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(Event).where(Event.type == type_).order_by(Event.id))).scalars())


async def set_level(h: BotHarness, tg_id: int, level: str) -> None:
    async with UnitOfWork(h.sessionmaker) as uow:
        row = await uow.partners.by_tg_id(tg_id)
        assert row is not None
        row.level = level


async def start(h: BotHarness) -> None:
    await h.send(ADMIN, "/start")
    await h.send(BOB, "/start")
    await h.send(CAROL, "/start")
    h.session.clear()


async def only_campaign(h: BotHarness) -> CouponCampaign:
    [row] = await rows(h, CouponCampaign)
    campaign: CouponCampaign = row
    return campaign


async def order(h: BotHarness) -> int:
    """A bare order row for redemptions to point at."""
    async with UnitOfWork(h.sessionmaker) as uow:
        row = Order(
            source="api",
            external_id=f"o-{next(_orders)}",
            fingerprint="x",
            customer_id="c",
            attribution="coupon",
            currency="CNY",
            amount_minor=10000,
            items=[],
            paid_at=START,
            status="settled",
            created_at=START,
        )
        uow.session.add(row)
        await uow.flush()
        return row.id


async def issue(h: BotHarness, user: Any, campaign_id: int) -> str:
    h.session.clear()
    await h.press(user, CouponCallback(action="take", id=campaign_id).pack())
    async with h.sessionmaker() as s:
        me = await partner(h, user.id)
        found = (
            await s.execute(select(Coupon).where(Coupon.campaign_id == campaign_id, Coupon.partner_id == me.id))
        ).scalar_one()
        return found.code


# -- admins ----------------------------------------------------------------------------------------------------


async def test_admin_creates_lists_deactivates_and_activates_a_campaign(harness: BotHarness) -> None:
    h = harness
    await start(h)
    [text] = await reply(h, ADMIN, "/campaign add Spring <sale> | 10% | 2026-12-31 | 5 | silver,gold")
    row = await only_campaign(h)
    assert (row.name, row.discount_kind, row.discount_value, row.currency) == ("Spring <sale>", "percent", 10, None)
    assert (row.max_uses, row.eligible_levels, row.active) == (5, ["silver", "gold"], True)
    assert row.valid_from == START
    assert row.valid_until == datetime.fromisoformat("2026-12-31T16:00:00+00:00")  # through 31 Dec in Shanghai
    assert text == h.t(
        "en",
        "campaigns.campaign.added",
        id=row.id,
        name="Spring <sale>",
        discount="10% off",
        until="2026-12-31 23:59",
        uses="5",
        levels="silver, gold",
    )
    assert "Spring &lt;sale&gt;" in text

    [text] = await reply(h, ADMIN, "/campaign add Tea | 20 | 30d")
    tea = (await rows(h, CouponCampaign))[-1]
    assert (tea.discount_kind, tea.discount_value, tea.currency, tea.max_uses, tea.eligible_levels) == (
        "amount",
        2000,
        "CNY",
        None,
        [],
    )
    assert "¥20.00 off" in text and "no limit" in text and "all levels" in text

    h.session.clear()
    await h.send(ADMIN, "/campaign")
    [listing] = h.session.of("sendMessage", ADMIN_ID)
    assert listing.text.split("\n")[0] == h.t("en", "campaigns.campaign.list_title", count=2)
    assert f"#{row.id} Spring &lt;sale&gt;" in listing.text
    assert [b["callback_data"] for b in listing.buttons()] == [
        CampaignCallback(action="deactivate", id=tea.id).pack(),
        CampaignCallback(action="deactivate", id=row.id).pack(),
    ]

    h.session.clear()
    await h.press(ADMIN, CampaignCallback(action="deactivate", id=row.id).pack())
    [answer] = h.session.of("answerCallbackQuery")
    assert answer.params["text"] == h.t("en", "campaigns.campaign.done_inactive", name="Spring <sale>")
    [edited] = h.session.of("editMessageText")
    assert CampaignCallback(action="activate", id=row.id).pack() in [b["callback_data"] for b in edited.buttons()]
    assert (await only_campaign_by_id(h, row.id)).active is False

    h.session.clear()
    await h.press(ADMIN, CampaignCallback(action="deactivate", id=row.id).pack())
    [answer] = h.session.of("answerCallbackQuery")
    assert answer.params["text"] == h.t("en", "campaigns.campaign.noop_inactive", name="Spring <sale>")
    await h.press(ADMIN, CampaignCallback(action="activate", id=row.id).pack())
    assert (await only_campaign_by_id(h, row.id)).active is True

    assert await audit(h) == [
        ("campaign_add", f"campaign:{row.id}", "ok"),
        ("campaign_add", f"campaign:{tea.id}", "ok"),
        ("campaign_deactivate", f"campaign:{row.id}", "ok"),
        ("campaign_deactivate", f"campaign:{row.id}", "noop"),
        ("campaign_activate", f"campaign:{row.id}", "ok"),
    ]


async def only_campaign_by_id(h: BotHarness, campaign_id: int) -> CouponCampaign:
    async with h.sessionmaker() as s:
        found = await s.get(CouponCampaign, campaign_id)
        assert found is not None
        return found


async def test_partners_are_refused_campaign_admin_and_nothing_is_written(harness: BotHarness) -> None:
    h = harness
    await start(h)
    assert await reply(h, BOB, "/campaign") == [h.t("en", "denied.admin")]
    assert await reply(h, BOB, "/campaign add Tea | 10% | 30d") == [h.t("en", "denied.admin")]
    assert await rows(h, CouponCampaign) == []
    assert [(a, o) for a, _, o in await audit(h)] == [("campaign", "denied"), ("campaign", "denied")]

    await reply(h, ADMIN, "/campaign add Tea | 10% | 30d")
    row = await only_campaign(h)
    h.session.clear()
    await h.press(BOB, CampaignCallback(action="deactivate", id=row.id).pack())
    assert (await only_campaign_by_id(h, row.id)).active is True  # the press counts as expired for a partner


async def test_bad_campaign_lines_answer_with_usage_and_write_nothing(harness: BotHarness) -> None:
    h = harness
    await start(h)
    cases = [
        ("/campaign add", "campaigns.campaign.usage", {}),
        ("/campaign add Tea | 10%", "campaigns.campaign.usage", {}),
        ("/campaign delete 3", "campaigns.campaign.usage", {}),
        ("/campaign add Tea | 0% | 30d", "campaigns.error.discount", {"value": "0%"}),
        ("/campaign add Tea | <b>x</b> | 30d", "campaigns.error.discount", {"value": "<b>x</b>"}),
        ("/campaign add Tea | 10% | 2026-01-01", "campaigns.error.past", {"value": "2026-01-01"}),
        ("/campaign add Tea | 10% | soon", "campaigns.error.validity", {"value": "soon"}),
        ("/campaign add Tea | 10% | 30d | -3", "campaigns.error.max_uses", {"value": "-3"}),
        (
            "/campaign add Tea | 10% | 30d | 5 | diamond",
            "campaigns.error.level",
            {"value": "diamond", "known": "member, silver, gold"},
        ),
    ]
    for text, key, params in cases:
        assert await reply(h, ADMIN, text) == [h.t("en", key, **params)], text
    assert "&lt;b&gt;x&lt;/b&gt;" in h.t("en", "campaigns.error.discount", value="<b>x</b>")
    assert await rows(h, CouponCampaign) == []
    assert await audit(h) == []


# -- partners --------------------------------------------------------------------------------------------------


async def test_partner_takes_a_personal_code_once_with_a_card(harness: BotHarness) -> None:
    h = harness
    await start(h)
    await reply(h, ADMIN, "/campaign add Tea time | 15% | 2026-12-31 | 3")
    campaign = await only_campaign(h)

    [text] = await reply(h, BOB, "/coupon")
    assert h.t("en", "campaigns.coupon.offers_title") in text
    assert "Tea time · 15% off · until 2026-12-31 23:59 · 3 uses per code" in text
    [listing] = h.session.of("sendMessage", BOB.id)
    assert [b["callback_data"] for b in listing.buttons()] == [CouponCallback(action="take", id=campaign.id).pack()]

    code = await issue(h, BOB, campaign.id)
    assert code.startswith("TEATME-") and len(code) == 13
    [photo] = h.session.of("sendPhoto", BOB.id)
    assert photo.params["photo"] == f"<upload:coupon-{code}.png>"
    assert photo.text == h.t(
        "en",
        "campaigns.coupon.issued",
        code=code,
        name="Tea time",
        discount="15% off",
        until="2026-12-31 23:59",
        used=0,
        uses="3",
    )
    assert h.session.uploads[-1].startswith(b"\x89PNG")
    bob = await partner(h, BOB.id)
    [issued] = await events_of(h, EventType.COUPON_ISSUED)
    assert (issued.partner_id, issued.payload) == (bob.id, {"campaign_id": campaign.id, "code": code})

    # Taking it again shows the same code; nothing new is written.
    assert await issue(h, BOB, campaign.id) == code
    [photo] = h.session.of("sendPhoto", BOB.id)
    assert photo.text.startswith("🎟 Your code for “Tea time” is still")
    assert len(await rows(h, Coupon)) == 1
    assert len(await events_of(h, EventType.COUPON_ISSUED)) == 1

    # /coupon now lists the code with its redemptions, and no longer offers the campaign.
    async with UnitOfWork(h.sessionmaker) as uow:
        assert await uow.campaigns.record_redemption(code, await order(h), bob.id, START)
    [text] = await reply(h, BOB, "/coupon")
    assert f"<code>{code}</code> · Tea time · 15% off · until 2026-12-31 23:59 · used 1 of 3" in text
    assert h.t("en", "campaigns.coupon.offers_title") not in text
    assert h.session.of("sendMessage", BOB.id)[0].buttons() == []

    # Carol gets her own, different code, in Chinese.
    carol_code = await issue(h, CAROL, campaign.id)
    assert carol_code != code
    [photo] = h.session.of("sendPhoto", CAROL.id)
    assert "专属优惠码" in photo.text


async def test_codes_are_unique_and_a_collision_is_retried(harness: BotHarness) -> None:
    h = harness
    await start(h)
    await reply(h, ADMIN, "/campaign add Tea | 10% | 30d")
    campaign = await only_campaign(h)
    h.ctx.choice = lambda alphabet: alphabet[0]  # every code would be TEA-AAAAAA…
    first = await issue(h, BOB, campaign.id)
    assert first == "TEA-AAAAAA"
    picks = iter("AAAAAA" + "BBBBBB")
    h.ctx.choice = lambda alphabet: next(picks)  # …so Carol's first try collides and the second is used
    assert await issue(h, CAROL, campaign.id) == "TEA-BBBBBB"


async def test_levels_decide_who_may_take_a_code(harness: BotHarness) -> None:
    h = harness
    await start(h)
    await reply(h, ADMIN, "/campaign add Gold only | 20% | 30d | 1 | gold")
    campaign = await only_campaign(h)
    assert await reply(h, BOB, "/coupon") == [h.t("en", "campaigns.coupon.not_for_level", level="member")]
    h.session.clear()
    await h.press(BOB, CouponCallback(action="take", id=campaign.id).pack())
    [answer] = h.session.of("answerCallbackQuery")
    assert answer.params["text"] == h.t("en", "campaigns.coupon.not_eligible", name="Gold only")
    assert await rows(h, Coupon) == []

    await set_level(h, BOB.id, "gold")
    code = await issue(h, BOB, campaign.id)
    assert code.startswith("GDNY-")  # O and L are lookalikes: "Gold only" gives GDNY

    # A deactivated campaign is no longer offered nor issued.
    await h.press(ADMIN, CampaignCallback(action="deactivate", id=campaign.id).pack())
    await set_level(h, CAROL.id, "gold")
    assert await reply(h, CAROL, "/coupon") == [h.t("zh", "campaigns.coupon.empty")]
    h.session.clear()
    await h.press(CAROL, CouponCallback(action="take", id=campaign.id).pack())
    [answer] = h.session.of("answerCallbackQuery")
    assert answer.params["text"] == h.t("zh", "campaigns.coupon.closed", name="Gold only")
    assert len(await rows(h, Coupon)) == 1


async def test_no_offers(harness: BotHarness) -> None:
    await start(harness)
    assert await reply(harness, BOB, "/coupon") == [harness.t("en", "campaigns.coupon.empty")]


# -- redemption rules (what settlement asks) -------------------------------------------------------------------


async def test_redeemable_owner_follows_window_activity_and_max_uses(harness: BotHarness) -> None:
    h = harness
    await start(h)
    await reply(h, ADMIN, "/campaign add Tea | 10% | 10d | 2")
    campaign = await only_campaign(h)
    code = await issue(h, BOB, campaign.id)
    bob = await partner(h, BOB.id)
    inside = START + timedelta(days=1)

    async with UnitOfWork(h.sessionmaker) as uow:
        repo = uow.campaigns
        assert await repo.redeemable_owner(code, inside) == bob.id
        assert await repo.redeemable_owner(f"  {code.lower()} ", inside) == bob.id  # as customers type it
        assert await repo.redeemable_owner("NOPE-123456", inside) is None
        assert await repo.redeemable_owner(code, START - timedelta(seconds=1)) is None  # before the window
        assert await repo.redeemable_owner(code, START + timedelta(days=10)) is None  # the end is exclusive
        assert await repo.redeemable_owner(code, START + timedelta(days=10) - timedelta(seconds=1)) == bob.id

    first, second, third = await order(h), await order(h), await order(h)
    async with UnitOfWork(h.sessionmaker) as uow:
        assert await uow.campaigns.record_redemption(code.lower(), first, bob.id, inside) is True
        assert await uow.campaigns.record_redemption(code, first, bob.id, inside) is False  # a replayed order
        assert await uow.campaigns.redeemable_owner(code, inside) == bob.id  # one use of two
        assert await uow.campaigns.record_redemption(code, second, bob.id, inside) is True
        assert await uow.campaigns.redeemable_owner(code, inside) is None  # both uses taken
        assert await uow.campaigns.record_redemption("NOPE-123456", third, bob.id, inside) is False
    redemptions = await rows_by_id(h)
    assert [(r.code, r.order_id, r.partner_id) for r in redemptions] == [
        (code, first, bob.id),
        (code, second, bob.id),
    ]

    # Deactivating the campaign or the code stops it; codes without a campaign are always valid while active.
    async with UnitOfWork(h.sessionmaker) as uow:
        uow.session.add(Coupon(code="LEGACY1", partner_id=bob.id, active=True, campaign_id=None, created_at=START))
    await reply(h, ADMIN, "/campaign add Unlimited | 5% | 10d")
    unlimited = (await rows(h, CouponCampaign))[-1]
    code2 = await issue(h, BOB, unlimited.id)
    async with UnitOfWork(h.sessionmaker) as uow:
        assert await uow.campaigns.redeemable_owner("legacy1", START + timedelta(days=999)) == bob.id
        assert await uow.campaigns.redeemable_owner(code2, inside) == bob.id
    await h.press(ADMIN, CampaignCallback(action="deactivate", id=unlimited.id).pack())
    async with UnitOfWork(h.sessionmaker) as uow:
        assert await uow.campaigns.redeemable_owner(code2, inside) is None
        legacy = await uow.session.get(Coupon, "LEGACY1")
        assert legacy is not None
        legacy.active = False
    async with UnitOfWork(h.sessionmaker) as uow:
        assert await uow.campaigns.redeemable_owner("LEGACY1", inside) is None


async def rows_by_id(h: BotHarness) -> list[CouponRedemption]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(CouponRedemption).order_by(CouponRedemption.id))).scalars())


async def test_campaign_admin_lists_issued_and_redeemed_counts(harness: BotHarness) -> None:
    h = harness
    await start(h)
    await reply(h, ADMIN, "/campaign add Tea | 10% | 10d")
    campaign = await only_campaign(h)
    code = await issue(h, BOB, campaign.id)
    await issue(h, CAROL, campaign.id)
    async with UnitOfWork(h.sessionmaker) as uow:
        await uow.campaigns.record_redemption(code, await order(h), (await partner(h, BOB.id)).id, START)
    [text] = await reply(h, ADMIN, "/campaign")
    assert "codes issued: 2 · redeemed: 1" in text
