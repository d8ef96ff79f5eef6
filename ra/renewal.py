"""Online renewal (issue 6 point 2; the DigiSign model, seed 003 "Reînnoire online").

The holder of a valid card renews it online while at least ``N`` days (``[ra] renewal_min_days``,
default 3; DigiSign: "minimum 3 days left until expiry") remain before its certificates expire:

1. ``GET /api/cards/<id>/renewal``: the form, pre-filled from the CURRENT CERTIFICATES (their
   subjects as the CA stored and issued them, not the old order), the window of issuance dates
   and the documents required.
2. ``POST /api/cards/<id>/renewal``: the holder confirms the form unchanged (changed attributes need
   a new order, EN 319 411-1 REG-6.3.8-02), picks the issuance date and submits a CSR per slot for
   a NEW key.  This creates an order of kind ``renewal`` (``parent_card_id`` = the card) whose slots
   are frozen from the current certificates' subjects.
3. Documents: contract, declaration, general terms (``POST /api/renewals/<id>/documents``) and the
   ID copy (the order's encrypted evidence copy, ``POST /api/orders/<id>/copy``).  When the legal
   representative of the card's organisation is not the holder, the contract must be signed by the
   representative (seed 003: "Dacă Administratorul/Reprezentantul legal al societății diferă de
   titularul certificatului, atunci contractul trebuie ... semnat ... de către Administrator").
4. An RA officer checks the documents and approves (four eyes where the product demands them).
5. On the chosen date the scheduled job (:meth:`RenewalService.issue_due`, qtsp/scheduler.py)
   re-checks eligibility and issues through the RA's normal issuance path; if the window has closed
   or the card is no longer valid it issues nothing, cancels the order and records why.

The old card is not revoked; the new certificates get their own card, delivered online (the holder
confirms installing it, or it activates itself like a shipped card).

Eligibility rules (checked on the form, the request, the approval and again at issuance):
the card is ``valid``; the CA's status of every certificate on it is ``good`` (not revoked, not on
hold); it has not expired; and now <= not_after - N days.  The chosen date lies in
[today, (not_after - N days).date()].  Each refusal names its rule (``qtsp.ra.renewal.*``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ca.audit.chain import JSONValue
from ca.findings import Finding, Severity
from ca.issuance.csr import parse_csr, spki_der
from ca.issuance.errors import IssuanceError
from ca.profiles import oids
from ca.profiles.subject import SubjectError, SubjectInput
from ca.store.db import UnitOfWork
from ra.ca_port import subject_to_json
from ra.errors import RAError, RAErrorKind
from ra.evidence import PersonData, check_copy, same_person
from ra.products import IdentMethod, OrderKind, Product, check_method
from ra.records import CardRec, OrderRec, OrganisationRec, SignatoryRec, SlotRec
from ra.roles import Principal, Role
from ra.service import SYSTEM, ApprovalResult, RAService
from ra.store import renewal_repo as rrepo
from ra.store import repository as repo
from ra.store.renewal_repo import RenewalDocRec, RenewalRec
from ra.workflow import CardState, OrderEvent, OrderState, order_transition

__all__ = [
    "DOCUMENTS",
    "UPLOADED_DOCUMENTS",
    "CurrentSlot",
    "RenewalForm",
    "RenewalRun",
    "RenewalService",
    "RenewalView",
    "RenewalWindow",
    "changed_attributes",
    "contract_signer_problem",
    "eligibility_findings",
    "issue_date_findings",
    "renewal_window",
    "subject_of_certificate",
]

log = logging.getLogger(__name__)

#: Seed 003 (DigiSign): contract, declaration, general terms ("Condiții generale") and the ID copy.
#: The terms are accepted again at every renewal (EN 319 411-1 REG-6.3.6-08).
DOCUMENTS: Final = ("contract", "declaration", "terms", "id-copy")
#: Uploaded through the renewal; the ID copy is the order's encrypted evidence copy.
UPLOADED_DOCUMENTS: Final = frozenset({"contract", "declaration", "terms"})
_SUBJECT_KEYS: Final = {
    NameOID.COUNTRY_NAME: "countryName",
    NameOID.COMMON_NAME: "commonName",
    NameOID.GIVEN_NAME: "givenName",
    NameOID.SURNAME: "surname",
    NameOID.PSEUDONYM: "pseudonym",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.ORGANIZATION_NAME: "organizationName",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
}
_PENDING_ORDER_STATES: Final = frozenset({OrderState.OPEN, OrderState.WAITING, OrderState.IN_PRODUCTION})


def _finding(code: str, message: str) -> Finding:
    return Finding(Severity.ERROR, f"qtsp.ra.renewal.{code}", message)


def _refuse(findings: Iterable[Finding], kind: RAErrorKind = RAErrorKind.POLICY_VIOLATION) -> RAError:
    found = tuple(findings)
    return RAError(kind, "; ".join(f"{f.message} [{f.code}]" for f in found), found)


# ----------------------------------------------------------------------------------------------
# Pure rules


@dataclass(frozen=True, slots=True)
class RenewalWindow:
    """When the new certificate may be issued: from ``earliest`` to ``latest`` (dates, UTC);
    online renewal closes at ``closes_at`` = not_after - ``min_days`` days."""

    earliest: dt.date
    latest: dt.date
    closes_at: dt.datetime
    min_days: int


def renewal_window(not_after: dt.datetime, now: dt.datetime, min_days: int) -> RenewalWindow:
    closes_at = not_after - dt.timedelta(days=min_days)
    return RenewalWindow(earliest=now.date(), latest=closes_at.date(), closes_at=closes_at, min_days=min_days)


def eligibility_findings(
    *,
    card_state: str,
    ca_statuses: Mapping[str, str | None],
    not_after: dt.datetime,
    now: dt.datetime,
    min_days: int,
) -> list[Finding]:
    """Whether the card may be renewed online now (empty: yes).  The certificate that stands
    behind the request must exist and be valid (EN 319 411-1 REG-6.3.6-02), and DigiSign's
    minimum of N days left applies.

    :param ca_statuses: slot name -> the CA's status of its certificate (None: the CA has none).
    """
    out: list[Finding] = []
    if card_state != CardState.VALID:
        out.append(
            _finding(
                "card_state", f"the card is {card_state}: only a valid (activated, unrevoked) card is renewed online"
            )
        )
    for slot, status in sorted(ca_statuses.items()):
        if status == "revoked":
            out.append(_finding("ca_revoked", f"the CA has revoked the certificate of slot {slot}"))
        elif status == "on-hold":
            out.append(_finding("ca_held", f"the CA holds (suspends) the certificate of slot {slot}"))
        elif status != "good":
            out.append(_finding("ca_unknown", f"the CA has no valid certificate for slot {slot} ({status})"))
    if now >= not_after:
        out.append(_finding("expired", f"the certificate expired on {not_after.isoformat()}: order a new one"))
    elif now > not_after - dt.timedelta(days=min_days):
        out.append(
            _finding(
                "closing_window",
                f"fewer than {min_days} days are left before the certificate expires on {not_after.date()}: "
                f"online renewal closes {min_days} days before expiry (DigiSign: minimum {min_days} days left); "
                "order a new certificate",
            )
        )
    return out


def issue_date_findings(issue_on: dt.date, window: RenewalWindow) -> list[Finding]:
    """The chosen issuance date lies in the window."""
    if issue_on < window.earliest:
        return [_finding("date_past", f"the issuance date {issue_on} lies in the past (earliest {window.earliest})")]
    if issue_on > window.latest:
        return [
            _finding(
                "date_after_window",
                f"the issuance date {issue_on} lies after the renewal window closes on {window.latest} "
                f"(at least {window.min_days} days before the certificate expires)",
            )
        ]
    return []


def changed_attributes(
    current: Mapping[str, Mapping[str, str]], submitted: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """``slot.attribute`` for every attribute the submission changes, adds or drops (and
    ``slot`` for a slot added or dropped)."""
    out: list[str] = []
    for slot in sorted(set(current) | set(submitted)):
        if slot not in current or slot not in submitted:
            out.append(slot)
            continue
        a, b = current[slot], submitted[slot]
        out += [f"{slot}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return out


def contract_signer_problem(
    *,
    organisation: str | None,
    holder_is_representative: bool,
    signer_is_holder: bool,
    signer_is_representative: bool,
) -> str | None:
    """Seed 003: when the organisation's legal representative is not the holder, the contract must
    be signed by the representative; otherwise (the holder is the representative, or no
    organisation) the holder's own acceptance suffices."""
    if organisation is None or holder_is_representative:
        if signer_is_holder:
            return None
        return (
            "the card names no organisation: the holder signs the contract"
            if organisation is None
            else f"the holder is a legal representative of {organisation}: the holder signs the contract"
        )
    if signer_is_holder:
        return (
            f"the legal representative of {organisation} is not the holder: the contract must be signed by the "
            "representative, not by the holder"
        )
    if not signer_is_representative:
        return f"the contract must be signed by a legal representative (authorised signatory) of {organisation}"
    return None


def subject_of_certificate(der: bytes) -> tuple[dict[str, str], bytes]:
    """The subject (as ``SubjectInput`` JSON keys, email from subjectAltName) and the
    SubjectPublicKeyInfo (DER) of an issued certificate.

    :raises RAError: POLICY_VIOLATION when the certificate carries what an online renewal cannot
        carry over unchanged: unknown subject attributes, or an Admission (professional attribute,
        re-confirmed by the chamber: a new order, EN 319 411-1 REG-6.3.1-00B).
    """
    cert = x509.load_der_x509_certificate(der)
    try:
        extensions = list(cert.extensions)
    except ValueError:
        raise _refuse([_finding("attribute_unsupported", "the certificate's extensions cannot be read")]) from None
    out: dict[str, str] = {}
    for attr in cert.subject:
        key = _SUBJECT_KEYS.get(attr.oid)
        if key is None or key in out:
            raise _refuse(
                [
                    _finding(
                        "attribute_unsupported",
                        f"the certificate's subject carries {attr.oid.dotted_string} in a form an online renewal "
                        "cannot reproduce: order a new certificate",
                    )
                ]
            )
        out[key] = attr.value if isinstance(attr.value, str) else attr.value.decode()
    for ext in extensions:
        if ext.oid == oids.ADMISSION:
            raise _refuse(
                [
                    _finding(
                        "admission",
                        "the certificate carries a professional attribute, which is re-confirmed by the chamber "
                        "(EN 319 411-1 REG-6.3.1-00B): order a new certificate",
                    )
                ]
            )
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        emails = san.get_values_for_type(x509.RFC822Name)
    except x509.ExtensionNotFound:
        emails = []
    if len(emails) > 1:
        raise _refuse([_finding("attribute_unsupported", "the certificate carries several email addresses")])
    if emails:
        out["email"] = emails[0]
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return out, spki


def _csr_key(slot: str, der: bytes) -> bytes:
    """The CSR's SubjectPublicKeyInfo, after the CA's own CSR checks (proof of possession, the key
    allow-list of ETSI TS 119 312): a key the CA would refuse on the issuance date is refused now.

    :raises RAError: POLICY_VIOLATION naming the slot and the CA's reason.
    """
    try:
        parsed = parse_csr(der)
    except IssuanceError as exc:
        raise _refuse([_finding("csr", f"the CSR for slot {slot} is refused: {exc.detail}")]) from None
    return spki_der(parsed.public_key)


# ----------------------------------------------------------------------------------------------
# Views


@dataclass(frozen=True, slots=True)
class CurrentSlot:
    """A certificate on the card as the CA holds it."""

    name: str
    profile: str
    issuer: str
    serial_hex: str
    status: str | None
    subject: dict[str, str]
    spki: bytes


@dataclass(frozen=True, slots=True)
class RenewalForm:
    card_id: int
    product: str
    product_title: str
    not_after: dt.datetime
    window: RenewalWindow
    slots: tuple[CurrentSlot, ...]
    documents_required: tuple[str, ...]
    contract_signer: str
    """Who must sign the contract: "holder", or the representatives' names."""


@dataclass(frozen=True, slots=True)
class RenewalView:
    renewal: RenewalRec
    order: OrderRec
    documents: dict[str, JSONValue]
    approvals: tuple[str, ...]
    new_card_id: int | None


@dataclass(frozen=True, slots=True)
class RenewalRun:
    """What one run of :meth:`RenewalService.issue_due` did (order ids)."""

    issued: tuple[int, ...]
    not_issued: tuple[int, ...]
    pending: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Card:
    card: CardRec
    order: OrderRec
    product: Product
    org: OrganisationRec | None
    holder: PersonData
    slots: tuple[SlotRec, ...]


def _person(sig: SignatoryRec) -> PersonData:
    return PersonData(sig.given_names, sig.surname, sig.date_of_birth)


# ----------------------------------------------------------------------------------------------
# Service


@dataclass
class RenewalService:
    """Online renewal on top of :class:`RAService` (its unit of work, audit, clock and CA port)."""

    ra: RAService

    @property
    def min_days(self) -> int:
        return self.ra.renewal_min_days

    # -- loading -------------------------------------------------------------------------------

    def _load(self, s: UnitOfWork, card: CardRec) -> _Card:
        order = repo.order_get(s, card.order_id)
        assert order is not None
        product = self.ra._product(order.product)
        org = repo.org_get(s, order.organisation_id) if order.organisation_id is not None else None
        p = repo.person_get(s, order.person_id)
        return _Card(
            card,
            order,
            product,
            org,
            PersonData(p.given_names, p.surname, p.date_of_birth),
            tuple(repo.slots(s, order.id)),
        )

    def _holder_card(self, s: UnitOfWork, principal: Principal, card_id: int, *, lock: bool = False) -> CardRec:
        card = self.ra._card(s, card_id, principal, lock=lock)
        if not self.ra._is_holder(principal, card):
            raise RAError(
                RAErrorKind.FORBIDDEN,
                "only the card's holder renews it online (nobody renews on someone else's behalf)",
            )
        return card

    def _current(self, c: _Card) -> tuple[CurrentSlot, ...]:
        """The card's certificates as the CA stored them (between transactions: the CA is asked)."""
        if c.product.delivery == "remote":
            raise _refuse([_finding("remote", f"{c.product.title}: a remote key is not renewed online; order anew")])
        if c.product.professional:
            raise _refuse(
                [
                    _finding(
                        "admission",
                        f"{c.product.title}: the professional attribute is re-confirmed by the chamber "
                        "(EN 319 411-1 REG-6.3.1-00B): order a new certificate",
                    )
                ]
            )
        out: list[CurrentSlot] = []
        for slot in c.slots:
            if slot.state != "issued" or slot.evidence_ref is None or slot.issuer is None or slot.serial_hex is None:
                raise _refuse([_finding("ca_unknown", f"slot {slot.name} of the card has no issued certificate")])
            found = self.ra.ca.find_issued(slot.evidence_ref)
            if found is None or (found.issuer, found.serial_hex) != (slot.issuer, slot.serial_hex):
                raise _refuse([_finding("ca_unknown", f"the CA has no certificate for slot {slot.name}")])
            subject, spki = subject_of_certificate(found.certificate_der)
            out.append(
                CurrentSlot(slot.name, slot.profile, found.issuer, found.serial_hex, found.status, subject, spki)
            )
        return tuple(out)

    def _eligibility(self, card: CardRec, current: Iterable[CurrentSlot], now: dt.datetime) -> list[Finding]:
        return eligibility_findings(
            card_state=card.state,
            ca_statuses={x.name: x.status for x in current},
            not_after=card.not_after,
            now=now,
            min_days=self.min_days,
        )

    @staticmethod
    def _representatives(c: _Card) -> tuple[SignatoryRec | None, tuple[SignatoryRec, ...]]:
        """The signatory who is the holder (if any) and all of the organisation's signatories."""
        if c.org is None:
            return None, ()
        sigs = tuple(c.org.signatories)
        return next((x for x in sigs if same_person(_person(x), c.holder)), None), sigs

    # -- form and request ----------------------------------------------------------------------

    def form(self, principal: Principal, card_id: int) -> RenewalForm:
        """The renewal form pre-filled from the current certificates, with the window and the
        documents required.  Refused (naming the rules) when the card cannot be renewed online."""
        with self.ra.db.read() as s:
            c = self._load(s, self._holder_card(s, principal, card_id))
        current = self._current(c)
        now = self.ra.clock()
        findings = self._eligibility(c.card, current, now)
        if findings:
            raise _refuse(findings)
        holder_sig, sigs = self._representatives(c)
        signer = (
            "holder"
            if c.org is None or holder_sig is not None
            else ", ".join(f"{x.given_names} {x.surname} ({x.role})" for x in sigs)
        )
        return RenewalForm(
            card_id=c.card.id,
            product=c.product.name,
            product_title=c.product.title,
            not_after=c.card.not_after,
            window=renewal_window(c.card.not_after, now, self.min_days),
            slots=current,
            documents_required=DOCUMENTS,
            contract_signer=signer,
        )

    def request(
        self,
        principal: Principal,
        card_id: int,
        *,
        issue_on: dt.date,
        subjects: Mapping[str, Mapping[str, str]],
        csrs: Mapping[str, bytes],
    ) -> int:
        """The holder asks for the renewal: the form unchanged, the issuance date and one CSR (DER)
        per slot for a new key.  Returns the renewal order's id.  A refused request is audited
        too, with its reason (EN 319 411-1 REG-6.4.5-03: every registration event, renewal
        requests included); nothing else is stored.

        :raises RAError: FORBIDDEN (not the holder), POLICY_VIOLATION naming the rule (eligibility,
            date, changed attribute, the current key reused, method no longer acceptable),
            MALFORMED (a CSR), CONFLICT (a renewal of the card is pending or done).
        """
        try:
            return self._request(principal, card_id, issue_on=issue_on, subjects=subjects, csrs=csrs)
        except RAError as exc:
            if exc.kind is RAErrorKind.NOT_FOUND:
                raise  # no such card (or not the caller's): nothing to record against it
            with self.ra.db.write() as s:
                self.ra._audit(
                    s,
                    principal,
                    Role.APPLICANT if Role.APPLICANT in principal.roles else ",".join(sorted(principal.roles)),
                    "renewal.refused",
                    "card",
                    card_id,
                    {"issue_on": issue_on.isoformat(), "error": exc.kind.value, "detail": exc.detail},
                )
            raise

    def _request(
        self,
        principal: Principal,
        card_id: int,
        *,
        issue_on: dt.date,
        subjects: Mapping[str, Mapping[str, str]],
        csrs: Mapping[str, bytes],
    ) -> int:
        form = self.form(principal, card_id)
        findings = issue_date_findings(issue_on, form.window)
        current = {x.name: x.subject for x in form.slots}
        submitted = {k: dict(v) for k, v in subjects.items()}
        changed = changed_attributes(current, submitted)
        if changed:
            findings.append(
                _finding(
                    "changed_attribute",
                    f"the form was changed ({', '.join(changed)}): an online renewal carries the current "
                    "certificate's attributes unchanged; attribute changes need a new order (REG-6.3.8-02)",
                )
            )
        if sorted(csrs) != sorted(current):
            raise RAError(RAErrorKind.MALFORMED, f"csrs: one CSR per slot is required ({', '.join(sorted(current))})")
        old_keys = {x.spki for x in form.slots}
        new_keys: set[bytes] = set()
        for name in sorted(csrs):
            key = _csr_key(name, csrs[name])
            if key in old_keys:  # always a new key: no reliance on GEN-6.3.6-10's same-key exception
                findings.append(
                    _finding(
                        "same_key",
                        f"the CSR for slot {name} carries a current certificate's public key: an online renewal "
                        "needs a new key pair",
                    )
                )
            elif key in new_keys:
                findings.append(_finding("same_key", f"the CSR for slot {name} repeats another slot's new key"))
            new_keys.add(key)
        if findings:
            raise _refuse(findings)
        now = self.ra.clock()
        with self.ra.db.write() as s:
            card = self._holder_card(s, principal, card_id, lock=True)
            c = self._load(s, card)
            if card.state != CardState.VALID:
                raise _refuse(self._eligibility(card, form.slots, now))
            try:
                # The original proofing must still be acceptable for this product (REG-6.3.1-00C).
                check_method(c.product, IdentMethod(c.order.method), OrderKind.RENEWAL)
            except RAError as exc:
                raise _refuse([_finding("method", exc.detail)]) from None
            for other, state in rrepo.renewals_of_card(s, card.id):
                if state in _PENDING_ORDER_STATES:
                    raise RAError(RAErrorKind.CONFLICT, f"renewal order {other.order_id} of this card is pending")
                if state == OrderState.DONE:
                    raise RAError(RAErrorKind.CONFLICT, f"this card was renewed already (order {other.order_id})")
            frozen: dict[str, str] = {}
            for slot in form.slots:
                try:
                    subject = SubjectInput.from_json_obj(slot.subject)
                except SubjectError as exc:
                    raise RAError(RAErrorKind.POLICY_VIOLATION, f"slot {slot.name}: {exc}") from None
                frozen[slot.name] = json.dumps(subject_to_json(subject), sort_keys=True, ensure_ascii=False)
            o = c.order
            order_id = repo.order_add(
                s,
                product=o.product,
                kind=OrderKind.RENEWAL.value,
                state=OrderState.OPEN.value,
                waiting_reason=None,
                note=None,
                applicant_account_id=card.holder_account_id,
                person_id=o.person_id,
                organisation_id=o.organisation_id,
                method=o.method,
                country=o.country,
                email=o.email,
                common_name=o.common_name,
                validity_days=o.validity_days,
                parent_card_id=card.id,
                submitted_at=now,
                updated_at=now,
            )
            for slot in form.slots:
                repo.slot_add(
                    s,
                    order_id=order_id,
                    name=slot.name,
                    profile=slot.profile,
                    subject_json=frozen[slot.name],
                    validity_days=o.validity_days,
                    key_location="card",
                    state="awaiting-csr",
                    csr_sha256=None,
                    hsm_key_label=None,
                    issuer=None,
                    serial_hex=None,
                    on_hold=False,
                    not_after=None,
                    issued_at=None,
                )
            rrepo.renewal_add(
                s,
                order_id=order_id,
                card_id=card.id,
                issue_on=issue_on,
                csrs=json.dumps({k: base64.b64encode(v).decode() for k, v in sorted(csrs.items())}),
                state="requested",
                requested_at=now,
                requested_by=principal.name,
                settled_at=None,
                outcome=None,
            )
            self.ra._audit(
                s,
                principal,
                Role.APPLICANT,
                "renewal.requested",
                "order",
                order_id,
                {
                    "kind": OrderKind.RENEWAL.value,
                    "renews_card": card.id,
                    "renews": [f"{x.issuer}:{x.serial_hex}" for x in form.slots],
                    "product": o.product,
                    "method": o.method,
                    "issue_on": issue_on.isoformat(),
                    "window_latest": form.window.latest.isoformat(),
                    "subjects": {x.name: json.loads(frozen[x.name]) for x in form.slots},
                    "csr_sha256": {k: _sha256(v) for k, v in sorted(csrs.items())},
                },
                at=now,
            )
        return order_id

    # -- documents -----------------------------------------------------------------------------

    def _renewal_order(self, s: UnitOfWork, principal: Principal, order_id: int, *, lock: bool = False) -> OrderRec:
        order = self.ra._order(s, order_id, principal, lock=lock)
        if order.kind != OrderKind.RENEWAL or rrepo.renewal_get(s, order_id) is None:
            raise RAError(RAErrorKind.NOT_FOUND, f"no renewal order {order_id}")
        return order

    @staticmethod
    def _doc_aad(order_id: int, kind: str, sha256: str) -> bytes:
        return f"qtsp-ra-renewal-document:{order_id}:{kind}:{sha256}".encode()

    def add_document(
        self, principal: Principal, order_id: int, kind: str, content: bytes, signatory_id: int | None = None
    ) -> RenewalDocRec:
        """Receive the contract, the declaration or the general terms of a renewal order (from the
        holder, or an RA officer who received it), stored encrypted with its digest, supplier,
        receipt time and signer.  ``signatory_id``: the organisation's legal representative who
        signed the contract (None: the holder signed).  A replaced document voids approvals."""
        if kind not in UPLOADED_DOCUMENTS:
            hint = "; upload the ID copy with POST /api/orders/<id>/copy" if kind == "id-copy" else ""
            raise RAError(RAErrorKind.MALFORMED, f"kind must be one of {', '.join(sorted(UPLOADED_DOCUMENTS))}{hint}")
        if kind != "contract" and signatory_id is not None:
            raise RAError(RAErrorKind.MALFORMED, f"the {kind} is the holder's: only the contract names a signatory")
        try:
            checked = check_copy(content)
        except RAError as exc:
            raise RAError(exc.kind, exc.detail.replace("the copy", f"the {kind}", 1)) from None
        with self.ra.db.write() as s:
            order = self._renewal_order(s, principal, order_id, lock=True)
            self.ra._editable(s, order_id, principal)
            acting = self.ra._own_or(principal, order.applicant_account_id, Role.RA_OFFICER)
            card = repo.card_get(s, order.parent_card_id or 0)
            assert card is not None
            c = self._load(s, card)
            signed_by = f"{c.holder.given_names} {c.holder.surname} (holder)"
            if kind == "contract":
                signed_by, problem = self._contract_signer(c, signatory_id)
                if problem is not None:
                    raise _refuse([_finding("contract_signer", problem)])
            now = self.ra.clock()
            rrepo.document_put(
                s,
                order.id,
                kind,
                media_type=checked.media_type,
                size=checked.size,
                sha256=checked.sha256,
                key_id=self.ra.data_key.key_id,
                ciphertext=self.ra.data_key.encrypt(content, self._doc_aad(order.id, kind, checked.sha256)),
                signed_by=signed_by,
                signatory_id=signatory_id,
                supplied_by=principal.name,
                received_at=now,
            )
            self.ra._invalidate_approvals(s, order, principal, acting)
            self.ra._audit(
                s,
                principal,
                acting,
                "renewal.document_received",
                "order",
                order.id,
                {
                    "document": kind,
                    "sha256": checked.sha256,
                    "size": checked.size,
                    "media_type": checked.media_type,
                    "signed_by": signed_by,
                    "signatory_id": signatory_id,
                },
                at=now,
            )
            return next(x for x in rrepo.documents(s, order.id) if x.kind == kind)

    def _contract_signer(self, c: _Card, signatory_id: int | None) -> tuple[str, str | None]:
        """The signer's name and the rule's refusal, if any."""
        holder_sig, sigs = self._representatives(c)
        signer = next((x for x in sigs if x.id == signatory_id), None) if signatory_id is not None else None
        signer_is_holder = signatory_id is None or (signer is not None and same_person(_person(signer), c.holder))
        problem = contract_signer_problem(
            organisation=c.org.name if c.org is not None else None,
            holder_is_representative=holder_sig is not None,
            signer_is_holder=signer_is_holder,
            signer_is_representative=signer is not None,
        )
        if signer is not None:
            return f"{signer.given_names} {signer.surname} ({signer.role})", problem
        return f"{c.holder.given_names} {c.holder.surname} (holder)", problem

    def _documents(self, s: UnitOfWork, order_id: int) -> dict[str, JSONValue]:
        out: dict[str, JSONValue] = dict.fromkeys(DOCUMENTS)
        for d in rrepo.documents(s, order_id):
            out[d.kind] = {
                "received_at": d.received_at.isoformat(),
                "sha256": d.sha256,
                "size": d.size,
                "media_type": d.media_type,
                "supplied_by": d.supplied_by,
                "signed_by": d.signed_by,
                "signatory_id": d.signatory_id,
                "purged_at": d.purged_at.isoformat() if d.purged_at else None,
            }
        copy = repo.copy_get(s, order_id)
        if copy is not None:
            rec = copy[0]
            out["id-copy"] = {
                "received_at": rec.uploaded_at.isoformat(),
                "sha256": rec.sha256,
                "size": rec.size,
                "media_type": rec.media_type,
                "supplied_by": rec.uploaded_by,
                "signed_by": None,
                "signatory_id": None,
            }
        return out

    def get(self, principal: Principal, order_id: int) -> RenewalView:
        with self.ra.db.read() as s:
            order = self._renewal_order(s, principal, order_id)
            if Role.APPLICANT not in principal.roles or order.applicant_account_id != principal.account_id:
                principal.require(Role.RA_OFFICER, Role.AUDITOR)
            renewal = rrepo.renewal_get(s, order_id)
            assert renewal is not None
            card = repo.card_by_order(s, order_id)
            return RenewalView(
                renewal,
                order,
                self._documents(s, order_id),
                tuple(repo.approvals(s, order_id)),
                card.id if card else None,
            )

    # -- approval ------------------------------------------------------------------------------

    def approve(self, principal: Principal, order_id: int) -> ApprovalResult:
        """An RA officer checks the documents and approves (TOTP session; two different officers
        where the product demands it).  The last approval schedules the issuance for the chosen date.

        :raises RAError: POLICY_VIOLATION naming what is missing or no longer holds (documents,
            contract signer, eligibility, date), FORBIDDEN (own order, subject), CONFLICT.
        """
        acting = principal.require(Role.RA_OFFICER, second_factor=True)
        with self.ra.db.read() as s:
            order = self._renewal_order(s, principal, order_id)
            parent = repo.card_get(s, order.parent_card_id or 0)
            assert parent is not None
            c = self._load(s, parent)
        current = self._current(c)
        with self.ra.db.write() as s:
            order = self._renewal_order(s, principal, order_id, lock=True)
            order_transition(OrderState(order.state), OrderEvent.APPROVE, acting)  # refuses early
            if principal.account_id == order.applicant_account_id or principal.person_id == order.person_id:
                raise RAError(
                    RAErrorKind.FORBIDDEN, "nobody approves their own renewal or one of which they are the subject"
                )
            approver = repo.person_get(s, principal.person_id) if principal.person_id is not None else None
            if approver is not None and same_person(
                PersonData(approver.given_names, approver.surname, approver.date_of_birth),
                self.ra._subject_person(s, order),
            ):
                raise RAError(RAErrorKind.FORBIDDEN, "nobody approves a renewal of which they are the subject")
            done = repo.approvals(s, order.id)
            if principal.name in done:
                raise RAError(
                    RAErrorKind.CONFLICT, "you have already approved this renewal; a second, different RA officer must"
                )
            renewal = rrepo.renewal_get(s, order.id)
            card = repo.card_get(s, order.parent_card_id or 0, lock=True)
            assert renewal is not None and card is not None
            c = self._load(s, card)
            now = self.ra.clock()
            findings = self._eligibility(card, current, now)
            window = renewal_window(card.not_after, now, self.min_days)
            if renewal.issue_on > window.latest:
                findings += issue_date_findings(renewal.issue_on, window)
            docs = self._documents(s, order.id)
            missing = [k for k in DOCUMENTS if docs[k] is None]
            if missing:
                findings.append(_finding("documents_missing", f"documents missing: {', '.join(missing)}"))
            contract = next((d for d in rrepo.documents(s, order.id) if d.kind == "contract"), None)
            if contract is not None:
                _, problem = self._contract_signer(c, contract.signatory_id)
                if problem is not None:
                    findings.append(_finding("contract_signer", problem))
            if findings:
                raise _refuse(findings)
            repo.approval_add(s, order.id, principal.name, now)
            approvals = (*done, principal.name)
            needed = 2 if c.product.four_eyes else 1
            if len(approvals) < needed:
                self.ra._audit(
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
            subjects = {x.name: SubjectInput.from_json_obj(json.loads(x.subject_json)) for x in repo.slots(s, order.id)}
            self.ra._bind_dns(s, order, c.product, subjects, now)
            rrepo.renewal_update(s, order.id, state="scheduled")
            state = self.ra._transition(
                s,
                order,
                OrderEvent.APPROVE,
                acting,
                principal,
                {
                    "approvals": list(approvals),
                    "renewal": True,
                    "issue_on": renewal.issue_on.isoformat(),
                    "documents": {k: v["sha256"] for k, v in docs.items() if isinstance(v, dict)},
                },
            )
        return ApprovalResult(state.value, approvals, needed)

    # -- scheduled issuance --------------------------------------------------------------------

    def issue_due(self) -> RenewalRun:
        """Issue every approved renewal whose date has come, re-checking eligibility first; if it
        no longer holds nothing is issued, the order is cancelled and the reason recorded.

        Idempotent and crash-safe: the slots go through :meth:`RAService._issue_slot` (attempt
        reference journaled at the CA); a slot left ``issuing`` is settled by
        :meth:`RAService.reconcile_issuing`, and a later run completes the renewal once every slot
        is recorded.  A CA that cannot be reached leaves the renewal for the next run.
        """
        with self.ra.db.read() as s:
            due = rrepo.renewals_due(s, self.ra.clock().date())
        issued: list[int] = []
        not_issued: list[int] = []
        pending: list[int] = []
        for order_id in due:
            try:
                outcome = self._issue_one(order_id)
            except Exception:  # one renewal's failure must not stop the others; retried next run
                log.exception("renewal order %s: issuance failed; retried on the next run", order_id)
                outcome = "pending"
            {"issued": issued, "not-issued": not_issued}.get(outcome, pending).append(order_id)
        return RenewalRun(tuple(issued), tuple(not_issued), tuple(pending))

    def _issue_one(self, order_id: int) -> str:
        with self.ra.db.read() as s:
            order = repo.order_get(s, order_id)
            renewal = rrepo.renewal_get(s, order_id)
            assert order is not None and renewal is not None
            slots = repo.slots(s, order_id)
            card = repo.card_get(s, renewal.card_id)
            assert card is not None
            c = self._load(s, card)
        if renewal.state != "scheduled" or order.state != OrderState.IN_PRODUCTION:
            return "pending"
        if any(x.state == "issuing" for x in slots):
            return "pending"  # an attempt in flight or interrupted: reconcile_issuing settles it
        if any(x.state == "awaiting-csr" for x in slots):
            try:
                current = self._current(c)
            except RAError as exc:
                if exc.kind is not RAErrorKind.POLICY_VIOLATION:
                    raise
                return self._not_issued(order_id, exc.detail)
            findings = self._eligibility(card, current, self.ra.clock())
            if findings:
                return self._not_issued(order_id, "; ".join(f"{f.message} [{f.code}]" for f in findings))
            csrs = json.loads(renewal.csrs)
            for slot in slots:
                if slot.state != "awaiting-csr":
                    continue
                try:
                    self.ra._issue_slot(SYSTEM, Role.SYSTEM, order_id, slot.name, base64.b64decode(csrs[slot.name]))
                except RAError as exc:
                    if exc.kind is RAErrorKind.CA_REFUSED:
                        return self._not_issued(order_id, f"slot {slot.name}: {exc.detail}")
                    raise
        return self._finish(order_id)

    def _finish(self, order_id: int) -> str:
        """Every slot recorded: the new card is delivered online and the renewal order is done."""
        with self.ra.db.write() as s:
            order = repo.order_get(s, order_id, lock=True)
            assert order is not None
            card = repo.card_by_order(s, order_id)
            if order.state != OrderState.IN_PRODUCTION or card is None:
                return "pending"
            now = self.ra.clock()
            # Delivered online: the holder installs the certificate on the token and confirms (or it
            # activates itself after [ra] activation_hours, like a shipped card).
            repo.card_update(s, card.id, shipped_at=now)
            rrepo.renewal_update(s, order_id, state="issued", settled_at=now, outcome=f"issued: card {card.id}")
            self.ra._audit(
                s,
                SYSTEM,
                Role.SYSTEM,
                "renewal.issued",
                "card",
                card.id,
                {
                    "order_id": order_id,
                    "renews_card": order.parent_card_id,
                    "serials": [f"{x.issuer}:{x.serial_hex}" for x in repo.slots(s, order_id)],
                },
                at=now,
            )
            self.ra._transition(s, order, OrderEvent.COMPLETE, Role.SYSTEM, SYSTEM, {"renewal": "issued"})
        return "issued"

    def _not_issued(self, order_id: int, reason: str) -> str:
        """Cancel the renewal order, recording why nothing (more) is issued.  A certificate already
        issued for another slot of the same renewal (the CA refused a later slot) belongs to no
        card: it is revoked (cessationOfOperation), so no usable orphan remains."""
        with self.ra.db.write() as s:
            order = repo.order_get(s, order_id, lock=True)
            assert order is not None
            if order.state != OrderState.IN_PRODUCTION:
                return "pending"
            now = self.ra.clock()
            orphans = [x for x in repo.slots(s, order_id) if x.state == "issued" and x.issuer and x.serial_hex]
            rrepo.renewal_update(s, order_id, state="not-issued", settled_at=now, outcome=reason[:255])
            details: dict[str, JSONValue] = {"renewal": "not issued", "reason": reason}
            self.ra._transition(s, order, OrderEvent.CANCEL, Role.SYSTEM, SYSTEM, details, note=reason)
        for slot in orphans:
            assert slot.issuer is not None and slot.serial_hex is not None
            try:
                self.ra.ca.revoke(
                    slot.issuer,
                    slot.serial_hex,
                    "cessationOfOperation",
                    actor=SYSTEM.actor(Role.SYSTEM),
                    received_at=now,
                )
                outcome = "revoked"
            except Exception as exc:  # recorded for an operator; the order stays cancelled
                log.exception("renewal order %s: revoking the orphan certificate failed", order_id)
                outcome = f"revocation failed: {exc}"[:200]
            with self.ra.db.write() as s:
                self.ra._audit(
                    s,
                    SYSTEM,
                    Role.SYSTEM,
                    "renewal.orphan_revoked" if outcome == "revoked" else "renewal.orphan_not_revoked",
                    "order",
                    order_id,
                    {"slot": slot.name, "certificate": f"{slot.issuer}:{slot.serial_hex}", "outcome": outcome},
                )
        return "not-issued"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
