"""Tier 2: the outbox sender's outcomes for each kind of Bot API answer, and dedupe keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.delivery.sender import STALE_CLAIM, backoff_seconds
from bot.services.notify import enqueue_text
from storage.models import OutboxMessage, Partner
from storage.uow import UnitOfWork
from tests.support.harness import BotHarness, tg_user

ALICE = tg_user(101, "Alice", lang="en")


async def queue_for_alice(h: BotHarness, key: str = "test:1") -> bool:
    await h.send(ALICE, "/start")
    async with UnitOfWork(h.sessionmaker) as uow:
        alice = await uow.partners.by_tg_id(ALICE.id)
        assert alice is not None
        return await enqueue_text(uow, h.ctx, recipient=alice, dedupe_key=key, text="<b>hi</b>")


async def row(h: BotHarness, key: str = "test:1") -> OutboxMessage:
    async with h.sessionmaker() as s:
        return (await s.execute(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))).scalar_one()


async def test_sent_row_records_message_id(harness: BotHarness) -> None:
    assert await queue_for_alice(harness)
    assert await harness.drain_outbox() == 1
    sent = await row(harness)
    assert sent.status == "sent" and sent.telegram_message_id and sent.sent_at == harness.clock.now()
    assert harness.session.of("sendMessage", ALICE.id)[-1].params["parse_mode"] == "HTML"
    assert await harness.drain_outbox() == 0


async def test_same_dedupe_key_enqueues_once(harness: BotHarness) -> None:
    assert await queue_for_alice(harness)
    assert not await queue_for_alice(harness)
    async with harness.sessionmaker() as s:
        assert len((await s.execute(select(OutboxMessage))).scalars().all()) == 1


async def test_429_pauses_the_bot_exactly_retry_after(harness: BotHarness) -> None:
    await queue_for_alice(harness)
    harness.session.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    await harness.drain_outbox()
    retry = await row(harness)
    assert retry.status == "pending" and retry.not_before == harness.clock.now() + timedelta(seconds=7)
    assert await harness.sender.limiter.paused_for() == 7.0
    assert await harness.drain_outbox() == 0  # paused, and not due yet
    harness.clock.advance(timedelta(seconds=7))
    assert await harness.drain_outbox() == 1
    assert (await row(harness)).status == "sent"


async def test_5xx_backs_off_exponentially(harness: BotHarness) -> None:
    await queue_for_alice(harness)
    harness.session.fail_next("sendMessage", 502, "Bad Gateway")
    await harness.drain_outbox()
    first = await row(harness)
    assert first.status == "pending" and first.attempts == 1
    assert first.not_before == harness.clock.now() + timedelta(seconds=backoff_seconds(1))
    assert [backoff_seconds(n) for n in (1, 2, 3, 20)] == [2.0, 4.0, 8.0, 300.0]


async def test_403_dead_letters_and_marks_partner_unreachable_until_they_write(harness: BotHarness) -> None:
    await queue_for_alice(harness)
    harness.session.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
    await harness.drain_outbox()
    dead = await row(harness)
    assert dead.status == "dead" and dead.last_error and dead.last_error.startswith("403")
    async with harness.sessionmaker() as s:
        assert (await s.execute(select(Partner.unreachable).where(Partner.tg_user_id == ALICE.id))).scalar_one()
    await harness.send(ALICE, "/help")
    async with harness.sessionmaker() as s:
        assert not (await s.execute(select(Partner.unreachable).where(Partner.tg_user_id == ALICE.id))).scalar_one()


async def test_400_dead_letters_with_reason(harness: BotHarness) -> None:
    await queue_for_alice(harness)
    harness.session.fail_next("sendMessage", 400, "Bad Request: chat not found")
    await harness.drain_outbox()
    dead = await row(harness)
    assert dead.status == "dead" and dead.last_error == "400 Bad Request: chat not found"


async def test_rows_left_claimed_by_a_crash_are_released(harness: BotHarness) -> None:
    await queue_for_alice(harness)
    async with UnitOfWork(harness.sessionmaker) as uow:
        assert len(await uow.outbox.claim_due(harness.clock.now(), 10)) == 1  # a sender claims, then dies
    assert await harness.drain_outbox() == 0
    harness.clock.advance(STALE_CLAIM + timedelta(seconds=1))
    assert await harness.sender.release_stale() == 1
    assert await harness.drain_outbox() == 1
    assert (await row(harness)).status == "sent"


async def test_media_rows_upload_once_and_keep_telegrams_file_id(harness: BotHarness, tmp_path: Any) -> None:
    from bot.services.notify import enqueue_media
    from storage.models import TelegramFile

    picture, clip = tmp_path / "p.jpg", tmp_path / "c.mp4"
    picture.write_bytes(b"\xff\xd8jpeg")
    clip.write_bytes(b"mp4")
    await harness.send(ALICE, "/start")
    async with UnitOfWork(harness.sessionmaker) as uow:
        alice = await uow.partners.by_tg_id(ALICE.id)
        assert alice is not None
        for key, kind, path in (("m:photo", "photo", picture), ("m:video", "video", clip)):
            await enqueue_media(
                uow, harness.ctx, recipient=alice, dedupe_key=key, kind=kind, file_id=None, path=path,
                caption="<b>x</b>", file_key=f"file:{kind}",
            )  # fmt: skip
    harness.session.clear()
    await harness.drain_outbox()
    await harness.pass_time(2)
    await harness.drain_outbox()
    assert [c.method for c in harness.session.calls] == ["sendPhoto", "sendVideo"]
    async with harness.sessionmaker() as s:
        files = {f.key: f.file_id for f in (await s.execute(select(TelegramFile))).scalars()}
    assert files["file:photo"].startswith("photo-") and files["file:video"].startswith("video-")
