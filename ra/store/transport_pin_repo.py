"""Repository functions for transport PINs (``ra_transport_pin``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ra.store.models import TransportPin

__all__ = ["TransportPinRec", "pin_add", "pin_get", "pin_update"]


@dataclass(frozen=True, slots=True)
class TransportPinRec:
    card_id: int
    key_id: str
    ciphertext: bytes | None
    digits: int
    created_at: dt.datetime
    created_by: str
    revealed_at: dt.datetime | None
    revealed_by: str | None
    destroyed_at: dt.datetime | None
    destroyed_reason: str | None


def pin_add(s: Session, **values: Any) -> None:
    s.add(TransportPin(**values))
    s.flush()


def pin_get(s: Session, card_id: int, *, lock: bool = False) -> TransportPinRec | None:
    stmt = select(TransportPin).where(TransportPin.card_id == card_id)
    if lock:
        stmt = stmt.with_for_update()
    row = s.scalar(stmt)
    if row is None:
        return None
    return TransportPinRec(
        card_id=row.card_id,
        key_id=row.key_id,
        ciphertext=row.ciphertext,
        digits=row.digits,
        created_at=row.created_at,
        created_by=row.created_by,
        revealed_at=row.revealed_at,
        revealed_by=row.revealed_by,
        destroyed_at=row.destroyed_at,
        destroyed_reason=row.destroyed_reason,
    )


def pin_update(s: Session, card_id: int, **values: Any) -> None:
    s.execute(update(TransportPin).where(TransportPin.card_id == card_id).values(**values))
