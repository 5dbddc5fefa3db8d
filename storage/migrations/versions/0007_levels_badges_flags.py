"""Badges, level changes and order flags

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 23:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "partner_badges",
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("badge", sa.String(length=64), nullable=False),
        sa.Column("awarded_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_partner_badges_partner_id_partners")),
        sa.PrimaryKeyConstraint("partner_id", "badge", name=op.f("pk_partner_badges")),
    )
    op.create_table(
        "level_changes",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("from_level", sa.String(length=32), nullable=False),
        sa.Column("to_level", sa.String(length=32), nullable=False),
        sa.Column("rules_version", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("changed_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_level_changes_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_level_changes")),
    )
    op.create_index("ix_level_changes_partner_changed", "level_changes", ["partner_id", "changed_at"])
    op.create_table(
        "order_flags",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("order_id", BIGINT_PK, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("decided_at", UTC, nullable=True),
        sa.Column("decided_by", BIGINT_PK, nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_order_flags_order_id_orders")),
        sa.ForeignKeyConstraint(["decided_by"], ["partners.id"], name=op.f("fk_order_flags_decided_by_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_flags")),
    )
    op.create_index("ix_order_flags_status_created", "order_flags", ["status", "created_at"])
    op.create_index(op.f("ix_order_flags_order_id"), "order_flags", ["order_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_order_flags_order_id"), table_name="order_flags")
    op.drop_index("ix_order_flags_status_created", table_name="order_flags")
    op.drop_table("order_flags")
    op.drop_index("ix_level_changes_partner_changed", table_name="level_changes")
    op.drop_table("level_changes")
    op.drop_table("partner_badges")
