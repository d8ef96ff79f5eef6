"""Transport PINs (issue 6 point 5; seed 004, CenCert: "the card is inactive, protected by a
transport PIN; after confirming your identity the transport PIN is displayed").

Life of a transport PIN:

1. **Issued at shipping.**  :func:`issue_on_ship` runs inside :meth:`ra.service.RAService.ship`, in
   its transaction: a random PIN (CSPRNG, :data:`TRANSPORT_PIN_DIGITS` digits) is stored *only*
   AES-256-GCM encrypted with the RA data key, the card id bound in as associated data (a
   ciphertext moved to another card's row does not decrypt).  The ship response carries it exactly
   once, to the CA operator whose card production writes it to the chip before the card leaves;
   it appears in no other response, log line or audit detail.  The PIN travels apart from the card
   (EN 319 411-2 SDP-6.5.4-03: the PIN is delivered separately from the card): the holder fetches it.
2. **Revealed once to the holder.**  :meth:`TransportPinService.reveal` needs the holder's own
   session *and* their account password again (the seed's "confirm your identity"); no operator,
   not even a security officer, may see it.  In one transaction the PIN is decrypted, the
   ciphertext destroyed (NULL), the reveal time and the revealer kept and the audit event
   ``card.transport-pin-revealed`` (without the PIN) appended.  Wrong passwords are counted in the
   database per card and per client address (429 with Retry-After at the limit).
3. **Destroyed with the card.**  When a revocation request is accepted or the card expires,
   :func:`destroy` drops the ciphertext (audited); a later reveal is refused.

Why six digits (the default; a card product may set ``transport_pin_digits``, 6..12, in
products.toml): the transport PIN protects the card only in transit and until the holder sets PIN
and PUK; the chip blocks it after a few wrong tries (3 on common QSCDs), so whoever intercepts the
card guesses right with a chance of 3 in 10^6.  Guessing at this API is impossible (the PIN is
never compared here, only shown, and only after the account password).  Six digits is also what
PIN-pad card readers accept everywhere.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ra.credentials import verify_password
from ra.errors import RAError, RAErrorKind
from ra.rate_limit import retry_after
from ra.roles import Principal, Role
from ra.store import repository as repo
from ra.store import shop_repo
from ra.store import transport_pin_repo as pins
from ra.workflow import CardState

if TYPE_CHECKING:
    from ca.store.db import UnitOfWork
    from ra.products import Product
    from ra.service import RAService

__all__ = [
    "REVEAL_FAILURES_PER_ADDRESS",
    "REVEAL_FAILURES_PER_CARD",
    "REVEAL_WINDOW",
    "TRANSPORT_PIN_DIGITS",
    "TransportPinService",
    "destroy",
    "issue_on_ship",
    "new_transport_pin",
    "pin_aad",
]

TRANSPORT_PIN_DIGITS: Final = 6
"""The default; a card product may ask for more (``transport_pin_digits`` in products.toml, 6..12)."""
REVEAL_WINDOW: Final = dt.timedelta(hours=1)
REVEAL_FAILURES_PER_CARD: Final = 5
REVEAL_FAILURES_PER_ADDRESS: Final = 20
_PURPOSE: Final = "transport-pin"


def new_transport_pin(digits: int = TRANSPORT_PIN_DIGITS) -> str:
    """``digits`` decimal digits from the operating system's CSPRNG (leading zeros kept)."""
    if not 4 <= digits <= 12:
        raise ValueError("a transport PIN has 4 to 12 digits")
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def pin_aad(card_id: int) -> bytes:
    """The associated data binding a ciphertext to its card."""
    return f"qtsp-ra-transport-pin:card:{card_id}".encode()


def issue_on_ship(
    ra: RAService, s: UnitOfWork, principal: Principal, role: Role, card_id: int, product: Product
) -> str | None:
    """Create the card's transport PIN in the ship transaction and return it (the only time it is
    returned to card production).  None for products without a card (remote seals)."""
    if product.delivery != "card":
        return None
    if pins.pin_get(s, card_id) is not None:
        raise RAError(RAErrorKind.CONFLICT, f"card {card_id} already has a transport PIN")
    pin = new_transport_pin(product.transport_pin_digits)
    now = ra.clock()
    pins.pin_add(
        s,
        card_id=card_id,
        key_id=ra.data_key.key_id,
        ciphertext=ra.data_key.encrypt(pin.encode("ascii"), pin_aad(card_id)),
        digits=len(pin),
        created_at=now,
        created_by=principal.name,
    )
    # Subject device preparation is logged (EN 319 411-2 SDP-6.4.5-10), the PIN itself never.
    ra._audit(
        s,
        principal,
        role,
        "card.transport-pin-issued",
        "card",
        card_id,
        {"digits": len(pin), "key_id": ra.data_key.key_id},
        at=now,
    )
    return pin


def destroy(ra: RAService, s: UnitOfWork, principal: Principal, role: Role, card_id: int, reason: str) -> bool:
    """Destroy a card's unrevealed transport PIN (card revoked or expired), audited; False when
    there was none left to destroy."""
    row = pins.pin_get(s, card_id, lock=True)
    if row is None or row.ciphertext is None:
        return False
    now = ra.clock()
    pins.pin_update(s, card_id, ciphertext=None, destroyed_at=now, destroyed_reason=reason)
    ra._audit(s, principal, role, "card.transport-pin-destroyed", "card", card_id, {"reason": reason}, at=now)
    return True


@dataclass
class TransportPinService:
    """The holder's one reveal of their card's transport PIN."""

    ra: RAService

    def reveal(
        self, principal: Principal, card_id: int, password: str, client_address: str | None = None
    ) -> tuple[str, dt.datetime]:
        """The transport PIN of the caller's card, once; the ciphertext is destroyed in the same
        transaction and the reveal audited.

        :raises RAError: FORBIDDEN (not the holder, or a wrong password), NOT_FOUND (no such card of
            the caller's, or not shipped yet), CONFLICT (already revealed, destroyed, or the stored
            ciphertext does not authenticate), ILLEGAL_TRANSITION (card revoked or expired),
            RATE_LIMITED (too many wrong passwords).
        """
        principal.require(Role.APPLICANT)
        ra = self.ra
        address = client_address[:64] if client_address else None
        with ra.db.read() as s:
            card = ra._card(s, card_id, principal)
            if card.holder_account_id != principal.account_id:
                raise RAError(RAErrorKind.FORBIDDEN, "only the card's holder may see its transport PIN")
            account = repo.account_get(s, card.holder_account_id)
        assert account is not None
        # Confirm the holder's identity again (seed 004) before anything is shown.
        right = verify_password(account.password_hash, password)
        now = ra.clock()
        refusal: RAError | None = None
        pin: str | None = None
        with ra.db.write() as s:
            card = ra._card(s, card_id, principal, lock=True)
            if address is not None:
                repo.serialise_limit(s, f"address:{address}")
            failures = shop_repo.failures_since(
                s, _PURPOSE, now - REVEAL_WINDOW, card_id=card.id, client_address=address
            )
            retry = retry_after(
                now,
                REVEAL_WINDOW,
                [
                    ([at for _, c, _, at in failures if c == card.id], REVEAL_FAILURES_PER_CARD),
                    (
                        [at for _, _, a, at in failures if address is not None and a == address],
                        REVEAL_FAILURES_PER_ADDRESS,
                    ),
                ],
            )
            row = pins.pin_get(s, card.id, lock=True)
            if retry is not None:
                refusal = RAError(
                    RAErrorKind.RATE_LIMITED, "too many wrong passwords: try again later", retry_after=retry
                )
            elif not right:
                shop_repo.failure_add(
                    s,
                    purpose=_PURPOSE,
                    at=now,
                    account_id=principal.account_id,
                    card_id=card.id,
                    client_address=address,
                )
                refusal = RAError(
                    RAErrorKind.FORBIDDEN, "wrong password: confirm your identity with your account password"
                )
            elif row is None:
                refusal = RAError(RAErrorKind.NOT_FOUND, f"card {card.id} has no transport PIN (not shipped yet)")
            elif row.revealed_at is not None:
                refusal = RAError(
                    RAErrorKind.CONFLICT,
                    f"the transport PIN of card {card.id} was revealed on {row.revealed_at.isoformat()} "
                    "and destroyed; it cannot be shown again",
                )
            elif row.ciphertext is None:
                when = row.destroyed_at.isoformat() if row.destroyed_at else "?"
                refusal = RAError(
                    RAErrorKind.ILLEGAL_TRANSITION,
                    f"the transport PIN of card {card.id} was destroyed on {when} (card {row.destroyed_reason})",
                )
            elif card.state not in (CardState.NOT_ACTIVATED, CardState.VALID):
                refusal = RAError(
                    RAErrorKind.ILLEGAL_TRANSITION, f"card {card.id} is {card.state}: its transport PIN is not shown"
                )
            else:
                try:
                    pin = ra.data_key.decrypt(row.ciphertext, pin_aad(card.id)).decode("ascii")
                except RAError:
                    refusal = RAError(
                        RAErrorKind.CONFLICT,
                        f"the stored transport PIN of card {card.id} does not authenticate for this card "
                        "(data key or card binding); nothing was shown, ask the trust center for a new card",
                    )
            if refusal is not None:  # access attempts are logged (EN 319 411-1 OVR-6.4.5-02)
                ra._audit(
                    s,
                    principal,
                    Role.APPLICANT,
                    "card.transport-pin-reveal-refused",
                    "card",
                    card.id,
                    {"reason": refusal.kind.value, "detail": refusal.detail, "client_address": address},
                    at=now,
                )
            else:
                pins.pin_update(
                    s,
                    card.id,
                    ciphertext=None,
                    revealed_at=now,
                    revealed_by=principal.name,
                    destroyed_at=now,
                    destroyed_reason="revealed",
                )
                ra._audit(
                    s,
                    principal,
                    Role.APPLICANT,
                    "card.transport-pin-revealed",
                    "card",
                    card.id,
                    {"revealed_at": now.isoformat(), "client_address": address},
                    at=now,
                )
        if refusal is not None:
            raise refusal
        assert pin is not None
        return pin, now
