"""SQLAlchemy 2 models of the RA's tables, on the CA's :class:`ca.store.models.Base` (one metadata).

Created and changed only by Alembic (``migrations/versions/0100_ra_core.py`` onwards); the migration
test proves models and migrations agree on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy import UniqueConstraint as Unique
from sqlalchemy.orm import Mapped, mapped_column

from ca.store.models import Base

__all__ = [
    "Account",
    "AccountRole",
    "ApiSession",
    "Approval",
    "Card",
    "ChamberRecord",
    "DNBinding",
    "EvidenceCopy",
    "FollowUp",
    "FollowUpChallenge",
    "FollowUpFailure",
    "IdentityRecord",
    "LoginFailure",
    "Order",
    "OrderPassword",
    "Organisation",
    "OutboxMessage",
    "OzbRecord",
    "Person",
    "RegistrationSecret",
    "Renewal",
    "RenewalDocument",
    "RevocationPassword",
    "RevocationRequest",
    "SecretFailure",
    "Shop",
    "ShopMember",
    "Signatory",
    "SlotRecord",
    "SmsMobile",
    "Tan",
    "TanFailure",
    "TransportPin",
]

_NAME = 128
_ACTOR = 255


class Person(Base):
    """A natural person known to the RA (applicants, signatories who applied, operators)."""

    __tablename__ = "ra_person"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    given_names: Mapped[str] = mapped_column(String(_NAME))
    surname: Mapped[str] = mapped_column(String(_NAME))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    match_key: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the normalised names and date of birth: one record per person."""
    created_at: Mapped[dt.datetime]


class Account(Base):
    __tablename__ = "ra_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("ra_person.id"))
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Encrypted with the data key (AES-GCM); operators only."""
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    disabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(_ACTOR))
    confirmed_at: Mapped[dt.datetime | None]
    """When the email address was confirmed (seed 001: the account is activated by the link mailed
    to it); an applicant cannot log in before.  Operators: when a security officer created them."""

    __table_args__ = (
        CheckConstraint("kind IN ('applicant', 'operator')", name="kind"),
        # One applicant account per person (operators may also hold one applicant account).
        Unique("kind", "person_id"),
    )


class AccountRole(Base):
    __tablename__ = "ra_account_role"

    account_id: Mapped[int] = mapped_column(ForeignKey("ra_account.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)


class ApiSession(Base):
    """A bearer token (stored as its SHA-256 only) and whether a second factor was presented."""

    __tablename__ = "ra_session"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ra_account.id"))
    second_factor: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]

    __table_args__ = (Index(None, "account_id"),)


class Organisation(Base):
    __tablename__ = "ra_organisation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    legal_form: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2))
    register_court: Mapped[str | None] = mapped_column(String(_NAME))
    register_number: Mapped[str | None] = mapped_column(String(32))
    vat_number: Mapped[str | None] = mapped_column(String(32))
    identifier: Mapped[str] = mapped_column(String(64), unique=True)
    """EN 319 412-1 §5.1.4 organizationIdentifier (NTR from the register, else VAT)."""
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(_ACTOR))


class Signatory(Base):
    """An authorised signatory (vertretungsberechtigte Person) of an organisation."""

    __tablename__ = "ra_signatory"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("ra_organisation.id"))
    given_names: Mapped[str] = mapped_column(String(_NAME))
    surname: Mapped[str] = mapped_column(String(_NAME))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    role: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index(None, "organisation_id"),)


class Order(Base):
    """An order for a product.  ``kind`` and ``parent_card_id`` carry follow-up and renewal orders."""

    __tablename__ = "ra_order"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    waiting_reason: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    applicant_account_id: Mapped[int] = mapped_column(ForeignKey("ra_account.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("ra_person.id"))
    """The applicant; for natural-person products also the subject."""
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("ra_organisation.id"))
    method: Mapped[str] = mapped_column(String(32))
    country: Mapped[str] = mapped_column(String(2))
    email: Mapped[str | None] = mapped_column(String(254))
    common_name: Mapped[str | None] = mapped_column(String(64))
    """Legal persons: the seal's commonName (natural persons: from the names)."""
    validity_days: Mapped[int] = mapped_column(Integer)
    parent_card_id: Mapped[int | None] = mapped_column(Integer)
    """The card a follow-up or renewal order continues (later issue)."""
    postal_address: Mapped[str | None] = mapped_column(Text)
    """Where the card and letters about it (order passwords, registration secrets) are posted:
    2-6 lines joined by newlines, confirmed at identification."""
    shop_id: Mapped[int | None] = mapped_column(ForeignKey("ra_shop.id"))
    """The shop (Shop-Code storefront) the order was placed through, if any (ra/shop.py)."""
    submitted_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    channel: Mapped[str] = mapped_column(String(16), server_default="portal")
    """Where it was ordered (ra/tan.py): ``portal`` (the TSP's own portal, no SMS-TAN) or ``partner``
    (a chamber's or organisation's issuing office, a special application page)."""

    __table_args__ = (
        CheckConstraint(
            "state IN ('open', 'waiting', 'in-production', 'shipped', 'done', 'rejected', 'cancelled')", name="state"
        ),
        CheckConstraint("kind IN ('new', 'follow-up', 'renewal')", name="kind"),
        CheckConstraint("channel IN ('portal', 'partner')", name="channel"),
        Index(None, "applicant_account_id"),
        Index(None, "state"),
    )


class Approval(Base):
    __tablename__ = "ra_approval"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("ra_order.id"))
    officer: Mapped[str] = mapped_column(String(_ACTOR))
    at: Mapped[dt.datetime]

    __table_args__ = (Unique("order_id", "officer"),)


class IdentityRecord(Base):
    __tablename__ = "ra_identity_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("ra_order.id"), unique=True)
    document_type: Mapped[str] = mapped_column(String(32))
    document_number: Mapped[str] = mapped_column(String(32))
    issuing_state: Mapped[str] = mapped_column(String(2))
    expires_on: Mapped[dt.date] = mapped_column(Date)
    given_names: Mapped[str] = mapped_column(String(_NAME))
    surname: Mapped[str] = mapped_column(String(_NAME))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    verified_by: Mapped[str] = mapped_column(String(_ACTOR))
    verified_place: Mapped[str] = mapped_column(String(_ACTOR))
    verified_at: Mapped[dt.datetime]
    security_features: Mapped[str] = mapped_column(Text)
    """JSON list."""
    recorded_by: Mapped[str] = mapped_column(String(_ACTOR))
    recorded_at: Mapped[dt.datetime]


class EvidenceCopy(Base):
    """A copy of the identity document, AES-GCM encrypted at rest; its digest stays with the order."""

    __tablename__ = "ra_evidence_copy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("ra_order.id"), unique=True)
    media_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    redacted: Mapped[bool] = mapped_column(Boolean)
    redacted_fields: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(16))
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    """None once the retention period has passed (TS 119 461 ISS-8.5.2-08); the digest stays."""
    uploaded_by: Mapped[str] = mapped_column(String(_ACTOR))
    uploaded_at: Mapped[dt.datetime]
    purged_at: Mapped[dt.datetime | None]


class OzbRecord(Base):
    __tablename__ = "ra_ozb"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("ra_order.id"), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("ra_organisation.id"))
    signatory_id: Mapped[int | None] = mapped_column(ForeignKey("ra_signatory.id"))
    signed_by: Mapped[str] = mapped_column(String(_ACTOR))
    signed_on: Mapped[dt.date] = mapped_column(Date)
    document_sha256: Mapped[str] = mapped_column(String(64))
    organisation_agrees: Mapped[bool] = mapped_column(Boolean)
    person_agrees: Mapped[bool] = mapped_column(Boolean)
    recorded_by: Mapped[str] = mapped_column(String(_ACTOR))
    recorded_at: Mapped[dt.datetime]


class ChamberRecord(Base):
    __tablename__ = "ra_chamber_confirmation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("ra_order.id"), unique=True)
    chamber: Mapped[str] = mapped_column(String(_NAME))
    registration_number: Mapped[str] = mapped_column(String(_NAME))
    profession: Mapped[str] = mapped_column(String(_NAME))
    profession_oid: Mapped[str | None] = mapped_column(String(64))
    confirmed_on: Mapped[dt.date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(_ACTOR))
    recorded_at: Mapped[dt.datetime]


class SlotRecord(Base):
    """An issuance order for one certificate slot, frozen at approval (DESIGN.md step 4)."""

    __tablename__ = "ra_slot"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("ra_order.id"))
    name: Mapped[str] = mapped_column(String(32))
    profile: Mapped[str] = mapped_column(String(64))
    subject_json: Mapped[str] = mapped_column(Text)
    validity_days: Mapped[int] = mapped_column(Integer)
    key_location: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16))
    csr_sha256: Mapped[str | None] = mapped_column(String(64))
    hsm_key_label: Mapped[str | None] = mapped_column(String(128))
    issuer: Mapped[str | None] = mapped_column(String(32))
    serial_hex: Mapped[str | None] = mapped_column(String(40))
    on_hold: Mapped[bool] = mapped_column(Boolean)
    not_after: Mapped[dt.datetime | None]
    issued_at: Mapped[dt.datetime | None]
    evidence_ref: Mapped[str | None] = mapped_column(String(255))
    """The current (or the successful) issuance attempt's reference, handed to the CA with the CSR:
    unique per attempt, so reconciliation asks the CA about exactly this attempt."""
    issuing_since: Mapped[dt.datetime | None]
    """When the slot was marked ``issuing`` (reconciliation picks slots issuing for too long)."""

    __table_args__ = (
        Unique("order_id", "name"),
        Unique("evidence_ref"),
        Index(None, "state", "issuing_since"),
        CheckConstraint("state IN ('awaiting-csr', 'issuing', 'issued')", name="state"),
        CheckConstraint("key_location IN ('card', 'hsm')", name="key_location"),
    )


class Card(Base):
    """An issued product (D-Trust "Meine Produkte"): a card, or a remote seal."""

    __tablename__ = "ra_card"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("ra_order.id"), unique=True)
    product: Mapped[str] = mapped_column(String(64))
    holder_account_id: Mapped[int] = mapped_column(ForeignKey("ra_account.id"))
    state: Mapped[str] = mapped_column(String(32))
    not_after: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]
    shipped_at: Mapped[dt.datetime | None]
    activated_at: Mapped[dt.datetime | None]
    revocation_requested_at: Mapped[dt.datetime | None]
    revocation_reason: Mapped[str | None] = mapped_column(String(32))
    revoked_at: Mapped[dt.datetime | None]

    __table_args__ = (
        CheckConstraint(
            "state IN ('not-activated', 'valid', 'revocation-in-progress', 'revoked', 'expired')", name="state"
        ),
        Index(None, "holder_account_id"),
        Index(None, "state"),
    )


class RevocationPassword(Base):
    """A card's revocation password (D-Trust "Sperrpasswort"), as an Argon2 hash only: never
    returned by any interface.  ``authorised_person`` names who may revoke with it."""

    __tablename__ = "ra_revocation_password"

    card_id: Mapped[int] = mapped_column(ForeignKey("ra_card.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    authorised_person: Mapped[str | None] = mapped_column(String(_NAME))
    set_at: Mapped[dt.datetime]
    set_by: Mapped[str] = mapped_column(String(_ACTOR))


class RevocationRequest(Base):
    """Every revocation request, carried out or refused, with its receipt time, requester, how
    they were authenticated and the decision (EN 319 411-1 REV-6.4.5-09, REV-6.2.4-09)."""

    __tablename__ = "ra_revocation_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("ra_card.id"))
    """None when the named card does not exist (``card_ref`` keeps what was asked for)."""
    card_ref: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime]
    requester_kind: Mapped[str] = mapped_column(String(24))
    requester: Mapped[str] = mapped_column(String(_ACTOR))
    authenticated_by: Mapped[str] = mapped_column(String(24))
    auth_failed: Mapped[bool] = mapped_column(Boolean)
    """A wrong revocation password: these rows drive the rate limit."""
    client_address: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(16))
    decided_at: Mapped[dt.datetime]
    carried_out_at: Mapped[dt.datetime | None]
    detail: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index(None, "card_id", "received_at"),
        Index(None, "client_address", "received_at"),
        CheckConstraint(
            "requester_kind IN ('holder', 'authorised-person', 'organisation', 'revocation-officer')",
            name="requester_kind",
        ),
        CheckConstraint(
            "authenticated_by IN ('session', 'session-totp', 'revocation-password', 'sms-tan')",
            name="authenticated_by",
        ),
        CheckConstraint("decision IN ('accepted', 'carried-out', 'refused')", name="decision"),
    )


class DNBinding(Base):
    """A subject DN and the person (or organisation) it belongs to: never reassigned (EN 319 411-1
    REG-6.2.2-01A; STANDARDS.md)."""

    __tablename__ = "ra_dn_binding"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_key: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the canonical subject DN (the DN text itself may exceed an index's limits)."""
    subject_dn: Mapped[str] = mapped_column(Text)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("ra_person.id"))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("ra_organisation.id"))
    first_order_id: Mapped[int] = mapped_column(ForeignKey("ra_order.id"))
    created_at: Mapped[dt.datetime]


class OutboxMessage(Base):
    """An SMS or a letter waiting for (or taken by) its gateway.  Recipient and text are only in
    ``payload``, encrypted with the RA data key (AAD: the reference) and wiped once sent."""

    __tablename__ = "ra_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(36), unique=True)
    channel: Mapped[str] = mapped_column(String(8))
    purpose: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("ra_account.id"))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("ra_card.id"))
    recipient_hint: Mapped[str] = mapped_column(String(64))
    """A masked recipient for operators (``+49********67``); the full one is in the payload only."""
    key_id: Mapped[str] = mapped_column(String(16))
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]
    next_attempt_at: Mapped[dt.datetime]
    claimed_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    gateway_ref: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index(None, "state", "next_attempt_at"),
        CheckConstraint("channel IN ('sms', 'post', 'email')", name="channel"),
        CheckConstraint("state IN ('pending', 'sending', 'sent', 'failed', 'cancelled')", name="state"),
    )


class LoginFailure(Base):
    """A failed login: drives the per-email and per-address login limits (never the password)."""

    __tablename__ = "ra_login_failure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_sha256: Mapped[str] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime]

    __table_args__ = (Index(None, "email_sha256", "at"), Index(None, "client_address", "at"))


class RegistrationAttempt(Base):
    """An anonymous account registration (``POST /api/accounts``), by the address it named (its
    SHA-256) and the client address: it mails that address, so both are limited (a mail bomb
    relayed through the trust center otherwise)."""

    __tablename__ = "ra_registration_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_sha256: Mapped[str] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime]

    __table_args__ = (Index(None, "email_sha256", "at"), Index(None, "client_address", "at"))


class SmsMobile(Base):
    """The holder's mobile number for SMS-TANs (seed 000: "stored exclusively for this purpose"),
    per order: given with the first application or registered later with a posted registration
    secret.  Personal data: only encrypted with the RA data key (AAD: the order id); ``hint`` is
    the masked form shown to callers."""

    __tablename__ = "ra_sms_mobile"

    order_id: Mapped[int] = mapped_column(ForeignKey("ra_order.id"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16))
    number: Mapped[bytes] = mapped_column(LargeBinary)
    hint: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(24))
    set_at: Mapped[dt.datetime]
    set_by: Mapped[str] = mapped_column(String(_ACTOR))

    __table_args__ = (CheckConstraint("source IN ('application', 'registration-secret')", name="source"),)


class RegistrationSecret(Base):
    """A registration secret posted to the order's address (seed 000), as an Argon2 hash only;
    single use, expires, dies after too many wrong entries."""

    __tablename__ = "ra_registration_secret"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("ra_card.id"))
    secret_hash: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    requested_at: Mapped[dt.datetime]
    requested_by: Mapped[str] = mapped_column(String(_ACTOR))
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    outbox_ref: Mapped[str] = mapped_column(String(36))

    __table_args__ = (
        Index(None, "card_id", "requested_at"),
        CheckConstraint("state IN ('active', 'used', 'superseded', 'dead')", name="state"),
    )


class EmailConfirmation(Base):
    """A code mailed to an email address: an order's (seed 004: "verify the e-mail address"), which
    is confirmed before it is certified (rfc822Name in the UPC card's authentication certificate),
    or a new applicant account's (seed 001: the account is activated by the link mailed to it).
    Only the SHA-256 of the code is kept."""

    __tablename__ = "ra_email_confirmation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("ra_order.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("ra_account.id"))
    email: Mapped[str] = mapped_column(String(254))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    confirmed_at: Mapped[dt.datetime | None]
    confirmed_from: Mapped[str | None] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(255))
    outbox_ref: Mapped[str] = mapped_column(String(36))

    __table_args__ = (
        Index(None, "order_id", "state"),
        Index(None, "account_id", "state"),
        CheckConstraint("state IN ('pending', 'confirmed', 'superseded')", name="state"),
        CheckConstraint("(order_id IS NULL) <> (account_id IS NULL)", name="subject"),
    )


class Tan(Base):
    """A one-time TAN sent by SMS, bound to a card and a purpose.  Only a keyed HMAC of it is
    stored (ra/tan.py explains why that suffices for a 6-digit, 5-minute, 3-attempt secret)."""

    __tablename__ = "ra_tan"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("ra_card.id"))
    purpose: Mapped[str] = mapped_column(String(16))
    salt: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    requested_by: Mapped[str] = mapped_column(String(_ACTOR))
    client_address: Mapped[str | None] = mapped_column(String(64))
    outbox_ref: Mapped[str] = mapped_column(String(36))

    __table_args__ = (
        Index(None, "card_id", "created_at"),
        Index(None, "client_address", "created_at"),
        CheckConstraint("purpose IN ('follow-up', 'revocation')", name="purpose"),
        CheckConstraint("state IN ('active', 'used', 'superseded', 'dead')", name="state"),
    )


class TanFailure(Base):
    """A refused TAN (``tan``), a wrong registration secret (``registration-secret``) or an anonymous
    TAN request that sent nothing (``tan-request``): these rows drive the per-card and per-address
    limits.  ``card_id`` is empty when the card id asked for does not exist."""

    __tablename__ = "ra_tan_failure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("ra_card.id"))
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[dt.datetime]
    client_address: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(None, "card_id", "kind", "at"),
        Index(None, "client_address", "at"),
        CheckConstraint("kind IN ('tan', 'registration-secret', 'tan-request')", name="kind"),
    )


class Shop(Base):
    """An organisation's shop (D-Trust "Shop-Code", seed 001): a storefront limiting the products and
    identification methods offered to applicants who entered its code.  The code itself is never
    stored: only its HMAC-SHA256 under a key derived from the RA data key (ra/shop.py)."""

    __tablename__ = "ra_shop"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("ra_organisation.id"))
    name: Mapped[str] = mapped_column(String(_NAME))
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str] = mapped_column(String(16))
    """The data key the digest was made under."""
    products: Mapped[str] = mapped_column(Text)
    """JSON list of product names."""
    methods: Mapped[str] = mapped_column(Text)
    """JSON list of identification methods."""
    valid_until: Mapped[dt.datetime | None]
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(_ACTOR))
    disabled_at: Mapped[dt.datetime | None]
    disabled_by: Mapped[str | None] = mapped_column(String(_ACTOR))

    __table_args__ = (Index(None, "organisation_id"),)


class ShopMember(Base):
    """A shop kept in an applicant's navigation after they entered its code once."""

    __tablename__ = "ra_shop_member"

    account_id: Mapped[int] = mapped_column(ForeignKey("ra_account.id"), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("ra_shop.id"), primary_key=True)
    entered_at: Mapped[dt.datetime]


class SecretFailure(Base):
    """A wrong shop code or a wrong password at a transport-PIN reveal: these rows drive the
    per-account, per-card and per-address rate limits (counted in the database, so across processes)."""

    __tablename__ = "ra_secret_failure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("ra_account.id"))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("ra_card.id"))
    client_address: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime]

    __table_args__ = (
        CheckConstraint("purpose IN ('shop-code', 'transport-pin')", name="purpose"),
        Index(None, "purpose", "at"),
    )


class TransportPin(Base):
    """A card's transport PIN (seed 004: the card ships inactive behind it), AES-GCM encrypted with
    the data key and bound to the card id; the ciphertext is destroyed (NULL) when the holder has
    seen it once, or when the card is revoked or expires.  Who revealed it and when stay."""

    __tablename__ = "ra_transport_pin"

    card_id: Mapped[int] = mapped_column(ForeignKey("ra_card.id"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16))
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    digits: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(_ACTOR))
    revealed_at: Mapped[dt.datetime | None]
    revealed_by: Mapped[str | None] = mapped_column(String(_ACTOR))
    destroyed_at: Mapped[dt.datetime | None]
    destroyed_reason: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        CheckConstraint("destroyed_reason IN ('revealed', 'revoked', 'expired')", name="destroyed_reason"),
    )


class Renewal(Base):
    """An online renewal (issue 6 point 2, the DigiSign model): the renewal order (kind
    ``renewal``), the card it renews, the issuance date the holder chose, the CSRs of the new keys
    (DER, base64, per slot) and what the scheduled issuance did (``outcome`` says why not)."""

    __tablename__ = "ra_renewal"

    order_id: Mapped[int] = mapped_column(ForeignKey("ra_order.id"), primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("ra_card.id"))
    issue_on: Mapped[dt.date] = mapped_column(Date)
    csrs: Mapped[str] = mapped_column(Text)
    """JSON object: slot name -> the CSR (DER, base64) of the new key."""
    state: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[dt.datetime]
    requested_by: Mapped[str] = mapped_column(String(_ACTOR))
    settled_at: Mapped[dt.datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(_ACTOR))

    __table_args__ = (
        Index(None, "card_id"),
        Index(None, "state", "issue_on"),
        CheckConstraint("state IN ('requested', 'scheduled', 'issued', 'not-issued')", name="state"),
    )


class RenewalDocument(Base):
    """A document of a renewal order (contract, declaration, general terms), AES-GCM encrypted at
    rest, with its digest, who supplied it, when, and who signed it (the ID copy is the order's
    :class:`EvidenceCopy`)."""

    __tablename__ = "ra_renewal_document"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("ra_order.id"))
    kind: Mapped[str] = mapped_column(String(16))
    media_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    """None once the retention period has passed, as for the ID copy (its digest stays)."""
    signed_by: Mapped[str] = mapped_column(String(_ACTOR))
    """Who signed: the holder, or the organisation's legal representative (by name)."""
    signatory_id: Mapped[int | None] = mapped_column(ForeignKey("ra_signatory.id"))
    """The representative (ra_signatory) who signed the contract; None when the holder signed."""
    supplied_by: Mapped[str] = mapped_column(String(_ACTOR))
    received_at: Mapped[dt.datetime]
    purged_at: Mapped[dt.datetime | None]

    __table_args__ = (
        Unique("order_id", "kind"),
        CheckConstraint("kind IN ('contract', 'declaration', 'terms')", name="kind"),
    )


class FollowUp(Base):
    """How a follow-up order (a new card for the holder of a valid card) was authenticated, its place
    in the chain of follow-ups without fresh identification, and the QcIdentMethod its certificates
    carry (EN 319 411-1 REG-6.3.1-00E: how often a certificate is issued again without new identity
    validation)."""

    __tablename__ = "ra_followup"

    order_id: Mapped[int] = mapped_column(ForeignKey("ra_order.id"), primary_key=True)
    parent_card_id: Mapped[int] = mapped_column(ForeignKey("ra_card.id"))
    authenticated_by: Mapped[str] = mapped_column(String(24))
    signer: Mapped[str | None] = mapped_column(String(_ACTOR))
    """``<CA name>:<serial hex>`` of the certificate whose signature authenticated the request."""
    position: Mapped[int] = mapped_column(Integer)
    """1 for the first follow-up after an identification, 2 for the second, ..."""
    identification_required: Mapped[bool] = mapped_column(Boolean)
    qc_ident_method: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]

    __table_args__ = (
        Index(None, "parent_card_id"),
        CheckConstraint(
            "authenticated_by IN ('qualified-signature', 'order-password', 'sms-tan')", name="authenticated_by"
        ),
    )


class FollowUpChallenge(Base):
    """A single-use nonce the holder signs with the current card (stored as its SHA-256 only)."""

    __tablename__ = "ra_followup_challenge"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("ra_card.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("ra_account.id"))
    nonce_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]

    __table_args__ = (Index(None, "card_id"),)


class OrderPassword(Base):
    """An order password posted to the card order's postal address: an Argon2 hash only, single
    use, with an expiry; a newer one supersedes the older."""

    __tablename__ = "ra_order_password"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("ra_card.id"))
    password_hash: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    letter_ref: Mapped[str] = mapped_column(String(36))

    __table_args__ = (
        Index(None, "card_id", "state"),
        CheckConstraint("state IN ('issued', 'used', 'superseded')", name="state"),
    )


class FollowUpFailure(Base):
    """A failed follow-up authentication (wrong order password): these rows drive the rate limit."""

    __tablename__ = "ra_followup_failure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("ra_card.id"))
    method: Mapped[str] = mapped_column(String(24))
    at: Mapped[dt.datetime]

    __table_args__ = (Index(None, "card_id", "at"),)
