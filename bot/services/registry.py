"""The use cases available to one update, all sharing its unit of work."""

from __future__ import annotations

from functools import cached_property

from bot.services.behaviour import BehaviourService
from bot.services.broadcasts import BroadcastService
from bot.services.campaigns import CampaignService
from bot.services.content import ContentService
from bot.services.context import ServiceContext
from bot.services.courses import CourseService
from bot.services.dashboard import DashboardService
from bot.services.deals import DealService
from bot.services.digests import DigestService
from bot.services.exports import ExportService
from bot.services.fraud import FraudService
from bot.services.leaderboards import LeaderboardService
from bot.services.leads import LeadService
from bot.services.ledger import SettlementService
from bot.services.levels import LevelService
from bot.services.library import LibraryService
from bot.services.metrics import MetricsService
from bot.services.order_import import OrderImportService
from bot.services.partners import PartnerService
from bot.services.payouts import PayoutService
from bot.services.playbooks import PlaybookService
from bot.services.pools import PoolService
from bot.services.rhythm import RhythmService
from bot.services.roles import RoleService
from bot.services.rules_admin import RulesService
from bot.services.settings import SettingsService
from bot.services.sprints import SprintService
from bot.services.stats import StatsService
from bot.services.stories import StoryService
from bot.services.streaks import StreakService
from bot.services.wallet import WalletService
from storage.uow import UnitOfWork


class UseCases:
    """Built per update by the unit-of-work middleware; use cases are created on first use."""

    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self.uow = uow
        self.ctx = ctx

    @cached_property
    def partners(self) -> PartnerService:
        return PartnerService(self.uow, self.ctx)

    @cached_property
    def roles(self) -> RoleService:
        return RoleService(self.uow, self.ctx)

    @cached_property
    def broadcasts(self) -> BroadcastService:
        return BroadcastService(self.uow, self.ctx)

    @cached_property
    def content(self) -> ContentService:
        return ContentService(self.uow, self.ctx)

    @cached_property
    def order_import(self) -> OrderImportService:
        return OrderImportService(self.uow, self.ctx)

    @cached_property
    def settlement(self) -> SettlementService:
        return SettlementService(self.uow, self.ctx)

    @cached_property
    def settings(self) -> SettingsService:
        return SettingsService(self.uow, self.ctx)

    @cached_property
    def behaviour(self) -> BehaviourService:
        return BehaviourService(self.uow, self.ctx)

    @cached_property
    def digests(self) -> DigestService:
        return DigestService(self.uow, self.ctx)

    @cached_property
    def stats(self) -> StatsService:
        return StatsService(self.uow, self.ctx)

    @cached_property
    def library(self) -> LibraryService:
        return LibraryService(self.uow, self.ctx)

    @cached_property
    def wallet(self) -> WalletService:
        return WalletService(self.uow, self.ctx)

    @cached_property
    def payouts(self) -> PayoutService:
        return PayoutService(self.uow, self.ctx)

    @cached_property
    def exports(self) -> ExportService:
        return ExportService(self.uow, self.ctx)

    @cached_property
    def rules(self) -> RulesService:
        return RulesService(self.uow, self.ctx)

    @cached_property
    def fraud(self) -> FraudService:
        return FraudService(self.uow, self.ctx)

    @cached_property
    def metrics(self) -> MetricsService:
        return MetricsService(self.uow, self.ctx)

    @cached_property
    def levels(self) -> LevelService:
        return LevelService(self.uow, self.ctx)

    @cached_property
    def streaks(self) -> StreakService:
        return StreakService(self.uow, self.ctx)

    @cached_property
    def pools(self) -> PoolService:
        return PoolService(self.uow, self.ctx)

    @cached_property
    def leads(self) -> LeadService:
        return LeadService(self.uow, self.ctx)

    @cached_property
    def deals(self) -> DealService:
        return DealService(self.uow, self.ctx)

    @cached_property
    def campaigns(self) -> CampaignService:
        return CampaignService(self.uow, self.ctx)

    @cached_property
    def courses(self) -> CourseService:
        return CourseService(self.uow, self.ctx)

    @cached_property
    def playbooks(self) -> PlaybookService:
        return PlaybookService(self.uow, self.ctx)

    @cached_property
    def rhythm(self) -> RhythmService:
        return RhythmService(self.uow, self.ctx)

    @cached_property
    def stories(self) -> StoryService:
        return StoryService(self.uow, self.ctx)

    @cached_property
    def sprints(self) -> SprintService:
        return SprintService(self.uow, self.ctx)

    @cached_property
    def leaderboards(self) -> LeaderboardService:
        return LeaderboardService(self.uow, self.ctx)

    @cached_property
    def dashboard(self) -> DashboardService:
        return DashboardService(self.uow, self.ctx)
