"""SMS-TAN (seed 000, D-Trust): one-time TANs sent by SMS to the holder's registered mobile number
authenticate follow-up orders and revocations, for cards ordered through a channel that offers it.

Rules, from the seed and the issue:

* **Channels.** An order comes from the TSP's own ``portal`` or from a ``partner`` channel (a
  chamber's member service, an organisation's issuing office, a special application page).
  Products name the channels that offer SMS-TAN (``sms_tan_channels`` in ra/products.toml);
  the portal never does ("not available for cards ordered in the D-Trust Portal"; "cards
  provided via the D-Trust Portal cannot be revoked using the SMS/TAN method"), and every TAN
  operation on a portal-ordered card is refused with a problem saying so.
* **Mobile number.** Given with the first application (only where SMS-TAN is offered), or
  registered (and changed) later with a *registration secret* posted to the order's registered
  postal address, never to an address from the request.  Stored only encrypted with the RA data
  key; callers see a masked form.
* **Registration secrets.** 16 characters from a 32-letter alphabet (80 bits, CSPRNG), Argon2
  hash only, valid 30 days, single use, a new one supersedes the old (its letter is withdrawn
  if still queued); 3 wrong entries kill it, 5 wrong entries per card and hour refuse even the
  right one (429), 3 letters per card and day.
* **TANs.** 6 digits from a CSPRNG, valid 5 minutes, single use (a conditional update whose row
  count decides, so concurrent double use fails), bound to card and purpose; a new TAN for the
  same card and purpose supersedes the unused one and withdraws its SMS if still queued.
  Limits counted in the database: 5 TANs sent per card and hour (more are not sent), 20 TAN
  requests per client address and hour (429 with Retry-After); 3 wrong entries kill a TAN; 5
  refused TANs per card and hour (20 per address) refuse even the right one (429 with
  Retry-After).
* **Storage of TANs.** HMAC-SHA-256 under a key derived from the RA data key, over a per-TAN
  random salt, card, purpose and TAN.  Argon2 would add nothing here: 10^6 candidates fall to
  any hash offline, so what protects the TAN against a copy of the database is that the HMAC
  key is not in it (it lives in the data key file); online, an attacker has at most 3 guesses
  per TAN and 5 per card and hour against a value that lives 5 minutes, a success chance of
  5 in 10^6 per card and hour.
* **Anonymous answers tell cards apart by nothing.** ``POST /api/tans`` and
  ``POST /api/revocations/sms-tan`` need no login and card ids are small integers, so what they
  answer must not say whether a card exists, how it was ordered, what state it is in or whether
  a number is registered for it.  A TAN request is answered "sent, if the card offers SMS-TAN and
  has a number" whatever happened (:data:`TAN_REQUEST_ANSWER`), and the SMS leaves after the
  answer (:meth:`TanService.request_tan` with ``dispatch=False``, the view dispatches on close),
  so neither content nor the gateway's latency tells; a revocation by TAN is refused with one
  answer (:data:`TAN_REFUSAL`) for an unknown card, a portal card, a card without a number, and
  a missing, expired, used or wrong TAN.  What really happened is recorded: the audit event
  (``card.tan_request_refused``, ``card.tan_refused``) and the revocation request keep the exact
  refusal.  Only what depends on the request alone differs: a malformed purpose or TAN, and the
  per-address limit (every anonymous TAN request and refused TAN counts, for any card id).
  The holder, logged in, sees whether the card offers SMS-TAN (``GET /api/cards/<id>/sms-tan``).
* **Secrets never leave.** TANs, registration secrets and full numbers appear in no response,
  log line or audit event; the SMS and the letter carry them through the outbox (ra/outbox.py),
  encrypted at rest and wiped once sent.

:meth:`TanService.verify_tan` is the entry point for other flows (follow-up orders): it checks
and consumes a TAN inside the caller's transaction and returns a verdict; the caller commits
(so wrong attempts are counted) and then raises the verdict's refusal.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ca.audit.chain import JSONValue
from ca.store.db import UnitOfWork
from ra import rate_limit
from ra.credentials import CROCKFORD_ALPHABET, DataKey, hash_password, new_letter_secret, verify_password
from ra.errors import RAError, RAErrorKind
from ra.outbox import Channel, mask_recipient
from ra.products import ORDER_CHANNELS, Product
from ra.records import CardRec, OrderRec, SlotRec
from ra.roles import Principal, Role
from ra.store import repository as repo
from ra.store import tan_repo
from ra.workflow import CardState

if TYPE_CHECKING:
    from ra.service import RAService

__all__ = [
    "TAN_REFUSAL",
    "TAN_REQUEST_ANSWER",
    "MobileStatus",
    "SecretSent",
    "TanPurpose",
    "TanReceipt",
    "TanSent",
    "TanService",
    "TanVerdict",
    "new_registration_secret",
    "new_tan",
    "normalise_mobile",
    "normalise_secret",
    "offered",
    "require_offered",
    "retry_after",
    "tan_digest",
]

TAN_VALIDITY: Final = dt.timedelta(minutes=5)
TAN_ATTEMPTS: Final = 3
TAN_WINDOW: Final = dt.timedelta(hours=1)
TAN_REQUESTS_PER_CARD: Final = 5
TAN_REQUESTS_PER_ADDRESS: Final = 20
TAN_FAILURES_PER_CARD: Final = 5
TAN_FAILURES_PER_ADDRESS: Final = 20

SECRET_VALIDITY: Final = dt.timedelta(days=30)
SECRET_ATTEMPTS: Final = 3
SECRET_WINDOW: Final = dt.timedelta(hours=1)
SECRET_FAILURES_PER_CARD: Final = 5
SECRET_LETTER_WINDOW: Final = dt.timedelta(days=1)
SECRET_LETTERS_PER_CARD: Final = 3

#: Crockford-style alphabet: no I, L, O, U (read from paper, typed by hand).
_SECRET_ALPHABET: Final = CROCKFORD_ALPHABET
_SECRET_LENGTH: Final = 16
_E164: Final = re.compile(r"^\+[1-9][0-9]{7,14}\Z")
_SEPARATORS: Final = re.compile(r"[\s\-/().]")
_TAN_RE: Final = re.compile(r"^[0-9]{6}\Z")
_USABLE_STATES: Final = frozenset({CardState.NOT_ACTIVATED.value, CardState.VALID.value})
_HMAC_LABEL: Final = b"qtsp-ra-sms-tan-hmac-v1"

#: The one answer to an accepted anonymous TAN request, whatever became of it.
TAN_REQUEST_ANSWER: Final = (
    "if card {card_id} offers SMS-TAN and a mobile number is registered for it, a TAN to {wording} it "
    "has been sent there (valid for {minutes} minutes, once)"
)
#: The one answer to a refused revocation by TAN, whatever the reason (unknown card included).
TAN_REFUSAL: Final = "unknown card, or no valid revocation TAN for it: request a new TAN"


class TanPurpose(enum.StrEnum):
    FOLLOW_UP = "follow-up"
    REVOCATION = "revocation"

    @property
    def wording(self) -> str:
        return "order a follow-up card for" if self is TanPurpose.FOLLOW_UP else "revoke"


# ----------------------------------------------------------------------------------------------
# Pure rules


def normalise_mobile(text: str) -> str:
    """An E.164 number (``+`` and 8-15 digits, no leading zero) from what a person types: blanks,
    hyphens, slashes, dots and parentheses are dropped and a leading ``00`` becomes ``+``.

    :raises RAError: MALFORMED.
    """
    compact = _SEPARATORS.sub("", text.strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not _E164.match(compact):
        raise RAError(RAErrorKind.MALFORMED, "mobile: an international number in E.164 form, e.g. +4915112345678")
    return compact


def offered(product: Product, channel: str) -> bool:
    return channel != "portal" and channel in product.sms_tan_channels


def require_offered(product: Product, channel: str) -> None:
    """:raises RAError: POLICY_VIOLATION when the product, ordered through ``channel``, has no SMS-TAN."""
    if channel == "portal":
        raise RAError(
            RAErrorKind.POLICY_VIOLATION,
            "SMS-TAN is not available for cards ordered in the portal: log in to the portal instead",
        )
    if not offered(product, channel):
        raise RAError(RAErrorKind.POLICY_VIOLATION, f"SMS-TAN is not offered for {product.title} ordered via {channel}")


def check_application(product: Product, channel: str, mobile: str | None) -> str | None:
    """Validate an order's channel and optional mobile number; return the number in E.164 form.

    :raises RAError: MALFORMED (unknown channel, bad number), POLICY_VIOLATION (a number where
        SMS-TAN is not offered, e.g. for a portal order).
    """
    if channel not in ORDER_CHANNELS:
        raise RAError(RAErrorKind.MALFORMED, f"channel must be one of {', '.join(ORDER_CHANNELS)}")
    if mobile is None:
        return None
    number = normalise_mobile(mobile)
    require_offered(product, channel)
    return number


def new_tan() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def tan_digest(key: bytes, salt: str, card_id: int, purpose: str, tan: str) -> str:
    message = f"{salt}\x1f{card_id}\x1f{purpose}\x1f{tan}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def new_registration_secret() -> str:
    """``XXXX-XXXX-XXXX-XXXX``: 16 characters of 5 bits each from a CSPRNG."""
    return new_letter_secret(groups=_SECRET_LENGTH // 4, alphabet=_SECRET_ALPHABET)


def normalise_secret(text: str) -> str | None:
    """The secret as hashed (upper case, no separators; O->0, I/L->1), or None if it cannot be one."""
    compact = re.sub(r"[\s\-]", "", text).upper().replace("O", "0").replace("I", "1").replace("L", "1")
    if len(compact) != _SECRET_LENGTH or any(c not in _SECRET_ALPHABET for c in compact):
        return None
    return compact


def retry_after(times: Sequence[dt.datetime], limit: int, window: dt.timedelta, now: dt.datetime) -> int | None:
    """Seconds until the oldest of the last ``limit`` events (sorted, oldest first) leaves the
    window, when ``limit`` is reached; else None (one key of :func:`ra.rate_limit.retry_after`)."""
    return rate_limit.retry_after(now, window, [(times, limit)])


def _limited(*waits: int | None) -> int | None:
    found = [w for w in waits if w is not None]
    return max(found) if found else None


def _failure_wait(
    s: UnitOfWork, address: str | None, now: dt.datetime, per_card: Callable[[dt.datetime], Sequence[dt.datetime]]
) -> int | None:
    """Seconds to wait when the card (``per_card(since)``: its refused TANs since the window began)
    or the client address has reached its limit of refused TANs, else None.  Both counts and the
    caller's record of the next refusal are serialised per address (``serialise_limit``)."""
    by_address = None
    if address is not None:
        repo.serialise_limit(s, f"address:{address}")
        by_address = retry_after(
            tan_repo.failures(s, "tan", now - TAN_WINDOW, client_address=address),
            TAN_FAILURES_PER_ADDRESS,
            TAN_WINDOW,
            now,
        )
    return _limited(retry_after(per_card(now - TAN_WINDOW), TAN_FAILURES_PER_CARD, TAN_WINDOW, now), by_address)


def _mobile_aad(order_id: int) -> bytes:
    return f"qtsp-ra-mobile:{order_id}".encode()


def store_mobile(
    s: UnitOfWork, data_key: DataKey, order_id: int, number: str, *, source: str, by: str, at: dt.datetime
) -> str:
    """Store (or replace) the order's mobile number, encrypted; return its masked form."""
    hint = mask_recipient(number)
    tan_repo.mobile_put(
        s,
        order_id,
        key_id=data_key.key_id,
        number=data_key.encrypt(number.encode(), _mobile_aad(order_id)),
        hint=hint,
        source=source,
        set_at=at,
        set_by=by[:255],
    )
    return hint


# ----------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True)
class MobileStatus:
    card_id: int
    channel: str
    offered: bool
    mobile: str | None
    """Masked (``+49*********78``); the full number is never returned."""
    source: str | None
    set_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class SecretSent:
    card_id: int
    expires_at: dt.datetime
    sent_to: str
    """The first characters of the registered address's first line."""
    reference: str
    """The letter's outbox reference."""


@dataclass(frozen=True, slots=True)
class TanSent:
    card_id: int
    purpose: str
    expires_at: dt.datetime
    sent_to: str
    reference: str
    """The SMS's outbox reference."""


@dataclass(frozen=True, slots=True)
class TanReceipt:
    """What :meth:`TanService.request_tan` did with a request.

    An anonymous caller is told :meth:`answer` and nothing else; ``sent`` (the SMS and its
    masked number) or ``refusal`` (why none was sent: no such card, a portal card, its state, no
    number, the per-card limit) are for trusted callers in the process (the demo, the tests), as
    the audit event is for the auditor."""

    card_id: int
    purpose: str
    sent: TanSent | None
    refusal: RAError | None

    def answer(self) -> str:
        minutes = int(TAN_VALIDITY.total_seconds() // 60)
        return TAN_REQUEST_ANSWER.format(
            card_id=self.card_id, wording=TanPurpose(self.purpose).wording, minutes=minutes
        )


@dataclass(frozen=True, slots=True)
class TanVerdict:
    """The outcome of :meth:`TanService.verify_tan`.  Commit the transaction, then call
    :meth:`raise_if_refused`: the failure counters must survive a refusal."""

    ok: bool
    tan_id: int | None
    refusal: RAError | None
    wrong: bool
    """A wrong TAN was entered (counted against the TAN and the card)."""

    def raise_if_refused(self) -> None:
        if self.refusal is not None:
            raise self.refusal


_ANONYMOUS_ACTOR: Final = "anonymous:sms-tan"


# ----------------------------------------------------------------------------------------------
# Service


@dataclass
class TanService:
    """SMS-TAN operations on top of :class:`ra.service.RAService` (its database, clock, data key,
    outbox and audit helper)."""

    ra: RAService

    # -- helpers -------------------------------------------------------------------------------

    def _hmac_key(self) -> bytes:
        return self.ra.data_key.derive(_HMAC_LABEL)

    def _order_of(self, s: UnitOfWork, card: CardRec) -> tuple[OrderRec, Product]:
        order = repo.order_get(s, card.order_id)
        assert order is not None
        return order, self.ra._product(order.product)

    def _number(self, mobile: tan_repo.MobileRow) -> str:
        return self.ra.data_key.decrypt(mobile.number, _mobile_aad(mobile.order_id)).decode()

    @staticmethod
    def _anonymous(client_address: str | None) -> Principal:
        name = f"{_ANONYMOUS_ACTOR}@{client_address}" if client_address else _ANONYMOUS_ACTOR
        return Principal(name=name, roles=frozenset({Role.SYSTEM}))

    def _supersede_tans(self, s: UnitOfWork, card_id: int, purpose: str | None) -> list[JSONValue]:
        superseded: list[JSONValue] = []
        for old in tan_repo.active_tans(s, card_id, purpose):
            tan_repo.tan_update(s, old.id, state="superseded")
            self.ra.outbox.cancel(s, old.outbox_ref)
            superseded.append(old.id)
        return superseded

    # -- status --------------------------------------------------------------------------------

    def status(self, principal: Principal, card_id: int) -> MobileStatus:
        """Whether the card offers SMS-TAN and the masked registered number."""
        with self.ra.db.read() as s:
            card = self.ra._card(s, card_id, principal)
            self.ra._own_or(
                principal,
                card.holder_account_id,
                Role.RA_OFFICER,
                Role.REVOCATION_OFFICER,
                Role.CA_OPERATOR,
                Role.AUDITOR,
            )
            order, product = self._order_of(s, card)
            mobile = tan_repo.mobile_get(s, order.id)
        return MobileStatus(
            card_id=card.id,
            channel=order.channel,
            offered=offered(product, order.channel),
            mobile=mobile.hint if mobile else None,
            source=mobile.source if mobile else None,
            set_at=mobile.set_at if mobile else None,
        )

    # -- registration secret -------------------------------------------------------------------

    def request_registration_secret(self, principal: Principal, card_id: int) -> SecretSent:
        """Post a registration secret to the order's registered address (the holder asks, or an
        RA officer on the holder's behalf; the letter goes to the registered address either way)."""
        secret = new_registration_secret()
        hashed = hash_password(normalise_secret(secret) or "")
        now = self.ra.clock()
        refusal: RAError | None = None
        result: SecretSent | None = None
        with self.ra.db.write() as s:
            card = self.ra._card(s, card_id, principal, lock=True)
            acting = self.ra._own_or(principal, card.holder_account_id, Role.RA_OFFICER)
            order, product = self._order_of(s, card)
            wait = retry_after(
                tan_repo.count_secrets(s, card.id, now - SECRET_LETTER_WINDOW),
                SECRET_LETTERS_PER_CARD,
                SECRET_LETTER_WINDOW,
                now,
            )
            try:
                require_offered(product, order.channel)
                if card.state not in _USABLE_STATES:
                    raise RAError(RAErrorKind.ILLEGAL_TRANSITION, f"the card is {card.state}")
                if order.postal_address is None:
                    raise RAError(RAErrorKind.CONFLICT, "the order has no registered postal address for the letter")
                if wait is not None:
                    raise RAError(
                        RAErrorKind.RATE_LIMITED,
                        f"at most {SECRET_LETTERS_PER_CARD} registration secrets per card and day",
                        retry_after=wait,
                    )
            except RAError as exc:
                refusal = exc
            if refusal is not None:
                self.ra._audit(
                    s,
                    principal,
                    acting,
                    "card.registration_secret_request_refused",
                    "card",
                    card.id,
                    {"detail": refusal.detail},
                    at=now,
                )
            else:
                assert order.postal_address is not None
                # Seed 000: the secret goes by post to the registered address (the one checked at
                # identification), never to an address from the request.
                withdrawn: list[JSONValue] = []
                for old in tan_repo.secrets_supersede(s, card.id):
                    self.ra.outbox.cancel(s, old.outbox_ref)
                    withdrawn.append(old.id)
                expires = now + SECRET_VALIDITY
                text = (
                    f"Registration secret for SMS-TAN, card {card.id}: {secret}\n"
                    f"Valid until {expires:%Y-%m-%d}. Enter it with your mobile number when you are logged in.\n"
                    "If you did not ask for it, you need not do anything: nobody can use it without this letter."
                )
                reference = self.ra.outbox.enqueue(
                    s,
                    channel=Channel.POST,
                    purpose="registration-secret",
                    recipient=order.postal_address,
                    text=text,
                    account_id=card.holder_account_id,
                    card_id=card.id,
                )
                secret_id = tan_repo.secret_add(
                    s,
                    card_id=card.id,
                    secret_hash=hashed,
                    state="active",
                    attempts=0,
                    requested_at=now,
                    requested_by=principal.name[:255],
                    expires_at=expires,
                    outbox_ref=reference,
                )
                sent_to = mask_recipient(order.postal_address)
                self.ra._audit(
                    s,
                    principal,
                    acting,
                    "card.registration_secret_requested",
                    "card",
                    card.id,
                    {
                        "secret": secret_id,
                        "letter": reference,
                        "sent_to": sent_to,
                        "expires_at": expires.isoformat(),
                        "superseded": withdrawn,
                    },
                    at=now,
                )
                result = SecretSent(card.id, expires, sent_to, reference)
        if refusal is not None:
            raise refusal
        assert result is not None
        self.ra.dispatch_outbox()
        return result

    def register_mobile(
        self, principal: Principal, card_id: int, secret: str, mobile: str, client_address: str | None = None
    ) -> MobileStatus:
        """The holder registers (or changes) the card's mobile number with the posted secret."""
        number = normalise_mobile(mobile)
        candidate = normalise_secret(secret)
        with self.ra.db.read() as s:
            card = self.ra._card(s, card_id, principal)
            if not self.ra._is_holder(principal, card):
                raise RAError(RAErrorKind.FORBIDDEN, "only the card's holder registers its mobile number")
            order, product = self._order_of(s, card)
            require_offered(product, order.channel)
            stored = tan_repo.active_secret(s, card.id)
        # Argon2 outside the transaction; the conditional update below decides single use.
        right = (
            verify_password(stored.secret_hash if stored else self.ra._dummy(), candidate or "")
            and stored is not None
            and candidate is not None
        )
        now = self.ra.clock()
        address = client_address[:64] if client_address else None
        refusal: RAError | None = None
        with self.ra.db.write() as s:
            card = self.ra._card(s, card_id, principal, lock=True)
            wait = retry_after(
                tan_repo.failures(s, "registration-secret", now - SECRET_WINDOW, card_id=card.id),
                SECRET_FAILURES_PER_CARD,
                SECRET_WINDOW,
                now,
            )
            details: dict[str, JSONValue] = {"secret": stored.id if stored else None}
            if wait is not None:
                refusal = RAError(
                    RAErrorKind.RATE_LIMITED,
                    "too many wrong registration secrets: try again later",
                    retry_after=wait,
                )
            elif card.state not in _USABLE_STATES:
                refusal = RAError(RAErrorKind.ILLEGAL_TRANSITION, f"the card is {card.state}")
            elif stored is not None and stored.expires_at <= now:
                refusal = RAError(RAErrorKind.FORBIDDEN, "the registration secret has expired: request a new one")
            elif not right:
                attempts = 0
                if stored is not None:
                    attempts = tan_repo.secret_wrong(s, stored.id, SECRET_ATTEMPTS)
                tan_repo.failure_add(s, card_id=card.id, kind="registration-secret", at=now, client_address=address)
                details["attempt"] = attempts
                refusal = RAError(
                    RAErrorKind.FORBIDDEN,
                    "wrong or no valid registration secret"
                    + (": it is now invalid, request a new one" if attempts >= SECRET_ATTEMPTS else ""),
                )
            elif stored is None or not tan_repo.consume_secret(s, stored.id, now):
                refusal = RAError(RAErrorKind.CONFLICT, "the registration secret has just been used or replaced")
            if refusal is not None:
                self.ra._audit(
                    s,
                    principal,
                    Role.APPLICANT,
                    "card.registration_secret_refused",
                    "card",
                    card.id,
                    {**details, "detail": refusal.detail},
                    at=now,
                )
            else:
                previous = tan_repo.mobile_get(s, card.order_id)
                hint = store_mobile(
                    s,
                    self.ra.data_key,
                    card.order_id,
                    number,
                    source="registration-secret",
                    by=principal.name,
                    at=now,
                )
                # REG-6.4.5-03: a registration event, audited (masked number only).
                # TANs already sent to the old number die with it.
                superseded = self._supersede_tans(s, card.id, None)
                self.ra._audit(
                    s,
                    principal,
                    Role.APPLICANT,
                    "card.mobile_changed" if previous else "card.mobile_registered",
                    "card",
                    card.id,
                    {
                        **details,
                        "mobile": hint,
                        "previous": previous.hint if previous else None,
                        "source": "registration-secret",
                        "tans_superseded": superseded,
                    },
                    at=now,
                )
        if refusal is not None:
            raise refusal
        return self.status(principal, card_id)

    # -- TANs ----------------------------------------------------------------------------------

    def request_tan(
        self, card_id: int, purpose: str, *, client_address: str | None = None, dispatch: bool = True
    ) -> TanReceipt:
        """Send a TAN for ``purpose`` to the card's registered number (no login: whoever holds the
        phone may revoke), if the card offers SMS-TAN, is usable, has a number and has not had
        its TANs for the hour.  Every request is recorded and audited, for an unknown card id too.

        The receipt's :meth:`~TanReceipt.answer` is the same whatever happened (module docstring);
        with ``dispatch=False`` the caller hands the SMS to the gateway itself, after answering.

        :raises RAError: MALFORMED (purpose), RATE_LIMITED (too many requests from the client
            address, for whatever cards: the one refusal that depends on the caller alone).
        """
        try:
            wanted = TanPurpose(purpose)
        except ValueError:
            raise RAError(
                RAErrorKind.MALFORMED, f"purpose must be one of {', '.join(p.value for p in TanPurpose)}"
            ) from None
        address = client_address[:64] if client_address else None
        principal = self._anonymous(address)
        now = self.ra.clock()
        tan = new_tan()
        salt = secrets.token_hex(16)
        limited: RAError | None = None
        refusal: RAError | None = None
        sent: TanSent | None = None
        with self.ra.db.write() as s:
            card = repo.card_get(s, card_id, lock=True)
            if address is not None:
                # Sent TANs and refused requests alike, for any card id (an unknown one too),
                # counted and recorded by one process at a time.
                repo.serialise_limit(s, f"address:{address}")
                requests = tan_repo.count_tans(s, now - TAN_WINDOW, client_address=address)
                requests += tan_repo.failures(s, "tan-request", now - TAN_WINDOW, client_address=address)
                wait = retry_after(sorted(requests), TAN_REQUESTS_PER_ADDRESS, TAN_WINDOW, now)
                if wait is not None:
                    limited = RAError(
                        RAErrorKind.RATE_LIMITED,
                        "too many TAN requests from this address: try again later",
                        retry_after=wait,
                    )
            mobile = None
            if limited is not None:
                refusal = limited
            elif card is None:
                refusal = RAError(RAErrorKind.NOT_FOUND, f"no card {card_id}")
            else:
                order, product = self._order_of(s, card)
                mobile = tan_repo.mobile_get(s, order.id)
                per_card = tan_repo.count_tans(s, now - TAN_WINDOW, card_id=card.id)
                try:
                    require_offered(product, order.channel)
                    if card.state not in _USABLE_STATES:
                        raise RAError(RAErrorKind.ILLEGAL_TRANSITION, f"the card is {card.state}")
                    if mobile is None:
                        raise RAError(
                            RAErrorKind.POLICY_VIOLATION,
                            "no mobile number is registered for this card: register one with the registration "
                            "secret sent by post",
                        )
                    wait = retry_after(per_card, TAN_REQUESTS_PER_CARD, TAN_WINDOW, now)
                    if wait is not None:
                        raise RAError(
                            RAErrorKind.RATE_LIMITED,
                            "too many TAN requests for this card: try again later",
                            retry_after=wait,
                        )
                except RAError as exc:
                    refusal = exc
            if refusal is not None:
                if limited is None:  # counted for the address (a limited request is not: it changes nothing)
                    tan_repo.failure_add(
                        s, card_id=card.id if card else None, kind="tan-request", at=now, client_address=address
                    )
                self.ra._audit(
                    s,
                    principal,
                    Role.SYSTEM,
                    "card.tan_request_refused",
                    "card",
                    card_id,
                    {"purpose": wanted.value, "client_address": address, "detail": refusal.detail},
                    at=now,
                )
            else:
                assert card is not None and mobile is not None
                superseded = self._supersede_tans(s, card.id, wanted.value)
                expires = now + TAN_VALIDITY
                minutes = int(TAN_VALIDITY.total_seconds() // 60)
                text = (
                    f"{tan} is your TAN to {wanted.wording} card {card.id}. Valid for {minutes} minutes, once. "
                    "Never pass it on: the trust center never asks for it."
                )
                reference = self.ra.outbox.enqueue(
                    s,
                    channel=Channel.SMS,
                    purpose=f"sms-tan-{wanted.value}",
                    recipient=self._number(mobile),
                    text=text,
                    account_id=card.holder_account_id,
                    card_id=card.id,
                )
                tan_id = tan_repo.tan_add(
                    s,
                    card_id=card.id,
                    purpose=wanted.value,
                    salt=salt,
                    digest=tan_digest(self._hmac_key(), salt, card.id, wanted.value, tan),
                    state="active",
                    attempts=0,
                    created_at=now,
                    expires_at=expires,
                    used_at=None,
                    requested_by=principal.name[:255],
                    client_address=address,
                    outbox_ref=reference,
                )
                self.ra._audit(
                    s,
                    principal,
                    Role.SYSTEM,
                    "card.tan_issued",
                    "card",
                    card.id,
                    {
                        "tan": tan_id,
                        "purpose": wanted.value,
                        "sms": reference,
                        "sent_to": mobile.hint,
                        "expires_at": expires.isoformat(),
                        "client_address": address,
                        "superseded": superseded,
                    },
                    at=now,
                )
                sent = TanSent(card.id, wanted.value, expires, mobile.hint, reference)
        if limited is not None:
            raise limited
        if sent is not None and dispatch:
            # The SMS leaves at once; should the gateway fail, the ra-outbox job retries it.
            self.ra.dispatch_outbox()
        return TanReceipt(card_id, wanted.value, sent, refusal)

    def verify_tan(
        self,
        s: UnitOfWork,
        card_id: int,
        purpose: str,
        tan: str,
        *,
        client_address: str | None = None,
        principal: Principal | None = None,
    ) -> TanVerdict:
        """Check ``tan`` for the card and purpose and consume it, in the caller's transaction.

        Never raises for a refused TAN: the verdict carries the refusal, and wrong attempts are
        written in ``s``, so the caller commits before raising (``verdict.raise_if_refused()``).
        Refusals: MALFORMED (purpose, TAN format), NOT_FOUND (card), POLICY_VIOLATION (no SMS-TAN
        for the card), RATE_LIMITED (too many wrong TANs: even the right one is refused),
        FORBIDDEN (wrong, expired, superseded or no TAN), CONFLICT (used concurrently).
        """
        address = client_address[:64] if client_address else None
        actor = principal or self._anonymous(address)
        now = self.ra.clock()

        def refused(kind: RAErrorKind, detail: str, *, wrong: bool = False, retry: int | None = None) -> TanVerdict:
            return TanVerdict(False, None, RAError(kind, detail, retry_after=retry), wrong)

        try:
            wanted = TanPurpose(purpose)
        except ValueError:
            return refused(RAErrorKind.MALFORMED, "purpose must be follow-up or revocation")
        card = repo.card_get(s, card_id)
        if card is None:
            return refused(RAErrorKind.NOT_FOUND, f"no card {card_id}")
        order, product = self._order_of(s, card)
        try:
            require_offered(product, order.channel)
        except RAError as exc:
            return TanVerdict(False, None, exc, False)
        details: dict[str, JSONValue] = {"purpose": wanted.value, "client_address": address}

        def audit_refusal(verdict: TanVerdict, tan_id: int | None = None, **extra: JSONValue) -> TanVerdict:
            assert verdict.refusal is not None
            self.ra._audit(
                s,
                actor,
                Role.SYSTEM,
                "card.tan_refused",
                "card",
                card_id,
                {**details, "tan": tan_id, **extra, "detail": verdict.refusal.detail},
                at=now,
            )
            return verdict

        wait = _failure_wait(s, address, now, lambda since: tan_repo.failures(s, "tan", since, card_id=card_id))
        if wait is not None:
            return audit_refusal(
                refused(RAErrorKind.RATE_LIMITED, "too many wrong TANs for this card: try again later", retry=wait)
            )
        if not _TAN_RE.match(tan):
            return audit_refusal(refused(RAErrorKind.MALFORMED, "the TAN has 6 digits"))
        active = tan_repo.active_tans(s, card_id, wanted.value)
        current = active[0] if active else None
        if current is None:
            return audit_refusal(refused(RAErrorKind.FORBIDDEN, f"no valid TAN for {wanted.value}: request one"))
        if current.expires_at <= now:
            return audit_refusal(refused(RAErrorKind.FORBIDDEN, "the TAN has expired: request a new one"), current.id)
        expected = tan_digest(self._hmac_key(), current.salt, card_id, wanted.value, tan)
        if not hmac.compare_digest(expected, current.digest):
            attempts = tan_repo.tan_wrong(s, current.id, TAN_ATTEMPTS)
            tan_repo.failure_add(s, card_id=card_id, kind="tan", at=now, client_address=address)
            dead = attempts >= TAN_ATTEMPTS
            detail = "wrong TAN: it is now invalid, request a new one" if dead else "wrong TAN"
            return audit_refusal(
                refused(RAErrorKind.FORBIDDEN, detail, wrong=True), current.id, attempt=attempts, dead=dead
            )
        if not tan_repo.consume_tan(s, current.id, now):
            return audit_refusal(refused(RAErrorKind.CONFLICT, "the TAN has already been used"), current.id)
        self.ra._audit(s, actor, Role.SYSTEM, "card.tan_used", "card", card_id, {**details, "tan": current.id}, at=now)
        return TanVerdict(True, current.id, None, False)

    # -- revocation by TAN ---------------------------------------------------------------------

    def revoke_with_tan(
        self,
        card_id: int,
        tan: str,
        reason: str,
        requester_name: str | None = None,
        client_address: str | None = None,
    ) -> tuple[int, CardRec]:
        """Revoke a card with a revocation TAN, without an account (seed 000; EN 319 411-1
        REV-6.2.4-09: the request is authenticated, here by possession of the registered phone).

        Recorded in ``ra_revocation_request`` (authenticated_by ``sms-tan``, requester kind
        ``holder``) with its decision, refused ones too, and carried out through the CA with the
        receipt time, as :meth:`RAService.revoke_with_password` does.

        :returns: the request id and the card after revocation.
        :raises RAError: MALFORMED (reason, TAN format); FORBIDDEN with :data:`TAN_REFUSAL` for
            every refused authentication, an unknown card included (the record keeps the reason);
            RATE_LIMITED (too many refused TANs for the card or from the address);
            ILLEGAL_TRANSITION and the like only after the TAN was accepted.
        """
        from ra.service import _REVOCATION_REASONS

        if reason not in _REVOCATION_REASONS:
            raise RAError(RAErrorKind.MALFORMED, f"reason must be one of {', '.join(sorted(_REVOCATION_REASONS))}")
        if not _TAN_RE.match(tan):  # the request alone decides this: before the card is looked at
            raise RAError(RAErrorKind.MALFORMED, "the TAN has 6 digits")
        address = client_address[:64] if client_address else None
        principal = self._anonymous(address)
        received = self.ra.clock()
        name = (requester_name or "").strip()[:100]
        refusal: RAError | None = None
        failed: RAError | None = None  # the authentication's refusal, answered as TAN_REFUSAL
        request_id = 0
        slots: list[SlotRec] = []
        with self.ra.db.write() as s:
            card = repo.card_get(s, card_id, lock=True)
            if card is None:
                # Recorded too (REV-6.4.5-09), counted for the card id and the address, refused
                # and limited as a wrong TAN for an existing card is.
                wait = _failure_wait(
                    s, address, received, lambda since: tan_repo.unknown_card_failures(s, str(card_id), since)
                )
                if wait is not None:
                    failed = RAError(
                        RAErrorKind.RATE_LIMITED, "too many wrong TANs for this card: try again later", retry_after=wait
                    )
                else:
                    failed = RAError(RAErrorKind.FORBIDDEN, f"no card {card_id}")
                    tan_repo.failure_add(s, card_id=None, kind="tan", at=received, client_address=address)
                requester = "sms-tan:unknown card" + (f" ({name})" if name else "")
                self.ra._record_refused_unknown(
                    s,
                    principal,
                    card_id,
                    received,
                    requester,
                    address,
                    reason,
                    failed,
                    requester_kind="holder",
                    authenticated_by="sms-tan",
                )
                refusal = failed
            else:
                # REV-6.2.4-09: the request is authenticated (the TAN went to the registered phone)
                # before it is accepted; REV-6.4.5-09: recorded with its decision either way, in
                # this transaction, together with the TAN's consumption or the counted failure.
                verdict = self.verify_tan(
                    s, card.id, TanPurpose.REVOCATION.value, tan, client_address=address, principal=principal
                )
                failed = verdict.refusal
                if failed is not None and not verdict.wrong and failed.kind is not RAErrorKind.RATE_LIMITED:
                    # No TAN, an expired or used one, a portal card: counted as a wrong TAN is, so
                    # that no refusal is cheaper to repeat than another.
                    tan_repo.failure_add(s, card_id=card.id, kind="tan", at=received, client_address=address)
                mobile = tan_repo.mobile_get(s, card.order_id)
                requester = f"sms-tan:{mobile.hint if mobile else 'no number'}" + (f" ({name})" if name else "")
                request_id, slots, refusal = self.ra._decide(
                    s,
                    principal,
                    Role.SYSTEM,
                    card,
                    reason,
                    received,
                    "holder",
                    requester,
                    "sms-tan",
                    address,
                    failed,
                    auth_failed=failed is not None and failed.kind is not RAErrorKind.RATE_LIMITED,
                )
        if refusal is not None and refusal is failed:
            # Recorded above with its real reason; the anonymous caller learns only this.
            if refusal.kind is RAErrorKind.RATE_LIMITED:
                raise RAError(
                    RAErrorKind.RATE_LIMITED, "too many wrong TANs: try again later", retry_after=refusal.retry_after
                )
            raise RAError(RAErrorKind.FORBIDDEN, TAN_REFUSAL)
        if refusal is not None:
            raise refusal
        return request_id, self.ra._complete_revocation(
            principal, Role.SYSTEM, card_id, slots, reason, received, request_id
        )
