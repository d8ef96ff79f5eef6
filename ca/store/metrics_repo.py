"""Figures the metrics endpoint reads from the database at scrape time.

Read from the shared database, they are the same whichever instance or worker is scraped, and
they survive restarts: CRL age, revocation-to-publication delay, job leases, certificates by
status, audit chain length.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ca.store.models import AuditHead, CertificateAuthority, CertificateRecord, CRLRecord, CRLState, JobLease

__all__ = ["StatusFigures", "ping", "status_figures"]


@dataclass(frozen=True, slots=True)
class StatusFigures:
    crl_this_update: dict[str, dt.datetime]
    crl_number: dict[str, int]
    crl_pending_since: dict[str, dt.datetime]
    certificates: dict[tuple[str, str], int]
    """(issuer, status) → count."""
    leases: dict[str, tuple[dt.datetime | None, dt.datetime | None, bool, int]]
    """job → (last started, last finished, last run failed, runs)."""
    audit_entries: int


def ping(session: Session) -> None:
    session.execute(text("SELECT 1"))


def status_figures(session: Session) -> StatusFigures:
    names = dict(session.execute(select(CertificateAuthority.id, CertificateAuthority.name)).all())
    latest = session.execute(
        select(CRLRecord.issuer_id, func.max(CRLRecord.this_update), func.max(CRLRecord.crl_number)).group_by(
            CRLRecord.issuer_id
        )
    ).all()
    pending = session.execute(
        select(CRLState.issuer_id, CRLState.pending_since).where(CRLState.pending_since.is_not(None))
    )
    certs = session.execute(
        select(CertificateRecord.issuer_id, CertificateRecord.status, func.count()).group_by(
            CertificateRecord.issuer_id, CertificateRecord.status
        )
    ).all()
    leases = {
        row.name: (row.last_started_at, row.last_finished_at, row.last_error is not None, row.runs)
        for row in session.scalars(select(JobLease))
    }
    head = session.get(AuditHead, 1)
    from ca.store.models import UTCDateTime

    conv = UTCDateTime()
    dialect = session.get_bind().dialect

    def utc(value: object) -> dt.datetime:
        # Aggregates (max) come back without the column type's conversion on some dialects.
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        assert isinstance(value, dt.datetime)
        out = conv.process_result_value(value, dialect)
        assert out is not None
        return out

    return StatusFigures(
        crl_this_update={names[i]: utc(t) for i, t, _ in latest},
        crl_number={names[i]: int(n) for i, _, n in latest},
        crl_pending_since={names[i]: p for i, p in pending.all() if p is not None},
        certificates={(names[i], str(st)): int(n) for i, st, n in certs},
        leases=leases,
        audit_entries=int(head.seq) if head is not None else 0,
    )
