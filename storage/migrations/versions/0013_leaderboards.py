"""Points and leaderboards

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "leaderboard_scores",
        sa.Column("board", sa.String(length=48), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("board", "partner_id", name=op.f("pk_leaderboard_scores")),
    )
    with op.batch_alter_table("leaderboard_scores", schema=None) as batch_op:
        batch_op.create_index("ix_leaderboard_scores_board_score", ["board", "score"], unique=False)
    op.create_table(
        "leaderboard_counts",
        sa.Column("board", sa.String(length=48), nullable=False),
        sa.Column("score", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("board", "score", name=op.f("pk_leaderboard_counts")),
    )
    op.create_table(
        "leaderboard_folded",
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("folded_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_leaderboard_folded")),
    )
    with op.batch_alter_table("leaderboard_folded", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_leaderboard_folded_folded_at"), ["folded_at"], unique=False)
    op.create_table(
        "leaderboard_sync",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("safe_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leaderboard_sync")),
    )
    op.create_table(
        "leaderboard_standings",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("board", sa.String(length=48), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("partner_id", name=op.f("pk_leaderboard_standings")),
    )
    op.create_table(
        "leaderboard_pushes",
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("pushed_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_leaderboard_pushes_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("partner_id", "period", name=op.f("pk_leaderboard_pushes")),
    )
    op.create_table(
        "leaderboard_optouts",
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_leaderboard_optouts_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("partner_id", name=op.f("pk_leaderboard_optouts")),
    )


def downgrade() -> None:
    op.drop_table("leaderboard_optouts")
    op.drop_table("leaderboard_pushes")
    op.drop_table("leaderboard_standings")
    op.drop_table("leaderboard_sync")
    with op.batch_alter_table("leaderboard_folded", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leaderboard_folded_folded_at"))
    op.drop_table("leaderboard_folded")
    op.drop_table("leaderboard_counts")
    with op.batch_alter_table("leaderboard_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_leaderboard_scores_board_score")
    op.drop_table("leaderboard_scores")
