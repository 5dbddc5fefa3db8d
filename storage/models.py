"""The relational schema. Alembic migrations under storage/migrations are the only way it is created."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, MetaData, String, Text, true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger primary keys that still autoincrement on SQLite (which only does so for INTEGER).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Partner(Base):
    """A person in the network. Everybody who talks to the bot is a partner; roles add powers."""

    __tablename__ = "partners"
    __table_args__ = (Index("ix_partners_tree_path", "tree_path", postgresql_ops={"tree_path": "varchar_pattern_ops"}),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tg_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    first_name: Mapped[str] = mapped_column(String(128))
    last_name: Mapped[str | None] = mapped_column(String(128))
    tg_language_code: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(8))
    role: Mapped[str] = mapped_column(String(16), default="partner")
    invite_code: Mapped[str] = mapped_column(String(64), unique=True)
    upline_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    tree_path: Mapped[str] = mapped_column(String(1024))
    """Ids from the root down to this partner, '/'-terminated: '/1/5/9/'. Subtree = prefix match."""
    depth: Mapped[int] = mapped_column(Integer, default=0)
    timezone: Mapped[str | None] = mapped_column(String(64))
    """IANA zone; None means the deployment's TIMEZONE."""
    push_hour: Mapped[int | None] = mapped_column(Integer)
    """Local hour of the daily push; None means the default, -1 means turned off."""
    quiet_start_min: Mapped[int | None] = mapped_column(Integer)
    """Quiet hours start, in minutes after local midnight; None means the deployment's QUIET_HOURS."""
    quiet_end_min: Mapped[int | None] = mapped_column(Integer)
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    level: Mapped[str] = mapped_column(String(32), default="member", server_default="member")
    """Commission level (member, silver, gold…); the rules engine moves partners between levels."""
    commission_eligible: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """The plan's `eligibility` condition on the partner's metrics, evaluated daily with levels: an ineligible
    partner earns no per-order commission (their share is not passed up) until an evaluation finds them eligible."""
    segment: Mapped[str | None] = mapped_column(String(16))
    """Activity segment (high, mid, low); None until the first segmentation run."""
    digest_minute: Mapped[int | None] = mapped_column(Integer)
    """Team leads: the local time of the daily team digest in minutes after midnight; None means 08:30, -1 off."""
    weekly_digest: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """Team leads: the weekly digest on Monday, at the daily digest's time."""
    joined_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Event(Base):
    """One behaviour event; append-only."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_partner_occurred", "partner_id", "occurred_at"),
        Index("ix_events_type_occurred", "type", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    type: Mapped[str] = mapped_column(String(48))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    """Set for events that must be recorded at most once (a manual share per item per day, an external event)."""


class AuditEntry(Base):
    """Who tried to do what with which power, and whether it was allowed. Append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_actor_created", "actor_tg_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    actor_tg_id: Mapped[int] = mapped_column(BigInteger)
    actor_partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    action: Mapped[str] = mapped_column(String(48))
    target: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class OutboxMessage(Base):
    """A message the bot sends on its own initiative, written in the transaction that causes it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_due", "status", "not_before"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column()
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    """Urgent messages ignore the recipient's quiet hours."""
    broadcast_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime]
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)


class Broadcast(Base):
    """An admin's message to an audience; its deliveries are outbox rows carrying its id."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    status: Mapped[str] = mapped_column(String(16))
    """running | cancelled | done."""
    audience: Mapped[dict[str, Any]] = mapped_column()
    message: Mapped[dict[str, Any]] = mapped_column()
    total: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    """Audience members left out because messages no longer reach them."""
    progress_chat_id: Mapped[int] = mapped_column(BigInteger)
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_reported: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    final_counts: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    """Its outbox rows by status when it finished (done or cancelled): those rows are deleted after
    OUTBOX_RETENTION_DAYS, the numbers stay."""


class ContentItem(Base):
    """A piece of ready-to-post material in the material center."""

    __tablename__ = "content_items"
    __table_args__ = (
        Index("ix_content_items_status_created", "status", "created_at"),
        Index("ix_content_items_external_key", "external_key", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    external_key: Mapped[str | None] = mapped_column(String(64))
    """An import file's own key for the item: importing the same key again updates it."""
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    """The share text partners post; the partner's tracked link is added to it."""
    url: Mapped[str] = mapped_column(String(2048))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    levels: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Levels the item is for; empty means every level."""
    segments: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Activity segments the item is for; empty means every segment."""
    publish_on: Mapped[list[str]] = mapped_column(JSON, default=list)
    """ISO dates the item is scheduled for."""
    weekdays: Mapped[list[int]] = mapped_column(JSON, default=list)
    """ISO weekdays (1 = Monday) the item is scheduled for. No dates and no weekdays: evergreen."""
    media_kind: Mapped[str | None] = mapped_column(String(16))
    """photo | video | None (text only)."""
    media_file_id: Mapped[str | None] = mapped_column(String(256))
    media_path: Mapped[str | None] = mapped_column(String(1024))
    """The original file, kept for poster rendering."""
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active | archived."""
    revision: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped on every edit; cached posters of older revisions are not reused."""
    created_by: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Product(Base):
    """Something partners sell; every partner gets a tracked link per active product."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2048))
    category: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    list_price_minor: Mapped[int | None] = mapped_column(BigInteger)
    """List price in minor units of `currency`; None for products that are only promoted, never quoted."""
    currency: Mapped[str | None] = mapped_column(String(3))
    level_prices: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Partner price per level: {"silver": {"price_minor": 9900}} or {"gold": {"discount_pct": "15"}}."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TrackedLink(Base):
    """A partner's short link to one content item or product: {PUBLIC_BASE_URL}/r/<slug>."""

    __tablename__ = "tracked_links"
    __table_args__ = (
        Index("ix_tracked_links_partner_content", "partner_id", "content_id", unique=True),
        Index("ix_tracked_links_partner_product", "partner_id", "product_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    content_id: Mapped[int | None] = mapped_column(ForeignKey("content_items.id"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    """Counted clicks (repeats within 30 minutes and bots excluded); the events hold every click."""
    created_at: Mapped[datetime]


class TelegramFile(Base):
    """Telegram's file_id for a file the bot uploaded once (a content picture, a rendered poster)."""

    __tablename__ = "telegram_files"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    file_id: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]


class DailyPack(Base):
    """The items a partner was given for one local day, so the push and /today agree."""

    __tablename__ = "daily_packs"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    """The partner's local date, ISO."""
    content_ids: Mapped[list[int]] = mapped_column(JSON)
    pushed: Mapped[bool] = mapped_column(Boolean, default=False)
    """True when the scheduled push queued it (False: only asked for with /today so far)."""
    created_at: Mapped[datetime]


class RuleVersion(Base):
    """A commission plan as uploaded; published versions are never changed, only superseded."""

    __tablename__ = "rule_versions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    plan_text: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    """draft | published | superseded."""
    created_by: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]


class Order(Base):
    """An order from the shop (API, CSV or chat). (source, external_id) is its idempotency key."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_source_external", "source", "external_id", unique=True),
        Index("ix_orders_partner_paid", "partner_id", "paid_at"),
        Index("ix_orders_paid_at", "paid_at"),  # a day's orders for the behaviour rollups
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    """Canonical hash of the payload: a replay with the same meaning is identical, another payload conflicts."""
    customer_id: Mapped[str] = mapped_column(String(64))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    attribution: Mapped[str] = mapped_column(String(16))
    """partner_code | coupon | customer | none."""
    coupon: Mapped[str | None] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    paid_at: Mapped[datetime]
    rules_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    """settled | unattributed | held (flagged, waiting for an admin) | void."""
    created_at: Mapped[datetime]


class Refund(Base):
    """A refund from the shop; parked until its order arrives. (source, external_id) is its idempotency key."""

    __tablename__ = "refunds"
    __table_args__ = (Index("ix_refunds_source_external", "source", "external_id", unique=True),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    order_external_id: Mapped[str] = mapped_column(String(64), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    """applied | parked (the order has not arrived yet)."""
    created_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]


class LedgerEntry(Base):
    """One line of a double-entry transaction: the lines of one `txn` sum to zero. Append-only."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_txn_line", "txn", "line", unique=True),
        Index("ix_ledger_entries_partner_created", "partner_id", "created_at"),
        Index("ix_ledger_entries_created", "created_at"),  # a day's commission for the behaviour rollups
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    txn: Mapped[str] = mapped_column(String(160))
    """The transaction's idempotency key, e.g. 'order:api:A1001'; a replay cannot write its lines twice."""
    line: Mapped[int] = mapped_column(Integer)
    account: Mapped[str] = mapped_column(String(64))
    """'partner:<id>' or a platform account such as 'platform:commission'."""
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    bucket: Mapped[str] = mapped_column(String(16))
    """pending | available | requested | paid for partners; the account's own name for platform lines."""
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(24))
    """commission | reversal | release | withdrawal | payout | dividend | adjustment."""
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    tier: Mapped[int | None] = mapped_column(Integer)
    level: Mapped[str | None] = mapped_column(String(32))
    rate: Mapped[str | None] = mapped_column(String(16))
    base_minor: Mapped[int | None] = mapped_column(BigInteger)
    rule: Mapped[str | None] = mapped_column(String(120))
    rules_version: Mapped[int | None] = mapped_column(Integer)
    available_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class CustomerBinding(Base):
    """First-touch binding of a shop customer to the partner who brought them."""

    __tablename__ = "customer_bindings"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    bound_at: Mapped[datetime]


class Coupon(Base):
    """A coupon code owned by a partner; an order using it is attributed to them."""

    __tablename__ = "coupons"
    __table_args__ = (Index("ix_coupons_campaign_partner", "campaign_id", "partner_id", unique=True),)

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_campaigns.id"))
    """The campaign that issued it; one personal code per partner per campaign. None for codes made elsewhere."""
    created_at: Mapped[datetime]


class CouponCampaign(Base):
    """An admin's coupon offer; partners each get a personal code for it with /coupon."""

    __tablename__ = "coupon_campaigns"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    discount_kind: Mapped[str] = mapped_column(String(16))
    """percent | amount."""
    discount_value: Mapped[int] = mapped_column(BigInteger)
    """Whole percent for `percent`; minor units of `currency` for `amount`."""
    currency: Mapped[str | None] = mapped_column(String(3))
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    max_uses: Mapped[int | None] = mapped_column(Integer)
    """Redemptions allowed per personal code; None for no limit."""
    eligible_levels: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Levels whose partners may take a code; empty for every level."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    created_at: Mapped[datetime]


class CouponRedemption(Base):
    """An order that used a partner's coupon; one row per order, so a replayed order counts once."""

    __tablename__ = "coupon_redemptions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(ForeignKey("coupons.code"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    redeemed_at: Mapped[datetime]


class Withdrawal(Base):
    """A partner's request to be paid out. Its money moves through the ledger: available → requested on the
    request, back to available on a rejection, requested → paid once finance has paid it."""

    __tablename__ = "withdrawals"
    __table_args__ = (Index("ix_withdrawals_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    """requested | approved | rejected | paid."""
    reason: Mapped[str | None] = mapped_column(String(500))
    """Why an admin rejected it."""
    reference: Mapped[str | None] = mapped_column(String(128))
    """The payment's reference (bank or wallet transaction id), given when it is marked paid."""
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    """When it was approved or rejected."""
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    paid_at: Mapped[datetime | None]


class PartnerBadge(Base):
    """A badge a partner earned (rules-engine conditions); awarded once, kept for good."""

    __tablename__ = "partner_badges"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    badge: Mapped[str] = mapped_column(String(64), primary_key=True)
    awarded_at: Mapped[datetime]


class LevelChange(Base):
    """A partner's move between levels, with the metrics that decided it. Append-only."""

    __tablename__ = "level_changes"
    __table_args__ = (Index("ix_level_changes_partner_changed", "partner_id", "changed_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    from_level: Mapped[str] = mapped_column(String(32))
    to_level: Mapped[str] = mapped_column(String(32))
    rules_version: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column()
    changed_at: Mapped[datetime]


class OrderFlag(Base):
    """A suspicious order held until an admin releases or voids it (self-purchase, shared customer, velocity)."""

    __tablename__ = "order_flags"
    __table_args__ = (Index("ix_order_flags_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    """self_purchase | shared_customer | velocity."""
    detail: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))
    """open | released | voided | refunded (the held order was refunded in full before anyone decided)."""
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))


class Lead(Base):
    """A partner's prospect. Contact details are visible only to the owning partner and admins."""

    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_partner_number", "partner_id", "number", unique=True),
        Index("ix_leads_partner_stage", "partner_id", "stage"),
        Index("ix_leads_partner_phone", "partner_id", "phone"),
        Index("ix_leads_partner_telegram", "partner_id", "telegram"),
        Index("ix_leads_partner_wechat", "partner_id", "wechat"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    number: Mapped[int] = mapped_column(Integer)
    """The partner's own running number (#1, #2…), how they name a lead in commands; never reused."""
    name: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str | None] = mapped_column(String(32))
    """Digits only, with a leading + kept for international numbers."""
    wechat: Mapped[str | None] = mapped_column(String(64))
    telegram: Mapped[str | None] = mapped_column(String(64))
    """Username without the @, lower-cased."""
    tg_user_id: Mapped[int | None] = mapped_column(BigInteger)
    """Known when the lead came from a forwarded message or a shared contact."""
    note: Mapped[str | None] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(16), default="new")
    source: Mapped[str] = mapped_column(String(16))
    """command | form | forward | contact."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_followup_at: Mapped[datetime | None]
    won_at: Mapped[datetime | None]


class LeadFollowup(Base):
    """One follow-up record on a lead; append-only. A revisit is a follow-up on a due or won lead."""

    __tablename__ = "lead_followups"
    __table_args__ = (
        Index("ix_lead_followups_lead_created", "lead_id", "created_at"),
        Index("ix_lead_followups_partner_created", "partner_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    channel: Mapped[str] = mapped_column(String(16))
    """call | chat | visit."""
    outcome: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text)
    next_step: Mapped[str | None] = mapped_column(Text)
    revisit: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class LeadReminder(Base):
    """A revisit reminder. Its job fires at `due_at` (UTC, set from the partner's local time)."""

    __tablename__ = "lead_reminders"
    __table_args__ = (
        Index("ix_lead_reminders_lead_status", "lead_id", "status"),
        Index("ix_lead_reminders_partner_due", "partner_id", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending | sent (fired, waiting for the partner) | done | snoozed (replaced by a later one) | cancelled."""
    created_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class Quote(Base):
    """A price quote a partner gave a lead."""

    __tablename__ = "quotes"
    __table_args__ = (Index("ix_quotes_partner_created", "partner_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    valid_until: Mapped[datetime]
    created_at: Mapped[datetime]


class ChatOrder(Base):
    """An offline order a partner registered in chat; once an admin confirms it, it enters the ledger as an order."""

    __tablename__ = "chat_orders"
    __table_args__ = (Index("ix_chat_orders_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    sku: Mapped[str] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending | confirmed | rejected."""
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    """The ledger order it became on confirmation (source "chat", external id "chat-<id>")."""
    reason: Mapped[str | None] = mapped_column(String(300))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class ProgramEvent(Base):
    """An event partners invite leads to (a salon, a store opening, a webinar). Not a behaviour `Event`."""

    __tablename__ = "program_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime]
    place: Mapped[str | None] = mapped_column(String(300))
    online_url: Mapped[str | None] = mapped_column(String(2048))
    capacity: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active | cancelled."""
    created_by: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    created_at: Mapped[datetime]


class EventInvitation(Base):
    """One lead invited by one partner to one event; its slug is the RSVP link /e/<slug>."""

    __tablename__ = "event_invitations"
    __table_args__ = (Index("ix_event_invitations_event_lead", "event_id", "lead_id", unique=True),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("program_events.id"), index=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    lead_name: Mapped[str] = mapped_column(String(128))
    """The name on the invitation, kept for the RSVP page even if the lead is later deleted."""
    created_at: Mapped[datetime]


class Rsvp(Base):
    """An answer on an invitation's RSVP page; the latest answer counts."""

    __tablename__ = "rsvps"
    __table_args__ = (Index("ix_rsvps_invitation_responded", "invitation_id", "responded_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("event_invitations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    attending: Mapped[bool] = mapped_column(Boolean)
    responded_at: Mapped[datetime]


class PlaybookProgress(Base):
    """One partner's way through one playbook (playbooks/engine.py): the engine's state as JSON, and when the
    sweep job should look at it again."""

    __tablename__ = "playbook_progress"
    __table_args__ = (
        Index("ix_playbook_progress_status_wake", "status", "wake_at"),
        Index("uq_playbook_progress_partner_playbook", "partner_id", "playbook", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    playbook: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime]
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The engine's `PlaybookState` steps, current step and finished_at (see bot/services/playbooks.py)."""
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active · paused (for this partner, by an admin) · finished."""
    paused_by: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    wake_at: Mapped[datetime | None]
    """When the engine asked to be run again; None: only the partner's next event moves it."""
    updated_at: Mapped[datetime]


class PlaybookSwitch(Base):
    """A playbook paused for everyone by an admin (no row: running)."""

    __tablename__ = "playbook_switches"

    playbook: Mapped[str] = mapped_column(String(40), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]


class RhythmProgress(Base):
    """One partner's tiered-operations rhythm (playbooks/rhythm.py): their segment and since when, each touch's
    send times in that segment, and when the touch sweep should look at them again. `partners.segment` mirrors
    `segment` for content targeting and broadcast audiences."""

    __tablename__ = "rhythm_state"
    __table_args__ = (
        Index("ix_rhythm_state_status_wake", "status", "wake_at"),
        Index("uq_rhythm_state_partner_rhythm", "partner_id", "rhythm", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    rhythm: Mapped[str] = mapped_column(String(40))
    segment: Mapped[str | None] = mapped_column(String(16))
    segment_since: Mapped[datetime | None]
    touches: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Per touch key: the UTC ISO times it was sent in the current segment, oldest first."""
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active · paused (for this partner, by an admin)."""
    paused_by: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    stopped_at: Mapped[datetime | None]
    """When a touch last stopped for lack of answers (no send since); None: none stopped."""
    wake_at: Mapped[datetime | None]
    """The engine's next wake-up (a send time, or the next day's); the sweep reads only rows due by now."""
    updated_at: Mapped[datetime]


class Sprint(Base):
    """A monthly sprint (月度冲刺, bot/domain/sprints.py): a metric, a target, a local-date window stored in UTC,
    prizes, an audience, and which of its stages have been announced."""

    __tablename__ = "sprints"
    __table_args__ = (Index("ix_sprints_status_starts", "status", "starts_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(80))
    metric: Mapped[str] = mapped_column(String(16))
    """shares | leads | followups | orders | gmv | recruits."""
    target: Mapped[int] = mapped_column(BigInteger)
    """The individual target: a count, or minor units of `currency` for gmv."""
    currency: Mapped[str] = mapped_column(String(3))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    """Exclusive: the local midnight after the last day (or when an admin ended it early)."""
    prizes: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(String(80))
    """everyone | level:<level> | team:<lead invite code> | segment:<high|mid|low>."""
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active (upcoming or running) · ended (results computed) · cancelled (ended before it started)."""
    stages_done: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Stages announced or skipped (kickoff, mid, final, results), each once."""
    stage_cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    """The last partner id the stage in progress was announced to (batches); 0 between stages."""
    created_by: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    created_at: Mapped[datetime]
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    """The admin who ended or cancelled it early; None when it ran its course."""


class SprintResult(Base):
    """A participant's final standing in a sprint, written once when it ends."""

    __tablename__ = "sprint_results"

    sprint_id: Mapped[int] = mapped_column(ForeignKey("sprints.id"), primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
    rank: Mapped[int] = mapped_column(Integer)
    winner: Mapped[bool] = mapped_column(Boolean)


class Story(Base):
    """A partner's case story: submitted with /story, approved or rejected by an admin; an approved one is featured
    in everyone's daily pack for one day (`featured_on`, one story a day network-wide), then listed in /stories."""

    __tablename__ = "stories"
    __table_args__ = (
        Index("ix_stories_partner_status", "partner_id", "status"),
        Index("ix_stories_status_featured", "status", "featured_on"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    """The author."""
    text: Mapped[str] = mapped_column(Text)
    photo_file_id: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending · approved · rejected."""
    reason: Mapped[str | None] = mapped_column(String(500))
    """Why an admin rejected it (the author is told)."""
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    submitted_at: Mapped[datetime]
    reviewed_at: Mapped[datetime | None]
    featured_on: Mapped[str | None] = mapped_column(String(10), unique=True)
    """The local day (ISO date) whose daily pack features it; each partner sees it on that day of their own zone."""


class Spotlight(Base):
    """The partner featured in the daily pack for one week (专属展示位): an admin's pick, or the top riser."""

    __tablename__ = "spotlights"

    week_start: Mapped[str] = mapped_column(String(10), primary_key=True)
    """The Monday (ISO date, deployment TIMEZONE) the week starts on."""
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    blurb: Mapped[str | None] = mapped_column(String(200))
    picked_by: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    """The admin who picked them; None: the weekly job's top riser."""
    picked_at: Mapped[datetime]


class LeaderboardScore(Base):
    """One partner's score on one leaderboard (bot/domain/leaderboards.py names boards: ``points:w:2026-11-23``).

    The durable source of every board; Redis sorted sets, when configured, mirror it. (board, score) serves the
    top list in order; ranks come from `leaderboard_counts`."""

    __tablename__ = "leaderboard_scores"
    __table_args__ = (Index("ix_leaderboard_scores_board_score", "board", "score"),)

    board: Mapped[str] = mapped_column(String(48), primary_key=True)
    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    score: Mapped[int] = mapped_column(BigInteger)


class LeaderboardCount(Base):
    """How many partners have each score on a board, kept with the scores: "my rank" = 1 + the sum of the counts
    above my score, a range read over distinct scores (a few thousand) instead of over partners (a million)."""

    __tablename__ = "leaderboard_counts"

    board: Mapped[str] = mapped_column(String(48), primary_key=True)
    score: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class LeaderboardFolded(Base):
    """Events folded into the scores lately (the sync re-scans a trailing window; these make that idempotent)."""

    __tablename__ = "leaderboard_folded"

    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    folded_at: Mapped[datetime] = mapped_column(index=True)


class LeaderboardSync(Base):
    """The sync's low-water mark: every event with an id up to `safe_id` is folded (or counts for nothing)."""

    __tablename__ = "leaderboard_sync"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    safe_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class LeaderboardStanding(Base):
    """The rank last seen per partner on the board rank-change notices follow, to tell when it moved."""

    __tablename__ = "leaderboard_standings"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    board: Mapped[str] = mapped_column(String(48))
    rank: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class LeaderboardPush(Base):
    """A weekly or monthly leaderboard push a partner got (`period`: ``w:2026-11-23`` / ``m:2026-11-01``)."""

    __tablename__ = "leaderboard_pushes"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    pushed_at: Mapped[datetime]


class LeaderboardOptOut(Base):
    """Partners who turned leaderboard pushes and rank notices off in /settings (/rank still works)."""

    __tablename__ = "leaderboard_optouts"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    created_at: Mapped[datetime]


class PartnerStreak(Base):
    """Where the streak sweep (bot/services/streaks.py) is with one partner: the last local day whose end it
    checked for a freeze, and the last local day whose evening at-risk check is done (reminded or not needed)."""

    __tablename__ = "partner_streaks"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    checked_day: Mapped[str | None] = mapped_column(String(10))
    """ISO date: the freeze check has looked at every day up to this one."""
    evening_day: Mapped[str | None] = mapped_column(String(10))
    """ISO date: tonight's at-risk reminder went, or was not needed, on this local day."""
    updated_at: Mapped[datetime]


class JobCursor(Base):
    """How far a sweep over an append-only table has read (e.g. `levels:events`: the last event id evaluated)."""

    __tablename__ = "job_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class DailyRollup(Base):
    """One partner's behaviour counts for one day of the deployment's calendar (bot/domain/behaviour.py DayCounts):
    what dashboards and digests read. Recomputed from events, orders, ledger and reminders by the rollup job, so a
    row can always be rebuilt; a day without anything has no row."""

    __tablename__ = "daily_rollups"
    __table_args__ = (Index("ix_daily_rollups_day_partner", "day", "partner_id"),)

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    content_sent: Mapped[int] = mapped_column(Integer, default=0)
    shares: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    leads: Mapped[int] = mapped_column(Integer, default=0)
    followups: Mapped[int] = mapped_column(Integer, default=0)
    revisits: Mapped[int] = mapped_column(Integer, default=0)
    leads_due: Mapped[int] = mapped_column(Integer, default=0)
    quotes: Mapped[int] = mapped_column(Integer, default=0)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    gmv_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    commission_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    actions: Mapped[int] = mapped_column(Integer, default=0)


class DigestSent(Base):
    """A team digest that went out (or was built for the outbox): one per lead, kind and period, so the sweep that
    finds leads whose digest time has come builds each digest once."""

    __tablename__ = "digests_sent"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    """daily | weekly"""
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    """The local date of the daily digest, or the Monday of the weekly one (ISO)."""
    sent_at: Mapped[datetime]


class PoolPreviewSent(Base):
    """A closed pool period's preview sent to an admin (the daily announcement tells each admin once), kept here and
    not only as the outbox row, which is deleted after OUTBOX_RETENTION_DAYS."""

    __tablename__ = "pool_previews"

    pool: Mapped[str] = mapped_column(String(100), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    sent_at: Mapped[datetime]


class DashboardSession(Base):
    """A web dashboard session opened with a one-time /dashboard link; the cookie's random id is kept hashed."""

    __tablename__ = "dashboard_sessions"
    __table_args__ = (Index("ix_dashboard_sessions_expires", "expires_at"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class DashboardLoginToken(Base):
    """A /dashboard login link that has been used, remembered until it expires so it cannot be used again."""

    __tablename__ = "dashboard_login_tokens"
    __table_args__ = (Index("ix_dashboard_login_tokens_expires", "expires_at"),)

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    used_at: Mapped[datetime]
    expires_at: Mapped[datetime]
