"""Tier 3: the web dashboard in a real headless Chromium (the system's, driven by Playwright; nothing downloaded).

A partner shares today's item through the real bot process; after a restart the rollups' first refresh comes
seconds after start-up; the admin sends /dashboard, the browser opens the one-time link, and the overview shows the
numbers of what was seeded. A screenshot is kept under the test's tmp_path."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright

from bot.sandbox.client import EmulatorClient, TgUser
from bot.sandbox.emulator import BotAPIEmulator
from tests.e2e.conftest import ADMIN_ID, BotProcess, bot_env
from tests.e2e.test_bot_process import buttons, plain, say
from tests.e2e.test_content_reach import import_content, write_import_file
from tests.support.services import in_ci

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHROMIUM = Path("/usr/bin/chromium")
ADMIN = TgUser(id=ADMIN_ID, first_name="Root", language_code="en")
ALICE = TgUser(id=101, first_name="Alice", username="alice_w", language_code="en")
ROLLUP_WAIT = 60.0


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: run `bash .ci/chromium.sh` (Debian's chromium package)"
    if in_ci():
        pytest.fail(f"{message} (CI=true: the browser test must run)", pytrace=False)
    pytest.skip(message)


def login_url(message: dict[str, Any]) -> str:
    links = [e["url"] for e in message.get("entities") or [] if e.get("type") == "text_link"]
    assert len(links) == 1, message
    return str(links[0])


async def metric(page: Page, row: str) -> tuple[str, str]:
    cells = page.locator(f"#metric-{row} td")
    return (await cells.nth(1).inner_text()).strip(), (await cells.nth(2).inner_text()).strip()


async def test_admin_logs_in_through_the_link_and_sees_the_seeded_numbers(
    emulator: BotAPIEmulator, client: EmulatorClient, e2e_database_url: str, tmp_path: Path
) -> None:
    require_chromium()
    env = bot_env(emulator, e2e_database_url, CONTENT_DIR=str(tmp_path / "content"))
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['WEB_PORT']}"
    env["DASHBOARD_SECRET"] = "e2e-dashboard-secret-0123456789abcdef"
    bot = BotProcess(env, [], tmp_path / "bot.log")
    await bot.start()
    try:
        # seed through the bot: the admin and Alice start; Alice shares today's item once
        await import_content(env, write_import_file(tmp_path))
        await say(client, ADMIN, "/start", "Welcome")
        await say(client, ALICE, "/start", "Welcome to Partner Assistant")
        sent = await client.send_message(ALICE, "/today")
        item = await client.wait_for_bot_message(
            ALICE.id, lambda m: m["message_id"] > sent["message_id"] and "Spring tea" in plain(m), timeout=15
        )
        shared = {b["text"]: b for b in buttons(item)}["✅ Shared"]
        await client.press(ALICE, item["message_id"], shared["callback_data"])
        await asyncio.sleep(1.0)
        assert "🙌 Thanks for sharing! That's 1 today." in [a.get("text") for a in await client.callback_answers()]
    finally:
        assert await bot.stop() == 0
    # a restart: the rollups' first refresh is seconds after start-up, not a full interval later
    bot = BotProcess(env, [], tmp_path / "bot-2.log")
    await bot.start()
    try:
        message = await say(client, ADMIN, "/dashboard", "Open the dashboard")
        url = login_url(message)
        assert re.fullmatch(rf"{env['PUBLIC_BASE_URL']}/dashboard/login\?token=[\w.-]+", url), url
        shot = tmp_path / "dashboard-overview.png"
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
            )
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 1000}, locale="en-US")
                response = await page.goto(url)
                assert response is not None and response.ok, response
                assert page.url == f"{env['PUBLIC_BASE_URL']}/dashboard"  # the one-time link redirected
                assert await page.locator("h1").first.inner_text() != ""
                deadline = asyncio.get_running_loop().time() + ROLLUP_WAIT
                while await metric(page, "shared") != ("1", "0"):
                    assert asyncio.get_running_loop().time() < deadline, await page.content()
                    await asyncio.sleep(2.0)
                    await page.reload()
                await page.screenshot(path=str(shot), full_page=True)
                assert await metric(page, "shared") == ("1", "0"), f"screenshot: {shot}"
                assert await metric(page, "avg_all") == ("0.5", "–"), f"screenshot: {shot}"  # 1 share, 2 partners
                assert await metric(page, "followed_up") == ("0", "0"), f"screenshot: {shot}"
                shares = (await page.locator("#funnel-shares").inner_text()).strip()
                assert shares == "1", f"screenshot: {shot}"
                assert "Partners in view: 2" in await page.inner_text("main"), f"screenshot: {shot}"
                chart = page.locator("img.chart")
                assert await chart.evaluate("img => img.complete && img.naturalWidth > 0"), f"screenshot: {shot}"
                # the link is spent: a second browser without the cookie gets nothing
                other = await browser.new_page()
                again = await other.goto(url)
                assert again is not None and again.status == 403, f"screenshot: {shot}"
                assert (await other.goto(f"{env['PUBLIC_BASE_URL']}/dashboard/partners")).status == 401  # type: ignore[union-attr]
                # the signed-in browser moves on to the partners table
                await page.click("text=Partners")
                assert "Alice" in await page.inner_text("#partners"), f"screenshot: {shot}"
            finally:
                await browser.close()
        assert shot.stat().st_size > 10_000, f"screenshot: {shot}"
    finally:
        await bot.stop()
