"""Online renewal (issue 6 point 2): ``ra_renewal`` (the renewal order, the card it renews, the
chosen issuance date, the new keys' CSRs and the scheduled issuance's outcome) and
``ra_renewal_document`` (contract, declaration and general terms with digest, supplier, receipt
time and signer; encrypted at rest).

Revision ID: 0109
Revises: 0108
Create Date: 2026-11-21 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0109"
down_revision: str | None = "0108"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ra_renewal",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("issue_on", sa.Date(), nullable=False),
        sa.Column("csrs", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "state IN ('requested', 'scheduled', 'issued', 'not-issued')", name=op.f("ck_ra_renewal_state")
        ),
        sa.ForeignKeyConstraint(["card_id"], ["ra_card.id"], name=op.f("fk_ra_renewal_card_id_ra_card")),
        sa.ForeignKeyConstraint(["order_id"], ["ra_order.id"], name=op.f("fk_ra_renewal_order_id_ra_order")),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_ra_renewal")),
    )
    with op.batch_alter_table("ra_renewal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ra_renewal_card_id"), ["card_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ra_renewal_state_issue_on"), ["state", "issue_on"], unique=False)
    op.create_table(
        "ra_renewal_document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("signed_by", sa.String(length=255), nullable=False),
        sa.Column("signatory_id", sa.Integer(), nullable=True),
        sa.Column("supplied_by", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('contract', 'declaration', 'terms')", name=op.f("ck_ra_renewal_document_kind")),
        sa.ForeignKeyConstraint(["order_id"], ["ra_order.id"], name=op.f("fk_ra_renewal_document_order_id_ra_order")),
        sa.ForeignKeyConstraint(
            ["signatory_id"], ["ra_signatory.id"], name=op.f("fk_ra_renewal_document_signatory_id_ra_signatory")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_renewal_document")),
        sa.UniqueConstraint("order_id", "kind", name=op.f("uq_ra_renewal_document_order_id_kind")),
    )


def downgrade() -> None:
    op.drop_table("ra_renewal_document")
    with op.batch_alter_table("ra_renewal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ra_renewal_state_issue_on"))
        batch_op.drop_index(batch_op.f("ix_ra_renewal_card_id"))
    op.drop_table("ra_renewal")
