"""Repository functions for shops (``ra_shop``, ``ra_shop_member``, ``ra_order.shop_id``) and the
secret-failure rows that drive the shop-code and transport-PIN rate limits (``ra_secret_failure``)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from ra.store.models import Account, Order, Organisation, SecretFailure, Shop, ShopMember

__all__ = [
    "ShopRec",
    "failure_add",
    "failures_since",
    "is_member",
    "lock_account",
    "member_add",
    "member_shops",
    "order_shop",
    "shop_add",
    "shop_by_digest",
    "shop_get",
    "shop_update",
    "shops_list",
]


@dataclass(frozen=True, slots=True)
class ShopRec:
    """A shop as stored (without its code digest, which never leaves the repository)."""

    id: int
    organisation_id: int
    organisation_name: str
    name: str
    products: tuple[str, ...]
    methods: tuple[str, ...]
    valid_until: dt.datetime | None
    enabled: bool
    created_at: dt.datetime
    created_by: str
    disabled_at: dt.datetime | None
    disabled_by: str | None
    members: int


def _shop(s: Session, row: Shop) -> ShopRec:
    org_name = s.scalar(select(Organisation.name).where(Organisation.id == row.organisation_id)) or ""
    members = s.scalar(select(func.count()).select_from(ShopMember).where(ShopMember.shop_id == row.id)) or 0
    return ShopRec(
        id=row.id,
        organisation_id=row.organisation_id,
        organisation_name=org_name,
        name=row.name,
        products=tuple(json.loads(row.products)),
        methods=tuple(json.loads(row.methods)),
        valid_until=row.valid_until,
        enabled=row.enabled,
        created_at=row.created_at,
        created_by=row.created_by,
        disabled_at=row.disabled_at,
        disabled_by=row.disabled_by,
        members=int(members),
    )


def shop_add(s: Session, *, products: tuple[str, ...], methods: tuple[str, ...], **values: Any) -> int:
    row = Shop(products=json.dumps(list(products)), methods=json.dumps(list(methods)), **values)
    s.add(row)
    s.flush()
    return row.id


def shop_get(s: Session, shop_id: int, *, lock: bool = False) -> ShopRec | None:
    """The shop; ``lock`` takes its row lock so an order and a disable serialise."""
    stmt = select(Shop).where(Shop.id == shop_id)
    if lock:
        stmt = stmt.with_for_update()
    row = s.scalar(stmt)
    return _shop(s, row) if row is not None else None


def shop_by_digest(s: Session, digest: str) -> ShopRec | None:
    row = s.scalar(select(Shop).where(Shop.code_digest == digest))
    return _shop(s, row) if row is not None else None


def shop_update(s: Session, shop_id: int, **values: Any) -> None:
    s.execute(update(Shop).where(Shop.id == shop_id).values(**values))


def shops_list(s: Session) -> list[ShopRec]:
    return [_shop(s, r) for r in s.scalars(select(Shop).order_by(Shop.id))]


def member_add(s: Session, account_id: int, shop_id: int, at: dt.datetime) -> bool:
    """Keep the shop in the account's navigation; False when it was there already."""
    if s.get(ShopMember, (account_id, shop_id)) is not None:
        return False
    s.add(ShopMember(account_id=account_id, shop_id=shop_id, entered_at=at))
    s.flush()
    return True


def is_member(s: Session, account_id: int, shop_id: int) -> bool:
    return s.get(ShopMember, (account_id, shop_id)) is not None


def member_shops(s: Session, account_id: int) -> list[ShopRec]:
    stmt = (
        select(Shop)
        .join(ShopMember, ShopMember.shop_id == Shop.id)
        .where(ShopMember.account_id == account_id)
        .order_by(Shop.id)
    )
    return [_shop(s, r) for r in s.scalars(stmt)]


def lock_account(s: Session, account_id: int) -> None:
    """Take the account's row lock (PostgreSQL): one account's concurrent attempts are counted in turn."""
    s.execute(select(Account.id).where(Account.id == account_id).with_for_update())


def order_shop(s: Session, order_id: int) -> int | None:
    return s.scalar(select(Order.shop_id).where(Order.id == order_id))


# ----------------------------------------------------------------------------------------------
# Failures of secrets (shop codes, transport-PIN reveal passwords)


def failure_add(
    s: Session,
    *,
    purpose: str,
    at: dt.datetime,
    account_id: int | None = None,
    card_id: int | None = None,
    client_address: str | None = None,
) -> None:
    s.add(SecretFailure(purpose=purpose, account_id=account_id, card_id=card_id, client_address=client_address, at=at))
    s.flush()


def failures_since(
    s: Session,
    purpose: str,
    since: dt.datetime,
    *,
    account_id: int | None = None,
    card_id: int | None = None,
    client_address: str | None = None,
) -> list[tuple[int | None, int | None, str | None, dt.datetime]]:
    """Failures of ``purpose`` after ``since`` for the account, the card or the address:
    (account, card, address, time), oldest first."""
    where = []
    if account_id is not None:
        where.append(SecretFailure.account_id == account_id)
    if card_id is not None:
        where.append(SecretFailure.card_id == card_id)
    if client_address is not None:
        where.append(SecretFailure.client_address == client_address)
    if not where:
        return []
    stmt = (
        select(SecretFailure.account_id, SecretFailure.card_id, SecretFailure.client_address, SecretFailure.at)
        .where(SecretFailure.purpose == purpose, SecretFailure.at > since, or_(*where))
        .order_by(SecretFailure.at, SecretFailure.id)
    )
    return [(r[0], r[1], r[2], r[3]) for r in s.execute(stmt)]
