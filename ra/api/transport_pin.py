"""The holder's one reveal of their card's transport PIN (issue 6 point 5, ra/transport_pin.py)."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import DateTime, Integer, String
from apiflask.validators import Length
from flask import request

from ra.api import _principal, _service, auth, bp, requires
from ra.roles import Role
from ra.transport_pin import TransportPinService

__all__: list[str] = []


class RevealIn(Schema):
    password = String(
        required=True,
        validate=Length(min=1, max=256),
        load_only=True,
        metadata={"description": "The holder's account password again (identity confirmed before display)"},
    )


class RevealOut(Schema):
    card_id = Integer()
    transport_pin = String()
    revealed_at = DateTime()


@bp.post("/cards/<int:card_id>/transport-pin")
@bp.auth_required(auth)
@requires(Role.APPLICANT)
@bp.input(RevealIn, arg_name="data")
@bp.output(RevealOut)
@bp.doc(
    summary="The holder sees the card's transport PIN once (account password required); it is then destroyed. "
    "A second reveal is refused (409) with the time of the first."
)
def reveal_transport_pin(card_id: int, data: dict[str, Any]) -> dict[str, Any]:
    pin, at = TransportPinService(_service()).reveal(_principal(), card_id, data["password"], request.remote_addr)
    return {"card_id": card_id, "transport_pin": pin, "revealed_at": at}
