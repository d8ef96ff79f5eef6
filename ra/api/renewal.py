"""API of online renewal (:mod:`ra.renewal`): the pre-filled form and the request on the card (the
holder only), the renewal's documents and view, and the RA officer's approval.  Views on the RA
blueprint; the service checks roles and ownership again."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Date, DateTime, Dict, File, Integer, List, Nested, String
from apiflask.validators import Length, OneOf
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from werkzeug.datastructures import FileStorage

from ra.api import _principal, _service, auth, bp, requires
from ra.api import schemas as sc
from ra.errors import RAError, RAErrorKind
from ra.evidence import MAX_COPY_BYTES
from ra.renewal import UPLOADED_DOCUMENTS, RenewalForm, RenewalService, RenewalView
from ra.roles import Role

__all__: list[str] = []


class WindowOut(Schema):
    earliest = Date()
    latest = Date()
    closes_at = DateTime()
    min_days = Integer()


class FormSlotOut(Schema):
    name = String()
    profile = String()
    issuer = String()
    serial_hex = String()
    subject = Dict(keys=String(), values=String())


class RenewalFormOut(Schema):
    card_id = Integer()
    product = String()
    product_title = String()
    not_after = DateTime()
    window = Nested(WindowOut)
    slots = List(Nested(FormSlotOut))
    documents_required = List(String())
    contract_signer = String()


class RenewalIn(Schema):
    issue_on = Date(required=True)
    subjects = Dict(
        keys=String(validate=Length(min=1, max=32)), values=Dict(keys=String(), values=String()), required=True
    )
    csrs = Dict(
        keys=String(validate=Length(min=1, max=32)), values=String(validate=Length(min=1, max=20000)), required=True
    )


class DocumentIn(Schema):
    kind = String(required=True, validate=OneOf(sorted(UPLOADED_DOCUMENTS)))
    file = File(required=True)  # type: ignore[no-untyped-call]
    signatory_id = Integer(load_default=None)


class DocumentOut(Schema):
    kind = String()
    sha256 = String()
    size = Integer()
    media_type = String()
    signed_by = String()
    signatory_id = Integer(allow_none=True)
    supplied_by = String()
    received_at = DateTime()


class RenewalOut(Schema):
    order_id = Integer()
    state = String()
    renewal_state = String()
    renews_card_id = Integer()
    issue_on = Date()
    requested_at = DateTime()
    outcome = String(allow_none=True)
    documents = Dict()
    approvals = List(String())
    new_card_id = Integer(allow_none=True)


def _renewals() -> RenewalService:
    return RenewalService(_service())


def _form_out(form: RenewalForm) -> dict[str, Any]:
    return {
        "card_id": form.card_id,
        "product": form.product,
        "product_title": form.product_title,
        "not_after": form.not_after,
        "window": form.window,
        "slots": [
            {"name": x.name, "profile": x.profile, "issuer": x.issuer, "serial_hex": x.serial_hex, "subject": x.subject}
            for x in form.slots
        ],
        "documents_required": list(form.documents_required),
        "contract_signer": form.contract_signer,
    }


def _renewal_out(view: RenewalView) -> dict[str, Any]:
    return {
        "order_id": view.order.id,
        "state": view.order.state,
        "renewal_state": view.renewal.state,
        "renews_card_id": view.renewal.card_id,
        "issue_on": view.renewal.issue_on,
        "requested_at": view.renewal.requested_at,
        "outcome": view.renewal.outcome,
        "documents": view.documents,
        "approvals": list(view.approvals),
        "new_card_id": view.new_card_id,
    }


@bp.get("/cards/<int:card_id>/renewal")
@bp.auth_required(auth)
@requires(Role.APPLICANT)
@bp.output(RenewalFormOut)
@bp.doc(summary="The holder's online renewal form, pre-filled from the current certificate, with the window")
def renewal_form(card_id: int) -> dict[str, Any]:
    return _form_out(_renewals().form(_principal(), card_id))


@bp.post("/cards/<int:card_id>/renewal")
@bp.auth_required(auth)
@requires(Role.APPLICANT)
@bp.input(RenewalIn, arg_name="data")
@bp.output(sc.CreatedOut, status_code=201)
@bp.doc(summary="The holder requests online renewal: the form unchanged, the issuance date, a CSR per slot (new key)")
def request_renewal(card_id: int, data: dict[str, Any]) -> dict[str, Any]:
    csrs: dict[str, bytes] = {}
    for slot, pem in data["csrs"].items():
        try:
            csrs[slot] = x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER)
        except ValueError:
            raise RAError(RAErrorKind.MALFORMED, f"csrs.{slot}: not a PEM certificate signing request") from None
    order_id = _renewals().request(
        _principal(), card_id, issue_on=data["issue_on"], subjects=data["subjects"], csrs=csrs
    )
    return {"id": order_id}


@bp.get("/renewals/<int:order_id>")
@bp.auth_required(auth)
@requires(Role.APPLICANT, Role.RA_OFFICER, Role.AUDITOR)
@bp.output(RenewalOut)
@bp.doc(summary="A renewal: its order, chosen date, documents (received when, digest, by whom, signer), outcome")
def get_renewal(order_id: int) -> dict[str, Any]:
    return _renewal_out(_renewals().get(_principal(), order_id))


@bp.post("/renewals/<int:order_id>/documents")
@bp.auth_required(auth)
@requires(Role.APPLICANT, Role.RA_OFFICER)
@bp.input(DocumentIn, location="form_and_files", arg_name="data")
@bp.output(DocumentOut, status_code=201)
@bp.doc(
    summary="Upload the contract, declaration or general terms (PDF or image, at most 2 MB); a contract signed by "
    "the organisation's legal representative names them (signatory_id)"
)
def add_document(order_id: int, data: dict[str, Any]) -> Any:
    upload = data["file"]
    assert isinstance(upload, FileStorage)
    content = upload.stream.read(MAX_COPY_BYTES + 1)
    return _renewals().add_document(_principal(), order_id, data["kind"], content, data["signatory_id"])


@bp.post("/renewals/<int:order_id>/approve")
@bp.auth_required(auth)
@requires(Role.RA_OFFICER)
@bp.output(sc.ApprovalOut)
@bp.doc(summary="An RA officer checks the documents and approves (TOTP session); issuance waits for the chosen date")
def approve_renewal(order_id: int) -> dict[str, Any]:
    result = _renewals().approve(_principal(), order_id)
    return {"state": result.state, "approvals": list(result.approvals), "needed": result.needed}
