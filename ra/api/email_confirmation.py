"""Email confirmation views (ra/email_confirmation.py) on the RA blueprint.

* ``POST /api/email-confirmations``: confirm an order's email address with the code from the
  mail (no login: the code proves the mailbox).
* ``POST /api/orders/<id>/email-confirmation``: mail the code again (the applicant, or an RA
  officer for them; three mails per order and day).
"""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import DateTime, Integer, String
from apiflask.validators import Length
from flask import request

from ra.api import _principal, _service, auth, bp, requires
from ra.roles import Role

__all__: list[str] = []


class ConfirmIn(Schema):
    token = String(
        required=True,
        load_only=True,
        validate=Length(min=1, max=128),
        metadata={"description": "The code from the confirmation mail"},
    )


class ConfirmedOut(Schema):
    order_id = Integer(allow_none=True, metadata={"description": "The order whose address was confirmed"})
    account_id = Integer(allow_none=True, metadata={"description": "The applicant account activated"})
    email = String(metadata={"description": "Masked, e.g. pa***@patent.example"})
    confirmed_at = DateTime()


class MailedOut(Schema):
    order_id = Integer()
    sent_to = String(metadata={"description": "Masked"})
    expires_at = DateTime()
    reference = String(metadata={"description": "The mail's outbox reference"})


@bp.post("/email-confirmations")
@bp.input(ConfirmIn, arg_name="data")
@bp.output(ConfirmedOut)
@bp.doc(
    summary="Confirm an email address with the code mailed to it: an order's (before it is certified) or a new "
    "applicant account's (which it activates); no login: the code proves the mailbox; single use, 7 days; "
    "unknown, used and expired codes get one answer (403)"
)
def confirm_email(data: dict[str, Any]) -> dict[str, Any]:
    done = _service().email_confirmations.confirm(data["token"], request.remote_addr)
    return {
        "order_id": done.order_id,
        "account_id": done.account_id,
        "email": done.email,
        "confirmed_at": done.confirmed_at,
    }


@bp.post("/orders/<int:order_id>/email-confirmation")
@bp.auth_required(auth)
@requires(Role.APPLICANT, Role.RA_OFFICER)
@bp.output(MailedOut, status_code=202)
@bp.doc(
    summary="Mail the email confirmation code again (the applicant, or an RA officer for them); supersedes "
    "the previous one; 3 per order and day"
)
def resend_email_confirmation(order_id: int) -> dict[str, Any]:
    mailed = _service().email_confirmations.resend(_principal(), order_id)
    return {
        "order_id": mailed.order_id,
        "sent_to": mailed.sent_to,
        "expires_at": mailed.expires_at,
        "reference": mailed.reference,
    }
