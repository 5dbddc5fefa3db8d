"""Streak freezes and at-risk reminders

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "partner_streaks",
        sa.Column("partner_id", BigIntPK, nullable=False),
        sa.Column("checked_day", sa.String(length=10), nullable=True),
        sa.Column("evening_day", sa.String(length=10), nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_partner_streaks_partner_id_partners")),
        sa.PrimaryKeyConstraint("partner_id", name=op.f("pk_partner_streaks")),
    )
    op.create_table(
        "job_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_cursors")),
    )


def downgrade() -> None:
    op.drop_table("job_cursors")
    op.drop_table("partner_streaks")
