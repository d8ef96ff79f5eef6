"""SMS-TAN (D-Trust seed 000): ``ra_order.channel`` (where the card was ordered: ``portal`` or
``partner``), ``ra_sms_mobile`` (the holder's mobile number, encrypted with the RA data key),
``ra_registration_secret`` (posted secrets for registering a number later, Argon2 hash only),
``ra_tan`` (one-time TANs, keyed HMAC only), ``ra_tan_failure`` (wrong TANs and secrets, which
drive the rate limits) and ``sms-tan`` as a way a revocation request was authenticated.

Revision ID: 0107
Revises: 0106
Create Date: 2026-11-21 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0107"
down_revision: str | None = "0106"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AUTH_BEFORE = "authenticated_by IN ('session', 'session-totp', 'revocation-password')"
_AUTH_AFTER = "authenticated_by IN ('session', 'session-totp', 'revocation-password', 'sms-tan')"


def upgrade() -> None:
    with op.batch_alter_table("ra_order") as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=16), server_default="portal", nullable=False))
        batch_op.create_check_constraint(op.f("ck_ra_order_channel"), "channel IN ('portal', 'partner')")
    with op.batch_alter_table("ra_revocation_request") as batch_op:
        batch_op.drop_constraint(op.f("ck_ra_revocation_request_authenticated_by"), type_="check")
        batch_op.create_check_constraint(op.f("ck_ra_revocation_request_authenticated_by"), _AUTH_AFTER)
    op.create_table(
        "ra_sms_mobile",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("number", sa.LargeBinary(), nullable=False),
        sa.Column("hint", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=24), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=255), nullable=False),
        sa.CheckConstraint("source IN ('application', 'registration-secret')", name=op.f("ck_ra_sms_mobile_source")),
        sa.ForeignKeyConstraint(["order_id"], ["ra_order.id"], name=op.f("fk_ra_sms_mobile_order_id_ra_order")),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_ra_sms_mobile")),
    )
    op.create_table(
        "ra_registration_secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outbox_ref", sa.String(length=36), nullable=False),
        sa.CheckConstraint(
            "state IN ('active', 'used', 'superseded', 'dead')", name=op.f("ck_ra_registration_secret_state")
        ),
        sa.ForeignKeyConstraint(["card_id"], ["ra_card.id"], name=op.f("fk_ra_registration_secret_card_id_ra_card")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_registration_secret")),
    )
    op.create_index(
        op.f("ix_ra_registration_secret_card_id_requested_at"),
        "ra_registration_secret",
        ["card_id", "requested_at"],
    )
    op.create_table(
        "ra_tan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("outbox_ref", sa.String(length=36), nullable=False),
        sa.CheckConstraint("purpose IN ('follow-up', 'revocation')", name=op.f("ck_ra_tan_purpose")),
        sa.CheckConstraint("state IN ('active', 'used', 'superseded', 'dead')", name=op.f("ck_ra_tan_state")),
        sa.ForeignKeyConstraint(["card_id"], ["ra_card.id"], name=op.f("fk_ra_tan_card_id_ra_card")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_tan")),
    )
    op.create_index(op.f("ix_ra_tan_card_id_created_at"), "ra_tan", ["card_id", "created_at"])
    op.create_index(op.f("ix_ra_tan_client_address_created_at"), "ra_tan", ["client_address", "created_at"])
    op.create_table(
        "ra_tan_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.CheckConstraint("kind IN ('tan', 'registration-secret')", name=op.f("ck_ra_tan_failure_kind")),
        sa.ForeignKeyConstraint(["card_id"], ["ra_card.id"], name=op.f("fk_ra_tan_failure_card_id_ra_card")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_tan_failure")),
    )
    op.create_index(op.f("ix_ra_tan_failure_card_id_kind_at"), "ra_tan_failure", ["card_id", "kind", "at"])
    op.create_index(op.f("ix_ra_tan_failure_client_address_at"), "ra_tan_failure", ["client_address", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ra_tan_failure_client_address_at"), table_name="ra_tan_failure")
    op.drop_index(op.f("ix_ra_tan_failure_card_id_kind_at"), table_name="ra_tan_failure")
    op.drop_table("ra_tan_failure")
    op.drop_index(op.f("ix_ra_tan_client_address_created_at"), table_name="ra_tan")
    op.drop_index(op.f("ix_ra_tan_card_id_created_at"), table_name="ra_tan")
    op.drop_table("ra_tan")
    op.drop_index(op.f("ix_ra_registration_secret_card_id_requested_at"), table_name="ra_registration_secret")
    op.drop_table("ra_registration_secret")
    op.drop_table("ra_sms_mobile")
    with op.batch_alter_table("ra_revocation_request") as batch_op:
        batch_op.drop_constraint(op.f("ck_ra_revocation_request_authenticated_by"), type_="check")
        batch_op.create_check_constraint(op.f("ck_ra_revocation_request_authenticated_by"), _AUTH_BEFORE)
    with op.batch_alter_table("ra_order") as batch_op:
        batch_op.drop_constraint(op.f("ck_ra_order_channel"), type_="check")
        batch_op.drop_column("channel")
