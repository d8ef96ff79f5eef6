"""Repository functions of the CRL publisher and the CRL/CA-certificate web endpoints.

Lock order inside the publisher's write transaction (as in :mod:`ca.store.status`): the CA's
``crl_state`` row first (:func:`lock_state`), the audit head last
(:func:`ca.store.repository.append_audit`).  On PostgreSQL the row lock is ``SELECT … FOR
UPDATE``; on SQLite the write transaction (``BEGIN IMMEDIATE``) already holds the database lock.

The entries of a CRL are streamed in batches straight from the DBAPI cursor (a server-side cursor
on PostgreSQL), so that a million-entry CRL never holds a million Python row objects at once.
CRL bodies (``crl.der``, up to tens of megabytes) are read only where they are served.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from ca.store.models import CertificateAuthority, CertificateRecord, CRLRecord, CRLState, SerialReservation, StatusEntry

__all__ = [
    "CACertificate",
    "CRLMeta",
    "CRLStateSnapshot",
    "add_crl",
    "bulk_add_status_entries",
    "ca_certificate",
    "certificates",
    "close",
    "closed_at",
    "closed_ca_names",
    "count_entries",
    "crl_der",
    "crl_meta",
    "entry_batches",
    "freeze_issuance",
    "last_this_update",
    "latest_number",
    "live_certificates",
    "lock_state",
    "mark_published",
    "open_reservations",
    "read_states",
]


@dataclass(frozen=True, slots=True)
class CRLStateSnapshot:
    issuer_id: int
    last_number: int
    pending_since: dt.datetime | None
    last_published_at: dt.datetime | None
    closed_at: dt.datetime | None = None
    """The CA's last CRL was published then (its end of life); None while it is open."""


@dataclass(frozen=True, slots=True)
class CRLMeta:
    """A stored CRL without its body."""

    id: int
    issuer_name: str
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    entries: int
    sha256: str
    size: int
    published_by: str
    lint_report: str


@dataclass(frozen=True, slots=True)
class CACertificate:
    name: str
    der: bytes
    fingerprint_sha256: str
    created_at: dt.datetime


def _state(row: CRLState) -> CRLStateSnapshot:
    return CRLStateSnapshot(row.issuer_id, row.last_number, row.pending_since, row.last_published_at, row.closed_at)


def lock_state(session: Session, issuer_id: int) -> CRLStateSnapshot | None:
    """Lock the CA's ``crl_state`` row for the rest of the transaction and return it (RFC 5280 §5.2.3:
    the lock makes CRL numbers strictly increase in commit order even when publishers race)."""
    row = session.scalars(
        select(CRLState)
        .where(CRLState.issuer_id == issuer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    return _state(row) if row is not None else None


def read_states(session: Session) -> dict[str, CRLStateSnapshot]:
    """Every CA's CRL state by CA name (no lock: the scheduler's pre-check)."""
    rows = session.execute(
        select(CertificateAuthority.name, CRLState).join(CRLState, CRLState.issuer_id == CertificateAuthority.id)
    ).all()
    return {str(name): _state(state) for name, state in rows}


def closed_ca_names(session: Session) -> set[str]:
    """The CAs whose last CRL is published (closed)."""
    return {name for name, state in read_states(session).items() if state.closed_at is not None}


def last_this_update(session: Session, issuer_id: int) -> dt.datetime | None:
    """thisUpdate of the CA's newest stored CRL."""
    return session.scalars(
        select(CRLRecord.this_update)
        .where(CRLRecord.issuer_id == issuer_id)
        .order_by(CRLRecord.crl_number.desc())
        .limit(1)
    ).first()


def latest_number(session: Session, issuer_id: int) -> int | None:
    value = session.scalar(select(func.max(CRLRecord.crl_number)).where(CRLRecord.issuer_id == issuer_id))
    return int(value) if value is not None else None


def count_entries(session: Session, issuer_id: int) -> int:
    return int(session.scalar(select(func.count()).where(StatusEntry.issuer_id == issuer_id)) or 0)


def entry_batches(session: Session, issuer_id: int, batch_size: int) -> Iterator[list[bytes]]:
    """Every stored CRL entry encoding of the CA, ordered by serial, in batches of ``batch_size``.

    Runs on the session's own DBAPI connection, inside its transaction (so under the caller's
    ``crl_state`` lock).  PostgreSQL gets a named (server-side) cursor so rows are not all fetched
    into client memory at once.
    """
    connection = session.connection()
    dbapi: Any = connection.connection.driver_connection
    if connection.dialect.name == "sqlite":
        cursor = dbapi.cursor()
        cursor.execute("SELECT crl_entry_der FROM status_entry WHERE issuer_id = ? ORDER BY serial", (issuer_id,))
    else:
        cursor = dbapi.cursor(name=f"crl_entries_{issuer_id}")
        cursor.itersize = batch_size
        cursor.execute("SELECT crl_entry_der FROM status_entry WHERE issuer_id = %s ORDER BY serial", (issuer_id,))
    try:
        while True:
            rows = cursor.fetchmany(batch_size)
            if not rows:
                return
            yield [bytes(r[0]) if not isinstance(r[0], bytes) else r[0] for r in rows]
    finally:
        cursor.close()


def add_crl(
    session: Session,
    *,
    issuer_id: int,
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
    entries: int,
    der: bytes,
    sha256: str,
    lint_report: str,
    published_by: str,
    at: dt.datetime,
) -> int:
    """Insert the CRL into the history (``UNIQUE(issuer_id, crl_number)`` backs the lock)."""
    result = session.execute(
        insert(CRLRecord)
        .values(
            issuer_id=issuer_id,
            crl_number=number,
            this_update=this_update,
            next_update=next_update,
            entries=entries,
            der=der,
            sha256=sha256,
            lint_report=lint_report,
            published_by=published_by,
            created_at=at,
        )
        .returning(CRLRecord.id)
    )
    return int(result.scalar_one())


def mark_published(session: Session, *, issuer_id: int, number: int, at: dt.datetime) -> None:
    """Advance the CRL number and clear the pending mark (the caller holds the row lock)."""
    session.execute(
        update(CRLState)
        .where(CRLState.issuer_id == issuer_id)
        .values(last_number=number, pending_since=None, last_published_at=at)
    )


def _meta_columns() -> tuple[Any, ...]:
    return (
        CRLRecord.id,
        CertificateAuthority.name,
        CRLRecord.crl_number,
        CRLRecord.this_update,
        CRLRecord.next_update,
        CRLRecord.entries,
        CRLRecord.sha256,
        func.length(CRLRecord.der),
        CRLRecord.published_by,
        CRLRecord.lint_report,
    )


def crl_meta(session: Session, ca_name: str, number: int | None = None) -> CRLMeta | None:
    """The CA's newest stored CRL (or the one with ``number``), without its body."""
    stmt = (
        select(*_meta_columns())
        .join(CertificateAuthority, CertificateAuthority.id == CRLRecord.issuer_id)
        .where(CertificateAuthority.name == ca_name)
    )
    if number is not None:
        stmt = stmt.where(CRLRecord.crl_number == number)
    row = session.execute(stmt.order_by(CRLRecord.crl_number.desc()).limit(1)).first()
    if row is None:
        return None
    return CRLMeta(
        id=int(row[0]),
        issuer_name=str(row[1]),
        number=int(row[2]),
        this_update=row[3],
        next_update=row[4],
        entries=int(row[5]),
        sha256=str(row[6]),
        size=int(row[7]),
        published_by=str(row[8]),
        lint_report=str(row[9]),
    )


def crl_der(session: Session, crl_id: int) -> bytes:
    return bytes(session.scalars(select(CRLRecord.der).where(CRLRecord.id == crl_id)).one())


def ca_certificate(session: Session, name: str) -> CACertificate | None:
    row = session.execute(
        select(
            CertificateAuthority.name,
            CertificateAuthority.certificate_der,
            CertificateAuthority.fingerprint_sha256,
            CertificateAuthority.created_at,
        ).where(CertificateAuthority.name == name)
    ).first()
    if row is None:
        return None
    return CACertificate(str(row[0]), bytes(row[1]), str(row[2]), row[3])


def bulk_add_status_entries(session: Session, rows: Iterable[Mapping[str, object]]) -> int:
    """Insert status entries in one executemany (benchmarks and tests build synthetic CRLs).

    Each mapping holds the :class:`~ca.store.models.StatusEntry` columns except ``id``.
    """
    batch = [dict(r) for r in rows]
    if batch:
        session.execute(insert(StatusEntry), batch)
    return len(batch)


# ----------------------------------------------------------------------------------------------
# A CA's end of life (the last CRL)


def freeze_issuance(session: Session) -> None:
    """Hold off new serial reservations until the caller's transaction ends.

    PostgreSQL: ``LOCK TABLE serial_reservation IN SHARE MODE`` waits for every transaction that
    is inserting a reservation and blocks new inserts until commit; an insert that waited takes its
    snapshot after the lock is granted, so it sees a closed CA (the reservation statements insert
    only ``WHERE NOT EXISTS`` a closed ``crl_state``: ca/store/hotpath.py).  SQLite: the write
    transaction (``BEGIN IMMEDIATE``) already excludes every other writer.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE serial_reservation IN SHARE MODE"))


def open_reservations(session: Session, issuer_id: int) -> int:
    """Serials of the CA reserved and not yet settled (an issuance in progress, or a crash that
    recovery has not settled yet)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(SerialReservation)
            .where(SerialReservation.issuer_id == issuer_id, SerialReservation.state == "reserved")
        )
        or 0
    )


def live_certificates(session: Session, issuer_id: int, now: dt.datetime, limit: int = 5) -> tuple[int, list[str]]:
    """How many of the CA's certificates are neither revoked nor expired at ``now`` — the ones it
    issued (end entities, responders) and, for the root, its CA certificates — and the serials of
    the first ``limit`` of them (on hold counts as live: a hold is not final)."""
    issued = (
        CertificateRecord.issuer_id == issuer_id,
        CertificateRecord.status != "revoked",
        CertificateRecord.not_after >= now,
    )
    revoked_ca = (
        select(StatusEntry.id)
        .where(
            StatusEntry.issuer_id == issuer_id,
            StatusEntry.serial == CertificateAuthority.serial,
            StatusEntry.reason != "certificateHold",
        )
        .exists()
    )
    children = (CertificateAuthority.parent_id == issuer_id, CertificateAuthority.not_after >= now, ~revoked_ca)
    count = int(session.scalar(select(func.count()).select_from(CertificateRecord).where(*issued)) or 0)
    count += int(session.scalar(select(func.count()).select_from(CertificateAuthority).where(*children)) or 0)
    serials = list(session.scalars(select(CertificateAuthority.serial).where(*children).limit(limit)))
    serials += session.scalars(
        select(CertificateRecord.serial).where(*issued).order_by(CertificateRecord.not_after.desc()).limit(limit)
    )
    return count, [str(x) for x in serials[:limit]]


def certificates(session: Session, issuer_id: int) -> int:
    """Every certificate the CA has issued (end entities, responders and, for the root, CA certificates)."""
    issued = session.scalar(
        select(func.count()).select_from(CertificateRecord).where(CertificateRecord.issuer_id == issuer_id)
    )
    children = session.scalar(
        select(func.count()).select_from(CertificateAuthority).where(CertificateAuthority.parent_id == issuer_id)
    )
    return int(issued or 0) + int(children or 0)


def close(session: Session, issuer_id: int, at: dt.datetime) -> None:
    """Mark the CA closed (in the transaction that stores its last CRL, under the state row lock)."""
    session.execute(update(CRLState).where(CRLState.issuer_id == issuer_id).values(closed_at=at))


def closed_at(session: Session, issuer_id: int, *, lock: bool = False) -> dt.datetime | None:
    """When the CA was closed, or None.  ``lock``: ``FOR SHARE`` on PostgreSQL, so that a close
    in progress is waited for and then seen (the close holds the row ``FOR UPDATE``)."""
    stmt = select(CRLState.closed_at).where(CRLState.issuer_id == issuer_id)
    if lock:
        stmt = stmt.with_for_update(read=True)
    return session.scalar(stmt)
