"""The RA's outbox: every SMS (SMS-TANs), letter (order passwords, registration secrets) and email
(order email confirmations) the RA sends goes through here.

A message is written in the same transaction as the business change that needs it (the TAN row,
the order password hash), so a crash can never leave a secret issued but unsent or sent but
unrecorded.  Recipient and text are stored only encrypted with the RA data key (AES-GCM, the
message's reference as associated data) and wiped when the gateway has taken the message; the
row keeps purpose, masked recipient, attempts and outcome.  A scheduled job (and, for SMS, the
request itself) hands due messages to the channel's :class:`Gateway`.

Delivery is at least once: a dispatcher that ends between the gateway's acceptance and the
outcome being recorded leaves the row ``sending``; after ``stale_after`` another dispatcher sends
it again.  The gateways are pluggable (``[ra] sms_gateway`` / ``post_gateway`` /
``email_gateway``): the built-in
``spool`` gateway is for development and demonstrations only: it writes each message to a file
(mode 0600) under the home directory and logs only metadata, never the text.
"""

from __future__ import annotations

import datetime as dt
import enum
import importlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from ca.store import repository as ca_repo
from ca.store.db import Database, UnitOfWork
from ra.credentials import DataKey
from ra.errors import RAError, RAErrorKind
from ra.store import outbox_repo

__all__ = [
    "Channel",
    "DispatchResult",
    "Gateway",
    "GatewayError",
    "Message",
    "Outbox",
    "SpoolGateway",
    "load_gateway",
    "mask_recipient",
]

log = logging.getLogger(__name__)

#: Retry delays after the 1st, 2nd, ... failed attempt; after the last the message is ``failed``.
RETRY_DELAYS: Final = (
    dt.timedelta(seconds=30),
    dt.timedelta(minutes=2),
    dt.timedelta(minutes=10),
    dt.timedelta(hours=1),
)
MAX_ATTEMPTS: Final = len(RETRY_DELAYS) + 1
OUTBOX_ACTOR: Final = "system:outbox"


class Channel(enum.StrEnum):
    SMS = "sms"
    POST = "post"
    EMAIL = "email"


@dataclass(frozen=True, slots=True)
class Message:
    """One message as a gateway sees it (decrypted for the moment of sending only)."""

    reference: str
    channel: Channel
    purpose: str
    recipient: str
    """An E.164 mobile number for SMS; the postal address (lines joined by newlines) for letters."""
    text: str = field(repr=False)


class GatewayError(Exception):
    """The gateway did not take the message; ``str()`` is a short reason (no message text)."""


@runtime_checkable
class Gateway(Protocol):
    """Hands a message to a carrier; returns the carrier's reference for it."""

    def send(self, message: Message) -> str: ...


@dataclass
class SpoolGateway:
    """Development only: writes each message to ``<directory>/<channel>/<reference>.txt`` (0600)
    and logs that it did, without the text or the full recipient."""

    directory: Path

    def send(self, message: Message) -> str:
        target = self.directory / message.channel.value
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = target / f"{message.reference}.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"To: {message.recipient}\nPurpose: {message.purpose}\n\n{message.text}\n")
        log.info(
            "outbox.spooled",
            extra={
                "channel": message.channel.value,
                "purpose": message.purpose,
                "reference": message.reference,
                "recipient": mask_recipient(message.recipient),
            },
        )
        return f"spool:{path.name}"

    def read(self, channel: Channel, reference: str) -> str:
        """The spooled text of a message (demonstrations and tests)."""
        raw = (self.directory / channel.value / f"{reference}.txt").read_text(encoding="utf-8")
        return raw.split("\n\n", 1)[1].rstrip("\n")


def load_gateway(spec: str, channel: Channel, home: Path) -> Gateway:
    """``spool`` (development), or ``package.module:factory`` where ``factory(channel)`` returns a
    :class:`Gateway` (an operator's carrier integration, configured from its own environment)."""
    if spec == "spool":
        return SpoolGateway(home / "outbox")
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise RAError(RAErrorKind.MALFORMED, f"gateway {spec!r}: expected 'spool' or 'package.module:factory'")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise RAError(RAErrorKind.MALFORMED, f"gateway {spec!r}: {type(exc).__name__}: {exc}") from None
    gateway = factory(channel)
    if not isinstance(gateway, Gateway):
        raise RAError(RAErrorKind.MALFORMED, f"gateway {spec!r}: the factory returned no object with send()")
    return gateway


def mask_recipient(recipient: str) -> str:
    """``+4915112345678`` -> ``+49*********78``; ``paula@patent.example`` -> ``pa***@patent.example``;
    postal addresses -> the first line's first 3 characters."""
    first = recipient.strip().splitlines()[0] if recipient.strip() else ""
    if first.startswith("+") and first[1:].isdigit():
        return first[:3] + "*" * max(0, len(first) - 5) + first[-2:]
    local, at, domain = first.partition("@")
    if at and "\n" not in recipient.strip():  # an email address: ``pa***@patent.example``
        return (local[:2] + "***@" + domain)[:64]
    return (first[:3] + "***")[:64]


@dataclass(frozen=True, slots=True)
class DispatchResult:
    sent: list[str]
    retried: list[str]
    failed: list[str]


def _aad(reference: str) -> bytes:
    return b"qtsp-ra-outbox:" + reference.encode()


@dataclass
class Outbox:
    db: Database
    data_key: DataKey
    clock: Callable[[], dt.datetime]
    stale_after: dt.timedelta = dt.timedelta(minutes=5)

    def enqueue(
        self,
        s: UnitOfWork,
        *,
        channel: Channel,
        purpose: str,
        recipient: str,
        text: str,
        account_id: int | None = None,
        card_id: int | None = None,
    ) -> str:
        """Queue a message inside the caller's transaction; return its reference."""
        if not recipient.strip():
            raise RAError(RAErrorKind.MALFORMED, f"{channel.value} message for {purpose}: no recipient")
        reference = str(uuid.uuid4())
        payload = json.dumps({"recipient": recipient, "text": text}).encode()
        now = self.clock()
        outbox_repo.add(
            s,
            reference=reference,
            channel=channel.value,
            purpose=purpose,
            account_id=account_id,
            card_id=card_id,
            recipient_hint=mask_recipient(recipient),
            key_id=self.data_key.key_id,
            payload=self.data_key.encrypt(payload, _aad(reference)),
            state="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        return reference

    def cancel(self, s: UnitOfWork, reference: str) -> bool:
        """Withdraw a message not yet sent (a TAN superseded by a newer one); True if withdrawn."""
        row = outbox_repo.by_reference(s, reference)
        if row is None or row.state not in ("pending",):
            return False
        outbox_repo.update_row(s, row.id, state="cancelled", payload=None)
        return True

    def dispatch(self, gateways: Mapping[Channel, Gateway], *, limit: int = 100) -> DispatchResult:
        """Hand every due message of a channel with a gateway to it (one claim transaction, then one
        outcome transaction per message, so a slow carrier never holds the database)."""
        now = self.clock()
        with self.db.write() as s:
            claimed = outbox_repo.claim_due(s, now, now - self.stale_after, limit)
        sent: list[str] = []
        retried: list[str] = []
        failed: list[str] = []
        for row in claimed:
            channel = Channel(row.channel)
            gateway = gateways.get(channel)
            outcome: str | None = None
            error: str | None = None
            if gateway is None:
                error = f"no gateway configured for {channel.value}"
            elif row.payload is None:
                error = "message text missing"
            else:
                body = json.loads(self.data_key.decrypt(row.payload, _aad(row.reference)))
                message = Message(row.reference, channel, row.purpose, body["recipient"], body["text"])
                try:
                    outcome = gateway.send(message)
                except GatewayError as exc:
                    error = str(exc)[:200] or type(exc).__name__
                except Exception as exc:  # a carrier integration's bug must not stop the others
                    log.exception("outbox gateway failed")
                    error = f"{type(exc).__name__}"
            self._record(row, outcome, error)
            if outcome is not None:
                sent.append(row.reference)
            elif row.attempts >= MAX_ATTEMPTS:
                failed.append(row.reference)
            else:
                retried.append(row.reference)
        return DispatchResult(sent, retried, failed)

    def _record(self, row: outbox_repo.OutboxRow, gateway_ref: str | None, error: str | None) -> None:
        now = self.clock()
        with self.db.write() as s:
            details: dict[str, object] = {
                "reference": row.reference,
                "channel": row.channel,
                "purpose": row.purpose,
                "recipient": row.recipient_hint,
                "attempt": row.attempts,
            }
            if gateway_ref is not None:
                outbox_repo.update_row(s, row.id, state="sent", sent_at=now, payload=None, gateway_ref=gateway_ref)
                action = "outbox.sent"
                details["gateway_ref"] = gateway_ref
            elif row.attempts >= MAX_ATTEMPTS:
                outbox_repo.update_row(s, row.id, state="failed", payload=None, last_error=error)
                action = "outbox.failed"
                details["error"] = error
            else:
                delay = RETRY_DELAYS[row.attempts - 1]
                outbox_repo.update_row(s, row.id, state="pending", next_attempt_at=now + delay, last_error=error)
                action = "outbox.retry"
                details["error"] = error
            ca_repo.append_audit(
                s,
                at=now,
                actor=OUTBOX_ACTOR,
                role="system",
                action=action,
                object_type="outbox",
                object_id=str(row.id),
                details=details,  # type: ignore[arg-type]
            )
