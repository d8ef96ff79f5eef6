"""Repository functions of the status services: holds, revocations, activation, CRL state.

The ``status_entry`` table is the single source of CRL and OCSP status (STANDARDS.md §2.6).
Every change also deletes the certificate's pre-signed OCSP response in the same transaction, so
that no responder can serve a stale answer once the change has committed; the caller re-signs it.

Lock order inside a write transaction, to keep PostgreSQL free of deadlocks: ``crl_state`` row
first, then the audit head (:func:`ca.store.repository.append_audit`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.orm import Session

from ca.store.models import (
    CertificateAuthority,
    CertificateRecord,
    CRLState,
    PresignedOCSPResponse,
    StatusEntry,
    UTCDateTime,
)

__all__ = [
    "CertificateStatusRow",
    "StatusEntrySnapshot",
    "add_status_entry",
    "ca_by_name",
    "find_certificate",
    "holds_due",
    "issuers_of_serial",
    "mark_crl_pending",
    "remove_hold",
    "set_activate_after",
    "status_entry",
]


@dataclass(frozen=True, slots=True)
class CertificateStatusRow:
    """A certificate (end entity, responder, or a CA certificate under the root) and its status."""

    certificate_id: int | None
    issuer_id: int
    issuer_name: str
    serial: str
    profile: str
    subject: str
    status: str
    not_after: dt.datetime
    activate_after: dt.datetime | None


@dataclass(frozen=True, slots=True)
class StatusEntrySnapshot:
    issuer_id: int
    serial: str
    reason: str
    revoked_at: dt.datetime
    invalidity_date: dt.datetime | None
    received_at: dt.datetime


def ca_by_name(session: Session, name: str) -> CertificateAuthority | None:
    return session.scalars(select(CertificateAuthority).where(CertificateAuthority.name == name)).first()


def find_certificate(session: Session, issuer: CertificateAuthority, serial: str) -> CertificateStatusRow | None:
    """The certificate ``serial`` issued by ``issuer``: an issued certificate or, under the root, a CA certificate."""
    row = session.scalars(
        select(CertificateRecord).where(CertificateRecord.issuer_id == issuer.id, CertificateRecord.serial == serial)
    ).first()
    if row is not None:
        return CertificateStatusRow(
            certificate_id=row.id,
            issuer_id=issuer.id,
            issuer_name=issuer.name,
            serial=row.serial,
            profile=row.profile,
            subject=row.subject,
            status=row.status,
            not_after=row.not_after,
            activate_after=row.activate_after,
        )
    child = session.scalars(
        select(CertificateAuthority).where(
            CertificateAuthority.parent_id == issuer.id, CertificateAuthority.serial == serial
        )
    ).first()
    if child is None:
        return None
    entry = status_entry(session, issuer.id, serial)
    return CertificateStatusRow(
        certificate_id=None,
        issuer_id=issuer.id,
        issuer_name=issuer.name,
        serial=serial,
        profile="ca",
        subject=child.subject,
        status="revoked" if entry is not None else "good",
        not_after=child.not_after,
        activate_after=None,
    )


def status_entry(session: Session, issuer_id: int, serial: str) -> StatusEntrySnapshot | None:
    row = session.scalars(
        select(StatusEntry).where(StatusEntry.issuer_id == issuer_id, StatusEntry.serial == serial)
    ).first()
    if row is None:
        return None
    return StatusEntrySnapshot(
        issuer_id=row.issuer_id,
        serial=row.serial,
        reason=row.reason,
        revoked_at=row.revoked_at,
        invalidity_date=row.invalidity_date,
        received_at=row.received_at,
    )


def mark_crl_pending(session: Session, issuer_id: int, at: dt.datetime) -> bool:
    """Record that the CA's CRL is out of date (takes the ``crl_state`` row lock: call before auditing).

    Returns False, changing nothing, when the CA is closed (its last CRL is final): the caller
    refuses the status change and rolls back.  On PostgreSQL an update that waited for a close in
    progress re-checks the row once the close has committed, so no change slips in after it.
    """
    result = session.execute(
        update(CRLState)
        .where(CRLState.issuer_id == issuer_id, CRLState.closed_at.is_(None))
        .values(pending_since=func.coalesce(CRLState.pending_since, literal(at, UTCDateTime())))
    )
    return int(getattr(result, "rowcount", 0)) == 1


def _drop_presigned(session: Session, issuer_id: int, serial: str) -> None:
    session.execute(
        delete(PresignedOCSPResponse).where(
            PresignedOCSPResponse.issuer_id == issuer_id, PresignedOCSPResponse.serial == serial
        )
    )


def add_status_entry(
    session: Session,
    *,
    cert: CertificateStatusRow,
    reason: str,
    revoked_at: dt.datetime,
    invalidity_date: dt.datetime | None,
    received_at: dt.datetime,
    requested_by: str,
    decided_by: str,
    crl_entry_der: bytes,
    at: dt.datetime,
) -> None:
    """Insert or (for a hold turning into a revocation) replace the certificate's status entry."""
    existing = session.scalars(
        select(StatusEntry).where(StatusEntry.issuer_id == cert.issuer_id, StatusEntry.serial == cert.serial)
    ).first()
    if existing is None:
        existing = StatusEntry(issuer_id=cert.issuer_id, serial=cert.serial, certificate_id=cert.certificate_id)
        session.add(existing)
    existing.reason = reason
    existing.revoked_at = revoked_at
    existing.invalidity_date = invalidity_date
    existing.not_after = cert.not_after
    existing.received_at = received_at
    existing.requested_by = requested_by
    existing.decided_by = decided_by
    existing.crl_entry_der = crl_entry_der
    existing.created_at = at
    if cert.certificate_id is not None:
        session.execute(
            update(CertificateRecord)
            .where(CertificateRecord.id == cert.certificate_id)
            .values(status="on-hold" if reason == "certificateHold" else "revoked")
        )
    _drop_presigned(session, cert.issuer_id, cert.serial)
    session.flush()


def remove_hold(session: Session, *, cert: CertificateStatusRow, at: dt.datetime) -> bool:
    """Release a hold (activation); False when the certificate is no longer on hold."""
    assert cert.certificate_id is not None
    done = (
        session.connection()
        .execute(
            update(CertificateRecord.__table__)  # type: ignore[arg-type]
            .where(CertificateRecord.id == cert.certificate_id, CertificateRecord.status == "on-hold")
            .values(status="good", activated_at=at, activate_after=None)
        )
        .rowcount
    )
    if not done:
        return False
    session.execute(
        delete(StatusEntry).where(
            StatusEntry.issuer_id == cert.issuer_id,
            StatusEntry.serial == cert.serial,
            StatusEntry.reason == "certificateHold",
        )
    )
    _drop_presigned(session, cert.issuer_id, cert.serial)
    return True


def set_activate_after(session: Session, *, certificate_id: int, at: dt.datetime) -> None:
    session.execute(
        update(CertificateRecord)
        .where(CertificateRecord.id == certificate_id, CertificateRecord.status == "on-hold")
        .values(activate_after=at)
    )


def holds_due(session: Session, now: dt.datetime, limit: int = 500) -> list[tuple[str, str]]:
    """(issuer name, serial) of held certificates whose automatic activation time has come."""
    rows = session.execute(
        select(CertificateAuthority.name, CertificateRecord.serial)
        .join(CertificateAuthority, CertificateAuthority.id == CertificateRecord.issuer_id)
        .where(CertificateRecord.status == "on-hold", CertificateRecord.activate_after <= now)
        .order_by(CertificateRecord.activate_after)
        .limit(limit)
    ).all()
    return [(str(a), str(b)) for a, b in rows]


def issuers_of_serial(session: Session, serial: str) -> list[str]:
    """Names of the CAs that issued a certificate (or a CA certificate) with this serial."""
    names = set(
        session.scalars(
            select(CertificateAuthority.name)
            .join(CertificateRecord, CertificateRecord.issuer_id == CertificateAuthority.id)
            .where(CertificateRecord.serial == serial)
        ).all()
    )
    parent = CertificateAuthority.__table__.alias("parent")
    names.update(
        session.scalars(
            select(parent.c.name)
            .select_from(CertificateAuthority)
            .join(parent, parent.c.id == CertificateAuthority.parent_id)
            .where(CertificateAuthority.serial == serial)
        ).all()
    )
    return sorted(names)
