"""Tier 3: the real bot process under process-level faults (issue 9 §2).

- PostgreSQL goes away for 10 s while partners keep typing: each gets the polite error in their language, nothing
  is half-written, and the same commands work again after the database returns, without a restart.
- Redis goes away: every update gets the polite error (the user's FSM lock lives in Redis), the scheduler leader
  steps down and the outbox pauses, with log lines saying so; the process recovers by itself.
- `kill -9` while many signed orders are being settled: after a restart and a full replay every order exists once
  and the ledger holds each commission once and balances.
- `kill -9` while webhook updates are being delivered: after a restart every update is handled (the webhook answers
  only once an update was handled, so Telegram redelivers the unanswered ones), and only the one in flight can be
  answered twice.

The databases and Redis are reached through `tests.support.faultproxy.FaultProxy`, which the tests cut and restore.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.events import EventType
from bot.i18n import Translator
from bot.sandbox.client import EmulatorClient, TgUser, wait_for
from bot.sandbox.emulator import BotAPIEmulator
from storage.db import create_engine, create_sessionmaker
from storage.uow import UnitOfWork
from tests.e2e.conftest import BotProcess, bot_env
from tests.e2e.test_bot_process import plain
from tests.e2e.test_commission import signed_post
from tests.e2e.test_fleet import forget_handled_updates
from tests.scheduling.conftest import wait_until
from tests.support.databases import postgres_database
from tests.support.faultproxy import FaultProxy
from tests.support.services import PG_HOST, PG_PORT, REDIS_HOST, REDIS_PORT, require_service

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

TEXTS = Translator.load("en")
EN, ZH = TEXTS.texts("en"), TEXTS.texts("zh")
ALICE = TgUser(id=701, first_name="Alice", language_code="en")
BOB = TgUser(id=702, first_name="Bob", language_code="zh-hans")
OUTAGE_SECONDS = 10.0
REPLY_TIMEOUT = 30.0
SHOP_SECRET = "fault-shop-secret"


# ---------------------------------------------------------------------- helpers


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL database; the bot migrates it at start-up."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    with postgres_database("pa_faults", migrate=False) as url:
        yield url


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[AsyncEngine]:
    """The test's own engine on the database, never through a proxy."""
    engine = create_engine(pg_url)
    yield engine
    await engine.dispose()


def through(url: str, proxy: FaultProxy) -> str:
    """The same URL with the proxy's port."""
    return make_url(url).set(port=proxy.port).render_as_string(hide_password=False)


async def reply(client: EmulatorClient, user: TgUser, message: str, expect: str) -> str:
    """Send `message` as `user` and return the text of the bot's first answer containing `expect`."""
    sent = await client.send_message(user, message)
    answer = await client.wait_for_bot_message(
        user.id, lambda m: m["message_id"] > sent["message_id"] and expect in plain(m), timeout=REPLY_TIMEOUT
    )
    return plain(answer)


async def reply_either(client: EmulatorClient, user: TgUser, message: str, *expected: str) -> str:
    """Send `message` and return the bot's answer: the first one containing one of `expected`, or the polite error."""
    generic = (EN if user.language_code == "en" else ZH)("error.generic")
    sent = await client.send_message(user, message)
    answer = await client.wait_for_bot_message(
        user.id,
        lambda m: m["message_id"] > sent["message_id"] and any(e in plain(m) for e in (*expected, generic)),
        timeout=REPLY_TIMEOUT,
    )
    return generic if generic in plain(answer) else plain(answer)


async def count(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


def log_lines(bot: BotProcess, *needles: str) -> list[str]:
    return [line for line in bot.logs().splitlines() if any(needle in line for needle in needles)]


async def healthz(bot: BotProcess) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{bot.web_port}/healthz") as response:
        return response.status, await response.json()


# ---------------------------------------------------------------------- 1. the database goes away


async def test_database_outage_gets_polite_errors_and_the_bot_recovers_by_itself(
    emulator: BotAPIEmulator, client: EmulatorClient, pg_url: str, db: AsyncEngine, tmp_path: Path
) -> None:
    async with FaultProxy(PG_HOST, PG_PORT) as proxy:
        bot = BotProcess(bot_env(emulator, through(pg_url, proxy)), [], tmp_path / "bot.log")
        await bot.start()
        try:
            await reply(client, ALICE, "/start", "Welcome to Partner Assistant")
            await reply(client, BOB, "/start", "欢迎加入伙伴助手")
            await reply(client, ALICE, "/lead Wang 13800138000 met at the fair", EN("leads.added", number=1))
            assert await count(db, "SELECT count(*) FROM leads") == 1

            loop = asyncio.get_running_loop()
            proxy.cut()
            cut_at = loop.time()
            errors: list[tuple[float, str]] = []
            attempt = 0
            while loop.time() - cut_at < OUTAGE_SECONDS:
                attempt += 1
                for user, t in ((ALICE, EN), (BOB, ZH)):
                    for command in ("/today", f"/lead Li{attempt} 1390000{attempt:04d}"):
                        answer = await reply(client, user, command, t("error.generic"))
                        errors.append((loop.time() - cut_at, command))
                        assert "Traceback" not in answer and "Error" not in answer, answer
                await asyncio.sleep(0.2)  # partners type; they do not hammer
            proxy.restore()
            print(f"outage {loop.time() - cut_at:.1f}s: {len(errors)} polite errors, {proxy.refused} connections reset")
            assert await count(db, "SELECT count(*) FROM leads") == 1, "a failed /lead left a row behind"

            # the same commands work again on the same process
            restored_at = loop.time()
            await reply(client, ALICE, "/lead Zhao 13700137000", EN("leads.added", number=2))
            print(f"first command after the restore answered in {loop.time() - restored_at:.2f}s")
            await reply(client, BOB, "/lead Sun 13600136000", ZH("leads.added", number=1))
            await reply(client, ALICE, "/today", EN("content.today.empty"))
            await reply(client, BOB, "/today", ZH("content.today.empty"))
            assert await count(db, "SELECT count(*) FROM leads") == 3
            # the scheduler's PostgreSQL advisory lock went with its connection; the leader is back by itself too
            assert log_lines(bot, "no longer the scheduler leader: the leader lock could not be renewed")
            await wait_until(lambda: len(log_lines(bot, "now the scheduler leader (postgres lock)")) >= 2, timeout=30)
            print(f"scheduler leader again {loop.time() - restored_at:.1f}s after the restore")
            assert bot.process is not None and bot.process.returncode is None
        finally:
            rc = await bot.stop()
    print("\n".join(log_lines(bot, "ERROR", "WARNING")[:12]))
    assert rc == 0, bot.logs()


# ---------------------------------------------------------------------- 2. Redis goes away


async def test_redis_outage_fails_closed_with_clear_logs_and_recovers(
    emulator: BotAPIEmulator, client: EmulatorClient, redis_url: str, tmp_path: Path
) -> None:
    """With REDIS_URL the FSM storage and its per-user lock, the update dedupe, the flood counter, the outbox rate
    limiter and the scheduler leader lock all live in Redis. Without Redis an update cannot take the user's FSM lock,
    so every partner gets the polite error (nothing runs unlocked); the outbox pauses; the leader steps down at its
    next renewal. All of it resumes by itself when Redis is back."""
    await forget_handled_updates(redis_url)
    direct = Redis.from_url(redis_url)
    fsm_lock = f"fsm:{ALICE.id}:{ALICE.id}:lock"
    await direct.delete(f"fsm:{ALICE.id}:{ALICE.id}:state", f"fsm:{ALICE.id}:{ALICE.id}:data", fsm_lock)

    async def fsm_unlocked() -> bool:
        return not await direct.exists(fsm_lock)

    async with FaultProxy(REDIS_HOST, REDIS_PORT) as proxy:
        env = bot_env(
            emulator,
            f"sqlite+aiosqlite:///{tmp_path / 'redis-outage.db'}",
            REDIS_URL=f"redis://127.0.0.1:{proxy.port}/{redis_url.rsplit('/', 1)[1]}",
            SCHEDULER_LOCK_TTL_SECONDS="3",
        )
        bot = BotProcess(env, [], tmp_path / "bot.log")
        await bot.start()
        loop = asyncio.get_running_loop()
        try:
            await wait_until(lambda: bool(log_lines(bot, "now the scheduler leader (redis lock)")), timeout=30)
            await reply(client, ALICE, "/start", "Welcome to Partner Assistant")
            await reply(client, ALICE, "/lead Wang 13800138000", EN("leads.added", number=1))
            # The reply goes out before the handler returns and the user's FSM lock (aiogram's RedisEventIsolation) is
            # released. A cut in between leaves the lock in Redis for its whole 60 s timeout, and this user's next
            # updates wait for it: that is a separate finding, not what this test is about, so let the release land.
            await wait_until(fsm_unlocked, timeout=30)

            proxy.cut()
            cut_at = loop.time()
            sent = await client.send_message(ALICE, "/today")
            answer = await client.wait_for_bot_message(
                ALICE.id, lambda m: m["message_id"] > sent["message_id"], timeout=REPLY_TIMEOUT
            )
            assert plain(answer) == EN("error.generic"), plain(answer)
            print(f"/today during the outage answered after {loop.time() - cut_at:.1f}s: {plain(answer)!r}")
            await wait_until(lambda: bool(log_lines(bot, "no longer the scheduler leader")), timeout=30)
            print(f"deposed {loop.time() - cut_at:.1f}s after the cut")
            assert log_lines(bot, "scheduler leader lock renew (redis) failed")
            # the update failed taking the user's FSM lock, before any handler, dedupe check or transaction
            assert log_lines(bot, f"handlers.errors update {sent['update_id']} failed")
            assert log_lines(bot, "redis.exceptions.ConnectionError")
            assert log_lines(
                bot, "this process is no longer the scheduler leader: the leader lock could not be renewed"
            )
            status, report = await healthz(bot)
            assert status == 503, report
            assert report["redis"].startswith("error") and report["scheduler"] == "standby", report
            assert report["db"] == "ok" and report["status"] == "degraded", report

            proxy.restore()
            restored_at = loop.time()
            await wait_until(lambda: len(log_lines(bot, "now the scheduler leader (redis lock)")) >= 2, timeout=30)
            print(f"leader again {loop.time() - restored_at:.1f}s after the restore")
            # Connections pooled before the outage are checked and retried (storage.redis.redis_client), so no
            # update should get the polite error once Redis is back.
            failed_after_restore = 0
            # (If only the FSM lock's release fails, the lead was saved and the retry finds it: the duplicate prompt.)
            for command, expected in (
                ("/lead Zhao 13700137000", (EN("leads.added", number=2), EN("leads.duplicate", number=2, name="Zhao"))),
                ("/today", (EN("content.today.empty"),)),
            ):
                while await reply_either(client, ALICE, command, *expected) == EN("error.generic"):
                    failed_after_restore += 1
                    assert failed_after_restore <= 10, "commands kept failing after Redis came back"
            assert failed_after_restore == 0, f"{failed_after_restore} commands failed after Redis came back"
            print(
                f"commands answered normally {loop.time() - restored_at:.1f}s after the restore,"
                f" after {failed_after_restore} more polite errors"
            )
            assert (await healthz(bot))[0] == 200
            engine = create_engine(env["DATABASE_URL"])
            try:
                assert await count(engine, "SELECT count(*) FROM leads") == 2
            finally:
                await engine.dispose()
        finally:
            rc = await bot.stop()
            await direct.aclose()
    print("\n".join(log_lines(bot, "WARNING", "leader", "handlers.errors")[:20]))
    assert rc == 0, bot.logs()


# ---------------------------------------------------------------------- 3. kill -9 during settlement


ORDERS = 150
IN_FLIGHT = 10  # the shop's concurrent requests: orders settle in small batches, so the kill lands between them
KILL_AFTER = 30
AMOUNT_MINOR = 10_000  # ¥100.00: 10% to the partner (L1), 3% to their upline (L2)


def order_body(n: int, partner_code: str) -> dict[str, Any]:
    return {
        "order_id": f"K{n:04d}",
        "partner_code": partner_code,
        "customer_id": f"cust-{n}",  # one order per customer: no velocity flags
        "currency": "CNY",
        "amount": "100.00",
        "items": [{"sku": "TEA-1", "category": "tea", "quantity": 1, "unit_price": "100.00"}],
        "paid_at": datetime.now(UTC).isoformat(),
    }


async def test_kill_9_during_settlement_then_replay_settles_every_order_once(
    emulator: BotAPIEmulator, client: EmulatorClient, pg_url: str, db: AsyncEngine, tmp_path: Path
) -> None:
    env = bot_env(emulator, pg_url, ORDERS_API_SECRET=SHOP_SECRET)
    port = env["WEB_PORT"]
    first = BotProcess(env, [], tmp_path / "first.log")
    await first.start()
    try:
        welcome = await reply(client, ALICE, "/start", "Your invite code")
        alice_code = re.search(r"Your invite code: (\w+)", welcome).group(1)  # type: ignore[union-attr]
        welcome = await reply(client, BOB, f"/start {alice_code}", "你的邀请码")
        bob_code = re.search(r"你的邀请码：(\w+)", welcome).group(1)  # type: ignore[union-attr]
        bodies = [order_body(n, bob_code) for n in range(ORDERS)]

        first_round: dict[str, int] = {}
        assert first.process is not None
        process = first.process
        slots = asyncio.Semaphore(IN_FLIGHT)
        killed: list[bool] = []

        async def post(body: dict[str, Any]) -> None:
            async with slots:
                try:
                    status, _ = await signed_post(port, "/api/orders", body, secret=SHOP_SECRET)
                except aiohttp.ClientError:
                    status = 0  # the connection died with the process
            first_round[body["order_id"]] = status
            if not killed and sum(s in (200, 201) for s in first_round.values()) >= KILL_AFTER:
                killed.append(True)
                process.send_signal(signal.SIGKILL)

        await asyncio.gather(*(post(body) for body in bodies))
        await process.wait()
        acked = {order_id for order_id, status in first_round.items() if status in (200, 201)}
        print(f"before the kill: {len(acked)} of {ORDERS} orders acknowledged, {Counter(first_round.values())}")
        assert len(acked) < ORDERS, "every order was settled before the kill; raise ORDERS"
    finally:
        await first.stop()  # closes the log of the killed process, or stops it if the test failed first
    committed_before = await count(db, "SELECT count(*) FROM orders")

    second = BotProcess(env, [], tmp_path / "second.log")
    await second.start()
    try:
        replay: dict[str, int] = {}

        async def again(body: dict[str, Any]) -> None:
            async with slots:
                status, _ = await signed_post(port, "/api/orders", body, secret=SHOP_SECRET)
            replay[body["order_id"]] = status

        await asyncio.gather(*(again(body) for body in bodies))
    finally:
        rc = await second.stop()
    print(f"committed at the kill: {committed_before}; replay: {Counter(replay.values())}")
    assert set(replay.values()) <= {200, 201}, replay
    assert all(replay[order_id] == 200 for order_id in acked), "an acknowledged order was settled again"
    assert sum(status == 200 for status in replay.values()) == committed_before

    assert await count(db, "SELECT count(*) FROM orders") == ORDERS
    assert await count(db, "SELECT count(DISTINCT external_id) FROM orders") == ORDERS
    async with db.connect() as conn:
        per_partner = {
            row.partner_id: (row.n, row.total)
            for row in await conn.execute(
                text(
                    "SELECT p.tg_user_id AS partner_id, count(*) AS n, sum(e.amount_minor) AS total"
                    " FROM ledger_entries e JOIN partners p ON p.id = e.partner_id"
                    " WHERE e.kind = 'commission' GROUP BY p.tg_user_id"
                )
            )
        }
        unbalanced = (
            await conn.execute(text("SELECT txn FROM ledger_entries GROUP BY txn HAVING sum(amount_minor) <> 0"))
        ).all()
        lines_per_order = Counter(
            row.n
            for row in await conn.execute(
                text("SELECT count(*) AS n FROM ledger_entries WHERE order_id IS NOT NULL GROUP BY order_id")
            )
        )
    assert per_partner == {
        BOB.id: (ORDERS, ORDERS * AMOUNT_MINOR * 10 // 100),
        ALICE.id: (ORDERS, ORDERS * AMOUNT_MINOR * 3 // 100),
    }, per_partner
    assert unbalanced == []
    assert len(lines_per_order) == 1 and sum(lines_per_order.values()) == ORDERS, lines_per_order
    assert rc == 0, second.logs()
    assert "Traceback" not in second.logs(), second.logs()


# ---------------------------------------------------------------------- 4. kill -9 during webhook delivery


PARTNERS = 40


async def test_kill_9_during_webhook_delivery_then_every_update_is_handled(tmp_path: Path) -> None:
    # Telegram keeps retrying an unacknowledged update for a long time; so does this emulator.
    async with (
        BotAPIEmulator(files_dir=tmp_path / "files", webhook_attempts=1000, webhook_retry_delay=0.05) as emulator,
        EmulatorClient(emulator.base_url) as client,
    ):
        env = bot_env(emulator, f"sqlite+aiosqlite:///{tmp_path / 'hook.db'}", WEBHOOK_SECRET="hook-secret")
        env["WEBHOOK_URL"] = f"http://127.0.0.1:{env['WEB_PORT']}/webhook"
        first = BotProcess(env, ["--webhook"], tmp_path / "first.log")
        await first.start()
        await wait_until(lambda: _webhook_set(client), timeout=30)
        users = [TgUser(id=8000 + n, first_name=f"P{n}", language_code="en") for n in range(PARTNERS)]
        for user in users:
            await client.send_message(user, "/start")

        async def welcomes(user: TgUser) -> list[str]:
            """The answers to /start: a welcome the first time, a welcome back on any further handling."""
            texts = [plain(m) for m in await client.bot_messages(user.id)]
            return [t for t in texts if t.startswith(("👋 Welcome to Partner Assistant", "👋 Welcome back"))]

        async def welcomed() -> int:
            return sum([bool(await welcomes(user)) for user in users])

        async def some_welcomed() -> bool | None:
            return True if await welcomed() >= PARTNERS // 4 else None

        try:
            await wait_for(some_welcomed, timeout=60)
            assert first.process is not None
            first.process.send_signal(signal.SIGKILL)
            await first.process.wait()
            before = await welcomed()
            print(f"welcomed before the kill: {before} of {PARTNERS}")
            assert before < PARTNERS, "every update was handled before the kill; raise PARTNERS"
        finally:
            await first.stop()

        second = BotProcess(env, ["--webhook"], tmp_path / "second.log")
        await second.start()
        try:

            async def everyone() -> bool | None:
                return True if await welcomed() == PARTNERS else None

            await wait_for(everyone, timeout=90)
            assert await client.wait_idle(quiet_ms=500, timeout=30)
            copies = Counter([len(await welcomes(user)) for user in users])
        finally:
            rc = await second.stop()
    print(f"answers to /start per partner: {dict(copies)}")
    # Every update was handled. The emulator delivers one update at a time, so at most the one in flight at the kill
    # can be handled twice (answered, then killed before its 200 went out): without Redis the update dedupe is this
    # process's memory, which the kill wipes. Its registration was committed once either way.
    assert set(copies) <= {1, 2} and copies[2] <= 1, copies
    engine = create_engine(env["DATABASE_URL"])
    try:
        async with UnitOfWork(create_sessionmaker(engine)) as uow:
            assert await uow.events.count(type=EventType.REGISTERED) == PARTNERS
    finally:
        await engine.dispose()
    assert rc == 0, second.logs()


async def _webhook_set(client: EmulatorClient) -> bool:
    return bool((await client.webhook()).get("url"))
