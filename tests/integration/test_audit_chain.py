"""The audit chain never forks: two processes appending at once on PostgreSQL and SQLite."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ca.audit.chain import GENESIS_HASH, AuditEntry, entry_hash
from ca.store import repository as repo
from ca.store.db import Database
from ca.store.models import AuditEvent, AuditHead
from migrations import upgrade
from tests.integration.helpers import assert_audit_chain


def _append_many(url: str, who: str, n: int) -> None:
    """Alternately through an ORM session and the issuance hot path's bare transaction."""
    db = Database(url)
    try:
        for i in range(n):
            with db.write() if i % 2 else db.hot_write() as tx:
                repo.append_audit(
                    tx, at=dt.datetime.now(dt.UTC), actor=who, role="test", action="test.event", details={"i": i}
                )
    finally:
        db.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_concurrent_appenders_keep_one_chain(request: pytest.FixtureRequest, tmp_path: Path, database: str) -> None:
    url = request.getfixturevalue("pg_url") if database == "postgres" else f"sqlite:///{tmp_path / 'a.db'}"
    upgrade(url)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(url, f"p{k}", 150)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    db = Database(url)
    try:
        with db.read() as s:
            events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
            head = s.get_one(AuditHead, 1)
    finally:
        db.dispose()
    assert [e.seq for e in events] == list(range(1, 301))
    assert {e.actor for e in events} == {"p0", "p1"}
    prev = assert_audit_chain(events)
    assert (head.seq, head.hash) == (300, prev)


def test_rolled_back_event_leaves_no_gap(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    db = Database(url)
    try:
        with pytest.raises(RuntimeError), db.write() as s:
            repo.append_audit(s, at=dt.datetime.now(dt.UTC), actor="a", role="r", action="x")
            raise RuntimeError("the business change failed")
        with db.write() as s:
            seq = repo.append_audit(s, at=dt.datetime.now(dt.UTC), actor="a", role="r", action="y")
        with db.read() as s:
            assert [e.action for e in s.scalars(select(AuditEvent))] == ["y"]
    finally:
        db.dispose()
    assert seq == 1


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_hot_write_commits_or_rolls_back_and_returns_its_connection(
    request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> None:
    url = request.getfixturevalue("pg_url") if database == "postgres" else f"sqlite:///{tmp_path / 'h.db'}"
    upgrade(url)
    db = Database(url)
    try:
        with pytest.raises(RuntimeError), db.hot_write() as tx:
            repo.append_audit(tx, at=dt.datetime.now(dt.UTC), actor="a", role="r", action="x")
            raise RuntimeError("the business change failed")
        with db.hot_write() as tx:
            seq = repo.append_audit(tx, at=dt.datetime.now(dt.UTC), actor="a", role="r", action="y")
        with db.write() as s:  # an ORM transaction right after sees it and continues the chain
            repo.append_audit(s, at=dt.datetime.now(dt.UTC), actor="a", role="r", action="z")
        with db.read() as s:
            events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        db.dispose()
    assert seq == 1
    assert [(e.seq, e.action) for e in events] == [(1, "y"), (2, "z")]
    assert_audit_chain(events)


def test_sqlite_checkpoints_outside_commit_and_keeps_the_wal_small(tmp_path: Path) -> None:
    """No checkpoint inside COMMIT (wal_autocheckpoint=0); Database checkpoints every
    CHECKPOINT_EVERY commits after releasing the writer lock, so the WAL does not grow without end."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    wal = tmp_path / "w.db-wal"
    db = Database(url)
    try:
        with db.read() as s:
            assert s.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        details = {"padding": "x" * 3000}  # about one page per event
        with db.write() as s:
            repo.append_audit(s, at=dt.datetime.now(dt.UTC), actor="a", role="r", action="x", details=details)
        first = wal.stat().st_size
        for i in range(10 * Database.CHECKPOINT_EVERY):
            with db.hot_write() if i % 2 else db.write() as tx:
                repo.append_audit(tx, at=dt.datetime.now(dt.UTC), actor="a", role="r", action="x", details=details)
        # Without the checkpoints the WAL would hold every page of 640 commits (several MB): with them,
        # writers restart it from the beginning after each one.
        assert wal.stat().st_size < first + 3 * Database.CHECKPOINT_EVERY * 4 * 4096
        with db.read() as s:
            assert s.scalar(select(func.count()).select_from(AuditEvent)) == 10 * Database.CHECKPOINT_EVERY + 1
    finally:
        db.dispose()


def test_tampering_breaks_the_chain(tmp_path: Path) -> None:
    """The hashing rule detects an edited entry (the verifier tool comes with a later issue)."""
    at = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    first = AuditEntry(1, at, "a", "r", "x", None, None, '{"k":1}', GENESIS_HASH)
    edited = AuditEntry(1, at, "a", "r", "x", None, None, '{"k":2}', GENESIS_HASH)
    assert entry_hash(first) != entry_hash(edited)
    assert entry_hash(first) == entry_hash(AuditEntry(1, at, "a", "r", "x", None, None, '{"k":1}', GENESIS_HASH))


def test_threads_of_one_process_append_without_deadlock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: scheduler threads share one Database; the SQLite writer lock must serialise them
    (a lazily opened lock descriptor raced: two threads opened two descriptors and one flock was
    never released, so every later writer waited forever)."""
    import os
    import threading
    import time

    url = f"sqlite:///{tmp_path / 'threads.db'}"
    upgrade(url)
    real_open = os.open

    def slow_open(path: str, flags: int, mode: int = 0o777) -> int:
        if str(path).endswith(".writelock"):
            time.sleep(0.05)  # widen the window in which a second thread finds no descriptor yet
        return real_open(path, flags, mode)

    monkeypatch.setattr("ca.store.db.os.open", slow_open)
    total = 0
    for _round in range(3):
        db = Database(url)  # a fresh lock descriptor each round: the race is at first use
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []

        def work(db: Database = db, barrier: threading.Barrier = barrier, errors: list[BaseException] = errors) -> None:
            try:
                barrier.wait()
                for _ in range(3):
                    with db.write() as s:
                        repo.append_audit(s, at=dt.datetime.now(dt.UTC), actor="t", role="system", action="test.thread")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, daemon=True) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        assert not any(t.is_alive() for t in threads), "writer threads deadlocked"
        assert errors == []
        total += 18
        db.dispose()
    db = Database(url)
    with db.read() as s:
        assert repo.audit_count(s) == total
    db.dispose()
