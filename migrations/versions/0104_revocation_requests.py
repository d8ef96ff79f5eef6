"""Revocation requests: ``ra_revocation_password`` (a card's revocation password, Argon2 hash only)
and ``ra_revocation_request`` (every request with receipt time, requester, authentication and
decision; EN 319 411-1 REV-6.4.5-09).

Revision ID: 0104
Revises: 0103
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0104"
down_revision: str | None = "0103"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ra_revocation_password",
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("authorised_person", sa.String(length=128), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["ra_card.id"], name=op.f("fk_ra_revocation_password_card_id_ra_card")),
        sa.PrimaryKeyConstraint("card_id", name=op.f("pk_ra_revocation_password")),
    )
    op.create_table(
        "ra_revocation_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=True),
        sa.Column("card_ref", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requester_kind", sa.String(length=24), nullable=False),
        sa.Column("requester", sa.String(length=255), nullable=False),
        sa.Column("authenticated_by", sa.String(length=24), nullable=False),
        sa.Column("auth_failed", sa.Boolean(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("carried_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "requester_kind IN ('holder', 'authorised-person', 'organisation', 'revocation-officer')",
            name=op.f("ck_ra_revocation_request_requester_kind"),
        ),
        sa.CheckConstraint(
            "authenticated_by IN ('session', 'session-totp', 'revocation-password')",
            name=op.f("ck_ra_revocation_request_authenticated_by"),
        ),
        sa.CheckConstraint(
            "decision IN ('accepted', 'carried-out', 'refused')", name=op.f("ck_ra_revocation_request_decision")
        ),
        sa.ForeignKeyConstraint(["card_id"], ["ra_card.id"], name=op.f("fk_ra_revocation_request_card_id_ra_card")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_revocation_request")),
    )
    with op.batch_alter_table("ra_revocation_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ra_revocation_request_card_id_received_at"), ["card_id", "received_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ra_revocation_request_client_address_received_at"),
            ["client_address", "received_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("ra_revocation_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ra_revocation_request_client_address_received_at"))
        batch_op.drop_index(batch_op.f("ix_ra_revocation_request_card_id_received_at"))
    op.drop_table("ra_revocation_request")
    op.drop_table("ra_revocation_password")
