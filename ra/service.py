"""The registration authority's service: accounts, organisations, orders and their evidence,
approval (four eyes), hand-over to the CA per certificate slot, and the card life cycle.

Every operation checks the caller's role, runs in one transaction (the order or card row locked
first, so concurrent transitions serialise) and appends its audit event in that same
transaction through :func:`ca.store.repository.append_audit`.  Calls to the CA happen between
transactions: the CA commits and audits its own steps, and the RA records the result afterwards.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ca.audit.chain import JSONValue
from ca.findings import Finding, Severity, errors_in, format_findings
from ca.issuance.service import system_clock
from ca.profiles.subject import AdmissionInput, SubjectError, SubjectInput
from ca.store import repository as ca_repo
from ca.store.db import Database, UnitOfWork
from ra import email_confirmation, shop, tan, transport_pin
from ra.ca_port import CAPort, IssuedRef, subject_to_json
from ra.credentials import (
    DataKey,
    hash_password,
    new_letter_secret,
    new_totp_secret,
    sha256_text,
    totp_step,
    verify_password,
)
from ra.errors import RAError, RAErrorKind
from ra.evidence import (
    IdentityEvidence,
    PersonData,
    check_copy,
    identity_findings,
    same_person,
)
from ra.followup_rules import FollowUpSettings
from ra.organisation import (
    ChamberConfirmation,
    OrganisationData,
    OzbData,
    SignatoryData,
    admission_from,
    organisation_identifier,
    ozb_findings,
    signatory_matching,
)
from ra.outbox import Channel, DispatchResult, Gateway, Outbox, mask_recipient
from ra.products import IdentMethod, OrderKind, Product, check_method
from ra.rate_limit import retry_after
from ra.records import AccountRec, CardRec, OrderRec, OrganisationRec, SignatoryRec, SlotRec
from ra.roles import OPERATOR_ROLES, Principal, Role
from ra.store import repository as repo
from ra.workflow import (
    CardEvent,
    CardState,
    OrderEvent,
    OrderState,
    WaitingReason,
    card_transition,
    order_transition,
)

log = logging.getLogger(__name__)
if TYPE_CHECKING:
    from ra.email_confirmation import EmailConfirmations
    from ra.followup import FollowUpService

__all__ = ["ANONYMOUS", "SYSTEM", "ApprovalResult", "OrderView", "RAService", "ReconcileResult", "cli_principal"]

_EMAIL_RE: Final = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\Z")
_REVOCATION_REASONS: Final = frozenset(
    {"unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation"}
)
# Who may ask for which reason (EN 319 411-1 REV-6.2.4-01: the CPS lists who may request and why).
# A revocation officer also withdraws a privilege, e.g. when an admission ends (REV-6.3.9-02 b).
_OFFICER_REASONS: Final = _REVOCATION_REASONS | {"privilegeWithdrawn"}
_ORGANISATION_REASONS: Final = frozenset({"affiliationChanged"})
# Revocation password: at most this many wrong passwords per card (and per client address) in the
# window; counted in the database, so the limit holds across processes.
PASSWORD_WINDOW: Final = dt.timedelta(hours=1)
PASSWORD_FAILURES_PER_CARD: Final = 5
PASSWORD_FAILURES_PER_ADDRESS: Final = 20
#: Account registrations: per client address and hour; mails per named address and day.
REGISTRATION_WINDOW: Final = dt.timedelta(hours=1)
REGISTRATION_MAIL_WINDOW: Final = dt.timedelta(days=1)
REGISTRATIONS_PER_ADDRESS: Final = 20
REGISTRATION_MAILS_PER_EMAIL: Final = 3
#: Failed logins counted over LOGIN_WINDOW: per email (any address) and per client address.
LOGIN_WINDOW: Final = dt.timedelta(minutes=15)
LOGIN_FAILURES_PER_EMAIL: Final = 10
LOGIN_FAILURES_PER_ADDRESS: Final = 30

ANONYMOUS: Final = Principal(name="anonymous", roles=frozenset())
SYSTEM: Final = Principal(name="system:scheduler", roles=frozenset({Role.SYSTEM}), second_factor=True)


def cli_principal(name: str, *roles: Role) -> Principal:
    """A CLI command on the CA host: the OS user, with the roles the command needs (the host's own
    access control is the gate there, so it counts as strongly authenticated)."""
    return Principal(name=name, roles=frozenset(roles), second_factor=True)


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    state: str
    approvals: tuple[str, ...]
    needed: int


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    """Slot ids settled by :meth:`RAService.reconcile_issuing`."""

    recorded: tuple[int, ...]
    """The CA had stored the attempt's certificate: now recorded on the slot."""
    reset: tuple[int, ...]
    """The CA stored nothing for the attempt: the slot awaits a CSR again."""
    pending: tuple[int, ...]
    """The CA's journal still has the attempt open: left for a later run."""


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as the portal shows it, with its evidence summary, approvals, slots and card."""

    order: OrderRec
    product_title: str
    evidence: dict[str, JSONValue]
    approvals: tuple[str, ...]
    slots: tuple[SlotRec, ...]
    card_id: int | None


def normalise_postal_address(text: str) -> str:
    """2-6 non-empty lines of at most 80 printable characters each (trimmed), joined by newlines.

    :raises RAError: MALFORMED naming what is wrong.
    """
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not 2 <= len(lines) <= 6:
        raise RAError(RAErrorKind.MALFORMED, "postal_address: 2 to 6 non-empty lines")
    for line in lines:
        if len(line) > 80 or not line.isprintable():
            raise RAError(RAErrorKind.MALFORMED, "postal_address: each line at most 80 printable characters")
    return "\n".join(lines)


def _signatory(sig: SignatoryRec | None) -> SignatoryData | None:
    return None if sig is None else SignatoryData(sig.given_names, sig.surname, sig.date_of_birth, sig.role)


def _json_list(values: Iterable[str]) -> list[JSONValue]:
    return list(values)


def _audit_login(
    s: UnitOfWork,
    at: dt.datetime,
    email: str,
    account: AccountRec | None,
    action: str,
    client_address: str | None,
    **details: JSONValue,
) -> None:
    """A refused login, audited as the unauthenticated caller (EN 319 411-1 OVR-6.4.5-02)."""
    ca_repo.append_audit(
        s,
        at=at,
        actor=f"unauthenticated:{email[:200]}",
        role="none",
        action=action,
        object_type="account",
        object_id=str(account.id) if account else None,
        details={**details, "client_address": client_address},
    )


@dataclass
class RAService:
    db: Database
    products: Mapping[str, Product]
    ca: CAPort
    data_key: DataKey
    clock: Callable[[], dt.datetime] = system_clock
    activation_delay: dt.timedelta = dt.timedelta(hours=24)
    session_lifetime: dt.timedelta = dt.timedelta(hours=8)
    gateways: Mapping[Channel, Gateway] = field(default_factory=dict)
    """The SMS and letter carriers the outbox hands messages to (ra/outbox.py)."""
    renewal_min_days: int = 3
    """Online renewal closes this many days before the certificate expires ([ra] renewal_min_days)."""
    followup_settings: FollowUpSettings = field(default_factory=FollowUpSettings)
    """Follow-up orders: ``[ra] followups_without_identification``, ``followup_qc_ident_method``."""
    public_base_url: str = "http://127.0.0.1:8080"
    """Where applicants reach the API (``[ca] base_url``): named in confirmation mails."""
    _dummy_hash: str = field(default="", init=False, repr=False)

    @property
    def outbox(self) -> Outbox:
        """SMS and letters, queued in the caller's transaction and sent by :meth:`dispatch_outbox`."""
        return Outbox(self.db, self.data_key, self.clock)

    @property
    def followups(self) -> FollowUpService:
        """Follow-up orders (ra/followup.py)."""
        from ra.followup import FollowUpService

        return FollowUpService(self)

    @property
    def email_confirmations(self) -> EmailConfirmations:
        """Confirmation of the email addresses orders certify (ra/email_confirmation.py)."""
        from ra.email_confirmation import EmailConfirmations

        return EmailConfirmations(self)

    def dispatch_outbox(self) -> DispatchResult:
        """Hand due messages to the gateways (scheduled job; SMS-TAN requests call it at once)."""
        return self.outbox.dispatch(self.gateways)

    # ------------------------------------------------------------------------------------------
    # helpers

    def _dummy(self) -> str:
        """An Argon2 hash to verify against when there is nothing to check, so that the time taken
        does not reveal whether an account or card exists."""
        if not self._dummy_hash:
            self._dummy_hash = hash_password("x" * 16)
        return self._dummy_hash

    def _audit(
        self,
        s: UnitOfWork,
        principal: Principal,
        role: Role | str,
        action: str,
        object_type: str,
        object_id: int | str,
        details: Mapping[str, JSONValue] | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        ca_repo.append_audit(
            s,
            at=at or self.clock(),
            actor=principal.name,
            role=str(role),
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            details=details or {},
        )

    def _product(self, name: str) -> Product:
        product = self.products.get(name)
        if product is None:
            raise RAError(RAErrorKind.NOT_FOUND, f"unknown product {name!r}")
        return product

    @staticmethod
    def _order(s: UnitOfWork, order_id: int, principal: Principal, *, lock: bool = False) -> OrderRec:
        """The order, if the caller may see it (applicants: their own only; else NOT_FOUND)."""
        order = repo.order_get(s, order_id, lock=lock)
        if order is None or (
            not (principal.roles & OPERATOR_ROLES or Role.SYSTEM in principal.roles)
            and order.applicant_account_id != principal.account_id
        ):
            raise RAError(RAErrorKind.NOT_FOUND, f"no order {order_id}")
        return order

    @staticmethod
    def _is_holder(principal: Principal, card: CardRec) -> bool:
        """The caller is the card's holder, acting as applicant on their own card."""
        return Role.APPLICANT in principal.roles and card.holder_account_id == principal.account_id

    @staticmethod
    def _card(s: UnitOfWork, card_id: int, principal: Principal, *, lock: bool = False) -> CardRec:
        card = repo.card_get(s, card_id, lock=lock)
        if card is None or (
            not (principal.roles & OPERATOR_ROLES or Role.SYSTEM in principal.roles)
            and card.holder_account_id != principal.account_id
        ):
            raise RAError(RAErrorKind.NOT_FOUND, f"no card {card_id}")
        return card

    def _transition(
        self,
        s: UnitOfWork,
        order: OrderRec,
        event: OrderEvent,
        role: Role,
        principal: Principal,
        details: Mapping[str, JSONValue] | None = None,
        **values: object,
    ) -> OrderState:
        target = order_transition(OrderState(order.state), event, role)
        now = self.clock()
        repo.order_update(s, order.id, state=target.value, updated_at=now, **values)
        self._audit(
            s,
            principal,
            role,
            f"order.{event.value}",
            "order",
            order.id,
            {"from": order.state, "to": target.value, **(details or {})},
            at=now,
        )
        return target

    @staticmethod
    def _own_or(principal: Principal, owner_account_id: int, *roles: Role, second_factor: bool = False) -> Role:
        """The applicant acting on their own object, or one of ``roles``."""
        if Role.APPLICANT in principal.roles and principal.account_id == owner_account_id:
            return Role.APPLICANT
        return principal.require(*roles, second_factor=second_factor)

    # ------------------------------------------------------------------------------------------
    # Accounts

    def register_applicant(
        self,
        *,
        email: str,
        password: str,
        given_names: str,
        surname: str,
        date_of_birth: dt.date,
        client_address: str | None = None,
        dispatch: bool = True,
    ) -> int | None:
        """Open an applicant account, one per person (names and date of birth) and one per email,
        inactive until the code mailed to the address comes back (seed 001: "Bestätigungslink ...
        um Ihren Account zu aktivieren"; :mod:`ra.email_confirmation`).

        The caller is told the same whatever happens (:data:`ra.email_confirmation.ACCOUNT_ANSWER`),
        so that registration cannot be used to find out which addresses or persons have an
        account; the address's owner learns it by mail: a known address gets "you have an account
        already", an address offered for a person who has an account under another one gets "we
        could not open an account with these details".  Both are audited.

        Each registration mails the address it names, so the trust center must not become a mail
        relay: :data:`REGISTRATIONS_PER_ADDRESS` per client address and hour (429), and at most
        :data:`REGISTRATION_MAILS_PER_EMAIL` mails per named address and day (beyond them nothing
        is done; the answer stays the same).

        :returns: the new account's id, or None when none was opened (for trusted callers).
        :raises RAError: MALFORMED (the request alone: address syntax, names, date of birth),
            RATE_LIMITED (too many registrations from the client address).
        """
        email = email.strip().lower()
        if not _EMAIL_RE.match(email) or len(email) > 254:
            raise RAError(RAErrorKind.MALFORMED, "email: not a valid address")
        for key, value in (("given_names", given_names), ("surname", surname)):
            if not value.strip() or len(value) > 128 or value != value.strip():
                raise RAError(RAErrorKind.MALFORMED, f"{key}: 1-128 characters without outer blanks")
        if date_of_birth >= self.clock().date():
            raise RAError(RAErrorKind.MALFORMED, "date_of_birth: must lie in the past")
        pw_hash = hash_password(password)
        now = self.clock()
        anonymous = Principal(name=f"unauthenticated:{email}", roles=frozenset())
        address = client_address[:64] if client_address else None
        email_key = sha256_text(email)
        account_id: int | None = None
        limited: RAError | None = None
        with self.db.write() as s:
            if address is not None:
                repo.serialise_limit(s, f"address:{address}")
            by_email, by_address = repo.registration_attempts(s, now - REGISTRATION_MAIL_WINDOW, email_key, address)
            recent = [at for at in by_address if at > now - REGISTRATION_WINDOW]
            wait = retry_after(now, REGISTRATION_WINDOW, [(recent, REGISTRATIONS_PER_ADDRESS)])
            if wait is not None:
                limited = RAError(
                    RAErrorKind.RATE_LIMITED,
                    "too many registrations from this address: try again later",
                    retry_after=wait,
                )
            else:
                repo.registration_attempt_add(s, email_key, address, now)
                if len(by_email) >= REGISTRATION_MAILS_PER_EMAIL:
                    self._audit(
                        s,
                        anonymous,
                        Role.APPLICANT,
                        "account.registration_throttled",
                        "registration",
                        email_key[:16],
                        {"email_sha256": email_key, "client_address": address},
                        at=now,
                    )
                else:
                    account_id = self._register(s, email, pw_hash, given_names, surname, date_of_birth, anonymous, now)
        if limited is not None:
            raise limited
        if dispatch:  # False: the caller dispatches itself, after answering (ra.api)
            self.dispatch_outbox()
        return account_id

    def _register(
        self,
        s: UnitOfWork,
        email: str,
        pw_hash: str,
        given_names: str,
        surname: str,
        date_of_birth: dt.date,
        anonymous: Principal,
        now: dt.datetime,
    ) -> int | None:
        """:meth:`register_applicant` inside its transaction, once the limits let it through."""
        account_id: int | None = None
        existing = repo.account_by_email(s, email)
        person = repo.person_find(s, given_names, surname, date_of_birth)
        holder = repo.account_of_person(s, "applicant", person.id) if person is not None else None
        target = existing if existing is not None else holder
        if target is not None:
            known = existing is not None
            self.email_confirmations.notify(
                s,
                email,
                "account-exists" if known else "account-refused",
                "Someone, perhaps you, tried to open an applicant account with this address. An account "
                "with this address exists already: log in with it."
                if known
                else "Someone, perhaps you, tried to open an applicant account with this address. We could "
                "not open an account with these details: if you have one already, log in with the address "
                "you registered; otherwise contact the trust center's support.",
            )
            self._audit(
                s,
                anonymous,
                Role.APPLICANT,
                "account.registration_refused",
                "account",
                target.id,
                {
                    "reason": "email exists" if known else "the person has an applicant account",
                    "email_sha256": sha256_text(email),
                },
                at=now,
            )
        else:
            person = repo.person_get_or_create(s, given_names, surname, date_of_birth, now)
            account_id = repo.account_add(
                s,
                email=email,
                kind="applicant",
                password_hash=pw_hash,
                person_id=person.id,
                totp_secret=None,
                roles=[Role.APPLICANT.value],
                at=now,
                created_by=f"self:{email}",
            )
            self._audit(
                s,
                Principal(name=f"account:{account_id}:{email}", roles=frozenset()),
                Role.APPLICANT,
                "account.registered",
                "account",
                account_id,
                {"email": email, "person_id": person.id},
                at=now,
            )
            self.email_confirmations.mail_account(s, account_id, email, now)
        return account_id

    def create_operator(
        self,
        principal: Principal,
        *,
        email: str,
        password: str,
        roles: Iterable[str],
        person: PersonData | None = None,
    ) -> tuple[int, str]:
        """Create an operator account; returns its id and the TOTP secret (shown once, stored encrypted)."""
        acting = principal.require(Role.SECURITY_OFFICER, second_factor=True)
        email = email.strip().lower()
        if not _EMAIL_RE.match(email):
            raise RAError(RAErrorKind.MALFORMED, "email: not a valid address")
        wanted = self._operator_roles(roles)
        pw_hash = hash_password(password)
        secret = new_totp_secret()
        now = self.clock()
        with self.db.write() as s:
            if repo.account_by_email(s, email) is not None:
                raise RAError(RAErrorKind.CONFLICT, "an account with this email exists")
            person_id = None
            if person is not None:
                person_id = repo.person_get_or_create(
                    s, person.given_names, person.surname, person.date_of_birth, now
                ).id
                if repo.account_of_person(s, "operator", person_id) is not None:
                    raise RAError(RAErrorKind.CONFLICT, "this person already has an operator account")
            account_id = repo.account_add(
                s,
                email=email,
                kind="operator",
                password_hash=pw_hash,
                person_id=person_id,
                totp_secret=None,
                roles=[r.value for r in wanted],
                at=now,
                created_by=principal.name,
                confirmed_at=now,  # created by a security officer, who checked the person
            )
            repo.account_update(
                s, account_id, totp_secret=self.data_key.encrypt(secret.encode(), self._totp_aad(account_id))
            )
            self._audit(
                s,
                principal,
                acting,
                "account.operator_created",
                "account",
                account_id,
                {"email": email, "roles": [r.value for r in sorted(wanted)], "person_id": person_id},
                at=now,
            )
        return account_id, secret

    @staticmethod
    def _operator_roles(roles: Iterable[str]) -> frozenset[Role]:
        out: set[Role] = set()
        for r in roles:
            try:
                role = Role(r)
            except ValueError:
                role = Role.SYSTEM
            if role not in OPERATOR_ROLES:
                allowed = ", ".join(sorted(x.value for x in OPERATOR_ROLES))
                raise RAError(RAErrorKind.MALFORMED, f"role {r!r} is not an operator role ({allowed})")
            out.add(role)
        if not out:
            raise RAError(RAErrorKind.MALFORMED, "an operator needs at least one role")
        return frozenset(out)

    def set_roles(self, principal: Principal, account_id: int, roles: Iterable[str]) -> None:
        """Change an operator's roles (a security event, audited with before and after)."""
        acting = principal.require(Role.SECURITY_OFFICER, second_factor=True)
        wanted = self._operator_roles(roles)
        if principal.account_id == account_id:
            raise RAError(RAErrorKind.FORBIDDEN, "nobody changes their own roles")
        with self.db.write() as s:
            account = repo.account_get(s, account_id)
            if account is None or account.kind != "operator":
                raise RAError(RAErrorKind.NOT_FOUND, f"no operator account {account_id}")
            repo.account_set_roles(s, account_id, [r.value for r in wanted])
            self._audit(
                s,
                principal,
                acting,
                "account.roles_changed",
                "account",
                account_id,
                {"before": _json_list(account.roles), "after": _json_list(sorted(r.value for r in wanted))},
            )

    def list_accounts(self, principal: Principal) -> list[AccountRec]:
        principal.require(Role.SECURITY_OFFICER, Role.AUDITOR)
        with self.db.read() as s:
            return repo.accounts_list(s)

    @staticmethod
    def _totp_aad(account_id: int) -> bytes:
        return f"qtsp-ra-totp:{account_id}".encode()

    def totp_secret(self, account: AccountRec) -> str:
        if account.totp_secret is None:
            raise RAError(RAErrorKind.CONFLICT, "the account has no second factor")
        return self.data_key.decrypt(account.totp_secret, self._totp_aad(account.id)).decode()

    def login(
        self, email: str, password: str, totp: str | None = None, client_address: str | None = None
    ) -> tuple[str, bool]:
        """Check the password (and the TOTP code, if given); return a bearer token and whether a
        second factor was presented.  Every attempt is audited (EN 319 411-1 OVR-6.4.5-02).

        Failed logins are recorded and limited per email and per client address over
        :data:`LOGIN_WINDOW`; at the limit even the right password is refused (RATE_LIMITED with the
        seconds to wait), so guessing cannot go on.  A TOTP code is accepted once: the step is
        claimed with a conditional update, so two logins racing with one code cannot both succeed.
        """
        email = email.strip().lower()
        email_key = sha256_text(email)
        address = client_address[:64] if client_address else None
        now = self.clock()
        failure: str | None = None
        unconfirmed = False
        step: int | None = None
        with self.db.read() as s:
            account = repo.account_by_email(s, email)
            retry = self._login_retry_after(s, email_key, address, now)
        if retry is not None:
            with self.db.write() as s:
                _audit_login(s, now, email, account, "account.login_throttled", address, retry_after=retry)
            raise RAError(RAErrorKind.RATE_LIMITED, "too many failed logins: try again later", retry_after=retry)
        if account is None:
            # Spend the same time as a real check, so timing does not reveal which emails exist.
            verify_password(self._dummy(), password)
            failure = "unknown account or wrong password"
        elif account.disabled or not verify_password(account.password_hash, password):
            failure = "unknown account or wrong password"
        elif account.confirmed_at is None:
            # The right password (so nothing is revealed): seed 001, active only once confirmed.
            failure = (
                "the account is not active yet: confirm its email address with the code mailed to it "
                "(a new one: POST /api/accounts/confirmation)"
            )
            unconfirmed = True
        elif totp is not None:
            if account.totp_secret is None:
                failure = "the account has no second factor"
            else:
                step = totp_step(self.totp_secret(account), totp, now)
                if step is None or (account.totp_last_step is not None and step <= account.totp_last_step):
                    failure = "wrong or already used TOTP code"
        token = secrets.token_urlsafe(32)
        late: int | None = None
        with self.db.write() as s:
            # Counted again, by one process at a time per email and per address: attempts racing
            # past the first count (the password check takes a while) cannot pass the limit together.
            repo.serialise_limit(s, f"email:{email_key}")
            if address is not None:
                repo.serialise_limit(s, f"address:{address}")
            late = self._login_retry_after(s, email_key, address, now)
            if late is not None:
                _audit_login(s, now, email, account, "account.login_throttled", address, retry_after=late)
            else:
                if (
                    failure is None
                    and account is not None
                    and step is not None
                    and not repo.account_claim_totp_step(s, account.id, step)
                ):
                    failure = "wrong or already used TOTP code"
                if failure is not None or account is None:
                    if not unconfirmed:  # not a guess: the password was right
                        repo.login_failure_add(s, email_key, address, now)
                    _audit_login(s, now, email, account, "account.login_failed", address, reason=failure)
                else:
                    repo.session_add(
                        s,
                        token_sha256=sha256_text(token),
                        account_id=account.id,
                        second_factor=step is not None,
                        at=now,
                        expires_at=now + self.session_lifetime,
                    )
                    ca_repo.append_audit(
                        s,
                        at=now,
                        actor=f"account:{account.id}:{account.email}",
                        role=",".join(account.roles),
                        action="account.login",
                        object_type="account",
                        object_id=str(account.id),
                        details={"second_factor": step is not None},
                    )
        if late is not None:
            raise RAError(RAErrorKind.RATE_LIMITED, "too many failed logins: try again later", retry_after=late)
        if failure is not None:
            raise RAError(RAErrorKind.UNAUTHENTICATED, failure)
        return token, step is not None

    @staticmethod
    def _login_retry_after(s: UnitOfWork, email_key: str, address: str | None, now: dt.datetime) -> int | None:
        by_email, by_address = repo.login_failures(s, now - LOGIN_WINDOW, email_key, address)
        return retry_after(
            now, LOGIN_WINDOW, [(by_email, LOGIN_FAILURES_PER_EMAIL), (by_address, LOGIN_FAILURES_PER_ADDRESS)]
        )

    def purge_unconfirmed_accounts(self) -> list[int]:
        """Delete applicant accounts never confirmed once their codes have expired (the address
        and the person are free to register again: nobody holds them by registering alone).
        Audited; returns the accounts deleted."""
        from ra.email_confirmation import CONFIRMATION_VALIDITY

        now = self.clock()
        before = now - CONFIRMATION_VALIDITY
        with self.db.read() as s:
            due = repo.unconfirmed_accounts_due(s, before, now)
        done = []
        for account_id in due:
            with self.db.write() as s:
                if repo.unconfirmed_account_delete(s, account_id, before, now):
                    self._audit(
                        s,
                        SYSTEM,
                        Role.SYSTEM,
                        "account.unconfirmed_deleted",
                        "account",
                        account_id,
                        {"confirmation_validity_days": CONFIRMATION_VALIDITY.days},
                        at=now,
                    )
                    done.append(account_id)
        return done

    def purge_login_failures(self) -> int:
        """Forget failed logins and registration attempts older than their windows (scheduled RA job)."""
        now = self.clock()
        with self.db.write() as s:
            done = repo.login_failures_purge(s, now - LOGIN_WINDOW)
            return done + repo.registration_attempts_purge(s, now - REGISTRATION_MAIL_WINDOW)

    def authenticate(self, token: str) -> Principal:
        """The caller behind a bearer token.

        :raises RAError: UNAUTHENTICATED for an unknown, expired or disabled session.
        """
        with self.db.read() as s:
            found = repo.session_get(s, sha256_text(token))
            if found is None:
                raise RAError(RAErrorKind.UNAUTHENTICATED, "unknown or expired session")
            account_id, second_factor, expires_at = found
            account = repo.account_get(s, account_id)
        if account is None or account.disabled or expires_at <= self.clock():
            raise RAError(RAErrorKind.UNAUTHENTICATED, "unknown or expired session")
        return Principal(
            name=f"account:{account.id}:{account.email}",
            roles=frozenset(Role(r) for r in account.roles),
            account_id=account.id,
            person_id=account.person_id,
            second_factor=second_factor,
        )

    # ------------------------------------------------------------------------------------------
    # Organisations

    def create_organisation(
        self,
        principal: Principal,
        org: OrganisationData,
        signatories: Iterable[SignatoryData],
    ) -> int:
        acting = principal.require(Role.RA_OFFICER)
        identifier = organisation_identifier(org)
        sigs = list(signatories)
        if not sigs:
            raise RAError(RAErrorKind.MALFORMED, "an organisation needs at least one authorised signatory")
        now = self.clock()
        with self.db.write() as s:
            if repo.org_by_identifier(s, identifier) is not None:
                raise RAError(RAErrorKind.CONFLICT, f"organisation {identifier} exists")
            org_id = repo.org_add(
                s,
                name=org.name,
                legal_form=org.legal_form,
                country=org.country,
                register_court=org.register_court,
                register_number=org.register_number,
                vat_number=org.vat_number,
                identifier=identifier,
                signatories=[(x.given_names, x.surname, x.date_of_birth, x.role) for x in sigs],
                at=now,
                created_by=principal.name,
            )
            self._audit(
                s,
                principal,
                acting,
                "organisation.created",
                "organisation",
                org_id,
                {"name": org.name, "identifier": identifier, "signatories": len(sigs)},
                at=now,
            )
        return org_id

    def get_organisation(self, principal: Principal, org_id: int) -> OrganisationRec:
        principal.require(Role.RA_OFFICER, Role.AUDITOR)
        with self.db.read() as s:
            org = repo.org_get(s, org_id)
        if org is None:
            raise RAError(RAErrorKind.NOT_FOUND, f"no organisation {org_id}")
        return org

    # ------------------------------------------------------------------------------------------
    # Orders

    def create_order(
        self,
        principal: Principal,
        *,
        product: str,
        method: str,
        country: str,
        email: str | None = None,
        organisation_id: int | None = None,
        common_name: str | None = None,
        validity_days: int | None = None,
        postal_address: str | None = None,
        channel: str = "portal",
        mobile: str | None = None,
        shop_id: int | None = None,
    ) -> int:
        """An applicant orders a product for themself (natural) or their organisation (seal);
        ``postal_address`` (2-6 lines) is where the card and letters about it are posted;
        ``channel`` is where it is ordered, and ``mobile`` the number for SMS-TAN where that
        channel offers it (ra/tan.py); optionally through a shop they entered (ra/shop.py: its
        rules and affiliation)."""
        principal.require(Role.APPLICANT)
        assert principal.account_id is not None and principal.person_id is not None
        prod = self._product(product)
        number = tan.check_application(prod, channel, mobile)
        try:
            ident = IdentMethod(method)
        except ValueError:
            raise RAError(RAErrorKind.MALFORMED, f"unknown identification method {method!r}") from None
        check_method(prod, ident, OrderKind.NEW)
        if shop_id is not None:
            with self.db.read() as s:
                organisation_id = shop.check_order(self, s, principal, shop_id, prod, ident, organisation_id)
        from iso3166 import countries_by_alpha2

        if country not in countries_by_alpha2:
            raise RAError(RAErrorKind.MALFORMED, f"country {country[:10]!r} is not ISO 3166-1 alpha-2")
        days = prod.validity_days if validity_days is None else validity_days
        if not 1 <= days <= prod.validity_days:
            raise RAError(RAErrorKind.POLICY_VIOLATION, f"{prod.title}: validity is 1..{prod.validity_days} days")
        if prod.email:
            if email is None or not _EMAIL_RE.match(email):
                raise RAError(RAErrorKind.MALFORMED, f"{prod.title}: a valid email is required")
        elif email is not None:
            raise RAError(RAErrorKind.MALFORMED, f"{prod.title}: carries no email address")
        if prod.organisation == "none" and organisation_id is not None:
            raise RAError(RAErrorKind.POLICY_VIOLATION, f"{prod.title}: names no organisation")
        if prod.organisation == "required" and organisation_id is None:
            raise RAError(RAErrorKind.POLICY_VIOLATION, f"{prod.title}: an organisation is required")
        if prod.subject_kind == "legal":
            if not common_name or len(common_name) > 64:
                raise RAError(RAErrorKind.MALFORMED, f"{prod.title}: common_name (1-64 characters) is required")
        elif common_name is not None:
            raise RAError(RAErrorKind.MALFORMED, "common_name is set from the names for natural persons")
        address = normalise_postal_address(postal_address) if postal_address is not None else None
        now = self.clock()
        with self.db.write() as s:
            if shop_id is not None:  # again, the shop row locked: a concurrent close serialises
                shop.check_order(self, s, principal, shop_id, prod, ident, organisation_id, lock=True)
            if organisation_id is not None:
                org = repo.org_get(s, organisation_id)
                if org is None:
                    raise RAError(RAErrorKind.NOT_FOUND, f"no organisation {organisation_id}")
                if prod.subject_kind == "legal":
                    self._require_signatory(s, principal.person_id, org, prod)
            order_id = repo.order_add(
                s,
                product=prod.name,
                kind=OrderKind.NEW.value,
                state=OrderState.OPEN.value,
                waiting_reason=None,
                note=None,
                applicant_account_id=principal.account_id,
                person_id=principal.person_id,
                organisation_id=organisation_id,
                method=ident.value,
                country=country,
                email=email,
                common_name=common_name,
                validity_days=days,
                parent_card_id=None,
                postal_address=address,
                channel=channel,
                shop_id=shop_id,
                submitted_at=now,
                updated_at=now,
            )
            details: dict[str, JSONValue] = {
                "product": prod.name,
                "method": ident.value,
                "organisation_id": organisation_id,
                "kind": "new",
                "channel": channel,
                "shop_id": shop_id,
            }
            if number is not None:  # seed 000: the number is given with the first application
                details["mobile"] = tan.store_mobile(
                    s, self.data_key, order_id, number, source="application", by=principal.name, at=now
                )
            self._audit(s, principal, Role.APPLICANT, "order.created", "order", order_id, details, at=now)
            if email is not None:  # REG-6.2.2-02A: confirmed before it is certified
                created = repo.order_get(s, order_id)
                assert created is not None
                self.email_confirmations.mail(s, created, principal, now)
        if email is not None:
            self.dispatch_outbox()
        return order_id

    @staticmethod
    def _require_signatory(s: UnitOfWork, person_id: int, org: OrganisationRec, prod: Product) -> SignatoryData:
        person = repo.person_get(s, person_id)
        sigs = tuple(SignatoryData(x.given_names, x.surname, x.date_of_birth, x.role) for x in org.signatories)
        match = signatory_matching(PersonData(person.given_names, person.surname, person.date_of_birth), sigs)
        if match is None:
            raise RAError(
                RAErrorKind.POLICY_VIOLATION,
                f"{prod.title}: only an authorised signatory of {org.name} may apply (BIN-8.4.5-03)",
            )
        return match

    def get_order(self, principal: Principal, order_id: int) -> OrderView:
        with self.db.read() as s:
            order = self._order(s, order_id, principal)
            if Role.APPLICANT not in principal.roles or order.applicant_account_id != principal.account_id:
                principal.require(Role.RA_OFFICER, Role.CA_OPERATOR, Role.AUDITOR)
            return self._view(s, order)

    def list_orders(self, principal: Principal) -> list[OrderView]:
        with self.db.read() as s:
            if principal.roles & {Role.RA_OFFICER, Role.CA_OPERATOR, Role.AUDITOR}:
                orders = repo.orders_list(s)
            else:
                principal.require(Role.APPLICANT)
                orders = repo.orders_list(s, account_id=principal.account_id)
            return [self._view(s, o) for o in orders]

    def _view(self, s: UnitOfWork, order: OrderRec) -> OrderView:
        identity = repo.identity_get(s, order.id)
        copy = repo.copy_get(s, order.id)
        ozb = repo.ozb_get(s, order.id)
        chamber = repo.chamber_get(s, order.id)
        card = repo.card_by_order(s, order.id)
        evidence: dict[str, JSONValue] = {
            "identity": None
            if identity is None
            else {
                "document_type": identity.document_type,
                "issuing_state": identity.issuing_state,
                "expires_on": identity.expires_on.isoformat(),
                "verified_by": identity.verified_by,
                "verified_place": identity.verified_place,
                "verified_at": identity.verified_at.isoformat(),
            },
            "copy": None
            if copy is None
            else {
                "media_type": copy[0].media_type,
                "size": copy[0].size,
                "sha256": copy[0].sha256,
                "redacted": copy[0].redacted,
                "redacted_fields": _json_list(x for x in copy[0].redacted_fields.split(",") if x),
            },
            "ozb": None
            if ozb is None
            else {"signed_by": ozb.signed_by, "signed_on": ozb.signed_on.isoformat(), "sha256": ozb.document_sha256},
            "chamber": None if chamber is None else {"chamber": chamber.chamber, "profession": chamber.profession},
            "email_confirmed_at": None,
        }
        if order.email is not None:
            confirmed = email_confirmation.confirmed_at(s, order.id, order.email)
            evidence["email_confirmed_at"] = confirmed.isoformat() if confirmed else None
        product = self.products.get(order.product)
        return OrderView(
            order=order,
            product_title=product.title if product else order.product,
            evidence=evidence,
            approvals=tuple(repo.approvals(s, order.id)),
            slots=tuple(repo.slots(s, order.id)),
            card_id=card.id if card else None,
        )

    def _editable(self, s: UnitOfWork, order_id: int, principal: Principal) -> OrderRec:
        order = self._order(s, order_id, principal, lock=True)
        if order.state not in (OrderState.OPEN, OrderState.WAITING):
            raise RAError(RAErrorKind.ILLEGAL_TRANSITION, f"evidence cannot change on an order in state {order.state}")
        return order

    def _invalidate_approvals(self, s: UnitOfWork, order: OrderRec, principal: Principal, role: Role) -> None:
        """Changed evidence voids earlier approvals: both officers must see what they approve."""
        if repo.approvals_clear(s, order.id):
            self._audit(s, principal, role, "order.approvals_voided", "order", order.id, {"why": "evidence changed"})

    def record_identity(self, principal: Principal, order_id: int, evidence: IdentityEvidence) -> None:
        """Record the identity document as verified; refused (nothing stored) when a rule fails."""
        acting = principal.require(Role.RA_OFFICER)
        with self.db.write() as s:
            order = self._editable(s, order_id, principal)
            person = repo.person_get(s, order.person_id)
            findings = identity_findings(
                evidence,
                PersonData(person.given_names, person.surname, person.date_of_birth),
                method=IdentMethod(order.method),
                submitted_at=order.submitted_at,
                now=self.clock(),
            )
            if errors_in(findings):
                raise RAError(RAErrorKind.POLICY_VIOLATION, format_findings(findings), tuple(findings))
            now = self.clock()
            repo.identity_put(
                s,
                order.id,
                document_type=evidence.document_type.value,
                document_number=evidence.document_number,
                issuing_state=evidence.issuing_state,
                expires_on=evidence.expires_on,
                given_names=evidence.given_names,
                surname=evidence.surname,
                date_of_birth=evidence.date_of_birth,
                verified_by=evidence.verified_by,
                verified_place=evidence.verified_place,
                verified_at=evidence.verified_at,
                security_features=json.dumps(list(evidence.security_features)),
                recorded_by=principal.name,
                recorded_at=now,
            )
            self._invalidate_approvals(s, order, principal, acting)
            self._audit(
                s,
                principal,
                acting,
                "order.identity_recorded",
                "order",
                order.id,
                {
                    "method": order.method,
                    "document_type": evidence.document_type.value,
                    "issuing_state": evidence.issuing_state,
                    "document_number_sha256": sha256_text(evidence.document_number),
                    "expires_on": evidence.expires_on.isoformat(),
                    "verified_by": evidence.verified_by,
                    "verified_place": evidence.verified_place,
                    "verified_at": evidence.verified_at.isoformat(),
                    "security_features": _json_list(evidence.security_features),
                },
                at=now,
            )

    @staticmethod
    def _copy_aad(order_id: int, sha256: str) -> bytes:
        return f"qtsp-ra-copy:{order_id}:{sha256}".encode()

    def upload_copy(self, principal: Principal, order_id: int, data: bytes, redacted_fields: Iterable[str] = ()) -> str:
        """Store a copy of the identity document encrypted at rest; returns its SHA-256."""
        checked = check_copy(data, tuple(redacted_fields))
        with self.db.write() as s:
            order = self._editable(s, order_id, principal)
            acting = self._own_or(principal, order.applicant_account_id, Role.RA_OFFICER)
            now = self.clock()
            repo.copy_put(
                s,
                order.id,
                media_type=checked.media_type,
                size=checked.size,
                sha256=checked.sha256,
                redacted=checked.redacted,
                redacted_fields=",".join(checked.redacted_fields),
                key_id=self.data_key.key_id,
                ciphertext=self.data_key.encrypt(data, self._copy_aad(order.id, checked.sha256)),
                uploaded_by=principal.name,
                uploaded_at=now,
            )
            self._audit(
                s,
                principal,
                acting,
                "order.copy_uploaded",
                "order",
                order.id,
                {
                    "media_type": checked.media_type,
                    "size": checked.size,
                    "sha256": checked.sha256,
                    "redacted": checked.redacted,
                    "redacted_fields": _json_list(checked.redacted_fields),
                },
                at=now,
            )
        return checked.sha256

    def read_copy(self, principal: Principal, order_id: int) -> tuple[str, bytes]:
        """Decrypt the stored copy (media type, bytes); every read is audited."""
        acting = principal.require(Role.RA_OFFICER, Role.AUDITOR)
        with self.db.write() as s:
            order = self._order(s, order_id, principal)
            found = repo.copy_get(s, order.id)
            if found is None:
                raise RAError(RAErrorKind.NOT_FOUND, f"order {order_id} has no copy")
            rec, blob = found
            if blob is None:
                purged = rec.purged_at.isoformat() if rec.purged_at else "?"
                raise RAError(
                    RAErrorKind.NOT_FOUND,
                    f"order {order_id}'s copy was deleted on {purged} under the retention policy "
                    f"(its SHA-256 {rec.sha256} is kept)",
                )
            data = self.data_key.decrypt(blob, self._copy_aad(order.id, rec.sha256))
            if hashlib.sha256(data).hexdigest() != rec.sha256:
                raise RAError(RAErrorKind.CONFLICT, "the stored copy does not match its digest")
            self._audit(s, principal, acting, "order.copy_read", "order", order.id, {"sha256": rec.sha256})
        return rec.media_type, data

    def record_ozb(
        self,
        principal: Principal,
        order_id: int,
        *,
        signatory_id: int | None,
        signed_by: str,
        signed_on: dt.date,
        document_sha256: str,
        organisation_agrees: bool,
        person_agrees: bool,
    ) -> None:
        """Record the organisation affiliation confirmation; refused unless an authorised signatory
        signed it and both the organisation and the person agree."""
        acting = principal.require(Role.RA_OFFICER)
        with self.db.write() as s:
            order = self._editable(s, order_id, principal)
            if order.organisation_id is None:
                raise RAError(RAErrorKind.POLICY_VIOLATION, "the order names no organisation: no OZB applies")
            org = repo.org_get(s, order.organisation_id)
            assert org is not None
            sig = next((x for x in org.signatories if x.id == signatory_id), None)
            data = OzbData(
                signatory=None
                if sig is None
                else SignatoryData(sig.given_names, sig.surname, sig.date_of_birth, sig.role),
                signed_by=signed_by,
                signed_on=signed_on,
                document_sha256=document_sha256,
                organisation_agrees=organisation_agrees,
                person_agrees=person_agrees,
            )
            findings = ozb_findings(data, now=self.clock())
            if errors_in(findings):
                raise RAError(RAErrorKind.POLICY_VIOLATION, format_findings(findings), tuple(findings))
            now = self.clock()
            repo.ozb_put(
                s,
                order.id,
                organisation_id=org.id,
                signatory_id=signatory_id,
                signed_by=signed_by,
                signed_on=signed_on,
                document_sha256=document_sha256,
                organisation_agrees=organisation_agrees,
                person_agrees=person_agrees,
                recorded_by=principal.name,
                recorded_at=now,
            )
            self._invalidate_approvals(s, order, principal, acting)
            self._audit(
                s,
                principal,
                acting,
                "order.ozb_recorded",
                "order",
                order.id,
                {
                    "organisation": org.identifier,
                    "signatory_id": signatory_id,
                    "signed_on": signed_on.isoformat(),
                    "document_sha256": document_sha256,
                },
                at=now,
            )

    def record_chamber(self, principal: Principal, order_id: int, confirmation: ChamberConfirmation) -> None:
        """Record the chamber confirmation that becomes the Admission extension."""
        acting = principal.require(Role.RA_OFFICER)
        try:
            admission_from(confirmation)
        except SubjectError as exc:
            raise RAError(RAErrorKind.MALFORMED, str(exc)) from None
        if confirmation.confirmed_on > self.clock().date():
            raise RAError(RAErrorKind.POLICY_VIOLATION, "the chamber confirmation is dated in the future")
        with self.db.write() as s:
            order = self._editable(s, order_id, principal)
            if not self._product(order.product).professional:
                raise RAError(
                    RAErrorKind.POLICY_VIOLATION, f"product {order.product} carries no professional attribute"
                )
            now = self.clock()
            repo.chamber_put(
                s,
                order.id,
                chamber=confirmation.chamber,
                registration_number=confirmation.registration_number,
                profession=confirmation.profession,
                profession_oid=confirmation.profession_oid,
                confirmed_on=confirmation.confirmed_on,
                recorded_by=principal.name,
                recorded_at=now,
            )
            self._invalidate_approvals(s, order, principal, acting)
            self._audit(
                s,
                principal,
                acting,
                "order.chamber_recorded",
                "order",
                order.id,
                {
                    "chamber": confirmation.chamber,
                    "profession": confirmation.profession,
                    "registration_number": confirmation.registration_number,
                },
                at=now,
            )

    # -- transitions ---------------------------------------------------------------------------

    def hold(self, principal: Principal, order_id: int, reason: str, note: str | None = None) -> None:
        """Put an order in waiting (incomplete or data error); voids approvals."""
        acting = principal.require(Role.RA_OFFICER)
        try:
            why = WaitingReason(reason)
        except ValueError:
            raise RAError(RAErrorKind.MALFORMED, "reason must be incomplete or data-error") from None
        with self.db.write() as s:
            order = self._order(s, order_id, principal, lock=True)
            self._transition(
                s,
                order,
                OrderEvent.HOLD,
                acting,
                principal,
                {"reason": why.value, "note": note},
                waiting_reason=why.value,
                note=note,
            )
            self._invalidate_approvals(s, order, principal, acting)

    def resubmit(self, principal: Principal, order_id: int) -> None:
        with self.db.write() as s:
            order = self._order(s, order_id, principal, lock=True)
            role = self._own_or(principal, order.applicant_account_id, Role.RA_OFFICER)
            self._transition(s, order, OrderEvent.RESUBMIT, role, principal, waiting_reason=None)

    def reject(self, principal: Principal, order_id: int, reason: str) -> None:
        acting = principal.require(Role.RA_OFFICER)
        if not reason.strip():
            raise RAError(RAErrorKind.MALFORMED, "a rejection needs a reason")
        with self.db.write() as s:
            order = self._order(s, order_id, principal, lock=True)
            self._transition(s, order, OrderEvent.REJECT, acting, principal, {"reason": reason}, note=reason)

    def cancel(self, principal: Principal, order_id: int) -> None:
        with self.db.write() as s:
            order = self._order(s, order_id, principal, lock=True)
            role = self._own_or(principal, order.applicant_account_id, Role.RA_OFFICER)
            self._transition(s, order, OrderEvent.CANCEL, role, principal)

    # -- approval ------------------------------------------------------------------------------

    def _subject_person(self, s: UnitOfWork, order: OrderRec) -> PersonData:
        p = repo.person_get(s, order.person_id)
        return PersonData(p.given_names, p.surname, p.date_of_birth)

    def readiness(self, s: UnitOfWork, order: OrderRec) -> tuple[list[Finding], dict[str, SubjectInput]]:
        """Everything approval needs: the method, identity, OZB, signatory, chamber and the CA's
        subject rules per slot.  Returns the blocking findings and the subject per slot."""
        if order.kind == OrderKind.FOLLOW_UP:
            return self.followups.readiness(s, order)
        product = self._product(order.product)
        out: list[Finding] = []

        def missing(code: str, message: str) -> None:
            out.append(Finding(Severity.ERROR, f"qtsp.ra.order.{code}", message))

        try:
            check_method(product, IdentMethod(order.method), OrderKind(order.kind))
        except RAError as exc:
            missing("method", exc.detail)
        unconfirmed = email_confirmation.finding(s, order)
        if unconfirmed is not None:
            out.append(unconfirmed)
        person = self._subject_person(s, order)
        now = self.clock()
        identity = repo.identity_get(s, order.id)
        evidence: IdentityEvidence | None = None
        if identity is None:
            missing("identity_missing", "no identity evidence recorded")
        else:
            evidence = IdentityEvidence.from_record(identity)
            out += errors_in(
                identity_findings(
                    evidence, person, method=IdentMethod(order.method), submitted_at=order.submitted_at, now=now
                )
            )
            if evidence.expires_on <= now.date():
                missing("identity_expired", "the identity document has expired since it was verified")
        org = repo.org_get(s, order.organisation_id) if order.organisation_id is not None else None
        if org is not None and product.subject_kind == "natural":
            ozb = repo.ozb_get(s, order.id)
            if ozb is None:
                missing("ozb_missing", f"REG-6.2.2-09: no OZB signed for {org.name}")
            else:
                sig = next((x for x in org.signatories if x.id == ozb.signatory_id), None)
                out += errors_in(
                    ozb_findings(
                        OzbData(
                            None
                            if sig is None
                            else SignatoryData(sig.given_names, sig.surname, sig.date_of_birth, sig.role),
                            ozb.signed_by,
                            ozb.signed_on,
                            ozb.document_sha256,
                            ozb.organisation_agrees,
                            ozb.person_agrees,
                        ),
                        now=now,
                    )
                )
        if org is not None and product.subject_kind == "legal":
            try:
                self._require_signatory(s, order.person_id, org, product)
            except RAError as exc:
                missing("not_signatory", exc.detail)
        admission: AdmissionInput | None = None
        if product.professional:
            chamber = repo.chamber_get(s, order.id)
            if chamber is None:
                missing("chamber_missing", "no chamber confirmation for the professional attribute")
            else:
                admission = admission_from(
                    ChamberConfirmation(
                        chamber.chamber,
                        chamber.registration_number,
                        chamber.profession,
                        chamber.profession_oid,
                        chamber.confirmed_on,
                    )
                )
        subjects: dict[str, SubjectInput] = {}
        if errors_in(out):
            return out, subjects
        for slot in product.slots:
            subject = self._subject(order, product, slot.profile, person, evidence, org, admission)
            for f in errors_in(self.ca.subject_findings(slot.profile, subject)):
                missing("subject", f"slot {slot.name}: {f.message}")
            subjects[slot.name] = subject
        return out, subjects

    def _subject(
        self,
        order: OrderRec,
        product: Product,
        profile: str,
        person: PersonData,
        evidence: IdentityEvidence | None,
        org: OrganisationRec | None,
        admission: AdmissionInput | None,
    ) -> SubjectInput:
        options = self.ca.profile_options(profile)
        if product.subject_kind == "legal":
            assert org is not None
            return SubjectInput(
                countryName=org.country,
                organizationName=org.name,
                organizationIdentifier=org.identifier,
                commonName=order.common_name,
            )
        assert evidence is not None
        id_type = evidence.document_type.identifier_type
        given, surname = evidence.given_names, evidence.surname
        return SubjectInput(
            countryName=order.country,
            commonName=f"{given} {surname}"[:64],
            givenName=given,
            surname=surname,
            # EN 319 412-1 §5.1.3: the identity document as semantics identifier (IDC/PAS).
            serialNumber=f"{id_type}{evidence.issuing_state}-{evidence.document_number}" if id_type else None,
            organizationName=org.name if org is not None and options.allow_organization else None,
            organizationIdentifier=org.identifier if org is not None and options.allow_organization else None,
            email=order.email if options.allow_email else None,
            admission=admission if options.allow_admission else None,
        )

    @staticmethod
    def _dn_key(subject: SubjectInput) -> tuple[str, str]:
        dn = {
            k: v
            for k, v in (
                ("C", subject.countryName),
                ("CN", subject.commonName),
                ("GN", subject.givenName),
                ("SN", subject.surname),
                ("serialNumber", subject.serialNumber),
                ("O", subject.organizationName),
                ("organizationIdentifier", subject.organizationIdentifier),
            )
            if v is not None
        }
        text = json.dumps(dn, sort_keys=True, ensure_ascii=False)
        return sha256_text(text), text

    def approve(self, principal: Principal, order_id: int) -> ApprovalResult:
        """Approve an order; with the last approval it needs (two different RA officers where the
        product demands it) the order goes into production and its issuance orders are frozen.

        Nobody approves their own order or one in which they are the subject (EN 319 411-1
        REG-6.2.2-26).
        """
        acting = principal.require(Role.RA_OFFICER, second_factor=True)
        remote: list[SlotRec] = []
        with self.db.write() as s:
            order = self._order(s, order_id, principal, lock=True)
            product = self._product(order.product)
            order_transition(OrderState(order.state), OrderEvent.APPROVE, acting)  # refuses early
            if order.kind == OrderKind.RENEWAL:
                raise RAError(
                    RAErrorKind.ILLEGAL_TRANSITION,
                    f"order {order_id} is an online renewal: approve it with POST /api/renewals/{order_id}/approve",
                )
            if principal.account_id is not None and principal.account_id == order.applicant_account_id:
                raise RAError(RAErrorKind.FORBIDDEN, "nobody approves their own order")
            subject_person = self._subject_person(s, order)
            approver = repo.person_get(s, principal.person_id) if principal.person_id is not None else None
            if principal.person_id == order.person_id or (
                approver is not None
                and same_person(
                    PersonData(approver.given_names, approver.surname, approver.date_of_birth), subject_person
                )
            ):
                raise RAError(
                    RAErrorKind.FORBIDDEN, "nobody approves an order in which they are the subject or applicant"
                )
            done = repo.approvals(s, order.id)
            if principal.name in done:
                raise RAError(
                    RAErrorKind.CONFLICT, "you have already approved this order; a second, different RA officer must"
                )
            findings, subjects = self.readiness(s, order)
            if errors_in(findings):
                raise RAError(
                    RAErrorKind.POLICY_VIOLATION,
                    "not ready for approval: " + format_findings(findings),
                    tuple(findings),
                )
            now = self.clock()
            repo.approval_add(s, order.id, principal.name, now)
            approvals = (*done, principal.name)
            needed = 2 if product.four_eyes else 1
            if len(approvals) < needed:
                self._audit(
                    s,
                    principal,
                    acting,
                    "order.approval_recorded",
                    "order",
                    order.id,
                    {"approvals": list(approvals), "needed": needed},
                    at=now,
                )
                return ApprovalResult(order.state, approvals, needed)
            self._bind_dns(s, order, product, subjects, now)
            for slot in product.slots:
                key_location = "hsm" if product.delivery == "remote" else "card"
                slot_id = repo.slot_add(
                    s,
                    order_id=order.id,
                    name=slot.name,
                    profile=slot.profile,
                    subject_json=json.dumps(subject_to_json(subjects[slot.name]), sort_keys=True, ensure_ascii=False),
                    validity_days=order.validity_days,
                    key_location=key_location,
                    state="awaiting-csr",
                    csr_sha256=None,
                    hsm_key_label=f"remote-seal-order{order.id}-{slot.name}" if key_location == "hsm" else None,
                    issuer=None,
                    serial_hex=None,
                    on_hold=False,
                    not_after=None,
                    issued_at=None,
                )
                if key_location == "hsm":
                    remote.append(repo.slots(s, order.id)[-1])
                    assert remote[-1].id == slot_id
            state = self._transition(
                s,
                order,
                OrderEvent.APPROVE,
                acting,
                principal,
                {
                    "approvals": list(approvals),
                    "slots": {slot.name: slot.profile for slot in product.slots},
                    "subjects": {k: subject_to_json(v) for k, v in subjects.items()},
                },
            )
        for frozen in remote:
            csr = self.ca.remote_key_csr(frozen.hsm_key_label or "")
            self._issue_slot(principal, acting, order_id, frozen.name, csr)
        if remote:
            state = OrderState.DONE
        return ApprovalResult(state.value, approvals, needed)

    def _bind_dns(
        self, s: UnitOfWork, order: OrderRec, product: Product, subjects: Mapping[str, SubjectInput], now: dt.datetime
    ) -> None:
        """A DN is never reassigned to another person or organisation."""
        person_id = order.person_id if product.subject_kind == "natural" else None
        org_id = order.organisation_id if product.subject_kind == "legal" else None
        for subject in subjects.values():
            key, text = self._dn_key(subject)
            bound = repo.dn_binding(s, key)
            if bound is None:
                repo.dn_bind(
                    s,
                    subject_key=key,
                    subject_dn=text,
                    person_id=person_id,
                    organisation_id=org_id,
                    order_id=order.id,
                    at=now,
                )
            elif bound != (person_id, org_id):
                raise RAError(
                    RAErrorKind.POLICY_VIOLATION,
                    f"the subject DN {text} already belongs to another "
                    f"{'person' if person_id is not None else 'organisation'}; it is never reassigned",
                )

    # -- issuance per slot ---------------------------------------------------------------------

    def submit_csr(self, principal: Principal, order_id: int, slot_name: str, csr: bytes) -> SlotRec:
        """Card personalisation submits the CSR of one slot; the RA hands the frozen issuance order to the CA."""
        acting = principal.require(Role.CA_OPERATOR, second_factor=True)
        with self.db.read() as s:
            if self._order(s, order_id, principal).kind == OrderKind.RENEWAL:
                raise RAError(
                    RAErrorKind.ILLEGAL_TRANSITION,
                    "an online renewal is issued with the holder's CSR by the scheduled job on its chosen date",
                )
        return self._issue_slot(principal, acting, order_id, slot_name, csr)

    def _issue_slot(self, principal: Principal, acting: Role, order_id: int, slot_name: str, csr: bytes) -> SlotRec:
        """Mark the slot ``issuing`` under a fresh attempt reference, let the CA issue, record the result.

        The attempt reference travels to the CA's journal: if the process ends after the CA's commit
        and before the record here, :meth:`reconcile_issuing` finds the certificate by it, and a
        slot still ``issuing`` is never issued for again.
        """
        csr_digest = hashlib.sha256(csr).hexdigest()
        attempt_ref = f"ra:order:{order_id}:slot:{slot_name}:{uuid.uuid4().hex}"
        with self.db.write() as s:
            order = self._order(s, order_id, principal, lock=True)
            if order.state != OrderState.IN_PRODUCTION:
                raise RAError(RAErrorKind.ILLEGAL_TRANSITION, f"order {order_id} is not in production ({order.state})")
            slot = next((x for x in repo.slots(s, order.id) if x.name == slot_name), None)
            if slot is None:
                raise RAError(RAErrorKind.NOT_FOUND, f"order {order_id} has no slot {slot_name!r}")
            if slot.state != "awaiting-csr":
                raise RAError(RAErrorKind.CONFLICT, f"slot {slot_name} is {slot.state}, not awaiting a CSR")
            now = self.clock()
            repo.slot_update(
                s, slot.id, state="issuing", csr_sha256=csr_digest, evidence_ref=attempt_ref, issuing_since=now
            )
            qc_ident_method = self.followups.qc_ident_method(s, order.id) if order.kind == OrderKind.FOLLOW_UP else None
            self._audit(
                s,
                principal,
                acting,
                "slot.csr_submitted",
                "order",
                order.id,
                {"slot": slot_name, "csr_sha256": csr_digest, "evidence_ref": attempt_ref},
                at=now,
            )
        product = self._product(order.product)
        subject = SubjectInput.from_json_obj(json.loads(slot.subject_json))
        try:
            issued: IssuedRef = self.ca.issue(
                profile=slot.profile,
                csr=csr,
                subject=subject,
                actor=principal.actor(acting),
                validity_days=slot.validity_days,
                evidence_ref=attempt_ref,
                on_hold=product.delivery == "card",
                **({"qc_ident_method": qc_ident_method} if qc_ident_method else {}),
            )
        except Exception as exc:
            detail = exc.detail if isinstance(exc, RAError) else f"{type(exc).__name__}: {exc}"
            # The CA may have committed before the error reached us (a lost commit acknowledgement):
            # ask it first.  If even that fails, the slot stays issuing for reconcile_issuing.
            try:
                found = self.ca.find_issued(attempt_ref)
            except Exception:
                raise exc  # noqa: B904 (the CA's error is the answer; the slot stays issuing)
            if found is not None:
                return self._record_issued(
                    principal, acting, order_id, slot.id, attempt_ref, found, "slot.reconciled", {"after_error": detail}
                )
            self._reset_slot(principal, acting, order_id, slot.id, attempt_ref, "slot.issuance_refused", detail)
            if isinstance(exc, RAError):
                raise
            if hasattr(exc, "detail"):
                raise RAError(RAErrorKind.CA_REFUSED, f"the CA refused: {detail}") from None
            raise
        return self._record_issued(principal, acting, order_id, slot.id, attempt_ref, issued, "slot.issued")

    def _reset_slot(
        self,
        principal: Principal,
        acting: Role,
        order_id: int,
        slot_id: int,
        attempt_ref: str,
        action: str,
        reason: str,
    ) -> bool:
        """Put a slot still ``issuing`` under ``attempt_ref`` back to ``awaiting-csr`` (audited); False
        if it has moved on meanwhile (recorded or reset by someone else)."""
        with self.db.write() as s:
            order = self._order(s, order_id, principal, lock=True)
            slot = next((x for x in repo.slots(s, order.id) if x.id == slot_id), None)
            if slot is None or slot.state != "issuing" or slot.evidence_ref != attempt_ref:
                return False
            repo.slot_update(s, slot_id, state="awaiting-csr", csr_sha256=None, evidence_ref=None, issuing_since=None)
            self._audit(
                s,
                principal,
                acting,
                action,
                "order",
                order.id,
                {"slot": slot.name, "evidence_ref": attempt_ref, "reason": reason},
            )
            return True

    def _record_issued(
        self,
        principal: Principal,
        acting: Role,
        order_id: int,
        slot_id: int,
        attempt_ref: str,
        issued: IssuedRef,
        action: str,
        details: Mapping[str, JSONValue] | None = None,
    ) -> SlotRec:
        """Record the CA's certificate of attempt ``attempt_ref`` on the slot and continue the order's
        life cycle (card personalised once every slot is issued; a remote product is done at once)."""
        now = self.clock()
        with self.db.write() as s:
            order = self._order(s, order_id, principal, lock=True)
            product = self._product(order.product)
            slot = next(x for x in repo.slots(s, order.id) if x.id == slot_id)
            if slot.evidence_ref == attempt_ref and slot.state == "issued":
                return slot  # recorded meanwhile (reconciled by another process)
            if slot.evidence_ref != attempt_ref or slot.state != "issuing":
                raise RAError(
                    RAErrorKind.CONFLICT,
                    f"slot {slot.name} no longer waits for attempt {attempt_ref}; "
                    f"certificate {issued.issuer}:{issued.serial_hex} is not recorded on it",
                )
            repo.slot_update(
                s,
                slot.id,
                state="issued",
                issuer=issued.issuer,
                serial_hex=issued.serial_hex,
                on_hold=issued.on_hold,
                not_after=issued.not_after,
                issued_at=now,
                issuing_since=None,
            )
            self._audit(
                s,
                principal,
                acting,
                action,
                "order",
                order.id,
                {
                    "slot": slot.name,
                    "issuer": issued.issuer,
                    "serial": issued.serial_hex,
                    "on_hold": issued.on_hold,
                    "evidence_ref": attempt_ref,
                    **(details or {}),
                },
                at=now,
            )
            all_slots = repo.slots(s, order.id)
            if all(x.state == "issued" for x in all_slots):
                not_after = min(x.not_after for x in all_slots if x.not_after is not None)
                card_id = repo.card_add(
                    s,
                    order_id=order.id,
                    product=order.product,
                    holder_account_id=order.applicant_account_id,
                    state=CardState.NOT_ACTIVATED.value,
                    not_after=not_after,
                    created_at=now,
                    shipped_at=None,
                    activated_at=None,
                    revocation_requested_at=None,
                    revocation_reason=None,
                    revoked_at=None,
                )
                self._audit(
                    s,
                    principal,
                    acting,
                    "card.personalised",
                    "card",
                    card_id,
                    {"order_id": order.id, "serials": [f"{x.issuer}:{x.serial_hex}" for x in all_slots]},
                    at=now,
                )
                if product.delivery == "remote":
                    # No delivery: the key never leaves the HSM, the product is usable at once.
                    card_transition(CardState.NOT_ACTIVATED, CardEvent.ACTIVATE, Role.SYSTEM)
                    repo.card_update(s, card_id, state=CardState.VALID.value, activated_at=now)
                    self._audit(s, SYSTEM, Role.SYSTEM, "card.activated", "card", card_id, {"how": "remote"}, at=now)
                    self._transition(s, order, OrderEvent.COMPLETE, Role.SYSTEM, SYSTEM)
            return next(x for x in all_slots if x.id == slot.id)

    def reconcile_issuing(self, older_than: dt.timedelta = dt.timedelta(minutes=5)) -> ReconcileResult:
        """Settle slots left ``issuing`` longer than ``older_than`` by a process that ended between
        the CA's commit and the RA's record (or before the CA stored anything).

        Per slot the CA is asked about exactly the slot's attempt: a stored certificate is recorded
        as the normal path does (the order continues its life cycle); an attempt the CA still has
        journaled but not settled is left for a later run (the CA's recovery settles it); otherwise
        the slot goes back to ``awaiting-csr``, so the CSR can be submitted again.  Nothing is ever
        issued here.  ``older_than`` must exceed the longest issuance (default 5 minutes).
        """
        with self.db.read() as s:
            stale = repo.slots_issuing_before(s, self.clock() - older_than)
        recorded: list[int] = []
        reset: list[int] = []
        pending: list[int] = []
        for slot in stale:
            ref = slot.evidence_ref
            if ref is None:
                continue  # issuing since before attempt references existed: an operator settles it
            found = self.ca.find_issued(ref)
            if found is not None:
                self._record_issued(
                    SYSTEM, Role.SYSTEM, slot.order_id, slot.id, ref, found, "slot.reconciled", {"outcome": "recorded"}
                )
                recorded.append(slot.id)
            elif self.ca.in_flight(ref):
                pending.append(slot.id)
            elif self._reset_slot(
                SYSTEM,
                Role.SYSTEM,
                slot.order_id,
                slot.id,
                ref,
                "slot.issuance_abandoned",
                f"the CA stored no certificate for this attempt within {older_than}; the CSR may be submitted again",
            ):
                reset.append(slot.id)
        return ReconcileResult(tuple(recorded), tuple(reset), tuple(pending))

    def ship(self, principal: Principal, order_id: int) -> str | None:
        """The card leaves production; returns its transport PIN, the only time it is returned to
        card production (ra/transport_pin.py), or None for a product without a card."""
        acting = principal.require(Role.CA_OPERATOR)
        with self.db.write() as s:
            order = self._order(s, order_id, principal, lock=True)
            card = repo.card_by_order(s, order.id)
            if order.state == OrderState.IN_PRODUCTION and card is None:
                raise RAError(
                    RAErrorKind.CONFLICT, "the card is not personalised yet: every slot needs its certificate"
                )
            self._transition(s, order, OrderEvent.SHIP, acting, principal)
            assert card is not None
            repo.card_update(s, card.id, shipped_at=self.clock())
            return transport_pin.issue_on_ship(self, s, principal, acting, card.id, self._product(order.product))

    # ------------------------------------------------------------------------------------------
    # Cards

    def list_cards(self, principal: Principal) -> list[CardRec]:
        with self.db.read() as s:
            if principal.roles & {Role.RA_OFFICER, Role.REVOCATION_OFFICER, Role.CA_OPERATOR, Role.AUDITOR}:
                return repo.cards_list(s)
            principal.require(Role.APPLICANT)
            return repo.cards_list(s, account_id=principal.account_id)

    def get_card(self, principal: Principal, card_id: int) -> CardRec:
        with self.db.read() as s:
            card = self._card(s, card_id, principal)
        if not self._is_holder(principal, card):
            principal.require(Role.RA_OFFICER, Role.REVOCATION_OFFICER, Role.CA_OPERATOR, Role.AUDITOR)
        return card

    def confirm_receipt(self, principal: Principal, card_id: int) -> CardRec:
        """The holder confirms receipt: the card's certificates are activated."""
        with self.db.read() as s:
            card = self._card(s, card_id, principal)
        if not self._is_holder(principal, card):
            raise RAError(RAErrorKind.FORBIDDEN, "only the holder confirms receipt of a card")
        return self._activate(principal, Role.APPLICANT, card_id, "receipt confirmed")

    def purge_expired_copies(self, retention: dt.timedelta) -> list[int]:
        """Delete identity-document copies and renewal documents (contract, declaration, terms)
        received longer than ``retention`` ago, keeping their digests and every audit entry
        (TS 119 461 ISS-8.5.2-04/-08: kept for the retention period, then deleted).  Returns the
        orders whose copy or documents were deleted; each deletion is audited."""
        from ra.store import renewal_repo

        now = self.clock()
        with self.db.read() as s:
            due = repo.copies_due_purge(s, now - retention)
            documents = renewal_repo.documents_due_purge(s, now - retention)
        done: list[int] = []

        def purge(
            order_id: int, deleted: Callable[[UnitOfWork], bool], action: str, details: dict[str, JSONValue]
        ) -> None:
            with self.db.write() as s:
                if deleted(s):
                    self._audit(s, SYSTEM, Role.SYSTEM, action, "order", order_id, details)
                    done.append(order_id)

        for doc_id, order_id, kind, digest in documents:
            purge(
                order_id,
                functools.partial(renewal_repo.document_purge, document_id=doc_id, at=now),
                "order.renewal_document_purged",
                {"kind": kind, "sha256": digest, "retention_days": retention.days},
            )
        for order_id, digest in due:
            purge(
                order_id,
                functools.partial(repo.copy_purge, order_id=order_id, at=now),
                "order.copy_purged",
                {"sha256": digest, "retention_days": retention.days},
            )
        return list(dict.fromkeys(done))

    def activate_due(self) -> list[int]:
        """Activate every card shipped at least the configured delay ago (default 24 h)."""
        with self.db.read() as s:
            due = repo.cards_due_activation(s, self.clock() - self.activation_delay)
        done = []
        for card_id in due:
            self._activate(SYSTEM, Role.SYSTEM, card_id, f"automatic, {self.activation_delay} after shipping")
            done.append(card_id)
        return done

    def _activate(self, principal: Principal, role: Role, card_id: int, how: str) -> CardRec:
        with self.db.read() as s:
            card = self._card(s, card_id, principal)
            order = repo.order_get(s, card.order_id)
            assert order is not None
            card_slots = repo.slots(s, card.order_id)
        card_transition(CardState(card.state), CardEvent.ACTIVATE, role)
        if card.shipped_at is None:
            raise RAError(RAErrorKind.ILLEGAL_TRANSITION, "the card has not been shipped")
        # Release the CA's hold first: a card marked valid whose certificates stay on hold could not sign.
        for slot in card_slots:
            if slot.on_hold and slot.issuer and slot.serial_hex:
                try:
                    self.ca.activate(slot.issuer, slot.serial_hex, actor=principal.actor(role))
                except RAError:
                    raise
                except Exception as exc:
                    raise RAError(RAErrorKind.CA_REFUSED, f"the CA refused activation: {exc}") from None
        now = self.clock()
        with self.db.write() as s:
            card = self._card(s, card_id, principal, lock=True)
            target = card_transition(CardState(card.state), CardEvent.ACTIVATE, role)
            repo.card_update(s, card.id, state=target.value, activated_at=now)
            self._audit(s, principal, role, "card.activated", "card", card.id, {"how": how}, at=now)
            order = repo.order_get(s, card.order_id, lock=True)
            assert order is not None
            if order.state == OrderState.SHIPPED:
                self._transition(s, order, OrderEvent.COMPLETE, role, principal)
            result = repo.card_get(s, card.id)
            assert result is not None
            return result

    # -- revocation requests (EN 319 411-1 REV-6.2.4-xx, REV-6.3.9-xx, REV-6.4.5-09) ----------

    def set_revocation_password(
        self, principal: Principal, card_id: int, password: str, authorised_person: str | None = None
    ) -> dt.datetime:
        """The holder sets (or changes) the card's revocation password and names who may use it.
        Stored as an Argon2 hash only; neither the API nor the audit log ever return it."""
        now = self.clock()
        with self.db.read() as s:
            card = self._card(s, card_id, principal)
        if not self._is_holder(principal, card):
            raise RAError(RAErrorKind.FORBIDDEN, "only the holder sets a card's revocation password")
        if card.state not in (CardState.NOT_ACTIVATED, CardState.VALID):
            raise RAError(RAErrorKind.ILLEGAL_TRANSITION, f"a card in state {card.state} cannot be revoked")
        hashed = hash_password(password)
        person = (authorised_person or "").strip() or None
        with self.db.write() as s:
            self._card(s, card_id, principal, lock=True)
            repo.revocation_password_put(
                s, card_id, password_hash=hashed, authorised_person=person, set_at=now, set_by=principal.name
            )
            self._audit(
                s,
                principal,
                Role.APPLICANT,
                "card.revocation_password_set",
                "card",
                card_id,
                {"authorised_person": person},
                at=now,
            )
        return now

    def issue_revocation_password(
        self, principal: Principal, card_id: int, authorised_person: str, postal_address: str
    ) -> tuple[dt.datetime, str]:
        """The D-Trust model: the RA generates the card's revocation password and posts it to the
        person authorised to revoke, whom the holder, or an RA officer for the organisation of an
        affiliated card, names (seed 000: "a person authorised to revoke is kept on file for the
        organisation and is given a revocation password").  Replaces any earlier password.

        The password exists in clear only inside the encrypted outbox letter, queued in the same
        transaction as its Argon2 hash; it is never returned or audited.

        :returns: when it was set, and the letter's outbox reference.
        """
        person = " ".join(authorised_person.split())
        if not 1 <= len(person) <= 128:
            raise RAError(RAErrorKind.MALFORMED, "authorised_person: 1 to 128 characters")
        address = normalise_postal_address(postal_address)
        with self.db.read() as s:
            card = self._card(s, card_id, principal)
            order = repo.order_get(s, card.order_id)
        assert order is not None
        if self._is_holder(principal, card):
            role = Role.APPLICANT
        else:
            role = principal.require(Role.RA_OFFICER, second_factor=True)
            if order.organisation_id is None:
                raise RAError(
                    RAErrorKind.POLICY_VIOLATION,
                    "the card is not affiliated with an organisation: only its holder names who may revoke it",
                )
        if card.state not in (CardState.NOT_ACTIVATED, CardState.VALID):
            raise RAError(RAErrorKind.ILLEGAL_TRANSITION, f"a card in state {card.state} cannot be revoked")
        password = new_letter_secret()
        hashed = hash_password(password)
        now = self.clock()
        text = (
            f"Revocation password for card {card_id} ({order.product})\n\n"
            f"Dear {person},\n\nyou are authorised to request the revocation of card {card_id}. "
            f"Your revocation password is:\n\n    {password}\n\n"
            "Keep this letter safe and separate from the card. Use the password only to revoke the card "
            "(POST /api/revocations with the card number, the password, the reason and your name). "
            "It replaces any earlier revocation password of this card."
        )
        with self.db.write() as s:
            self._card(s, card_id, principal, lock=True)
            repo.revocation_password_put(
                s, card_id, password_hash=hashed, authorised_person=person, set_at=now, set_by=principal.name
            )
            reference = self.outbox.enqueue(
                s,
                channel=Channel.POST,
                purpose="revocation-password",
                recipient=f"{person}\n{address}",
                text=text,
                card_id=card_id,
            )
            self._audit(
                s,
                principal,
                role,
                "card.revocation_password_issued",
                "card",
                card_id,
                {"authorised_person": person, "letter": reference, "recipient": mask_recipient(person)},
                at=now,
            )
        return now, reference

    def revocation_requests(self, principal: Principal, card_id: int) -> list[dict[str, JSONValue]]:
        """A card's revocation requests with their decisions: the holder sees their own card's,
        officers and auditors every card's (client addresses for officers and auditors only)."""
        with self.db.read() as s:
            card = self._card(s, card_id, principal)
            if not self._is_holder(principal, card):
                principal.require(Role.REVOCATION_OFFICER, Role.RA_OFFICER, Role.AUDITOR)
            rows = repo.revocation_requests(s, card_id)
        holder = principal.account_id == card.holder_account_id and not principal.roles & OPERATOR_ROLES
        return [
            {
                k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                for k, v in row.items()
                if not (holder and k == "client_address")
            }
            for row in rows
        ]

    def _requester(self, principal: Principal, card: CardRec) -> tuple[Role, str, str]:
        """The acting role, the requester kind and how the caller was authenticated."""
        if self._is_holder(principal, card):
            return Role.APPLICANT, "holder", "session-totp" if principal.second_factor else "session"
        role = principal.require(Role.REVOCATION_OFFICER, Role.RA_OFFICER, second_factor=True)
        return role, "revocation-officer" if role is Role.REVOCATION_OFFICER else "organisation", "session-totp"

    def request_revocation(
        self, principal: Principal, card_id: int, reason: str, requester_name: str | None = None
    ) -> CardRec:
        """A revocation request by the holder, a revocation officer (any reason, incl.
        privilegeWithdrawn) or an RA officer for the organisation of an affiliated card
        (affiliationChanged).  Recorded as in progress with its receipt time, then revoked at the CA.

        Every request is recorded with its decision, refused ones too, in the same transaction as
        its effects and audited (REV-6.4.5-09).  If the CA cannot be reached the card stays
        "revocation in progress" and the error is raised; the request itself is never lost.
        """
        if reason not in _OFFICER_REASONS:
            raise RAError(RAErrorKind.MALFORMED, f"reason must be one of {', '.join(sorted(_OFFICER_REASONS))}")
        received = self.clock()
        refusal: RAError | None = None
        with self.db.write() as s:
            card = self._card(s, card_id, principal, lock=True)
            role, kind, auth_by = self._requester(principal, card)
            requester = principal.name
            if kind == "organisation":
                order = repo.order_get(s, card.order_id)
                assert order is not None
                if requester_name:
                    requester = f"{principal.name} for {requester_name.strip()[:100]}"
                if order.organisation_id is None:
                    refusal = RAError(
                        RAErrorKind.POLICY_VIOLATION,
                        "the certificate is not affiliated with an organisation: the organisation may not revoke it",
                    )
                elif reason not in _ORGANISATION_REASONS:
                    refusal = RAError(RAErrorKind.POLICY_VIOLATION, "the organisation revokes for affiliationChanged")
            elif kind == "holder" and reason not in _REVOCATION_REASONS:
                refusal = RAError(RAErrorKind.POLICY_VIOLATION, f"the holder may not revoke for {reason}")
            request_id, slots_, refusal = self._decide(
                s, principal, role, card, reason, received, kind, requester, auth_by, None, refusal
            )
        if refusal is not None:
            raise refusal
        return self._complete_revocation(principal, role, card_id, slots_, reason, received, request_id)

    def revoke_with_password(
        self,
        card_id: int,
        password: str,
        reason: str,
        requester_name: str,
        client_address: str | None = None,
    ) -> tuple[int, CardRec]:
        """A revocation request by the card's revocation-authorised person, authenticated by the
        revocation password (REV-6.2.4-09) without an account.

        The password is checked with Argon2 even when the card or its password does not exist, and
        an unknown card and a wrong password give the same answer.  Wrong passwords are recorded
        and rate-limited per card and per client address in the database; within the window even
        the right password is refused.

        :returns: the request id and the card after revocation.
        :raises RAError: FORBIDDEN (unknown card or wrong password), RATE_LIMITED, ILLEGAL_TRANSITION.
        """
        if reason not in _REVOCATION_REASONS:
            raise RAError(RAErrorKind.MALFORMED, f"reason must be one of {', '.join(sorted(_REVOCATION_REASONS))}")
        requester = f"revocation-authorised:{requester_name.strip()[:200]}"
        principal = Principal(name=requester, roles=frozenset({Role.SYSTEM}))
        address = client_address[:64] if client_address else None
        received = self.clock()
        with self.db.read() as s:
            stored = repo.revocation_password_get(s, card_id)
        right = verify_password(stored[0] if stored else self._dummy(), password) and stored is not None
        refusal: RAError | None = None
        with self.db.write() as s:
            # The card row lock serialises concurrent attempts on one card before they are counted.
            card = repo.card_get(s, card_id, lock=True) if stored else None
            if address is not None:
                repo.serialise_limit(s, f"address:{address}")
            retry = self._password_retry_after(s, card.id if card else None, address, received)
            failed = False
            if retry is not None:
                refusal = RAError(
                    RAErrorKind.RATE_LIMITED,
                    "too many wrong revocation passwords: try again later",
                    retry_after=retry,
                )
            elif card is None or not right:
                failed = True
                refusal = RAError(RAErrorKind.FORBIDDEN, "unknown card or wrong revocation password")
            if card is None:
                assert refusal is not None
                self._record_refused_unknown(s, principal, card_id, received, requester, address, reason, refusal)
                request_id, slots_ = 0, list[SlotRec]()
            else:
                request_id, slots_, refusal = self._decide(
                    s,
                    principal,
                    Role.SYSTEM,
                    card,
                    reason,
                    received,
                    "authorised-person",
                    requester,
                    "revocation-password",
                    address,
                    refusal,
                    auth_failed=failed,
                )
        if refusal is not None:
            raise refusal
        return request_id, self._complete_revocation(
            principal, Role.SYSTEM, card_id, slots_, reason, received, request_id
        )

    def _password_retry_after(
        self, s: UnitOfWork, card_id: int | None, address: str | None, now: dt.datetime
    ) -> int | None:
        """Seconds until the oldest counted failure leaves the window, when a limit is reached."""
        failures = repo.revocation_failures(s, now - PASSWORD_WINDOW, card_id=card_id, client_address=address)
        per_card = [at for c, _, at in failures if card_id is not None and c == card_id]
        per_address = [at for _, a, at in failures if address is not None and a == address]
        return retry_after(
            now,
            PASSWORD_WINDOW,
            [(per_card, PASSWORD_FAILURES_PER_CARD), (per_address, PASSWORD_FAILURES_PER_ADDRESS)],
        )

    def _record_refused_unknown(
        self,
        s: UnitOfWork,
        principal: Principal,
        card_ref: int,
        received: dt.datetime,
        requester: str,
        address: str | None,
        reason: str,
        refusal: RAError,
        *,
        requester_kind: str = "authorised-person",
        authenticated_by: str = "revocation-password",
    ) -> None:
        """Record (and audit) a refused request for a card that does not exist (REV-6.4.5-09:
        every request is recorded; ``card_ref`` keeps what was asked for)."""
        request_id = repo.revocation_request_add(
            s,
            card_id=None,
            card_ref=str(card_ref),
            received_at=received,
            requester_kind=requester_kind,
            requester=requester,
            authenticated_by=authenticated_by,
            auth_failed=refusal.kind is RAErrorKind.FORBIDDEN,
            client_address=address,
            reason=reason,
            decision="refused",
            decided_at=received,
            detail=refusal.detail,
        )
        self._audit(
            s,
            principal,
            Role.SYSTEM,
            "card.revocation_refused",
            "card",
            card_ref,
            {
                "request": request_id,
                "requester_kind": requester_kind,
                "authenticated_by": authenticated_by,
                "reason": reason,
                "detail": refusal.detail,
            },
            at=received,
        )

    def _decide(
        self,
        s: UnitOfWork,
        principal: Principal,
        role: Role,
        card: CardRec,
        reason: str,
        received: dt.datetime,
        kind: str,
        requester: str,
        auth_by: str,
        address: str | None,
        refusal: RAError | None,
        *,
        auth_failed: bool = False,
    ) -> tuple[int, list[SlotRec], RAError | None]:
        """Record the request and its decision, and on acceptance move the card to revocation in
        progress with the receipt time (REV-6.2.4-03A counts from it), all in the caller's
        transaction.  Returns the request id, the slots to revoke and the refusal, if any."""
        target: CardState | None = None
        if refusal is None:
            try:
                target = card_transition(CardState(card.state), CardEvent.REQUEST_REVOCATION, role)
            except RAError as exc:
                refusal = exc
        decision = "refused" if refusal is not None else "accepted"
        request_id = repo.revocation_request_add(
            s,
            card_id=card.id,
            card_ref=str(card.id),
            received_at=received,
            requester_kind=kind,
            requester=requester[:255],
            authenticated_by=auth_by,
            auth_failed=auth_failed,
            client_address=address,
            reason=reason,
            decision=decision,
            decided_at=received,
            detail=refusal.detail[:255] if refusal is not None else None,
        )
        details: dict[str, JSONValue] = {
            "request": request_id,
            "requester_kind": kind,
            "requester": requester[:255],
            "authenticated_by": auth_by,
            "reason": reason,
        }
        if refusal is not None:
            self._audit(
                s,
                principal,
                role,
                "card.revocation_refused",
                "card",
                card.id,
                {**details, "detail": refusal.detail},
                at=received,
            )
            return request_id, [], refusal
        assert target is not None
        repo.card_update(s, card.id, state=target.value, revocation_requested_at=received, revocation_reason=reason)
        transport_pin.destroy(self, s, principal, role, card.id, "revoked")
        self._audit(s, principal, role, "card.revocation_requested", "card", card.id, details, at=received)
        return request_id, repo.slots(s, card.order_id), None

    def _complete_revocation(
        self,
        principal: Principal,
        role: Role,
        card_id: int,
        card_slots: list[SlotRec],
        reason: str,
        received: dt.datetime,
        request_id: int,
    ) -> CardRec:
        """Carry the accepted request out through the CA revocation service, with the request's
        receipt time (REV-6.2.4-03A, REV-6.3.9-01); the request is then marked carried out.

        Idempotent: a certificate the CA already shows revoked (an earlier attempt that ended
        after the CA's commit, or a CA operator) is not revoked again."""
        for slot in card_slots:
            if slot.issuer and slot.serial_hex:
                try:
                    if self.ca.certificate_status(slot.issuer, slot.serial_hex) == "revoked":
                        continue
                    self.ca.revoke(
                        slot.issuer, slot.serial_hex, reason, actor=principal.actor(role), received_at=received
                    )
                except RAError:
                    raise
                except Exception as exc:
                    raise RAError(RAErrorKind.CA_REFUSED, f"the CA refused revocation: {exc}") from None
        now = self.clock()
        with self.db.write() as s:
            card = self._card(s, card_id, principal, lock=True)
            target = card_transition(CardState(card.state), CardEvent.REVOKED, role)
            repo.card_update(s, card.id, state=target.value, revoked_at=now)
            repo.revocation_request_update(s, request_id, decision="carried-out", carried_out_at=now)
            self._audit(
                s,
                principal,
                role,
                "card.revoked",
                "card",
                card.id,
                {
                    "reason": reason,
                    "request": request_id,
                    "serials": [f"{x.issuer}:{x.serial_hex}" for x in card_slots],
                },
                at=now,
            )
            result = repo.card_get(s, card.id)
            assert result is not None
            return result

    def complete_pending_revocations(
        self, older_than: dt.timedelta = dt.timedelta(minutes=1), limit: int = 100
    ) -> tuple[list[int], list[int]]:
        """Carry out accepted revocation requests that were not (the CA was unreachable, or the
        process ended between acceptance and the CA's revocation): the scheduled RA job retries
        them until done, with the original receipt time, so the 24 h of REV-6.2.4-03A are kept
        or their breach is visible (``qtsp_ra_revocations_pending_oldest_seconds``).

        :returns: the requests carried out now, and those still failing.
        """
        now = self.clock()
        with self.db.read() as s:
            pending = repo.revocation_requests_pending(s, now - older_than, limit)
        done: list[int] = []
        failing: list[int] = []
        system = Principal(name="system:revocation-retry", roles=frozenset({Role.SYSTEM}))
        for row in pending:
            request_id, card_id = int(row["id"]), row["card_id"]
            if card_id is None:
                continue
            with self.db.read() as s:
                card = repo.card_get(s, card_id)
                slots_ = repo.slots(s, card.order_id) if card is not None else []
            if card is None or card.state != CardState.REVOCATION_IN_PROGRESS:
                # Carried out by a later request for the same card: this one is settled with it.
                with self.db.write() as s:
                    repo.revocation_request_update(s, request_id, decision="carried-out", carried_out_at=now)
                    details: dict[str, JSONValue] = {"request": request_id, "card_state": card.state if card else None}
                    self._audit(
                        s, system, Role.SYSTEM, "card.revocation_request_settled", "card", card_id, details, at=now
                    )
                done.append(request_id)
                continue
            try:
                self._complete_revocation(
                    system, Role.SYSTEM, card_id, slots_, str(row["reason"]), row["received_at"], request_id
                )
            except RAError as exc:
                log.warning(
                    "revocation request %s for card %s still not carried out: %s", request_id, card_id, exc.detail
                )
                failing.append(request_id)
            else:
                done.append(request_id)
        return done, failing

    def expire_due(self) -> list[int]:
        now = self.clock()
        out: list[int] = []
        with self.db.write() as s:
            for card_id in repo.cards_due_expiry(s, now):
                card = repo.card_get(s, card_id, lock=True)
                assert card is not None
                target = card_transition(CardState(card.state), CardEvent.EXPIRE, Role.SYSTEM)
                repo.card_update(s, card_id, state=target.value)
                self._audit(s, SYSTEM, Role.SYSTEM, "card.expired", "card", card_id, {}, at=now)
                transport_pin.destroy(self, s, SYSTEM, Role.SYSTEM, card_id, "expired")
                out.append(card_id)
        return out

    # ------------------------------------------------------------------------------------------
    # Audit (read)

    def audit_events(self, principal: Principal, *, limit: int = 100) -> list[repo.AuditRow]:
        principal.require(Role.AUDITOR, Role.SECURITY_OFFICER)
        with self.db.read() as s:
            return repo.audit_events(s, limit=limit)
