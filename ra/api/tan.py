"""SMS-TAN views (ra/tan.py) on the RA blueprint, with their schemas.

* ``GET /api/cards/<id>/sms-tan``: whether the card offers SMS-TAN, and the masked number.
* ``POST /api/cards/<id>/registration-secret``: post a registration secret to the registered address.
* ``PUT /api/cards/<id>/mobile``: the holder registers or changes the number with that secret.
* ``POST /api/tans``: send a TAN (no login: whoever holds the registered phone).
* ``POST /api/revocations/sms-tan``: revoke with card id and revocation TAN (no login).

No response carries a TAN, a secret or a full number; refusals are RFC 9457 problems, rate
limits 429 with Retry-After.  The two anonymous views answer alike for every card id, existing
or not (ra/tan.py, "Anonymous answers"); the SMS of a TAN request leaves after the answer.
"""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Integer, String
from apiflask.validators import Length, OneOf
from flask import request

from ra.api import _principal, _service, auth, bp, dispatch_after_response, requires
from ra.roles import Role
from ra.tan import MobileStatus, TanPurpose, TanService

__all__: list[str] = []


class SmsTanStatusOut(Schema):
    card_id = Integer()
    channel = String()
    offered = Boolean()
    mobile = String(allow_none=True, metadata={"description": "Masked, e.g. +49*********78"})
    source = String(allow_none=True)
    set_at = DateTime(allow_none=True)


class SecretSentOut(Schema):
    card_id = Integer()
    expires_at = DateTime()
    sent_to = String(metadata={"description": "The start of the registered address (masked)"})
    reference = String(metadata={"description": "The letter's outbox reference"})


class MobileIn(Schema):
    secret = String(required=True, load_only=True, validate=Length(min=1, max=64))
    mobile = String(required=True, load_only=True, validate=Length(min=1, max=32))


class TanIn(Schema):
    card_id = Integer(required=True)
    purpose = String(required=True, validate=OneOf([p.value for p in TanPurpose]))


class TanRequestedOut(Schema):
    card_id = Integer()
    purpose = String()
    detail = String(
        metadata={"description": "The same for every card id: whether a TAN was sent is told only by the SMS"}
    )


class TanRevocationIn(Schema):
    card_id = Integer(required=True)
    tan = String(required=True, load_only=True, validate=Length(min=1, max=16))  # 6 digits: ra/tan.py
    reason = String(required=True, validate=Length(min=1, max=32))
    requester_name = String(load_default=None, allow_none=True, validate=Length(min=1, max=100))


class TanRevocationOut(Schema):
    request_id = Integer()
    card_id = Integer()
    state = String()


def _tans() -> TanService:
    return TanService(_service())


def _status(status: MobileStatus) -> dict[str, Any]:
    return {
        "card_id": status.card_id,
        "channel": status.channel,
        "offered": status.offered,
        "mobile": status.mobile,
        "source": status.source,
        "set_at": status.set_at,
    }


@bp.get("/cards/<int:card_id>/sms-tan")
@bp.auth_required(auth)
@requires(Role.APPLICANT, Role.RA_OFFICER, Role.REVOCATION_OFFICER, Role.CA_OPERATOR, Role.AUDITOR)
@bp.output(SmsTanStatusOut)
@bp.doc(summary="Whether the card offers SMS-TAN (not for portal-ordered cards) and the masked mobile number")
def sms_tan_status(card_id: int) -> dict[str, Any]:
    return _status(_tans().status(_principal(), card_id))


@bp.post("/cards/<int:card_id>/registration-secret")
@bp.auth_required(auth)
@requires(Role.APPLICANT, Role.RA_OFFICER)
@bp.output(SecretSentOut, status_code=202)
@bp.doc(
    summary="Post a registration secret to the order's registered address (holder, or an RA officer for "
    "the holder); a new one supersedes the old; 3 letters per card and day"
)
def request_registration_secret(card_id: int) -> dict[str, Any]:
    sent = _tans().request_registration_secret(_principal(), card_id)
    return {
        "card_id": sent.card_id,
        "expires_at": sent.expires_at,
        "sent_to": sent.sent_to,
        "reference": sent.reference,
    }


@bp.put("/cards/<int:card_id>/mobile")
@bp.auth_required(auth)
@requires(Role.APPLICANT)
@bp.input(MobileIn, arg_name="data")
@bp.output(SmsTanStatusOut)
@bp.doc(
    summary="The holder registers or changes the SMS-TAN mobile number with the posted registration secret "
    "(single use; wrong secrets are rate-limited, 429 with Retry-After)"
)
def register_mobile(card_id: int, data: dict[str, Any]) -> dict[str, Any]:
    status = _tans().register_mobile(_principal(), card_id, data["secret"], data["mobile"], request.remote_addr)
    return _status(status)


@bp.post("/tans")
@bp.input(TanIn, arg_name="data")
@bp.output(TanRequestedOut, status_code=202)
@bp.doc(
    summary="Send a one-time TAN (6 digits, 5 minutes) for a follow-up order or a revocation to the card's "
    "registered mobile number, if the card offers SMS-TAN (not portal-ordered cards) and has one; the "
    "answer is the same for every card id; 20 requests per client address and hour (429 with Retry-After)"
)
def request_tan(data: dict[str, Any]) -> dict[str, Any]:
    tans = _tans()
    receipt = tans.request_tan(data["card_id"], data["purpose"], client_address=request.remote_addr, dispatch=False)
    if receipt.sent is not None:
        dispatch_after_response(tans.ra)  # the gateway's latency must not tell a sent TAN from none
    return {"card_id": receipt.card_id, "purpose": receipt.purpose, "detail": receipt.answer()}


@bp.post("/revocations/sms-tan")
@bp.input(TanRevocationIn, arg_name="data")
@bp.output(TanRevocationOut)
@bp.doc(
    summary="Revoke with the card id and a revocation TAN (no account); recorded as authenticated by "
    "sms-tan; every refused TAN gets one answer (403), an unknown card's too; refused TANs are "
    "rate-limited per TAN, card and client address"
)
def revoke_with_tan(data: dict[str, Any]) -> dict[str, Any]:
    request_id, card = _tans().revoke_with_tan(
        data["card_id"], data["tan"], data["reason"], data["requester_name"], request.remote_addr
    )
    return {"request_id": request_id, "card_id": card.id, "state": card.state}
