"""APScheduler job store table, partner delivery settings, urgent outbox rows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The table APScheduler 3's SQLAlchemyJobStore expects; created here so Alembic owns the schema.
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_apscheduler_jobs_next_run_time", "apscheduler_jobs", ["next_run_time"])
    with op.batch_alter_table("partners") as batch:
        batch.add_column(sa.Column("push_hour", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("quiet_start_min", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("quiet_end_min", sa.Integer(), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("urgent")
    with op.batch_alter_table("partners") as batch:
        batch.drop_column("quiet_end_min")
        batch.drop_column("quiet_start_min")
        batch.drop_column("push_hour")
    op.drop_index("ix_apscheduler_jobs_next_run_time", table_name="apscheduler_jobs")
    op.drop_table("apscheduler_jobs")
