"""Sign-up, the referral tree, profiles and language."""

from __future__ import annotations

import re
from typing import Protocol

from bot.domain.errors import UsageError
from bot.domain.events import EventSource, EventType
from bot.domain.referral import (
    Binding,
    BindingInput,
    decide_binding,
    is_valid_payload,
    new_invite_code,
    recruit_deep_link,
)
from bot.domain.roles import Role, effective_role
from bot.domain.rules import Condition, MetricsError, Titles
from bot.i18n import SUPPORTED
from bot.services.acting import language_of
from bot.services.context import ServiceContext
from bot.services.leads import LeadService
from bot.services.metrics import MetricsService
from bot.services.notify import enqueue_text
from bot.services.playbooks import PlaybookService
from bot.services.streaks import StreakService
from bot.services.views import (
    BadgeView,
    MemberView,
    NextLevelView,
    PartnerView,
    ProfileView,
    Registration,
    StandingView,
    TeamView,
    TelegramProfile,
)
from storage.models import Partner
from storage.uow import UnitOfWork

CODE_ATTEMPTS = 8


class Named(Protocol):
    """A partner as far as their name goes: a mapped `Partner` or a plain row of one."""

    @property
    def tg_user_id(self) -> int: ...
    @property
    def first_name(self) -> str: ...
    @property
    def last_name(self) -> str | None: ...


def display_name(partner: Named) -> str:
    return " ".join(part for part in (partner.first_name, partner.last_name) if part) or str(partner.tg_user_id)


def _titles(titles: Titles | None) -> dict[str, str]:
    return {"zh": titles.zh, "en": titles.en} if titles is not None else {}


def _named_order(condition: Condition) -> list[str]:
    """The condition's metrics in the order its text names them (`sales_30d` before `active_recruits`)."""

    def first(metric: str) -> int:
        found = re.search(rf"\b{re.escape(metric)}\b", condition.text)
        return found.start() if found else len(condition.text)

    return sorted(condition.metrics, key=lambda m: (first(m), m))


def _holds(condition: Condition | None, metrics: dict[str, int | str]) -> bool:
    if condition is None:
        return False
    try:
        return condition.evaluate(metrics)
    except MetricsError:
        return False


def ancestor_ids(partner: Partner) -> list[int]:
    """The partner's uplines, nearest first, read from the materialised path."""
    ids = [int(x) for x in partner.tree_path.strip("/").split("/") if x]
    return list(reversed(ids[:-1]))


class PartnerService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    def view(self, partner: Partner) -> PartnerView:
        return PartnerView(
            id=partner.id,
            tg_user_id=partner.tg_user_id,
            display_name=display_name(partner),
            username=partner.username,
            role=effective_role(Role(partner.role), configured_admin=partner.tg_user_id in self._ctx.admin_ids),
            language=language_of(self._ctx, partner),
            invite_code=partner.invite_code,
            joined_at=partner.joined_at,
            upline_id=partner.upline_id,
        )

    async def current(self, profile: TelegramProfile) -> PartnerView | None:
        """The registered partner behind an update, with Telegram's profile fields refreshed."""
        partner = await self._uow.partners.by_tg_id(profile.tg_user_id)
        if partner is None:
            return None
        self._refresh(partner, profile)
        return self.view(partner)

    def _refresh(self, partner: Partner, profile: TelegramProfile) -> None:
        fresh = (profile.first_name, profile.last_name, profile.username, profile.language_code)
        if (partner.first_name, partner.last_name, partner.username, partner.tg_language_code) != fresh:
            partner.first_name, partner.last_name, partner.username, partner.tg_language_code = fresh
            partner.updated_at = self._ctx.clock.now()
        if partner.unreachable:
            partner.unreachable = False  # they wrote to us, so messages reach them again

    async def register(self, profile: TelegramProfile, payload: str | None) -> Registration:
        """Handle /start: create the partner if new and apply first-touch upline binding."""
        uow, now = self._uow, self._ctx.clock.now()
        partner = await uow.partners.by_tg_id(profile.tg_user_id)
        code_owner = await uow.partners.by_invite_code(payload) if payload and is_valid_payload(payload) else None
        binding = decide_binding(
            BindingInput(
                partner_id=partner.id if partner else None,
                current_upline_id=partner.upline_id if partner else None,
                payload=payload,
                code_owner_id=code_owner.id if code_owner else None,
                code_owner_ancestor_ids=ancestor_ids(code_owner) if code_owner else (),
            )
        )
        upline = code_owner if binding is Binding.BOUND else None
        created = partner is None
        if partner is None:
            partner = Partner(
                tg_user_id=profile.tg_user_id,
                first_name=profile.first_name,
                last_name=profile.last_name,
                username=profile.username,
                tg_language_code=profile.language_code,
                role=Role.PARTNER.value,
                invite_code=await self._fresh_code(),
                depth=0,
                unreachable=False,
                joined_at=now,
                updated_at=now,
            )
            await uow.partners.add(partner, upline)
            uow.events.add(
                partner_id=partner.id,
                type=EventType.REGISTERED,
                occurred_at=now,
                source=EventSource.BOT,
                payload={"upline_id": partner.upline_id, "binding": binding.value},
            )
            await PlaybookService(uow, self._ctx).start(partner)  # the 7-day start's welcome
        else:
            self._refresh(partner, profile)
            if upline is not None:
                await self._attach_existing(partner, upline)
        if upline is not None:
            await self._welcome_recruit_to_upline(partner, upline)
        current_upline = upline or (await uow.partners.get(partner.upline_id) if partner.upline_id else None)
        return Registration(
            partner=self.view(partner),
            created=created,
            binding=binding,
            upline_name=display_name(current_upline) if current_upline else None,
        )

    async def _fresh_code(self) -> str:
        for _ in range(CODE_ATTEMPTS):
            code = new_invite_code(self._ctx.choice)
            if not await self._uow.partners.code_taken(code):
                return code
        raise RuntimeError("could not find a free invite code")

    async def _attach_existing(self, partner: Partner, upline: Partner) -> None:
        """Bind a partner who had no upline yet; their own downline moves along with them."""
        old_prefix, old_depth = partner.tree_path, partner.depth
        self._uow.partners.place(partner, upline)
        await self._uow.partners.rebase_subtree(old_prefix, partner.tree_path, partner.depth - old_depth)
        partner.updated_at = self._ctx.clock.now()

    async def _welcome_recruit_to_upline(self, recruit: Partner, upline: Partner) -> None:
        uow, now = self._uow, self._ctx.clock.now()
        uow.events.add(
            partner_id=upline.id,
            type=EventType.INVITED,
            occurred_at=now,
            source=EventSource.BOT,
            payload={"recruit_id": recruit.id},
        )
        await uow.flush()
        count = await uow.partners.count_at_level(upline, 1)
        t = self._ctx.translator.texts(self.view(upline).language)
        await enqueue_text(
            uow,
            self._ctx,
            recipient=upline,
            dedupe_key=f"recruit:upline:{upline.id}:{recruit.id}",
            text=t("notice.new_recruit", name=display_name(recruit), count=count),
        )

    async def profile(self, partner_id: int) -> ProfileView:
        uow = self._uow
        partner = await self._require(partner_id)
        upline = await uow.partners.get(partner.upline_id) if partner.upline_id else None
        level1, level2 = await uow.partners.count_levels(partner, (1, 2))
        self._record(partner, EventType.PROFILE_VIEWED)
        return ProfileView(
            partner=self.view(partner),
            upline_name=display_name(upline) if upline else None,
            level1=level1,
            level2=level2,
            deep_link=recruit_deep_link(self._ctx.bot_username, partner.invite_code),
            standing=await self._standing(partner),
        )

    async def _standing(self, partner: Partner) -> StandingView:
        """The partner's level and badges under the plan in force, and what the level above asks for.

        A level the plan no longer has counts as the first one (as in /wallet's rates): the next level is the
        second. The metrics are those the daily level review uses (bot.services.metrics), as of now."""
        from bot.services.ledger import SettlementService  # here: bot.services.ledger imports this module

        now = self._ctx.clock.now()
        _, plan = await SettlementService(self._uow, self._ctx).plan_for(now)
        held = (await self._uow.metrics.badges_of({partner.id})).get(partner.id, set())
        order = {name: n for n, name in enumerate(plan.badges)}  # the plan's order; retired badges last
        badges = tuple(
            BadgeView(name, _titles(plan.badges[name].title), plan.badges[name].icon)
            if name in plan.badges
            else BadgeView(name, {})
            for name in sorted(held, key=lambda n: (order.get(n, len(order)), n))
        )
        names = list(plan.levels)
        here = names.index(partner.level) if partner.level in plan.levels else 0
        current = plan.levels.get(partner.level)
        following: NextLevelView | None = None
        if here + 1 < len(names):
            name = names[here + 1]
            condition = plan.levels[name].promote_when
            needed = condition.metrics if condition is not None else ()
            metrics = (await MetricsService(self._uow, self._ctx).for_rows([partner], now, only=needed))[partner.id]
            following = NextLevelView(
                name=name,
                titles=_titles(plan.levels[name].title),
                condition=condition.text if condition is not None else None,
                values=tuple((m, metrics[m]) for m in _named_order(condition)) if condition is not None else (),
                met=_holds(condition, metrics),
            )
        return StandingView(
            level=partner.level,
            titles=_titles(current.title if current is not None else None),
            badges=badges,
            next=following,
            streak=await StreakService(self._uow, self._ctx).status(partner),
        )

    async def recruit_link(self, partner_id: int) -> str:
        partner = await self._require(partner_id)
        self._record(partner, EventType.LINK_REQUESTED)
        return recruit_deep_link(self._ctx.bot_username, partner.invite_code)

    async def record_card(self, partner_id: int) -> None:
        self._record(await self._require(partner_id), EventType.CARD_GENERATED)

    async def set_language(self, partner_id: int, language: str) -> PartnerView:
        if language not in SUPPORTED:
            raise UsageError("lang.usage")
        partner = await self._require(partner_id)
        partner.language = language
        partner.updated_at = self._ctx.clock.now()
        self._record(partner, EventType.LANGUAGE_CHANGED, {"language": language})
        return self.view(partner)

    async def team(self, partner_id: int, newest: int = 10) -> TeamView:
        """A team lead's team: by default their whole referral subtree."""
        uow = self._uow
        partner = await self._require(partner_id)
        members = await uow.partners.direct_downline(partner, newest)
        level1, level2 = await uow.partners.count_levels(partner, (1, 2))
        overdue_counts = await LeadService(uow, self._ctx).overdue_by_member(partner)
        overdue = []
        for member_id, count in sorted(overdue_counts.items(), key=lambda item: (-item[1], item[0])):
            member = await uow.partners.get(member_id)
            if member is not None:
                overdue.append((display_name(member), count))
        return TeamView(
            size=await uow.partners.subtree_size(partner),
            level1=level1,
            level2=level2,
            newest=tuple(MemberView(name=display_name(m), joined_at=m.joined_at) for m in members),
            overdue=tuple(overdue),
        )

    async def _require(self, partner_id: int) -> Partner:
        partner = await self._uow.partners.get(partner_id)
        if partner is None:
            raise LookupError(f"partner {partner_id} does not exist")
        return partner

    def _record(self, partner: Partner, type: EventType, payload: dict[str, object] | None = None) -> None:
        self._uow.events.add(
            partner_id=partner.id, type=type, occurred_at=self._ctx.clock.now(), source=EventSource.BOT, payload=payload
        )
