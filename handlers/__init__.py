"""aiogram routers, thin: parse the update, call one use case, render the result."""

from __future__ import annotations

from aiogram import Router

from handlers import (
    admin,
    broadcast,
    campaigns,
    content,
    courses,
    dashboard,
    deals,
    denied,
    errors,
    exports,
    fallback,
    flags,
    language,
    lead,
    leaderboards,
    leads,
    library,
    order_import,
    payouts,
    playbooks,
    pools,
    profile,
    rules,
    settings,
    sprints,
    start,
    stats,
    stories,
    wallet,
)


def build_routers() -> list[Router]:
    """Every router, in the order they are tried. The catch-all `fallback` must stay last."""
    return [
        errors.build_router(),
        start.build_router(),
        profile.build_router(),
        playbooks.build_router(),  # before the prospect routers: a partner's own contact is their day-0 profile
        content.build_router(),
        wallet.build_router(),
        language.build_router(),
        settings.build_router(),
        admin.build_router(),
        broadcast.build_router(),
        lead.build_router(),
        stats.build_router(),
        library.build_router(),
        rules.build_router(),
        payouts.build_router(),
        exports.build_router(),
        order_import.build_router(),
        flags.build_router(),
        pools.build_router(),
        leads.build_router(),
        deals.build_router(),
        campaigns.build_router(),
        courses.build_router(),
        leaderboards.build_router(),
        stories.build_router(),
        sprints.build_router(),
        dashboard.build_router(),
        denied.build_router(),
        fallback.build_router(),  # catch-all: unknown commands, free text, expired buttons
    ]
