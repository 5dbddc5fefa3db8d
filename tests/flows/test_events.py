"""Tier 2: events (/event for admins), invitations (/invite), the RSVP page /e/<slug> and event reminders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.callbacks import ProgramEventCallback
from bot.domain.events import EventType
from bot.rsvp_http import RsvpEndpoint
from bot.scheduling import running_with
from bot.scheduling.conventions import JobPolicy, resolve_job
from bot.scheduling.jobs import REMIND_EVENTS, remind_upcoming_events
from bot.services.registry import UseCases
from storage.models import AuditEntry, Event, EventInvitation, Lead, OutboxMessage, Partner, ProgramEvent, Rsvp
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, START, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
BOB = tg_user(102, "Bob", lang="en")
CAROL = tg_user(103, "Carol", lang="zh")
# START is 2026-11-25 09:00 in Shanghai; the event is on 5 December at 19:30 there (11:30 UTC).
EVENT_AT = datetime(2026, 12, 5, 11, 30, tzinfo=UTC)
EVENT_LINE = "/event add Tea <tasting> | 2026-12-05 19:30 | 88 Nanjing Road | 2"

Client = TestClient[web.Request, web.Application]


# -- helpers ---------------------------------------------------------------------------------------------------


async def partner(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def all_rows(h: BotHarness, model: Any) -> list[Any]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(model).order_by(model.id))).scalars().all())


async def reply(h: BotHarness, user: Any, text: str) -> list[str]:
    h.session.clear()
    await h.send(user, text)
    return h.session.texts(user.id)


async def add_lead(h: BotHarness, owner_tg: int, number: int, name: str) -> Lead:
    owner = await partner(h, owner_tg)
    async with UnitOfWork(h.sessionmaker) as uow:
        lead = Lead(partner_id=owner.id, number=number, name=name, source="command", created_at=START, updated_at=START)
        uow.session.add(lead)
        await uow.flush()
    return lead


async def start(h: BotHarness) -> None:
    for user in (ADMIN, BOB, CAROL):
        await h.send(user, "/start")
    h.session.clear()


async def create_event(h: BotHarness, line: str = EVENT_LINE) -> ProgramEvent:
    await reply(h, ADMIN, line)
    event: ProgramEvent = (await all_rows(h, ProgramEvent))[-1]
    return event


async def invite(h: BotHarness, user: Any, lead: str, event: int | str) -> str:
    """The caption of the invitation card."""
    h.session.clear()
    await h.send(user, f"/invite {lead} {event}")
    [photo] = h.session.of("sendPhoto", user.id)
    return photo.text


async def events_of(h: BotHarness, type_: str) -> list[Event]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(Event).where(Event.type == type_).order_by(Event.id))).scalars())


async def outbox(h: BotHarness, prefix: str) -> list[OutboxMessage]:
    async with h.sessionmaker() as s:
        found = await s.execute(
            select(OutboxMessage).where(OutboxMessage.dedupe_key.startswith(prefix)).order_by(OutboxMessage.id)
        )
        return list(found.scalars())


@pytest.fixture
async def site(harness: BotHarness) -> AsyncIterator[Client]:
    """The RSVP routes as create_app installs them, served on a loopback port."""
    app = web.Application(client_max_size=1024**2)
    RsvpEndpoint(harness.sessionmaker, harness.ctx, on_outbox=harness.sender.wake).install(app)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def post(site: Client, slug: str, lang: str = "en", **form: str) -> tuple[int, str]:
    response = await site.post(f"/e/{slug}", data=form, headers={"Accept-Language": lang})
    return response.status, await response.text()


# -- admins ----------------------------------------------------------------------------------------------------


async def test_admin_creates_lists_and_cancels_events(harness: BotHarness) -> None:
    h = harness
    await start(h)
    [text] = await reply(h, ADMIN, EVENT_LINE)
    [event] = await all_rows(h, ProgramEvent)
    assert (event.title, event.starts_at, event.place, event.online_url, event.capacity, event.status) == (
        "Tea <tasting>",
        EVENT_AT,
        "88 Nanjing Road",
        None,
        2,
        "active",
    )
    assert len(event.slug) == 10
    assert text == h.t(
        "en",
        "campaigns.event.added",
        id=event.id,
        title="Tea <tasting>",
        time="2026-12-05 19:30",
        where="88 Nanjing Road",
        capacity="2",
        slug=event.slug,
    )
    assert "Tea &lt;tasting&gt;" in text

    online = await create_event(h, "/event add Webinar | 2026-12-01 20:00 | https://meet.example/w")
    assert (online.place, online.online_url, online.capacity) == (None, "https://meet.example/w", None)

    await add_lead(h, BOB.id, 1, "Alice")
    await invite(h, BOB, "1", event.id)
    h.session.clear()
    await h.send(ADMIN, "/event")
    [listing] = h.session.of("sendMessage", ADMIN_ID)
    lines = listing.text.split("\n")
    assert lines[0] == h.t("en", "campaigns.event.list_title", count=2)
    assert lines[1].startswith(f"#{online.id} Webinar · 2026-12-01 20:00 · https://meet.example/w")  # soonest first
    assert "invited 1 · coming 0 · not coming 0" in listing.text
    assert [b["callback_data"] for b in listing.buttons()] == [
        ProgramEventCallback(action="cancel", id=online.id).pack(),
        ProgramEventCallback(action="cancel", id=event.id).pack(),
    ]

    h.session.clear()
    await h.press(ADMIN, ProgramEventCallback(action="cancel", id=event.id).pack())
    [answer] = h.session.of("answerCallbackQuery")
    assert answer.params["text"] == h.t("en", "campaigns.event.cancelled", title="Tea <tasting>")
    [edited] = h.session.of("editMessageText")
    assert [b["callback_data"] for b in edited.buttons()] == [
        ProgramEventCallback(action="cancel", id=online.id).pack()
    ]
    assert "<s>" in edited.text
    await h.press(ADMIN, ProgramEventCallback(action="cancel", id=event.id).pack())
    assert (await all_rows(h, ProgramEvent))[0].status == "cancelled"

    async with h.sessionmaker() as s:
        entries = [(a.action, a.target, a.outcome) for a in (await s.execute(select(AuditEntry))).scalars()]
    assert entries == [
        ("event_add", f"event:{event.id}", "ok"),
        ("event_add", f"event:{online.id}", "ok"),
        ("event_cancel", f"event:{event.id}", "ok"),
        ("event_cancel", f"event:{event.id}", "noop"),
    ]


async def test_partners_cannot_manage_events(harness: BotHarness) -> None:
    h = harness
    await start(h)
    assert await reply(h, BOB, "/event") == [h.t("en", "denied.admin")]
    assert await reply(h, BOB, EVENT_LINE) == [h.t("en", "denied.admin")]
    assert await all_rows(h, ProgramEvent) == []
    event = await create_event(h)
    await h.press(BOB, ProgramEventCallback(action="cancel", id=event.id).pack())
    assert (await all_rows(h, ProgramEvent))[0].status == "active"


async def test_bad_event_lines_answer_with_usage_and_write_nothing(harness: BotHarness) -> None:
    h = harness
    await start(h)
    cases: list[tuple[str, str, dict[str, object]]] = [
        ("/event add", "campaigns.event.usage", {}),
        ("/event add Tea | 2026-12-05 19:30", "campaigns.event.usage", {}),
        ("/event remove 1", "campaigns.event.usage", {}),
        ("/event add Tea | 2026-11-01 19:30 | Home", "campaigns.error.past", {"value": "2026-11-01 19:30"}),
        ("/event add Tea | next friday | Home", "campaigns.error.time", {"value": "next friday"}),
        ("/event add Tea | 2026-12-05 19:30 | javascript://x", "campaigns.error.link", {"value": "javascript://x"}),
        ("/event add Tea | 2026-12-05 19:30 | Home | lots", "campaigns.error.capacity", {"value": "lots"}),
        ("/event add  | 2026-12-05 19:30 | Home", "campaigns.error.title", {"limit": 200}),
    ]
    for text, key, params in cases:
        assert await reply(h, ADMIN, text) == [h.t("en", key, **params)], text
    assert await all_rows(h, ProgramEvent) == []
    async with h.sessionmaker() as s:
        assert list((await s.execute(select(AuditEntry))).scalars()) == []


# -- invitations -----------------------------------------------------------------------------------------------


async def test_invite_is_idempotent_and_makes_a_card_with_the_rsvp_link(harness: BotHarness) -> None:
    h = harness
    await start(h)
    event = await create_event(h)
    alice = await add_lead(h, BOB.id, 1, "Alice <b>")

    [text] = await reply(h, BOB, "/invite")
    assert h.t("en", "campaigns.invite.list_title") in text
    assert f"#{event.id} Tea &lt;tasting&gt; · 2026-12-05 19:30 · 88 Nanjing Road" in text

    caption = await invite(h, BOB, "1", event.id)
    [invitation] = await all_rows(h, EventInvitation)
    url = f"http://127.0.0.1:8080/e/{invitation.slug}"
    assert caption == h.t(
        "en",
        "campaigns.invite.created",
        lead="Alice <b>",
        title="Tea <tasting>",
        time="2026-12-05 19:30",
        where="88 Nanjing Road",
        url=url,
    )
    assert "Alice &lt;b&gt;" in caption
    assert h.session.uploads[-1].startswith(b"\x89PNG")
    bob = await partner(h, BOB.id)
    assert (invitation.event_id, invitation.partner_id, invitation.lead_id, invitation.lead_name) == (
        event.id,
        bob.id,
        alice.id,
        "Alice <b>",
    )
    [invited] = await events_of(h, EventType.EVENT_INVITED)
    assert (invited.partner_id, invited.payload) == (
        bob.id,
        {"event_id": event.id, "invitation_id": invitation.id, "lead_id": alice.id},
    )

    # Again, by name prefix and by the event's slug: the same invitation and link, nothing new written.
    again = await invite(h, BOB, "ali", event.slug)
    assert again.startswith("💌 Alice &lt;b&gt; is already invited") and url in again
    assert len(await all_rows(h, EventInvitation)) == 1
    assert len(await events_of(h, EventType.EVENT_INVITED)) == 1


async def test_invite_refusals_write_nothing(harness: BotHarness) -> None:
    h = harness
    await start(h)
    event = await create_event(h)
    soon = await create_event(h, "/event add Soon | 2026-11-25 10:00 | Here")
    await add_lead(h, BOB.id, 1, "Alice")
    await add_lead(h, CAROL.id, 1, "Dan")
    cases = [
        ("/invite 1", "campaigns.invite.usage", {}),
        ("/invite 1 <b>", "campaigns.invite.usage", {}),
        ("/invite 1 999999", "campaigns.invite.unknown_event", {"ref": "999999"}),
        ("/invite 1 nosuchslug", "campaigns.invite.unknown_event", {"ref": "nosuchslug"}),
        (f"/invite 7 {event.id}", "leads.unknown", {"ref": "7"}),
        (f"/invite Dan {event.id}", "leads.unknown", {"ref": "Dan"}),  # Carol's lead, not Bob's
    ]
    for text, key, params in cases:
        assert await reply(h, BOB, text) == [h.t("en", key, **params)], text

    h.clock.advance(timedelta(hours=2))  # "Soon" has started
    assert await reply(h, BOB, f"/invite 1 {soon.id}") == [h.t("en", "campaigns.invite.past", title="Soon")]
    await h.press(ADMIN, ProgramEventCallback(action="cancel", id=event.id).pack())
    assert await reply(h, BOB, f"/invite 1 {event.id}") == [
        h.t("en", "campaigns.invite.cancelled", title="Tea <tasting>")
    ]
    assert await reply(h, BOB, "/invite") == [h.t("en", "campaigns.invite.none")]
    assert await all_rows(h, EventInvitation) == []
    assert await events_of(h, EventType.EVENT_INVITED) == []


# -- the RSVP page ---------------------------------------------------------------------------------------------


async def test_rsvp_page_records_answers_and_tells_the_partner(harness: BotHarness, site: Client) -> None:
    h = harness
    await start(h)
    event = await create_event(h)
    alice = await add_lead(h, BOB.id, 1, 'Alice "<img src=x onerror=alert(1)>')
    await invite(h, BOB, "1", event.id)
    [invitation] = await all_rows(h, EventInvitation)

    response = await site.get(f"/e/{invitation.slug}", headers={"Accept-Language": "en-US,en;q=0.9"})
    page = await response.text()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<img src=x" not in page
    assert 'value="Alice &#34;&lt;img src=x onerror=alert(1)&gt;"' in page  # prefilled, escaped
    assert "Tea &lt;tasting&gt;" in page and "2026-12-05 19:30 (Asia/Shanghai)" in page
    assert "Will you come?" in page

    zh = await site.get(f"/e/{invitation.slug}", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "您会参加吗？" in await zh.text()

    status, page = await post(site, invitation.slug, name="Alice <script>x()</script>", attending="yes")
    assert status == 200
    assert "<script>x()" not in page and "Alice &lt;script&gt;x()&lt;/script&gt;" in page
    assert h.t("en", "campaigns.rsvp.thanks_yes") in page
    [answer] = await all_rows(h, Rsvp)
    assert (answer.invitation_id, answer.name, answer.attending, answer.responded_at) == (
        invitation.id,
        "Alice <script>x()</script>",
        True,
        START,
    )
    bob = await partner(h, BOB.id)
    [rsvp] = await events_of(h, EventType.RSVP)
    assert (rsvp.partner_id, rsvp.source, rsvp.payload) == (
        bob.id,
        "web",
        {"event_id": event.id, "invitation_id": invitation.id, "lead_id": alice.id, "attending": True},
    )
    h.session.clear()
    await h.drain_outbox()
    [notice] = h.session.texts(BOB.id)
    assert notice == h.t(
        "en", "campaigns.rsvp.notice_yes", name="Alice <script>x()</script>", lead=alice.name, title="Tea <tasting>"
    )
    assert "&lt;script&gt;" in notice

    # The latest answer counts; the page shows it.
    await h.pass_time(2)
    status, page = await post(site, invitation.slug, lang="zh", name="Alice", attending="no")
    assert status == 200 and h.t("zh", "campaigns.rsvp.thanks_no") in page
    again = await site.get(f"/e/{invitation.slug}")
    assert h.t("en", "campaigns.rsvp.current_no") in await again.text()
    h.session.clear()
    await h.drain_outbox()
    assert h.session.texts(BOB.id) == [
        h.t("en", "campaigns.rsvp.notice_no", name="Alice", lead=alice.name, title="Tea <tasting>")
    ]
    assert len(await events_of(h, EventType.RSVP)) == 2


async def test_capacity_bad_forms_and_unknown_links(harness: BotHarness, site: Client) -> None:
    h = harness
    await start(h)
    event = await create_event(h)  # capacity 2
    for number, name in enumerate(("Ann", "Ben", "Cid"), start=1):
        await add_lead(h, BOB.id, number, name)
        await invite(h, BOB, str(number), event.id)
    ann, ben, cid = (inv.slug for inv in await all_rows(h, EventInvitation))

    assert (await post(site, ann, name="Ann", attending="yes"))[0] == 200
    assert (await post(site, ben, name="Ben", attending="yes"))[0] == 200
    assert (await post(site, ann, name="Ann", attending="yes"))[0] == 200  # a repeated yes is not a new seat
    status, page = await post(site, cid, name="Cid", attending="yes")
    assert status == 409 and h.t("en", "campaigns.rsvp.full") in page
    assert len(await all_rows(h, Rsvp)) == 3
    assert (await post(site, cid, name="Cid", attending="no"))[0] == 200  # a no is always welcome
    assert (await post(site, ben, name="Ben", attending="no"))[0] == 200  # Ben frees his seat…
    assert (await post(site, cid, name="Cid", attending="yes"))[0] == 200  # …and Cid takes it
    h.session.clear()
    await h.send(ADMIN, "/event")
    assert "invited 3 · coming 2 · not coming 1" in h.session.texts(ADMIN_ID)[0]

    before = len(await all_rows(h, Rsvp))
    status, page = await post(site, ann, name="   ", attending="maybe")
    assert status == 400
    assert h.t("en", "campaigns.rsvp.error_name") in page and h.t("en", "campaigns.rsvp.error_answer") in page
    assert "<form" in page
    status, page = await post(site, ann, name="x" * 129, attending="yes")
    assert status == 400 and h.t("en", "campaigns.rsvp.error_name") in page
    response = await site.post(f"/e/{ann}", data=b'{"name": "Ann"}', headers={"Content-Type": "application/json"})
    assert response.status == 400
    response = await site.post(f"/e/{ann}", data={"name": "A" * 9000, "attending": "yes"})
    assert response.status == 413
    assert len(await all_rows(h, Rsvp)) == before

    for method in (site.get, site.post):
        response = await method("/e/nosuchslug", headers={"Accept-Language": "zh"})
        assert response.status == 404
        assert h.t("zh", "campaigns.rsvp.not_found_title") in await response.text()

    # Cancelled: the page says so and answers are refused.
    await h.press(ADMIN, ProgramEventCallback(action="cancel", id=event.id).pack())
    response = await site.get(f"/e/{ann}")
    assert response.status == 410 and h.t("en", "campaigns.rsvp.cancelled") in await response.text()
    status, _ = await post(site, ann, name="Ann", attending="no")
    assert status == 410
    assert len(await all_rows(h, Rsvp)) == before


# -- reminders -------------------------------------------------------------------------------------------------


async def sweep(h: BotHarness) -> int:
    async with UnitOfWork(h.sessionmaker) as uow:
        return await UseCases(uow, h.ctx).campaigns.send_event_reminders(h.clock.now())


async def test_reminders_a_day_and_an_hour_before_go_once(harness: BotHarness, site: Client) -> None:
    h = harness
    await start(h)
    event = await create_event(h)
    for number, name in enumerate(("Ann", "Ben", "Cid"), start=1):
        await add_lead(h, BOB.id, number, name)
        await invite(h, BOB, str(number), event.id)
    await add_lead(h, CAROL.id, 1, "Dan")
    await invite(h, CAROL, "1", event.id)
    ann, ben, _, _ = (inv.slug for inv in await all_rows(h, EventInvitation))
    await post(site, ann, name="Ann", attending="yes")
    await post(site, ben, name="Ben", attending="no")
    bob, carol = await partner(h, BOB.id), await partner(h, CAROL.id)

    h.clock.set(EVENT_AT - timedelta(days=1, minutes=1))
    assert await sweep(h) == 0
    h.clock.set(EVENT_AT - timedelta(hours=23, minutes=59))
    assert await sweep(h) == 2
    assert await sweep(h) == 0  # a later sweep sends nothing again
    h.clock.advance(timedelta(hours=3))
    assert await sweep(h) == 0
    day = await outbox(h, "event-remind:")
    assert [m.dedupe_key for m in day] == [
        f"event-remind:{event.id}:{bob.id}:1d",
        f"event-remind:{event.id}:{carol.id}:1d",
    ]
    assert day[0].payload["text"] == "\n".join(
        [
            h.t(
                "en",
                "campaigns.remind.title_1d",
                title="Tea <tasting>",
                time="2026-12-05 19:30",
                where="88 Nanjing Road",
            ),
            h.t("en", "campaigns.remind.lead_yes", name="Ann"),
            h.t("en", "campaigns.remind.lead_no", name="Ben"),
            h.t("en", "campaigns.remind.lead_pending", name="Cid"),
        ]
    )
    assert day[1].payload["text"].startswith("📅 明天")

    h.clock.set(EVENT_AT - timedelta(minutes=59))
    assert await sweep(h) == 2
    assert await sweep(h) == 0
    hour = (await outbox(h, "event-remind:"))[2:]
    assert [m.dedupe_key for m in hour] == [
        f"event-remind:{event.id}:{bob.id}:1h",
        f"event-remind:{event.id}:{carol.id}:1h",
    ]
    assert hour[0].payload["text"].startswith("⏰ In an hour")
    h.session.clear()
    for _ in range(6):  # the RSVP notices and both reminders, about one a second per chat
        await h.drain_outbox()
        await h.pass_time(2)
    delivered = h.session.texts(BOB.id)
    assert [text[:12] for text in delivered if text.startswith(("📅", "⏰"))] == ["📅 Tomorrow: ", "⏰ In an hour"]
    h.clock.set(EVENT_AT + timedelta(minutes=1))
    assert await sweep(h) == 0
    assert len(await outbox(h, "event-remind:")) == 4


async def test_first_seen_within_the_hour_only_the_hour_reminder_and_cancelled_events_none(
    harness: BotHarness,
) -> None:
    h = harness
    await start(h)
    event = await create_event(h)
    other = await create_event(h, "/event add Other | 2026-12-05 19:30 | There")
    await add_lead(h, BOB.id, 1, "Ann")
    await invite(h, BOB, "1", event.id)
    await invite(h, BOB, "1", other.id)
    await h.press(ADMIN, ProgramEventCallback(action="cancel", id=other.id).pack())

    h.clock.set(EVENT_AT - timedelta(minutes=30))  # the sweep was down for the whole day before
    assert await sweep(h) == 1
    bob = await partner(h, BOB.id)
    assert [m.dedupe_key for m in await outbox(h, "event-remind:")] == [f"event-remind:{event.id}:{bob.id}:1h"]
    h.clock.advance(timedelta(minutes=1))
    assert await sweep(h) == 0


async def test_the_scheduled_sweep_sends_through_the_job_runtime(harness: BotHarness) -> None:
    h = harness
    func, policy = resolve_job(REMIND_EVENTS)
    assert func is remind_upcoming_events
    assert policy == JobPolicy(misfire_grace_time=50, coalesce=True, max_instances=1)
    await start(h)
    event = await create_event(h)
    await add_lead(h, BOB.id, 1, "Ann")
    await invite(h, BOB, "1", event.id)
    runtime = h.job_runtime()
    h.clock.set(EVENT_AT - timedelta(hours=12))
    with running_with(runtime):
        await remind_upcoming_events()
        await remind_upcoming_events()
    bob = await partner(h, BOB.id)
    assert [m.dedupe_key for m in await outbox(h, "event-remind:")] == [f"event-remind:{event.id}:{bob.id}:1d"]
