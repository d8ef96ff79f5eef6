"""Order and card life cycles (pure state machines).

Orders follow the seed portal (D-Trust "Meine Bestellungen"): open -> waiting (with a reason:
incomplete, data error) -> in production -> shipped -> done, or rejected / cancelled.
Cards (issued products, "Meine Produkte"): not activated -> valid (receipt confirmed, or a
configured time after shipping) -> revocation in progress -> revoked; or expired.

Each transition names the roles that may make it; :func:`order_transition` and
:func:`card_transition` refuse an illegal transition or a wrong role with :class:`RAError`.
"""

from __future__ import annotations

import enum
from typing import Final

from ra.errors import RAError, RAErrorKind
from ra.roles import Role

__all__ = [
    "CARD_TRANSITIONS",
    "ORDER_TRANSITIONS",
    "CardEvent",
    "CardState",
    "OrderEvent",
    "OrderState",
    "WaitingReason",
    "card_transition",
    "order_transition",
]


class OrderState(enum.StrEnum):
    OPEN = "open"
    WAITING = "waiting"
    IN_PRODUCTION = "in-production"
    SHIPPED = "shipped"
    DONE = "done"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class WaitingReason(enum.StrEnum):
    INCOMPLETE = "incomplete"
    DATA_ERROR = "data-error"


class OrderEvent(enum.StrEnum):
    HOLD = "hold"
    RESUBMIT = "resubmit"
    APPROVE = "approve"
    SHIP = "ship"
    COMPLETE = "complete"
    REJECT = "reject"
    CANCEL = "cancel"


_A, _RA, _CA, _SYS = Role.APPLICANT, Role.RA_OFFICER, Role.CA_OPERATOR, Role.SYSTEM

ORDER_TRANSITIONS: Final[dict[tuple[OrderState, OrderEvent], tuple[OrderState, frozenset[Role]]]] = {
    (OrderState.OPEN, OrderEvent.HOLD): (OrderState.WAITING, frozenset({_RA})),
    (OrderState.WAITING, OrderEvent.RESUBMIT): (OrderState.OPEN, frozenset({_A, _RA})),
    (OrderState.OPEN, OrderEvent.APPROVE): (OrderState.IN_PRODUCTION, frozenset({_RA})),
    (OrderState.IN_PRODUCTION, OrderEvent.SHIP): (OrderState.SHIPPED, frozenset({_CA})),
    # A card order is done when the card is delivered and activated; a remote product when issued.
    (OrderState.SHIPPED, OrderEvent.COMPLETE): (OrderState.DONE, frozenset({_A, _SYS})),
    (OrderState.IN_PRODUCTION, OrderEvent.COMPLETE): (OrderState.DONE, frozenset({_RA, _SYS})),
    (OrderState.OPEN, OrderEvent.REJECT): (OrderState.REJECTED, frozenset({_RA})),
    (OrderState.WAITING, OrderEvent.REJECT): (OrderState.REJECTED, frozenset({_RA})),
    (OrderState.OPEN, OrderEvent.CANCEL): (OrderState.CANCELLED, frozenset({_A, _RA})),
    (OrderState.WAITING, OrderEvent.CANCEL): (OrderState.CANCELLED, frozenset({_A, _RA})),
    # An approved online renewal whose window closed (or whose card was revoked) before its
    # issuance date: the scheduled issuance cancels it and records why (ra/renewal.py).
    (OrderState.IN_PRODUCTION, OrderEvent.CANCEL): (OrderState.CANCELLED, frozenset({_SYS})),
}


class CardState(enum.StrEnum):
    NOT_ACTIVATED = "not-activated"
    VALID = "valid"
    REVOCATION_IN_PROGRESS = "revocation-in-progress"
    REVOKED = "revoked"
    EXPIRED = "expired"


class CardEvent(enum.StrEnum):
    ACTIVATE = "activate"
    REQUEST_REVOCATION = "request-revocation"
    REVOKED = "revoked"
    EXPIRE = "expire"


_REV = Role.REVOCATION_OFFICER
_REVOKERS: Final = frozenset({_A, _REV, _RA, _SYS})

CARD_TRANSITIONS: Final[dict[tuple[CardState, CardEvent], tuple[CardState, frozenset[Role]]]] = {
    (CardState.NOT_ACTIVATED, CardEvent.ACTIVATE): (CardState.VALID, frozenset({_A, _SYS})),
    # Revocation requests (EN 319 411-1 REV-6.2.4-09, authorised sources): the holder, a revocation
    # officer, an RA officer for the organisation of an affiliated card, and the system for the
    # named revocation-authorised person who proved the revocation password.
    (CardState.NOT_ACTIVATED, CardEvent.REQUEST_REVOCATION): (CardState.REVOCATION_IN_PROGRESS, _REVOKERS),
    (CardState.VALID, CardEvent.REQUEST_REVOCATION): (CardState.REVOCATION_IN_PROGRESS, _REVOKERS),
    (CardState.REVOCATION_IN_PROGRESS, CardEvent.REVOKED): (CardState.REVOKED, _REVOKERS),
    (CardState.NOT_ACTIVATED, CardEvent.EXPIRE): (CardState.EXPIRED, frozenset({_SYS})),
    (CardState.VALID, CardEvent.EXPIRE): (CardState.EXPIRED, frozenset({_SYS})),
}


def order_transition(state: OrderState, event: OrderEvent, role: Role) -> OrderState:
    """The state after ``event``.

    :raises RAError: ILLEGAL_TRANSITION when the event is not possible in ``state``; FORBIDDEN when
        ``role`` may not make it.
    """
    entry = ORDER_TRANSITIONS.get((state, event))
    if entry is None:
        raise RAError(RAErrorKind.ILLEGAL_TRANSITION, f"an order in state {state.value} cannot {event.value}")
    target, roles = entry
    if role not in roles:
        raise RAError(RAErrorKind.FORBIDDEN, f"role {role.value} may not {event.value} an order")
    return target


def card_transition(state: CardState, event: CardEvent, role: Role) -> CardState:
    """The state after ``event`` (see :func:`order_transition`); revoked and expired are final
    (eIDAS Art. 28(4): revocation after activation is final)."""
    entry = CARD_TRANSITIONS.get((state, event))
    if entry is None:
        raise RAError(RAErrorKind.ILLEGAL_TRANSITION, f"a card in state {state.value} cannot {event.value}")
    target, roles = entry
    if role not in roles:
        raise RAError(RAErrorKind.FORBIDDEN, f"role {role.value} may not {event.value} a card")
    return target
