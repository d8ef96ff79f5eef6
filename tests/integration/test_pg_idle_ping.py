"""On PostgreSQL a pooled connection that has idled is pinged before use, so a connection the
server dropped meanwhile (restart, failover, idle timeout) is replaced instead of failing the next
operation; a connection used moments ago is handed out without the round trip."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from ca.store.db import Database


def _backend_pid(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(text("SELECT pg_backend_pid()")))


def _terminate(pg_url: str, pid: int) -> None:
    with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        for _ in range(100):  # until the server has ended the backend
            if admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() == (0,):
                return
            time.sleep(0.02)
    raise AssertionError(f"backend {pid} still running")


def test_a_dropped_idle_connection_is_replaced(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Database, "PING_AFTER_IDLE", 0.05)
    db = Database(pg_url)
    try:
        pid = _backend_pid(db)
        _terminate(pg_url, pid)
        time.sleep(0.1)
        assert _backend_pid(db) != pid  # the dead connection failed its ping and was replaced
        assert db.idle_pings == 1
        # The hot path's bare DBAPI transactions check out from the same pool.
        pid = _backend_pid(db)
        _terminate(pg_url, pid)
        time.sleep(0.1)
        with db.hot_write():
            pass
        assert db.idle_pings == 2 and _backend_pid(db) != pid
    finally:
        db.dispose()


def test_without_the_ping_the_dropped_connection_fails_the_next_operation(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: what the ping prevents."""
    monkeypatch.setattr(Database, "PING_AFTER_IDLE", 3600.0)
    db = Database(pg_url)
    try:
        pid = _backend_pid(db)
        _terminate(pg_url, pid)
        with pytest.raises(OperationalError):
            _backend_pid(db)
        assert db.idle_pings == 0
        # SQLAlchemy invalidated the connection with the error: the next operation reconnects.
        assert _backend_pid(db) != pid
    finally:
        db.dispose()


def test_a_connection_used_moments_ago_is_not_pinged(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Database, "PING_AFTER_IDLE", 0.5)
    db = Database(pg_url)
    try:
        first = _backend_pid(db)
        for _ in range(50):
            assert _backend_pid(db) == first  # the same pooled connection, reused at once
            with db.hot_write():
                pass
        assert db.idle_pings == 0
        time.sleep(0.6)
        assert _backend_pid(db) == first  # alive: pinged once, then used
        assert db.idle_pings == 1
    finally:
        db.dispose()
