"""Repository functions for the CA's tables.  Services call these with a session from
:class:`ca.store.db.Database` and never write SQL themselves.

Values cross this boundary as frozen snapshots (:class:`IssuerSnapshot`, ...), not ORM rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import CursorResult, Executable, Table, func, select, update
from sqlalchemy.orm import Session

from ca.audit.chain import AuditEntry, JSONValue, canonical_details, entry_hash
from ca.store.hotpath import HotTransaction, driver
from ca.store.models import (
    AuditEvent,
    CertificateAuthority,
    CertificateRecord,
    CRLState,
    IssuanceJournal,
    KeyReference,
    OCSPResponder,
    SerialReservation,
)

__all__ = [
    "CASnapshot",
    "CertificateSnapshot",
    "IssuerClosed",
    "KeySnapshot",
    "SerialCollision",
    "add_ca",
    "add_certificate",
    "add_key_reference",
    "add_ocsp_responder",
    "append_audit",
    "audit_count",
    "audit_rows",
    "certificate_by_evidence_ref",
    "certificate_counts",
    "certificate_dossier",
    "fail_reservation",
    "journal_open_for_evidence_ref",
    "list_cas",
    "list_certificates",
    "open_journal",
    "reserve_and_journal",
    "reserve_serial",
    "settle_issued",
    "settle_stale_reservations",
    "supersede_ca",
]


# Failure settlement uses Core statements; the hot path itself is in ca.store.hotpath.
_RESERVATION: Table = SerialReservation.__table__  # type: ignore[assignment]
_JOURNAL: Table = IssuanceJournal.__table__  # type: ignore[assignment]


def _exec(session: Session, statement: Executable, params: Mapping[str, object] | None = None) -> CursorResult[Any]:
    """Run a Core statement on the session's connection (skips the ORM execution layer)."""
    return session.connection().execute(statement, dict(params) if params is not None else None)


class SerialCollision(Exception):
    """The serial is already reserved for this issuer (astronomically unlikely with 127 random bits)."""


class IssuerClosed(Exception):
    """The CA is closed: its last CRL is published, so it reserves no serial (ca/crl_ocsp/crl.py)."""


@dataclass(frozen=True, slots=True)
class KeySnapshot:
    id: int
    label: str
    backend: str
    token: str
    key_id: str
    algorithm: str
    purpose: str
    spki_sha256: str


@dataclass(frozen=True, slots=True)
class CASnapshot:
    id: int
    name: str
    role: str
    parent_id: int | None
    subject: str
    certificate_der: bytes
    fingerprint_sha256: str
    not_before: dt.datetime
    not_after: dt.datetime
    key: KeySnapshot
    responder_certificate_der: bytes | None
    responder_key: KeySnapshot | None
    family: str = ""
    generation: int = 1
    superseded_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class CertificateSnapshot:
    issuer_name: str
    serial: str
    profile: str
    subject: str
    status: str
    not_before: dt.datetime
    not_after: dt.datetime
    der: bytes


def _key_snapshot(row: KeyReference) -> KeySnapshot:
    return KeySnapshot(
        id=row.id,
        label=row.label,
        backend=row.backend,
        token=row.token,
        key_id=row.key_id,
        algorithm=row.algorithm,
        purpose=row.purpose,
        spki_sha256=row.spki_sha256,
    )


# ----------------------------------------------------------------------------------------------
# Audit


def append_audit(
    session: HotTransaction,
    *,
    at: dt.datetime,
    actor: str,
    role: str,
    action: str,
    object_type: str | None = None,
    object_id: str | None = None,
    details: Mapping[str, JSONValue] | None = None,
) -> int:
    """Append one event to the hash chain inside the caller's transaction; return its sequence number.

    The head row is updated first: on PostgreSQL that takes its row lock, on SQLite the write
    transaction (BEGIN IMMEDIATE) already holds the database lock, so appends are serialised and
    the chain cannot fork.  The event commits or rolls back with the caller's other changes.
    """
    stmts = driver(session)
    seq_raw, prev_raw = stmts.fetch_one("head", {})
    seq, prev_hash = int(seq_raw), str(prev_raw)
    at = at.astimezone(dt.UTC)
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        role=role,
        action=action,
        object_type=object_type,
        object_id=object_id,
        details=canonical_details(details or {}),
        prev_hash=prev_hash,
    )
    digest = entry_hash(entry)
    row = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "role": role,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "details": entry.details,
        "prev_hash": prev_hash,
        "hash": digest,
    }
    if stmts.sqlite:
        stmts.execute("event", row)
        stmts.execute("head_hash", {"hash": digest})
    else:
        stmts.execute("event_head", row)  # the event and the new head in one round trip
    return seq


def audit_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


# ----------------------------------------------------------------------------------------------
# Hierarchy


def add_key_reference(
    session: Session,
    *,
    label: str,
    backend: str,
    token: str,
    key_id: str,
    algorithm: str,
    purpose: str,
    public_key_der: bytes,
    spki_sha256: str,
    at: dt.datetime,
) -> int:
    row = KeyReference(
        label=label,
        backend=backend,
        token=token,
        key_id=key_id,
        algorithm=algorithm,
        purpose=purpose,
        public_key_der=public_key_der,
        spki_sha256=spki_sha256,
        created_at=at,
    )
    session.add(row)
    session.flush()
    return row.id


def add_ca(
    session: Session,
    *,
    name: str,
    role: str,
    parent_id: int | None,
    key_ref_id: int,
    subject: str,
    serial: str,
    ski: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    certificate_der: bytes,
    fingerprint_sha256: str,
    at: dt.datetime,
    family: str | None = None,
    generation: int = 1,
) -> int:
    row = CertificateAuthority(
        name=name,
        role=role,
        parent_id=parent_id,
        key_ref_id=key_ref_id,
        subject=subject,
        serial=serial,
        ski=ski,
        not_before=not_before,
        not_after=not_after,
        certificate_der=certificate_der,
        fingerprint_sha256=fingerprint_sha256,
        created_at=at,
        family=family or name,
        generation=generation,
    )
    session.add(row)
    session.flush()
    # Every CA starts with CRL number 0; the first CRL it publishes is number 1 (RFC 5280 §5.2.3).
    session.add(CRLState(issuer_id=row.id, last_number=0))
    session.flush()
    return row.id


def add_ocsp_responder(
    session: Session, *, issuer_id: int, key_ref_id: int, certificate_id: int, not_after: dt.datetime, at: dt.datetime
) -> int:
    row = OCSPResponder(
        issuer_id=issuer_id, key_ref_id=key_ref_id, certificate_id=certificate_id, not_after=not_after, created_at=at
    )
    session.add(row)
    session.flush()
    return row.id


def supersede_ca(session: Session, ca_id: int, at: dt.datetime) -> None:
    """A newer generation of the CA's family issues from now on."""
    session.execute(
        update(CertificateAuthority)
        .where(CertificateAuthority.id == ca_id, CertificateAuthority.superseded_at.is_(None))
        .values(superseded_at=at)
    )


def list_cas(session: Session) -> list[CASnapshot]:
    """Every CA with its key reference and its newest delegated OCSP responder."""
    out: list[CASnapshot] = []
    cas = session.scalars(select(CertificateAuthority).order_by(CertificateAuthority.id)).all()
    for ca in cas:
        key = session.get_one(KeyReference, ca.key_ref_id)
        responder = session.execute(
            select(OCSPResponder, CertificateRecord, KeyReference)
            .join(CertificateRecord, CertificateRecord.id == OCSPResponder.certificate_id)
            .join(KeyReference, KeyReference.id == OCSPResponder.key_ref_id)
            .where(OCSPResponder.issuer_id == ca.id)
            .order_by(OCSPResponder.not_after.desc(), OCSPResponder.id.desc())
            .limit(1)
        ).first()
        out.append(
            CASnapshot(
                id=ca.id,
                name=ca.name,
                role=ca.role,
                parent_id=ca.parent_id,
                subject=ca.subject,
                certificate_der=ca.certificate_der,
                fingerprint_sha256=ca.fingerprint_sha256,
                not_before=ca.not_before,
                not_after=ca.not_after,
                key=_key_snapshot(key),
                responder_certificate_der=responder[1].der if responder else None,
                responder_key=_key_snapshot(responder[2]) if responder else None,
                family=ca.family,
                generation=ca.generation,
                superseded_at=ca.superseded_at,
            )
        )
    return out


# ----------------------------------------------------------------------------------------------
# Issuance


def reserve_serial(session: HotTransaction, *, issuer_id: int, serial: str, at: dt.datetime) -> int:
    """Insert a ``reserved`` row; raise :class:`SerialCollision` if the serial exists for this issuer.

    The caller rolls back the whole transaction on a collision (on PostgreSQL the failed statement
    has aborted it), so this is the first statement of its transaction: nothing else is lost.
    """
    stmts = driver(session)
    try:
        (new_id,) = stmts.fetch_one("reserve", {"issuer_id": issuer_id, "serial": serial, "at": at})
    except stmts.integrity_error as exc:
        raise SerialCollision(f"serial {serial} already reserved for issuer {issuer_id}") from exc
    except LookupError:
        raise IssuerClosed(f"CA {issuer_id} is closed: its last CRL is published") from None
    return int(new_id)


def reserve_and_journal(
    session: HotTransaction,
    *,
    issuer_id: int,
    serial: str,
    profile: str,
    tbs_sha256: str,
    lint_certificate_der: bytes,
    lint_report: str,
    requested_by: str,
    at: dt.datetime,
    evidence_ref: str | None = None,
) -> tuple[int, int]:
    """Reserve ``serial`` and open its journal row in the caller's transaction; return (reservation
    id, journal id).  Raise :class:`SerialCollision` if the serial exists for this issuer (the
    caller rolls back the transaction, which is then the first statement of), and
    :class:`IssuerClosed` (nothing written) if the CA is closed."""
    stmts = driver(session)
    if stmts.sqlite:
        reservation_id = reserve_serial(session, issuer_id=issuer_id, serial=serial, at=at)
        journal_id = open_journal(
            session,
            reservation_id=reservation_id,
            issuer_id=issuer_id,
            serial=serial,
            profile=profile,
            tbs_sha256=tbs_sha256,
            lint_certificate_der=lint_certificate_der,
            lint_report=lint_report,
            requested_by=requested_by,
            at=at,
            evidence_ref=evidence_ref,
        )
        return reservation_id, journal_id
    params = {
        "issuer_id": issuer_id,
        "serial": serial,
        "profile": profile,
        "tbs_sha256": tbs_sha256,
        "lint_certificate_der": lint_certificate_der,
        "lint_report": lint_report,
        "requested_by": requested_by,
        "at": at,
        "evidence_ref": evidence_ref,
    }
    try:
        reservation_id, journal_id = stmts.fetch_one("reserve_journal", params)
    except stmts.integrity_error as exc:
        if getattr(getattr(exc, "diag", None), "constraint_name", None) != _SERIAL_UNIQUE:
            raise
        raise SerialCollision(f"serial {serial} already reserved for issuer {issuer_id}") from exc
    except LookupError:
        raise IssuerClosed(f"CA {issuer_id} is closed: its last CRL is published") from None
    return int(reservation_id), int(journal_id)


_SERIAL_UNIQUE: Final = "uq_serial_reservation_issuer_id_serial"
"""The constraint a colliding serial violates (PostgreSQL reports its name)."""


def open_journal(
    session: HotTransaction,
    *,
    reservation_id: int,
    issuer_id: int,
    serial: str,
    profile: str,
    tbs_sha256: str,
    lint_certificate_der: bytes,
    lint_report: str,
    requested_by: str,
    at: dt.datetime,
    evidence_ref: str | None = None,
) -> int:
    (new_id,) = driver(session).fetch_one(
        "journal",
        {
            "reservation_id": reservation_id,
            "issuer_id": issuer_id,
            "serial": serial,
            "profile": profile,
            "tbs_sha256": tbs_sha256,
            "lint_certificate_der": lint_certificate_der,
            "lint_report": lint_report,
            "requested_by": requested_by,
            "at": at,
            "evidence_ref": evidence_ref,
        },
    )
    return int(new_id)


def add_certificate(
    session: HotTransaction,
    *,
    issuer_id: int,
    serial: str,
    profile: str,
    subject: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    status: str,
    der: bytes,
    fingerprint_sha256: str,
    spki_sha256: str,
    journal_id: int | None,
    at: dt.datetime,
    activate_after: dt.datetime | None = None,
) -> int:
    (new_id,) = driver(session).fetch_one(
        "certificate",
        {
            "issuer_id": issuer_id,
            "serial": serial,
            "profile": profile,
            "subject": subject,
            "not_before": not_before,
            "not_after": not_after,
            "status": status,
            "der": der,
            "fingerprint_sha256": fingerprint_sha256,
            "spki_sha256": spki_sha256,
            "journal_id": journal_id,
            "at": at,
            "activate_after": activate_after,
        },
    )
    return int(new_id)


def settle_issued(session: HotTransaction, *, reservation_id: int, journal_id: int | None, at: dt.datetime) -> None:
    """Mark a reservation (and its journal row) as ending in a stored certificate."""
    stmts = driver(session)
    if not stmts.sqlite:  # one round trip; the journal row is settled only with the reservation
        settled, _ = stmts.fetch_one("settle_both", {"id": reservation_id, "journal_id": journal_id, "at": at})
        if settled != 1:
            raise SerialCollision(f"reservation {reservation_id} is no longer open")
        return
    if stmts.execute("settle_reservation", {"id": reservation_id, "at": at}) != 1:
        # Recovery settled it as failed meanwhile: the certificate must not be stored.
        raise SerialCollision(f"reservation {reservation_id} is no longer open")
    if journal_id is not None:
        stmts.execute("settle_journal", {"id": journal_id, "at": at})


def fail_reservation(session: Session, *, reservation_id: int, reason: str, at: dt.datetime) -> bool:
    """Settle an open reservation (and its journal row) as failed; False if it was already settled."""
    updated = _exec(
        session,
        update(_RESERVATION)
        .where(_RESERVATION.c.id == reservation_id, _RESERVATION.c.state == "reserved")
        .values(state="failed", settled_at=at, failure=reason[:2000]),
    ).rowcount
    _exec(
        session,
        update(_JOURNAL)
        .where(_JOURNAL.c.reservation_id == reservation_id, _JOURNAL.c.state == "signing")
        .values(state="failed", settled_at=at, failure=reason[:2000]),
    )
    return bool(updated)


@dataclass(frozen=True, slots=True)
class SettledReservation:
    reservation_id: int
    issuer_name: str
    serial: str
    journaled: bool


def settle_stale_reservations(
    session: Session, *, older_than: dt.datetime, at: dt.datetime
) -> list[SettledReservation]:
    """Settle as failed every reservation still open since before ``older_than`` (crash recovery)."""
    rows = session.execute(
        select(SerialReservation.id, CertificateAuthority.name, SerialReservation.serial, IssuanceJournal.id)
        .join(CertificateAuthority, CertificateAuthority.id == SerialReservation.issuer_id)
        .outerjoin(IssuanceJournal, IssuanceJournal.reservation_id == SerialReservation.id)
        .where(SerialReservation.state == "reserved", SerialReservation.reserved_at < older_than)
        .order_by(SerialReservation.id)
    ).all()
    settled: list[SettledReservation] = []
    for res_id, issuer_name, serial, journal_id in rows:
        if fail_reservation(
            session, reservation_id=res_id, reason="recovery: no certificate stored before the process ended", at=at
        ):
            settled.append(SettledReservation(res_id, issuer_name, serial, journal_id is not None))
    return settled


def certificate_by_evidence_ref(session: Session, evidence_ref: str) -> CertificateSnapshot | None:
    """The certificate stored for the attempt ``evidence_ref`` (its journal row ``stored``), or None."""
    row = session.execute(
        select(CertificateRecord, CertificateAuthority.name)
        .join(IssuanceJournal, IssuanceJournal.id == CertificateRecord.journal_id)
        .join(CertificateAuthority, CertificateAuthority.id == CertificateRecord.issuer_id)
        .where(IssuanceJournal.evidence_ref == evidence_ref, IssuanceJournal.state == "stored")
        .order_by(CertificateRecord.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    cert, name = row
    return CertificateSnapshot(
        issuer_name=name,
        serial=cert.serial,
        profile=cert.profile,
        subject=cert.subject,
        status=cert.status,
        not_before=cert.not_before,
        not_after=cert.not_after,
        der=cert.der,
    )


def journal_open_for_evidence_ref(session: Session, evidence_ref: str) -> bool:
    """Whether an attempt ``evidence_ref`` is journaled and still being signed (not yet settled)."""
    found = session.scalar(
        select(IssuanceJournal.id)
        .where(IssuanceJournal.evidence_ref == evidence_ref, IssuanceJournal.state == "signing")
        .limit(1)
    )
    return found is not None


def reservation_states(session: Session) -> dict[str, int]:
    """Serial reservations per state (``issued``, ``failed``, ``reserved``)."""
    stmt = select(SerialReservation.state, func.count()).group_by(SerialReservation.state)
    return {str(state): int(n) for state, n in session.execute(stmt).all()}


def certificate_counts(session: Session) -> dict[tuple[str, str], int]:
    """Certificates per (issuer name, profile)."""
    rows = session.execute(
        select(CertificateAuthority.name, CertificateRecord.profile, func.count())
        .join(CertificateAuthority, CertificateAuthority.id == CertificateRecord.issuer_id)
        .group_by(CertificateAuthority.name, CertificateRecord.profile)
    ).all()
    return {(str(a), str(b)): int(n) for a, b, n in rows}


def list_certificates(session: Session, profiles: Sequence[str] | None = None) -> list[CertificateSnapshot]:
    stmt = (
        select(CertificateRecord, CertificateAuthority.name)
        .join(CertificateAuthority, CertificateAuthority.id == CertificateRecord.issuer_id)
        .order_by(CertificateRecord.id)
    )
    if profiles is not None:
        stmt = stmt.where(CertificateRecord.profile.in_(list(profiles)))
    return [
        CertificateSnapshot(
            issuer_name=name,
            serial=row.serial,
            profile=row.profile,
            subject=row.subject,
            status=row.status,
            not_before=row.not_before,
            not_after=row.not_after,
            der=row.der,
        )
        for row, name in session.execute(stmt).all()
    ]


# ----------------------------------------------------------------------------------------------
# Evidence (auditors)


def certificate_dossier(session: Session, issuer_name: str, serial: str) -> dict[str, JSONValue] | None:
    """Everything the CA holds about one certificate: the stored row, its status entry, the
    reservation, and the issuance journal with the lint report (None when there is no such certificate)."""
    from ca.store.models import StatusEntry
    from ca.store.status import ca_by_name

    ca = ca_by_name(session, issuer_name)
    if ca is None:
        return None
    cert = session.scalars(
        select(CertificateRecord).where(CertificateRecord.issuer_id == ca.id, CertificateRecord.serial == serial)
    ).first()
    if cert is None:
        return None
    out: dict[str, JSONValue] = {
        "issuer": issuer_name,
        "serial": serial,
        "profile": cert.profile,
        "subject": cert.subject,
        "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(),
        "status": cert.status,
        "sha256": cert.fingerprint_sha256,
        "public_key_sha256": cert.spki_sha256,
        "stored_at": cert.created_at.isoformat(),
        "activated_at": cert.activated_at.isoformat() if cert.activated_at else None,
    }
    entry = session.scalars(
        select(StatusEntry).where(StatusEntry.issuer_id == ca.id, StatusEntry.serial == serial)
    ).first()
    out["status_entry"] = (
        {
            "reason": entry.reason,
            "revoked_at": entry.revoked_at.isoformat(),
            "invalidity_date": entry.invalidity_date.isoformat() if entry.invalidity_date else None,
            "received_at": entry.received_at.isoformat(),
            "requested_by": entry.requested_by,
            "decided_by": entry.decided_by,
        }
        if entry is not None
        else None
    )
    reservation = session.scalars(
        select(SerialReservation).where(SerialReservation.issuer_id == ca.id, SerialReservation.serial == serial)
    ).first()
    out["reservation"] = (
        {
            "state": reservation.state,
            "reserved_at": reservation.reserved_at.isoformat(),
            "settled_at": reservation.settled_at.isoformat() if reservation.settled_at else None,
        }
        if reservation is not None
        else None
    )
    journal = session.get(IssuanceJournal, cert.journal_id) if cert.journal_id is not None else None
    out["journal"] = (
        {
            "id": journal.id,
            "state": journal.state,
            "requested_by": journal.requested_by,
            "tbs_sha256": journal.tbs_sha256,
            "created_at": journal.created_at.isoformat(),
            "settled_at": journal.settled_at.isoformat() if journal.settled_at else None,
            "lint_report": _json_list(journal.lint_report),
        }
        if journal is not None
        else None
    )
    return out


def _json_list(text: str) -> JSONValue:
    import json

    try:
        value: JSONValue = json.loads(text)
    except ValueError:
        return text
    return value


def audit_rows(
    session: Session,
    *,
    object_ids: Sequence[tuple[str, str]] = (),
    actor: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 1000,
) -> list[dict[str, JSONValue]]:
    """Audit events matching every given filter (object ids are (type, id) pairs, any of them), oldest first."""
    from sqlalchemy import and_, or_

    stmt = select(AuditEvent).order_by(AuditEvent.seq)
    if object_ids:
        stmt = stmt.where(or_(*(and_(AuditEvent.object_type == t, AuditEvent.object_id == i) for t, i in object_ids)))
    if actor is not None:
        stmt = stmt.where(AuditEvent.actor == actor)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at <= until)
    return [
        {
            "seq": e.seq,
            "at": e.at.isoformat(),
            "actor": e.actor,
            "role": e.role,
            "action": e.action,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "details": _json_list(e.details),
            "hash": e.hash,
        }
        for e in session.scalars(stmt.limit(limit))
    ]
