"""Reading the audit log, its head and its checkpoints; recording checkpoints and the audit signer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ca.audit.chain import AuditEntry
from ca.audit.verify import Checkpoint, StoredEntry
from ca.store.models import AuditCheckpoint, AuditEvent, AuditHead, AuditSigner, KeyReference

__all__ = [
    "SignerSnapshot",
    "add_checkpoint",
    "add_signer",
    "anchor_before",
    "checkpoints",
    "current_signer",
    "head",
    "iter_entries",
    "lock_head",
    "signers",
]


@dataclass(frozen=True, slots=True)
class SignerSnapshot:
    id: int
    key_ref_id: int
    key_label: str
    key_backend: str
    key_token: str
    key_id: str
    algorithm: str
    certificate_der: bytes
    key_sha256: str
    not_after: dt.datetime


def _entry(row: AuditEvent) -> StoredEntry:
    return StoredEntry(
        AuditEntry(
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            role=row.role,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            details=row.details,
            prev_hash=row.prev_hash,
        ),
        row.hash,
    )


def iter_entries(
    session: Session, *, since: dt.datetime | None = None, until: dt.datetime | None = None, batch: int = 2000
) -> Iterator[StoredEntry]:
    """Entries in storage order (by sequence number), streamed in batches."""
    stmt = select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=batch)
    if since is not None:
        first = session.scalar(select(func.min(AuditEvent.seq)).where(AuditEvent.at >= since))
        stmt = stmt.where(AuditEvent.seq >= (first if first is not None else 1 << 62))
    if until is not None:
        last = session.scalar(select(func.max(AuditEvent.seq)).where(AuditEvent.at <= until))
        stmt = stmt.where(AuditEvent.seq <= (last if last is not None else -1))
    for row in session.scalars(stmt):
        yield _entry(row)


def anchor_before(session: Session, first_seq: int) -> tuple[int, str] | None:
    """(seq, hash) of the entry before ``first_seq`` — where an exported range chains from."""
    if first_seq <= 1:
        return None
    row = session.get(AuditEvent, first_seq - 1)
    return (row.seq, row.hash) if row is not None else None


def head(session: Session) -> tuple[int, str]:
    row = session.get_one(AuditHead, 1)
    return row.seq, row.hash


def lock_head(session: Session) -> tuple[int, str]:
    """The head under the same lock appenders take (call inside a write transaction)."""
    if session.get_bind().dialect.name == "postgresql":
        seq, hash_ = session.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")).one()
        return int(seq), str(hash_)
    return head(session)


def checkpoints(session: Session, *, upto: int | None = None) -> list[Checkpoint]:
    stmt = (
        select(AuditCheckpoint, AuditSigner.key_sha256)
        .join(AuditSigner, AuditSigner.id == AuditCheckpoint.signer_id)
        .order_by(AuditCheckpoint.seq, AuditCheckpoint.id)
    )
    if upto is not None:
        stmt = stmt.where(AuditCheckpoint.seq <= upto)
    return [Checkpoint(c.seq, c.head_hash, c.at, c.signature, key) for c, key in session.execute(stmt).all()]


def add_checkpoint(
    session: Session, *, seq: int, head_hash: str, at: dt.datetime, signer_id: int, signature: bytes, created_by: str
) -> int:
    row = AuditCheckpoint(
        seq=seq, head_hash=head_hash, at=at, signer_id=signer_id, signature=signature, created_by=created_by
    )
    session.add(row)
    session.flush()
    return row.id


def signers(session: Session) -> list[SignerSnapshot]:
    rows = session.execute(
        select(AuditSigner, KeyReference)
        .join(KeyReference, KeyReference.id == AuditSigner.key_ref_id)
        .order_by(AuditSigner.not_after.desc(), AuditSigner.id.desc())
    ).all()
    return [
        SignerSnapshot(
            id=s.id,
            key_ref_id=k.id,
            key_label=k.label,
            key_backend=k.backend,
            key_token=k.token,
            key_id=k.key_id,
            algorithm=k.algorithm,
            certificate_der=s.certificate_der,
            key_sha256=s.key_sha256,
            not_after=s.not_after,
        )
        for s, k in rows
    ]


def current_signer(session: Session) -> SignerSnapshot | None:
    found = signers(session)
    return found[0] if found else None


def add_signer(
    session: Session,
    *,
    key_ref_id: int,
    certificate_der: bytes,
    key_sha256: str,
    not_after: dt.datetime,
    at: dt.datetime,
) -> int:
    row = AuditSigner(
        key_ref_id=key_ref_id,
        certificate_der=certificate_der,
        key_sha256=key_sha256,
        not_after=not_after,
        created_at=at,
    )
    session.add(row)
    session.flush()
    return row.id
