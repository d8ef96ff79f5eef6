"""Follow-up orders (issue 6 point 1): a new card for the holder of a valid card, without a new
identification for up to ``[ra] followups_without_identification`` follow-ups in a row.

The holder (their own account session) asks for it, authenticated by one of the registered
:class:`Authenticator` steps:

* ``qualified-signature``: a CMS SignedData over :func:`ra.followup_rules.canonical_request`
  (card, product, a single-use challenge nonce, the identification method if one is needed),
  signed with the current card's signature certificate; the CA verifies the signature and
  validates the path with pyhanko-certvalidator, the end-entity status from our own OCSP
  responder (a revoked or held card fails there: EN 319 411-1 REG-6.3.6-02/REG-6.3.7-03);
* ``order-password``: a password posted to the current card order's registered postal address
  (never one given in the request), Argon2 hash only, single use, 30 days, wrong attempts
  rate-limited per card in the database.

An SMS-TAN step can be added later with :func:`register` (same protocol).

The follow-up order keeps the product and the current certificate's subject, taken from the
frozen slot subjects of the current card's order, never from the client; a changed name or
attribute in the person or organisation record refuses it (a new order is needed, REG-6.3.8-02).
It then goes through approval (the count rule and the subject rule are checked again there),
issuance (on hold), shipping and activation like any order.  The old card stays valid: D-Trust
keeps both, and the holder revokes the old one when they wish.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from ca.audit.chain import JSONValue
from ca.findings import Finding, Severity, errors_in
from ca.profiles.subject import SubjectError, SubjectInput
from ca.store.db import UnitOfWork
from ra.credentials import hash_password, sha256_text, verify_password
from ra.errors import RAError, RAErrorKind
from ra.evidence import IdentityEvidence, PersonData, identity_findings
from ra.followup_rules import (
    AUTH_ORDER_PASSWORD,
    AUTH_QUALIFIED_SIGNATURE,
    QC_IDENT_EXISTING_QC,
    ChainLink,
    canonical_request,
    consecutive_without_identification,
    expected_subject,
    new_order_password,
    normalise_order_password,
    subject_changes,
)
from ra.outbox import Channel
from ra.products import IdentMethod, OrderKind, Product, check_method
from ra.rate_limit import retry_after
from ra.records import CardRec, OrderRec, SlotRec
from ra.roles import Principal, Role
from ra.service import RAService
from ra.store import followup_repo as frepo
from ra.store import repository as repo
from ra.workflow import CardState, OrderState

__all__ = [
    "AUTHENTICATORS",
    "Authenticated",
    "Authenticator",
    "Challenge",
    "FollowUpRequest",
    "FollowUpService",
    "OrderPasswordLetter",
    "register",
]

_WRONG_PASSWORD: Final = "unknown card, or a wrong, used or expired order password"  # noqa: S105 (a message)


@dataclass(frozen=True, slots=True)
class FollowUpRequest:
    card_id: int
    authentication: str
    method: str | None = None
    """The identification method when the follow-up needs a new identification."""
    nonce: str | None = None
    signed_request: str | None = None
    """Base64 of the DER CMS SignedData (qualified-signature)."""
    order_password: str | None = field(default=None, repr=False)
    tan: str | None = field(default=None, repr=False)
    """The SMS-TAN for purpose ``follow-up`` (sms-tan)."""
    client_address: str | None = None


@dataclass(frozen=True, slots=True)
class Authenticated:
    """What an authentication step established, and how to consume its single-use secret in the
    order's transaction (raising RAError when it was used meanwhile)."""

    method: str
    signer: str | None
    details: dict[str, JSONValue]
    consume: Callable[[UnitOfWork], None]


class Authenticator(Protocol):
    """One way to authenticate a follow-up request.  ``check`` runs before the order's transaction
    (it may be slow: Argon2, signature validation); ``Authenticated.consume`` runs inside it."""

    name: str

    def check(
        self, svc: FollowUpService, principal: Principal, card: CardRec, req: FollowUpRequest
    ) -> Authenticated: ...


@dataclass(frozen=True, slots=True)
class Challenge:
    nonce: str
    expires_at: dt.datetime
    to_sign: str
    """The canonical request for a follow-up without new identification (method null)."""


@dataclass(frozen=True, slots=True)
class OrderPasswordLetter:
    reference: str
    """The outbox reference of the letter (not the password)."""
    expires_at: dt.datetime
    recipient_hint: str


class QualifiedSignature:
    name = AUTH_QUALIFIED_SIGNATURE

    def check(self, svc: FollowUpService, principal: Principal, card: CardRec, req: FollowUpRequest) -> Authenticated:
        ra = svc.ra
        if not req.nonce or not req.signed_request:
            raise RAError(RAErrorKind.MALFORMED, "qualified-signature: nonce and signed_request are required")
        try:
            der = base64.b64decode(req.signed_request, validate=True)
        except (binascii.Error, ValueError):
            raise RAError(RAErrorKind.MALFORMED, "signed_request: not base64") from None
        now = ra.clock()
        with ra.db.read() as s:
            challenge = frepo.challenge_by_nonce(s, sha256_text(req.nonce))
        if (
            challenge is None
            or challenge.card_id != card.id
            or challenge.account_id != principal.account_id
            or challenge.used_at is not None
            or challenge.expires_at <= now
        ):
            svc.refused(principal, card.id, self.name, "unknown, expired or already used challenge")
            raise RAError(RAErrorKind.FORBIDDEN, "unknown, expired or already used challenge: request a new one")
        try:
            signer = ra.ca.verify_signed_request(der)
        except RAError as exc:
            svc.refused(principal, card.id, self.name, exc.detail)
            raise
        expected = canonical_request(card.id, card.product, req.nonce, req.method)
        if signer.content != expected:
            svc.refused(principal, card.id, self.name, "the signed content is not this request")
            raise RAError(
                RAErrorKind.FORBIDDEN,
                "the signed content is not this request (sign exactly the canonical request with this nonce)",
            )
        with ra.db.read() as s:
            card_slots = repo.slots(s, card.order_id)
        own = {(x.issuer, x.serial_hex) for x in card_slots}
        if (signer.issuer, signer.serial_hex) not in own:
            who = f"{signer.issuer}:{signer.serial_hex}"
            svc.refused(principal, card.id, self.name, f"signed with {who}, not with this card's certificate")
            raise RAError(RAErrorKind.FORBIDDEN, "the request is not signed with this card's certificate")
        challenge_id = challenge.id

        def consume(s: UnitOfWork) -> None:
            if not frepo.challenge_use(s, challenge_id, ra.clock()):
                raise RAError(RAErrorKind.FORBIDDEN, "unknown, expired or already used challenge: request a new one")

        signer_ref = f"{signer.issuer}:{signer.serial_hex}"
        return Authenticated(self.name, signer_ref, {"signer": signer_ref, "challenge": challenge_id}, consume)


class OrderPassword:
    name = AUTH_ORDER_PASSWORD

    def check(self, svc: FollowUpService, principal: Principal, card: CardRec, req: FollowUpRequest) -> Authenticated:
        ra = svc.ra
        if not req.order_password:
            raise RAError(RAErrorKind.MALFORMED, "order-password: order_password is required")
        settings = ra.followup_settings
        now = ra.clock()
        with ra.db.read() as s:
            failures = frepo.failures_since(s, card.id, now - settings.password_window)
            stored = frepo.order_password_current(s, card.id)
        retry = retry_after(now, settings.password_window, [(failures, settings.password_failures_per_card)])
        if retry is not None:
            svc.refused(principal, card.id, self.name, "rate limited")
            raise RAError(
                RAErrorKind.RATE_LIMITED, "too many wrong order passwords: try again later", retry_after=retry
            )
        typed = normalise_order_password(req.order_password)
        right = verify_password(stored.password_hash if stored else ra._dummy(), typed) and stored is not None
        if not right or stored is None or stored.expires_at <= now:
            reason = "expired" if right else "wrong or no order password"
            with ra.db.write() as s:
                frepo.failure_add(s, card_id=card.id, method=self.name, at=now)
                ra._audit(
                    s,
                    principal,
                    Role.APPLICANT,
                    "card.order_password_refused",
                    "card",
                    card.id,
                    {"reason": reason},
                    at=now,
                )
            raise RAError(RAErrorKind.FORBIDDEN, _WRONG_PASSWORD)
        password_id = stored.id

        def consume(s: UnitOfWork) -> None:
            if not frepo.order_password_use(s, password_id, ra.clock()):
                raise RAError(RAErrorKind.FORBIDDEN, _WRONG_PASSWORD)
            ra._audit(s, principal, Role.APPLICANT, "card.order_password_used", "card", card.id, {})

        return Authenticated(self.name, None, {"order_password": password_id}, consume)


class SmsTan:
    """The holder's SMS-TAN for purpose ``follow-up`` (seed 000: "applying for a follow-up card
    electronically via the SMS-TAN method"); only for cards whose order channel offers SMS-TAN.

    The TAN is checked and consumed in its own transaction, so wrong entries are counted even
    though the request then fails; a consumed TAN is spent even if the order is then refused."""

    name = "sms-tan"

    def check(self, svc: FollowUpService, principal: Principal, card: CardRec, req: FollowUpRequest) -> Authenticated:
        from ra.tan import TanService

        if not req.tan:
            raise RAError(RAErrorKind.MALFORMED, "sms-tan: tan is required")
        with svc.ra.db.write() as s:
            verdict = TanService(svc.ra).verify_tan(
                s, card.id, "follow-up", req.tan, client_address=req.client_address, principal=principal
            )
        if verdict.refusal is not None:
            svc.refused(principal, card.id, self.name, verdict.refusal.detail)
        verdict.raise_if_refused()

        def consume(s: UnitOfWork) -> None:
            """Already consumed by verify_tan."""

        return Authenticated(self.name, None, {"tan": verdict.tan_id}, consume)


AUTHENTICATORS: dict[str, Authenticator] = {}


def register(authenticator: Authenticator) -> None:
    """Add a way to authenticate follow-up requests (e.g. SMS-TAN), under ``authenticator.name``."""
    AUTHENTICATORS[authenticator.name] = authenticator


register(QualifiedSignature())
register(OrderPassword())
register(SmsTan())


@dataclass
class FollowUpService:
    ra: RAService

    # -- helpers ---------------------------------------------------------------------------------

    def _holder_card(self, s: UnitOfWork, principal: Principal, card_id: int, *, lock: bool = False) -> CardRec:
        principal.require(Role.APPLICANT)
        card = self.ra._card(s, card_id, principal, lock=lock)
        if not self.ra._is_holder(principal, card):
            raise RAError(RAErrorKind.NOT_FOUND, f"no card {card_id}")
        return card

    def refused(self, principal: Principal, card_id: int, method: str, detail: str) -> None:
        """Audit a refused follow-up authentication (its own transaction: the refusal is kept)."""
        with self.ra.db.write() as s:
            self.ra._audit(
                s,
                principal,
                Role.APPLICANT,
                "card.followup_refused",
                "card",
                card_id,
                {"authenticated_by": method, "detail": detail[:255]},
            )

    def _eligible(self, card: CardRec, card_slots: list[SlotRec], now: dt.datetime) -> None:
        """A valid card whose certificates are good at the CA (not revoked, not held, not expired)."""
        if card.state != CardState.VALID:
            raise RAError(
                RAErrorKind.ILLEGAL_TRANSITION,
                f"a follow-up card is ordered for a valid card; card {card.id} is {card.state}",
            )
        if card.not_after <= now:
            raise RAError(RAErrorKind.ILLEGAL_TRANSITION, f"card {card.id} has expired")
        for slot in card_slots:
            status = self.ra.ca.attempt_status(slot.evidence_ref) if slot.evidence_ref else None
            if status != "good" or (slot.not_after is not None and slot.not_after <= now):
                raise RAError(
                    RAErrorKind.ILLEGAL_TRANSITION,
                    f"the card's {slot.name} certificate is {status or 'unknown'} at the CA: no follow-up "
                    "(EN 319 411-1 REG-6.3.6-02)",
                )

    def _chain(self, s: UnitOfWork, card: CardRec) -> list[ChainLink]:
        """From the card's own order back through ``parent_card_id`` to the last identification."""
        out: list[ChainLink] = []
        order = repo.order_get(s, card.order_id)
        seen: set[int] = set()
        while order is not None and order.id not in seen:
            seen.add(order.id)
            link = ChainLink(order.kind, repo.identity_get(s, order.id) is not None)
            out.append(link)
            if link.kind == "new" or link.identified or order.parent_card_id is None:
                break
            parent = repo.card_get(s, order.parent_card_id)
            order = repo.order_get(s, parent.order_id) if parent is not None else None
        return out

    def _identification_needed(self, s: UnitOfWork, card: CardRec) -> tuple[int, bool, str | None]:
        """(position of a new follow-up from ``card``, whether it needs identification, why)."""
        previous = consecutive_without_identification(self._chain(s, card))
        limit = self.ra.followup_settings.without_identification
        position = previous + 1
        if previous >= limit:
            return (
                position,
                True,
                f"follow-up {position} in a row: after {limit} follow-up(s) without identification the next needs "
                "a new identification (EN 319 411-1 REG-6.3.1-00E, [ra] followups_without_identification)",
            )
        parent = frepo.followup_get(s, card.order_id)
        if parent is not None and parent.qc_ident_method == QC_IDENT_EXISTING_QC:
            # STANDARDS.md §3.7: a QC obtained with another QC (eIDAS2-b) derives no further QC.
            return position, True, "the current certificate was issued by identifying with an existing QC (eIDAS2-b)"
        return position, False, None

    def _subject_findings(self, s: UnitOfWork, order: OrderRec, card_slots: list[SlotRec]) -> list[str]:
        """Attributes of the current certificates that the person or organisation records changed."""
        product = self.ra._product(order.product)
        person = repo.person_get(s, order.person_id)
        org = repo.org_get(s, order.organisation_id) if order.organisation_id is not None else None
        changed: set[str] = set()
        for slot in card_slots:
            current = json.loads(slot.subject_json)
            expected = expected_subject(
                current,
                subject_kind=product.subject_kind,
                given_names=person.given_names,
                surname=person.surname,
                organisation=(org.name, org.identifier, org.country) if org is not None else None,
            )
            changed.update(subject_changes(current, expected))
        return sorted(changed)

    @staticmethod
    def _changed_error(changed: list[str]) -> RAError:
        return RAError(
            RAErrorKind.POLICY_VIOLATION,
            "a changed name needs a new order: the current certificate's "
            f"{', '.join(changed)} no longer match the records (EN 319 411-1 REG-6.3.8-02)",
        )

    # -- holder's steps --------------------------------------------------------------------------

    def challenge(self, principal: Principal, card_id: int) -> Challenge:
        """A single-use nonce to sign with the card (valid a few minutes, stored hashed)."""
        nonce = secrets.token_urlsafe(24)
        now = self.ra.clock()
        expires = now + self.ra.followup_settings.challenge_validity
        with self.ra.db.write() as s:
            card = self._holder_card(s, principal, card_id)
            if card.state != CardState.VALID:
                raise RAError(
                    RAErrorKind.ILLEGAL_TRANSITION,
                    f"a follow-up card is ordered for a valid card; card {card.id} is {card.state}",
                )
            assert principal.account_id is not None
            challenge_id = frepo.challenge_add(
                s,
                card_id=card.id,
                account_id=principal.account_id,
                nonce_sha256=sha256_text(nonce),
                at=now,
                expires_at=expires,
            )
            self.ra._audit(
                s,
                principal,
                Role.APPLICANT,
                "card.followup_challenge_issued",
                "card",
                card.id,
                {"challenge": challenge_id, "expires_at": expires.isoformat()},
                at=now,
            )
        return Challenge(nonce, expires, canonical_request(card.id, card.product, nonce, None).decode("ascii"))

    def request_order_password(self, principal: Principal, card_id: int) -> OrderPasswordLetter:
        """Generate an order password and queue the letter to the card order's registered postal
        address, in one transaction; the password itself is never returned or logged."""
        password = new_order_password()
        hashed = hash_password(normalise_order_password(password))
        now = self.ra.clock()
        expires = now + self.ra.followup_settings.password_validity
        with self.ra.db.write() as s:
            card = self._holder_card(s, principal, card_id, lock=True)
            if card.state != CardState.VALID:
                raise RAError(
                    RAErrorKind.ILLEGAL_TRANSITION,
                    f"an order password is sent for a valid card; card {card.id} is {card.state}",
                )
            order = repo.order_get(s, card.order_id)
            assert order is not None
            if not order.postal_address:
                raise RAError(
                    RAErrorKind.POLICY_VIOLATION,
                    "the card's order has no registered postal address: no order password can be posted; "
                    "authenticate with the card's qualified signature instead",
                )
            text = (
                f"Your order password for a follow-up card of card {card.id} ({card.product}):\n\n"
                f"    {password}\n\n"
                f"It is valid once, until {expires.date().isoformat()}. Nobody from the trust center will ever ask "
                "you for it."
            )
            reference = self.ra.outbox.enqueue(
                s,
                channel=Channel.POST,
                purpose="order-password",
                recipient=order.postal_address,
                text=text,
                account_id=principal.account_id,
                card_id=card.id,
            )
            frepo.order_password_add(
                s, card_id=card.id, password_hash=hashed, at=now, expires_at=expires, letter_ref=reference
            )
            self.ra._audit(
                s,
                principal,
                Role.APPLICANT,
                "card.order_password_requested",
                "card",
                card.id,
                {"letter": reference, "expires_at": expires.isoformat()},
                at=now,
            )
        from ra.outbox import mask_recipient

        return OrderPasswordLetter(reference, expires, mask_recipient(order.postal_address))

    def request_followup(self, principal: Principal, req: FollowUpRequest) -> int:
        """Create the follow-up order (kind 'follow-up', parent = the current card); returns its id.

        :raises RAError: MALFORMED, NOT_FOUND, FORBIDDEN (authentication), RATE_LIMITED,
            ILLEGAL_TRANSITION (card not valid or its certificate not good), POLICY_VIOLATION (a
            changed name; a follow-up that needs identification named no method).
        """
        principal.require(Role.APPLICANT)
        auth = AUTHENTICATORS.get(req.authentication)
        if auth is None:
            raise RAError(RAErrorKind.MALFORMED, f"authentication must be one of {', '.join(sorted(AUTHENTICATORS))}")
        method: IdentMethod | None = None
        if req.method is not None:
            try:
                method = IdentMethod(req.method)
            except ValueError:
                raise RAError(RAErrorKind.MALFORMED, f"unknown identification method {req.method[:40]!r}") from None
        now = self.ra.clock()
        with self.ra.db.read() as s:
            if auth.name == AUTH_ORDER_PASSWORD:
                # Same answer for an unknown card and a wrong password (checked with Argon2 either way).
                found = repo.card_get(s, req.card_id)
                card = found if found is not None and found.holder_account_id == principal.account_id else None
            else:
                card = self._holder_card(s, principal, req.card_id)
            card_slots = repo.slots(s, card.order_id) if card is not None else []
        if card is None:
            verify_password(self.ra._dummy(), req.order_password or "")
            raise RAError(RAErrorKind.FORBIDDEN, _WRONG_PASSWORD)
        authenticated = auth.check(self, principal, card, req)
        try:
            self._eligible(card, card_slots, now)
        except RAError as exc:
            self.refused(principal, card.id, auth.name, exc.detail)
            raise
        with self.ra.db.write() as s:
            card = self._holder_card(s, principal, req.card_id, lock=True)
            if card.state != CardState.VALID:
                raise RAError(RAErrorKind.ILLEGAL_TRANSITION, f"card {card.id} is {card.state}")
            parent = repo.order_get(s, card.order_id)
            assert parent is not None
            product = self.ra._product(card.product)
            position, needs_id, why = self._identification_needed(s, card)
            if needs_id and method is None:
                raise RAError(
                    RAErrorKind.POLICY_VIOLATION,
                    f"this follow-up needs a new identification ({why}): name an identification method "
                    "(e.g. postident-branch), or order a new card",
                )
            if needs_id and method is IdentMethod.EXISTING_QES:
                raise RAError(
                    RAErrorKind.POLICY_VIOLATION,
                    "a new identification cannot be the existing qualified signature (STANDARDS.md §3.7)",
                )
            if not needs_id and method is not None:
                raise RAError(RAErrorKind.MALFORMED, "method: this follow-up needs no new identification")
            ident = method if method is not None else IdentMethod(parent.method)
            check_method(product, ident, OrderKind.FOLLOW_UP)
            changed = self._subject_findings(s, parent, card_slots)
            if changed:
                raise self._changed_error(changed)
            authenticated.consume(s)
            qc_ident = (
                QC_IDENT_EXISTING_QC
                if self.ra.followup_settings.qc_ident_method and auth.name == AUTH_QUALIFIED_SIGNATURE and not needs_id
                else None
            )
            order_id = repo.order_add(
                s,
                product=product.name,
                kind=OrderKind.FOLLOW_UP.value,
                state=OrderState.OPEN.value,
                waiting_reason=None,
                note=None,
                applicant_account_id=parent.applicant_account_id,
                person_id=parent.person_id,
                organisation_id=parent.organisation_id,
                method=ident.value,
                country=parent.country,
                email=parent.email,
                common_name=parent.common_name,
                validity_days=parent.validity_days,
                parent_card_id=card.id,
                postal_address=parent.postal_address,
                submitted_at=now,
                updated_at=now,
            )
            frepo.followup_add(
                s,
                order_id=order_id,
                parent_card_id=card.id,
                authenticated_by=auth.name,
                signer=authenticated.signer,
                position=position,
                identification_required=needs_id,
                qc_ident_method=qc_ident,
                created_at=now,
            )
            if authenticated.signer is not None:
                self.ra._audit(
                    s,
                    principal,
                    Role.APPLICANT,
                    "card.followup_signature_verified",
                    "card",
                    card.id,
                    {**authenticated.details, "ocsp": "good"},
                    at=now,
                )
            self.ra._audit(
                s,
                principal,
                Role.APPLICANT,
                "order.created",
                "order",
                order_id,
                {
                    "product": product.name,
                    "method": ident.value,
                    "organisation_id": parent.organisation_id,
                    "kind": OrderKind.FOLLOW_UP.value,
                    "parent_card_id": card.id,
                    "authenticated_by": auth.name,
                    "signer": authenticated.signer,
                    "position": position,
                    "identification_required": needs_id,
                    "qc_ident_method": qc_ident,
                },
                at=now,
            )
        return order_id

    # -- approval ----------------------------------------------------------------------------------

    def readiness(self, s: UnitOfWork, order: OrderRec) -> tuple[list[Finding], dict[str, SubjectInput]]:
        """Approval of a follow-up order: the identification rule (again, not only at creation), the
        identity evidence when it is needed, unchanged names and attributes, and the current
        certificates' subjects, which the follow-up keeps."""
        out: list[Finding] = []

        def missing(code: str, message: str) -> None:
            out.append(Finding(Severity.ERROR, f"qtsp.ra.followup.{code}", message))

        product: Product = self.ra._product(order.product)
        record = frepo.followup_get(s, order.id)
        parent_card = repo.card_get(s, order.parent_card_id) if order.parent_card_id is not None else None
        if record is None or parent_card is None:
            missing("record", "not a follow-up order made through the follow-up procedure")
            return out, {}
        parent = repo.order_get(s, parent_card.order_id)
        assert parent is not None
        try:
            check_method(product, IdentMethod(order.method), OrderKind.FOLLOW_UP)
        except RAError as exc:
            missing("method", exc.detail)
        parent_slots = repo.slots(s, parent.id)
        _, needs_id, why = self._identification_needed(s, parent_card)
        identity = repo.identity_get(s, order.id)
        if (needs_id or record.identification_required) and identity is None:
            missing("identity_missing", f"no identity evidence recorded: {why or 'a new identification is required'}")
        person = repo.person_get(s, order.person_id)
        if identity is not None:
            evidence = IdentityEvidence.from_record(identity)
            out += errors_in(
                identity_findings(
                    evidence,
                    PersonData(person.given_names, person.surname, person.date_of_birth),
                    method=IdentMethod(order.method),
                    submitted_at=order.submitted_at,
                    now=self.ra.clock(),
                )
            )
        changed = self._subject_findings(s, parent, parent_slots)
        if changed:
            missing("subject_changed", self._changed_error(changed).detail)
        subjects: dict[str, SubjectInput] = {}
        by_name = {x.name: x for x in parent_slots}
        for slot in product.slots:
            current = by_name.get(slot.name)
            if current is None:
                missing("slot", f"the current card has no {slot.name} certificate")
                continue
            try:
                subject = SubjectInput.from_json_obj(json.loads(current.subject_json))
            except SubjectError as exc:
                missing("subject", f"slot {slot.name}: {exc}")
                continue
            if (
                identity is not None
                and product.subject_kind == "natural"
                and (subject.givenName, subject.surname) != (identity.given_names, identity.surname)
            ):
                missing("subject_changed", "a changed name needs a new order: the identity document's names differ")
            for f in errors_in(self.ra.ca.subject_findings(slot.profile, subject)):
                missing("subject", f"slot {slot.name}: {f.message}")
            subjects[slot.name] = subject
        return out, subjects

    def qc_ident_method(self, s: UnitOfWork, order_id: int) -> str | None:
        """The QcIdentMethod OID the order's certificates carry, if any."""
        record = frepo.followup_get(s, order_id)
        return record.qc_ident_method if record is not None else None
