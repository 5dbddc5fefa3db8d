"""Withdrawals: partners' payout requests and their approval, rejection and payment

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "withdrawals",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("decided_at", UTC, nullable=True),
        sa.Column("decided_by", BIGINT_PK, nullable=True),
        sa.Column("paid_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_withdrawals_partner_id_partners")),
        sa.ForeignKeyConstraint(["decided_by"], ["partners.id"], name=op.f("fk_withdrawals_decided_by_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_withdrawals")),
    )
    op.create_index(op.f("ix_withdrawals_partner_id"), "withdrawals", ["partner_id"])
    op.create_index("ix_withdrawals_status_created", "withdrawals", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_withdrawals_status_created", table_name="withdrawals")
    op.drop_index(op.f("ix_withdrawals_partner_id"), table_name="withdrawals")
    op.drop_table("withdrawals")
