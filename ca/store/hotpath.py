"""The issuance and audit hot path as driver-level statements.

Every certificate costs about ten statements.  Through SQLAlchemy's execution layer each costs
60–100 µs of Python, and on SQLite they run while the database's single write lock is held, so
that overhead capped the whole CA at about 600 certificates/s however many processes issued.
These statements run either on the *same* DBAPI connection and inside the *same* transaction that
:meth:`ca.store.db.Database.write` opened (SQLAlchemy still emits BEGIN, COMMIT and ROLLBACK), or
in a transaction of their own that :meth:`ca.store.db.Database.hot_write` opens on a pooled
DBAPI connection without the ORM session around it (a session, its connection and its
transaction cost another 100–130 µs each time, again under the write lock), against the tables
the models and migrations define; the integration tests read everything back through the ORM.

Values are bound as driver parameters, never formatted into SQL.  On SQLite, datetimes are
written in the text format SQLAlchemy's ``DateTime`` type uses there, so ORM reads return them
unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy.orm import Session

__all__ = ["DriverStatements", "HotTransaction", "driver"]


def _sqlite_datetime(value: dt.datetime) -> str:
    """SQLAlchemy's SQLite DATETIME storage format, for naive UTC."""
    v = value.astimezone(dt.UTC)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"


_SQL: Final = {
    # No row when the CA is closed (its last CRL is published: ca/store/crl_repo.py).
    "reserve": "INSERT INTO serial_reservation (issuer_id, serial, state, reserved_at) "
    "SELECT :issuer_id, :serial, 'reserved', :at WHERE NOT EXISTS (SELECT 1 FROM crl_state "
    "WHERE issuer_id = :issuer_id AND closed_at IS NOT NULL) RETURNING id",
    "journal": "INSERT INTO issuance_journal (reservation_id, issuer_id, serial, profile, state, tbs_sha256, "
    "lint_certificate_der, lint_report, requested_by, created_at, evidence_ref) VALUES (:reservation_id, :issuer_id, "
    ":serial, :profile, 'signing', :tbs_sha256, :lint_certificate_der, :lint_report, :requested_by, :at, "
    ":evidence_ref) RETURNING id",
    "settle_reservation": "UPDATE serial_reservation SET state = 'issued', settled_at = :at "
    "WHERE id = :id AND state = 'reserved'",
    "settle_journal": "UPDATE issuance_journal SET state = 'stored', settled_at = :at WHERE id = :id",
    "certificate": "INSERT INTO certificate (issuer_id, serial, profile, subject, not_before, not_after, status, "
    "der, fingerprint_sha256, spki_sha256, journal_id, created_at, activate_after) VALUES (:issuer_id, :serial, "
    ":profile, :subject, :not_before, :not_after, :status, :der, :fingerprint_sha256, :spki_sha256, :journal_id, "
    ":at, :activate_after) "
    "RETURNING id",
    "head": "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash",
    "event": "INSERT INTO audit_event (seq, at, actor, role, action, object_type, object_id, details, prev_hash, "
    "hash) VALUES (:seq, :at, :actor, :role, :action, :object_type, :object_id, :details, :prev_hash, :hash)",
    "head_hash": "UPDATE audit_head SET hash = :hash WHERE id = 1",
}


def _to_pyformat(sql: str) -> str:
    """``:name`` (sqlite3's named style) to ``%(name)s`` (psycopg's)."""
    import re

    return re.sub(r"(?<![:\w]):([a-z_][a-z0-9_]*)", r"%(\1)s", sql)


# PostgreSQL only: each is one round trip to the server where SQLite (in-process) runs two or
# three statements.  Data-modifying CTEs all run, once, on the statement's snapshot.
_PG_ONLY: Final = {
    "reserve_journal": "WITH r AS (INSERT INTO serial_reservation (issuer_id, serial, state, reserved_at) "
    "SELECT :issuer_id, :serial, 'reserved', :at WHERE NOT EXISTS (SELECT 1 FROM crl_state "
    "WHERE issuer_id = :issuer_id AND closed_at IS NOT NULL) RETURNING id) "
    "INSERT INTO issuance_journal (reservation_id, issuer_id, serial, profile, state, tbs_sha256, "
    "lint_certificate_der, lint_report, requested_by, created_at, evidence_ref) "
    "SELECT r.id, :issuer_id, :serial, :profile, 'signing', :tbs_sha256, :lint_certificate_der, :lint_report, "
    ":requested_by, :at, :evidence_ref FROM r RETURNING reservation_id, id",
    "settle_both": "WITH s AS (UPDATE serial_reservation SET state = 'issued', settled_at = :at "
    "WHERE id = :id AND state = 'reserved' RETURNING id), "
    "j AS (UPDATE issuance_journal SET state = 'stored', settled_at = :at "
    "WHERE id = :journal_id AND EXISTS (SELECT 1 FROM s) RETURNING id) "
    "SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM j)",
    "event_head": "WITH e AS (INSERT INTO audit_event (seq, at, actor, role, action, object_type, object_id, "
    "details, prev_hash, hash) VALUES (:seq, :at, :actor, :role, :action, :object_type, :object_id, :details, "
    ":prev_hash, :hash)) UPDATE audit_head SET hash = :hash WHERE id = 1",
}

_PG_SQL: Final = {k: _to_pyformat(v) for k, v in {**_SQL, **_PG_ONLY}.items()}


class DriverStatements:
    """The hot-path statements bound to one DBAPI cursor, inside a transaction its owner opened."""

    def __init__(self, cursor: Any, *, sqlite: bool, integrity_error: type[Exception]) -> None:
        self._cursor = cursor
        self.sqlite = sqlite
        """True on SQLite (statements run in-process), False on PostgreSQL (each is a round trip)."""
        self._sql = _SQL if sqlite else _PG_SQL
        self.integrity_error = integrity_error

    @classmethod
    def for_session(cls, session: Session) -> DriverStatements:
        """On ``session``'s connection, in its transaction (which this begins if need be)."""
        connection = session.connection()  # begins the transaction (BEGIN IMMEDIATE on SQLite)
        dbapi_connection = connection.connection.driver_connection
        assert dbapi_connection is not None
        dialect = connection.dialect
        return cls(
            dbapi_connection.cursor(),
            sqlite=dialect.name == "sqlite",
            integrity_error=dialect.loaded_dbapi.IntegrityError,
        )

    def _params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if not self.sqlite:
            return dict(params)
        return {k: _sqlite_datetime(v) if isinstance(v, dt.datetime) else v for k, v in params.items()}

    def execute(self, name: str, params: Mapping[str, Any]) -> int:
        """Run a statement; return its rowcount."""
        self._cursor.execute(self._sql[name], self._params(params))
        return int(self._cursor.rowcount)

    def fetch_one(self, name: str, params: Mapping[str, Any]) -> tuple[Any, ...]:
        self._cursor.execute(self._sql[name], self._params(params))
        row = self._cursor.fetchone()
        if row is None:
            raise LookupError(f"{name}: no row returned")
        # Drain the cursor: sqlite3 finishes a RETURNING statement only when all rows are read.
        self._cursor.fetchall()
        return tuple(row)


HotTransaction = Session | DriverStatements
"""What the hot-path repository functions write through: an ORM session's transaction, or the
statements of a :meth:`ca.store.db.Database.hot_write` transaction."""


def driver(tx: HotTransaction) -> DriverStatements:
    """The statements for ``tx``; for a session, cached on it for the rest of its transaction."""
    if isinstance(tx, DriverStatements):
        return tx
    cached = tx.info.get("_qtsp_driver")
    if cached is None:
        cached = DriverStatements.for_session(tx)
        tx.info["_qtsp_driver"] = cached
    assert isinstance(cached, DriverStatements)
    return cached
