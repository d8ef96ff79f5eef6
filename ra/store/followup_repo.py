"""Repository functions for follow-up orders: their authentication record, the signing challenges,
order passwords and failed attempts (tables of migration 0110)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ra.store.models import FollowUp, FollowUpChallenge, FollowUpFailure, OrderPassword

__all__ = [
    "ChallengeRec",
    "FollowUpRec",
    "OrderPasswordRec",
    "challenge_add",
    "challenge_by_nonce",
    "challenge_use",
    "failure_add",
    "failures_since",
    "followup_add",
    "followup_get",
    "followups_of_card",
    "order_password_add",
    "order_password_current",
    "order_password_use",
]


@dataclass(frozen=True, slots=True)
class FollowUpRec:
    order_id: int
    parent_card_id: int
    authenticated_by: str
    signer: str | None
    position: int
    identification_required: bool
    qc_ident_method: str | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ChallengeRec:
    id: int
    card_id: int
    account_id: int
    expires_at: dt.datetime
    used_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class OrderPasswordRec:
    id: int
    card_id: int
    password_hash: str
    requested_at: dt.datetime
    expires_at: dt.datetime


def followup_add(s: Session, **values: object) -> None:
    s.add(FollowUp(**values))
    s.flush()


def followup_get(s: Session, order_id: int) -> FollowUpRec | None:
    row = s.get(FollowUp, order_id)
    if row is None:
        return None
    return FollowUpRec(
        row.order_id,
        row.parent_card_id,
        row.authenticated_by,
        row.signer,
        row.position,
        row.identification_required,
        row.qc_ident_method,
        row.created_at,
    )


def followups_of_card(s: Session, card_id: int) -> list[int]:
    """The follow-up orders made from the card (order ids, oldest first)."""
    stmt = select(FollowUp.order_id).where(FollowUp.parent_card_id == card_id).order_by(FollowUp.order_id)
    return list(s.scalars(stmt))


def challenge_add(
    s: Session, *, card_id: int, account_id: int, nonce_sha256: str, at: dt.datetime, expires_at: dt.datetime
) -> int:
    row = FollowUpChallenge(
        card_id=card_id, account_id=account_id, nonce_sha256=nonce_sha256, created_at=at, expires_at=expires_at
    )
    s.add(row)
    s.flush()
    return row.id


def challenge_by_nonce(s: Session, nonce_sha256: str, *, lock: bool = False) -> ChallengeRec | None:
    stmt = select(FollowUpChallenge).where(FollowUpChallenge.nonce_sha256 == nonce_sha256)
    if lock:
        stmt = stmt.with_for_update()
    row = s.scalar(stmt)
    if row is None:
        return None
    return ChallengeRec(row.id, row.card_id, row.account_id, row.expires_at, row.used_at)


def challenge_use(s: Session, challenge_id: int, at: dt.datetime) -> bool:
    """Mark the challenge used; False if it was used already (a concurrent request won)."""
    result = s.execute(
        update(FollowUpChallenge)
        .where(FollowUpChallenge.id == challenge_id, FollowUpChallenge.used_at.is_(None))
        .values(used_at=at)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def order_password_add(
    s: Session, *, card_id: int, password_hash: str, at: dt.datetime, expires_at: dt.datetime, letter_ref: str
) -> int:
    """Store a new order password for the card; any earlier unused one is superseded."""
    s.execute(
        update(OrderPassword)
        .where(OrderPassword.card_id == card_id, OrderPassword.state == "issued")
        .values(state="superseded")
    )
    row = OrderPassword(
        card_id=card_id,
        password_hash=password_hash,
        state="issued",
        requested_at=at,
        expires_at=expires_at,
        used_at=None,
        letter_ref=letter_ref,
    )
    s.add(row)
    s.flush()
    return row.id


def order_password_current(s: Session, card_id: int) -> OrderPasswordRec | None:
    """The card's unused, not superseded order password (expired ones included: the caller checks)."""
    stmt = (
        select(OrderPassword)
        .where(OrderPassword.card_id == card_id, OrderPassword.state == "issued")
        .order_by(OrderPassword.id.desc())
        .limit(1)
    )
    row = s.scalar(stmt)
    if row is None:
        return None
    return OrderPasswordRec(row.id, row.card_id, row.password_hash, row.requested_at, row.expires_at)


def order_password_use(s: Session, password_id: int, at: dt.datetime) -> bool:
    result = s.execute(
        update(OrderPassword)
        .where(OrderPassword.id == password_id, OrderPassword.state == "issued")
        .values(state="used", used_at=at)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def failure_add(s: Session, *, card_id: int, method: str, at: dt.datetime) -> None:
    s.add(FollowUpFailure(card_id=card_id, method=method, at=at))
    s.flush()


def failures_since(s: Session, card_id: int, since: dt.datetime) -> list[dt.datetime]:
    """Times of the card's failed follow-up authentications after ``since``, oldest first."""
    stmt = (
        select(FollowUpFailure.at)
        .where(FollowUpFailure.card_id == card_id, FollowUpFailure.at > since)
        .order_by(FollowUpFailure.at)
    )
    return list(s.scalars(stmt))
