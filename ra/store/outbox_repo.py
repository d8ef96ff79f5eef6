"""Rows of ``ra_outbox``: enqueue, claim for a gateway, record the outcome."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from ra.store.models import OutboxMessage

__all__ = ["OutboxRow", "add", "by_reference", "claim_due", "counts", "update_row"]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    reference: str
    channel: str
    purpose: str
    account_id: int | None
    card_id: int | None
    recipient_hint: str
    key_id: str
    payload: bytes | None
    state: str
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None
    gateway_ref: str | None
    last_error: str | None


def _row(m: OutboxMessage) -> OutboxRow:
    return OutboxRow(
        id=m.id,
        reference=m.reference,
        channel=m.channel,
        purpose=m.purpose,
        account_id=m.account_id,
        card_id=m.card_id,
        recipient_hint=m.recipient_hint,
        key_id=m.key_id,
        payload=m.payload,
        state=m.state,
        attempts=m.attempts,
        created_at=m.created_at,
        next_attempt_at=m.next_attempt_at,
        sent_at=m.sent_at,
        gateway_ref=m.gateway_ref,
        last_error=m.last_error,
    )


def add(s: Session, **values: Any) -> int:
    row = OutboxMessage(**values)
    s.add(row)
    s.flush()
    return row.id


def by_reference(s: Session, reference: str) -> OutboxRow | None:
    row = s.scalars(select(OutboxMessage).where(OutboxMessage.reference == reference)).first()
    return _row(row) if row is not None else None


def claim_due(s: Session, now: dt.datetime, stale_before: dt.datetime, limit: int) -> list[OutboxRow]:
    """Pending rows whose time has come, and rows left ``sending`` since before ``stale_before`` (a
    process that ended between claim and outcome): marked ``sending`` in this transaction.  Rows
    locked by another dispatcher are skipped (PostgreSQL ``SKIP LOCKED``; SQLite has one writer)."""
    stmt = (
        select(OutboxMessage)
        .where(
            or_(
                (OutboxMessage.state == "pending") & (OutboxMessage.next_attempt_at <= now),
                (OutboxMessage.state == "sending") & (OutboxMessage.claimed_at < stale_before),
            )
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(s.scalars(stmt))
    for row in rows:
        row.state, row.claimed_at, row.attempts = "sending", now, row.attempts + 1
    s.flush()
    return [_row(r) for r in rows]


def update_row(s: Session, message_id: int, **values: Any) -> None:
    s.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values))


def counts(s: Session) -> dict[str, int]:
    return {
        state: n
        for state, n in s.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all()
    }
