"""One unit of work per update or job: repositories share its session; only it commits."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.repositories import (
    AuditRepository,
    BroadcastRepository,
    CampaignRepository,
    ContentRepository,
    DashboardRepository,
    DealRepository,
    DigestRepository,
    EventRepository,
    ExportRepository,
    FileRepository,
    LeaderboardRepository,
    LeadRepository,
    LedgerRepository,
    LinkRepository,
    MetricsRepository,
    OutboxRepository,
    PackRepository,
    PartnerRepository,
    PlaybookRepository,
    ProductRepository,
    RhythmRepository,
    RollupRepository,
    SprintRepository,
    StoryRepository,
    StreakRepository,
    WithdrawalRepository,
)


class UnitOfWork:
    """A transaction and the repositories that work inside it.

    `async with uow:` commits when the block succeeds and rolls back when it raises, so a failed
    update leaves nothing half-written.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._session: AsyncSession | None = None
        self.outbox_dirty = False

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work is not open")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        self._session = self._sessionmaker()
        await self._session.begin()
        self.partners = PartnerRepository(self._session)
        self.events = EventRepository(self._session)
        self.audit = AuditRepository(self._session)
        self.outbox = OutboxRepository(self._session)
        self.broadcasts = BroadcastRepository(self._session)
        self.content = ContentRepository(self._session)
        self.products = ProductRepository(self._session)
        self.links = LinkRepository(self._session)
        self.files = FileRepository(self._session)
        self.packs = PackRepository(self._session)
        self.ledger = LedgerRepository(self._session)
        self.withdrawals = WithdrawalRepository(self._session)
        self.metrics = MetricsRepository(self._session)
        self.leads = LeadRepository(self._session)
        self.deals = DealRepository(self._session)
        self.campaigns = CampaignRepository(self._session)
        self.playbooks = PlaybookRepository(self._session)
        self.rollups = RollupRepository(self._session)
        self.digests = DigestRepository(self._session)
        self.leaderboards = LeaderboardRepository(self._session)
        self.stories = StoryRepository(self._session)
        self.rhythm = RhythmRepository(self._session)
        self.sprints = SprintRepository(self._session)
        self.streaks = StreakRepository(self._session)
        self.exports = ExportRepository(self._session)
        self.dashboard = DashboardRepository(self._session)
        self.outbox_dirty = False
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session = self.session
        try:
            if exc_type is None:
                await session.commit()
            else:
                await session.rollback()
        finally:
            await session.close()
            self._session = None

    async def flush(self) -> None:
        await self.session.flush()
