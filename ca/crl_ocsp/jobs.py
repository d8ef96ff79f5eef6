"""Scheduled status jobs under database leases (issue 3 point 5; DESIGN.md "Real components").

:class:`LeasedRunner` runs a job only while this instance holds the job's lease, so two
``qtsp serve`` instances (or a ``qtsp worker``) sharing one database never run the same job at
once.  The APScheduler glue lives in :mod:`qtsp.scheduler`; this module is framework-free.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from ca.issuance.service import Clock, system_clock
from ca.store import lease
from ca.store.db import Database, StoreError

__all__ = ["JobOutcome", "LeasedRunner", "instance_id"]

log = logging.getLogger(__name__)


def instance_id() -> str:
    """Who holds a lease: host, process and a random suffix (a restarted process is a new holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class JobOutcome:
    name: str
    state: str
    """``ran``, ``failed``, ``skipped`` (another instance holds the lease) or ``unavailable`` (no database)."""
    detail: str = ""


@dataclass
class LeasedRunner:
    db: Database
    holder: str = field(default_factory=instance_id)
    clock: Clock = system_clock
    ttl: dt.timedelta = dt.timedelta(minutes=10)
    """A lease not released (its holder died) frees itself after this long; jobs must finish sooner."""

    def run(self, name: str, job: Callable[[], object]) -> JobOutcome:
        try:
            with self.db.write() as s:
                lease.ensure_job(s, name)
                acquired = lease.acquire(s, name, self.holder, self.clock(), self.ttl)
        except (StoreError, OSError) as exc:
            log.warning("job %s: database unavailable: %s", name, str(exc).splitlines()[0] if str(exc) else exc)
            return JobOutcome(name, "unavailable", type(exc).__name__)
        if not acquired:
            return JobOutcome(name, "skipped")
        error: str | None = None
        detail = ""
        started = time.time()
        try:
            result = job()
            detail = "" if result is None else str(result)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            log.exception("job %s failed", name)
        finally:
            # The span logged below lies inside the lease: taken after the lease was acquired and
            # before it is released (another instance may start as soon as the release commits).
            finished = time.time()
            try:
                with self.db.write() as s:
                    lease.release(s, name, self.holder, self.clock(), error)
            except (StoreError, OSError):
                log.warning("job %s: lease not released (database unavailable); it expires by itself", name)
            # One line per run, with the holder and the run's wall-clock span (operators, and the
            # several-instances test, read these to see that no job ran twice at once).
            log.info(
                "job.run",
                extra={
                    "job": name,
                    "holder": self.holder,
                    "started": started,
                    "finished": finished,
                    "state": "failed" if error else "ran",
                },
            )
        return JobOutcome(name, "failed" if error else "ran", error or detail)
