"""Request and response schemas of the RA API; the OpenAPI document is generated from them."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, Date, DateTime, Dict, File, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from ra.evidence import DocumentType
from ra.products import ORDER_CHANNELS
from ra.workflow import WaitingReason

__all__ = [
    "AcceptedOut",
    "AccountOut",
    "ApprovalOut",
    "AuditOut",
    "CardOut",
    "ChamberIn",
    "CopyIn",
    "CopyOut",
    "CreatedOut",
    "CsrIn",
    "EmailIn",
    "HoldIn",
    "IdentityIn",
    "IssuedSlotOut",
    "LoginIn",
    "LoginOut",
    "OperatorIn",
    "OperatorOut",
    "OrderIn",
    "OrderOut",
    "OrganisationIn",
    "OrganisationOut",
    "OzbIn",
    "ProductOut",
    "RegisterIn",
    "RejectIn",
    "RevokeIn",
    "RolesIn",
    "ShipOut",
    "SlotOut",
]

_TEXT = Length(min=1, max=128)


class RegisterIn(Schema):
    email = String(required=True, validate=Length(max=254))
    password = String(required=True, validate=Length(min=12, max=1024))
    given_names = String(required=True, validate=_TEXT)
    surname = String(required=True, validate=_TEXT)
    date_of_birth = Date(required=True)


class LoginIn(Schema):
    email = String(required=True, validate=Length(max=254))
    password = String(required=True, validate=Length(max=1024))
    totp = String(load_default=None, validate=Length(equal=6))


class LoginOut(Schema):
    token = String()
    second_factor = Boolean()


class CreatedOut(Schema):
    id = Integer()


class AcceptedOut(Schema):
    detail = String(metadata={"description": "The same for every request: what happens is told by mail"})


class EmailIn(Schema):
    email = String(required=True, validate=Length(min=3, max=254))


class SlotDefOut(Schema):
    name = String()
    profile = String()


class ProductOut(Schema):
    name = String()
    title = String()
    subject_kind = String()
    delivery = String()
    four_eyes = Boolean()
    validity_days = Integer()
    methods = List(String())
    evidence = List(String())
    slots = List(Nested(SlotDefOut))


class OrderIn(Schema):
    product = String(required=True, validate=Length(max=64))
    method = String(required=True, validate=Length(max=32))
    country = String(required=True, validate=Length(equal=2))
    email = String(load_default=None, validate=Length(max=254))
    organisation_id = Integer(load_default=None)
    common_name = String(load_default=None, validate=Length(min=1, max=64))
    validity_days = Integer(load_default=None, validate=Range(min=1, max=1096))
    postal_address = String(
        load_default=None,
        validate=Length(max=500),
        metadata={"description": "Where the card and letters are posted: 2-6 lines separated by newlines"},
    )
    channel = String(
        load_default="portal",
        validate=OneOf(ORDER_CHANNELS),
        metadata={"description": "Where the card is ordered: the portal, or a partner channel (SMS-TAN offered)"},
    )
    mobile = String(
        load_default=None,
        load_only=True,
        validate=Length(max=32),
        metadata={"description": "Mobile number for SMS-TAN (E.164), where the product and channel offer it"},
    )
    shop_id = Integer(load_default=None)


class SlotOut(Schema):
    name = String()
    profile = String()
    state = String()
    key_location = String()
    issuer = String(allow_none=True)
    serial_hex = String(allow_none=True)
    not_after = DateTime(allow_none=True)


class IssuedSlotOut(SlotOut):
    """The slot a CSR was issued for (its own component: the same class as both a view's output and
    a nested field of another would be registered twice in the OpenAPI document)."""


class OrderOut(Schema):
    id = Integer()
    product = String()
    product_title = String()
    kind = String()
    parent_card_id = Integer(allow_none=True)
    state = String()
    waiting_reason = String(allow_none=True)
    note = String(allow_none=True)
    method = String()
    country = String()
    email = String(allow_none=True)
    organisation_id = Integer(allow_none=True)
    validity_days = Integer()
    postal_address = String(allow_none=True)
    channel = String()
    submitted_at = DateTime()
    updated_at = DateTime()
    approvals = List(String())
    evidence = Dict()
    slots = List(Nested(SlotOut))
    card_id = Integer(allow_none=True)


class IdentityIn(Schema):
    document_type = String(required=True, validate=OneOf([d.value for d in DocumentType]))
    document_number = String(required=True, validate=Length(min=1, max=32))
    issuing_state = String(required=True, validate=Length(min=2, max=2))
    expires_on = Date(required=True)
    given_names = String(required=True, validate=_TEXT)
    surname = String(required=True, validate=_TEXT)
    date_of_birth = Date(required=True)
    verified_by = String(required=True, validate=Length(min=1, max=255))
    verified_place = String(required=True, validate=Length(min=1, max=255))
    verified_at = DateTime(required=True)
    security_features = List(String(validate=_TEXT), required=True, validate=Length(max=20))


class CopyIn(Schema):
    file = File(required=True)  # type: ignore[no-untyped-call]
    redacted = String(load_default="", validate=Length(max=128))
    """Comma-separated: eye-colour, height, card-access-number."""


class CopyOut(Schema):
    sha256 = String()


class OzbIn(Schema):
    signatory_id = Integer(load_default=None)
    signed_by = String(required=True, validate=Length(min=1, max=255))
    signed_on = Date(required=True)
    document_sha256 = String(required=True, validate=Length(equal=64))
    organisation_agrees = Boolean(required=True)
    person_agrees = Boolean(required=True)


class ChamberIn(Schema):
    chamber = String(required=True, validate=_TEXT)
    registration_number = String(required=True, validate=_TEXT)
    profession = String(required=True, validate=_TEXT)
    profession_oid = String(load_default=None, validate=Length(max=64))
    confirmed_on = Date(required=True)


class HoldIn(Schema):
    reason = String(required=True, validate=OneOf([r.value for r in WaitingReason]))
    note = String(load_default=None, validate=Length(max=1000))


class RejectIn(Schema):
    reason = String(required=True, validate=Length(min=1, max=1000))


class ApprovalOut(Schema):
    state = String()
    approvals = List(String())
    needed = Integer()


class CsrIn(Schema):
    csr_pem = String(required=True, validate=Length(min=1, max=20000))


class CardOut(Schema):
    id = Integer()
    order_id = Integer()
    product = String()
    state = String()
    not_after = DateTime()
    shipped_at = DateTime(allow_none=True)
    activated_at = DateTime(allow_none=True)
    revocation_requested_at = DateTime(allow_none=True)
    revocation_reason = String(allow_none=True)
    revoked_at = DateTime(allow_none=True)


class RevokeIn(Schema):
    reason = String(required=True, validate=Length(min=1, max=32))
    requester_name = String(
        load_default=None,
        allow_none=True,
        validate=Length(min=1, max=100),
        metadata={"description": ("For an RA officer acting for the organisation: who at the organisation asked")},
    )


class RevocationPasswordIn(Schema):
    password = String(required=True, validate=Length(min=1, max=256), load_only=True)
    authorised_person = String(load_default=None, allow_none=True, validate=Length(min=1, max=128))


class RevocationPasswordOut(Schema):
    card_id = Integer()
    set_at = DateTime()


class RevocationLetterIn(Schema):
    authorised_person = String(required=True, validate=Length(min=1, max=128))
    postal_address = String(
        required=True,
        validate=Length(min=3, max=500),
        metadata={"description": "The authorised person's address: 2-6 lines separated by newlines"},
    )


class RevocationLetterOut(Schema):
    card_id = Integer()
    set_at = DateTime()
    letter = String(metadata={"description": "The outbox reference of the letter carrying the password"})


class RevocationRequestOut(Schema):
    id = Integer()
    card_id = Integer(allow_none=True)
    card_ref = String()
    received_at = String()
    requester_kind = String()
    requester = String()
    authenticated_by = String()
    auth_failed = Boolean()
    client_address = String(allow_none=True)
    reason = String()
    decision = String()
    decided_at = String()
    carried_out_at = String(allow_none=True)
    detail = String(allow_none=True)


class PasswordRevocationIn(Schema):
    card_id = Integer(required=True)
    password = String(required=True, validate=Length(min=1, max=256), load_only=True)
    reason = String(required=True, validate=Length(min=1, max=32))
    requester_name = String(required=True, validate=Length(min=1, max=128))


class PasswordRevocationOut(Schema):
    request_id = Integer()
    card_id = Integer()
    state = String()


class SignatoryIn(Schema):
    given_names = String(required=True, validate=_TEXT)
    surname = String(required=True, validate=_TEXT)
    date_of_birth = Date(required=True)
    role = String(required=True, validate=Length(min=1, max=64))


class SignatoryOut(SignatoryIn):
    id = Integer()


class OrganisationIn(Schema):
    name = String(required=True, validate=Length(min=1, max=255))
    legal_form = String(required=True, validate=Length(min=1, max=64))
    country = String(required=True, validate=Length(equal=2))
    register_court = String(load_default=None, validate=_TEXT)
    register_number = String(load_default=None, validate=Length(min=1, max=32))
    vat_number = String(load_default=None, validate=Length(min=1, max=32))
    signatories = List(Nested(SignatoryIn), required=True, validate=Length(min=1, max=50))


class OrganisationOut(Schema):
    id = Integer()
    name = String()
    legal_form = String()
    country = String()
    register_court = String(allow_none=True)
    register_number = String(allow_none=True)
    vat_number = String(allow_none=True)
    identifier = String()
    signatories = List(Nested(SignatoryOut))


class OperatorIn(Schema):
    email = String(required=True, validate=Length(max=254))
    password = String(required=True, validate=Length(min=12, max=1024))
    roles = List(String(), required=True, validate=Length(min=1, max=5))
    given_names = String(load_default=None, validate=_TEXT)
    surname = String(load_default=None, validate=_TEXT)
    date_of_birth = Date(load_default=None)


class OperatorOut(Schema):
    id = Integer()
    totp_secret = String()
    """Shown once; enrol it in the operator's authenticator."""


class RolesIn(Schema):
    roles = List(String(), required=True, validate=Length(min=1, max=5))


class AccountOut(Schema):
    id = Integer()
    email = String()
    kind = String()
    roles = List(String())
    disabled = Boolean()


class AuditOut(Schema):
    seq = Integer()
    at = DateTime()
    actor = String()
    role = String()
    action = String()
    object_type = String(allow_none=True)
    object_id = String(allow_none=True)
    details = String()


class AuditQuery(Schema):
    """Filters of ``GET /api/audit`` (all optional; combined with AND)."""

    certificate = String(load_default=None, metadata={"description": "issuer:serial, e.g. qes:1a2b..."})
    order = Integer(load_default=None, validate=Range(min=1))
    actor = String(load_default=None)
    since = DateTime(load_default=None)
    until = DateTime(load_default=None)
    limit = Integer(load_default=100, validate=Range(min=1, max=10000))


class EvidenceQuery(Schema):
    include_copy = Boolean(load_default=False, metadata={"description": "include the ID copy (auditor role)"})


class EvidenceOut(Schema):
    certificate = Dict()
    registration = Dict(allow_none=True)
    audit_events = List(Dict())
    prepared_for = Dict()
    evidence_copy_content = Dict(required=False)


class ShipOut(OrderOut):
    transport_pin = String(
        allow_none=True,
        metadata={
            "description": "The card's transport PIN, returned this once to card production (ra/transport_pin.py)"
        },
    )
