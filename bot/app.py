"""The app factory: builds Bot, Dispatcher, engine, Redis, scheduler and web app, then passes them down.

Nothing in the project is built at import time; `create_app` is the one place where the parts meet.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock, OffsetClock, SystemClock
from bot.config import ConfigError, Settings
from bot.crm import load_stages
from bot.dashboard_http import DashboardEndpoint
from bot.delivery.limiter import DeliveryLimiter, DeliveryRates
from bot.delivery.sender import OutboxSender
from bot.i18n import Translator
from bot.media.posters import PosterRenderer, TemplateError, load_template
from bot.middlewares import NulTextMiddleware, PartnerMiddleware, ThrottleMiddleware, UnitOfWorkMiddleware
from bot.monitoring import ErrorContextMiddleware, Metrics, MetricsEndpoint, UpdateMetricsMiddleware
from bot.orders_http import OrdersEndpoint, install_unconfigured
from bot.rsvp_http import RsvpEndpoint
from bot.scheduling import JobRuntime, JobScheduler, SchedulerState
from bot.scheduling.factory import build_job_scheduler
from bot.scheduling.jobs import (
    ANNOUNCE_POOLS,
    ANNOUNCE_POOLS_CRON,
    ANNOUNCE_POOLS_ID,
    DISPATCH_PACKS,
    DISPATCH_PACKS_ID,
    EVALUATE_LEVELS,
    EVALUATE_LEVELS_CRON,
    EVALUATE_LEVELS_ID,
    EVALUATE_RECENT_LEVELS,
    EVALUATE_RECENT_LEVELS_ID,
    FIRE_LEAD_REMINDERS,
    FIRE_LEAD_REMINDERS_ID,
    NOTIFY_RANK_CHANGES,
    NOTIFY_RANK_CHANGES_ID,
    PICK_SPOTLIGHT,
    PICK_SPOTLIGHT_CRON,
    PICK_SPOTLIGHT_ID,
    PRUNE_OUTBOX,
    PRUNE_OUTBOX_CRON,
    PRUNE_OUTBOX_ID,
    PUSH_LEADERBOARDS,
    PUSH_LEADERBOARDS_ID,
    REFRESH_ROLLUPS,
    REFRESH_ROLLUPS_ID,
    RELEASE_COMMISSION,
    RELEASE_COMMISSION_ID,
    RELEASE_STALE_OUTBOX,
    RELEASE_STALE_OUTBOX_ID,
    REMIND_EVENTS,
    REMIND_EVENTS_ID,
    REPORT_BROADCASTS,
    REPORT_BROADCASTS_EVERY_SECONDS,
    REPORT_BROADCASTS_ID,
    SEGMENTS_DAILY,
    SEGMENTS_DAILY_CRON,
    SEGMENTS_DAILY_ID,
    SEND_TEAM_DIGESTS,
    SEND_TEAM_DIGESTS_ID,
    SWEEP_STREAKS,
    SWEEP_STREAKS_ID,
    SYNC_LEADERBOARDS,
    SYNC_LEADERBOARDS_ID,
    TICK_PLAYBOOKS,
    TICK_PLAYBOOKS_ID,
    TICK_RHYTHM,
    TICK_RHYTHM_ID,
    TICK_SPRINTS,
    TICK_SPRINTS_EVERY_MINUTES,
    TICK_SPRINTS_ID,
)
from bot.services.clicks import ClickDedupe, ClickTracker, MemoryClickDedupe
from bot.services.context import ServiceContext
from bot.services.courses import shipped_courses
from bot.services.leaderboards import shipped_points
from bot.services.ledger import SettlementService
from bot.services.menu import CommandMenu
from bot.services.partners import PartnerService
from bot.services.playbooks import load_playbooks
from bot.services.rhythm import load_rhythms
from bot.services.views import PartnerView
from bot.throttle import MemoryThrottle, Throttle
from bot.update_dedupe import MemoryUpdateDedupe, UpdateDedupe, UpdateDedupeMiddleware
from bot.web import build_web_app
from handlers import build_routers
from storage.click_dedupe import RedisClickDedupe
from storage.db import create_engine, create_sessionmaker
from storage.migrate import upgrade_to_head
from storage.redis import RedisThrottle, redis_client
from storage.uow import UnitOfWork
from storage.update_dedupe import RedisUpdateDedupe

log = logging.getLogger(__name__)

SANDBOX_TOKEN = "123456:SANDBOX-token"  # noqa: S105 - not a secret: the embedded stand-in accepts any token


def build_bot(token: str, api_base: str, session: BaseSession | None = None) -> Bot:
    if session is None:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_base))
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode="HTML"))


def build_dispatcher(
    *,
    ctx: ServiceContext,
    sessionmaker: async_sessionmaker[AsyncSession],
    throttle: Throttle,
    throttle_rate: int,
    on_outbox: Any,
    storage: BaseStorage | None = None,
    events_isolation: BaseEventIsolation | None = None,
    update_dedupe: UpdateDedupe | None = None,
    update_busy: Literal["retry", "take"] = "take",
    posters: PosterRenderer | None = None,
    metrics: Metrics | None = None,
    **workflow_data: Any,
) -> Dispatcher:
    """The dispatcher with every middleware and router, exactly as production and tests use it.

    `posters` defaults to a renderer of the context's poster template."""
    if posters is None:
        posters = PosterRenderer(load_template(ctx.poster_template))
    ctx.poster_template_tag = posters.cache_tag
    shipped_courses()  # reads and checks bot/courses/*.yaml once: a bad course file stops start-up (CourseError)
    shipped_points()  # bot/plans/points.yaml likewise (PointsError)
    dp = Dispatcher(
        storage=storage or MemoryStorage(),
        events_isolation=events_isolation or SimpleEventIsolation(),
        translator=ctx.translator,
        posters=posters,
        **workflow_data,
    )
    # First (inside aiogram's errors middleware): the update_id of every log line, and the update metrics.
    dp.update.outer_middleware(UpdateMetricsMiddleware(metrics))
    dp.errors.outer_middleware(ErrorContextMiddleware())
    # Then: a redelivered update must not count against the flood limit nor open a transaction.
    dp.update.outer_middleware(UpdateDedupeMiddleware(update_dedupe or MemoryUpdateDedupe(), on_busy=update_busy))
    dp.update.outer_middleware(ThrottleMiddleware(throttle, throttle_rate, ctx.translator))
    dp.update.outer_middleware(UnitOfWorkMiddleware(sessionmaker, ctx, on_outbox))
    dp.update.outer_middleware(PartnerMiddleware(ctx.translator))
    dp.update.outer_middleware(NulTextMiddleware())
    dp.include_routers(*build_routers())
    return dp


def build_limiter(settings: Settings, clock: Clock, redis: Redis | None) -> DeliveryLimiter:
    """Telegram's limits for the outbox: shared by every process through Redis when it is configured."""
    paid = settings.allow_paid_broadcast
    rates = DeliveryRates.for_rate(settings.delivery_paid_rate if paid else settings.delivery_rate, paid_broadcast=paid)
    if redis is None:
        return DeliveryLimiter.in_memory(clock, rates)
    return DeliveryLimiter.on_redis(clock, rates, redis)


@dataclass
class BotApp:
    settings: Settings
    bot: Bot
    dispatcher: Dispatcher
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    scheduler: JobScheduler
    sender: OutboxSender
    ctx: ServiceContext
    menu: CommandMenu
    web_app: web.Application
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _runner: web.AppRunner | None = None  # set by start() when the web server runs
    clicks: ClickTracker | None = None
    metrics: Metrics | None = None

    async def health(self) -> dict[str, Any]:
        report: dict[str, Any] = {}
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            report["db"] = "ok"
        except Exception as exc:
            report["db"] = f"error: {type(exc).__name__}"
        if self.redis is None:
            report["redis"] = "not configured"
        else:
            try:
                await self.redis.ping()
                report["redis"] = "ok"
            except Exception as exc:
                report["redis"] = f"error: {type(exc).__name__}"
        report["scheduler"] = self.scheduler.state.value  # leader | standby | stopped
        scheduling = self.scheduler.state is not SchedulerState.STOPPED
        healthy = report["db"] == "ok" and report["redis"] in ("ok", "not configured") and scheduling
        report["status"] = "ok" if healthy else "degraded"
        return report

    async def start(self, *, serve_web: bool = True) -> None:
        """Migrate, learn who the bot is, install menus, start the sender, scheduler and web server."""
        await upgrade_to_head(self.engine)
        async with UnitOfWork(self.sessionmaker) as uow:  # the shipped commission plan is version 1
            await SettlementService(uow, self.ctx).ensure_plan()
        me = await self.bot.get_me()
        self.ctx.bot_username = me.username or ""
        await self.menu.install_defaults()
        await self.menu.install_staff(await self._staff())
        await self.sender.release_stale()
        await self.scheduler.start()
        await self.scheduler.schedule_interval(
            RELEASE_STALE_OUTBOX, RELEASE_STALE_OUTBOX_ID, every=timedelta(minutes=1)
        )
        await self.scheduler.schedule_interval(
            REPORT_BROADCASTS, REPORT_BROADCASTS_ID, every=timedelta(seconds=REPORT_BROADCASTS_EVERY_SECONDS)
        )
        await self.scheduler.schedule_interval(RELEASE_COMMISSION, RELEASE_COMMISSION_ID, every=timedelta(minutes=10))
        await self.scheduler.schedule_interval(FIRE_LEAD_REMINDERS, FIRE_LEAD_REMINDERS_ID, every=timedelta(minutes=1))
        await self.scheduler.schedule_cron(
            EVALUATE_LEVELS, EVALUATE_LEVELS_ID, cron=EVALUATE_LEVELS_CRON, timezone=self.settings.timezone
        )
        await self.scheduler.schedule_cron(
            ANNOUNCE_POOLS, ANNOUNCE_POOLS_ID, cron=ANNOUNCE_POOLS_CRON, timezone=self.settings.timezone
        )
        # The first dispatch soon after start-up (packs due while the bot was down go out then), once the start-up
        # work (stale outbox rows, a resumed broadcast) has had its first writes.
        await self.scheduler.schedule_interval(
            DISPATCH_PACKS,
            DISPATCH_PACKS_ID,
            every=timedelta(minutes=1),
            first_run_at=self.ctx.clock.now() + timedelta(seconds=self.settings.startup_catch_up_seconds),
        )
        await self.scheduler.schedule_interval(REMIND_EVENTS, REMIND_EVENTS_ID, every=timedelta(minutes=1))
        await self.scheduler.schedule_interval(TICK_PLAYBOOKS, TICK_PLAYBOOKS_ID, every=timedelta(minutes=1))
        # The first refresh soon after start-up: after a deploy or restart, today's dashboard numbers are current
        # within seconds rather than after the first full interval.
        await self.scheduler.schedule_interval(
            REFRESH_ROLLUPS,
            REFRESH_ROLLUPS_ID,
            every=timedelta(minutes=5),
            first_run_at=self.ctx.clock.now() + timedelta(seconds=self.settings.startup_catch_up_seconds / 2),
        )
        await self.scheduler.schedule_interval(SEND_TEAM_DIGESTS, SEND_TEAM_DIGESTS_ID, every=timedelta(minutes=5))
        await self.scheduler.schedule_interval(
            EVALUATE_RECENT_LEVELS, EVALUATE_RECENT_LEVELS_ID, every=timedelta(minutes=1)
        )
        await self.scheduler.schedule_interval(SWEEP_STREAKS, SWEEP_STREAKS_ID, every=timedelta(minutes=10))
        await self.scheduler.schedule_interval(SYNC_LEADERBOARDS, SYNC_LEADERBOARDS_ID, every=timedelta(minutes=1))
        await self.scheduler.schedule_interval(NOTIFY_RANK_CHANGES, NOTIFY_RANK_CHANGES_ID, every=timedelta(minutes=10))
        await self.scheduler.schedule_interval(PUSH_LEADERBOARDS, PUSH_LEADERBOARDS_ID, every=timedelta(minutes=5))
        await self.scheduler.schedule_interval(
            TICK_SPRINTS, TICK_SPRINTS_ID, every=timedelta(minutes=TICK_SPRINTS_EVERY_MINUTES)
        )
        await self.scheduler.schedule_cron(
            PICK_SPOTLIGHT, PICK_SPOTLIGHT_ID, cron=PICK_SPOTLIGHT_CRON, timezone=self.settings.timezone
        )
        await self.scheduler.schedule_cron(
            SEGMENTS_DAILY, SEGMENTS_DAILY_ID, cron=SEGMENTS_DAILY_CRON, timezone=self.settings.timezone
        )
        await self.scheduler.schedule_interval(TICK_RHYTHM, TICK_RHYTHM_ID, every=timedelta(minutes=1))
        await self.scheduler.schedule_cron(
            PRUNE_OUTBOX, PRUNE_OUTBOX_ID, cron=PRUNE_OUTBOX_CRON, timezone=self.settings.timezone
        )
        # Everything built so far lives as long as the process: keep it out of the cyclic GC, whose full passes
        # over it would otherwise stall the outbox sender for ~0.2 s at a time during a broadcast.
        gc.collect()
        gc.freeze()
        self._tasks.append(asyncio.create_task(self.sender.run(), name="outbox-sender"))
        if self.clicks is not None:
            self.clicks.start()
        if serve_web:
            self._runner = web.AppRunner(self.web_app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, self.settings.web_host, self.settings.web_port).start()
            log.info("web server on http://%s:%s", self.settings.web_host, self.settings.web_port)

    async def _staff(self) -> list[PartnerView]:
        """Leads and admins, including ADMIN_IDS admins who have started the bot."""
        async with UnitOfWork(self.sessionmaker) as uow:
            partners = PartnerService(uow, self.ctx)
            staff = await uow.partners.with_roles(["lead", "admin"])
            views = [partners.view(p) for p in staff]
            for admin_id in self.settings.admin_ids:
                found = await uow.partners.by_tg_id(admin_id)
                if found is not None and found.role == "partner":
                    views.append(partners.view(found))
            return views

    async def stop(self) -> None:
        self.sender.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=10)
        self._tasks.clear()
        await self.scheduler.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.clicks is not None:
            await self.clicks.stop()  # writes the buffered clicks while the database is still there
        await self.dispatcher.storage.close()
        await self.dispatcher.fsm.events_isolation.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.bot.session.close()
        await self.engine.dispose()


def _dashboard_secret(settings: Settings) -> bytes:
    """DASHBOARD_SECRET, else a random key for this process: its /dashboard links and sessions end with it."""
    if settings.dashboard_secret is not None:
        return settings.dashboard_secret.get_secret_value().encode()
    return secrets.token_bytes(32)


def create_app(  # noqa: PLR0915 - the factory: one statement per part it builds
    settings: Settings,
    *,
    clock: Clock | None = None,
    session: BaseSession | None = None,
    token: str | None = None,
    api_base: str | None = None,
    webhook: bool = False,
) -> BotApp:
    """Build every part from settings. Nothing connects until `BotApp.start()`."""
    if clock is None:
        offset = settings.test_clock_offset_file
        clock = OffsetClock(offset) if offset is not None else SystemClock()
    translator = Translator.load(settings.default_language)
    ctx = ServiceContext(
        clock=clock,
        translator=translator,
        admin_ids=settings.admin_ids,
        timezone=settings.tz,
        default_quiet=settings.default_quiet,
        media_dir=settings.media_dir,
        public_base_url=settings.public_base_url,
        content_dir=settings.content_dir,
        poster_template=settings.poster_template,
        fraud_velocity_orders=settings.fraud_velocity_orders,
        fraud_velocity_minutes=settings.fraud_velocity_minutes,
        lead_stages=load_stages(),
        lead_overdue_days=settings.lead_overdue_days,
        outbox_retention_days=settings.outbox_retention_days,
        streak_reminder_hour=settings.streak_reminder_hour,
        streak_freezes_per_month=settings.streak_freezes_per_month,
        playbooks=load_playbooks(),
        rhythms=load_rhythms(),
        dashboard_secret=_dashboard_secret(settings),
    )
    if settings.link_salt is not None:
        ctx.link_salt = settings.link_salt.get_secret_value().encode()
    elif settings.bot_token is not None:
        log.warning("LINK_SALT is not set: repeat clicks are told apart per process run only")
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    real_token = token or (settings.bot_token.get_secret_value() if settings.bot_token else SANDBOX_TOKEN)
    bot = build_bot(real_token, api_base or settings.telegram_api_base, session)

    redis: Redis | None = None
    throttle: Throttle
    storage: BaseStorage
    isolation: BaseEventIsolation
    if settings.redis_url:
        redis = redis_client(settings.redis_url)
        ctx.redis = redis
        storage = RedisStorage(redis)
        isolation = RedisEventIsolation(redis)
        throttle = RedisThrottle(redis, settings.throttle_window_seconds)
    else:
        storage, isolation = MemoryStorage(), SimpleEventIsolation()
        throttle = MemoryThrottle(settings.throttle_window_seconds)
    limiter = build_limiter(settings, clock, redis)
    sender = OutboxSender(
        sessionmaker,
        bot,
        clock,
        limiter=limiter,
        poll_seconds=settings.outbox_poll_seconds,
        claim_timeout=timedelta(seconds=settings.outbox_claim_timeout_seconds),
    )

    try:
        posters = PosterRenderer(
            load_template(settings.poster_template, settings.poster_template_dir), font_path=settings.font_path
        )
    except TemplateError as exc:
        raise ConfigError("POSTER_TEMPLATE", str(exc)) from None
    except FileNotFoundError:
        raise ConfigError("FONT_PATH", "is not a font file") from None
    menu = CommandMenu(bot, translator)
    metrics = Metrics(ctx.clock)  # this app's own registry, served at /metrics
    sender.on_recorded = metrics.outbox_outcome
    dispatcher = build_dispatcher(
        ctx=ctx,
        sessionmaker=sessionmaker,
        throttle=throttle,
        throttle_rate=settings.throttle_rate,
        on_outbox=sender.wake,
        storage=storage,
        events_isolation=isolation,
        update_dedupe=RedisUpdateDedupe(redis, settings.update_dedupe_ttl_seconds) if redis else None,
        update_busy="retry" if webhook else "take",
        posters=posters,
        metrics=metrics,
        menu=menu,
    )
    scheduler = build_job_scheduler(settings, redis)
    scheduler.observe_runs(metrics.job_run)
    app = BotApp(
        settings=settings,
        bot=bot,
        dispatcher=dispatcher,
        engine=engine,
        sessionmaker=sessionmaker,
        redis=redis,
        scheduler=scheduler,
        sender=sender,
        ctx=ctx,
        menu=menu,
        web_app=web.Application(),
        metrics=metrics,
    )
    click_dedupe: ClickDedupe = RedisClickDedupe(redis) if redis is not None else MemoryClickDedupe()
    app.clicks = ClickTracker(sessionmaker, ctx, dedupe=click_dedupe)
    app.web_app = build_web_app(
        app.health, app.clicks, translator=translator, trust_forwarded_for=settings.trust_forwarded_for
    )
    if settings.orders_api_secret is not None:
        secret = settings.orders_api_secret.get_secret_value().encode()
        OrdersEndpoint(secret, sessionmaker, ctx, on_outbox=sender.wake).install(app.web_app)
    else:
        install_unconfigured(app.web_app)
    RsvpEndpoint(sessionmaker, ctx, on_outbox=sender.wake).install(app.web_app)
    DashboardEndpoint(sessionmaker, ctx).install(app.web_app)
    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    MetricsEndpoint(metrics, sessionmaker, metrics_token or None).install(app.web_app)
    scheduler.install_runtime(
        JobRuntime(
            settings=settings,
            bot=bot,
            sessionmaker=sessionmaker,
            clock=clock,
            ctx=ctx,
            sender=sender,
            scheduler=scheduler,
        )
    )
    return app
