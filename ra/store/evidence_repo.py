"""Lookups for auditors: which order and card stand behind a certificate."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.records import SlotRec
from ra.store.models import Card, SlotRecord
from ra.store.repository import _rec

__all__ = ["card_of_order", "slot_of_certificate"]


def slot_of_certificate(s: Session, issuer: str, serial_hex: str) -> SlotRec | None:
    row = s.scalars(select(SlotRecord).where(SlotRecord.issuer == issuer, SlotRecord.serial_hex == serial_hex)).first()
    return _rec(row, SlotRec) if row is not None else None


def card_of_order(s: Session, order_id: int) -> int | None:
    return s.scalar(select(Card.id).where(Card.order_id == order_id))
