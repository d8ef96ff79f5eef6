"""Repository functions for the RA's tables.  Services call them with a session from
:class:`ca.store.db.Database` (inside one transaction per operation) and get frozen records back.

Audit events are appended through :func:`ca.store.repository.append_audit` by the services, in
the same transaction as the change they record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from ca.store.models import AuditEvent
from ra.evidence import normalise_name
from ra.records import (
    AccountRec,
    CardRec,
    ChamberRec,
    CopyRec,
    IdentityRec,
    OrderRec,
    OrganisationRec,
    OzbRec,
    PersonRec,
    SignatoryRec,
    SlotRec,
)
from ra.store.models import (
    Account,
    AccountRole,
    ApiSession,
    Approval,
    Card,
    ChamberRecord,
    DNBinding,
    EmailConfirmation,
    EvidenceCopy,
    IdentityRecord,
    LoginFailure,
    Order,
    Organisation,
    OutboxMessage,
    OzbRecord,
    Person,
    RegistrationAttempt,
    RevocationPassword,
    RevocationRequest,
    Signatory,
    SlotRecord,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

__all__ = [
    "AuditRow",
    "RAFigures",
    "account_add",
    "account_by_email",
    "account_claim_totp_step",
    "account_confirm",
    "account_get",
    "account_set_roles",
    "account_update",
    "accounts_list",
    "approval_add",
    "approvals",
    "approvals_clear",
    "audit_events",
    "card_add",
    "card_by_order",
    "card_get",
    "card_update",
    "cards_due_activation",
    "cards_due_expiry",
    "cards_list",
    "chamber_get",
    "chamber_put",
    "copy_get",
    "copy_put",
    "dn_bind",
    "dn_binding",
    "identity_get",
    "identity_put",
    "login_failure_add",
    "login_failures",
    "login_failures_purge",
    "order_add",
    "order_get",
    "order_update",
    "orders_list",
    "org_add",
    "org_by_identifier",
    "org_get",
    "ozb_get",
    "ozb_put",
    "person_find",
    "person_get",
    "person_get_or_create",
    "person_key",
    "ra_figures",
    "registration_attempt_add",
    "registration_attempts",
    "registration_attempts_purge",
    "revocation_failures",
    "revocation_password_get",
    "revocation_password_put",
    "revocation_request_add",
    "revocation_request_update",
    "revocation_requests",
    "revocation_requests_pending",
    "serialise_limit",
    "session_add",
    "session_get",
    "slot_add",
    "slot_update",
    "slots",
    "slots_issuing_before",
    "unconfirmed_account_delete",
    "unconfirmed_accounts_due",
]


def _rec(row: object, cls: type[T]) -> T:
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


# ----------------------------------------------------------------------------------------------
# Persons and accounts


def person_key(given_names: str, surname: str, date_of_birth: dt.date) -> str:
    text = f"{normalise_name(given_names)}\x1f{normalise_name(surname)}\x1f{date_of_birth.isoformat()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def person_find(s: Session, given_names: str, surname: str, date_of_birth: dt.date) -> PersonRec | None:
    row = s.scalar(select(Person).where(Person.match_key == person_key(given_names, surname, date_of_birth)))
    return _rec(row, PersonRec) if row else None


def person_get_or_create(
    s: Session, given_names: str, surname: str, date_of_birth: dt.date, at: dt.datetime
) -> PersonRec:
    found = person_find(s, given_names, surname, date_of_birth)
    if found:
        return found
    row = Person(
        given_names=given_names,
        surname=surname,
        date_of_birth=date_of_birth,
        match_key=person_key(given_names, surname, date_of_birth),
        created_at=at,
    )
    s.add(row)
    s.flush()
    return _rec(row, PersonRec)


def person_get(s: Session, person_id: int) -> PersonRec:
    return _rec(s.get_one(Person, person_id), PersonRec)


def _account(s: Session, row: Account) -> AccountRec:
    roles = tuple(sorted(s.scalars(select(AccountRole.role).where(AccountRole.account_id == row.id))))
    return AccountRec(
        id=row.id,
        email=row.email,
        kind=row.kind,
        password_hash=row.password_hash,
        person_id=row.person_id,
        totp_secret=row.totp_secret,
        totp_last_step=row.totp_last_step,
        disabled=row.disabled,
        roles=roles,
        confirmed_at=row.confirmed_at,
    )


def account_add(
    s: Session,
    *,
    email: str,
    kind: str,
    password_hash: str,
    person_id: int | None,
    totp_secret: bytes | None,
    roles: Iterable[str],
    at: dt.datetime,
    created_by: str,
    confirmed_at: dt.datetime | None = None,
) -> int:
    row = Account(
        email=email,
        kind=kind,
        password_hash=password_hash,
        person_id=person_id,
        totp_secret=totp_secret,
        totp_last_step=None,
        disabled=False,
        created_at=at,
        created_by=created_by,
        confirmed_at=confirmed_at,
    )
    s.add(row)
    s.flush()
    for role in sorted(set(roles)):
        s.add(AccountRole(account_id=row.id, role=role))
    s.flush()
    return row.id


def account_by_email(s: Session, email: str) -> AccountRec | None:
    row = s.scalar(select(Account).where(Account.email == email))
    return _account(s, row) if row else None


def account_get(s: Session, account_id: int) -> AccountRec | None:
    row = s.get(Account, account_id)
    return _account(s, row) if row else None


def account_of_person(s: Session, kind: str, person_id: int) -> AccountRec | None:
    row = s.scalar(select(Account).where(Account.kind == kind, Account.person_id == person_id))
    return _account(s, row) if row else None


def accounts_list(s: Session) -> list[AccountRec]:
    return [_account(s, row) for row in s.scalars(select(Account).order_by(Account.id))]


def account_update(s: Session, account_id: int, **values: Any) -> None:
    s.execute(update(Account).where(Account.id == account_id).values(**values))


def account_set_roles(s: Session, account_id: int, roles: Iterable[str]) -> None:
    s.execute(delete(AccountRole).where(AccountRole.account_id == account_id))
    for role in sorted(set(roles)):
        s.add(AccountRole(account_id=account_id, role=role))
    s.flush()


def session_add(
    s: Session, *, token_sha256: str, account_id: int, second_factor: bool, at: dt.datetime, expires_at: dt.datetime
) -> None:
    s.add(
        ApiSession(
            token_sha256=token_sha256,
            account_id=account_id,
            second_factor=second_factor,
            created_at=at,
            expires_at=expires_at,
        )
    )
    s.flush()


def session_get(s: Session, token_sha256: str) -> tuple[int, bool, dt.datetime] | None:
    row = s.get(ApiSession, token_sha256)
    return (row.account_id, row.second_factor, row.expires_at) if row else None


# ----------------------------------------------------------------------------------------------
# Organisations


def org_add(
    s: Session,
    *,
    name: str,
    legal_form: str,
    country: str,
    register_court: str | None,
    register_number: str | None,
    vat_number: str | None,
    identifier: str,
    signatories: Sequence[tuple[str, str, dt.date, str]],
    at: dt.datetime,
    created_by: str,
) -> int:
    row = Organisation(
        name=name,
        legal_form=legal_form,
        country=country,
        register_court=register_court,
        register_number=register_number,
        vat_number=vat_number,
        identifier=identifier,
        created_at=at,
        created_by=created_by,
    )
    s.add(row)
    s.flush()
    for given, surname, dob, role in signatories:
        s.add(Signatory(organisation_id=row.id, given_names=given, surname=surname, date_of_birth=dob, role=role))
    s.flush()
    return row.id


def org_get(s: Session, org_id: int) -> OrganisationRec | None:
    row = s.get(Organisation, org_id)
    if row is None:
        return None
    sigs = tuple(
        _rec(x, SignatoryRec)
        for x in s.scalars(select(Signatory).where(Signatory.organisation_id == org_id).order_by(Signatory.id))
    )
    return OrganisationRec(
        id=row.id,
        name=row.name,
        legal_form=row.legal_form,
        country=row.country,
        register_court=row.register_court,
        register_number=row.register_number,
        vat_number=row.vat_number,
        identifier=row.identifier,
        signatories=sigs,
    )


def org_by_identifier(s: Session, identifier: str) -> int | None:
    return s.scalar(select(Organisation.id).where(Organisation.identifier == identifier))


# ----------------------------------------------------------------------------------------------
# Orders and their evidence


def order_add(s: Session, **values: Any) -> int:
    row = Order(**values)
    s.add(row)
    s.flush()
    return row.id


def order_get(s: Session, order_id: int, *, lock: bool = False) -> OrderRec | None:
    """The order; ``lock`` takes its row lock (PostgreSQL) so concurrent transitions serialise."""
    stmt = select(Order).where(Order.id == order_id)
    if lock:
        stmt = stmt.with_for_update()
    row = s.scalar(stmt)
    return _rec(row, OrderRec) if row else None


def order_update(s: Session, order_id: int, **values: Any) -> None:
    s.execute(update(Order).where(Order.id == order_id).values(**values))


def orders_list(s: Session, *, account_id: int | None = None) -> list[OrderRec]:
    stmt = select(Order).order_by(Order.id)
    if account_id is not None:
        stmt = stmt.where(Order.applicant_account_id == account_id)
    return [_rec(r, OrderRec) for r in s.scalars(stmt)]


def approvals(s: Session, order_id: int) -> list[str]:
    return list(s.scalars(select(Approval.officer).where(Approval.order_id == order_id).order_by(Approval.id)))


def approval_add(s: Session, order_id: int, officer: str, at: dt.datetime) -> None:
    s.add(Approval(order_id=order_id, officer=officer, at=at))
    s.flush()


def approvals_clear(s: Session, order_id: int) -> int:
    return int(s.execute(delete(Approval).where(Approval.order_id == order_id)).rowcount)  # type: ignore[attr-defined]


def identity_put(s: Session, order_id: int, **values: Any) -> None:
    s.execute(delete(IdentityRecord).where(IdentityRecord.order_id == order_id))
    s.add(IdentityRecord(order_id=order_id, **values))
    s.flush()


def identity_get(s: Session, order_id: int) -> IdentityRec | None:
    row = s.scalar(select(IdentityRecord).where(IdentityRecord.order_id == order_id))
    return _rec(row, IdentityRec) if row else None


def copy_put(s: Session, order_id: int, **values: Any) -> None:
    s.execute(delete(EvidenceCopy).where(EvidenceCopy.order_id == order_id))
    s.add(EvidenceCopy(order_id=order_id, **values))
    s.flush()


def copy_get(s: Session, order_id: int) -> tuple[CopyRec, bytes | None] | None:
    """The copy's record and ciphertext (None once purged under the retention policy)."""
    row = s.scalar(select(EvidenceCopy).where(EvidenceCopy.order_id == order_id))
    return (_rec(row, CopyRec), row.ciphertext) if row else None


def copies_due_purge(s: Session, uploaded_before: dt.datetime, limit: int = 500) -> list[tuple[int, str]]:
    """(order id, digest) of copies older than the retention period that still hold their bytes."""
    rows = s.execute(
        select(EvidenceCopy.order_id, EvidenceCopy.sha256)
        .where(EvidenceCopy.uploaded_at < uploaded_before, EvidenceCopy.purged_at.is_(None))
        .order_by(EvidenceCopy.uploaded_at)
        .limit(limit)
    ).all()
    return [(int(o), str(d)) for o, d in rows]


def copy_purge(s: Session, order_id: int, at: dt.datetime) -> bool:
    done = s.execute(
        update(EvidenceCopy)
        .where(EvidenceCopy.order_id == order_id, EvidenceCopy.purged_at.is_(None))
        .values(ciphertext=None, purged_at=at)
    )
    return bool(getattr(done, "rowcount", 0))


def ozb_put(s: Session, order_id: int, **values: Any) -> None:
    s.execute(delete(OzbRecord).where(OzbRecord.order_id == order_id))
    s.add(OzbRecord(order_id=order_id, **values))
    s.flush()


def ozb_get(s: Session, order_id: int) -> OzbRec | None:
    row = s.scalar(select(OzbRecord).where(OzbRecord.order_id == order_id))
    return _rec(row, OzbRec) if row else None


def chamber_put(s: Session, order_id: int, **values: Any) -> None:
    s.execute(delete(ChamberRecord).where(ChamberRecord.order_id == order_id))
    s.add(ChamberRecord(order_id=order_id, **values))
    s.flush()


def chamber_get(s: Session, order_id: int) -> ChamberRec | None:
    row = s.scalar(select(ChamberRecord).where(ChamberRecord.order_id == order_id))
    return _rec(row, ChamberRec) if row else None


# ----------------------------------------------------------------------------------------------
# Slots, cards, DN bindings


def slot_add(s: Session, **values: Any) -> int:
    row = SlotRecord(**values)
    s.add(row)
    s.flush()
    return row.id


def slots(s: Session, order_id: int, *, lock: bool = False) -> list[SlotRec]:
    stmt = select(SlotRecord).where(SlotRecord.order_id == order_id).order_by(SlotRecord.id)
    if lock:
        stmt = stmt.with_for_update()
    return [_rec(r, SlotRec) for r in s.scalars(stmt)]


def slots_issuing_before(s: Session, before: dt.datetime) -> list[SlotRec]:
    """Slots marked ``issuing`` before ``before`` (oldest first)."""
    stmt = (
        select(SlotRecord)
        .where(SlotRecord.state == "issuing", SlotRecord.issuing_since < before)
        .order_by(SlotRecord.issuing_since, SlotRecord.id)
    )
    return [_rec(r, SlotRec) for r in s.scalars(stmt)]


def slot_update(s: Session, slot_id: int, **values: Any) -> None:
    s.execute(update(SlotRecord).where(SlotRecord.id == slot_id).values(**values))


def card_add(s: Session, **values: Any) -> int:
    row = Card(**values)
    s.add(row)
    s.flush()
    return row.id


def card_get(s: Session, card_id: int, *, lock: bool = False) -> CardRec | None:
    stmt = select(Card).where(Card.id == card_id)
    if lock:
        stmt = stmt.with_for_update()
    row = s.scalar(stmt)
    return _rec(row, CardRec) if row else None


def card_by_order(s: Session, order_id: int) -> CardRec | None:
    row = s.scalar(select(Card).where(Card.order_id == order_id))
    return _rec(row, CardRec) if row else None


def card_update(s: Session, card_id: int, **values: Any) -> None:
    s.execute(update(Card).where(Card.id == card_id).values(**values))


def cards_list(s: Session, *, account_id: int | None = None) -> list[CardRec]:
    stmt = select(Card).order_by(Card.id)
    if account_id is not None:
        stmt = stmt.where(Card.holder_account_id == account_id)
    return [_rec(r, CardRec) for r in s.scalars(stmt)]


def cards_due_activation(s: Session, shipped_before: dt.datetime) -> list[int]:
    stmt = select(Card.id).where(
        Card.state == "not-activated", Card.shipped_at.is_not(None), Card.shipped_at <= shipped_before
    )
    return list(s.scalars(stmt.order_by(Card.id)))


def cards_due_expiry(s: Session, now: dt.datetime) -> list[int]:
    stmt = select(Card.id).where(Card.state.in_(("not-activated", "valid")), Card.not_after <= now)
    return list(s.scalars(stmt.order_by(Card.id)))


# ----------------------------------------------------------------------------------------------
# Revocation requests


def revocation_password_put(s: Session, card_id: int, **values: Any) -> None:
    row = s.get(RevocationPassword, card_id)
    if row is None:
        s.add(RevocationPassword(card_id=card_id, **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)
    s.flush()


def revocation_password_get(s: Session, card_id: int) -> tuple[str, str | None] | None:
    """The card's revocation password hash and authorised person, or None when none is set."""
    row = s.get(RevocationPassword, card_id)
    return (row.password_hash, row.authorised_person) if row else None


def revocation_request_add(s: Session, **values: Any) -> int:
    row = RevocationRequest(**values)
    s.add(row)
    s.flush()
    return row.id


def revocation_request_update(s: Session, request_id: int, **values: Any) -> None:
    s.execute(update(RevocationRequest).where(RevocationRequest.id == request_id).values(**values))


def revocation_requests(s: Session, card_id: int) -> list[dict[str, Any]]:
    stmt = select(RevocationRequest).where(RevocationRequest.card_id == card_id).order_by(RevocationRequest.id)
    rows = s.scalars(stmt)
    return [{c.name: getattr(r, c.name) for c in RevocationRequest.__table__.columns} for r in rows]


def revocation_requests_pending(s: Session, received_before: dt.datetime, limit: int = 100) -> list[dict[str, Any]]:
    """Accepted requests not yet carried out, received before ``received_before``, oldest first."""
    stmt = (
        select(RevocationRequest)
        .where(RevocationRequest.decision == "accepted", RevocationRequest.received_at < received_before)
        .order_by(RevocationRequest.received_at, RevocationRequest.id)
        .limit(limit)
    )
    return [{c.name: getattr(r, c.name) for c in RevocationRequest.__table__.columns} for r in s.scalars(stmt)]


@dataclass(frozen=True, slots=True)
class RAFigures:
    revocations_pending: int
    """Accepted revocation requests not carried out yet."""
    oldest_pending_received_at: dt.datetime | None
    outbox: dict[str, int]
    """Outbox messages by state."""


def ra_figures(s: Session) -> RAFigures:
    """Figures for the metrics endpoint."""
    from ra.store.outbox_repo import counts

    n, oldest = s.execute(
        select(func.count(), func.min(RevocationRequest.received_at)).where(RevocationRequest.decision == "accepted")
    ).one()
    return RAFigures(int(n), oldest, counts(s))


def login_failure_add(s: Session, email_sha256: str, client_address: str | None, at: dt.datetime) -> None:
    s.add(LoginFailure(email_sha256=email_sha256, client_address=client_address, at=at))
    s.flush()


def login_failures(
    s: Session, since: dt.datetime, email_sha256: str, client_address: str | None
) -> tuple[list[dt.datetime], list[dt.datetime]]:
    """Failed logins since ``since``: for the email, and from the address; oldest first."""
    return _by_email_and_address(s, LoginFailure, since, email_sha256, client_address)


def registration_attempt_add(s: Session, email_sha256: str, client_address: str | None, at: dt.datetime) -> None:
    s.add(RegistrationAttempt(email_sha256=email_sha256, client_address=client_address, at=at))
    s.flush()


def registration_attempts(
    s: Session, since: dt.datetime, email_sha256: str, client_address: str | None
) -> tuple[list[dt.datetime], list[dt.datetime]]:
    """Registrations since ``since``: naming the email, and from the address; oldest first."""
    return _by_email_and_address(s, RegistrationAttempt, since, email_sha256, client_address)


def _by_email_and_address(
    s: Session,
    model: type[LoginFailure] | type[RegistrationAttempt],
    since: dt.datetime,
    email_sha256: str,
    client_address: str | None,
) -> tuple[list[dt.datetime], list[dt.datetime]]:
    by_email = s.scalars(
        select(model.at).where(model.email_sha256 == email_sha256, model.at > since).order_by(model.at)
    )
    by_address: list[dt.datetime] = []
    if client_address is not None:
        by_address = list(
            s.scalars(
                select(model.at).where(model.client_address == client_address, model.at > since).order_by(model.at)
            )
        )
    return list(by_email), by_address


def login_failures_purge(s: Session, before: dt.datetime) -> int:
    return s.execute(delete(LoginFailure).where(LoginFailure.at < before)).rowcount or 0  # type: ignore[attr-defined]


def registration_attempts_purge(s: Session, before: dt.datetime) -> int:
    result = s.execute(delete(RegistrationAttempt).where(RegistrationAttempt.at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def account_claim_totp_step(s: Session, account_id: int, step: int) -> bool:
    """Record ``step`` as the account's last accepted TOTP step only if it is newer than the last
    one: one conditional UPDATE, so two logins racing with the same code cannot both succeed."""
    result = s.execute(
        update(Account)
        .where(Account.id == account_id, or_(Account.totp_last_step.is_(None), Account.totp_last_step < step))
        .values(totp_last_step=step)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def revocation_failures(
    s: Session, since: dt.datetime, *, card_id: int | None, client_address: str | None
) -> list[tuple[int | None, str | None, dt.datetime]]:
    """Wrong revocation passwords received since ``since`` for the card or from the address:
    (card, address, receipt time), oldest first."""
    where = []
    if card_id is not None:
        where.append(RevocationRequest.card_id == card_id)
    if client_address is not None:
        where.append(RevocationRequest.client_address == client_address)
    if not where:
        return []
    stmt = (
        select(RevocationRequest.card_id, RevocationRequest.client_address, RevocationRequest.received_at)
        .where(RevocationRequest.auth_failed.is_(True), RevocationRequest.received_at > since, or_(*where))
        .order_by(RevocationRequest.received_at)
    )
    return [(r[0], r[1], r[2]) for r in s.execute(stmt)]


def dn_binding(s: Session, subject_key: str) -> tuple[int | None, int | None] | None:
    row = s.scalar(select(DNBinding).where(DNBinding.subject_key == subject_key))
    return (row.person_id, row.organisation_id) if row else None


def dn_bind(
    s: Session,
    *,
    subject_key: str,
    subject_dn: str,
    person_id: int | None,
    organisation_id: int | None,
    order_id: int,
    at: dt.datetime,
) -> None:
    s.add(
        DNBinding(
            subject_key=subject_key,
            subject_dn=subject_dn,
            person_id=person_id,
            organisation_id=organisation_id,
            first_order_id=order_id,
            created_at=at,
        )
    )
    s.flush()


# ----------------------------------------------------------------------------------------------
# Audit (read only: rows are written by ca.store.repository.append_audit alone)


AuditRow = tuple[int, dt.datetime, str, str, str, str | None, str | None, str]


def audit_events(
    s: Session, *, object_type: str | None = None, object_id: str | None = None, limit: int = 100
) -> list[AuditRow]:
    stmt = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
    if object_type is not None:
        stmt = stmt.where(AuditEvent.object_type == object_type)
    if object_id is not None:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    return [(e.seq, e.at, e.actor, e.role, e.action, e.object_type, e.object_id, e.details) for e in s.scalars(stmt)]


def serialise_limit(s: Session, key: str) -> None:
    """Serialise, until the transaction ends, the transactions that count attempts of one limited
    key (a client address) and then record theirs: without it two processes on PostgreSQL could
    both count one below the limit and both record, together passing it.

    PostgreSQL: a transaction-scoped advisory lock on a 64-bit hash of ``key``.  Take it after the
    transaction's business row locks (card, account) and before the audit head, which every caller
    takes last, so the lock order stays the same everywhere.  SQLite: the write transaction
    (``BEGIN IMMEDIATE``) already excludes every other writer.
    """
    if s.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(b"qtsp-rate-limit:" + key.encode()).digest()
    s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int.from_bytes(digest[:8], "big", signed=True)})


def account_confirm(s: Session, account_id: int, at: dt.datetime) -> bool:
    """Mark the account's email confirmed (once); False when it was confirmed already."""
    result = s.execute(
        update(Account).where(Account.id == account_id, Account.confirmed_at.is_(None)).values(confirmed_at=at)
    )
    return int(getattr(result, "rowcount", 0)) == 1


def _abandoned(created_before: dt.datetime, now: dt.datetime) -> Any:
    """An applicant account never confirmed, older than ``created_before``, with no live code."""
    live_code = (
        select(EmailConfirmation.id)
        .where(
            EmailConfirmation.account_id == Account.id,
            EmailConfirmation.state == "pending",
            EmailConfirmation.expires_at > now,
        )
        .exists()
    )
    return (
        (Account.kind == "applicant")
        & Account.confirmed_at.is_(None)
        & (Account.created_at < created_before)
        & ~live_code
    )


def unconfirmed_accounts_due(s: Session, created_before: dt.datetime, now: dt.datetime, limit: int = 500) -> list[int]:
    """Applicant accounts abandoned before confirmation (see :func:`unconfirmed_account_delete`)."""
    stmt = select(Account.id).where(_abandoned(created_before, now)).order_by(Account.id).limit(limit)
    return [int(x) for x in s.scalars(stmt)]


def unconfirmed_account_delete(s: Session, account_id: int, created_before: dt.datetime, now: dt.datetime) -> bool:
    """Delete an applicant account that was never confirmed and has no live code (it could never
    log in, so nothing else refers to it); its mails lose the reference.  The confirmation rows are
    locked first, in the order a confirmation takes them."""
    s.scalars(select(EmailConfirmation.id).where(EmailConfirmation.account_id == account_id).with_for_update()).all()
    found = s.scalar(
        select(Account.id).where(Account.id == account_id, _abandoned(created_before, now)).with_for_update()
    )
    if found is None:
        return False
    s.execute(update(OutboxMessage).where(OutboxMessage.account_id == account_id).values(account_id=None))
    s.execute(delete(EmailConfirmation).where(EmailConfirmation.account_id == account_id))
    s.execute(delete(AccountRole).where(AccountRole.account_id == account_id))
    s.execute(delete(Account).where(Account.id == account_id))
    return True
