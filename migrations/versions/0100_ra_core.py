"""Registration authority core tables: persons, accounts and roles, sessions, organisations and
signatories, orders with their evidence (identity, encrypted copy, OZB, chamber confirmation),
approvals, issuance slots, cards, and subject-DN bindings.

The down revision is re-pointed at merge time; nothing else depends on the chain.

Revision ID: 0100
Revises: 0003
Create Date: 2026-11-21 11:14:48.276011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0100"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ra_organisation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("legal_form", sa.String(length=64), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("register_court", sa.String(length=128), nullable=True),
        sa.Column("register_number", sa.String(length=32), nullable=True),
        sa.Column("vat_number", sa.String(length=32), nullable=True),
        sa.Column("identifier", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_organisation")),
        sa.UniqueConstraint("identifier", name=op.f("uq_ra_organisation_identifier")),
    )
    op.create_table(
        "ra_person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("given_names", sa.String(length=128), nullable=False),
        sa.Column("surname", sa.String(length=128), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("match_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_person")),
        sa.UniqueConstraint("match_key", name=op.f("uq_ra_person_match_key")),
    )
    op.create_table(
        "ra_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("totp_secret", sa.LargeBinary(), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.CheckConstraint("kind IN ('applicant', 'operator')", name=op.f("ck_ra_account_kind")),
        sa.ForeignKeyConstraint(["person_id"], ["ra_person.id"], name=op.f("fk_ra_account_person_id_ra_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_account")),
        sa.UniqueConstraint("email", name=op.f("uq_ra_account_email")),
        sa.UniqueConstraint("kind", "person_id", name=op.f("uq_ra_account_kind_person_id")),
    )
    op.create_table(
        "ra_signatory",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("given_names", sa.String(length=128), nullable=False),
        sa.Column("surname", sa.String(length=128), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["ra_organisation.id"], name=op.f("fk_ra_signatory_organisation_id_ra_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_signatory")),
    )
    with op.batch_alter_table("ra_signatory", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ra_signatory_organisation_id"), ["organisation_id"], unique=False)

    op.create_table(
        "ra_account_role",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ra_account.id"], name=op.f("fk_ra_account_role_account_id_ra_account")
        ),
        sa.PrimaryKeyConstraint("account_id", "role", name=op.f("pk_ra_account_role")),
    )
    op.create_table(
        "ra_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("waiting_reason", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("applicant_account_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("common_name", sa.String(length=64), nullable=True),
        sa.Column("validity_days", sa.Integer(), nullable=False),
        sa.Column("parent_card_id", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('new', 'follow-up', 'renewal')", name=op.f("ck_ra_order_kind")),
        sa.CheckConstraint(
            "state IN ('open', 'waiting', 'in-production', 'shipped', 'done', 'rejected', 'cancelled')",
            name=op.f("ck_ra_order_state"),
        ),
        sa.ForeignKeyConstraint(
            ["applicant_account_id"], ["ra_account.id"], name=op.f("fk_ra_order_applicant_account_id_ra_account")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["ra_organisation.id"], name=op.f("fk_ra_order_organisation_id_ra_organisation")
        ),
        sa.ForeignKeyConstraint(["person_id"], ["ra_person.id"], name=op.f("fk_ra_order_person_id_ra_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_order")),
    )
    with op.batch_alter_table("ra_order", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ra_order_applicant_account_id"), ["applicant_account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ra_order_state"), ["state"], unique=False)

    op.create_table(
        "ra_session",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("second_factor", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["ra_account.id"], name=op.f("fk_ra_session_account_id_ra_account")),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_ra_session")),
    )
    with op.batch_alter_table("ra_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ra_session_account_id"), ["account_id"], unique=False)

    op.create_table(
        "ra_approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("officer", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["ra_order.id"], name=op.f("fk_ra_approval_order_id_ra_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_approval")),
        sa.UniqueConstraint("order_id", "officer", name=op.f("uq_ra_approval_order_id_officer")),
    )
    op.create_table(
        "ra_card",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=64), nullable=False),
        sa.Column("holder_account_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=32), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('not-activated', 'valid', 'revocation-in-progress', 'revoked', 'expired')",
            name=op.f("ck_ra_card_state"),
        ),
        sa.ForeignKeyConstraint(
            ["holder_account_id"], ["ra_account.id"], name=op.f("fk_ra_card_holder_account_id_ra_account")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["ra_order.id"], name=op.f("fk_ra_card_order_id_ra_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_card")),
        sa.UniqueConstraint("order_id", name=op.f("uq_ra_card_order_id")),
    )
    with op.batch_alter_table("ra_card", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ra_card_holder_account_id"), ["holder_account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ra_card_state"), ["state"], unique=False)

    op.create_table(
        "ra_chamber_confirmation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("chamber", sa.String(length=128), nullable=False),
        sa.Column("registration_number", sa.String(length=128), nullable=False),
        sa.Column("profession", sa.String(length=128), nullable=False),
        sa.Column("profession_oid", sa.String(length=64), nullable=True),
        sa.Column("confirmed_on", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(length=255), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["ra_order.id"], name=op.f("fk_ra_chamber_confirmation_order_id_ra_order")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_chamber_confirmation")),
        sa.UniqueConstraint("order_id", name=op.f("uq_ra_chamber_confirmation_order_id")),
    )
    op.create_table(
        "ra_dn_binding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_key", sa.String(length=64), nullable=False),
        sa.Column("subject_dn", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("first_order_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["first_order_id"], ["ra_order.id"], name=op.f("fk_ra_dn_binding_first_order_id_ra_order")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["ra_organisation.id"], name=op.f("fk_ra_dn_binding_organisation_id_ra_organisation")
        ),
        sa.ForeignKeyConstraint(["person_id"], ["ra_person.id"], name=op.f("fk_ra_dn_binding_person_id_ra_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_dn_binding")),
        sa.UniqueConstraint("subject_key", name=op.f("uq_ra_dn_binding_subject_key")),
    )
    op.create_table(
        "ra_evidence_copy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("redacted", sa.Boolean(), nullable=False),
        sa.Column("redacted_fields", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=255), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["ra_order.id"], name=op.f("fk_ra_evidence_copy_order_id_ra_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_evidence_copy")),
        sa.UniqueConstraint("order_id", name=op.f("uq_ra_evidence_copy_order_id")),
    )
    op.create_table(
        "ra_identity_evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("document_type", sa.String(length=32), nullable=False),
        sa.Column("document_number", sa.String(length=32), nullable=False),
        sa.Column("issuing_state", sa.String(length=2), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("given_names", sa.String(length=128), nullable=False),
        sa.Column("surname", sa.String(length=128), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("verified_by", sa.String(length=255), nullable=False),
        sa.Column("verified_place", sa.String(length=255), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("security_features", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=255), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["ra_order.id"], name=op.f("fk_ra_identity_evidence_order_id_ra_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_identity_evidence")),
        sa.UniqueConstraint("order_id", name=op.f("uq_ra_identity_evidence_order_id")),
    )
    op.create_table(
        "ra_ozb",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("signatory_id", sa.Integer(), nullable=True),
        sa.Column("signed_by", sa.String(length=255), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("document_sha256", sa.String(length=64), nullable=False),
        sa.Column("organisation_agrees", sa.Boolean(), nullable=False),
        sa.Column("person_agrees", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.String(length=255), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["ra_order.id"], name=op.f("fk_ra_ozb_order_id_ra_order")),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["ra_organisation.id"], name=op.f("fk_ra_ozb_organisation_id_ra_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["signatory_id"], ["ra_signatory.id"], name=op.f("fk_ra_ozb_signatory_id_ra_signatory")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_ozb")),
        sa.UniqueConstraint("order_id", name=op.f("uq_ra_ozb_order_id")),
    )
    op.create_table(
        "ra_slot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("subject_json", sa.Text(), nullable=False),
        sa.Column("validity_days", sa.Integer(), nullable=False),
        sa.Column("key_location", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("csr_sha256", sa.String(length=64), nullable=True),
        sa.Column("hsm_key_label", sa.String(length=128), nullable=True),
        sa.Column("issuer", sa.String(length=32), nullable=True),
        sa.Column("serial_hex", sa.String(length=40), nullable=True),
        sa.Column("on_hold", sa.Boolean(), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("key_location IN ('card', 'hsm')", name=op.f("ck_ra_slot_key_location")),
        sa.CheckConstraint("state IN ('awaiting-csr', 'issuing', 'issued')", name=op.f("ck_ra_slot_state")),
        sa.ForeignKeyConstraint(["order_id"], ["ra_order.id"], name=op.f("fk_ra_slot_order_id_ra_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_slot")),
        sa.UniqueConstraint("order_id", "name", name=op.f("uq_ra_slot_order_id_name")),
    )


def downgrade() -> None:
    op.drop_table("ra_slot")
    op.drop_table("ra_ozb")
    op.drop_table("ra_identity_evidence")
    op.drop_table("ra_evidence_copy")
    op.drop_table("ra_dn_binding")
    op.drop_table("ra_chamber_confirmation")
    with op.batch_alter_table("ra_card", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ra_card_state"))
        batch_op.drop_index(batch_op.f("ix_ra_card_holder_account_id"))

    op.drop_table("ra_card")
    op.drop_table("ra_approval")
    with op.batch_alter_table("ra_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ra_session_account_id"))

    op.drop_table("ra_session")
    with op.batch_alter_table("ra_order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ra_order_state"))
        batch_op.drop_index(batch_op.f("ix_ra_order_applicant_account_id"))

    op.drop_table("ra_order")
    op.drop_table("ra_account_role")
    with op.batch_alter_table("ra_signatory", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ra_signatory_organisation_id"))

    op.drop_table("ra_signatory")
    op.drop_table("ra_account")
    op.drop_table("ra_person")
    op.drop_table("ra_organisation")
