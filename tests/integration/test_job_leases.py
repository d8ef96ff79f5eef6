"""Job leases (issue 3 point 5): two processes on one PostgreSQL database never run the same job at
once; a lease whose holder died frees itself after its time to live; failures are recorded."""

from __future__ import annotations

import datetime as dt
import itertools
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from ca.crl_ocsp.jobs import LeasedRunner
from ca.store import lease
from ca.store.db import Database
from migrations import upgrade


def _contend(url: str, log_path: str, rounds: int, barrier_path: str) -> None:
    db = Database(url)
    runner = LeasedRunner(db, ttl=dt.timedelta(seconds=30))
    while not Path(barrier_path).exists():  # start together
        time.sleep(0.005)

    def job() -> None:
        start = time.monotonic_ns()
        time.sleep(0.02)
        end = time.monotonic_ns()
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {start} {end}\n")

    outcomes = [runner.run("crl-publish", job).state for _ in range(rounds)]
    with open(log_path + ".outcomes", "a", encoding="utf-8") as fh:
        fh.write(" ".join(outcomes) + "\n")
    db.dispose()


@pytest.mark.postgres
def test_two_processes_never_run_a_job_at_once_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    upgrade(pg_url)
    log_path = str(tmp_path / "runs.log")
    barrier = tmp_path / "go"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_contend, args=(pg_url, log_path, 60, str(barrier))) for _ in range(2)]
    for p in procs:
        p.start()
    time.sleep(1.0)
    barrier.touch()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    runs = sorted(
        (tuple(int(x) for x in line.split()) for line in Path(log_path).read_text().splitlines()),
        key=lambda r: r[1],
    )
    outcomes = Path(log_path + ".outcomes").read_text().split()
    assert len(runs) == outcomes.count("ran") >= 2
    assert "skipped" in outcomes  # they did contend
    # monotonic_ns is system-wide on Linux (CLOCK_MONOTONIC): intervals of both processes are comparable.
    for (_, _, end), (_, start, _) in itertools.pairwise(runs):
        assert end <= start, "two runs of the same job overlapped"
    db = Database(pg_url)
    with db.read() as s:
        (row,) = lease.leases(s)
    db.dispose()
    assert row.runs == len(runs) and row.holder is None


def test_expired_lease_is_taken_over_and_errors_are_recorded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    upgrade(url)
    db = Database(url)
    now = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
    with db.write() as s:
        lease.ensure_job(s, "ocsp-presign")
        assert lease.acquire(s, "ocsp-presign", "dead-instance", now, dt.timedelta(minutes=5))
    clock = [now + dt.timedelta(minutes=1)]
    runner = LeasedRunner(db, holder="me", clock=lambda: clock[0], ttl=dt.timedelta(minutes=5))
    assert runner.run("ocsp-presign", lambda: None).state == "skipped"
    clock[0] = now + dt.timedelta(minutes=6)

    def boom() -> None:
        raise RuntimeError("signing failed")

    outcome = runner.run("ocsp-presign", boom)
    assert outcome.state == "failed" and "signing failed" in outcome.detail
    with db.read() as s:
        (row,) = lease.leases(s)
    assert row.holder is None and row.last_error == "RuntimeError: signing failed" and row.runs == 2
    assert runner.run("ocsp-presign", lambda: 3).detail == "3"
    db.dispose()


def test_database_unavailable_is_reported_not_raised(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'missing' / 'q.db'}")
    assert LeasedRunner(db).run("hold-release", lambda: None).state == "unavailable"
