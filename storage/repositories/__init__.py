"""Repositories: they query and flush, and never commit. The unit of work commits."""

from storage.repositories.audit import AuditRepository
from storage.repositories.broadcasts import BroadcastRepository
from storage.repositories.campaigns import CampaignRepository
from storage.repositories.content import (
    ContentRepository,
    FileRepository,
    LinkRepository,
    PackRepository,
    ProductRepository,
)
from storage.repositories.dashboard import DashboardRepository
from storage.repositories.deals import DealRepository
from storage.repositories.digests import DigestRepository
from storage.repositories.events import EventRepository
from storage.repositories.exports import ExportRepository
from storage.repositories.leaderboards import LeaderboardRepository
from storage.repositories.leads import LeadRepository
from storage.repositories.ledger import LedgerRepository
from storage.repositories.metrics import MetricsRepository
from storage.repositories.outbox import OutboxRepository
from storage.repositories.partners import PartnerRepository
from storage.repositories.payouts import WithdrawalRepository
from storage.repositories.playbooks import PlaybookRepository
from storage.repositories.rhythm import RhythmRepository
from storage.repositories.rollups import RollupRepository
from storage.repositories.sprints import SprintRepository
from storage.repositories.stories import StoryRepository
from storage.repositories.streaks import StreakRepository

__all__ = [
    "AuditRepository",
    "BroadcastRepository",
    "CampaignRepository",
    "ContentRepository",
    "DashboardRepository",
    "DealRepository",
    "DigestRepository",
    "EventRepository",
    "ExportRepository",
    "FileRepository",
    "LeadRepository",
    "LeaderboardRepository",
    "LedgerRepository",
    "LinkRepository",
    "MetricsRepository",
    "OutboxRepository",
    "PackRepository",
    "PartnerRepository",
    "PlaybookRepository",
    "ProductRepository",
    "RhythmRepository",
    "RollupRepository",
    "SprintRepository",
    "StoryRepository",
    "StreakRepository",
    "WithdrawalRepository",
]
