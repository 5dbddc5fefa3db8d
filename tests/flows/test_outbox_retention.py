"""Tier 2: outbox retention. The daily `outbox:prune` job deletes rows sent, dead-lettered or cancelled more than
OUTBOX_RETENTION_DAYS ago and nothing else; what used to be read from such rows for good (a finished broadcast's
numbers, whether an admin was told of a closed pool period) is kept elsewhere, so deleting them changes no answer
and sends nothing twice."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.config import ConfigError, load_settings
from bot.scheduling import jobs as job_module
from bot.scheduling import running_with
from bot.scheduling.jobs import prune_outbox
from bot.services.broadcasts import BroadcastService
from bot.services.digests import NUDGE_EVERY_DAYS
from bot.services.notify import enqueue_photo, enqueue_text
from bot.services.registry import UseCases
from storage.models import Broadcast, OutboxMessage, PoolPreviewSent
from storage.uow import UnitOfWork
from tests.flows.test_broadcasts import ROOT, broadcast_id, members, press_data, report
from tests.flows.test_pools import ADMIN
from tests.flows.test_pools import partner as partner_of
from tests.flows.test_pools import setup as pool_setup
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ALICE = tg_user(101, "Alice", lang="en")
DAY = timedelta(days=1)


async def prune(h: BotHarness) -> None:
    with running_with(h.job_runtime()):
        await prune_outbox()


async def keys(h: BotHarness) -> set[str]:
    async with h.sessionmaker() as s:
        return set((await s.execute(select(OutboxMessage.dedupe_key))).scalars())


async def queue(h: BotHarness, key: str, *, urgent: bool = True) -> None:
    async with UnitOfWork(h.sessionmaker) as uow:
        alice = await uow.partners.by_tg_id(ALICE.id)
        assert alice is not None
        assert await enqueue_text(uow, h.ctx, recipient=alice, dedupe_key=key, text=key, urgent=urgent)


async def send_all(h: BotHarness) -> None:
    """Drain what is due, a second at a time (one chat gets about a message a second)."""
    for _ in range(5):
        await h.drain_outbox()
        h.clock.advance(timedelta(seconds=1))


async def test_finished_rows_older_than_the_retention_go_and_nothing_else(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_module, "PRUNE_OUTBOX_BATCH", 2)  # several batches, each its own transaction
    await harness.send(ALICE, "/start")
    for key in ("old:sent:1", "old:sent:2", "old:sent:3"):
        await queue(harness, key)
        await send_all(harness)
    await queue(harness, "old:dead")
    harness.session.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
    await send_all(harness)
    await harness.send(ALICE, "/help")  # writing again makes her reachable
    await queue(harness, "old:pending")  # due in 40 days' time: still waiting when the others are old
    async with harness.sessionmaker() as s:
        await s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.dedupe_key == "old:pending")
            .values(not_before=harness.clock.now() + 40 * DAY)
        )
        await s.commit()
    statuses = await _statuses(harness)
    assert sorted(statuses.values()) == ["dead", "pending", "sent", "sent", "sent"], statuses

    harness.clock.advance(29 * DAY)
    await queue(harness, "recent:sent")
    await send_all(harness)
    await prune(harness)  # nothing is 30 days old yet
    assert len(await keys(harness)) == 6

    harness.clock.advance(2 * DAY)
    await prune(harness)
    assert await keys(harness) == {"old:pending", "recent:sent"}
    await prune(harness)  # a repeated run finds nothing more
    assert await keys(harness) == {"old:pending", "recent:sent"}

    harness.clock.advance(40 * DAY)  # the pending row is sent late and kept its 30 days from then
    await send_all(harness)
    await prune(harness)
    assert await keys(harness) == {"old:pending"}


async def _statuses(h: BotHarness) -> dict[str, str]:
    async with h.sessionmaker() as s:
        rows = await s.execute(select(OutboxMessage.dedupe_key, OutboxMessage.status))
        return {str(key): str(status) for key, status in rows.all()}


async def broadcast_to_everyone(h: BotHarness) -> int:
    """The admin and three members: a broadcast to everyone has four recipients. Its id."""
    await h.send(ROOT, "/start")
    await members(h, 3)
    await h.send(ROOT, "/broadcast")
    await h.send(ROOT, "Hello team")
    await h.press(ROOT, press_data("everyone"))
    await h.press(ROOT, press_data("confirm"))
    return await broadcast_id(h)


async def test_a_broadcasts_rows_stay_while_it_runs_and_its_numbers_outlive_them(harness: BotHarness) -> None:
    bid = await broadcast_to_everyone(harness)
    await harness.drain_outbox()

    harness.clock.advance(31 * DAY)  # sent long ago, but nobody has closed the broadcast yet
    await prune(harness)
    assert {k for k in await keys(harness) if k.startswith(f"broadcast:{bid}:partner:")} != set()

    await report(harness)  # finishes it and keeps its counts
    async with harness.sessionmaker() as s:
        done = (await s.execute(select(Broadcast).where(Broadcast.id == bid))).scalar_one()
    assert done.status == "done" and done.final_counts == {"sent": 4}
    await harness.drain_outbox()
    harness.clock.advance(31 * DAY)
    await prune(harness)
    async with harness.sessionmaker() as s:
        left = await s.scalar(select(func.count()).where(OutboxMessage.broadcast_id == bid))
    assert left == 0

    async with UnitOfWork(harness.sessionmaker) as uow:  # a late Stop press shows the numbers it finished with
        view = await BroadcastService(uow, harness.ctx).cancel(bid)
    assert view.status == "done" and (view.progress.sent, view.progress.failed, view.progress.total) == (4, 0, 4)


async def test_a_cancelled_broadcast_keeps_its_numbers_too(harness: BotHarness) -> None:
    bid = await broadcast_to_everyone(harness)
    await harness.press(ROOT, press_data("stop", str(bid)))
    async with harness.sessionmaker() as s:
        stopped = (await s.execute(select(Broadcast).where(Broadcast.id == bid))).scalar_one()
    assert stopped.status == "cancelled" and stopped.final_counts == {"cancelled": 4}
    harness.clock.advance(31 * DAY)
    await prune(harness)
    async with UnitOfWork(harness.sessionmaker) as uow:
        view = await BroadcastService(uow, harness.ctx).cancel(bid)
    assert (view.progress.cancelled, view.progress.sent) == (4, 0)


async def test_a_pool_preview_is_not_sent_again_once_its_outbox_row_is_gone(harness: BotHarness) -> None:
    await pool_setup(harness)
    async with UnitOfWork(harness.sessionmaker) as uow:
        assert await UseCases(uow, harness.ctx).pools.announce_closed() == 1
    await harness.drain_outbox()
    admin = await partner_of(harness, ADMIN_ID)
    key = f"pool:gold_monthly:2026-11:preview:{admin.id}"
    async with harness.sessionmaker() as s:  # sent 31 days ago, the period still unposted (a quarterly pool's case)
        old = harness.clock.now() - 31 * DAY
        await s.execute(
            update(OutboxMessage).where(OutboxMessage.dedupe_key == key).values(not_before=old, sent_at=old)
        )
        await s.commit()
    await prune(harness)
    assert key not in await keys(harness)
    harness.session.clear()
    async with UnitOfWork(harness.sessionmaker) as uow:
        assert await UseCases(uow, harness.ctx).pools.announce_closed() == 0
    await harness.drain_outbox()
    assert harness.session.of("sendMessage", ADMIN.id) == []
    async with harness.sessionmaker() as s:
        told = (await s.execute(select(PoolPreviewSent))).scalars().all()
    assert [(t.pool, t.period, t.admin_id) for t in told] == [("gold_monthly", "2026-11", admin.id)]


def test_the_retention_is_at_least_two_weeks() -> None:
    """Two producers rely on their outbox row for a while: an admin may re-pick a week's spotlight up to 13 days
    apart, and the dormant-member nudge looks NUDGE_EVERY_DAYS back in the outbox."""
    assert load_settings(outbox_retention_days=14).outbox_retention_days == 14
    assert load_settings().outbox_retention_days == 30
    with pytest.raises(ConfigError, match="OUTBOX_RETENTION_DAYS"):
        load_settings(outbox_retention_days=13)
    assert NUDGE_EVERY_DAYS < 14


PICTURE = b"\x89PNG\r\n\x1a\n" + b"picture"


async def test_pictures_no_waiting_row_sends_go_with_their_rows(
    harness: BotHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness.ctx, "media_dir", tmp_path / "media")
    await harness.send(ALICE, "/start")
    async with UnitOfWork(harness.sessionmaker) as uow:
        alice = await uow.partners.by_tg_id(ALICE.id)
        assert alice is not None
        for key, data in (("sent", PICTURE + b"1"), ("waiting", PICTURE + b"2"), ("again", PICTURE + b"3")):
            assert await enqueue_photo(uow, harness.ctx, recipient=alice, dedupe_key=key, photo=data, urgent=True)
        await uow.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.dedupe_key == "waiting")
            .values(not_before=harness.clock.now() + 60 * DAY)
        )
    await send_all(harness)
    stray = tmp_path / "media" / ".incoming-left-by-a-crash"
    stray.write_bytes(b"half")
    files = {p.name: p for p in (tmp_path / "media").iterdir()}
    # A file's times are the machine's, which the job compares with the app's clock: both are set to now here.
    harness.clock.set(datetime.now(UTC))
    long_ago = (harness.clock.now() - 40 * DAY).timestamp()
    for path in files.values():  # every file was last queued 40 days ago...
        os.utime(path, (long_ago, long_ago))
    async with UnitOfWork(harness.sessionmaker) as uow:  # ...but one is queued again today
        alice = await uow.partners.by_tg_id(ALICE.id)
        assert alice is not None
        assert await enqueue_photo(
            uow, harness.ctx, recipient=alice, dedupe_key="again:2", photo=PICTURE + b"3", urgent=True
        )
    await send_all(harness)

    await prune(harness)
    left = {p.name for p in (tmp_path / "media").iterdir()}
    assert left == {_name(PICTURE + b"2"), _name(PICTURE + b"3")}  # the waiting row's, and the one queued today


def _name(data: bytes) -> str:
    return f"{hashlib.sha256(data).hexdigest()}.png"
