"""Repository functions for email confirmations (``ra_email_confirmation``, ra/email_confirmation.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ra.store.models import EmailConfirmation

__all__ = [
    "ConfirmationRec",
    "add",
    "by_token",
    "confirmed_at",
    "mark_confirmed",
    "pending",
    "sent_since",
    "supersede",
]


@dataclass(frozen=True, slots=True)
class ConfirmationRec:
    id: int
    order_id: int | None
    account_id: int | None
    email: str
    state: str
    expires_at: dt.datetime
    outbox_ref: str


def _rec(row: EmailConfirmation) -> ConfirmationRec:
    return ConfirmationRec(row.id, row.order_id, row.account_id, row.email, row.state, row.expires_at, row.outbox_ref)


def add(
    s: Session,
    *,
    order_id: int | None,
    account_id: int | None = None,
    email: str,
    token_sha256: str,
    at: dt.datetime,
    expires_at: dt.datetime,
    requested_by: str,
    outbox_ref: str,
) -> int:
    row = EmailConfirmation(
        order_id=order_id,
        account_id=account_id,
        email=email,
        token_sha256=token_sha256,
        state="pending",
        created_at=at,
        expires_at=expires_at,
        confirmed_at=None,
        confirmed_from=None,
        requested_by=requested_by,
        outbox_ref=outbox_ref,
    )
    s.add(row)
    s.flush()
    return int(row.id)


def _of(order_id: int | None, account_id: int | None) -> Any:
    if (order_id is None) == (account_id is None):
        raise ValueError("name an order or an account")
    if order_id is not None:
        return EmailConfirmation.order_id == order_id
    return EmailConfirmation.account_id == account_id


def pending(s: Session, order_id: int | None = None, *, account_id: int | None = None) -> list[ConfirmationRec]:
    """The order's (or account's) pending confirmations, newest first."""
    stmt = select(EmailConfirmation).where(_of(order_id, account_id), EmailConfirmation.state == "pending")
    return [_rec(r) for r in s.scalars(stmt.order_by(EmailConfirmation.id.desc()))]


def supersede(s: Session, ids: list[int]) -> None:
    if ids:
        s.execute(update(EmailConfirmation).where(EmailConfirmation.id.in_(ids)).values(state="superseded"))


def confirmed_at(s: Session, order_id: int, email: str) -> dt.datetime | None:
    """When ``email`` (exactly) was confirmed for the order, or None."""
    return s.scalar(
        select(func.max(EmailConfirmation.confirmed_at)).where(
            EmailConfirmation.order_id == order_id,
            EmailConfirmation.email == email,
            EmailConfirmation.state == "confirmed",
        )
    )


def by_token(s: Session, token_sha256: str) -> ConfirmationRec | None:
    """The confirmation with this token digest, its row locked for the transaction."""
    row = s.scalars(
        select(EmailConfirmation).where(EmailConfirmation.token_sha256 == token_sha256).with_for_update()
    ).first()
    return _rec(row) if row is not None else None


def mark_confirmed(s: Session, confirmation_id: int, at: dt.datetime, client_address: str | None) -> bool:
    """Pending -> confirmed; False when it was not pending any more (used concurrently)."""
    result = s.execute(
        update(EmailConfirmation)
        .where(EmailConfirmation.id == confirmation_id, EmailConfirmation.state == "pending")
        .values(state="confirmed", confirmed_at=at, confirmed_from=client_address)
    )
    return int(getattr(result, "rowcount", 0)) == 1


def sent_since(
    s: Session, order_id: int | None, since: dt.datetime, *, account_id: int | None = None
) -> list[dt.datetime]:
    """When the order's (or account's) confirmation mails since ``since`` were made, oldest first."""
    stmt = select(EmailConfirmation.created_at).where(_of(order_id, account_id), EmailConfirmation.created_at > since)
    return list(s.scalars(stmt.order_by(EmailConfirmation.created_at)))
