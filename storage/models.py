"""The relational schema. Alembic migrations under storage/migrations are the only way it is created."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, MetaData, String, Text
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
