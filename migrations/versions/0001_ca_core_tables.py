"""CA core tables: keys, CAs, serial reservations, issuance journal, certificates,
OCSP responders, and the hash-chained audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 09:32:38.645135
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=True),
        sa.Column("object_id", sa.String(length=128), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_event")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_event_hash")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_event_object_type_object_id"), ["object_type", "object_id"], unique=False
        )

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    # The audit chain starts with the schema: one head row at the genesis hash (ca.audit.chain).
    audit_head = sa.table(
        "audit_head", sa.column("id", sa.Integer), sa.column("seq", sa.Integer), sa.column("hash", sa.String)
    )
    op.bulk_insert(audit_head, [{"id": 1, "seq": 0, "hash": "0" * 64}])
    op.create_table(
        "key_reference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=255), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("public_key_der", sa.LargeBinary(), nullable=False),
        sa.Column("spki_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("backend IN ('soft', 'pkcs11')", name=op.f("ck_key_reference_backend")),
        sa.CheckConstraint("purpose IN ('ca', 'ocsp', 'audit')", name=op.f("ck_key_reference_purpose")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_reference")),
        sa.UniqueConstraint("label", name=op.f("uq_key_reference_label")),
        sa.UniqueConstraint("spki_sha256", name=op.f("uq_key_reference_spki_sha256")),
    )
    op.create_table(
        "certificate_authority",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("key_ref_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("ski", sa.String(length=64), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('root', 'issuing')", name=op.f("ck_certificate_authority_role")),
        sa.ForeignKeyConstraint(
            ["key_ref_id"],
            ["key_reference.id"],
            name=op.f("fk_certificate_authority_key_ref_id_key_reference"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["certificate_authority.id"],
            name=op.f("fk_certificate_authority_parent_id_certificate_authority"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_authority")),
        sa.UniqueConstraint("fingerprint_sha256", name=op.f("uq_certificate_authority_fingerprint_sha256")),
        sa.UniqueConstraint("key_ref_id", name=op.f("uq_certificate_authority_key_ref_id")),
        sa.UniqueConstraint("name", name=op.f("uq_certificate_authority_name")),
        sa.UniqueConstraint("ski", name=op.f("uq_certificate_authority_ski")),
    )
    op.create_table(
        "serial_reservation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.CheckConstraint("state IN ('reserved', 'issued', 'failed')", name=op.f("ck_serial_reservation_state")),
        sa.ForeignKeyConstraint(
            ["issuer_id"],
            ["certificate_authority.id"],
            name=op.f("fk_serial_reservation_issuer_id_certificate_authority"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serial_reservation")),
        sa.UniqueConstraint("issuer_id", "serial", name=op.f("uq_serial_reservation_issuer_id_serial")),
    )
    with op.batch_alter_table("serial_reservation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_serial_reservation_state_reserved_at"), ["state", "reserved_at"], unique=False
        )

    op.create_table(
        "issuance_journal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reservation_id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("tbs_sha256", sa.String(length=64), nullable=False),
        sa.Column("lint_certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("lint_report", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.CheckConstraint("state IN ('signing', 'stored', 'failed')", name=op.f("ck_issuance_journal_state")),
        sa.ForeignKeyConstraint(
            ["issuer_id"],
            ["certificate_authority.id"],
            name=op.f("fk_issuance_journal_issuer_id_certificate_authority"),
        ),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["serial_reservation.id"],
            name=op.f("fk_issuance_journal_reservation_id_serial_reservation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuance_journal")),
        sa.UniqueConstraint("reservation_id", name=op.f("uq_issuance_journal_reservation_id")),
    )
    op.create_table(
        "certificate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("spki_sha256", sa.String(length=64), nullable=False),
        sa.Column("journal_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('good', 'on-hold', 'revoked')", name=op.f("ck_certificate_status")),
        sa.ForeignKeyConstraint(
            ["issuer_id"],
            ["certificate_authority.id"],
            name=op.f("fk_certificate_issuer_id_certificate_authority"),
        ),
        sa.ForeignKeyConstraint(
            ["journal_id"], ["issuance_journal.id"], name=op.f("fk_certificate_journal_id_issuance_journal")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate")),
        sa.UniqueConstraint("fingerprint_sha256", name=op.f("uq_certificate_fingerprint_sha256")),
        sa.UniqueConstraint("issuer_id", "serial", name=op.f("uq_certificate_issuer_id_serial")),
        sa.UniqueConstraint("journal_id", name=op.f("uq_certificate_journal_id")),
    )
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certificate_profile"), ["profile"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificate_spki_sha256"), ["spki_sha256"], unique=False)

    op.create_table(
        "ocsp_responder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("key_ref_id", sa.Integer(), nullable=False),
        sa.Column("certificate_id", sa.Integer(), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificate.id"], name=op.f("fk_ocsp_responder_certificate_id_certificate")
        ),
        sa.ForeignKeyConstraint(
            ["issuer_id"],
            ["certificate_authority.id"],
            name=op.f("fk_ocsp_responder_issuer_id_certificate_authority"),
        ),
        sa.ForeignKeyConstraint(
            ["key_ref_id"], ["key_reference.id"], name=op.f("fk_ocsp_responder_key_ref_id_key_reference")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocsp_responder")),
        sa.UniqueConstraint("certificate_id", name=op.f("uq_ocsp_responder_certificate_id")),
        sa.UniqueConstraint("key_ref_id", name=op.f("uq_ocsp_responder_key_ref_id")),
    )


def downgrade() -> None:
    op.drop_table("ocsp_responder")
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_spki_sha256"))
        batch_op.drop_index(batch_op.f("ix_certificate_profile"))

    op.drop_table("certificate")
    op.drop_table("issuance_journal")
    with op.batch_alter_table("serial_reservation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_serial_reservation_state_reserved_at"))

    op.drop_table("serial_reservation")
    op.drop_table("certificate_authority")
    op.drop_table("key_reference")
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_object_type_object_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_at"))
        batch_op.drop_index(batch_op.f("ix_audit_event_action"))

    op.drop_table("audit_event")
