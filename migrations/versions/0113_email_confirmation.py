"""``ra_email_confirmation``: links mailed to an order's email address that the applicant follows
to confirm it before it is certified; the outbox gains the ``email`` channel.

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
        sa.Column("order_id", sa.Integer(), nullable=False),
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
        sa.ForeignKeyConstraint(["order_id"], ["ra_order.id"], name=op.f("fk_ra_email_confirmation_order_id_ra_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_email_confirmation")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_ra_email_confirmation_token_sha256")),
    )
    op.create_index(op.f("ix_ra_email_confirmation_order_id_state"), "ra_email_confirmation", ["order_id", "state"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ra_email_confirmation_order_id_state"), table_name="ra_email_confirmation")
    op.drop_table("ra_email_confirmation")
    op.execute("DELETE FROM ra_outbox WHERE channel = 'email'")
    with op.batch_alter_table("ra_outbox", recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f(_CHANNEL), type_="check")
        batch_op.create_check_constraint(op.f(_CHANNEL), "channel IN ('sms', 'post')")
