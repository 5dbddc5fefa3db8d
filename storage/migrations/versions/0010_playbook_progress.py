"""Playbook progress per partner, and playbooks paused for everyone

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "playbook_switches",
        sa.Column("playbook", sa.String(length=40), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("playbook", name=op.f("pk_playbook_switches")),
    )
    op.create_table(
        "playbook_progress",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("partner_id", BigIntPK, nullable=False),
        sa.Column("playbook", sa.String(length=40), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("paused_by", BigIntPK, nullable=True),
        sa.Column("wake_at", UTC, nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_playbook_progress_partner_id_partners")),
        sa.ForeignKeyConstraint(["paused_by"], ["partners.id"], name=op.f("fk_playbook_progress_paused_by_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playbook_progress")),
    )
    with op.batch_alter_table("playbook_progress", schema=None) as batch_op:
        batch_op.create_index("ix_playbook_progress_status_wake", ["status", "wake_at"], unique=False)
        batch_op.create_index("uq_playbook_progress_partner_playbook", ["partner_id", "playbook"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("playbook_progress", schema=None) as batch_op:
        batch_op.drop_index("uq_playbook_progress_partner_playbook")
        batch_op.drop_index("ix_playbook_progress_status_wake")
    op.drop_table("playbook_progress")
    op.drop_table("playbook_switches")
