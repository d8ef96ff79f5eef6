"""Database leases for scheduled jobs: two instances never run the same job at once.

A lease is one ``job_lease`` row per job.  Taking it is a single conditional UPDATE (free, or
expired), so the database decides the race: exactly one contender sees ``rowcount == 1``.  An
instance that dies while holding a lease blocks the job only until the lease expires.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ca.store.models import JobLease

__all__ = ["LeaseSnapshot", "acquire", "ensure_job", "extend", "leases", "release"]


def ensure_job(session: Session, name: str) -> None:
    """Create the job's lease row if it does not exist yet (idempotent under races)."""
    if session.scalar(select(JobLease.name).where(JobLease.name == name)) is not None:
        return
    try:
        with session.begin_nested():
            session.execute(insert(JobLease).values(name=name, runs=0))
    except IntegrityError:
        pass  # another instance created it first


def acquire(session: Session, name: str, holder: str, now: dt.datetime, ttl: dt.timedelta) -> bool:
    """Take the lease if it is free or expired; True when this holder now owns it."""
    result = session.execute(
        update(JobLease)
        .where(JobLease.name == name, (JobLease.holder.is_(None)) | (JobLease.expires_at < now))
        .values(holder=holder, expires_at=now + ttl, last_started_at=now, runs=JobLease.runs + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def extend(session: Session, name: str, holder: str, until: dt.datetime) -> bool:
    result = session.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(expires_at=until)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def release(session: Session, name: str, holder: str, now: dt.datetime, error: str | None) -> bool:
    """Give the lease back and record the run's end (and its error, if any)."""
    result = session.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(holder=None, expires_at=None, last_finished_at=now, last_error=error)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


class LeaseSnapshot:
    __slots__ = ("expires_at", "holder", "last_error", "last_finished_at", "last_started_at", "name", "runs")

    def __init__(self, row: JobLease) -> None:
        self.name = row.name
        self.holder = row.holder
        self.expires_at = row.expires_at
        self.last_started_at = row.last_started_at
        self.last_finished_at = row.last_finished_at
        self.last_error = row.last_error
        self.runs = row.runs


def leases(session: Session) -> list[LeaseSnapshot]:
    return [LeaseSnapshot(r) for r in session.scalars(select(JobLease).order_by(JobLease.name))]
