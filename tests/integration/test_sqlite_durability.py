"""On SQLite (synchronous=NORMAL inside COMMIT), every unit of work that must survive a power loss
syncs the WAL after releasing the writer lock and before it returns (ca.store.db, "Durability");
an issued certificate is durable before ``issue`` hands it out."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from ca.profiles.subject import SubjectInput
from ca.store import repository as repo
from ca.store.db import Database
from ca.store.models import AuditEvent, AuditHead, CertificateRecord, JobLease
from migrations import upgrade
from qtsp.demo import DEMO_SUBJECTS, fresh_csr
from qtsp.wiring import os_actor
from tests.conftest import Home
from tests.integration.helpers import open_runtime


class SyncSpy:
    """Records each fdatasync of a ``-wal`` file, with what a fresh connection sees at that moment."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, probe: object = None) -> None:
        self.calls: list[object] = []
        self._probe = probe
        real = os.fdatasync

        def spy(fd: int) -> None:
            if os.readlink(f"/proc/self/fd/{fd}").endswith("-wal"):
                self.calls.append(self._probe() if callable(self._probe) else None)
            real(fd)

        monkeypatch.setattr("ca.store.db.os.fdatasync", spy)


def _audit(tx: object) -> None:
    repo.append_audit(tx, at=dt.datetime.now(dt.UTC), actor="a", role="r", action="x")  # type: ignore[arg-type]


@pytest.fixture
def spied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Database, SyncSpy]]:
    """A migrated SQLite database and a spy on its WAL syncs."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    upgrade(url)
    db = Database(url)
    try:
        yield db, SyncSpy(monkeypatch)
    finally:
        db.dispose()


def test_write_and_hot_write_sync_the_wal_unless_told_not_to(spied: tuple[Database, SyncSpy]) -> None:
    db, spy = spied
    with db.write() as s:
        _audit(s)
    assert len(spy.calls) == 1
    with db.hot_write() as tx:
        _audit(tx)
    assert len(spy.calls) == 2
    with db.hot_write(durable=False) as tx:
        _audit(tx)
    assert len(spy.calls) == 2
    with pytest.raises(RuntimeError), db.write() as s:  # nothing committed: nothing to sync
        _audit(s)
        raise RuntimeError("refused")
    assert len(spy.calls) == 2


def test_a_write_that_changed_no_row_does_not_sync(spied: tuple[Database, SyncSpy]) -> None:
    db, spy = spied
    with db.write() as s:  # reads only
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 0
    with db.write():  # never touches the database
        pass
    with db.write() as s:  # an UPDATE that matches no row
        s.execute(update(AuditHead).where(AuditHead.id == 999).values(seq=0))
    assert spy.calls == []
    with db.write() as s:  # a row changed: synced
        _audit(s)
    assert len(spy.calls) == 1
    with db.write() as s:  # read after that write, on the same pooled connection: still nothing
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 1
    assert len(spy.calls) == 1
    with db.write() as s:  # an object added but never flushed by the block is a changed row
        s.add(JobLease(name="test", runs=0))
    assert len(spy.calls) == 2
    with db.read() as s:
        assert s.get(JobLease, "test") is not None


def test_an_issued_certificate_is_durable_before_issue_returns(
    soft_home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_runtime(soft_home.path) as rt:
        service = rt.issuance(pkilint=False)
        subject = SubjectInput.from_json_obj(DEMO_SUBJECTS["upc-auth"])
        service.issue(profile_name="upc-auth", csr=fresh_csr(), subject=subject, actor=os_actor())  # warm

        def stored() -> int:
            other = Database(rt.db.url)  # another connection: sees only what is committed
            try:
                with other.read() as s:
                    return int(s.scalar(select(func.count()).select_from(CertificateRecord)) or 0)
            finally:
                other.dispose()

        before = stored()
        spy = SyncSpy(monkeypatch, probe=stored)
        service.issue(profile_name="upc-auth", csr=fresh_csr(), subject=subject, actor=os_actor())
    # One sync per certificate, and only once the certificate was committed: the reservation and
    # journal commits before it are covered by that same sync of the WAL.
    assert spy.calls == [before + 1]
