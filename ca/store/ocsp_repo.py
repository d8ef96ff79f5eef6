"""Storage of the OCSP responder: responders, status look-ups on the hot path, pre-signed responses.

Hot path (:class:`OCSPStatusReader`): one driver-level statement per certificate asked about,
on a connection of its own per thread and process, in autocommit mode, so that every answer reads
the latest committed status (issue 3: a revocation is visible through OCSP within one second of
its commit, in every worker).  Nothing about status is cached between requests.

Pre-signed responses (:func:`store_presigned`): a response may only be stored if the status it
states is still the certificate's status when it is written.  The write locks the certificate row
(``SELECT … FOR UPDATE``) and compares; a revocation or activation updates that same row before
it deletes the certificate's stored response (:mod:`ca.store.status`), so the two transactions
serialise on the row lock:

* the revocation locked the row first: the pre-signer waits for its commit, then reads the new
  status, sees that it differs from what it signed and discards its response;
* the pre-signer locked the row first: the revocation waits, and its DELETE (a later statement,
  which sees committed rows under READ COMMITTED) removes the response the pre-signer stored.

On SQLite every write transaction starts with ``BEGIN IMMEDIATE`` behind a file lock
(:mod:`ca.store.db`), which serialises the same way.  Lock order is certificate row, then
``ocsp_response`` row — the order revocation uses — so the two never deadlock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ca.store.db import Database
from ca.store.models import (
    CertificateAuthority,
    CertificateRecord,
    CRLState,
    KeyReference,
    OCSPResponder,
    PresignedOCSPResponse,
    StatusEntry,
)

__all__ = [
    "CertificateStatus",
    "ClosedAuthority",
    "OCSPStatusReader",
    "OCSPStoreUnavailable",
    "PresignedRow",
    "PresignedWrite",
    "ResponderRecord",
    "StatusLookup",
    "certificate_statuses",
    "closed_authorities",
    "due_for_refresh",
    "list_responders",
    "store_presigned",
]

_RESPONSES: Table = PresignedOCSPResponse.__table__  # type: ignore[assignment]


class OCSPStoreUnavailable(Exception):
    """The database could not be reached or answered with an error (OCSP answers tryLater)."""


@dataclass(frozen=True, slots=True)
class ResponderRecord:
    """A delegated responder (RFC 6960 §4.2.2.2) with its issuing CA and its key reference."""

    responder_id: int
    issuer_id: int
    issuer_name: str
    ca_certificate_der: bytes
    certificate_der: bytes
    not_before: dt.datetime
    not_after: dt.datetime
    key_backend: str
    key_label: str
    key_id: str
    key_algorithm: str
    key_token: str


@dataclass(frozen=True, slots=True)
class CertificateStatus:
    """What OCSP states about an issued certificate: ``status`` as in the certificate table."""

    status: str
    """``good``, ``on-hold`` (not activated: certificateHold) or ``revoked``."""
    reason: str | None
    revoked_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class PresignedRow:
    der: bytes
    cert_status: str
    this_update: dt.datetime
    next_update: dt.datetime
    responder_id: int


@dataclass(frozen=True, slots=True)
class StatusLookup:
    """The result of one hot-path query: ``status`` is None for a serial that was never issued."""

    status: CertificateStatus | None
    presigned: PresignedRow | None


def list_responders(session: Session) -> list[ResponderRecord]:
    """Every delegated responder of every CA, newest first per CA (by notAfter, then id)."""
    rows = session.execute(
        select(
            OCSPResponder.id,
            OCSPResponder.issuer_id,
            CertificateAuthority.name,
            CertificateAuthority.certificate_der,
            CertificateRecord.der,
            CertificateRecord.not_before,
            CertificateRecord.not_after,
            KeyReference.backend,
            KeyReference.label,
            KeyReference.key_id,
            KeyReference.algorithm,
            KeyReference.token,
        )
        .join(CertificateAuthority, CertificateAuthority.id == OCSPResponder.issuer_id)
        .join(CertificateRecord, CertificateRecord.id == OCSPResponder.certificate_id)
        .join(KeyReference, KeyReference.id == OCSPResponder.key_ref_id)
        .order_by(OCSPResponder.issuer_id, CertificateRecord.not_after.desc(), OCSPResponder.id.desc())
    ).all()
    return [
        ResponderRecord(
            responder_id=r[0],
            issuer_id=r[1],
            issuer_name=r[2],
            ca_certificate_der=r[3],
            certificate_der=r[4],
            not_before=r[5],
            not_after=r[6],
            key_backend=r[7],
            key_label=r[8],
            key_id=r[9],
            key_algorithm=r[10],
            key_token=r[11],
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class ClosedAuthority:
    """A closed CA (its last CRL published) and its own key: it signs its OCSP answers itself."""

    issuer_id: int
    key_backend: str
    key_label: str
    key_id: str
    key_algorithm: str
    key_token: str


def closed_authorities(session: Session) -> list[ClosedAuthority]:
    rows = session.execute(
        select(
            CertificateAuthority.id,
            KeyReference.backend,
            KeyReference.label,
            KeyReference.key_id,
            KeyReference.algorithm,
            KeyReference.token,
        )
        .join(CRLState, CRLState.issuer_id == CertificateAuthority.id)
        .join(KeyReference, KeyReference.id == CertificateAuthority.key_ref_id)
        .where(CRLState.closed_at.is_not(None))
    ).all()
    return [ClosedAuthority(int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]


# ----------------------------------------------------------------------------------------------
# Hot path

_LOOKUP_SQL: Final = (
    "SELECT c.status, s.reason, s.revoked_at, r.der, r.cert_status, r.this_update, r.next_update, r.responder_id "
    "FROM certificate c "
    "LEFT JOIN status_entry s ON s.issuer_id = c.issuer_id AND s.serial = c.serial "
    "LEFT JOIN ocsp_response r ON r.issuer_id = c.issuer_id AND r.serial = c.serial "
    "WHERE c.issuer_id = {p} AND c.serial = {p}"
)


def _sqlite_time(value: object) -> dt.datetime:
    # SQLAlchemy stores naive UTC text on SQLite ("YYYY-MM-DD HH:MM:SS.ffffff").
    assert isinstance(value, str)
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


def _pg_time(value: object) -> dt.datetime:
    assert isinstance(value, dt.datetime)
    return value.astimezone(dt.UTC)


class OCSPStatusReader:
    """Driver-level status look-ups for the responder's hot path (one statement per CertID).

    Each thread of each process gets its own DBAPI connection, taken from the engine (so it is
    configured like every other connection), detached from the pool and switched to autocommit:
    every statement sees the newest committed data.  A failed connection is dropped and the next
    call connects again.

    :raises OCSPStoreUnavailable: from every method, for any database error.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._local = threading.local()
        self._sqlite = db.dialect == "sqlite"
        self._sql = _LOOKUP_SQL.format(p="?" if self._sqlite else "%s")
        self._time = _sqlite_time if self._sqlite else _pg_time

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        raw = self._db.engine.raw_connection()
        dbapi = raw.driver_connection
        assert dbapi is not None
        raw.detach()
        if not self._sqlite:
            dbapi.rollback()
            dbapi.autocommit = True
        self._local.conn = dbapi
        self._local.pid = os.getpid()
        return dbapi

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and self._local.pid == os.getpid():
            with contextlib.suppress(Exception):  # the connection is broken already
                conn.close()

    def lookup(self, issuer_id: int, serial: str) -> StatusLookup:
        """The certificate's status and its stored pre-signed response, read in one statement."""
        try:
            conn = self._connection()
            cursor = conn.cursor()
            try:
                cursor.execute(self._sql, (issuer_id, serial))
                row = cursor.fetchone()
            finally:
                cursor.close()
        except (SQLAlchemyError, self._db_errors()) as exc:
            self._drop()
            raise OCSPStoreUnavailable(f"status look-up failed: {type(exc).__name__}") from exc
        if row is None:
            return StatusLookup(status=None, presigned=None)
        status = CertificateStatus(
            status=row[0], reason=row[1], revoked_at=self._time(row[2]) if row[2] is not None else None
        )
        presigned = None
        if row[3] is not None:
            presigned = PresignedRow(
                der=bytes(row[3]),
                cert_status=row[4],
                this_update=self._time(row[5]),
                next_update=self._time(row[6]),
                responder_id=int(row[7]),
            )
        return StatusLookup(status=status, presigned=presigned)

    def _db_errors(self) -> type[Exception]:
        dbapi = self._db.engine.dialect.loaded_dbapi
        error: type[Exception] = dbapi.Error
        return error

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop()


# ----------------------------------------------------------------------------------------------
# Pre-signed responses


def certificate_statuses(
    session: Session, issuer_id: int, serials: Iterable[str], *, lock: bool = False
) -> dict[str, CertificateStatus]:
    """The status of issued certificates of one CA; ``lock`` takes their row locks (FOR UPDATE)."""
    wanted = sorted(set(serials))
    if not wanted:
        return {}
    query = (
        select(CertificateRecord.serial, CertificateRecord.status, StatusEntry.reason, StatusEntry.revoked_at)
        .outerjoin(
            StatusEntry,
            and_(StatusEntry.issuer_id == CertificateRecord.issuer_id, StatusEntry.serial == CertificateRecord.serial),
        )
        .where(CertificateRecord.issuer_id == issuer_id, CertificateRecord.serial.in_(wanted))
        .order_by(CertificateRecord.id)
    )
    if lock:
        query = query.with_for_update(of=CertificateRecord)
    return {
        serial: CertificateStatus(status=status, reason=reason, revoked_at=revoked_at)
        for serial, status, reason, revoked_at in session.execute(query).all()
    }


def due_for_refresh(
    session: Session,
    *,
    issuer_id: int,
    responder_ids: Sequence[int],
    refresh_before: dt.datetime,
    limit: int,
) -> list[str]:
    """Serials of the CA's certificates (every status, expired ones included: eIDAS Art. 24(4))
    whose pre-signed response is missing, ends before ``refresh_before`` or was signed by a
    responder outside ``responder_ids`` (one no longer valid)."""
    query = (
        select(CertificateRecord.serial)
        .outerjoin(
            PresignedOCSPResponse,
            and_(
                PresignedOCSPResponse.issuer_id == CertificateRecord.issuer_id,
                PresignedOCSPResponse.serial == CertificateRecord.serial,
            ),
        )
        .where(
            CertificateRecord.issuer_id == issuer_id,
            or_(
                PresignedOCSPResponse.id.is_(None),
                PresignedOCSPResponse.next_update < refresh_before,
                PresignedOCSPResponse.responder_id.not_in(list(responder_ids)),
            ),
        )
        .order_by(PresignedOCSPResponse.next_update.is_not(None), PresignedOCSPResponse.next_update)
        .limit(limit)
    )
    return list(session.scalars(query).all())


@dataclass(frozen=True, slots=True)
class PresignedWrite:
    """A signed response and the status it states (compared with the stored status at write time)."""

    serial: str
    signed_status: CertificateStatus
    der: bytes
    this_update: dt.datetime
    next_update: dt.datetime
    responder_id: int


def store_presigned(session: Session, issuer_id: int, writes: Sequence[PresignedWrite], at: dt.datetime) -> int:
    """Upsert pre-signed responses whose status still holds (see the module docstring).

    A response is skipped when the certificate's status changed since it was signed, or when the
    stored response is newer (its thisUpdate is later).

    :returns: how many responses were stored.
    """
    current = certificate_statuses(session, issuer_id, (w.serial for w in writes), lock=True)
    existing = dict(
        session.execute(
            select(_RESPONSES.c.serial, _RESPONSES.c.this_update).where(
                _RESPONSES.c.issuer_id == issuer_id, _RESPONSES.c.serial.in_([w.serial for w in writes])
            )
        ).all()
    )
    stored = 0
    for w in writes:
        if current.get(w.serial) != w.signed_status:
            continue  # The status changed while we signed: never store a stale answer.
        values = {
            "cert_status": w.signed_status.status,
            "der": w.der,
            "this_update": w.this_update,
            "next_update": w.next_update,
            "responder_id": w.responder_id,
            "created_at": at,
        }
        if w.serial not in existing:
            session.execute(_RESPONSES.insert().values(issuer_id=issuer_id, serial=w.serial, **values))
        elif existing[w.serial] <= w.this_update:
            session.execute(
                _RESPONSES.update()
                .where(_RESPONSES.c.issuer_id == issuer_id, _RESPONSES.c.serial == w.serial)
                .values(**values)
            )
        else:
            continue
        stored += 1
    return stored
