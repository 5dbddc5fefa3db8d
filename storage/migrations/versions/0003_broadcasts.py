"""Admin broadcasts, and the outbox rows that deliver them

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 21:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("created_by", BIGINT_PK, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("progress_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("progress_message_id", sa.BigInteger(), nullable=True),
        sa.Column("last_reported", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["partners.id"], name=op.f("fk_broadcasts_created_by_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("broadcast_id", BIGINT_PK, nullable=True))
        batch.create_index(batch.f("ix_outbox_broadcast_id"), ["broadcast_id"], unique=False)
        batch.create_foreign_key(batch.f("fk_outbox_broadcast_id_broadcasts"), "broadcasts", ["broadcast_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(batch.f("fk_outbox_broadcast_id_broadcasts"), type_="foreignkey")
        batch.drop_index(batch.f("ix_outbox_broadcast_id"))
        batch.drop_column("broadcast_id")
    op.drop_table("broadcasts")
