"""Rows of the SMS-TAN tables: mobile numbers, registration secrets, TANs and failed attempts.

The single-use guarantees are conditional updates (``... WHERE state = 'active' AND used_at IS
NULL``) whose row count tells the caller whether it won: under concurrency exactly one
transaction sees 1 (PostgreSQL re-checks the condition after the row lock is released; SQLite
has a single writer).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from ra.store.models import RegistrationSecret, RevocationRequest, SmsMobile, Tan, TanFailure

__all__ = [
    "MobileRow",
    "SecretRow",
    "TanRow",
    "active_secret",
    "active_tans",
    "consume_secret",
    "consume_tan",
    "count_secrets",
    "count_tans",
    "failure_add",
    "failures",
    "mobile_get",
    "mobile_put",
    "secret_add",
    "secret_wrong",
    "secrets_supersede",
    "tan_add",
    "tan_get",
    "tan_update",
    "tan_wrong",
]


@dataclass(frozen=True, slots=True)
class MobileRow:
    order_id: int
    key_id: str
    number: bytes
    hint: str
    source: str
    set_at: dt.datetime
    set_by: str


@dataclass(frozen=True, slots=True)
class SecretRow:
    id: int
    card_id: int
    secret_hash: str
    state: str
    attempts: int
    requested_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None
    outbox_ref: str


@dataclass(frozen=True, slots=True)
class TanRow:
    id: int
    card_id: int
    purpose: str
    salt: str
    digest: str
    state: str
    attempts: int
    created_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None
    outbox_ref: str


def _mobile(m: SmsMobile) -> MobileRow:
    return MobileRow(m.order_id, m.key_id, m.number, m.hint, m.source, m.set_at, m.set_by)


def _secret(r: RegistrationSecret) -> SecretRow:
    return SecretRow(
        r.id, r.card_id, r.secret_hash, r.state, r.attempts, r.requested_at, r.expires_at, r.used_at, r.outbox_ref
    )


def _tan(r: Tan) -> TanRow:
    return TanRow(
        r.id,
        r.card_id,
        r.purpose,
        r.salt,
        r.digest,
        r.state,
        r.attempts,
        r.created_at,
        r.expires_at,
        r.used_at,
        r.outbox_ref,
    )


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


# -- mobile numbers ----------------------------------------------------------------------------


def mobile_get(s: Session, order_id: int) -> MobileRow | None:
    row = s.get(SmsMobile, order_id)
    return _mobile(row) if row is not None else None


def mobile_put(s: Session, order_id: int, **values: Any) -> None:
    row = s.get(SmsMobile, order_id)
    if row is None:
        s.add(SmsMobile(order_id=order_id, **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)
    s.flush()


# -- registration secrets ----------------------------------------------------------------------


def secret_add(s: Session, **values: Any) -> int:
    row = RegistrationSecret(**values)
    s.add(row)
    s.flush()
    return row.id


def active_secret(s: Session, card_id: int) -> SecretRow | None:
    stmt = (
        select(RegistrationSecret)
        .where(RegistrationSecret.card_id == card_id, RegistrationSecret.state == "active")
        .order_by(RegistrationSecret.id.desc())
    )
    row = s.scalars(stmt).first()
    return _secret(row) if row is not None else None


def secrets_supersede(s: Session, card_id: int) -> list[SecretRow]:
    """Mark the card's active secrets superseded; return them as they were."""
    stmt = select(RegistrationSecret).where(RegistrationSecret.card_id == card_id, RegistrationSecret.state == "active")
    rows = [_secret(r) for r in s.scalars(stmt)]
    if rows:
        s.execute(
            update(RegistrationSecret)
            .where(RegistrationSecret.id.in_([r.id for r in rows]), RegistrationSecret.state == "active")
            .values(state="superseded")
        )
    return rows


def count_secrets(s: Session, card_id: int, since: dt.datetime) -> list[dt.datetime]:
    """Request times of the card's secrets since ``since``, oldest first."""
    stmt = (
        select(RegistrationSecret.requested_at)
        .where(RegistrationSecret.card_id == card_id, RegistrationSecret.requested_at > since)
        .order_by(RegistrationSecret.requested_at)
    )
    return list(s.scalars(stmt))


def consume_secret(s: Session, secret_id: int, now: dt.datetime) -> bool:
    """Use the secret once: True only for the one caller whose update changed the row."""
    result = s.execute(
        update(RegistrationSecret)
        .where(
            RegistrationSecret.id == secret_id,
            RegistrationSecret.state == "active",
            RegistrationSecret.used_at.is_(None),
            RegistrationSecret.expires_at > now,
        )
        .values(state="used", used_at=now)
    )
    return _rowcount(result) == 1


def secret_wrong(s: Session, secret_id: int, max_attempts: int) -> int:
    """Count a wrong entry; the secret dies at ``max_attempts``.  Returns the attempts so far."""
    s.execute(
        update(RegistrationSecret)
        .where(RegistrationSecret.id == secret_id)
        .values(attempts=RegistrationSecret.attempts + 1)
    )
    attempts = int(s.scalar(select(RegistrationSecret.attempts).where(RegistrationSecret.id == secret_id)) or 0)
    if attempts >= max_attempts:
        s.execute(
            update(RegistrationSecret)
            .where(RegistrationSecret.id == secret_id, RegistrationSecret.state == "active")
            .values(state="dead")
        )
    return attempts


# -- TANs --------------------------------------------------------------------------------------


def tan_add(s: Session, **values: Any) -> int:
    row = Tan(**values)
    s.add(row)
    s.flush()
    return row.id


def tan_get(s: Session, tan_id: int) -> TanRow | None:
    row = s.get(Tan, tan_id)
    return _tan(row) if row is not None else None


def tan_update(s: Session, tan_id: int, **values: Any) -> None:
    s.execute(update(Tan).where(Tan.id == tan_id).values(**values))


def active_tans(s: Session, card_id: int, purpose: str | None = None) -> list[TanRow]:
    """The card's TANs still ``active`` (possibly expired), newest first."""
    stmt = select(Tan).where(Tan.card_id == card_id, Tan.state == "active").order_by(Tan.id.desc())
    if purpose is not None:
        stmt = stmt.where(Tan.purpose == purpose)
    return [_tan(r) for r in s.scalars(stmt)]


def count_tans(
    s: Session, since: dt.datetime, *, card_id: int | None = None, client_address: str | None = None
) -> list[dt.datetime]:
    """Creation times of TANs since ``since`` for the card or from the address, oldest first."""
    stmt = select(Tan.created_at).where(Tan.created_at > since).order_by(Tan.created_at)
    if card_id is not None:
        stmt = stmt.where(Tan.card_id == card_id)
    if client_address is not None:
        stmt = stmt.where(Tan.client_address == client_address)
    return list(s.scalars(stmt))


def consume_tan(s: Session, tan_id: int, now: dt.datetime) -> bool:
    """Use the TAN once: True only for the one caller whose update changed the row."""
    result = s.execute(
        update(Tan)
        .where(Tan.id == tan_id, Tan.state == "active", Tan.used_at.is_(None), Tan.expires_at > now)
        .values(state="used", used_at=now)
    )
    return _rowcount(result) == 1


def tan_wrong(s: Session, tan_id: int, max_attempts: int) -> int:
    """Count a wrong entry; the TAN dies at ``max_attempts``.  Returns the attempts so far."""
    s.execute(update(Tan).where(Tan.id == tan_id).values(attempts=Tan.attempts + 1))
    attempts = int(s.scalar(select(Tan.attempts).where(Tan.id == tan_id)) or 0)
    if attempts >= max_attempts:
        s.execute(update(Tan).where(Tan.id == tan_id, Tan.state == "active").values(state="dead"))
    return attempts


# -- failed attempts ---------------------------------------------------------------------------


def failure_add(s: Session, *, card_id: int | None, kind: str, at: dt.datetime, client_address: str | None) -> None:
    s.add(TanFailure(card_id=card_id, kind=kind, at=at, client_address=client_address))
    s.flush()


def failures(
    s: Session, kind: str, since: dt.datetime, *, card_id: int | None = None, client_address: str | None = None
) -> list[dt.datetime]:
    """Times of failures of ``kind`` since ``since`` for the card or from the address, oldest first."""
    if card_id is None and client_address is None:
        return []
    stmt = select(TanFailure.at).where(TanFailure.kind == kind, TanFailure.at > since).order_by(TanFailure.at)
    if card_id is not None:
        stmt = stmt.where(TanFailure.card_id == card_id)
    if client_address is not None:
        stmt = stmt.where(TanFailure.client_address == client_address)
    return list(s.scalars(stmt))


def unknown_card_failures(s: Session, card_ref: str, since: dt.datetime) -> list[dt.datetime]:
    """Receipt times of refused revocations by TAN since ``since`` for a card id that does not
    exist (recorded with ``card_ref`` only), oldest first: the per-card limit of an unknown card."""
    stmt = (
        select(RevocationRequest.received_at)
        .where(
            RevocationRequest.card_id.is_(None),
            RevocationRequest.card_ref == card_ref,
            RevocationRequest.authenticated_by == "sms-tan",
            RevocationRequest.auth_failed.is_(True),
            RevocationRequest.received_at > since,
        )
        .order_by(RevocationRequest.received_at)
    )
    return list(s.scalars(stmt))
