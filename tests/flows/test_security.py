"""Tier 2: security sweeps (issue 9 §3). Every lead and admin command and every privileged button is refused to those
without the role, in their language, with nothing written but the audit row; another partner's prospect cannot be
reached by command or forged button; garbage callback data gets a polite answer and no error; a team lead sees
their own team only (/team, the digest button, the web dashboard); the webhook needs its secret; the orders API
needs a fresh signature over the exact body; every dashboard page needs a real, live session.

The world: Alice (a lead) recruited Bob (en) and Carol (zh); Dave (another lead) recruited Erin, who owns a prospect,
a withdrawal request, a chat order and a pending story. The admin made a product, a campaign, an event and a content
item. "Nothing changed" is checked on a full dump of every table (the audit log apart), not on row counts; the
positive controls show the same presses do change that dump when the owner or an admin makes them."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import User
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.callbacks import (
    BroadcastCallback,
    CampaignCallback,
    ChatOrderCallback,
    DigestCallback,
    FlagCallback,
    LeadCallback,
    LibraryCallback,
    OrdersCsvCallback,
    PayoutCallback,
    PlaybookAdminCallback,
    PoolCallback,
    ProductPageCallback,
    ProgramEventCallback,
    RulesCallback,
    StoryCallback,
)
from bot.dashboard_http import DashboardEndpoint
from bot.domain.dashboard import COOKIE_NAME, SESSION_TTL, session_cookie
from bot.domain.orders_api import sign
from bot.orders_http import OrdersEndpoint
from bot.services.menu import ADMIN_COMMANDS, LEAD_COMMANDS
from storage.models import (
    AuditEntry,
    Base,
    ChatOrder,
    ContentItem,
    CouponCampaign,
    Lead,
    OutboxMessage,
    Partner,
    ProgramEvent,
    Story,
    Withdrawal,
)
from storage.uow import UnitOfWork
from tests.flows.test_deals import add_lead
from tests.flows.test_payouts import earn
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
ALICE = tg_user(401, "Alice", username="alice_w", lang="en")  # lead A
BOB = tg_user(402, "Bob", username="bob_p", lang="en")  # partner in Alice's team
CAROL = tg_user(403, "Carol", username="carol_p", lang="zh")  # partner in Alice's team, Chinese
DAVE = tg_user(404, "Dave", username="dave_l", lang="en")  # lead B
ERIN = tg_user(405, "Erin", username="erin_v", lang="en")  # in Dave's team: the victim
SECRET_PHONE = "13912345678"
STORY = "I shared the autumn tea poster with my running club and two friends ordered the same night."
TEA_URL = "https://shop.example.com/p/tea-001"

Client = TestClient[web.Request, web.Application]


@dataclass(frozen=True)
class World:
    partners: dict[str, int]
    """Partner ids by first name."""
    lead: int
    """Erin's prospect."""
    withdrawal: int
    chat_order: int
    story: int
    campaign: int
    event: int
    item: int


async def code_of(h: BotHarness, tg_id: int) -> str:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == tg_id))).scalar_one()


async def only_id(h: BotHarness, model: Any) -> int:
    async with h.sessionmaker() as s:
        [row_id] = (await s.execute(select(model.id))).scalars().all()
        return int(row_id)


async def build_world(h: BotHarness) -> World:
    await h.send(ADMIN, "/start")
    for leader in (ALICE, DAVE):
        await h.send(leader, "/start")
        await h.send(ADMIN, f"/grant @{leader.username} lead")
    alice_code, dave_code = await code_of(h, ALICE.id), await code_of(h, DAVE.id)
    for user in (BOB, CAROL):
        await h.send(user, f"/start {alice_code}")
    await h.send(ERIN, f"/start {dave_code}")
    # Erin's things: a prospect with a phone, earned money and a withdrawal request, a chat order, a story
    await earn(h, await code_of(h, ERIN.id))
    await h.send(ERIN, "/withdraw 55")
    await h.send(ADMIN, f"/product add TEA-001 128 {TEA_URL} Spring green tea, 250 g")
    lead = await add_lead(h, ERIN.id, "Zhang Secret")
    async with UnitOfWork(h.sessionmaker) as uow:
        row = await uow.session.get(Lead, lead.id)
        assert row is not None
        row.phone = SECRET_PHONE
    await h.send(ERIN, "/order 1 TEA-001 2")
    await h.send(ERIN, f"/story {STORY}")
    # the admin's things: a campaign, an event and a content item
    await h.send(ADMIN, "/campaign add Spring sale | 10% | 2026-12-31 | 5")
    await h.send(ADMIN, "/event add Tea tasting | 2027-01-15 19:30 | 88 Nanjing Road | 20")
    async with UnitOfWork(h.sessionmaker) as uow:
        item = ContentItem(
            title="Autumn tea",
            text="Autumn tea is here",
            url=TEA_URL,
            tags=[],
            levels=[],
            status="active",
            created_at=h.clock.now(),
            updated_at=h.clock.now(),
        )
        uow.session.add(item)
        await uow.flush()
        item_id = item.id
    await h.drain_outbox()
    async with h.sessionmaker() as s:
        partners = {p.first_name: p.id for p in (await s.execute(select(Partner))).scalars()}
    world = World(
        partners=partners,
        lead=lead.id,
        withdrawal=await only_id(h, Withdrawal),
        chat_order=await only_id(h, ChatOrder),
        story=await only_id(h, Story),
        campaign=await only_id(h, CouponCampaign),
        event=await only_id(h, ProgramEvent),
        item=item_id,
    )
    h.session.clear()
    return world


@pytest.fixture
async def world(harness: BotHarness) -> World:
    return await build_world(harness)


async def dump(h: BotHarness) -> dict[str, list[str]]:
    """Every row of every table but the audit log, as sorted reprs: a full picture of the state."""
    tables: dict[str, list[str]] = {}
    async with h.sessionmaker() as s:
        for table in Base.metadata.sorted_tables:
            if table.name == AuditEntry.__tablename__:
                continue
            tables[table.name] = sorted(repr(tuple(row)) for row in (await s.execute(select(table))).all())
    return tables


def changed(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, tuple[list[str], list[str]]]:
    """Per changed table: (rows gone, rows new)."""
    return {
        name: (sorted(set(before[name]) - set(rows)), sorted(set(rows) - set(before[name])))
        for name, rows in after.items()
        if rows != before[name]
    }


async def audit_rows(h: BotHarness) -> list[tuple[int, str, str]]:
    async with h.sessionmaker() as s:
        rows = (await s.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
        return [(r.actor_tg_id, r.action, r.outcome) for r in rows]


async def fsm_state(h: BotHarness, user: User) -> str | None:
    key = StorageKey(bot_id=h.bot.id, chat_id=user.id, user_id=user.id)
    return await h.dp.storage.get_state(key)


# -- 1. commands ------------------------------------------------------------------------------------------------

# Each privileged command bare and with plausible arguments aimed at someone else's things.
COMMAND_ARGS: dict[str, tuple[str, ...]] = {
    "content": ("", "add"),
    "grant": ("", "@bob_p admin"),
    "revoke": ("", "@dave_l lead"),
    "audit": ("",),
    "broadcast": ("", "everyone"),
    "stats": ("",),
    "rules": ("",),
    "payouts": ("", "approve 1"),
    "export": ("", "payouts", "partners"),
    "flags": ("",),
    "pools": ("", "post leaders 2026-11"),
    "product": ("", f"add TEA-9 1 {TEA_URL} Free tea"),
    "campaign": ("", "add Free | 100% | 2026-12-31 | 99", "deactivate 1"),
    "event": ("", "add Party | 2027-01-16 19:30 | Here | 5", "cancel 1"),
    "orders": ("",),
    "playbooks": ("", "pause start7"),
    "spotlight": ("", "@erin_v"),
    "team": ("", "@erin_v"),
    "dashboard": ("",),
}
EXTRA_ADMIN_LINES = ("/sprint new Push | orders | 10 | 2026-12-01 | 2026-12-07", "/sprint end 1", "/sprint list")


def test_the_table_names_every_privileged_command() -> None:
    assert set(COMMAND_ARGS) == set(ADMIN_COMMANDS) | set(LEAD_COMMANDS)


def command_lines(commands: tuple[str, ...]) -> list[str]:
    return [f"/{name} {args}".strip() for name in commands for args in COMMAND_ARGS[name]]


# (who, their language, the commands, the refusal they get)
COMMAND_CASES: list[tuple[User, str, tuple[str, ...], str]] = [
    (BOB, "en", LEAD_COMMANDS, "denied.lead"),
    (CAROL, "zh", LEAD_COMMANDS, "denied.lead"),
    (BOB, "en", ADMIN_COMMANDS, "denied.admin"),
    (CAROL, "zh", ADMIN_COMMANDS, "denied.admin"),
    (ALICE, "en", ADMIN_COMMANDS, "denied.admin"),  # a team lead
]


async def test_privileged_commands_are_refused_in_the_senders_language_and_change_nothing(
    harness: BotHarness, world: World
) -> None:
    h = harness
    for attacker, language, commands, denial in COMMAND_CASES:
        lines = command_lines(commands) + (list(EXTRA_ADMIN_LINES) if denial == "denied.admin" else [])
        before, audit_before = await dump(h), await audit_rows(h)
        for line in lines:
            h.session.clear()
            await h.send(attacker, line)
            assert h.session.texts(attacker.id) == [h.t(language, denial)], (attacker.first_name, line)
            assert [c.method for c in h.session.calls] == ["sendMessage"], line
            assert await fsm_state(h, attacker) is None, line
        await h.drain_outbox()
        assert changed(before, await dump(h)) == {}, attacker.first_name
        new_audit = (await audit_rows(h))[len(audit_before) :]
        assert len(new_audit) == len(lines)
        assert {(actor, outcome) for actor, _, outcome in new_audit} == {(attacker.id, "denied")}
        assert all(c.chat_id == attacker.id for c in h.session.calls)  # nobody else heard of it


async def test_partner_level_commands_cannot_reach_another_partners_prospect(harness: BotHarness, world: World) -> None:
    """Prospect numbers are per partner: Bob's #1 is not Erin's #1, by number, name or phone."""
    h = harness
    before = await dump(h)
    for line in (
        "/followup 1 called",
        "/followup Zhang called",
        f"/followup {SECRET_PHONE} called",
        "/quote 1 TEA-001 1",
        "/order 1 TEA-001 1",
        "/deletelead 1",
        f"/invite 1 {world.event}",
    ):
        h.session.clear()
        await h.send(BOB, line)
        said = " ".join(h.session.texts(BOB.id))
        assert said, line
        assert "Zhang Secret" not in said, line
        assert SECRET_PHONE in line or SECRET_PHONE not in said, line  # only ever echoed back to who typed it
        assert h.session.of("sendPhoto") == [], line
    assert changed(before, await dump(h)) == {}


# -- 2. forged and garbage callback data --------------------------------------------------------------------------


def admin_presses(w: World) -> list[str]:
    """Every admin button, with real ids of other people's things where the button takes one."""
    presses = [BroadcastCallback(action=a).pack() for a in ("everyone", "team", "codes", "confirm", "abort")]
    presses += [
        BroadcastCallback(action="role", value="lead").pack(),
        BroadcastCallback(action="level", value="gold").pack(),
        BroadcastCallback(action="segment", value="high").pack(),
        BroadcastCallback(action="stop", value="1").pack(),
    ]
    presses += [LibraryCallback(action=a, item=w.item).pack() for a in ("open", "archive", "restore")]
    presses += [
        LibraryCallback(action="edit", item=w.item, field="title").pack(),
        *(LibraryCallback(action=a).pack() for a in ("page", "everyone", "save", "cancel")),
        RulesCallback(action="file", version=1).pack(),
        RulesCallback(action="publish", version=2, check="0a1b2c").pack(),
        RulesCallback(action="cancel", version=2).pack(),
        *(PayoutCallback(action=a, id=w.withdrawal).pack() for a in ("approve", "reject", "pay")),
        *(OrdersCsvCallback(action=a).pack() for a in ("import", "cancel")),
        *(PoolCallback(action=a, pool="leaders", period="2026-11").pack() for a in ("preview", "post")),
        *(FlagCallback(action=a, id=1).pack() for a in ("release", "void")),
        *(CampaignCallback(action=a, id=w.campaign).pack() for a in ("activate", "deactivate")),
        ProgramEventCallback(action="cancel", id=w.event).pack(),
        *(ChatOrderCallback(action=a, id=w.chat_order, src=s).pack() for a in ("confirm", "reject") for s in "nl"),
        *(ProductPageCallback(page=p).pack() for p in (0, 1)),
        *(PlaybookAdminCallback(action=a, playbook="start7").pack() for a in ("pause", "resume")),
        *(StoryCallback(action=a, id=w.story).pack() for a in ("approve", "reject")),
    ]
    return presses


REFUSALS = ("denied.admin", "denied.lead", "fallback.stale_button")


async def test_forged_admin_buttons_are_refused_with_an_alert_and_change_nothing(
    harness: BotHarness, world: World
) -> None:
    h = harness
    before, audit_before = await dump(h), await audit_rows(h)
    for attacker, language in ((BOB, "en"), (CAROL, "zh"), (ALICE, "en")):
        refusals = {h.t(language, key) for key in REFUSALS}
        presses = admin_presses(world)
        if attacker is not ALICE:
            presses.append(DigestCallback(action="nudge").pack())
        for data in presses:
            h.session.clear()
            await h.press(attacker, data)
            [answer] = h.session.calls  # nothing but the answer to the press: no message, no edit, no file
            assert answer.method == "answerCallbackQuery", (attacker.first_name, data)
            assert answer.params.get("show_alert") is True, (attacker.first_name, data)
            assert answer.params.get("text") in refusals, (attacker.first_name, data)
            assert await fsm_state(h, attacker) is None, data  # no form was opened (a reason, a reference…)
    await h.drain_outbox()
    assert changed(before, await dump(h)) == {}
    assert {outcome for _, _, outcome in (await audit_rows(h))[len(audit_before) :]} <= {"denied"}
    # the control: the same forged data is real, an admin's press of it takes effect
    await h.press(ADMIN, PayoutCallback(action="approve", id=world.withdrawal).pack())
    assert "withdrawals" in changed(before, await dump(h))


LEAD_ACTIONS: list[tuple[str, str]] = [
    ("open", ""),
    ("fu", ""),
    ("ch", "call"),
    ("skip", "contact"),
    ("remind", ""),
    ("at", "tmr"),
    ("at", "3d"),
    ("stage", ""),
    ("set", "won"),
    ("set", "lost"),
    ("quote", ""),
    ("invite", ""),
    ("won", ""),
    ("lost", ""),
    ("done", ""),
    ("snooze", "1d"),
    ("snooze", "1w"),
    ("dup", ""),
    ("del", ""),
    ("keep", ""),
]


async def test_forged_prospect_buttons_never_touch_another_partners_prospect(harness: BotHarness, world: World) -> None:
    """Every prospect button with Erin's prospect id, pressed by Bob: refused or harmless, nothing shown or changed."""
    h = harness
    before = await dump(h)
    for action, value in LEAD_ACTIONS:
        h.session.clear()
        await h.press(BOB, LeadCallback(action=action, id=world.lead, value=value).pack())
        assert h.session.of("answerCallbackQuery"), action
        said = " ".join(c.text for c in h.session.calls)
        assert "Zhang" not in said and SECRET_PHONE not in said, action
        # a form a press opened must not reach Erin's prospect either: type into it
        for line in ("called, she will think about it", "tomorrow 10:00"):
            await h.send(BOB, line)
        said = " ".join(c.text for c in h.session.calls)
        assert "Zhang" not in said and SECRET_PHONE not in said, action
        await h.send(BOB, "/cancel")
    assert changed(before, await dump(h)) == {}
    # the control: Erin's own press moves her prospect
    await h.press(ERIN, LeadCallback(action="set", id=world.lead, value="won").pack())
    assert "leads" in changed(before, await dump(h))


GARBAGE = [
    "",
    "x",
    "🤖" * 16,
    "a" * 300,
    "ld",
    "ld:",
    "ld:open",
    "ld:open:abc",
    "ld:open:-1",
    "ld:open:1.5",
    "ld:open:99999999999999999999",
    "ld:open:1:2:3:4:5:6",
    "ld:at:1:forever",
    "ld:snooze:1:1y",
    "lds:all:notanint",
    "lds:nosuchkind:0",
    "lds:all:-3:" + "q" * 60,
    "po:approve:abc",
    "po:approve:99999999999999999999",
    "fl:release:",
    "sty:approve:1e3",
    "cho:confirm:x:n",
    "cmp:activate:0x10",
    "pev:cancel:None",
    "prd:abc",
    "prd:-1",
    "stp:-5",
    "stp:99999999999999999999",
    "ct:poster:abc",
    "ct:poster:99999999999999999999",
    "ct:explode:1",
    "crs:ans:nosuch:lesson:x:y",
    "crs:ans:nosuch:lesson:9:9",
    "crs:open:" + "c" * 50,
    "rk:year:galaxy:money",
    "lang:xx",
    "set:set:tz:Mars/Phobos",
    "set:set:quiet:25:00-26:00",
    "set:menu:nosuchfield",
    "me:explode",
    "wal:hack",
    "pbk:unknown",
    "pbk:cmd:<b>grant</b>",
    "pba:pause:nosuch",
    "dig:",
    "dig:nudge:extra",
    "bc:confirm:1:2:3",
    "cpn:take:-7",
    "cpn:take:99999999999999999999",
    "ru:publish:abc:def",
    "pl:post::",
    "oc:",
]


async def test_garbage_callback_data_gets_a_polite_answer_and_no_error(
    harness: BotHarness, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A partner and an admin (whose buttons reach the admin handlers) press nonsense: one answer, no failure."""
    h = harness
    before = await dump(h)
    sorry = h.t("en", "error.generic")
    failed = []
    with caplog.at_level(logging.ERROR):
        for presser in (BOB, ADMIN):
            for data in GARBAGE:
                h.session.clear()
                caplog.clear()
                await h.press(presser, data)
                answers = h.session.of("answerCallbackQuery")
                errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
                if len(answers) != 1 or any(c.text == sorry for c in h.session.calls) or errors:
                    failed.append((presser.first_name, data))
    assert failed == []
    await h.drain_outbox()
    after = changed(before, await dump(h))
    # pressing buttons writes behaviour events at most (a language or settings press may apply a valid value)
    assert set(after) <= {"events"}, after


# -- 3. a team lead sees their own team only ------------------------------------------------------------------------


async def test_team_drill_down_into_another_team_is_refused(harness: BotHarness, world: World) -> None:
    h = harness
    erin_code, dave_code = await code_of(h, ERIN.id), await code_of(h, DAVE.id)
    for handle in ("@erin_v", erin_code, "@dave_l", dave_code, "@alice_w", "@root_nobody"):
        h.session.clear()
        await h.send(ALICE, f"/team {handle}")
        assert h.session.texts(ALICE.id) == [h.t("en", "leads.team.not_member", handle=handle)], handle
    # her own member is fine, and the other lead sees Erin
    h.session.clear()
    await h.send(ALICE, "/team @bob_p")
    assert h.session.texts(ALICE.id)[0].startswith(h.t("en", "digests.member_title", name="Bob"))
    h.session.clear()
    await h.send(DAVE, "/team @erin_v")
    [report] = h.session.texts(DAVE.id)
    assert "Zhang Secret" in report and SECRET_PHONE not in report  # masked for a lead
    # /team without arguments lists her team only
    h.session.clear()
    await h.send(ALICE, "/team")
    said = " ".join(h.session.texts(ALICE.id))
    assert "Erin" not in said and "Dave" not in said and "Zhang" not in said


async def test_a_forwarded_digest_button_nudges_the_pressers_own_team_only(harness: BotHarness, world: World) -> None:
    h = harness
    h.clock.advance(timedelta(days=5))  # everybody is dormant by now
    await h.press(ALICE, DigestCallback(action="nudge").pack())
    async with h.sessionmaker() as s:
        nudged = {
            row.partner_id
            for row in (await s.execute(select(OutboxMessage))).scalars()
            if (row.dedupe_key or "").startswith("nudge")
        }
    assert nudged == {world.partners["Bob"], world.partners["Carol"]}


@pytest.fixture
async def site(harness: BotHarness) -> AsyncIterator[Client]:
    app = web.Application()
    DashboardEndpoint(harness.sessionmaker, harness.ctx).install(app)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


LINK_RE = re.compile(r"token=([^\"&]+)")


async def login_token(h: BotHarness, user: User) -> str:
    h.session.clear()
    await h.send(user, "/dashboard")
    [message] = h.session.of("sendMessage", user.id)
    found = LINK_RE.search(message.text)
    assert found, message.text
    return found.group(1)


async def log_in(h: BotHarness, site: Client, user: User) -> str:
    """Logs `user` in; the session cookie's value."""
    response = await site.get("/dashboard/login", params={"token": await login_token(h, user)}, allow_redirects=False)
    assert response.status == 303
    return response.cookies[COOKIE_NAME].value


async def test_a_leads_dashboard_shows_nothing_of_another_team(harness: BotHarness, world: World, site: Client) -> None:
    h = harness
    await log_in(h, site, ALICE)
    outsiders = ("Erin", "Dave", "Zhang")
    for name in ("Erin", "Dave", "Root"):
        response = await site.get(f"/dashboard/partners/{world.partners[name]}", allow_redirects=False)
        html = await response.text()
        assert response.status == 404, name
        assert not any(o in html for o in outsiders), name
    for path in (
        "/dashboard",
        "/dashboard?period=30d",
        "/dashboard/partners",
        "/dashboard/partners?q=erin",
        "/dashboard/partners?q=dave_l",
        "/dashboard/partners?page=2",
        "/dashboard/content",
        "/dashboard/sprint",
        "/dashboard/delivery",
    ):
        response = await site.get(path, allow_redirects=False)
        html = await response.text()
        assert response.status in (200, 403), path
        assert not any(o in html for o in outsiders), path
    response = await site.get(f"/dashboard/partners/{world.partners['Bob']}")
    assert response.status == 200 and "Bob" in await response.text()


# -- 4. the webhook secret --------------------------------------------------------------------------------------


WEBHOOK_SECRET = "s3cret-Token_1"


WRONG_SECRETS: list[tuple[str, dict[str, str]]] = [
    ("missing", {}),
    ("empty", {"X-Telegram-Bot-Api-Secret-Token": ""}),
    ("wrong", {"X-Telegram-Bot-Api-Secret-Token": "wrong"}),
    ("prefix", {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET[:-1]}),
    ("longer", {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET + "x"}),
    ("case", {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET.upper()}),
    ("other header", {"X-Telegram-Bot-Api-Secret": WEBHOOK_SECRET}),
]


def start_update(update_id: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_764_032_400,
            "chat": {"id": BOB.id, "type": "private"},
            "from": {"id": BOB.id, "is_bot": False, "first_name": "Bob", "language_code": "en"},
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def test_webhook_without_the_right_secret_is_401_and_not_processed(harness: BotHarness) -> None:
    """The handler run_bot.py --webhook registers: a wrong or missing secret is 401 and nothing is processed; the
    right one is (the control)."""
    h = harness
    app = web.Application()
    SimpleRequestHandler(h.dp, h.bot, secret_token=WEBHOOK_SECRET).register(app, path="/webhook")
    empty = await dump(h)
    async with TestClient(TestServer(app)) as client:
        for number, (name, headers) in enumerate(WRONG_SECRETS, start=1):
            response = await client.post("/webhook", json=start_update(number), headers=headers)
            assert response.status == 401, name
        await asyncio.sleep(0.2)  # anything wrongly accepted would be handled in the background by now
        assert h.session.calls == []
        assert await dump(h) == empty
        right = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
        assert (await client.post("/webhook", json=start_update(100), headers=right)).status == 200
        for _ in range(1000):  # handled in the background, as in production; generous for a loaded machine
            if h.session.texts(BOB.id):
                break
            await asyncio.sleep(0.01)
    assert h.session.texts(BOB.id), "the right secret must be processed"


# -- 5. the orders API signature ----------------------------------------------------------------------------------

API_SECRET = b"shop-secret"


@pytest.fixture
async def api(harness: BotHarness) -> AsyncIterator[Client]:
    app = web.Application()
    OrdersEndpoint(API_SECRET, harness.sessionmaker, harness.ctx).install(app)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


def order_body(code: str, order_id: str = "S1") -> bytes:
    return json.dumps(
        {
            "order_id": order_id,
            "partner_code": code,
            "customer_id": "cust-9",
            "currency": "CNY",
            "amount": "150.00",
            "items": [{"sku": "TEA-1", "category": "tea", "quantity": 1, "unit_price": "150.00"}],
            "paid_at": "2026-11-25T00:30:00Z",
        }
    ).encode()


def refund_body(order_id: str = "S1") -> bytes:
    return json.dumps({"refund_id": "R1", "order_id": order_id, "amount": "50.00", "currency": "CNY"}).encode()


Headers = Callable[[int, bytes], dict[str, str]]


def signed(
    *, skew: int = 0, secret: bytes = API_SECRET, sent: str = "{ts}", body: bytes = b"", prefix: bool = True
) -> Headers:
    """Headers for a request at `ts`: signed `skew` seconds off with `secret` over the body plus `body`, the
    timestamp sent as `sent` formats it (the signed one is always the plain number)."""

    def headers(ts: int, raw: bytes) -> dict[str, str]:
        signature = sign(secret, ts + skew, raw + body)
        return {
            "X-Timestamp": sent.format(ts=ts + skew),
            "X-Signature": signature if prefix else signature.removeprefix("sha256="),
        }

    return headers


def only(*names: str, signature: str | None = None) -> Headers:
    """Some of the headers of a correct request; `signature` replaces the signature's value."""

    def headers(ts: int, raw: bytes) -> dict[str, str]:
        right = signed()(ts, raw)
        if signature is not None:
            right["X-Signature"] = signature
        return {name: value for name, value in right.items() if name in names}

    return headers


# (case, the headers sent, the reason in the 401 body)
SIGNATURE_CASES: list[tuple[str, Headers, str]] = [
    ("no headers", only(), "missing"),
    ("no signature", only("X-Timestamp"), "missing"),
    ("no timestamp", only("X-Signature"), "missing"),
    ("empty signature", only("X-Timestamp", "X-Signature", signature=""), "missing"),
    ("not hex", only("X-Timestamp", "X-Signature", signature="sha256=" + "z" * 64), "malformed"),
    ("short", only("X-Timestamp", "X-Signature", signature="sha256=abc"), "malformed"),
    ("no prefix", signed(prefix=False), "malformed"),
    ("timestamp not an integer", signed(sent="{ts}.0"), "malformed"),
    ("wrong secret", signed(secret=b"guess"), "mismatch"),
    ("valid signature over another body", signed(body=b" "), "mismatch"),
    ("valid signature for another timestamp", signed(sent="1{ts}"), "mismatch"),
    ("stale", signed(skew=-301), "stale"),
    ("future", signed(skew=301), "future"),
]


async def test_unsigned_or_badly_signed_requests_are_401_and_write_nothing(harness: BotHarness, api: Client) -> None:
    h = harness
    await h.send(BOB, "/start")
    bodies = {"/api/orders": order_body(await code_of(h, BOB.id)), "/api/refunds": refund_body()}
    before = await dump(h)
    for path, raw in bodies.items():
        for name, headers, reason in SIGNATURE_CASES:
            response = await api.post(path, data=raw, headers=headers(int(h.clock.now().timestamp()), raw))
            assert response.status == 401, (path, name)
            assert await response.json() == {"error": "bad_signature", "reason": reason}, (path, name)
    assert changed(before, await dump(h)) == {}


async def test_an_accepted_request_replayed_later_is_stale_and_within_the_window_changes_nothing(
    harness: BotHarness, api: Client
) -> None:
    """There is no nonce: an exact replay inside the 5 minutes is the idempotent 200 with the first answer; after
    them it is refused as stale. Either way nothing more is written."""
    h = harness
    await h.send(BOB, "/start")
    for path, raw in (("/api/orders", order_body(await code_of(h, BOB.id))), ("/api/refunds", refund_body())):
        ts = int(h.clock.now().timestamp())
        headers = {"X-Timestamp": str(ts), "X-Signature": sign(API_SECRET, ts, raw)}
        first = await api.post(path, data=raw, headers=headers)
        assert first.status == 201, await first.text()
        answer, after_first = await first.json(), await dump(h)
        h.clock.advance(timedelta(minutes=4))
        replay = await api.post(path, data=raw, headers=headers)
        assert (replay.status, await replay.json()) == (200, answer)
        h.clock.advance(timedelta(minutes=2))
        late = await api.post(path, data=raw, headers=headers)
        assert (late.status, await late.json()) == (401, {"error": "bad_signature", "reason": "stale"})
        assert changed(after_first, await dump(h)) == {}


# -- 6. the dashboard needs a session -------------------------------------------------------------------------------

PAGES = (
    "/dashboard",
    "/dashboard?period=7d",
    "/dashboard/partners",
    "/dashboard/partners?q=bob",
    "/dashboard/partners/1",
    "/dashboard/content",
    "/dashboard/sprint",
    "/dashboard/delivery",
)


async def cookie_variants(h: BotHarness, site: Client) -> dict[str, str]:
    """Cookies that must open nothing, made from a real admin session where that makes the forgery plausible."""
    real = await log_in(h, site, ADMIN)
    session_id, _, signature = real.rpartition(".")
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    token = await login_token(h, ADMIN)
    return {
        "forged": "forged.cookie",
        "empty": "",
        "tampered signature": f"{session_id}.{flipped}",
        "tampered id": f"{session_id[:-1]}{'A' if session_id[-1] != 'A' else 'B'}.{signature}",
        "signature only": signature,
        "other secret": session_cookie(b"not-the-secret", session_id),
        "unknown session, right secret": session_cookie(h.ctx.dashboard_secret, "n0t-a-real-session-id"),
        "login token as cookie": token,
        "long": "a" * 5000,
    }


async def test_forged_and_tampered_cookies_open_no_page(harness: BotHarness, world: World, site: Client) -> None:
    h = harness
    variants = await cookie_variants(h, site)
    for name, value in variants.items():
        for path in PAGES:
            site.session.cookie_jar.clear()
            response = await site.get(path, headers={"Cookie": f"{COOKIE_NAME}={value}"}, allow_redirects=False)
            html = await response.text()
            assert response.status == 401, (name, path)
            assert "Bob" not in html and "Erin" not in html, (name, path)


async def test_expired_sessions_and_reused_links_open_no_page(harness: BotHarness, world: World, site: Client) -> None:
    h = harness
    token = await login_token(h, ALICE)
    first = await site.get("/dashboard/login", params={"token": token}, allow_redirects=False)
    assert first.status == 303
    cookie = first.cookies[COOKIE_NAME].value
    site.session.cookie_jar.clear()
    again = await site.get("/dashboard/login", params={"token": token}, allow_redirects=False)
    assert again.status == 403 and "set-cookie" not in again.headers
    for path in PAGES:  # the refused reuse gave no session
        assert (await site.get(path, allow_redirects=False)).status == 401, path
    h.clock.advance(SESSION_TTL)
    for path in PAGES:  # the first login's session is over too
        response = await site.get(path, headers={"Cookie": f"{COOKIE_NAME}={cookie}"}, allow_redirects=False)
        assert response.status == 401, path
        assert "Bob" not in await response.text(), path
    # the used link, now also past its 10 minutes, is still refused
    assert (await site.get("/dashboard/login", params={"token": token}, allow_redirects=False)).status == 400
