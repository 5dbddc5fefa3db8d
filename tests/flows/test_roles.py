"""Tier 2: admin and lead powers, refusals, the audit log and the per-chat command menu."""

from __future__ import annotations

from sqlalchemy import select

from bot.services.menu import ADMIN_COMMANDS
from storage.models import AuditEntry, Partner
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
ALICE = tg_user(101, "Alice", username="alice_w", lang="en")
BOB = tg_user(102, "Bob", lang="en")


async def audit_rows(h: BotHarness) -> list[AuditEntry]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())


async def role_of(h: BotHarness, tg_id: int) -> str:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner.role).where(Partner.tg_user_id == tg_id))).scalar_one()


async def test_partner_is_refused_admin_and_lead_commands_and_audited(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ALICE, "/grant @alice_w admin")
    await harness.send(ALICE, "/team")
    texts = harness.session.texts(ALICE.id)
    assert texts == [harness.t("en", "denied.admin"), harness.t("en", "denied.lead")]
    assert await role_of(harness, ALICE.id) == "partner"
    rows = await audit_rows(harness)
    assert [(r.action, r.outcome, r.actor_tg_id) for r in rows] == [
        ("grant", "denied", ALICE.id),
        ("team", "denied", ALICE.id),
    ]


async def test_admin_grants_lead_by_username_then_lead_sees_team(harness: BotHarness) -> None:
    await harness.send(ADMIN, "/start")
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ADMIN, "/grant @alice_w lead")
    assert harness.session.texts(ADMIN.id) == [harness.t("en", "grant.done", name="Alice", role="Team lead")]
    assert await role_of(harness, ALICE.id) == "lead"
    [menu] = harness.session.of("setMyCommands")
    assert menu.params["scope"] == {"type": "chat", "chat_id": ALICE.id}
    assert [c["command"] for c in menu.params["commands"]] == [
        "today",
        "start7",
        "learn",
        "rank",
        "sprint",
        "story",
        "stories",
        "leads",
        "lead",
        "followup",
        "quote",
        "order",
        "coupon",
        "invite",
        "wallet",
        "withdraw",
        "me",
        "link",
        "poster",
        "card",
        "settings",
        "lang",
        "mydata",
        "help",
        "team",
        "dashboard",
    ]
    await harness.drain_outbox()
    assert harness.session.texts(ALICE.id)[-1] == harness.t("en", "notice.role_granted", role="Team lead")
    harness.session.clear()
    await harness.send(ALICE, "/team")
    [team, digest] = harness.session.of("sendMessage", ALICE.id)
    assert team.text.startswith("👥 <b>Your team</b>")
    assert digest.text.startswith(harness.t("en", "digests.live_title", members=0))
    [chart] = harness.session.of("sendPhoto", ALICE.id)
    assert chart.params["caption"] == harness.t("en", "digests.chart_caption")
    [entry] = [r for r in await audit_rows(harness) if r.action == "grant"]
    assert (entry.actor_tg_id, entry.target, entry.outcome, entry.details) == (
        ADMIN_ID,
        "@alice_w",
        "ok",
        {"role": "lead"},
    )


async def test_grant_by_invite_code_repeat_is_noop_and_revoke(harness: BotHarness) -> None:
    await harness.send(ADMIN, "/start")
    await harness.send(BOB, "/start")
    async with harness.sessionmaker() as s:
        code = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == BOB.id))).scalar_one()
    harness.session.clear()
    await harness.send(ADMIN, f"/grant {code} admin")
    await harness.send(ADMIN, f"/grant {code} lead")
    await harness.send(ADMIN, f"/revoke {code} admin")
    await harness.send(ADMIN, f"/revoke {code} admin")
    assert harness.session.texts(ADMIN.id) == [
        harness.t("en", "grant.done", name="Bob", role="Admin"),
        harness.t("en", "grant.already", name="Bob", role="Team lead"),
        harness.t("en", "revoke.done", name="Bob", role="Admin"),
        harness.t("en", "revoke.not_held", name="Bob", role="Admin"),
    ]
    assert await role_of(harness, BOB.id) == "partner"
    assert harness.session.of("deleteMyCommands")[-1].params["scope"] == {"type": "chat", "chat_id": BOB.id}
    assert [r.outcome for r in await audit_rows(harness)] == ["ok", "noop", "ok", "noop"]


async def test_bad_grant_arguments_get_usage_and_change_nothing(harness: BotHarness) -> None:
    await harness.send(ADMIN, "/start")
    harness.session.clear()
    for text, key, params in [
        ("/grant", "grant.usage", {}),
        ("/grant @nobody", "grant.usage", {}),
        ("/grant @nobody lead", "roles.target_not_found", {"target": "@nobody"}),
        ("/grant @nobody king", "roles.unknown_role", {"role": "king"}),
        ("/revoke", "revoke.usage", {}),
    ]:
        harness.session.clear()
        await harness.send(ADMIN, text)
        assert harness.session.texts(ADMIN.id) == [harness.t("en", key, **params)], text
    assert await audit_rows(harness) == []


async def test_config_admin_cannot_be_revoked_and_admins_cannot_drop_themselves(harness: BotHarness) -> None:
    await harness.send(ADMIN, "/start")
    await harness.send(ALICE, "/start")
    await harness.send(ADMIN, "/grant @alice_w admin")
    async with harness.sessionmaker() as s:
        root_code = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == ADMIN_ID))).scalar_one()
    harness.session.clear()
    await harness.send(ALICE, "/revoke @alice_w admin")
    await harness.send(ALICE, f"/revoke {root_code} admin")
    assert harness.session.texts(ALICE.id) == [
        harness.t("en", "revoke.self_admin"),
        harness.t("en", "revoke.config_admin", name="Root"),
    ]
    assert await role_of(harness, ALICE.id) == "admin"
    assert await role_of(harness, ADMIN_ID) == "partner"  # stored role; ADMIN_IDS makes them admin


async def test_audit_command_lists_entries_for_admins(harness: BotHarness) -> None:
    await harness.send(ADMIN, "/start")
    await harness.send(ALICE, "/start")
    await harness.send(ALICE, "/audit")
    harness.session.clear()
    await harness.send(ADMIN, "/audit")
    [listing] = harness.session.of("sendMessage", ADMIN.id)
    assert listing.text.startswith(harness.t("en", "audit.title", count=1))
    assert f"{ALICE.id} · audit" in listing.text and "denied" in listing.text


async def test_configured_admin_gets_admin_menu_on_first_start(harness: BotHarness) -> None:
    await harness.send(ADMIN, "/start")
    [menu] = harness.session.of("setMyCommands")
    assert menu.params["scope"] == {"type": "chat", "chat_id": ADMIN_ID}
    commands = [c["command"] for c in menu.params["commands"]]
    assert commands[-len(ADMIN_COMMANDS) :] == list(ADMIN_COMMANDS)  # after the partner and lead commands
    assert {"content", "grant", "revoke", "audit", "broadcast", "stats", "rules", "payouts", "export"} <= set(
        ADMIN_COMMANDS
    )
    await harness.send(ALICE, "/start")
    assert len(harness.session.of("setMyCommands")) == 1  # partners use the default per-language menu
