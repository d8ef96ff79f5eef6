"""Status services: status entries (holds and revocations), CRL state and history, pre-signed
OCSP responses, job leases; certificate activation columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 11:07:56.219595
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_lease")),
    )
    op.create_table(
        "crl",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("crl_number", sa.BigInteger(), nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("lint_report", sa.Text(), nullable=False),
        sa.Column("published_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["issuer_id"], ["certificate_authority.id"], name=op.f("fk_crl_issuer_id_certificate_authority")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crl")),
        sa.UniqueConstraint("issuer_id", "crl_number", name=op.f("uq_crl_issuer_id_crl_number")),
    )
    op.create_table(
        "crl_state",
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.Column("pending_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["issuer_id"], ["certificate_authority.id"], name=op.f("fk_crl_state_issuer_id_certificate_authority")
        ),
        sa.PrimaryKeyConstraint("issuer_id", name=op.f("pk_crl_state")),
    )
    op.create_table(
        "status_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("certificate_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invalidity_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("decided_by", sa.String(length=255), nullable=False),
        sa.Column("crl_entry_der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reason IN ('unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn', 'aACompromise')",
            name=op.f("ck_status_entry_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificate.id"], name=op.f("fk_status_entry_certificate_id_certificate")
        ),
        sa.ForeignKeyConstraint(
            ["issuer_id"], ["certificate_authority.id"], name=op.f("fk_status_entry_issuer_id_certificate_authority")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_entry")),
        sa.UniqueConstraint("certificate_id", name=op.f("uq_status_entry_certificate_id")),
        sa.UniqueConstraint("issuer_id", "serial", name=op.f("uq_status_entry_issuer_id_serial")),
    )
    op.create_table(
        "ocsp_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("cert_status", sa.String(length=16), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responder_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["issuer_id"], ["certificate_authority.id"], name=op.f("fk_ocsp_response_issuer_id_certificate_authority")
        ),
        sa.ForeignKeyConstraint(
            ["responder_id"], ["ocsp_responder.id"], name=op.f("fk_ocsp_response_responder_id_ocsp_responder")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocsp_response")),
        sa.UniqueConstraint("issuer_id", "serial", name=op.f("uq_ocsp_response_issuer_id_serial")),
    )
    with op.batch_alter_table("ocsp_response", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ocsp_response_next_update"), ["next_update"], unique=False)

    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.add_column(sa.Column("activate_after", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_certificate_status_activate_after"), ["status", "activate_after"], unique=False
        )

    # Every existing CA starts with CRL number 0 (the first CRL published is number 1).
    op.execute("INSERT INTO crl_state (issuer_id, last_number) SELECT id, 0 FROM certificate_authority")


def downgrade() -> None:
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_status_activate_after"))
        batch_op.drop_column("activated_at")
        batch_op.drop_column("activate_after")

    with op.batch_alter_table("ocsp_response", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ocsp_response_next_update"))

    op.drop_table("ocsp_response")
    op.drop_table("status_entry")
    op.drop_table("crl_state")
    op.drop_table("crl")
    op.drop_table("job_lease")
