"""Tier 2: /r/<slug> on the bot's web server answers 302 with the partner's ref and records the click."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.clock import ManualClock
from bot.config import load_settings
from bot.domain.content import visitor_hash
from bot.i18n import Translator
from bot.sandbox.emulator import BotAPIEmulator
from bot.services.clicks import ClickDedupe, ClickTracker
from bot.services.context import ServiceContext
from bot.web import build_web_app, preferred_language
from storage.click_dedupe import RedisClickDedupe
from storage.db import create_sessionmaker
from storage.models import ContentItem, Event, Partner, Product, TrackedLink
from storage.uow import UnitOfWork
from tests.e2e.conftest import free_port
from tests.support.harness import START

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
OTHER_BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
SLUG = "Ab3dEf7h"
PRODUCT_SLUG = "Pr0dUct9"
SALT = b"test-salt"


@dataclass
class Seeded:
    partner_id: int
    invite_code: str
    content_id: int
    link_id: int
    product_link_id: int


async def seed(engine: AsyncEngine) -> Seeded:
    sessionmaker = create_sessionmaker(engine)
    async with UnitOfWork(sessionmaker) as uow:
        partner = Partner(
            tg_user_id=4242, first_name="Lin", invite_code="LIN42", tree_path="/", joined_at=START, updated_at=START
        )
        item = ContentItem(
            title="Spring sale",
            text="Spring sale {link}",
            url="https://shop.example/p/1?color=red&ref=someone-else#top",
            created_at=START,
            updated_at=START,
        )
        product = Product(sku="TEA-1", name="Tea", url="https://shop.example/tea", created_at=START, updated_at=START)
        uow.session.add_all([partner, item, product])
        await uow.flush()
        await uow.links.insert(slug=SLUG, partner_id=partner.id, content_id=item.id, product_id=None, now=START)
        await uow.links.insert(
            slug=PRODUCT_SLUG, partner_id=partner.id, content_id=None, product_id=product.id, now=START
        )
        links = {
            link.slug: link.id
            for link in (await uow.session.execute(select(TrackedLink))).scalars().all()  # two rows
        }
        return Seeded(partner.id, partner.invite_code, item.id, links[SLUG], links[PRODUCT_SLUG])


def context(clock: ManualClock) -> ServiceContext:
    return ServiceContext(
        clock=clock,
        translator=Translator.load("zh"),
        admin_ids=frozenset(),
        timezone=ZoneInfo("Asia/Shanghai"),
        link_salt=SALT,
    )


class Switchable:
    """A sessionmaker whose database can be taken away and given back."""

    def __init__(self, inner: async_sessionmaker[AsyncSession]) -> None:
        self.inner = inner
        self.down = False

    def __call__(self) -> AsyncSession:
        if self.down:
            raise ConnectionRefusedError("database is down")
        return self.inner()


@dataclass
class Site:
    tracker: ClickTracker
    client: TestClient[web.Request, web.Application]
    clock: ManualClock
    engine: AsyncEngine

    async def get(self, path: str, *, ua: str | None = BROWSER, **headers: str) -> Any:
        if ua is not None:
            headers["User-Agent"] = ua
        skip = () if ua is not None else ("User-Agent",)
        response = await self.client.get(path, headers=headers, allow_redirects=False, skip_auto_headers=skip)
        await response.read()
        return response

    async def clicks(self, link_id: int) -> int:
        await self.tracker.flush()
        async with UnitOfWork(create_sessionmaker(self.engine)) as uow:
            link = await uow.session.get(TrackedLink, link_id)
            assert link is not None
            return link.clicks

    async def events(self) -> list[Event]:
        await self.tracker.flush()
        async with UnitOfWork(create_sessionmaker(self.engine)) as uow:
            return list((await uow.session.execute(select(Event).order_by(Event.id))).scalars().all())


SiteFactory = Callable[..., Any]


@pytest.fixture
async def site(engine: AsyncEngine) -> AsyncIterator[SiteFactory]:
    """Builds the web app with a click tracker (as create_app does) and serves it on a loopback port."""
    opened: list[Site] = []

    async def make(
        *,
        dedupe: ClickDedupe | None = None,
        trust_forwarded_for: bool = False,
        sessionmaker: Any = None,
        clock: ManualClock | None = None,
        **options: Any,
    ) -> Site:
        clock = clock or ManualClock(START)
        ctx = context(clock)
        tracker = ClickTracker(sessionmaker or create_sessionmaker(engine), ctx, dedupe=dedupe, **options)
        app = build_web_app(_healthy, tracker, translator=ctx.translator, trust_forwarded_for=trust_forwarded_for)
        client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
        await client.start_server()
        made = Site(tracker, client, clock, engine)
        opened.append(made)
        return made

    yield make
    for made in opened:
        await made.client.close()
        await made.tracker.stop()


async def _healthy() -> dict[str, Any]:
    return {"status": "ok"}


async def test_redirect_adds_ref_and_utm_and_keeps_the_query(engine: AsyncEngine, site: SiteFactory) -> None:
    seeded = await seed(engine)
    s: Site = await site()

    response = await s.get(f"/r/{SLUG}")

    assert response.status == 302
    assert response.headers["Cache-Control"] == "private, no-store"
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc, location.path, location.fragment) == (
        "https",
        "shop.example",
        "/p/1",
        "top",
    )
    assert parse_qsl(location.query) == [
        ("color", "red"),
        ("ref", seeded.invite_code),  # the target's own ref is replaced by the partner's
        ("utm_source", "partner"),
        ("utm_medium", "telegram"),
        ("utm_campaign", str(seeded.content_id)),
    ]

    product = await s.get(f"/r/{PRODUCT_SLUG}")
    assert product.status == 302
    assert dict(parse_qsl(urlsplit(product.headers["Location"]).query))["utm_campaign"] == "product-TEA-1"

    head = await s.client.head(f"/r/{SLUG}", headers={"User-Agent": BROWSER}, allow_redirects=False)
    assert head.status == 302
    assert head.headers["Location"] == response.headers["Location"]

    events = await s.events()
    assert [e.type for e in events] == ["link_clicked"] * 2  # the HEAD probe is answered, not recorded
    first = events[0]
    assert first.partner_id == seeded.partner_id
    assert first.source == "web"
    assert first.occurred_at == START
    assert first.payload == {
        "slug": SLUG,
        "content_id": seeded.content_id,
        "product_id": None,
        "visitor": visitor_hash(SALT, "127.0.0.1", BROWSER),
        "referer": None,
        "counted": True,
        "bot": False,
    }
    assert events[1].payload["product_id"] is not None
    assert events[1].payload["content_id"] is None


async def test_repeat_clicks_from_one_visitor_count_once(engine: AsyncEngine, site: SiteFactory) -> None:
    seeded = await seed(engine)
    s: Site = await site()

    assert (await s.get(f"/r/{SLUG}")).status == 302
    s.clock.advance(timedelta(minutes=5))
    assert (await s.get(f"/r/{SLUG}")).status == 302

    assert await s.clicks(seeded.link_id) == 1
    events = await s.events()
    assert [e.payload["counted"] for e in events] == [True, False]

    assert (await s.get(f"/r/{SLUG}", ua=OTHER_BROWSER)).status == 302  # another visitor
    assert await s.clicks(seeded.link_id) == 2
    assert (await s.get(f"/r/{PRODUCT_SLUG}")).status == 302  # the same visitor on another link
    assert await s.clicks(seeded.product_link_id) == 1


async def test_the_same_visitor_counts_again_after_thirty_minutes(engine: AsyncEngine, site: SiteFactory) -> None:
    seeded = await seed(engine)
    s: Site = await site()

    await s.get(f"/r/{SLUG}")
    s.clock.advance(timedelta(minutes=29))
    await s.get(f"/r/{SLUG}")
    assert await s.clicks(seeded.link_id) == 1
    s.clock.advance(timedelta(minutes=2))  # 31 minutes after the counted click
    await s.get(f"/r/{SLUG}")

    assert await s.clicks(seeded.link_id) == 2
    assert [e.payload["counted"] for e in await s.events()] == [True, False, True]


@pytest.mark.parametrize(
    "ua", [None, "", "TelegramBot (like TwitterBot)", "Mozilla/5.0 (compatible; Googlebot/2.1)", "curl/8.5.0"]
)
async def test_bots_are_recorded_not_counted(engine: AsyncEngine, site: SiteFactory, ua: str | None) -> None:
    seeded = await seed(engine)
    s: Site = await site()

    response = await s.get(f"/r/{SLUG}", ua=ua)

    assert response.status == 302  # a link preview still gets the target
    assert await s.clicks(seeded.link_id) == 0
    [event] = await s.events()
    assert event.payload["bot"] is True
    assert event.payload["counted"] is False


async def test_referer_is_kept_truncated(engine: AsyncEngine, site: SiteFactory) -> None:
    await seed(engine)
    s: Site = await site()

    await s.get(f"/r/{SLUG}", Referer="https://t.me/some_channel")
    await s.get(f"/r/{SLUG}", Referer="https://example.com/?q=" + "x" * 2000)

    short, long = await s.events()
    assert short.payload["referer"] == "https://t.me/some_channel"
    assert len(long.payload["referer"]) == 500


async def test_unknown_slug_gets_a_not_found_page_in_the_visitors_language(
    engine: AsyncEngine, site: SiteFactory
) -> None:
    await seed(engine)
    s: Site = await site()
    translator = Translator.load("zh")

    english = await s.get("/r/Zz9Zz9Zz", **{"Accept-Language": "en-US,en;q=0.9"})
    chinese = await s.get("/r/Zz9Zz9Zz", **{"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    default = await s.get("/r/Zz9Zz9Zz")

    assert english.status == chinese.status == default.status == 404
    assert english.content_type == "text/html"
    assert translator.texts("en")("web.not_found.title") in await english.text()
    assert translator.texts("zh")("web.not_found.title") in await chinese.text()
    assert translator.texts("en")("web.not_found.title") in await default.text()
    assert await s.events() == []


@pytest.mark.parametrize(
    "path",
    [
        "/r/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/r/" + "a" * 40,
        "/r/abc",
        "/r/",
        "/r/Ab3dEf7h%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E",
        "/r/Ab3dEf7h/extra",
    ],
)
async def test_malformed_slug_is_never_echoed(engine: AsyncEngine, site: SiteFactory, path: str) -> None:
    await seed(engine)
    s: Site = await site()

    response = await s.get(path)

    assert response.status == 404
    body = await response.text()
    for fragment in ("<script", "alert", "onerror", "<img", "aaaa", "abc", "Ab3dEf7h", "extra"):
        assert fragment not in body
    assert await s.events() == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh;q=0.8", "en"),
        ("en;q=0.5,zh-TW;q=0.8", "zh"),
        ("fr-FR,fr;q=0.9", "en"),
        ("zh;q=0", "en"),
        ("ZH-hans", "zh"),
        ("zh;q=bogus,en", "en"),
    ],
)
def test_page_language(header: str | None, expected: str) -> None:
    assert preferred_language(header) == expected


async def test_no_raw_ip_is_stored(engine: AsyncEngine, site: SiteFactory) -> None:
    await seed(engine)
    direct: Site = await site()
    proxied: Site = await site(trust_forwarded_for=True)

    await direct.get(f"/r/{SLUG}", **{"X-Forwarded-For": "198.51.100.9"})  # not behind a proxy: ignored
    await proxied.get(f"/r/{SLUG}", **{"X-Forwarded-For": "198.51.100.9, 203.0.113.7"})

    await proxied.tracker.flush()
    first, second = await direct.events()
    assert {first.payload["visitor"], second.payload["visitor"]} == {
        visitor_hash(SALT, "127.0.0.1", BROWSER),  # X-Forwarded-For ignored
        visitor_hash(SALT, "203.0.113.7", BROWSER),  # the address the trusted proxy appended
    }
    stored = json.dumps([e.payload for e in (first, second)])
    for ip in ("127.0.0.1", "198.51.100.9", "203.0.113.7"):
        assert ip not in stored


async def test_clicks_are_written_in_batches_and_flushed_on_stop(engine: AsyncEngine, site: SiteFactory) -> None:
    seeded = await seed(engine)
    s: Site = await site(flush_interval=3600, batch_size=1000)
    s.tracker.start()

    for n in range(3):
        await s.get(f"/r/{SLUG}", ua=f"{BROWSER} #{n}")
    assert s.tracker.pending == 3
    async with UnitOfWork(create_sessionmaker(engine)) as uow:
        assert await uow.events.count() == 0  # buffered, not written per click

    await s.tracker.stop()

    assert s.tracker.pending == 0
    async with UnitOfWork(create_sessionmaker(engine)) as uow:
        assert await uow.events.count(type="link_clicked") == 3
    assert await s.clicks(seeded.link_id) == 3


async def test_a_full_batch_is_written_without_waiting(engine: AsyncEngine, site: SiteFactory) -> None:
    await seed(engine)
    s: Site = await site(flush_interval=3600, batch_size=2)
    s.tracker.start()

    await s.get(f"/r/{SLUG}")
    await s.get(f"/r/{SLUG}")
    for _ in range(500):  # the writer is woken by the full batch, long before its hour-long interval
        if s.tracker.pending == 0:
            break
        await asyncio.sleep(0.01)
    assert s.tracker.pending == 0
    async with UnitOfWork(create_sessionmaker(engine)) as uow:
        assert await uow.events.count(type="link_clicked") == 2


async def test_cached_links_redirect_while_the_database_is_down_and_clicks_wait(
    engine: AsyncEngine, site: SiteFactory, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(engine)
    db = Switchable(create_sessionmaker(engine))
    s: Site = await site(sessionmaker=cast(async_sessionmaker[AsyncSession], db))
    assert (await s.get(f"/r/{SLUG}")).status == 302  # now cached

    db.down = True
    assert (await s.get(f"/r/{SLUG}", ua=OTHER_BROWSER)).status == 302
    unknown = await s.get("/r/Zz9Zz9Zz", **{"Accept-Language": "zh"})
    assert unknown.status == 503  # not cached, cannot ask: try again, not "no such link"
    assert Translator.load("zh").texts("zh")("web.unavailable.title") in await unknown.text()
    with pytest.raises(ConnectionRefusedError):
        await s.tracker.flush()
    assert s.tracker.pending == 2  # kept for the retry

    db.down = False
    assert await s.tracker.flush() == 2
    assert await s.clicks(seeded.link_id) == 2


async def test_expired_cache_entry_is_served_while_the_database_is_down(engine: AsyncEngine, site: SiteFactory) -> None:
    await seed(engine)
    db = Switchable(create_sessionmaker(engine))
    now = [0.0]
    s: Site = await site(sessionmaker=cast(async_sessionmaker[AsyncSession], db), monotonic=lambda: now[0])
    first = await s.get(f"/r/{SLUG}")
    now[0] += 120  # past the cache TTL
    db.down = True

    again = await s.get(f"/r/{SLUG}")

    assert again.status == 302
    assert again.headers["Location"] == first.headers["Location"]


async def test_bad_slugs_are_cached_briefly(engine: AsyncEngine, site: SiteFactory) -> None:
    await seed(engine)
    db = Switchable(create_sessionmaker(engine))
    now = [0.0]
    s: Site = await site(sessionmaker=cast(async_sessionmaker[AsyncSession], db), monotonic=lambda: now[0])
    assert (await s.get("/r/Zz9Zz9Zz")).status == 404

    db.down = True  # the second ask is answered from the cache
    assert (await s.get("/r/Zz9Zz9Zz")).status == 404
    now[0] += 30
    assert (await s.get("/r/Zz9Zz9Zz")).status == 503


async def test_a_full_buffer_refuses_clicks_loudly(
    engine: AsyncEngine, site: SiteFactory, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(engine)
    s: Site = await site(max_pending=2)

    with caplog.at_level(logging.ERROR, logger="bot.services.clicks"):
        for n in range(3):
            assert (await s.get(f"/r/{SLUG}", ua=f"{BROWSER} #{n}")).status == 302

    assert s.tracker.pending == 2
    assert s.tracker.dropped == 1
    assert "click buffer full" in caplog.text


class BrokenDedupe:
    async def first_click(self, key: str, now: Any) -> bool:
        raise ConnectionError("redis is down")


async def test_a_failing_dedupe_store_counts_the_click(
    engine: AsyncEngine, site: SiteFactory, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(engine)
    s: Site = await site(dedupe=BrokenDedupe())

    with caplog.at_level(logging.WARNING, logger="bot.services.clicks"):
        assert (await s.get(f"/r/{SLUG}")).status == 302
        assert (await s.get(f"/r/{SLUG}")).status == 302

    assert await s.clicks(seeded.link_id) == 2
    assert caplog.text.count("click dedupe unavailable") == 1  # not once per click


async def test_redis_dedupe_is_shared_by_processes(engine: AsyncEngine, site: SiteFactory, redis_url: str) -> None:
    seeded = await seed(engine)
    prefix = f"pa:test:click:{uuid.uuid4().hex}"
    first_redis, second_redis = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        one: Site = await site(dedupe=RedisClickDedupe(first_redis, prefix=prefix))
        two: Site = await site(dedupe=RedisClickDedupe(second_redis, prefix=prefix))

        assert (await one.get(f"/r/{SLUG}")).status == 302
        assert (await two.get(f"/r/{SLUG}")).status == 302  # the same visitor through another process
        assert (await two.get(f"/r/{SLUG}", ua=OTHER_BROWSER)).status == 302

        await one.tracker.flush()
        assert await two.clicks(seeded.link_id) == 2
        assert sorted(e.payload["counted"] for e in await two.events()) == [False, True, True]
    finally:
        keys = [key async for key in first_redis.scan_iter(f"{prefix}:*")]
        if keys:
            await first_redis.delete(*keys)
        await first_redis.aclose()
        await second_redis.aclose()


async def test_the_app_serves_tracked_links_and_writes_clicks_when_it_stops(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    seeded = await seed(engine)
    port = free_port()
    async with BotAPIEmulator(files_dir=tmp_path / "files") as emulator:
        settings = load_settings(
            bot_token="123456:TEST-token",
            telegram_api_base=emulator.base_url,
            database_url=database_url,
            web_port=port,
            link_salt="app-salt",
            trust_forwarded_for=True,
        )
        app = create_app(settings)
        await app.start()
        try:
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{port}/r/{SLUG}"
                headers = {"User-Agent": BROWSER, "X-Forwarded-For": "203.0.113.7"}
                async with http.get(url, headers=headers, allow_redirects=False) as response:
                    assert response.status == 302
                    assert "ref=LIN42" in response.headers["Location"]
                async with http.get(f"http://127.0.0.1:{port}/r/nope!", allow_redirects=False) as response:
                    assert response.status == 404
        finally:
            await app.stop()

    async with UnitOfWork(create_sessionmaker(engine)) as uow:
        [event] = (await uow.session.execute(select(Event))).scalars().all()
        link = await uow.session.get(TrackedLink, seeded.link_id)
    assert event.payload["visitor"] == visitor_hash(b"app-salt", "203.0.113.7", BROWSER)
    assert link is not None
    assert link.clicks == 1
