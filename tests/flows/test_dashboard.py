"""Tier 2: the read-only web dashboard. /dashboard gives leads and admins a signed one-time link; the link opens a
12-hour HttpOnly session; without one every page is 401 and shows nothing; an admin sees the network, a lead their
team only; every value is escaped. Served by aiohttp's test server with the routes create_app installs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from aiogram.types import User
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot.dashboard_http import DashboardEndpoint
from bot.domain.events import EventType
from bot.scheduling import running_with
from bot.scheduling.jobs import refresh_rollups
from storage.models import AuditEntry, ContentItem, DashboardLoginToken, DashboardSession, Partner
from storage.uow import UnitOfWork
from tests.flows.test_behaviour import add_events, ids
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Boss", lang="en")
ALICE = tg_user(301, "Alice", username="alice_w", lang="en")
BOB = tg_user(302, "Bob", lang="en")
CAROL = tg_user(303, "Carol", username="carol_z", lang="zh")
MALLORY = tg_user(304, "<script>alert(1)</script>", username="mal", lang="en")
PAGES = (
    "/dashboard",
    "/dashboard?period=7d",
    "/dashboard/partners",
    "/dashboard/partners/1",
    "/dashboard/content",
    "/dashboard/sprint",
    "/dashboard/delivery",
)
LINK_RE = re.compile(r'href="(http://127\.0\.0\.1:8080/dashboard/login\?token=[^"]+)"')

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def site(harness: BotHarness) -> AsyncIterator[Client]:
    app = web.Application()
    DashboardEndpoint(harness.sessionmaker, harness.ctx).install(app)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def network(h: BotHarness) -> dict[str, int]:
    """Alice (a lead) recruits Bob and Mallory; Carol joins on her own. Today Bob shares 3 times (one content item),
    Carol twice and Mallory once; Bob follows up once. Rollups refreshed."""
    await h.send(ADMIN, "/start")
    await h.send(ALICE, "/start")
    await h.send(ADMIN, "/grant @alice_w lead")
    async with h.sessionmaker() as s:
        code = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == ALICE.id))).scalar_one()
    await h.send(BOB, f"/start {code}")
    await h.send(MALLORY, f"/start {code}")
    await h.send(CAROL, "/start")
    who = await ids(h)
    async with UnitOfWork(h.sessionmaker) as uow:
        uow.session.add(
            ContentItem(
                title="Tea <b>bold</b>",
                text="t",
                url="https://shop.example.com",
                tags=[],
                levels=[],
                status="active",
                created_at=h.clock.now(),
                updated_at=h.clock.now(),
            )
        )
        await uow.flush()
        item = (await uow.session.execute(select(ContentItem.id))).scalar_one()
        for partner, count in ((who["Bob"], 3), (who["Carol"], 2), (who[MALLORY.first_name], 1)):
            for _ in range(count):
                uow.events.add(
                    partner_id=partner,
                    type=EventType.SHARED,
                    occurred_at=h.clock.now(),
                    source="bot",
                    payload={"content_id": item, "channel": "manual"},
                )
    await add_events(h, who["Bob"], EventType.FOLLOWED_UP, h.clock.now())
    with running_with(h.job_runtime()):
        await refresh_rollups()
    h.session.clear()
    return who


async def link_for(h: BotHarness, user: User) -> str:
    h.session.clear()
    await h.send(user, "/dashboard")
    [message] = h.session.of("sendMessage", user.id)
    found = LINK_RE.search(message.text)
    assert found, message.text
    return found.group(1).replace("&amp;", "&")


async def log_in(site: Client, link: str) -> ClientResponse:
    token = parse_qs(urlsplit(link).query)["token"][0]
    return await site.get("/dashboard/login", params={"token": token}, allow_redirects=False)


async def page(site: Client, path: str) -> tuple[int, str]:
    response = await site.get(path, allow_redirects=False)
    return response.status, await response.text()


def cells(html: str, row_id: str) -> list[str]:
    row = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S)
    assert row, row_id
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)


async def test_a_partner_is_refused_and_an_admin_gets_a_one_time_link(harness: BotHarness) -> None:
    h = harness
    await network(h)
    await h.send(BOB, "/dashboard")
    assert h.session.texts(BOB.id) == [h.t("en", "denied.lead")]
    async with h.sessionmaker() as s:
        assert (await s.execute(select(AuditEntry.action).where(AuditEntry.outcome == "denied"))).scalars().all()
    link = await link_for(h, ADMIN)
    [message] = h.session.of("sendMessage", ADMIN_ID)
    assert message.params["link_preview_options"]["is_disabled"] is True
    assert message.text == h.t("en", "dashboard.link", url=link)
    assert await link_for(h, ALICE)  # a team lead too


async def test_no_session_no_data(harness: BotHarness, site: Client) -> None:
    await network(harness)
    for path in PAGES:
        status, html = await page(site, path)
        assert status == 401, path
        assert harness.t("en", "dashboard.unauthorized_title") in html
        assert "Bob" not in html and "Tea" not in html
    site.session.cookie_jar.update_cookies({"pa_dashboard": "forged.cookie"})
    assert (await page(site, "/dashboard"))[0] == 401


async def test_login_sets_a_safe_cookie_once_and_bad_links_are_refused(harness: BotHarness, site: Client) -> None:
    h = harness
    await network(h)
    link = await link_for(h, ADMIN)
    token = parse_qs(urlsplit(link).query)["token"][0]
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    bad = await site.get("/dashboard/login", params={"token": tampered}, allow_redirects=False)
    assert bad.status == 400 and h.t("en", "dashboard.login.invalid_title") in await bad.text()
    assert "set-cookie" not in bad.headers

    response = await log_in(site, link)
    assert response.status == 303 and response.headers["Location"] == "/dashboard"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # PUBLIC_BASE_URL is http here
    assert (await page(site, "/dashboard"))[0] == 200

    site.session.cookie_jar.clear()
    replay = await log_in(site, link)
    assert replay.status == 403 and h.t("en", "dashboard.login.used_title") in await replay.text()
    assert (await page(site, "/dashboard"))[0] == 401

    expired = await link_for(h, ADMIN)
    h.clock.advance(timedelta(minutes=10))
    late = await log_in(site, expired)
    assert late.status == 400 and h.t("en", "dashboard.login.expired_title") in await late.text()
    async with h.sessionmaker() as s:
        assert len((await s.execute(select(DashboardSession))).scalars().all()) == 1
        stored = (await s.execute(select(DashboardSession.id_hash))).scalar_one()
        assert stored not in cookie  # only the hash of the id is kept
        assert len((await s.execute(select(DashboardLoginToken))).scalars().all()) == 1


async def test_https_makes_the_cookie_secure(harness: BotHarness) -> None:
    harness.ctx.public_base_url = "https://partners.example.com"
    await network(harness)
    app = web.Application()
    DashboardEndpoint(harness.sessionmaker, harness.ctx).install(app)
    async with TestClient(TestServer(app)) as client:
        harness.session.clear()
        await harness.send(ADMIN, "/dashboard")
        [message] = harness.session.of("sendMessage", ADMIN_ID)
        token = re.search(r"token=([^\"&]+)", message.text)
        assert token and "https://partners.example.com/dashboard/login?token=" in message.text
        response = await client.get("/dashboard/login", params={"token": token.group(1)}, allow_redirects=False)
        assert "Secure" in response.headers["Set-Cookie"]


async def test_admin_sees_the_network_and_values_are_escaped(harness: BotHarness, site: Client) -> None:
    h = harness
    await network(h)
    await log_in(site, await link_for(h, ADMIN))
    status, html = await page(site, "/dashboard")
    assert status == 200
    assert cells(html, "metric-shared")[1:3] == ["3", "0"]  # Bob, Carol and Mallory shared today; nobody yesterday
    assert cells(html, "metric-avg_all")[1:3] == ["1.2", "–"]  # 6 shares over 5 partners; nobody had joined yesterday
    assert cells(html, "metric-followed_up")[1:3] == ["1", "0"]
    assert re.search(r'id="funnel-shares">6<', html)
    assert 'src="data:image/png;base64,' in html

    status, html = await page(site, "/dashboard/partners")
    assert status == 200
    for name in ("Boss", "Alice", "Bob", "Carol"):
        assert f">{name}</a>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert (await page(site, "/dashboard/partners?q=ALICE_W"))[1].count("/dashboard/partners/") == 1

    status, html = await page(site, "/dashboard/content?period=7d")
    assert status == 200 and "Tea &lt;b&gt;bold&lt;/b&gt;" in html and '<td class="n">6</td>' in html
    status, html = await page(site, "/dashboard/delivery")
    assert status == 200 and h.t("en", "dashboard.delivery.title") in html
    assert (await page(site, "/dashboard/sprint"))[0] == 200
    assert (await page(site, "/dashboard/partners/999999"))[0] == 404
    assert (await page(site, "/dashboard/partners/abc"))[0] == 404


async def test_a_lead_sees_their_team_only(harness: BotHarness, site: Client) -> None:
    h = harness
    who = await network(h)
    await log_in(site, await link_for(h, ALICE))
    status, html = await page(site, "/dashboard")
    assert status == 200
    assert cells(html, "metric-shared")[1:3] == ["2", "0"]  # Bob and Mallory; Carol is outside the team
    assert re.search(r'id="funnel-shares">4<', html)
    _, html = await page(site, "/dashboard/partners")
    assert ">Bob</a>" in html and ">Alice</a>" in html
    assert "Carol" not in html and "Boss" not in html
    assert (await page(site, f"/dashboard/partners/{who['Carol']}"))[0] == 404
    status, html = await page(site, f"/dashboard/partners/{who['Bob']}")
    assert status == 200 and "Bob" in html
    _, html = await page(site, "/dashboard/content")
    assert '<td class="n">4</td>' in html  # the team's shares of the item only
    status, html = await page(site, "/dashboard/delivery")
    assert status == 403 and "/dashboard/delivery" not in html  # no delivery tab for a lead
    # the role is read on every request: revoked, the session shows nothing more
    async with h.sessionmaker() as s, s.begin():
        await s.execute(update(Partner).where(Partner.id == who["Alice"]).values(role="partner"))
    assert (await page(site, "/dashboard"))[0] == 401


async def test_the_session_ends_after_twelve_hours(harness: BotHarness, site: Client) -> None:
    h = harness
    await network(h)
    await log_in(site, await link_for(h, ADMIN))
    h.clock.advance(timedelta(hours=11, minutes=59))
    assert (await page(site, "/dashboard/partners"))[0] == 200
    h.clock.advance(timedelta(minutes=1))
    status, html = await page(site, "/dashboard/partners")
    assert status == 401 and "Bob" not in html


async def test_pages_are_in_the_viewers_language(harness: BotHarness, site: Client) -> None:
    h = harness
    await network(h)
    await h.send(ADMIN, "/grant @carol_z lead")
    await log_in(site, await link_for(h, CAROL))
    _, html = await page(site, "/dashboard")
    assert '<html lang="zh">' in html and h.t("zh", "dashboard.metric.shared") in html
    assert cells(html, "metric-shared")[1:3] == ["1", "0"]  # her team is herself so far
