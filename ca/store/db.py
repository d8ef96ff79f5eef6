"""Engines and units of work.  The only place that configures SQLAlchemy connections.

SQLite runs in WAL mode with foreign keys on.  Write units of work start with ``BEGIN IMMEDIATE``
on SQLite, so two writers never read the same audit-chain head and both append to it (a deferred
transaction would upgrade its lock only at the first write).  PostgreSQL locks the head row.

**Durability on SQLite.**  ``synchronous=NORMAL`` alone survives a crash of the process but not
of the machine: a power loss can take back the last commits, and with them a certificate already
handed out, or a revocation already acknowledged.  ``synchronous=FULL`` would sync inside COMMIT,
while every other writer waits on the lock.  So commits run with NORMAL, and each unit of work
that must be durable (every :meth:`Database.write` that changed a row, and
:meth:`Database.hot_write` unless told otherwise) syncs the WAL with ``fdatasync`` after releasing
the writer lock and before it returns.
PostgreSQL commits durably itself (``synchronous_commit`` on, its default).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ca.store.hotpath import DriverStatements

__all__ = ["Database", "StoreError", "UnitOfWork", "normalise_url"]

StoreError = SQLAlchemyError
"""Base class of every database error (adapters map it to one line)."""

UnitOfWork = Session
"""What :meth:`Database.write` and :meth:`Database.read` yield; services pass it to the repository."""


def normalise_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs (DESIGN.md: psycopg 3 for PostgreSQL)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


_CHANGES_AT_BEGIN = "qtsp_total_changes_at_begin"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN, instead of pysqlite's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # No checkpoint inside COMMIT, i.e. while this process holds the writer lock (a
            # checkpoint copies and syncs up to 1,000 pages: a stall of milliseconds every few dozen
            # commits for every queued writer); Database checkpoints after releasing it instead.
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA cache_size=-32768")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
        # Rows changed so far on this connection: Database.write syncs only if its block changed any.
        conn.info[_CHANGES_AT_BEGIN] = conn.connection.driver_connection.total_changes


def _configure_postgresql(engine: Engine, database: Database) -> None:
    """Ping a pooled connection before handing it out only when it has been idle for
    :attr:`Database.PING_AFTER_IDLE` seconds or more.

    A server restart, a failover or a middlebox dropping idle connections shows on a connection
    that has waited in the pool; SQLAlchemy's ``pool_pre_ping`` catches those too, but pings on
    every checkout: a round trip of about 0.13 ms here, twice per certificate.  A connection
    whose ping fails is discarded and the checkout retried with a new one (DisconnectionError).
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["qtsp_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("qtsp_idle_since")
        if idle_since is None or time.monotonic() - idle_since < database.PING_AFTER_IDLE:
            return  # new, or in use moments ago
        database.idle_pings += 1
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:  # the driver's error for a dead connection
            raise DisconnectionError(f"pooled connection failed its ping after idling: {exc}") from exc


_FORK_GUARD = threading.Lock()
_log = logging.getLogger(__name__)


class Database:
    """Engines plus session factories for reading and for writing."""

    PING_AFTER_IDLE = 1.0
    """On PostgreSQL, a pooled connection idle for this many seconds is pinged before it is
    handed out (see :func:`_configure_postgresql`)."""

    CHECKPOINT_EVERY = 64
    """On SQLite, every this many commits of this object a PASSIVE WAL checkpoint runs, outside the
    writer lock (it neither waits for nor blocks readers and writers; the WAL stays small)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.idle_pings = 0
        """PostgreSQL: how many pooled connections were pinged because they had idled."""
        self.dialect = make_url(self.url).get_backend_name()
        if self.dialect == "sqlite":
            self.engine = create_engine(self.url, echo=echo, connect_args={"timeout": 30})
            _configure_sqlite(self.engine)
            write_engine: Engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        else:
            self.engine = create_engine(self.url, echo=echo)
            _configure_postgresql(self.engine, self)
            write_engine = self.engine
        database = make_url(self.url).database
        self._lock_path = (
            f"{database}.writelock" if self.dialect == "sqlite" and database and database != ":memory:" else None
        )
        self._lock_fd: int | None = None
        self._wal_path = f"{database}-wal" if self._lock_path is not None else None
        self._commits = itertools.count(1)
        self._lock_pid = 0
        self._thread_lock = threading.Lock()
        self._write_engine = write_engine
        self._integrity_error: type[Exception] = self.engine.dialect.loaded_dbapi.IntegrityError
        self._reader = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._writer = sessionmaker(bind=write_engine, expire_on_commit=False)

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits when the block ends normally and rolls back otherwise.

        On SQLite, writers of several processes first queue on an ``fcntl`` lock beside the
        database file: a waiter wakes as soon as the lock is released, whereas SQLite's own busy
        handler polls with sleeps of 1, 2, 5, ... ms, which costs more than a whole transaction.
        """
        with self._sqlite_write_lock(), self._writer() as session, session.begin():
            yield session
            changed = self._changed_rows(session)
        self._committed(durable=changed)  # after the writer lock is released

    def _changed_rows(self, session: Session) -> bool:
        """Whether the write transaction of ``session`` inserted, updated or deleted a row (rows
        changed by triggers included): a transaction that only read has nothing to sync."""
        if self.dialect != "sqlite":
            return True
        session.flush()  # objects added but not flushed yet are rows changed at commit
        connection = session.connection()  # the transaction's (begun now if the block never used it)
        before = connection.info.get(_CHANGES_AT_BEGIN)
        dbapi = connection.connection.driver_connection
        return before is None or dbapi is None or dbapi.total_changes != before

    @contextlib.contextmanager
    def hot_write(self, *, durable: bool = True) -> Iterator[DriverStatements]:
        """Like :meth:`write`, for the issuance hot path's driver statements only
        (:mod:`ca.store.hotpath`): a transaction on a pooled DBAPI connection with no ORM session,
        connection or transaction objects around it.  It commits when the block ends normally and
        rolls back otherwise; the connection goes back to the pool either way (whose
        reset-on-return rolls back whatever a failed COMMIT or ROLLBACK left).  The connection is
        taken from the pool before the writer lock, so the lock is held only for the transaction.

        :param durable: False only for a commit that a later durable commit of the same process
            covers before anything depending on it leaves the process (the WAL is synced as a whole).
        """
        pooled = self._write_engine.raw_connection()
        try:
            dbapi = pooled.driver_connection
            assert dbapi is not None
            cursor = dbapi.cursor()
            with self._sqlite_write_lock():
                if self.dialect == "sqlite":
                    cursor.execute("BEGIN IMMEDIATE")  # isolation_level None: we open it (see _on_connect)
                try:
                    yield DriverStatements(
                        cursor, sqlite=self.dialect == "sqlite", integrity_error=self._integrity_error
                    )
                except BaseException:
                    dbapi.rollback()
                    raise
                dbapi.commit()
        finally:
            pooled.close()
        self._committed(durable=durable)

    def _committed(self, *, durable: bool) -> None:
        """After a commit, with the writer lock released: make it durable (SQLite, see the module
        docstring) and, now and then, checkpoint the WAL."""
        if self.dialect != "sqlite":
            return
        if durable:
            self._sync_wal()
        if next(self._commits) % self.CHECKPOINT_EVERY == 0:
            self.checkpoint()

    def _sync_wal(self) -> None:
        if self._wal_path is None:
            return
        try:
            fd = os.open(self._wal_path, os.O_RDONLY)
        except FileNotFoundError:
            return  # checkpointed and removed when the last connection closed, which synced the database
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def checkpoint(self) -> None:
        """A PASSIVE WAL checkpoint on SQLite (nothing elsewhere).  A failure is logged, not raised:
        the commit before it stands, and the next checkpoint copies what this one did not."""
        if self.dialect != "sqlite":
            return
        try:
            pooled = self.engine.raw_connection()
            try:
                dbapi = pooled.driver_connection
                assert dbapi is not None
                dbapi.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                pooled.close()
        except Exception as exc:  # reported; the next checkpoint retries
            _log.warning("SQLite WAL checkpoint failed: %s", exc)

    @contextlib.contextmanager
    def _sqlite_write_lock(self) -> Iterator[None]:
        if self._lock_path is None:
            yield
            return
        # Threads of one process share the lock file's descriptor, and flock() does not exclude
        # holders of the same open file description: a thread lock serialises them first.
        with self._process_lock():
            if self._lock_fd is None:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            fd = self._lock_fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _process_lock(self) -> threading.Lock:
        """This process's writer lock (a child after fork gets fresh ones and its own descriptor)."""
        if self._lock_pid != os.getpid():
            with _FORK_GUARD:
                if self._lock_pid != os.getpid():
                    self._thread_lock = threading.Lock()
                    self._lock_fd = None
                    self._lock_pid = os.getpid()
        return self._thread_lock

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        if self._lock_fd is not None and self._lock_pid == os.getpid():
            os.close(self._lock_fd)
        self._lock_fd = None
