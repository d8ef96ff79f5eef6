"""Frozen snapshots of the RA's rows: what crosses the storage boundary (never ORM rows)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = [
    "AccountRec",
    "CardRec",
    "ChamberRec",
    "CopyRec",
    "IdentityRec",
    "OrderRec",
    "OrganisationRec",
    "OzbRec",
    "PersonRec",
    "SignatoryRec",
    "SlotRec",
]


@dataclass(frozen=True, slots=True)
class PersonRec:
    id: int
    given_names: str
    surname: str
    date_of_birth: dt.date


@dataclass(frozen=True, slots=True)
class AccountRec:
    id: int
    email: str
    kind: str
    password_hash: str
    person_id: int | None
    totp_secret: bytes | None
    totp_last_step: int | None
    disabled: bool
    roles: tuple[str, ...]
    confirmed_at: dt.datetime | None = None
    """When the email address was confirmed; an applicant cannot log in before."""


@dataclass(frozen=True, slots=True)
class SignatoryRec:
    id: int
    organisation_id: int
    given_names: str
    surname: str
    date_of_birth: dt.date
    role: str


@dataclass(frozen=True, slots=True)
class OrganisationRec:
    id: int
    name: str
    legal_form: str
    country: str
    register_court: str | None
    register_number: str | None
    vat_number: str | None
    identifier: str
    signatories: tuple[SignatoryRec, ...]


@dataclass(frozen=True, slots=True)
class OrderRec:
    id: int
    product: str
    kind: str
    state: str
    waiting_reason: str | None
    note: str | None
    applicant_account_id: int
    person_id: int
    organisation_id: int | None
    method: str
    country: str
    email: str | None
    common_name: str | None
    validity_days: int
    parent_card_id: int | None
    submitted_at: dt.datetime
    updated_at: dt.datetime
    postal_address: str | None
    channel: str = "portal"


@dataclass(frozen=True, slots=True)
class IdentityRec:
    document_type: str
    document_number: str
    issuing_state: str
    expires_on: dt.date
    given_names: str
    surname: str
    date_of_birth: dt.date
    verified_by: str
    verified_place: str
    verified_at: dt.datetime
    security_features: str
    recorded_by: str
    recorded_at: dt.datetime


@dataclass(frozen=True, slots=True)
class CopyRec:
    media_type: str
    size: int
    sha256: str
    redacted: bool
    redacted_fields: str
    key_id: str
    uploaded_by: str
    uploaded_at: dt.datetime
    purged_at: dt.datetime | None = None
    """Set when the copy was deleted under the retention policy (its digest is kept)."""


@dataclass(frozen=True, slots=True)
class OzbRec:
    organisation_id: int
    signatory_id: int | None
    signed_by: str
    signed_on: dt.date
    document_sha256: str
    organisation_agrees: bool
    person_agrees: bool
    recorded_by: str
    recorded_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ChamberRec:
    chamber: str
    registration_number: str
    profession: str
    profession_oid: str | None
    confirmed_on: dt.date
    recorded_by: str
    recorded_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SlotRec:
    id: int
    order_id: int
    name: str
    profile: str
    subject_json: str
    validity_days: int
    key_location: str
    state: str
    csr_sha256: str | None
    hsm_key_label: str | None
    issuer: str | None
    serial_hex: str | None
    on_hold: bool
    not_after: dt.datetime | None
    issued_at: dt.datetime | None
    evidence_ref: str | None
    issuing_since: dt.datetime | None


@dataclass(frozen=True, slots=True)
class CardRec:
    id: int
    order_id: int
    product: str
    holder_account_id: int
    state: str
    not_after: dt.datetime
    created_at: dt.datetime
    shipped_at: dt.datetime | None
    activated_at: dt.datetime | None
    revocation_requested_at: dt.datetime | None
    revocation_reason: str | None
    revoked_at: dt.datetime | None
