"""Shop codes and transport PINs (issue 6 points 5 and 6): ``ra_shop`` (an organisation's storefront,
its code stored as an HMAC only), ``ra_shop_member`` (shops kept in an applicant's navigation),
``ra_order.shop_id``, ``ra_transport_pin`` (a card's transport PIN, encrypted, destroyed once
revealed) and ``ra_secret_failure`` (wrong shop codes and reveal passwords, for the rate limits).

Revision ID: 0108
Revises: 0107
Create Date: 2026-11-21 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0108"
down_revision: str | None = "0107"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ra_shop",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("products", sa.Text(), nullable=False),
        sa.Column("methods", sa.Text(), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_by", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["ra_organisation.id"], name=op.f("fk_ra_shop_organisation_id_ra_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_shop")),
        sa.UniqueConstraint("code_digest", name=op.f("uq_ra_shop_code_digest")),
    )
    with op.batch_alter_table("ra_shop", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ra_shop_organisation_id"), ["organisation_id"], unique=False)
    op.create_table(
        "ra_shop_member",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ra_account.id"], name=op.f("fk_ra_shop_member_account_id_ra_account")
        ),
        sa.ForeignKeyConstraint(["shop_id"], ["ra_shop.id"], name=op.f("fk_ra_shop_member_shop_id_ra_shop")),
        sa.PrimaryKeyConstraint("account_id", "shop_id", name=op.f("pk_ra_shop_member")),
    )
    op.create_table(
        "ra_secret_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("card_id", sa.Integer(), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("purpose IN ('shop-code', 'transport-pin')", name=op.f("ck_ra_secret_failure_purpose")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ra_account.id"], name=op.f("fk_ra_secret_failure_account_id_ra_account")
        ),
        sa.ForeignKeyConstraint(["card_id"], ["ra_card.id"], name=op.f("fk_ra_secret_failure_card_id_ra_card")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_secret_failure")),
    )
    with op.batch_alter_table("ra_secret_failure", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ra_secret_failure_purpose_at"), ["purpose", "at"], unique=False)
    op.create_table(
        "ra_transport_pin",
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("digits", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("revealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revealed_by", sa.String(length=255), nullable=True),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("destroyed_reason", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "destroyed_reason IN ('revealed', 'revoked', 'expired')",
            name=op.f("ck_ra_transport_pin_destroyed_reason"),
        ),
        sa.ForeignKeyConstraint(["card_id"], ["ra_card.id"], name=op.f("fk_ra_transport_pin_card_id_ra_card")),
        sa.PrimaryKeyConstraint("card_id", name=op.f("pk_ra_transport_pin")),
    )
    with op.batch_alter_table("ra_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shop_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_ra_order_shop_id_ra_shop"), "ra_shop", ["shop_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("ra_order", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_ra_order_shop_id_ra_shop"), type_="foreignkey")
        batch_op.drop_column("shop_id")
    op.drop_table("ra_transport_pin")
    with op.batch_alter_table("ra_secret_failure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ra_secret_failure_purpose_at"))
    op.drop_table("ra_secret_failure")
    op.drop_table("ra_shop_member")
    with op.batch_alter_table("ra_shop", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ra_shop_organisation_id"))
    op.drop_table("ra_shop")
