"""The RA's REST API: an APIBlueprint under ``/api``, errors as RFC 9457 problem details, and the
OpenAPI document generated from the schemas at ``/api/openapi.json``.

Adapters only: each view parses input, calls one :class:`ra.service.RAService` method and maps
errors.  Every view but registration, login, the product list and revocation by revocation
password needs a bearer token, and :func:`requires` checks the caller's role before the body is
even validated; the service checks the role (and ownership) again.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Callable
from typing import Any, Final, TypeVar

from apiflask import APIBlueprint, APIFlask, HTTPTokenAuth
from apiflask.exceptions import HTTPError
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask import Response, after_this_request, current_app, jsonify, request
from werkzeug.datastructures import FileStorage

from ra.api import schemas as sc
from ra.audit_view import AuditView
from ra.errors import RAError, RAErrorKind
from ra.evidence import MAX_COPY_BYTES, DocumentType, IdentityEvidence, PersonData
from ra.organisation import ChamberConfirmation, OrganisationData, SignatoryData
from ra.roles import Principal, Role
from ra.service import OrderView, RAService

__all__ = ["PROBLEM_STATUS", "bp", "create_app", "init_app"]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

PROBLEM_STATUS: Final = {
    RAErrorKind.MALFORMED: 400,
    RAErrorKind.UNAUTHENTICATED: 401,
    RAErrorKind.FORBIDDEN: 403,
    RAErrorKind.SECOND_FACTOR_REQUIRED: 403,
    RAErrorKind.NOT_FOUND: 404,
    RAErrorKind.CONFLICT: 409,
    RAErrorKind.ILLEGAL_TRANSITION: 409,
    RAErrorKind.TOO_LARGE: 413,
    RAErrorKind.UNSUPPORTED_MEDIA: 415,
    RAErrorKind.POLICY_VIOLATION: 422,
    RAErrorKind.CA_REFUSED: 422,
    RAErrorKind.CA_UNAVAILABLE: 503,
    RAErrorKind.RATE_LIMITED: 429,
}
_PROBLEM_TYPE: Final = "urn:qtsp:problem:"
_EXTENSION: Final = "qtsp_ra"

bp = APIBlueprint("ra", __name__, url_prefix="/api", tag="Registration authority")
auth = HTTPTokenAuth(scheme="Bearer", description="A session token from POST /api/auth/login")


def _service() -> RAService:
    service = current_app.extensions[_EXTENSION]
    if not isinstance(service, RAService):
        service = service()  # a per-process factory (the production app opens its runtime lazily)
    assert isinstance(service, RAService)
    return service


def _verify(token: str) -> Principal | None:
    try:
        return _service().authenticate(token)
    except RAError:
        return None


auth.verify_token(_verify)


def _principal() -> Principal:
    user = auth.current_user
    assert isinstance(user, Principal)
    return user


def dispatch_after_response(service: RAService) -> None:
    """Hand the outbox to its gateways once this response has been sent, not before: an anonymous
    view answers alike whatever it queued, and the gateway's latency must not tell otherwise.  A
    failure is logged; the ra-outbox job sends the message later."""

    def dispatch() -> None:
        try:
            service.dispatch_outbox()
        except Exception:  # never a traceback into the server
            log.exception("dispatching the outbox after a response failed; the ra-outbox job retries")

    @after_this_request
    def _on_close(response: Response) -> Response:
        response.call_on_close(dispatch)
        return response


def requires(*roles: Role) -> Callable[[F], F]:
    """Refuse (403) a caller without one of ``roles`` before anything else runs."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _principal().require(*roles)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


# ----------------------------------------------------------------------------------------------
# Errors: RFC 9457 problem details


def _problem(status: int, title: str, detail: str | None, kind: str, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": f"{_PROBLEM_TYPE}{kind}", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def _http_error(error: HTTPError) -> Response:
    extra: dict[str, Any] = {}
    kind = "http"
    detail = None
    if error.status_code == 422 and error.detail:
        kind, extra["errors"] = "validation", error.detail
        detail = "the request does not match the schema"
    elif error.status_code == 401:
        kind, detail = "unauthenticated", "a valid bearer token is required"
    response = _problem(error.status_code, error.message or "Error", detail, kind, **extra)
    if error.headers:
        response.headers.extend(error.headers)
    return response


def _ra_error(error: RAError) -> Response:
    status = PROBLEM_STATUS[error.kind]
    extra: dict[str, Any] = {}
    if error.findings:
        extra["findings"] = [{"code": f.code, "message": f.message} for f in error.findings]
    from http import HTTPStatus

    response = _problem(status, HTTPStatus(status).phrase, error.detail, error.kind.value, **extra)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _internal(error: Exception) -> Response:
    log.exception("unhandled error in the RA API", exc_info=error)
    return _problem(500, "Internal Server Error", None, "internal")


# ----------------------------------------------------------------------------------------------
# Public


@bp.post("/accounts")
@bp.input(sc.RegisterIn, arg_name="data")
@bp.output(sc.AcceptedOut, status_code=202)
@bp.doc(
    summary="Open an applicant account (one per person and per address), active once the code mailed to the "
    "address is confirmed (POST /api/email-confirmations); the answer is the same for every address and person; "
    "20 per client address and hour (429), at most 3 mails per named address and day"
)
def register(data: dict[str, Any]) -> dict[str, Any]:
    from ra.email_confirmation import ACCOUNT_ANSWER

    service = _service()
    service.register_applicant(**data, client_address=request.remote_addr, dispatch=False)
    dispatch_after_response(service)
    return {"detail": ACCOUNT_ANSWER}


@bp.post("/accounts/confirmation")
@bp.input(sc.EmailIn, arg_name="data")
@bp.output(sc.AcceptedOut, status_code=202)
@bp.doc(
    summary="Mail a new activation code to an applicant account that is not active yet (3 per account and day); "
    "the answer is the same for every address"
)
def resend_account_confirmation(data: dict[str, Any]) -> dict[str, Any]:
    from ra.email_confirmation import ACCOUNT_ANSWER

    service = _service()
    service.email_confirmations.resend_account(data["email"], request.remote_addr, dispatch=False)
    dispatch_after_response(service)
    return {"detail": ACCOUNT_ANSWER}


@bp.post("/auth/login")
@bp.input(sc.LoginIn, arg_name="data")
@bp.output(sc.LoginOut)
@bp.doc(summary="Log in; operators add a TOTP code for actions that cause issuance or revocation")
def login(data: dict[str, Any]) -> dict[str, Any]:
    token, second = _service().login(data["email"], data["password"], data["totp"], request.remote_addr)
    return {"token": token, "second_factor": second}


@bp.get("/products")
@bp.output(sc.ProductOut(many=True))
@bp.doc(summary="The products, their identification methods and the evidence each needs")
def products() -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "title": p.title,
            "subject_kind": p.subject_kind,
            "delivery": p.delivery,
            "four_eyes": p.four_eyes,
            "validity_days": p.validity_days,
            "methods": sorted(m.value for m in p.methods),
            "evidence": list(p.evidence),
            "slots": [{"name": s.name, "profile": s.profile} for s in p.slots],
        }
        for p in _service().products.values()
    ]


# ----------------------------------------------------------------------------------------------
# Orders


def _order_out(view: OrderView) -> dict[str, Any]:
    o = view.order
    return {
        "id": o.id,
        "product": o.product,
        "product_title": view.product_title,
        "kind": o.kind,
        "parent_card_id": o.parent_card_id,
        "state": o.state,
        "waiting_reason": o.waiting_reason,
        "note": o.note,
        "method": o.method,
        "country": o.country,
        "email": o.email,
        "organisation_id": o.organisation_id,
        "validity_days": o.validity_days,
        "postal_address": o.postal_address,
        "channel": o.channel,
        "submitted_at": o.submitted_at,
        "updated_at": o.updated_at,
        "approvals": list(view.approvals),
        "evidence": view.evidence,
        "slots": view.slots,
        "card_id": view.card_id,
    }


_ORDER_READERS: Final = (Role.APPLICANT, Role.RA_OFFICER, Role.CA_OPERATOR, Role.AUDITOR)


@bp.get("/orders")
@bp.auth_required(auth)
@requires(*_ORDER_READERS)
@bp.output(sc.OrderOut(many=True))
@bp.doc(summary="Orders: applicants see their own only")
def list_orders() -> list[dict[str, Any]]:
    return [_order_out(v) for v in _service().list_orders(_principal())]


@bp.post("/orders")
@bp.auth_required(auth)
@requires(Role.APPLICANT)
@bp.input(sc.OrderIn, arg_name="data")
@bp.output(sc.CreatedOut, status_code=201)
@bp.doc(summary="Order a product")
def create_order(data: dict[str, Any]) -> dict[str, Any]:
    return {"id": _service().create_order(_principal(), **data)}


@bp.get("/orders/<int:order_id>")
@bp.auth_required(auth)
@requires(*_ORDER_READERS)
@bp.output(sc.OrderOut)
def get_order(order_id: int) -> dict[str, Any]:
    return _order_out(_service().get_order(_principal(), order_id))


@bp.post("/orders/<int:order_id>/identity")
@bp.auth_required(auth)
@requires(Role.RA_OFFICER)
@bp.input(sc.IdentityIn, arg_name="data")
@bp.output(sc.OrderOut)
@bp.doc(summary="Record the identity document as verified (who, where, when, which security features)")
def record_identity(order_id: int, data: dict[str, Any]) -> dict[str, Any]:
    evidence = IdentityEvidence(
        document_type=DocumentType(data["document_type"]),
        document_number=data["document_number"],
        issuing_state=data["issuing_state"],
        expires_on=data["expires_on"],
        given_names=data["given_names"],
        surname=data["surname"],
        date_of_birth=data["date_of_birth"],
        verified_by=data["verified_by"],
        verified_place=data["verified_place"],
        verified_at=data["verified_at"],
        security_features=tuple(data["security_features"]),
    )
    if evidence.verified_at.tzinfo is None:
        raise RAError(RAErrorKind.MALFORMED, "verified_at: needs a time zone (UTC offset)")
    service = _service()
    service.record_identity(_principal(), order_id, evidence)
    return _order_out(service.get_order(_principal(), order_id))


@bp.post("/orders/<int:order_id>/copy")
@bp.auth_required(auth)
@requires(Role.APPLICANT, Role.RA_OFFICER)
@bp.input(sc.CopyIn, location="form_and_files", arg_name="data")
@bp.output(sc.CopyOut, status_code=201)
@bp.doc(summary="Upload a copy of the identity document: PDF, JPEG, PNG, BMP or TIFF, at most 2 MB")
def upload_copy(order_id: int, data: dict[str, Any]) -> dict[str, Any]:
    upload = data["file"]
    assert isinstance(upload, FileStorage)
    content = upload.stream.read(MAX_COPY_BYTES + 1)
    redacted = tuple(x.strip() for x in str(data["redacted"]).split(",") if x.strip())
    return {"sha256": _service().upload_copy(_principal(), order_id, content, redacted)}


@bp.get("/orders/<int:order_id>/copy")
@bp.auth_required(auth)
@requires(Role.RA_OFFICER, Role.AUDITOR)
@bp.doc(summary="Read the stored copy (decrypted; every read is audited)", responses={200: "The copy"})
def read_copy(order_id: int) -> Response:
    media_type, content = _service().read_copy(_principal(), order_id)
    return Response(content, mimetype=media_type)


@bp.post("/orders/<int:order_id>/ozb")
@bp.auth_required(auth)
@requires(Role.RA_OFFICER)
@bp.input(sc.OzbIn, arg_name="data")
@bp.output(sc.OrderOut)
@bp.doc(summary="Record the organisation affiliation confirmation (OZB)")
def record_ozb(order_id: int, data: dict[str, Any]) -> dict[str, Any]:
    service = _service()
    service.record_ozb(_principal(), order_id, **data)
    return _order_out(service.get_order(_principal(), order_id))


@bp.post("/orders/<int:order_id>/chamber")
@bp.auth_required(auth)
@requires(Role.RA_OFFICER)
@bp.input(sc.ChamberIn, arg_name="data")
@bp.output(sc.OrderOut)
@bp.doc(summary="Record the chamber confirmation of a professional attribute")
def record_chamber(order_id: int, data: dict[str, Any]) -> dict[str, Any]:
    service = _service()
    service.record_chamber(_principal(), order_id, ChamberConfirmation(**data))
    return _order_out(service.get_order(_principal(), order_id))


def _transition_view(order_id: int, action: Callable[[RAService, Principal], object]) -> dict[str, Any]:
    service = _service()
    action(service, _principal())
    return _order_out(service.get_order(_principal(), order_id))


@bp.post("/orders/<int:order_id>/hold")
@bp.auth_required(auth)
@requires(Role.RA_OFFICER)
@bp.input(sc.HoldIn, arg_name="data")
@bp.output(sc.OrderOut)
@bp.doc(summary="Put the order in waiting (incomplete or data error)")
def hold(order_id: int, data: dict[str, Any]) -> dict[str, Any]:
    return _transition_view(order_id, lambda s, p: s.hold(p, order_id, data["reason"], data["note"]))


@bp.post("/orders/<int:order_id>/resubmit")
@bp.auth_required(auth)
@requires(Role.APPLICANT, Role.RA_OFFICER)
@bp.output(sc.OrderOut)
def resubmit(order_id: int) -> dict[str, Any]:
    return _transition_view(order_id, lambda s, p: s.resubmit(p, order_id))


@bp.post("/orders/<int:order_id>/reject")
@bp.auth_required(auth)
@requires(Role.RA_OFFICER)
@bp.input(sc.RejectIn, arg_name="data")
@bp.output(sc.OrderOut)
def reject(order_id: int, data: dict[str, Any]) -> dict[str, Any]:
    return _transition_view(order_id, lambda s, p: s.reject(p, order_id, data["reason"]))


@bp.post("/orders/<int:order_id>/cancel")
@bp.auth_required(auth)
@requires(Role.APPLICANT, Role.RA_OFFICER)
@bp.output(sc.OrderOut)
def cancel(order_id: int) -> dict[str, Any]:
    return _transition_view(order_id, lambda s, p: s.cancel(p, order_id))


@bp.post("/orders/<int:order_id>/approve")
@bp.auth_required(auth)
@requires(Role.RA_OFFICER)
@bp.output(sc.ApprovalOut)
@bp.doc(summary="Approve (TOTP session required); the last approval needed starts production")
def approve(order_id: int) -> dict[str, Any]:
    result = _service().approve(_principal(), order_id)
    return {"state": result.state, "approvals": list(result.approvals), "needed": result.needed}


@bp.post("/orders/<int:order_id>/slots/<slot>/csr")
@bp.auth_required(auth)
@requires(Role.CA_OPERATOR)
@bp.input(sc.CsrIn, arg_name="data")
@bp.output(sc.IssuedSlotOut)
@bp.doc(summary="Card personalisation submits one slot's CSR; the CA issues (TOTP session required)")
def submit_csr(order_id: int, slot: str, data: dict[str, Any]) -> Any:
    try:
        csr = x509.load_pem_x509_csr(data["csr_pem"].encode())
    except ValueError:
        raise RAError(RAErrorKind.MALFORMED, "csr_pem: not a PEM certificate signing request") from None
    der = csr.public_bytes(serialization.Encoding.DER)
    return _service().submit_csr(_principal(), order_id, slot, der)


@bp.post("/orders/<int:order_id>/ship")
@bp.auth_required(auth)
@requires(Role.CA_OPERATOR)
@bp.output(sc.ShipOut)
@bp.doc(summary="The card leaves production; the response carries its transport PIN, this once")
def ship(order_id: int) -> dict[str, Any]:
    service = _service()
    pin = service.ship(_principal(), order_id)
    return {**_order_out(service.get_order(_principal(), order_id)), "transport_pin": pin}


# ----------------------------------------------------------------------------------------------
# Cards

_CARD_READERS: Final = (Role.APPLICANT, Role.RA_OFFICER, Role.REVOCATION_OFFICER, Role.CA_OPERATOR, Role.AUDITOR)


@bp.get("/cards")
@bp.auth_required(auth)
@requires(*_CARD_READERS)
@bp.output(sc.CardOut(many=True))
@bp.doc(summary="Products: applicants see their own only")
def list_cards() -> Any:
    return _service().list_cards(_principal())


@bp.get("/cards/<int:card_id>")
@bp.auth_required(auth)
@requires(*_CARD_READERS)
@bp.output(sc.CardOut)
def get_card(card_id: int) -> Any:
    return _service().get_card(_principal(), card_id)


@bp.post("/cards/<int:card_id>/confirm-receipt")
@bp.auth_required(auth)
@requires(Role.APPLICANT)
@bp.output(sc.CardOut)
@bp.doc(summary="The holder confirms receipt: the card is activated")
def confirm_receipt(card_id: int) -> Any:
    return _service().confirm_receipt(_principal(), card_id)


@bp.post("/cards/<int:card_id>/revoke")
@bp.auth_required(auth)
@requires(Role.APPLICANT, Role.REVOCATION_OFFICER, Role.RA_OFFICER)
@bp.input(sc.RevokeIn, arg_name="data")
@bp.output(sc.CardOut)
@bp.doc(
    summary="Request revocation: the holder; a revocation officer (any reason, e.g. privilegeWithdrawn); an RA "
    "officer for the organisation of an affiliated card (affiliationChanged). Officers need a TOTP session."
)
def revoke(card_id: int, data: dict[str, Any]) -> Any:
    return _service().request_revocation(_principal(), card_id, data["reason"], data["requester_name"])


@bp.put("/cards/<int:card_id>/revocation-password")
@bp.auth_required(auth)
@requires(Role.APPLICANT)
@bp.input(sc.RevocationPasswordIn, arg_name="data")
@bp.output(sc.RevocationPasswordOut)
@bp.doc(summary="The holder sets the card's revocation password and the person authorised to use it")
def set_revocation_password(card_id: int, data: dict[str, Any]) -> dict[str, Any]:
    at = _service().set_revocation_password(_principal(), card_id, data["password"], data["authorised_person"])
    return {"card_id": card_id, "set_at": at}


@bp.post("/cards/<int:card_id>/revocation-password/letter")
@bp.auth_required(auth)
@requires(Role.APPLICANT, Role.RA_OFFICER)
@bp.input(sc.RevocationLetterIn, arg_name="data")
@bp.output(sc.RevocationLetterOut, status_code=201)
@bp.doc(
    summary="Generate the card's revocation password and post it to the person authorised to revoke "
    "(the holder, or an RA officer with TOTP for an affiliated card)"
)
def issue_revocation_password(card_id: int, data: dict[str, Any]) -> dict[str, Any]:
    at, letter = _service().issue_revocation_password(
        _principal(), card_id, data["authorised_person"], data["postal_address"]
    )
    return {"card_id": card_id, "set_at": at, "letter": letter}


@bp.get("/cards/<int:card_id>/revocation-requests")
@bp.auth_required(auth)
@requires(Role.APPLICANT, Role.RA_OFFICER, Role.REVOCATION_OFFICER, Role.AUDITOR)
@bp.output(sc.RevocationRequestOut(many=True))
@bp.doc(summary="The card's revocation requests with receipt time, requester, authentication and decision")
def revocation_requests(card_id: int) -> Any:
    return _service().revocation_requests(_principal(), card_id)


@bp.post("/revocations")
@bp.input(sc.PasswordRevocationIn, arg_name="data")
@bp.output(sc.PasswordRevocationOut)
@bp.doc(
    summary="Revoke with the card's revocation password (the revocation-authorised person, no account); "
    "wrong passwords are rate-limited per card and client address (429 with Retry-After)"
)
def revoke_with_password(data: dict[str, Any]) -> dict[str, Any]:
    request_id, card = _service().revoke_with_password(
        data["card_id"], data["password"], data["reason"], data["requester_name"], request.remote_addr
    )
    return {"request_id": request_id, "card_id": card.id, "state": card.state}


# ----------------------------------------------------------------------------------------------
# Organisations, operators, audit


@bp.post("/organisations")
@bp.auth_required(auth)
@requires(Role.RA_OFFICER)
@bp.input(sc.OrganisationIn, arg_name="data")
@bp.output(sc.CreatedOut, status_code=201)
@bp.doc(summary="Record an organisation with its authorised signatories")
def create_organisation(data: dict[str, Any]) -> dict[str, Any]:
    org = OrganisationData(
        name=data["name"],
        legal_form=data["legal_form"],
        country=data["country"],
        register_court=data["register_court"],
        register_number=data["register_number"],
        vat_number=data["vat_number"],
    )
    sigs = [SignatoryData(**x) for x in data["signatories"]]
    return {"id": _service().create_organisation(_principal(), org, sigs)}


@bp.get("/organisations/<int:org_id>")
@bp.auth_required(auth)
@requires(Role.RA_OFFICER, Role.AUDITOR)
@bp.output(sc.OrganisationOut)
def get_organisation(org_id: int) -> Any:
    return _service().get_organisation(_principal(), org_id)


@bp.get("/operators")
@bp.auth_required(auth)
@requires(Role.SECURITY_OFFICER, Role.AUDITOR)
@bp.output(sc.AccountOut(many=True))
def list_accounts() -> Any:
    return _service().list_accounts(_principal())


@bp.post("/operators")
@bp.auth_required(auth)
@requires(Role.SECURITY_OFFICER)
@bp.input(sc.OperatorIn, arg_name="data")
@bp.output(sc.OperatorOut, status_code=201)
@bp.doc(summary="Create an operator account (TOTP session required); the TOTP secret is returned once")
def create_operator(data: dict[str, Any]) -> dict[str, Any]:
    person = None
    if data["given_names"] and data["surname"] and data["date_of_birth"]:
        person = PersonData(data["given_names"], data["surname"], data["date_of_birth"])
    account_id, secret = _service().create_operator(
        _principal(), email=data["email"], password=data["password"], roles=data["roles"], person=person
    )
    return {"id": account_id, "totp_secret": secret}


@bp.put("/operators/<int:account_id>/roles")
@bp.auth_required(auth)
@requires(Role.SECURITY_OFFICER)
@bp.input(sc.RolesIn, arg_name="data")
@bp.output(sc.CreatedOut)
def set_roles(account_id: int, data: dict[str, Any]) -> dict[str, Any]:
    _service().set_roles(_principal(), account_id, data["roles"])
    return {"id": account_id}


@bp.get("/audit")
@bp.auth_required(auth)
@requires(Role.AUDITOR, Role.SECURITY_OFFICER)
@bp.input(sc.AuditQuery, location="query", arg_name="query")
@bp.output(sc.AuditOut(many=True))
@bp.doc(summary="Audit events by certificate (issuer:serial), order, actor and time range (read only)")
def audit(query: dict[str, Any]) -> list[dict[str, Any]]:
    rows = _audit_view().events(
        _principal(),
        certificate=query["certificate"],
        order_id=query["order"],
        actor=query["actor"],
        since=_aware(query["since"]),
        until=_aware(query["until"]),
        limit=query["limit"],
    )
    return [
        {**row, "at": dt.datetime.fromisoformat(str(row["at"])), "details": json.dumps(row["details"], sort_keys=True)}
        for row in rows
    ]


@bp.get("/audit/evidence/<issuer>/<serial>")
@bp.auth_required(auth)
@requires(Role.AUDITOR, Role.SECURITY_OFFICER)
@bp.input(sc.EvidenceQuery, location="query", arg_name="query")
@bp.output(sc.EvidenceOut)
@bp.doc(summary="Everything behind one certificate; the ID copy only for the auditor role")
def evidence(issuer: str, serial: str, query: dict[str, Any]) -> dict[str, Any]:
    return _audit_view().evidence_bundle(_principal(), issuer, serial.lower(), include_copy=query["include_copy"])


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """Query times without a zone are taken as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _audit_view() -> AuditView:
    service = _service()
    return AuditView(db=service.db, ra=service)


# ----------------------------------------------------------------------------------------------
# Application


def init_app(app: APIFlask, service: RAService | Callable[[], RAService]) -> None:
    """Register the RA blueprint and its error handling on ``app`` (the production factory reuses this).

    :param service: the service, or a factory called per request (it must cache per process).
    """
    app.extensions[_EXTENSION] = service
    app.config.setdefault("MAX_CONTENT_LENGTH", MAX_COPY_BYTES + 512 * 1024)
    app.error_processor(_http_error)
    app.register_error_handler(RAError, _ra_error)
    app.register_error_handler(Exception, _internal)
    app.register_blueprint(bp)


def create_app(service: RAService) -> APIFlask:
    """An application serving the RA API alone, with its OpenAPI document at ``/api/openapi.json``."""
    app = APIFlask(
        "qtsp",
        title="QTSP engine: registration authority",
        version="0.1.0",
        spec_path="/api/openapi.json",
        docs_path="/api/docs",
    )
    init_app(app, service)
    return app


from ra.api import email_confirmation as _email  # noqa: E402,F401  (email confirmation views on bp)
from ra.api import followup as _followup  # noqa: E402,F401  (registers the follow-up views on bp)
from ra.api import renewal as _renewal  # noqa: E402,F401  (online renewal views on bp)
from ra.api import shop, transport_pin  # noqa: E402, F401  (their views register on bp)
from ra.api import tan as _tan_views  # noqa: E402,F401  (SMS-TAN views on the same blueprint)
