"""Storage of online renewals: ``ra_renewal`` (one row per renewal order) and
``ra_renewal_document`` (its contract, declaration and general terms)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ra.store.models import Order, Renewal, RenewalDocument
from ra.store.repository import _rec

__all__ = [
    "RenewalDocRec",
    "RenewalRec",
    "document_put",
    "documents",
    "renewal_add",
    "renewal_get",
    "renewal_update",
    "renewals_due",
    "renewals_of_card",
]


@dataclass(frozen=True, slots=True)
class RenewalRec:
    order_id: int
    card_id: int
    issue_on: dt.date
    csrs: str
    state: str
    requested_at: dt.datetime
    requested_by: str
    settled_at: dt.datetime | None
    outcome: str | None


@dataclass(frozen=True, slots=True)
class RenewalDocRec:
    kind: str
    media_type: str
    size: int
    sha256: str
    signed_by: str
    signatory_id: int | None
    supplied_by: str
    received_at: dt.datetime
    purged_at: dt.datetime | None = None
    """When the bytes were deleted under the retention policy (the digest stays)."""


def renewal_add(s: Session, **values: Any) -> None:
    s.add(Renewal(**values))
    s.flush()


def renewal_get(s: Session, order_id: int) -> RenewalRec | None:
    row = s.get(Renewal, order_id)
    return _rec(row, RenewalRec) if row is not None else None


def renewal_update(s: Session, order_id: int, **values: Any) -> None:
    s.execute(update(Renewal).where(Renewal.order_id == order_id).values(**values))


def renewals_of_card(s: Session, card_id: int) -> list[tuple[RenewalRec, str]]:
    """Every renewal of the card with its order's state, oldest first."""
    stmt = (
        select(Renewal, Order.state)
        .join(Order, Order.id == Renewal.order_id)
        .where(Renewal.card_id == card_id)
        .order_by(Renewal.order_id)
    )
    return [(_rec(row, RenewalRec), state) for row, state in s.execute(stmt).all()]


def renewals_due(s: Session, today: dt.date, limit: int = 200) -> list[int]:
    """Approved renewals whose issuance date has come (order ids, oldest date first)."""
    stmt = (
        select(Renewal.order_id)
        .where(Renewal.state == "scheduled", Renewal.issue_on <= today)
        .order_by(Renewal.issue_on, Renewal.order_id)
        .limit(limit)
    )
    return list(s.scalars(stmt))


def document_put(s: Session, order_id: int, kind: str, **values: Any) -> None:
    """Store (or replace) the renewal order's document of ``kind``."""
    row = s.scalar(select(RenewalDocument).where(RenewalDocument.order_id == order_id, RenewalDocument.kind == kind))
    if row is None:
        s.add(RenewalDocument(order_id=order_id, kind=kind, **values))
    else:
        for key, value in values.items():
            setattr(row, key, value)
    s.flush()


def documents(s: Session, order_id: int) -> list[RenewalDocRec]:
    stmt = select(RenewalDocument).where(RenewalDocument.order_id == order_id).order_by(RenewalDocument.kind)
    return [_rec(r, RenewalDocRec) for r in s.scalars(stmt)]


def documents_due_purge(s: Session, received_before: dt.datetime, limit: int = 500) -> list[tuple[int, int, str, str]]:
    """(document id, order id, kind, digest) of renewal documents older than the retention period
    that still hold their bytes, oldest first."""
    rows = s.execute(
        select(RenewalDocument.id, RenewalDocument.order_id, RenewalDocument.kind, RenewalDocument.sha256)
        .where(RenewalDocument.received_at < received_before, RenewalDocument.purged_at.is_(None))
        .order_by(RenewalDocument.received_at)
        .limit(limit)
    ).all()
    return [(int(i), int(o), str(k), str(d)) for i, o, k, d in rows]


def document_purge(s: Session, document_id: int, at: dt.datetime) -> bool:
    """Delete the document's bytes (once); its digest, size and who supplied and signed it stay."""
    done = s.execute(
        update(RenewalDocument)
        .where(RenewalDocument.id == document_id, RenewalDocument.purged_at.is_(None))
        .values(ciphertext=None, purged_at=at)
    )
    return bool(getattr(done, "rowcount", 0))
