"""Outbox and postal addresses: ``ra_order.postal_address`` (where the card and any letter about
it go: the address checked at identification); ``ra_outbox`` holds every SMS and letter the RA sends (SMS-TANs, order passwords,
registration secrets) until a gateway has taken it.  Recipient and text are stored only encrypted
with the RA data key and wiped once sent; the row, its purpose and the delivery outcome stay.

Revision ID: 0105
Revises: 0104
Create Date: 2026-11-21 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0105"
down_revision: str | None = "0104"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ra_order") as batch_op:
        batch_op.add_column(sa.Column("postal_address", sa.Text(), nullable=True))
    op.create_table(
        "ra_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("card_id", sa.Integer(), nullable=True),
        sa.Column("recipient_hint", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gateway_ref", sa.String(length=128), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.CheckConstraint("channel IN ('sms', 'post')", name=op.f("ck_ra_outbox_channel")),
        sa.CheckConstraint(
            "state IN ('pending', 'sending', 'sent', 'failed', 'cancelled')", name=op.f("ck_ra_outbox_state")
        ),
        sa.ForeignKeyConstraint(["account_id"], ["ra_account.id"], name=op.f("fk_ra_outbox_account_id_ra_account")),
        sa.ForeignKeyConstraint(["card_id"], ["ra_card.id"], name=op.f("fk_ra_outbox_card_id_ra_card")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_outbox")),
        sa.UniqueConstraint("reference", name=op.f("uq_ra_outbox_reference")),
    )
    op.create_index(op.f("ix_ra_outbox_state_next_attempt_at"), "ra_outbox", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ra_outbox_state_next_attempt_at"), table_name="ra_outbox")
    op.drop_table("ra_outbox")
    with op.batch_alter_table("ra_order") as batch_op:
        batch_op.drop_column("postal_address")
