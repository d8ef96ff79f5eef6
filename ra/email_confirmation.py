"""Email confirmation: a code mailed to an address comes back before the address is relied on.

* **Order addresses** (seed 004, CenCert: "an automatically generated message to confirm the
  application and verify the e-mail address"): before an email address is certified — the
  rfc822Name and emailProtection of the UPC card's authentication certificate, the products with
  ``email = true`` in ra/products.toml — the applicant shows that mail sent there reaches them.
  EN 319 411-1 REG-6.2.2-02A: the specific attributes a certificate states are verified, and an
  email address in subjectAltName is one (STANDARDS.md §1.4).  Ordering such a product mails the
  code in the order's own transaction (outbox, ra/outbox.py); approval refuses the order until it
  is confirmed (:func:`finding`, in ``RAService.readiness``).  A confirmation counts only for the
  address it was mailed to, exactly as it will appear in the certificate.
* **Account addresses** (seed 001, D-Trust: "Nach der Registrierung schicken wir Ihnen an diese
  E-Mail-Adresse einen Bestätigungslink ... um Ihren Account ... zu aktivieren"): a new applicant
  account is inactive until its code comes back (``RAService.register_applicant``, ``login``).

Rules:

* **The code.** 192 bits from a CSPRNG (``secrets.token_urlsafe(24)``), valid 7 days, single use;
  only its SHA-256 is stored (with that much entropy a plain hash protects a copy of the
  database as well as a keyed one would).  Whoever reads the mailbox may confirm: the code is
  presented without a login (``POST /api/email-confirmations``), so a portal page behind the
  link can submit it.  Unknown, used, superseded and expired codes get one answer.
* **Again.** Three mails per order (the applicant, or an RA officer for them) or account (anyone
  who names the address: it cannot log in yet) and day; the new mail supersedes the old, and an
  old mail still queued is withdrawn.
* **Secrets never leave.** The code appears in the email only, never in a response, a log line
  or the audit log.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ca.audit.chain import JSONValue
from ca.findings import Finding, Severity
from ca.store.db import UnitOfWork
from ra.credentials import sha256_text
from ra.errors import RAError, RAErrorKind
from ra.outbox import Channel, mask_recipient
from ra.rate_limit import retry_after
from ra.records import OrderRec
from ra.roles import Principal, Role
from ra.store import email_repo
from ra.store import repository as repo

if TYPE_CHECKING:
    from ra.service import RAService

__all__ = [
    "ACCOUNT_ANSWER",
    "CONFIRMATION_VALIDITY",
    "RESENDS_PER_DAY",
    "Confirmed",
    "EmailConfirmations",
    "MailedConfirmation",
    "code_in_mail",
    "finding",
]

CONFIRMATION_VALIDITY: Final = dt.timedelta(days=7)
RESENDS_PER_DAY: Final = 3
_RESEND_WINDOW: Final = dt.timedelta(days=1)
_PURPOSE: Final = "email-confirmation"
_MAX_TOKEN: Final = 128
#: The one answer to an account registration or a request for a new activation code.
ACCOUNT_ANSWER: Final = (
    "if the address can be used, a mail with the code that activates the account has been sent to it"
)
#: The one answer to a token that confirms nothing.
REFUSAL: Final = "unknown, used or expired confirmation link: have a new one sent from your order"


@dataclass(frozen=True, slots=True)
class MailedConfirmation:
    order_id: int | None
    account_id: int | None
    sent_to: str
    """The masked address (``pa***@patent.example``)."""
    expires_at: dt.datetime
    reference: str
    """The email's outbox reference."""


@dataclass(frozen=True, slots=True)
class Confirmed:
    order_id: int | None
    """The order whose address was confirmed, or None for an account's."""
    account_id: int | None
    """The account activated, or None for an order's address."""
    email: str
    """Masked."""
    confirmed_at: dt.datetime


def code_in_mail(text: str) -> str:
    """The code in a confirmation mail's text (the indented line after the first paragraph, as
    :meth:`EmailConfirmations._send_code` writes it): for a spool reader, the demo and the tests."""
    return text.split("\n\n    ", 1)[1].split("\n", 1)[0]


def confirmed_at(s: UnitOfWork, order_id: int, email: str) -> dt.datetime | None:
    """When ``email`` (exactly as the certificate will carry it) was confirmed for the order, or None."""
    return email_repo.confirmed_at(s, order_id, email)


def finding(s: UnitOfWork, order: OrderRec) -> Finding | None:
    """The approval gate: an error while the order's email address is unconfirmed."""
    if order.email is None or confirmed_at(s, order.id, order.email) is not None:
        return None
    return Finding(
        Severity.ERROR,
        "qtsp.ra.order.email_unconfirmed",
        f"EN 319 411-1 REG-6.2.2-02A: the email address {mask_recipient(order.email)} goes into the "
        "certificate and is not confirmed yet: the applicant follows the link mailed to it "
        f"(again: POST /api/orders/{order.id}/email-confirmation)",
    )


@dataclass
class EmailConfirmations:
    """Email confirmation on top of :class:`ra.service.RAService` (its database, clock, outbox, audit)."""

    ra: RAService

    def mail(self, s: UnitOfWork, order: OrderRec, principal: Principal, at: dt.datetime) -> MailedConfirmation:
        """Mail a new confirmation code for the order's address in the caller's transaction; the
        pending one is superseded (its email withdrawn if still queued)."""
        assert order.email is not None
        product = self.ra._product(order.product)
        return self._send_code(
            s,
            order_id=order.id,
            account_id=None,
            email=order.email,
            outbox_account=order.applicant_account_id,
            lead=f"You ordered a {product.title} (order {order.id}) and gave this address to appear in its "
            "certificate. If that was you, confirm the address with this code on the order's confirmation page",
            ignore="If you did not order anything, ignore this mail.",
            principal=principal,
            role=Role.APPLICANT if Role.APPLICANT in principal.roles else Role.RA_OFFICER,
            at=at,
        )

    def mail_account(self, s: UnitOfWork, account_id: int, email: str, at: dt.datetime) -> MailedConfirmation:
        """Mail the code that activates a new applicant account (seed 001), in the caller's transaction."""
        return self._send_code(
            s,
            order_id=None,
            account_id=account_id,
            email=email,
            outbox_account=account_id,
            lead="An applicant account was opened with this address. If that was you, activate it with this "
            "code on the portal's confirmation page",
            ignore="If you did not open an account, ignore this mail: without the code it stays inactive.",
            principal=Principal(name=f"account:{account_id}:{email}", roles=frozenset()),
            role=Role.APPLICANT,
            at=at,
        )

    def notify(self, s: UnitOfWork, email: str, purpose: str, text: str) -> str:
        """Queue a plain notice (no code) to ``email``, e.g. "an account with this address exists"."""
        return self.ra.outbox.enqueue(s, channel=Channel.EMAIL, purpose=purpose, recipient=email, text=text)

    def _send_code(
        self,
        s: UnitOfWork,
        *,
        order_id: int | None,
        account_id: int | None,
        email: str,
        outbox_account: int | None,
        lead: str,
        ignore: str,
        principal: Principal,
        role: Role,
        at: dt.datetime,
    ) -> MailedConfirmation:
        superseded = []
        for old in email_repo.pending(s, order_id, account_id=account_id):
            self.ra.outbox.cancel(s, old.outbox_ref)
            superseded.append(old.id)
        email_repo.supersede(s, superseded)
        token = secrets.token_urlsafe(24)
        expires = at + CONFIRMATION_VALIDITY
        text = (
            f"{lead} (POST {self.ra.public_base_url.rstrip('/')}/api/email-confirmations):\n\n    {token}\n\n"
            f"It is valid until {expires:%Y-%m-%d %H:%M} UTC, once. {ignore}"
        )
        reference = self.ra.outbox.enqueue(
            s, channel=Channel.EMAIL, purpose=_PURPOSE, recipient=email, text=text, account_id=outbox_account
        )
        confirmation_id = email_repo.add(
            s,
            order_id=order_id,
            account_id=account_id,
            email=email,
            token_sha256=sha256_text(token),
            at=at,
            expires_at=expires,
            requested_by=principal.name[:255],
            outbox_ref=reference,
        )
        kind, object_id = _subject(order_id, account_id)
        self.ra._audit(
            s,
            principal,
            role,
            f"{kind}.email_confirmation_sent",
            kind,
            object_id,
            {
                "confirmation": confirmation_id,
                "sent_to": mask_recipient(email),
                "email_sha256": sha256_text(email),
                "expires_at": expires.isoformat(),
                "outbox": reference,
                "superseded": list(superseded),
            },
            at=at,
        )
        return MailedConfirmation(order_id, account_id, mask_recipient(email), expires, reference)

    def resend_account(self, email: str, client_address: str | None = None, *, dispatch: bool = True) -> None:
        """Mail a new activation code to an applicant account that is not active yet (no login: it
        cannot log in).  Says nothing: the caller is told the same whatever the address (see
        :data:`ACCOUNT_ANSWER`); three mails per account and day, beyond which nothing is sent."""
        email = email.strip().lower()
        now = self.ra.clock()
        sent = False
        with self.ra.db.write() as s:
            account = repo.account_by_email(s, email)
            if account is None or account.kind != "applicant" or account.confirmed_at is not None:
                return
            if len(email_repo.sent_since(s, None, now - _RESEND_WINDOW, account_id=account.id)) < RESENDS_PER_DAY:
                self.mail_account(s, account.id, account.email, now)
                sent = True
        if sent and dispatch:  # False: the caller dispatches itself, after answering (ra.api)
            self.ra.dispatch_outbox()

    def pending_mail(self, order_id: int | None = None, *, account_id: int | None = None) -> str | None:
        """The outbox reference of the order's (or account's) pending confirmation mail (the demo)."""
        with self.ra.db.read() as s:
            found = email_repo.pending(s, order_id, account_id=account_id)
        return found[0].outbox_ref if found else None

    def resend(self, principal: Principal, order_id: int) -> MailedConfirmation:
        """Mail the link again: the applicant for their own order, or an RA officer.

        :raises RAError: NOT_FOUND, FORBIDDEN, CONFLICT (no email, already confirmed, the order is
            past approval), RATE_LIMITED (three mails per order and day).
        """
        from ra.workflow import OrderState

        now = self.ra.clock()
        with self.ra.db.write() as s:
            order = self.ra._order(s, order_id, principal, lock=True)
            own = Role.APPLICANT in principal.roles and order.applicant_account_id == principal.account_id
            if not own:
                principal.require(Role.RA_OFFICER)
            if order.email is None:
                raise RAError(RAErrorKind.CONFLICT, f"order {order_id} has no email address to confirm")
            if confirmed_at(s, order.id, order.email) is not None:
                raise RAError(RAErrorKind.CONFLICT, f"the email address of order {order_id} is confirmed already")
            if order.state not in (OrderState.OPEN.value, OrderState.WAITING.value):  # before approval
                raise RAError(RAErrorKind.ILLEGAL_TRANSITION, f"order {order_id} is {order.state}")
            recent = email_repo.sent_since(s, order.id, now - _RESEND_WINDOW)
            wait = retry_after(now, _RESEND_WINDOW, [(recent, RESENDS_PER_DAY)])
            if wait is not None:
                raise RAError(
                    RAErrorKind.RATE_LIMITED,
                    f"at most {RESENDS_PER_DAY} confirmation mails per order and day",
                    retry_after=wait,
                )
            mailed = self.mail(s, order, principal, now)
        self.ra.dispatch_outbox()
        return mailed

    def confirm(self, token: str, client_address: str | None = None) -> Confirmed:
        """Confirm with the token from the mail (no login: it proves the mailbox).

        :raises RAError: MALFORMED (not a token), FORBIDDEN (:data:`REFUSAL` for every token that
            confirms nothing: unknown, used, superseded, expired).
        """
        token = token.strip()
        if not token or len(token) > _MAX_TOKEN:
            raise RAError(RAErrorKind.MALFORMED, "token: the code from the confirmation mail")
        address = client_address[:64] if client_address else None
        now = self.ra.clock()
        refusal: RAError | None = None
        result: Confirmed | None = None
        with self.ra.db.write() as s:
            row = email_repo.by_token(s, sha256_text(token))
            if (
                row is None
                or row.state != "pending"
                or row.expires_at <= now
                or not email_repo.mark_confirmed(s, row.id, now, address)
            ):
                refusal = RAError(RAErrorKind.FORBIDDEN, REFUSAL)
                if row is not None:  # a real code, too late or spent: worth an auditor's look
                    kind, object_id = _subject(row.order_id, row.account_id)
                    self.ra._audit(
                        s,
                        _anonymous(address),
                        Role.SYSTEM,
                        f"{kind}.email_confirmation_refused",
                        kind,
                        object_id,
                        {"confirmation": row.id, "state": row.state, "expired": row.expires_at <= now},
                        at=now,
                    )
            else:
                kind, object_id = _subject(row.order_id, row.account_id)
                details: dict[str, JSONValue] = {
                    "confirmation": row.id,
                    "email_sha256": sha256_text(row.email),
                    "sent_to": mask_recipient(row.email),
                    "client_address": address,
                }
                if row.order_id is not None:
                    order = repo.order_get(s, row.order_id)
                    assert order is not None
                    details["still_the_order_address"] = order.email == row.email
                else:
                    assert row.account_id is not None
                    details["account_activated"] = repo.account_confirm(s, row.account_id, now)
                self.ra._audit(
                    s, _anonymous(address), Role.SYSTEM, f"{kind}.email_confirmed", kind, object_id, details, at=now
                )
                result = Confirmed(row.order_id, row.account_id, mask_recipient(row.email), now)
        if refusal is not None:
            raise refusal
        assert result is not None
        return result


def _subject(order_id: int | None, account_id: int | None) -> tuple[str, int]:
    """The audit object a confirmation is about: its order, or its account."""
    if order_id is not None:
        return "order", order_id
    assert account_id is not None
    return "account", account_id


def _anonymous(client_address: str | None) -> Principal:
    name = f"email-link@{client_address}" if client_address else "email-link"
    return Principal(name=name, roles=frozenset({Role.SYSTEM}))
