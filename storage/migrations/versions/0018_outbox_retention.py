"""Outbox retention: finished broadcasts keep their final counts; pool previews are remembered outside the outbox

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-27 00:00:00

Sent outbox rows are deleted after OUTBOX_RETENTION_DAYS (the `outbox:prune` job). Two things read them for good:
a finished broadcast's counts (a GROUP BY over its rows) and the daily pool announcement, which relied on the
preview's outbox key alone to tell each admin once. Both are moved out of the outbox here, backfilled from the rows
that exist now.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTNER_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PREVIEW_KEY = "pool:%:preview:%"


def upgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("final_counts", sa.JSON(), nullable=True))
    op.create_table(
        "pool_previews",
        sa.Column("pool", sa.String(length=100), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("admin_id", PARTNER_ID, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["admin_id"], ["partners.id"], name=op.f("fk_pool_previews_admin_id_partners")),
        sa.PrimaryKeyConstraint("pool", "period", "admin_id", name=op.f("pk_pool_previews")),
    )
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    broadcasts = sa.table("broadcasts", sa.column("id"), sa.column("status"), sa.column("final_counts", sa.JSON()))
    outbox = sa.table(
        "outbox",
        sa.column("broadcast_id"),
        sa.column("status"),
        sa.column("dedupe_key"),
        sa.column("partner_id"),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    finished = conn.execute(sa.select(broadcasts.c.id).where(broadcasts.c.status.in_(["done", "cancelled"])))
    for (broadcast_id,) in finished.all():
        rows = conn.execute(
            sa.select(outbox.c.status, sa.func.count())
            .where(outbox.c.broadcast_id == broadcast_id)
            .group_by(outbox.c.status)
        )
        counts = {str(status): int(count) for status, count in rows.all()}
        conn.execute(broadcasts.update().where(broadcasts.c.id == broadcast_id).values(final_counts=counts))
    previews = sa.table(
        "pool_previews",
        sa.column("pool"),
        sa.column("period"),
        sa.column("admin_id"),
        sa.column("sent_at", sa.DateTime(timezone=True)),
    )
    keys = conn.execute(
        sa.select(outbox.c.dedupe_key, outbox.c.partner_id, outbox.c.created_at).where(
            outbox.c.dedupe_key.like(PREVIEW_KEY)
        )
    )
    rows = []
    for key, admin_id, created_at in keys.all():
        head, _, admin = str(key).rpartition(":preview:")  # pool:<name>:<period>:preview:<admin partner id>
        name, _, period = head.removeprefix("pool:").rpartition(":")
        if name and period and admin.isdigit() and admin_id is not None:
            rows.append({"pool": name, "period": period, "admin_id": int(admin), "sent_at": created_at})
    if rows:
        op.bulk_insert(previews, rows)


def downgrade() -> None:
    op.drop_table("pool_previews")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("final_counts")
