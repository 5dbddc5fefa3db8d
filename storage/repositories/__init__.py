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
from storage.repositories.deals import DealRepository
from storage.repositories.events import EventRepository
from storage.repositories.leads import LeadRepository
from storage.repositories.ledger import LedgerRepository
from storage.repositories.metrics import MetricsRepository
from storage.repositories.outbox import OutboxRepository
from storage.repositories.partners import PartnerRepository
from storage.repositories.payouts import WithdrawalRepository
from storage.repositories.playbooks import PlaybookRepository

__all__ = [
    "AuditRepository",
    "BroadcastRepository",
    "CampaignRepository",
    "ContentRepository",
    "DealRepository",
    "EventRepository",
    "FileRepository",
    "LeadRepository",
    "LedgerRepository",
    "LinkRepository",
    "MetricsRepository",
    "OutboxRepository",
    "PackRepository",
    "PartnerRepository",
    "PlaybookRepository",
    "ProductRepository",
    "WithdrawalRepository",
]
