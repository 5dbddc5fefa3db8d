"""Web dashboard sessions and used one-time login tokens

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTNER_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("partner_id", PARTNER_ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_dashboard_sessions_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_dashboard_sessions")),
    )
    op.create_index("ix_dashboard_sessions_expires", "dashboard_sessions", ["expires_at"])
    op.create_table(
        "dashboard_login_tokens",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", PARTNER_ID, nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_dashboard_login_tokens_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_dashboard_login_tokens")),
    )
    op.create_index("ix_dashboard_login_tokens_expires", "dashboard_login_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_dashboard_login_tokens_expires", table_name="dashboard_login_tokens")
    op.drop_table("dashboard_login_tokens")
    op.drop_index("ix_dashboard_sessions_expires", table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
