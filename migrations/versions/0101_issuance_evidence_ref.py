"""Issuance reconciliation: the CA's journal records the caller's evidence reference (one per
RA slot attempt), and the RA's slot keeps the reference of its current attempt and since when
it is ``issuing``, so a crash between the CA's commit and the RA's record is reconciled.

Revision ID: 0101
Revises: 0100
Create Date: 2026-11-24 10:02:11.418207
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0101"
down_revision: str | None = "0100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("issuance_journal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evidence_ref", sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f("ix_issuance_journal_evidence_ref"), ["evidence_ref"], unique=False)

    with op.batch_alter_table("ra_slot", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evidence_ref", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("issuing_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_ra_slot_evidence_ref"), ["evidence_ref"])
        batch_op.create_index(batch_op.f("ix_ra_slot_state_issuing_since"), ["state", "issuing_since"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ra_slot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ra_slot_state_issuing_since"))
        batch_op.drop_constraint(batch_op.f("uq_ra_slot_evidence_ref"), type_="unique")
        batch_op.drop_column("issuing_since")
        batch_op.drop_column("evidence_ref")

    with op.batch_alter_table("issuance_journal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issuance_journal_evidence_ref"))
        batch_op.drop_column("evidence_ref")
