"""Leads, follow-ups, reminders, quotes, chat orders, coupon campaigns, events

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "coupon_campaigns",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("discount_kind", sa.String(length=16), nullable=False),
        sa.Column("discount_value", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("valid_from", UTC, nullable=False),
        sa.Column("valid_until", UTC, nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("eligible_levels", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", BIGINT_PK, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["partners.id"], name=op.f("fk_coupon_campaigns_created_by_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_campaigns")),
    )
    op.create_table(
        "leads",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("wechat", sa.String(length=64), nullable=True),
        sa.Column("telegram", sa.String(length=64), nullable=True),
        sa.Column("tg_user_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("last_followup_at", UTC, nullable=True),
        sa.Column("won_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_leads_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_index("ix_leads_partner_number", ["partner_id", "number"], unique=True)
        batch_op.create_index("ix_leads_partner_phone", ["partner_id", "phone"], unique=False)
        batch_op.create_index("ix_leads_partner_stage", ["partner_id", "stage"], unique=False)
        batch_op.create_index("ix_leads_partner_telegram", ["partner_id", "telegram"], unique=False)
        batch_op.create_index("ix_leads_partner_wechat", ["partner_id", "wechat"], unique=False)

    op.create_table(
        "program_events",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("slug", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("starts_at", UTC, nullable=False),
        sa.Column("place", sa.String(length=300), nullable=True),
        sa.Column("online_url", sa.String(length=2048), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", BIGINT_PK, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["partners.id"], name=op.f("fk_program_events_created_by_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_events")),
        sa.UniqueConstraint("slug", name=op.f("uq_program_events_slug")),
    )
    op.create_table(
        "chat_orders",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("lead_id", BIGINT_PK, nullable=True),
        sa.Column("product_id", BIGINT_PK, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("order_id", BIGINT_PK, nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("decided_by", BIGINT_PK, nullable=True),
        sa.Column("decided_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["decided_by"], ["partners.id"], name=op.f("fk_chat_orders_decided_by_partners")),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_chat_orders_lead_id_leads"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_chat_orders_order_id_orders")),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_chat_orders_partner_id_partners")),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_chat_orders_product_id_products")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_orders")),
    )
    with op.batch_alter_table("chat_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_orders_lead_id"), ["lead_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chat_orders_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index("ix_chat_orders_status_created", ["status", "created_at"], unique=False)

    op.create_table(
        "event_invitations",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("slug", sa.String(length=32), nullable=False),
        sa.Column("event_id", BIGINT_PK, nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("lead_id", BIGINT_PK, nullable=True),
        sa.Column("lead_name", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["program_events.id"], name=op.f("fk_event_invitations_event_id_program_events")
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_event_invitations_lead_id_leads"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_event_invitations_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_invitations")),
        sa.UniqueConstraint("slug", name=op.f("uq_event_invitations_slug")),
    )
    with op.batch_alter_table("event_invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_invitations_event_id"), ["event_id"], unique=False)
        batch_op.create_index("ix_event_invitations_event_lead", ["event_id", "lead_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_event_invitations_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "lead_followups",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("lead_id", BIGINT_PK, nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("next_step", sa.Text(), nullable=True),
        sa.Column("revisit", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_lead_followups_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_lead_followups_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_followups")),
    )
    with op.batch_alter_table("lead_followups", schema=None) as batch_op:
        batch_op.create_index("ix_lead_followups_lead_created", ["lead_id", "created_at"], unique=False)
        batch_op.create_index("ix_lead_followups_partner_created", ["partner_id", "created_at"], unique=False)

    op.create_table(
        "lead_reminders",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("lead_id", BIGINT_PK, nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("due_at", UTC, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("fired_at", UTC, nullable=True),
        sa.Column("closed_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_lead_reminders_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_lead_reminders_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_reminders")),
    )
    with op.batch_alter_table("lead_reminders", schema=None) as batch_op:
        batch_op.create_index("ix_lead_reminders_lead_status", ["lead_id", "status"], unique=False)
        batch_op.create_index("ix_lead_reminders_partner_due", ["partner_id", "due_at"], unique=False)

    op.create_table(
        "quotes",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("lead_id", BIGINT_PK, nullable=True),
        sa.Column("product_id", BIGINT_PK, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("valid_until", UTC, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_quotes_lead_id_leads"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_quotes_partner_id_partners")),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_quotes_product_id_products")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quotes")),
    )
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quotes_lead_id"), ["lead_id"], unique=False)
        batch_op.create_index("ix_quotes_partner_created", ["partner_id", "created_at"], unique=False)

    op.create_table(
        "coupon_redemptions",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("order_id", BIGINT_PK, nullable=False),
        sa.Column("partner_id", BIGINT_PK, nullable=False),
        sa.Column("redeemed_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["code"], ["coupons.code"], name=op.f("fk_coupon_redemptions_code_coupons")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_coupon_redemptions_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_coupon_redemptions_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_redemptions")),
        sa.UniqueConstraint("order_id", name=op.f("uq_coupon_redemptions_order_id")),
    )
    with op.batch_alter_table("coupon_redemptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupon_redemptions_code"), ["code"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupon_redemptions_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "rsvps",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("invitation_id", BIGINT_PK, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("attending", sa.Boolean(), nullable=False),
        sa.Column("responded_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["event_invitations.id"],
            name=op.f("fk_rsvps_invitation_id_event_invitations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rsvps")),
    )
    with op.batch_alter_table("rsvps", schema=None) as batch_op:
        batch_op.create_index("ix_rsvps_invitation_responded", ["invitation_id", "responded_at"], unique=False)

    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", BIGINT_PK, nullable=True))
        batch_op.create_index("ix_coupons_campaign_partner", ["campaign_id", "partner_id"], unique=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_coupons_campaign_id_coupon_campaigns"), "coupon_campaigns", ["campaign_id"], ["id"]
        )

    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("list_price_minor", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("currency", sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column("level_prices", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("level_prices")
        batch_op.drop_column("currency")
        batch_op.drop_column("list_price_minor")

    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_coupons_campaign_id_coupon_campaigns"), type_="foreignkey")
        batch_op.drop_index("ix_coupons_campaign_partner")
        batch_op.drop_column("campaign_id")

    with op.batch_alter_table("rsvps", schema=None) as batch_op:
        batch_op.drop_index("ix_rsvps_invitation_responded")

    op.drop_table("rsvps")
    with op.batch_alter_table("coupon_redemptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupon_redemptions_partner_id"))
        batch_op.drop_index(batch_op.f("ix_coupon_redemptions_code"))

    op.drop_table("coupon_redemptions")
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.drop_index("ix_quotes_partner_created")
        batch_op.drop_index(batch_op.f("ix_quotes_lead_id"))

    op.drop_table("quotes")
    with op.batch_alter_table("lead_reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_reminders_partner_due")
        batch_op.drop_index("ix_lead_reminders_lead_status")

    op.drop_table("lead_reminders")
    with op.batch_alter_table("lead_followups", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_followups_partner_created")
        batch_op.drop_index("ix_lead_followups_lead_created")

    op.drop_table("lead_followups")
    with op.batch_alter_table("event_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_invitations_partner_id"))
        batch_op.drop_index("ix_event_invitations_event_lead")
        batch_op.drop_index(batch_op.f("ix_event_invitations_event_id"))

    op.drop_table("event_invitations")
    with op.batch_alter_table("chat_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_orders_status_created")
        batch_op.drop_index(batch_op.f("ix_chat_orders_partner_id"))
        batch_op.drop_index(batch_op.f("ix_chat_orders_lead_id"))

    op.drop_table("chat_orders")
    op.drop_table("program_events")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_partner_wechat")
        batch_op.drop_index("ix_leads_partner_telegram")
        batch_op.drop_index("ix_leads_partner_stage")
        batch_op.drop_index("ix_leads_partner_phone")
        batch_op.drop_index("ix_leads_partner_number")

    op.drop_table("leads")
    op.drop_table("coupon_campaigns")
