"""Content reach: the material center, products, tracked links, uploaded file ids, daily packs;
partner level and segment; once-only events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.add_column(sa.Column("level", sa.String(length=32), server_default="member", nullable=False))
        batch.add_column(sa.Column("segment", sa.String(length=16), nullable=True))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("dedupe_key", sa.String(length=200), nullable=True))
        batch.create_unique_constraint(batch.f("uq_events_dedupe_key"), ["dedupe_key"])

    op.create_table(
        "content_items",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("external_key", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("levels", sa.JSON(), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("publish_on", sa.JSON(), nullable=False),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("media_kind", sa.String(length=16), nullable=True),
        sa.Column("media_file_id", sa.String(length=256), nullable=True),
        sa.Column("media_path", sa.String(length=1024), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_by", BIGINT_PK, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["partners.id"], name=op.f("fk_content_items_created_by_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_items")),
    )
    op.create_index("ix_content_items_status_created", "content_items", ["status", "created_at"])
    op.create_index("ix_content_items_external_key", "content_items", ["external_key"], unique=True)

    op.create_table(
        "products",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("sku", name=op.f("uq_products_sku")),
    )

    op.create_table(
        "tracked_links",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("slug", sa.String(length=32), nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("content_id", BIGINT_PK, nullable=True),
        sa.Column("product_id", BIGINT_PK, nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_tracked_links_partner_id_partners")),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content_items.id"], name=op.f("fk_tracked_links_content_id_content_items")
        ),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_tracked_links_product_id_products")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracked_links")),
        sa.UniqueConstraint("slug", name=op.f("uq_tracked_links_slug")),
    )
    op.create_index("ix_tracked_links_partner_content", "tracked_links", ["partner_id", "content_id"], unique=True)
    op.create_index("ix_tracked_links_partner_product", "tracked_links", ["partner_id", "product_id"], unique=True)

    op.create_table(
        "telegram_files",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("file_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_telegram_files")),
    )

    op.create_table(
        "daily_packs",
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("content_ids", sa.JSON(), nullable=False),
        sa.Column("pushed", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_daily_packs_partner_id_partners")),
        sa.PrimaryKeyConstraint("partner_id", "day", name=op.f("pk_daily_packs")),
    )


def downgrade() -> None:
    op.drop_table("daily_packs")
    op.drop_table("telegram_files")
    op.drop_index("ix_tracked_links_partner_product", table_name="tracked_links")
    op.drop_index("ix_tracked_links_partner_content", table_name="tracked_links")
    op.drop_table("tracked_links")
    op.drop_table("products")
    op.drop_index("ix_content_items_external_key", table_name="content_items")
    op.drop_index("ix_content_items_status_created", table_name="content_items")
    op.drop_table("content_items")
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint(batch.f("uq_events_dedupe_key"), type_="unique")
        batch.drop_column("dedupe_key")
    with op.batch_alter_table("partners") as batch:
        batch.drop_column("segment")
        batch.drop_column("level")
