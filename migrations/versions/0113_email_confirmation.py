"""``ra_email_confirmation``: codes mailed to an order's email address (confirmed before it is
certified) or a new applicant account's (which it activates); ``ra_account.confirmed_at``
(accounts that exist already count as confirmed when they were created);
``ra_registration_attempt`` (registrations mail an address: limited per address and client); the
outbox gains the ``email`` channel.

Revision ID: 0113
Revises: 0112
Create Date: 2026-11-21 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0113"
down_revision: str | None = "0112"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHANNEL = "ck_ra_outbox_channel"


def upgrade() -> None:
    with op.batch_alter_table("ra_outbox", recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f(_CHANNEL), type_="check")
        batch_op.create_check_constraint(op.f(_CHANNEL), "channel IN ('sms', 'post', 'email')")
    op.create_table(
        "ra_email_confirmation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_from", sa.String(length=64), nullable=True),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("outbox_ref", sa.String(length=36), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'confirmed', 'superseded')", name=op.f("ck_ra_email_confirmation_state")
        ),
        sa.CheckConstraint("(order_id IS NULL) <> (account_id IS NULL)", name=op.f("ck_ra_email_confirmation_subject")),
        sa.ForeignKeyConstraint(["order_id"], ["ra_order.id"], name=op.f("fk_ra_email_confirmation_order_id_ra_order")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ra_account.id"], name=op.f("fk_ra_email_confirmation_account_id_ra_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_email_confirmation")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_ra_email_confirmation_token_sha256")),
    )
    op.create_index(op.f("ix_ra_email_confirmation_order_id_state"), "ra_email_confirmation", ["order_id", "state"])
    op.create_index(op.f("ix_ra_email_confirmation_account_id_state"), "ra_email_confirmation", ["account_id", "state"])
    with op.batch_alter_table("ra_account") as batch_op:
        batch_op.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE ra_account SET confirmed_at = created_at")
    op.create_table(
        "ra_registration_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_sha256", sa.String(length=64), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_registration_attempt")),
    )
    op.create_index(
        op.f("ix_ra_registration_attempt_email_sha256_at"), "ra_registration_attempt", ["email_sha256", "at"]
    )
    op.create_index(
        op.f("ix_ra_registration_attempt_client_address_at"), "ra_registration_attempt", ["client_address", "at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ra_registration_attempt_client_address_at"), table_name="ra_registration_attempt")
    op.drop_index(op.f("ix_ra_registration_attempt_email_sha256_at"), table_name="ra_registration_attempt")
    op.drop_table("ra_registration_attempt")
    with op.batch_alter_table("ra_account") as batch_op:
        batch_op.drop_column("confirmed_at")
    op.drop_index(op.f("ix_ra_email_confirmation_account_id_state"), table_name="ra_email_confirmation")
    op.drop_index(op.f("ix_ra_email_confirmation_order_id_state"), table_name="ra_email_confirmation")
    op.drop_table("ra_email_confirmation")
    op.execute("DELETE FROM ra_outbox WHERE channel = 'email'")
    with op.batch_alter_table("ra_outbox", recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f(_CHANNEL), type_="check")
        batch_op.create_check_constraint(op.f(_CHANNEL), "channel IN ('sms', 'post')")
