"""Monthly sprints

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sprints",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=80), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("target", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("starts_at", UTC, nullable=False),
        sa.Column("ends_at", UTC, nullable=False),
        sa.Column("prizes", sa.Text(), nullable=False),
        sa.Column("audience", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stages_done", sa.JSON(), nullable=False),
        sa.Column("stage_cursor", sa.BigInteger(), nullable=False),
        sa.Column("created_by", BigIntPK, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("ended_by", BigIntPK, nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["partners.id"], name=op.f("fk_sprints_created_by_partners")),
        sa.ForeignKeyConstraint(["ended_by"], ["partners.id"], name=op.f("fk_sprints_ended_by_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sprints")),
    )
    with op.batch_alter_table("sprints", schema=None) as batch_op:
        batch_op.create_index("ix_sprints_status_starts", ["status", "starts_at"], unique=False)
    op.create_table(
        "sprint_results",
        sa.Column("sprint_id", BigIntPK, nullable=False),
        sa.Column("partner_id", BigIntPK, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("winner", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["sprint_id"], ["sprints.id"], name=op.f("fk_sprint_results_sprint_id_sprints")),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_sprint_results_partner_id_partners")),
        sa.PrimaryKeyConstraint("sprint_id", "partner_id", name=op.f("pk_sprint_results")),
    )


def downgrade() -> None:
    op.drop_table("sprint_results")
    with op.batch_alter_table("sprints", schema=None) as batch_op:
        batch_op.drop_index("ix_sprints_status_starts")
    op.drop_table("sprints")
