"""Follow-up orders on the RA API (ra/followup.py): the holder asks for a signing challenge or an
order password by post, then orders the follow-up card authenticated by either.  Applicants only,
on their own cards; the service checks the role and the ownership again."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import DateTime, Integer, String
from apiflask.validators import Length
from flask import request

from ra.api import _principal, _service, auth, bp, requires
from ra.followup import FollowUpRequest
from ra.roles import Role

__all__ = ["ChallengeOut", "FollowUpIn", "OrderPasswordOut"]


class ChallengeOut(Schema):
    nonce = String()
    expires_at = DateTime()
    to_sign = String(
        metadata={
            "description": "The canonical request to sign (CMS SignedData, attached) "
            "for a follow-up without new identification"
        }
    )


class OrderPasswordOut(Schema):
    letter = String(metadata={"description": "Reference of the letter in the outbox (not the password)"})
    expires_at = DateTime()
    recipient = String(metadata={"description": "The registered postal address, masked"})


class FollowUpIn(Schema):
    authentication = String(required=True, validate=Length(min=1, max=32))
    method = String(load_default=None, allow_none=True, validate=Length(min=1, max=32))
    nonce = String(load_default=None, allow_none=True, validate=Length(min=1, max=128))
    signed_request = String(load_default=None, allow_none=True, validate=Length(min=1, max=90_000))
    order_password = String(load_default=None, allow_none=True, validate=Length(min=1, max=64), load_only=True)
    tan = String(load_default=None, allow_none=True, validate=Length(min=1, max=16), load_only=True)


class FollowUpOut(Schema):
    id = Integer()


@bp.post("/cards/<int:card_id>/follow-up/challenge")
@bp.auth_required(auth)
@requires(Role.APPLICANT)
@bp.output(ChallengeOut, status_code=201)
@bp.doc(summary="The holder gets a single-use nonce to sign a follow-up request with the card's qualified signature")
def followup_challenge(card_id: int) -> dict[str, Any]:
    c = _service().followups.challenge(_principal(), card_id)
    return {"nonce": c.nonce, "expires_at": c.expires_at, "to_sign": c.to_sign}


@bp.post("/cards/<int:card_id>/order-password")
@bp.auth_required(auth)
@requires(Role.APPLICANT)
@bp.output(OrderPasswordOut, status_code=202)
@bp.doc(summary="The holder asks for an order password, posted to the card order's registered postal address")
def request_order_password(card_id: int) -> dict[str, Any]:
    letter = _service().followups.request_order_password(_principal(), card_id)
    return {"letter": letter.reference, "expires_at": letter.expires_at, "recipient": letter.recipient_hint}


@bp.post("/cards/<int:card_id>/follow-up")
@bp.auth_required(auth)
@requires(Role.APPLICANT)
@bp.input(FollowUpIn, arg_name="data")
@bp.output(FollowUpOut, status_code=201)
@bp.doc(
    summary="Order a follow-up card for a valid card (same product and subject), authenticated by the card's "
    "qualified signature or the order password; wrong passwords are rate-limited (429 with Retry-After)"
)
def request_followup(card_id: int, data: dict[str, Any]) -> dict[str, Any]:
    order_id = _service().followups.request_followup(
        _principal(), FollowUpRequest(card_id=card_id, client_address=request.remote_addr, **data)
    )
    return {"id": order_id}
