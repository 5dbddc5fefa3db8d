"""Activity segments and the tiered-operations rhythm state

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rhythm_state",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("partner_id", BigIntPK, nullable=False),
        sa.Column("rhythm", sa.String(length=40), nullable=False),
        sa.Column("segment", sa.String(length=16), nullable=True),
        sa.Column("segment_since", UTC, nullable=True),
        sa.Column("touches", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("paused_by", BigIntPK, nullable=True),
        sa.Column("stopped_at", UTC, nullable=True),
        sa.Column("wake_at", UTC, nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_rhythm_state_partner_id_partners")),
        sa.ForeignKeyConstraint(["paused_by"], ["partners.id"], name=op.f("fk_rhythm_state_paused_by_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rhythm_state")),
    )
    with op.batch_alter_table("rhythm_state", schema=None) as batch_op:
        batch_op.create_index("ix_rhythm_state_status_wake", ["status", "wake_at"], unique=False)
        batch_op.create_index("uq_rhythm_state_partner_rhythm", ["partner_id", "rhythm"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("rhythm_state", schema=None) as batch_op:
        batch_op.drop_index("uq_rhythm_state_partner_rhythm")
        batch_op.drop_index("ix_rhythm_state_status_wake")
    op.drop_table("rhythm_state")
