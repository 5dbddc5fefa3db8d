"""Daily behaviour rollups per partner (the dashboard's source), and team digests' settings and log

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = ("content_sent", "shares", "clicks", "leads", "followups", "revisits", "leads_due", "quotes", "orders")


def upgrade() -> None:
    op.create_table(
        "daily_rollups",
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column("gmv_minor", sa.BigInteger(), nullable=False),
        sa.Column("commission_minor", sa.BigInteger(), nullable=False),
        sa.Column("actions", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_daily_rollups_partner_id_partners")),
        sa.PrimaryKeyConstraint("partner_id", "day", name=op.f("pk_daily_rollups")),
    )
    op.create_index("ix_daily_rollups_day_partner", "daily_rollups", ["day", "partner_id"])
    op.create_table(
        "digests_sent",
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_digests_sent_partner_id_partners")),
        sa.PrimaryKeyConstraint("partner_id", "kind", "period", name=op.f("pk_digests_sent")),
    )
    with op.batch_alter_table("partners") as batch_op:
        batch_op.add_column(sa.Column("digest_minute", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("weekly_digest", sa.Boolean(), server_default=sa.true(), nullable=False))
    # a day's orders and commission lines, read by every rollup run
    op.create_index("ix_orders_paid_at", "orders", ["paid_at"])
    op.create_index("ix_ledger_entries_created", "ledger_entries", ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("partners") as batch_op:
        batch_op.drop_column("weekly_digest")
        batch_op.drop_column("digest_minute")
    op.drop_table("digests_sent")
    op.drop_index("ix_ledger_entries_created", table_name="ledger_entries")
    op.drop_index("ix_orders_paid_at", table_name="orders")
    op.drop_index("ix_daily_rollups_day_partner", table_name="daily_rollups")
    op.drop_table("daily_rollups")
