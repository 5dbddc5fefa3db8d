"""Tier 2: sign-up, first-touch binding and the upline notice, through Dispatcher.feed_update."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.domain.events import EventType
from storage.models import Event, OutboxMessage, Partner
from tests.support.harness import BotHarness, tg_user

ALICE = tg_user(101, "Alice", lang="en")
BOB = tg_user(102, "Bob", lang="en")
CAROL = tg_user(103, "Carol", lang="zh")


async def partner(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def test_start_creates_partner_and_welcomes_in_their_language(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    alice = await partner(harness, ALICE.id)
    [call] = harness.session.of("sendMessage", ALICE.id)
    assert call.text == harness.t("en", "start.welcome_new", name="Alice", code=alice.invite_code)
    assert alice.upline_id is None
    assert len(alice.invite_code) == 8 and not alice.invite_code.isdigit()


async def test_deep_link_binds_upline_and_notifies_them(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    alice = await partner(harness, ALICE.id)
    harness.session.clear()
    await harness.send(BOB, f"/start {alice.invite_code}")
    bob = await partner(harness, BOB.id)
    assert bob.upline_id == alice.id
    [welcome] = harness.session.of("sendMessage", BOB.id)
    assert harness.t("en", "start.bound", upline="Alice") in welcome.text
    # the upline notice goes through the outbox, not straight from the handler
    assert harness.session.of("sendMessage", ALICE.id) == []
    assert await harness.drain_outbox() == 1
    [notice] = harness.session.of("sendMessage", ALICE.id)
    assert notice.text == harness.t("en", "notice.new_recruit", name="Bob", count=1)
    async with harness.sessionmaker() as s:
        types = (await s.execute(select(Event.type).order_by(Event.id))).scalars().all()
        assert EventType.INVITED.value in types and types.count(EventType.REGISTERED.value) == 2
        row = (await s.execute(select(OutboxMessage))).scalar_one()
        assert row.status == "sent" and row.dedupe_key == f"recruit:upline:{alice.id}:{bob.id}"


async def test_first_touch_never_moves_a_partner(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    await harness.send(CAROL, "/start")
    alice, carol = await partner(harness, ALICE.id), await partner(harness, CAROL.id)
    await harness.send(BOB, f"/start {alice.invite_code}")
    harness.session.clear()
    await harness.send(BOB, f"/start {carol.invite_code}")
    assert (await partner(harness, BOB.id)).upline_id == alice.id
    [reply] = harness.session.of("sendMessage", BOB.id)
    assert harness.t("en", "start.already_bound", upline="Alice") in reply.text


async def test_unknown_own_and_malformed_codes_register_without_upline(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start nosuchcode")
    [reply] = harness.session.of("sendMessage", ALICE.id)
    assert harness.t("en", "start.unknown_code") in reply.text
    alice = await partner(harness, ALICE.id)
    assert alice.upline_id is None
    harness.session.clear()
    await harness.send(ALICE, f"/start {alice.invite_code}")
    [reply] = harness.session.of("sendMessage", ALICE.id)
    assert harness.t("en", "start.own_code") in reply.text
    harness.session.clear()
    await harness.send(BOB, "/start bad$code")
    [reply] = harness.session.of("sendMessage", BOB.id)
    assert harness.t("en", "start.invalid_code") in reply.text
    assert (await partner(harness, BOB.id)).upline_id is None


async def test_code_from_own_downline_is_a_cycle(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    alice = await partner(harness, ALICE.id)
    await harness.send(BOB, f"/start {alice.invite_code}")
    bob = await partner(harness, BOB.id)
    harness.session.clear()
    await harness.send(ALICE, f"/start {bob.invite_code}")
    [reply] = harness.session.of("sendMessage", ALICE.id)
    assert harness.t("en", "start.cycle") in reply.text
    assert (await partner(harness, ALICE.id)).upline_id is None


async def test_unbound_partner_binds_on_first_code_and_brings_their_team(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    await harness.send(CAROL, "/start")
    alice, carol = await partner(harness, ALICE.id), await partner(harness, CAROL.id)
    await harness.send(BOB, f"/start {alice.invite_code}")
    await harness.send(ALICE, f"/start {carol.invite_code}")
    alice, bob = await partner(harness, ALICE.id), await partner(harness, BOB.id)
    assert alice.upline_id == carol.id
    assert bob.tree_path == f"/{carol.id}/{alice.id}/{bob.id}/" and bob.depth == 2


async def test_registration_is_idempotent(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    await harness.send(ALICE, "/start")
    async with harness.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Partner))).scalar_one() == 1
    replies = harness.session.of("sendMessage", ALICE.id)
    assert replies[-1].text == harness.t("en", "start.welcome_back", name="Alice")
