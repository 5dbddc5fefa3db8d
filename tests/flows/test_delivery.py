"""Tier 2: the outbox sender within Telegram's limits (bot-wide, per chat, per group, 429 pauses, paid
broadcasts), every kind of message, several senders at once, and /stats delivery for admins."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from redis.asyncio import Redis
from sqlalchemy import Table, func, select, update

from bot.delivery.limiter import DeliveryLimiter, DeliveryRates, Take
from bot.delivery.sender import OutboxSender
from bot.sandbox.recording import RecordingSession
from bot.services.notify import enqueue_photo, enqueue_text
from storage.models import AuditEntry, OutboxMessage, Partner
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
ALICE = tg_user(101, "Alice", lang="en")
BOB = tg_user(102, "Bob", lang="en")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
KEYBOARD = {"inline_keyboard": [[{"text": "Open", "callback_data": "open:1"}]]}


class TimedSession(RecordingSession):
    """A recording Bot API session that also notes when (on the harness clock) each call was made."""

    def __init__(self, harness: BotHarness, *, latency: float = 0.0) -> None:
        super().__init__()
        self._clock = harness.clock
        self._latency = latency
        self.times: list[tuple[datetime, int]] = []

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        self.times.append((self._clock.now(), int(getattr(method, "chat_id", 0))))
        if self._latency:
            await asyncio.sleep(self._latency)
        return await super().make_request(bot, method, timeout)


def sender_for(
    h: BotHarness, limiter: DeliveryLimiter | None = None, *, latency: float = 0.0, **options: Any
) -> tuple[OutboxSender, TimedSession]:
    session = TimedSession(h, latency=latency)
    bot = Bot("123456:TEST-token", session=session, default=DefaultBotProperties(parse_mode="HTML"))
    limiter = limiter or DeliveryLimiter.in_memory(h.clock, DeliveryRates.for_rate(25))
    return OutboxSender(h.sessionmaker, bot, h.clock, limiter=limiter, sleep=h.pass_time, **options), session


async def enqueue_plain(h: BotHarness, chat_ids: list[int], tag: str = "t") -> None:
    now = h.clock.now()
    rows = [
        {
            "dedupe_key": f"{tag}:{i}",
            "chat_id": chat_id,
            "partner_id": None,
            "kind": "text",
            "payload": {"text": f"<b>hello</b> {i}", "parse_mode": "HTML"},
            "not_before": now,
            "created_at": now,
        }
        for i, chat_id in enumerate(chat_ids)
    ]
    async with UnitOfWork(h.sessionmaker) as uow:
        assert await uow.outbox.enqueue_many(rows) == len(rows)


async def count(h: BotHarness, *statuses: str) -> int:
    async with h.sessionmaker() as s:
        query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status.in_(statuses))
        return int((await s.execute(query)).scalar_one())


async def drain_all(h: BotHarness, sender: OutboxSender, *, step: float = 0.25, limit: int = 2000) -> None:
    """Run rounds as the sender's loop would, moving the clock when nothing is due yet."""
    for _ in range(limit):
        if not await count(h, "pending", "sending"):
            return
        if not await sender.drain_once():
            h.clock.advance(timedelta(seconds=step))
    pytest.fail("the outbox did not drain")


def most_in_any_window(times: list[datetime], window: timedelta) -> int:
    return max(sum(start <= t < start + window for t in times) for start in times)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def partners(h: BotHarness, *users: Any) -> list[Partner]:
    for user in users:
        await h.send(user, "/start")
    async with h.sessionmaker() as s:
        found = {p.tg_user_id: p for p in (await s.execute(select(Partner))).scalars()}
    return [found[user.id] for user in users]


# ---------------------------------------------------------------- rate limits


@pytest.mark.parametrize("rate", [25, 30])
async def test_global_rate_is_honoured(harness: BotHarness, rate: int) -> None:
    sender, session = sender_for(harness, DeliveryLimiter.in_memory(harness.clock, DeliveryRates.for_rate(rate)))
    await enqueue_plain(harness, list(range(1, 3 * rate + 1)))
    await drain_all(harness, sender)
    times = [t for t, _ in session.times]
    assert len(times) == 3 * rate
    assert most_in_any_window(times, timedelta(seconds=1)) <= rate + 1  # rate, plus the burst of two
    burst = sender.limiter.rates.burst
    span = (times[-1] - times[0]).total_seconds()
    assert (len(times) - burst) / span == pytest.approx(rate, rel=0.01)


async def test_a_busy_chat_does_not_hold_up_the_others(harness: BotHarness) -> None:
    sender, session = sender_for(harness)
    await enqueue_plain(harness, [500] * 10, tag="busy")
    await enqueue_plain(harness, [601, 602, 603, 604, 605], tag="others")
    assert await sender.drain_once() == 6
    assert sorted(chat for _, chat in session.times) == [500, 601, 602, 603, 604, 605]
    await drain_all(harness, sender)
    busy = [t for t, chat in session.times if chat == 500]
    assert len(busy) == 10
    assert min(b - a for a, b in itertools.pairwise(busy)) >= timedelta(seconds=1)
    async with harness.sessionmaker() as s:
        attempts = (await s.execute(select(OutboxMessage.attempts))).scalars().all()
    assert set(attempts) == {1}  # waiting for the chat's turn is not a failed attempt


async def test_the_running_sender_reaches_other_chats_behind_a_long_backlog(harness: BotHarness) -> None:
    sender, session = sender_for(harness, batch_size=10, poll_seconds=30)
    await enqueue_plain(harness, [500] * 60, tag="backlog")
    await enqueue_plain(harness, [601, 602, 603], tag="others")
    running = asyncio.create_task(sender.run())
    try:
        async with asyncio.timeout(5):  # far less than one poll interval: rounds follow each other at once
            while True:
                if {601, 602, 603} <= {chat for _, chat in session.times}:
                    break
                await asyncio.sleep(0.01)
    finally:
        sender.stop()
        await running
    assert [chat for _, chat in session.times].count(500) == 1


async def test_group_chats_get_twenty_messages_a_minute(harness: BotHarness) -> None:
    sender, session = sender_for(harness)
    group = -1001234567890
    await enqueue_plain(harness, [group] * 25 + [701], tag="group")
    await drain_all(harness, sender, step=1.0)
    sent = [t for t, chat in session.times if chat == group]
    assert len(sent) == 25
    assert most_in_any_window(sent, timedelta(minutes=1)) <= 20
    assert min(b - a for a, b in itertools.pairwise(sent)) >= timedelta(seconds=3)


async def test_paid_broadcast_passes_the_flag_and_raises_the_rate(harness: BotHarness) -> None:
    paid = DeliveryLimiter.in_memory(harness.clock, DeliveryRates.for_rate(1000, paid_broadcast=True))
    sender, session = sender_for(harness, paid)
    await enqueue_plain(harness, list(range(1, 2001)))
    await drain_all(harness, sender)
    assert len(session.calls) == 2000
    assert all(call.params.get("allow_paid_broadcast") is True for call in session.calls)
    times = [t for t, _ in session.times]
    assert (len(times) - paid.rates.burst) / (times[-1] - times[0]).total_seconds() == pytest.approx(1000, rel=0.01)
    free, free_session = sender_for(harness)
    await enqueue_plain(harness, [1], tag="free")
    await free.drain_once()
    assert "allow_paid_broadcast" not in free_session.calls[0].params


async def test_slots_left_by_a_round_serve_the_next_and_lapse_after_a_burst(harness: BotHarness) -> None:
    paid = DeliveryLimiter.in_memory(harness.clock, DeliveryRates.for_rate(1000, paid_broadcast=True))
    takes: list[int] = []
    take_global = paid.take_global

    async def counting(slots: int = 1) -> float:
        takes.append(slots)
        return await take_global(slots)

    paid.take_global = counting  # type: ignore[method-assign]
    sender, session = sender_for(harness, paid, batch_size=3)
    await enqueue_plain(harness, list(range(1, 10)))
    for _ in range(3):
        assert await sender.drain_once() == 3
    assert takes == [5, 5]  # nine messages on ten slots: rounds that follow at once lose none
    harness.clock.advance(timedelta(milliseconds=21))  # longer than the burst of 20 covers: the last slot lapsed
    await enqueue_plain(harness, [10], tag="later")
    assert await sender.drain_once() == 1
    assert takes == [5, 5, 5]
    assert len(session.calls) == 10


async def test_on_redis_a_paid_sender_takes_five_messages_slots_and_chats_in_one_call(
    harness: BotHarness, redis_url: str
) -> None:
    client = Redis.from_url(redis_url)
    rates = DeliveryRates.for_rate(1000, paid_broadcast=True)
    prefix = f"pa:test:{uuid.uuid4().hex}"
    limiter = DeliveryLimiter.on_redis(harness.clock, rates, client, prefix=prefix)
    other_process = DeliveryLimiter.on_redis(harness.clock, rates, client, prefix=prefix)
    calls: list[tuple[int, list[int]]] = []
    take = limiter.take

    async def recording(slots: int, chat_ids: Sequence[int]) -> Take:
        calls.append((slots, list(chat_ids)))
        return await take(slots, chat_ids)

    async def no_single_chat_calls(chat_id: int) -> float:
        raise AssertionError(f"chat {chat_id} asked for alone")

    limiter.take = recording  # type: ignore[method-assign]
    limiter.take_chat = no_single_chat_calls  # type: ignore[method-assign]
    try:
        assert await other_process.take_chat(7) == 0  # the other process just sent to chat 7
        sender, session = sender_for(harness, limiter, batch_size=10)
        await enqueue_plain(harness, list(range(1, 11)))
        assert await sender.drain_once() == 9
        assert calls == [(5, [1, 2, 3, 4, 5]), (5, [6, 7, 8, 9, 10])]  # two round trips for ten messages
        assert sorted(call.params["chat_id"] for call in session.calls) == [1, 2, 3, 4, 5, 6, 8, 9, 10]
        async with harness.sessionmaker() as s:
            row = (await s.execute(select(OutboxMessage).where(OutboxMessage.chat_id == 7))).scalar_one()
        assert row.status == "pending"  # back in the queue for a second later, when chat 7 may have another
        assert row.not_before == harness.clock.now() + timedelta(seconds=1)
    finally:
        await client.aclose()


# ---------------------------------------------------------------- 429


async def test_429_pauses_every_send_until_retry_after_ends(harness: BotHarness) -> None:
    sender, session = sender_for(harness)
    await enqueue_plain(harness, [1, 2, 3, 4, 5])
    session.fail_next("sendMessage", 429, "Too Many Requests: retry after 5", retry_after=5)
    await sender.drain_once()
    assert len(session.calls) == 1  # the others were never sent during the pause ...
    assert await count(harness, "pending") == 5  # ... and went back to the queue, not left 'sending'
    async with harness.sessionmaker() as s:
        rows = {r.chat_id: r for r in (await s.execute(select(OutboxMessage))).scalars()}
    assert rows[1].not_before == harness.clock.now() + timedelta(seconds=5) and rows[1].attempts == 1
    assert {rows[c].attempts for c in (2, 3, 4, 5)} == {0}
    harness.clock.advance(timedelta(seconds=4.9))
    assert await sender.drain_once() == 0
    assert len(session.calls) == 1
    harness.clock.advance(timedelta(seconds=0.1))
    await drain_all(harness, sender)
    assert sorted(call.params["chat_id"] for call in session.calls[1:]) == [1, 2, 3, 4, 5]
    assert min(t for t, _ in session.times[1:]) >= harness.clock.now() - timedelta(seconds=1)


async def test_429_pause_holds_every_sender_sharing_redis(harness: BotHarness, redis: Redis) -> None:
    prefix = f"pa:test:{uuid.uuid4().hex}"
    rates = DeliveryRates.for_rate(25)
    first, first_session = sender_for(harness, DeliveryLimiter.on_redis(harness.clock, rates, redis, prefix=prefix))
    second, second_session = sender_for(harness, DeliveryLimiter.on_redis(harness.clock, rates, redis, prefix=prefix))
    await enqueue_plain(harness, [1, 2, 3, 4])
    first_session.fail_next("sendMessage", 429, "Too Many Requests: retry after 5", retry_after=5)
    await first.drain_once()
    assert len(first_session.calls) == 1
    harness.clock.advance(timedelta(seconds=4))
    assert await second.drain_once() == 0
    assert second_session.calls == []
    harness.clock.advance(timedelta(seconds=1))
    await drain_all(harness, second)
    assert sorted(call.params["chat_id"] for call in second_session.calls) == [1, 2, 3, 4]


async def test_two_senders_sharing_redis_share_one_rate(harness: BotHarness, redis: Redis) -> None:
    prefix = f"pa:test:{uuid.uuid4().hex}"
    rates = DeliveryRates.for_rate(25)
    senders = [sender_for(harness, DeliveryLimiter.on_redis(harness.clock, rates, redis, prefix=prefix)) for _ in "ab"]
    await enqueue_plain(harness, list(range(1, 101)))
    for _ in range(400):
        if not await count(harness, "pending"):
            break
        for sender, _session in senders:
            await sender.drain_once()
        harness.clock.advance(timedelta(milliseconds=50))
    times = sorted(t for _, session in senders for t, _ in session.times)
    assert len(times) == 100
    assert most_in_any_window(times, timedelta(seconds=1)) <= 26


# ---------------------------------------------------------------- message kinds


async def test_photo_from_bytes_is_kept_on_disk_and_uploaded_once(harness: BotHarness, tmp_path: Path) -> None:
    harness.ctx.media_dir = tmp_path / "outbox-media"
    alice, bob = await partners(harness, ALICE, BOB)
    async with UnitOfWork(harness.sessionmaker) as uow:
        assert await enqueue_photo(
            uow,
            harness.ctx,
            recipient=alice,
            dedupe_key="poster:a",
            photo=PNG,
            caption="<b>New</b>",
            reply_markup=KEYBOARD,
        )
    [stored] = list((tmp_path / "outbox-media").iterdir())
    assert stored.read_bytes() == PNG and stored.suffix == ".png"
    harness.session.clear()
    assert await harness.drain_outbox() == 1
    [first] = harness.session.of("sendPhoto", ALICE.id)
    assert first.params["photo"] == f"<upload:{stored.name}>"
    assert first.params["caption"] == "<b>New</b>" and first.params["parse_mode"] == "HTML"
    assert first.buttons() == [{"text": "Open", "callback_data": "open:1"}]
    async with UnitOfWork(harness.sessionmaker) as uow:
        await enqueue_photo(uow, harness.ctx, recipient=bob, dedupe_key="poster:b", photo=PNG)
    assert len(list((tmp_path / "outbox-media").iterdir())) == 1  # the same picture is stored once
    assert await harness.drain_outbox() == 1
    [second] = harness.session.of("sendPhoto", BOB.id)
    assert second.params["photo"].startswith("photo-")  # Telegram's file_id from the first upload


async def test_photo_from_a_file_and_from_a_file_id(harness: BotHarness, tmp_path: Path) -> None:
    poster = tmp_path / "poster.jpg"
    poster.write_bytes(b"\xff\xd8\xff" + bytes(32))
    alice, bob = await partners(harness, ALICE, BOB)
    async with UnitOfWork(harness.sessionmaker) as uow:
        await enqueue_photo(uow, harness.ctx, recipient=alice, dedupe_key="p:a", photo=poster, caption="a")
        await enqueue_photo(uow, harness.ctx, recipient=bob, dedupe_key="p:b", photo="AgACAgIAAxkBAAIB")
        with pytest.raises(FileNotFoundError):
            await enqueue_photo(uow, harness.ctx, recipient=bob, dedupe_key="p:c", photo=tmp_path / "missing.jpg")
    harness.session.clear()
    await drain_all(harness, harness.sender)
    assert harness.session.of("sendPhoto", ALICE.id)[0].params["photo"] == "<upload:poster.jpg>"
    assert harness.session.of("sendPhoto", BOB.id)[0].params["photo"] == "AgACAgIAAxkBAAIB"


async def test_picture_deleted_before_sending_is_a_dead_letter(harness: BotHarness, tmp_path: Path) -> None:
    poster = tmp_path / "gone.png"
    poster.write_bytes(PNG)
    [alice] = await partners(harness, ALICE)
    async with UnitOfWork(harness.sessionmaker) as uow:
        await enqueue_photo(uow, harness.ctx, recipient=alice, dedupe_key="gone", photo=poster)
    poster.unlink()
    await harness.drain_outbox()
    async with harness.sessionmaker() as s:
        dead = (await s.execute(select(OutboxMessage))).scalar_one()
    assert dead.status == "dead" and dead.last_error == f"media file missing: {poster.resolve()}"


async def test_text_with_inline_keyboard_in_html(harness: BotHarness) -> None:
    [alice] = await partners(harness, ALICE)
    async with UnitOfWork(harness.sessionmaker) as uow:
        await enqueue_text(
            uow, harness.ctx, recipient=alice, dedupe_key="kb", text="<i>Pick</i> one", reply_markup=KEYBOARD
        )
    harness.session.clear()
    await harness.drain_outbox()
    [call] = harness.session.of("sendMessage", ALICE.id)
    assert (call.text, call.params["parse_mode"]) == ("<i>Pick</i> one", "HTML")
    assert call.buttons() == [{"text": "Open", "callback_data": "open:1"}]


# ---------------------------------------------------------------- several senders


async def test_two_senders_send_each_of_200_rows_exactly_once(harness: BotHarness) -> None:
    """PostgreSQL: SKIP LOCKED claims; SQLite: each claim is one atomic UPDATE … RETURNING (writers serialise)."""
    rates = DeliveryRates.for_rate(1000, paid_broadcast=True)
    pair = [
        sender_for(harness, DeliveryLimiter.in_memory(harness.clock, rates), latency=0.001, batch_size=20) for _ in "ab"
    ]
    await enqueue_plain(harness, list(range(1, 201)))

    async def drain(sender: OutboxSender) -> None:
        for _ in range(200):
            if not await sender.drain_once() and not await count(harness, "pending", "sending"):
                return
            await asyncio.sleep(0)

    await asyncio.gather(*(drain(sender) for sender, _ in pair))
    chats = [call.chat_id for _, session in pair for call in session.calls]
    assert len(chats) == 200 and set(chats) == set(range(1, 201))
    assert all(session.calls for _, session in pair)  # both senders took part
    assert await count(harness, "sent") == 200


async def test_a_row_is_marked_sent_while_the_rest_of_its_round_is_in_flight(harness: BotHarness) -> None:
    release = asyncio.Event()

    class SlowSecondCall(TimedSession):
        async def make_request(
            self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
        ) -> TelegramType:
            if getattr(method, "chat_id", None) == 2:
                await release.wait()
            return await super().make_request(bot, method, timeout)

    session = SlowSecondCall(harness)
    bot = Bot("123456:TEST-token", session=session, default=DefaultBotProperties(parse_mode="HTML"))
    sender = OutboxSender(harness.sessionmaker, bot, harness.clock, sleep=harness.pass_time)
    await enqueue_plain(harness, [1, 2])
    round_task = asyncio.create_task(sender.drain_once())
    for _ in range(200):
        if await count(harness, "sent") == 1:
            break
        await asyncio.sleep(0.01)
    assert (await count(harness, "sent"), await count(harness, "sending")) == (1, 1)
    release.set()
    assert await round_task == 2
    assert await count(harness, "sent") == 2


# ---------------------------------------------------------------- /stats delivery


async def test_stats_delivery_shows_counts_and_top_dead_reasons(harness: BotHarness) -> None:
    await harness.send(ADMIN, "/start")
    await enqueue_plain(harness, list(range(1, 11)))
    day_ago = harness.clock.now() - timedelta(days=2)
    async with harness.sessionmaker() as s, s.begin():
        table = Table("outbox", OutboxMessage.metadata)
        for ids, values in (
            ((1, 2, 3), {"status": "sent"}),
            ((4,), {"status": "sending"}),
            ((5, 6, 7), {"status": "dead", "last_error": "403 Forbidden: bot was blocked by the user"}),
            ((8,), {"status": "dead", "last_error": 'Bad Request: unsupported start tag "<x>"'}),
            ((1, 5, 6), {"created_at": day_ago}),
        ):
            keys = [f"t:{i - 1}" for i in ids]
            await s.execute(update(table).where(table.c.dedupe_key.in_(keys)).values(**values))
    harness.session.clear()
    await harness.send(ADMIN, "/stats delivery")
    t = harness.translator.texts("en")
    expected = "\n".join(
        [
            t("stats.delivery.title"),
            t("stats.delivery.header", days=30),
            t("stats.delivery.line", status=t("stats.status.pending"), total=2, day=2),
            t("stats.delivery.line", status=t("stats.status.sending"), total=1, day=1),
            t("stats.delivery.line", status=t("stats.status.sent"), total=3, day=2),
            t("stats.delivery.line", status=t("stats.status.dead"), total=4, day=2),
            t("stats.delivery.reasons"),
            t("stats.delivery.reason", count=3, reason="403 Forbidden: bot was blocked by the user"),
            t("stats.delivery.reason", count=1, reason='Bad Request: unsupported start tag "<x>"'),
        ]
    )
    assert harness.session.texts(ADMIN.id) == [expected]
    assert "&lt;x&gt;" in expected


async def test_stats_with_an_unknown_section_shows_usage(harness: BotHarness) -> None:
    """(/stats alone is the behaviour dashboard: tests/flows/test_behaviour.py.)"""
    await harness.send(ADMIN, "/start")
    harness.session.clear()
    await harness.send(ADMIN, "/stats money")
    assert harness.session.texts(ADMIN.id) == [harness.t("en", "stats.usage")]


async def test_empty_outbox_has_no_dead_letters(harness: BotHarness) -> None:
    await harness.send(ADMIN, "/start")
    harness.session.clear()
    await harness.send(ADMIN, "/stats delivery")
    [text] = harness.session.texts(ADMIN.id)
    assert text.endswith(harness.t("en", "stats.delivery.no_dead"))


async def test_partners_are_refused_stats_and_audited(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ALICE, "/stats delivery")
    assert harness.session.texts(ALICE.id) == [harness.t("en", "denied.admin")]
    async with harness.sessionmaker() as s:
        entry = (await s.execute(select(AuditEntry).where(AuditEntry.action == "stats"))).scalar_one()
    assert (entry.actor_tg_id, entry.outcome) == (ALICE.id, "denied")


async def test_bulk_enqueue_counts_new_rows_and_skips_known_keys(harness: BotHarness) -> None:
    """enqueue_many (on PostgreSQL one INSERT … SELECT FROM unnest of arrays, whatever the row count): rows come out
    as they went in (payload, NULL partner, urgent flag, times), keys already queued or repeated in the batch are
    skipped, and the count says how many were added."""
    h = harness
    now = h.clock.now()

    def row(key: str, *, urgent: bool = False) -> dict[str, Any]:
        payload = {"text": f"<b>{key}</b> 你好", "parse_mode": "HTML", "reply_markup": {"inline_keyboard": []}}
        return {
            "dedupe_key": key,
            "chat_id": 7_000_000_000 + len(key),
            "partner_id": None,
            "kind": "text",
            "payload": payload,
            "urgent": urgent,
            "not_before": now + timedelta(minutes=5),
            "created_at": now,
        }

    async with UnitOfWork(h.sessionmaker) as uow:
        assert await uow.outbox.enqueue_many([row("a"), row("bb", urgent=True)]) == 2
    async with UnitOfWork(h.sessionmaker) as uow:  # a replay, and a key twice in one batch
        assert await uow.outbox.enqueue_many([row("a"), row("ccc"), row("ccc"), row("dddd")]) == 2
    async with h.sessionmaker() as s:
        stored = {m.dedupe_key: m for m in (await s.execute(select(OutboxMessage))).scalars()}
    assert sorted(stored) == ["a", "bb", "ccc", "dddd"]
    bb = stored["bb"]
    assert bb.payload == row("bb")["payload"] and bb.urgent and bb.partner_id is None
    assert (bb.status, bb.attempts, bb.chat_id) == ("pending", 0, 7_000_000_002)
    assert bb.not_before == now + timedelta(minutes=5) and bb.created_at == now
