"""Case stories and the weekly spotlight

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stories",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("partner_id", BigIntPK, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("photo_file_id", sa.String(length=256), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("reviewed_by", BigIntPK, nullable=True),
        sa.Column("submitted_at", UTC, nullable=False),
        sa.Column("reviewed_at", UTC, nullable=True),
        sa.Column("featured_on", sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_stories_partner_id_partners")),
        sa.ForeignKeyConstraint(["reviewed_by"], ["partners.id"], name=op.f("fk_stories_reviewed_by_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stories")),
        sa.UniqueConstraint("featured_on", name=op.f("uq_stories_featured_on")),
    )
    op.create_index("ix_stories_partner_status", "stories", ["partner_id", "status"])
    op.create_index("ix_stories_status_featured", "stories", ["status", "featured_on"])
    op.create_table(
        "spotlights",
        sa.Column("week_start", sa.String(length=10), nullable=False),
        sa.Column("partner_id", BigIntPK, nullable=False),
        sa.Column("blurb", sa.String(length=200), nullable=True),
        sa.Column("picked_by", BigIntPK, nullable=True),
        sa.Column("picked_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_spotlights_partner_id_partners")),
        sa.ForeignKeyConstraint(["picked_by"], ["partners.id"], name=op.f("fk_spotlights_picked_by_partners")),
        sa.PrimaryKeyConstraint("week_start", name=op.f("pk_spotlights")),
    )
    op.create_index(op.f("ix_spotlights_partner_id"), "spotlights", ["partner_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_spotlights_partner_id"), table_name="spotlights")
    op.drop_table("spotlights")
    op.drop_index("ix_stories_status_featured", table_name="stories")
    op.drop_index("ix_stories_partner_status", table_name="stories")
    op.drop_table("stories")
