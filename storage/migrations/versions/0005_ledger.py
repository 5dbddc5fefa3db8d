"""Commission: rule versions, orders, refunds, the double-entry ledger, customer bindings, coupons

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rule_versions",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("plan_text", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", BIGINT_PK, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("published_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["partners.id"], name=op.f("fk_rule_versions_created_by_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_versions")),
        sa.UniqueConstraint("version", name=op.f("uq_rule_versions_version")),
    )
    op.create_table(
        "orders",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=True),
        sa.Column("attribution", sa.String(length=16), nullable=False),
        sa.Column("coupon", sa.String(length=32), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("paid_at", UTC, nullable=False),
        sa.Column("rules_version", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_orders_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_index("ix_orders_source_external", "orders", ["source", "external_id"], unique=True)
    op.create_index("ix_orders_partner_paid", "orders", ["partner_id", "paid_at"])
    op.create_table(
        "refunds",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("order_external_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("applied_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    op.create_index("ix_refunds_source_external", "refunds", ["source", "external_id"], unique=True)
    op.create_index(op.f("ix_refunds_order_external_id"), "refunds", ["order_external_id"])
    op.create_table(
        "ledger_entries",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("txn", sa.String(length=160), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=True),
        sa.Column("bucket", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("order_id", BIGINT_PK, nullable=True),
        sa.Column("tier", sa.Integer(), nullable=True),
        sa.Column("level", sa.String(length=32), nullable=True),
        sa.Column("rate", sa.String(length=16), nullable=True),
        sa.Column("base_minor", sa.BigInteger(), nullable=True),
        sa.Column("rule", sa.String(length=120), nullable=True),
        sa.Column("rules_version", sa.Integer(), nullable=True),
        sa.Column("available_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_ledger_entries_partner_id_partners")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_ledger_entries_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index("ix_ledger_entries_txn_line", "ledger_entries", ["txn", "line"], unique=True)
    op.create_index("ix_ledger_entries_partner_created", "ledger_entries", ["partner_id", "created_at"])
    op.create_index(op.f("ix_ledger_entries_order_id"), "ledger_entries", ["order_id"])
    op.create_table(
        "customer_bindings",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("bound_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_customer_bindings_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_bindings")),
    )
    op.create_index(op.f("ix_customer_bindings_partner_id"), "customer_bindings", ["partner_id"])
    op.create_table(
        "coupons",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_coupons_partner_id_partners")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_coupons")),
    )
    op.create_index(op.f("ix_coupons_partner_id"), "coupons", ["partner_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_coupons_partner_id"), table_name="coupons")
    op.drop_table("coupons")
    op.drop_index(op.f("ix_customer_bindings_partner_id"), table_name="customer_bindings")
    op.drop_table("customer_bindings")
    op.drop_index(op.f("ix_ledger_entries_order_id"), table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_partner_created", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_txn_line", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index(op.f("ix_refunds_order_external_id"), table_name="refunds")
    op.drop_index("ix_refunds_source_external", table_name="refunds")
    op.drop_table("refunds")
    op.drop_index("ix_orders_partner_paid", table_name="orders")
    op.drop_index("ix_orders_source_external", table_name="orders")
    op.drop_table("orders")
    op.drop_table("rule_versions")
