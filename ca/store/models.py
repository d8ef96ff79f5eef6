"""SQLAlchemy 2 models of the CA's tables.  :class:`Base` is shared with the RA's tables.

Schemas are created and changed only by Alembic (``migrations/``); a test proves that these
models and the migrations agree on SQLite and on PostgreSQL.

Serial numbers are stored as lowercase hexadecimal of the positive integer, without leading
zeros (RFC 5280 §4.1.2.2 serials may be up to 20 octets, wider than any SQL integer type).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditCheckpoint",
    "AuditEvent",
    "AuditHead",
    "AuditSigner",
    "Base",
    "CRLRecord",
    "CRLState",
    "CertificateAuthority",
    "CertificateRecord",
    "IssuanceJournal",
    "JobLease",
    "KeyReference",
    "OCSPResponder",
    "PresignedOCSPResponse",
    "SerialReservation",
    "StatusEntry",
    "UTCDateTime",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC in Python; naive UTC in SQLite, ``timestamptz`` in PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timezone-aware UTC")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime}


class KeyReference(Base):
    """A key held by the key backend.  Never key material: for PKCS#11 only label, id and token."""

    __tablename__ = "key_reference"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(128), unique=True)
    backend: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(255))
    key_id: Mapped[str] = mapped_column(String(64))
    algorithm: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))
    public_key_der: Mapped[bytes] = mapped_column(LargeBinary)
    spki_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]

    __table_args__ = (
        CheckConstraint("backend IN ('soft', 'pkcs11')", name="backend"),
        CheckConstraint("purpose IN ('ca', 'ocsp', 'audit')", name="purpose"),
    )


class CertificateAuthority(Base):
    """A CA of our hierarchy: the root or an issuing CA."""

    __tablename__ = "certificate_authority"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("certificate_authority.id"))
    key_ref_id: Mapped[int] = mapped_column(ForeignKey("key_reference.id"), unique=True)
    subject: Mapped[str] = mapped_column(Text)
    serial: Mapped[str] = mapped_column(String(40))
    ski: Mapped[str] = mapped_column(String(64), unique=True)
    not_before: Mapped[dt.datetime]
    not_after: Mapped[dt.datetime]
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    family: Mapped[str] = mapped_column(String(32))
    """The issuing CA line the profiles name (``qes``, ``seal``, ``auth``; ``root``): a key rollover
    adds a new generation (``qes-g2``, ...) to the same family."""
    generation: Mapped[int] = mapped_column(Integer)
    superseded_at: Mapped[dt.datetime | None]
    """When a newer generation took over issuance; the CA keeps publishing status for its certificates."""

    __table_args__ = (
        CheckConstraint("role IN ('root', 'issuing')", name="role"),
        UniqueConstraint("family", "generation"),
    )


class SerialReservation(Base):
    """A serial reserved before anything is signed (DESIGN.md step 5).

    Every reservation ends ``issued`` (a stored certificate exists) or ``failed``; recovery settles
    reservations left ``reserved`` by a crash.  OCSP never answers "good" for a failed serial.
    """

    __tablename__ = "serial_reservation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("certificate_authority.id"))
    serial: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(16))
    reserved_at: Mapped[dt.datetime]
    settled_at: Mapped[dt.datetime | None]
    failure: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("issuer_id", "serial"),
        CheckConstraint("state IN ('reserved', 'issued', 'failed')", name="state"),
        Index(None, "state", "reserved_at"),
    )


class IssuanceJournal(Base):
    """The record of intent: what was linted and is about to be signed (boulder's lint certificate)."""

    __tablename__ = "issuance_journal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reservation_id: Mapped[int] = mapped_column(ForeignKey("serial_reservation.id"), unique=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("certificate_authority.id"))
    serial: Mapped[str] = mapped_column(String(40))
    profile: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    tbs_sha256: Mapped[str] = mapped_column(String(64))
    lint_certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    lint_report: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime]
    settled_at: Mapped[dt.datetime | None]
    failure: Mapped[str | None] = mapped_column(Text)
    evidence_ref: Mapped[str | None] = mapped_column(String(255))
    """The caller's reference for this attempt (the RA's slot attempt): how it finds the certificate
    again after a crash between the CA's commit and its own record."""

    __table_args__ = (
        CheckConstraint("state IN ('signing', 'stored', 'failed')", name="state"),
        Index(None, "evidence_ref"),
    )


class CertificateRecord(Base):
    """An issued certificate (end entity, OCSP responder, or a CA certificate issued by a CA)."""

    __tablename__ = "certificate"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("certificate_authority.id"))
    serial: Mapped[str] = mapped_column(String(40))
    profile: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    not_before: Mapped[dt.datetime]
    not_after: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16))
    der: Mapped[bytes] = mapped_column(LargeBinary)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    spki_sha256: Mapped[str] = mapped_column(String(64))
    journal_id: Mapped[int | None] = mapped_column(ForeignKey("issuance_journal.id"), unique=True)
    created_at: Mapped[dt.datetime]
    activate_after: Mapped[dt.datetime | None]
    """For a certificate issued *not activated* (on hold): when the hold is released automatically."""
    activated_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("issuer_id", "serial"),
        CheckConstraint("status IN ('good', 'on-hold', 'revoked')", name="status"),
        Index(None, "profile"),
        Index(None, "spki_sha256"),
        Index(None, "status", "activate_after"),
    )


class OCSPResponder(Base):
    """A delegated OCSP responder (RFC 6960 §4.2.2.2) of one issuing CA."""

    __tablename__ = "ocsp_responder"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("certificate_authority.id"))
    key_ref_id: Mapped[int] = mapped_column(ForeignKey("key_reference.id"), unique=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate.id"), unique=True)
    not_after: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]


class AuditHead(Base):
    """The head of the audit chain: one row.  Appenders lock it first, so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class AuditEvent(Base):
    """One entry of the hash-chained audit log (EN 319 401 §7.10; EN 319 411-1 §6.4.5).

    ``hash`` is SHA-256 over the canonical encoding of every other column, ``prev_hash``
    included, so any edit, deletion, insertion or reordering breaks the chain.
    """

    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    __table_args__ = (
        Index(None, "action"),
        Index(None, "object_type", "object_id"),
        Index(None, "at"),
    )


class StatusEntry(Base):
    """The single source of CRL and OCSP status (STANDARDS.md §2.6 item 1; EN 319 411-1 CSS-6.3.10-08).

    One row per certificate that is not "good": a hold of a not-yet-activated certificate
    (``reason = 'certificateHold'``, deleted when the certificate is activated) or a revocation,
    which is final (EN 319 411-1 REV-6.3.9-04; eIDAS Art. 28(4)).  ``crl_entry_der`` is the
    entry's revokedCertificates encoding, made once at revocation time so that a CRL of a million
    entries is a concatenation, not a re-encoding.
    """

    __tablename__ = "status_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("certificate_authority.id"))
    serial: Mapped[str] = mapped_column(String(40))
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    revoked_at: Mapped[dt.datetime]
    invalidity_date: Mapped[dt.datetime | None]
    not_after: Mapped[dt.datetime]
    received_at: Mapped[dt.datetime]
    requested_by: Mapped[str] = mapped_column(String(255))
    decided_by: Mapped[str] = mapped_column(String(255))
    crl_entry_der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime]

    __table_args__ = (
        UniqueConstraint("issuer_id", "serial"),
        CheckConstraint(
            "reason IN ('unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', "
            "'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn', 'aACompromise')",
            name="reason",
        ),
    )


class CRLState(Base):
    """Per CA: the last CRL number and whether a status change awaits publication.

    Publishers lock this row for the whole build, so CRL numbers strictly increase in publication
    order even when two publishers race (RFC 5280 §5.2.3).
    """

    __tablename__ = "crl_state"

    issuer_id: Mapped[int] = mapped_column(ForeignKey("certificate_authority.id"), primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger)
    pending_since: Mapped[dt.datetime | None]
    last_published_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    """The CA's end of life: its last CRL (nextUpdate 99991231235959Z, EN 319 411-1 CSS-6.3.9-06)
    was published then.  From then on the CA reserves no serial and changes no status
    (ca/crl_ocsp/crl.py, :meth:`CRLPublisher.publish_last`)."""


class CRLRecord(Base):
    """Every CRL ever published (history kept; the newest per CA is served)."""

    __tablename__ = "crl"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("certificate_authority.id"))
    crl_number: Mapped[int] = mapped_column(BigInteger)
    this_update: Mapped[dt.datetime]
    next_update: Mapped[dt.datetime]
    entries: Mapped[int] = mapped_column(Integer)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    lint_report: Mapped[str] = mapped_column(Text)
    published_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime]

    __table_args__ = (UniqueConstraint("issuer_id", "crl_number"),)


class PresignedOCSPResponse(Base):
    """A pre-produced OCSP response (RFC 5019 §2.1.1) for one certificate; refreshed by the scheduler."""

    __tablename__ = "ocsp_response"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("certificate_authority.id"))
    serial: Mapped[str] = mapped_column(String(40))
    cert_status: Mapped[str] = mapped_column(String(16))
    der: Mapped[bytes] = mapped_column(LargeBinary)
    this_update: Mapped[dt.datetime]
    next_update: Mapped[dt.datetime]
    responder_id: Mapped[int] = mapped_column(ForeignKey("ocsp_responder.id"))
    created_at: Mapped[dt.datetime]

    __table_args__ = (
        UniqueConstraint("issuer_id", "serial"),
        Index(None, "next_update"),
    )


class JobLease(Base):
    """A database lease per scheduled job: two instances never run the same job at once."""

    __tablename__ = "job_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[dt.datetime | None]
    last_started_at: Mapped[dt.datetime | None]
    last_finished_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(Integer)


class AuditSigner(Base):
    """The audit key (in the key backend) and its certificate, issued by the root CA."""

    __tablename__ = "audit_signer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_ref_id: Mapped[int] = mapped_column(ForeignKey("key_reference.id"), unique=True)
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    not_after: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]


class AuditCheckpoint(Base):
    """A signed chain head (:func:`ca.audit.verify.checkpoint_message`); append-only like the log."""

    __tablename__ = "audit_checkpoint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]
    signer_id: Mapped[int] = mapped_column(ForeignKey("audit_signer.id"))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(String(255))

    __table_args__ = (Index(None, "seq"),)
