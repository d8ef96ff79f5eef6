"""Follow-up orders: ``ra_followup`` (how each follow-up order was authenticated, its place in the
chain of follow-ups without new identification, its QcIdentMethod), ``ra_followup_challenge``
(single-use nonces signed with the current card, hashed), ``ra_order_password`` (order passwords
posted to the holder, Argon2 hashes only) and ``ra_followup_failure`` (wrong order passwords, for
the rate limit).

Revision ID: 0110
Revises: 0109
Create Date: 2026-11-21 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0110"
down_revision: str | None = "0109"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ra_followup",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("parent_card_id", sa.Integer(), nullable=False),
        sa.Column("authenticated_by", sa.String(length=24), nullable=False),
        sa.Column("signer", sa.String(length=255), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("identification_required", sa.Boolean(), nullable=False),
        sa.Column("qc_ident_method", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "authenticated_by IN ('qualified-signature', 'order-password', 'sms-tan')",
            name=op.f("ck_ra_followup_authenticated_by"),
        ),
        sa.ForeignKeyConstraint(["order_id"], ["ra_order.id"], name=op.f("fk_ra_followup_order_id_ra_order")),
        sa.ForeignKeyConstraint(["parent_card_id"], ["ra_card.id"], name=op.f("fk_ra_followup_parent_card_id_ra_card")),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_ra_followup")),
    )
    op.create_index(op.f("ix_ra_followup_parent_card_id"), "ra_followup", ["parent_card_id"])
    op.create_table(
        "ra_followup_challenge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("nonce_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ra_account.id"], name=op.f("fk_ra_followup_challenge_account_id_ra_account")
        ),
        sa.ForeignKeyConstraint(["card_id"], ["ra_card.id"], name=op.f("fk_ra_followup_challenge_card_id_ra_card")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_followup_challenge")),
        sa.UniqueConstraint("nonce_sha256", name=op.f("uq_ra_followup_challenge_nonce_sha256")),
    )
    op.create_index(op.f("ix_ra_followup_challenge_card_id"), "ra_followup_challenge", ["card_id"])
    op.create_table(
        "ra_order_password",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("letter_ref", sa.String(length=36), nullable=False),
        sa.CheckConstraint("state IN ('issued', 'used', 'superseded')", name=op.f("ck_ra_order_password_state")),
        sa.ForeignKeyConstraint(["card_id"], ["ra_card.id"], name=op.f("fk_ra_order_password_card_id_ra_card")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_order_password")),
    )
    op.create_index(op.f("ix_ra_order_password_card_id_state"), "ra_order_password", ["card_id", "state"])
    op.create_table(
        "ra_followup_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["ra_card.id"], name=op.f("fk_ra_followup_failure_card_id_ra_card")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_followup_failure")),
    )
    op.create_index(op.f("ix_ra_followup_failure_card_id_at"), "ra_followup_failure", ["card_id", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ra_followup_failure_card_id_at"), table_name="ra_followup_failure")
    op.drop_table("ra_followup_failure")
    op.drop_index(op.f("ix_ra_order_password_card_id_state"), table_name="ra_order_password")
    op.drop_table("ra_order_password")
    op.drop_index(op.f("ix_ra_followup_challenge_card_id"), table_name="ra_followup_challenge")
    op.drop_table("ra_followup_challenge")
    op.drop_index(op.f("ix_ra_followup_parent_card_id"), table_name="ra_followup")
    op.drop_table("ra_followup")
