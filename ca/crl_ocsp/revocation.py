"""Revocation and activation (DESIGN.md steps 6–7; STANDARDS.md §2.1–2.2).

* :meth:`RevocationService.revoke` is final: revoking twice, or a revoked certificate's
  reinstatement, is refused (EN 319 411-1 REV-6.3.9-04; eIDAS Art. 28(4)).
* Card certificates are issued *not activated* (on hold, certificateHold) and
  :meth:`RevocationService.activate` releases the hold once (eIDAS Art. 28(4) forbids reverting a
  QC only after its activation).  A hold is never placed on a certificate after issuance.
* Each change is one transaction: status entry, certificate status, removal of the pre-signed OCSP
  response (so no stale answer survives the commit), the CRL marked pending, and the audit event
  (EN 319 411-1 REV-6.4.5-09: every request and the resulting action is logged).  After the
  commit, ``on_change`` (the OCSP pre-signer) re-signs the certificate's response at once.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ca.asn1.crl_entry import CRL_REASONS, crl_entry_der
from ca.audit.chain import JSONValue
from ca.issuance.service import Actor, Clock, system_clock
from ca.store import repository as repo
from ca.store import status as status_repo
from ca.store.db import Database, UnitOfWork

__all__ = ["REVOCATION_REASONS", "RevocationError", "RevocationResult", "RevocationService", "StatusErrorKind"]

#: Reasons a revocation may carry (RFC 5280 §5.3.1).  certificateHold is placed only at issuance;
#: removeFromCRL belongs to delta CRLs, which we do not issue.
REVOCATION_REASONS: Final = tuple(sorted(CRL_REASONS - {"certificateHold"}))


class StatusErrorKind(enum.Enum):
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID = "invalid"


class RevocationError(Exception):
    """A refused status change; ``str()`` is one line for the operator."""

    def __init__(self, kind: StatusErrorKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class RevocationResult:
    issuer: str
    serial: str
    action: str
    """``revoked`` or ``activated``."""
    reason: str | None
    effective_at: dt.datetime
    audit_seq: int


ChangeHook = Callable[[str, str], None]
"""Called after a committed change with (issuer name, serial hex)."""


def _closed(issuer_name: str) -> RevocationError:
    return RevocationError(
        StatusErrorKind.CONFLICT,
        f"CA {issuer_name} is closed: its last CRL is published and final, no status changes any more "
        "(EN 319 411-2 CSS-6.3.10-07)",
    )


def normalise_serial(serial: str) -> str:
    """Accept hex with or without ``0x``, colons or leading zeros; return our stored form."""
    text = serial.strip().lower().removeprefix("0x").replace(":", "")
    try:
        value = int(text, 16)
    except ValueError:
        raise RevocationError(StatusErrorKind.INVALID, f"serial {serial!r} is not hexadecimal") from None
    if value <= 0:
        raise RevocationError(StatusErrorKind.INVALID, f"serial {serial!r} is not positive")
    return format(value, "x")


@dataclass
class RevocationService:
    db: Database
    clock: Clock = system_clock
    on_change: ChangeHook | None = None

    def _lookup(self, s: UnitOfWork, issuer_name: str, serial: str) -> status_repo.CertificateStatusRow:
        ca = status_repo.ca_by_name(s, issuer_name)
        if ca is None:
            raise RevocationError(StatusErrorKind.NOT_FOUND, f"no CA named {issuer_name!r}")
        cert = status_repo.find_certificate(s, ca, serial)
        if cert is None:
            raise RevocationError(
                StatusErrorKind.NOT_FOUND, f"CA {issuer_name} has issued no certificate with serial {serial}"
            )
        return cert

    def status(self, issuer_name: str, serial: str) -> str:
        """The certificate's status: ``good``, ``on-hold`` or ``revoked``.

        :raises RevocationError: unknown CA or serial.
        """
        with self.db.read() as s:
            return self._lookup(s, issuer_name, normalise_serial(serial)).status

    def find_issuer(self, serial: str) -> str:
        """The name of the CA that issued ``serial`` (serials are unique per CA; ambiguity is refused)."""
        shex = normalise_serial(serial)
        with self.db.read() as s:
            names = status_repo.issuers_of_serial(s, shex)
        if not names:
            raise RevocationError(StatusErrorKind.NOT_FOUND, f"no certificate with serial {shex}")
        if len(names) > 1:
            raise RevocationError(
                StatusErrorKind.INVALID, f"serial {shex} exists under CAs {', '.join(names)}: name the issuer"
            )
        return names[0]

    def revoke(
        self,
        issuer_name: str,
        serial: str,
        reason: str,
        *,
        actor: Actor,
        received_at: dt.datetime | None = None,
        invalidity_date: dt.datetime | None = None,
        requested_by: str | None = None,
    ) -> RevocationResult:
        """Revoke a certificate now.

        :param received_at: when the request was received (EN 319 411-1 REV-6.2.4-03A counts the
            24 h from here); defaults to now.
        :param invalidity_date: when the key is known or suspected to have been compromised
            (RFC 5280 §5.3.2); never after now.
        :param requested_by: who asked (the holder, the revocation-authorised person, the
            organisation, an officer); defaults to the actor.
        :raises RevocationError: unknown CA or serial, already revoked, or invalid arguments.
        """
        shex = normalise_serial(serial)
        if reason not in REVOCATION_REASONS:
            hint = (
                "; holds are placed only at issuance on not-activated certificates"
                if reason == "certificateHold"
                else ""
            )
            raise RevocationError(
                StatusErrorKind.INVALID,
                f"reason {reason!r} is not one of {', '.join(REVOCATION_REASONS)} (RFC 5280 §5.3.1){hint}",
            )
        now = self.clock()
        effective = now.replace(microsecond=0)
        received = now if received_at is None else received_at
        for label, value in (("received_at", received), ("invalidity_date", invalidity_date)):
            if value is None:
                continue
            if value.tzinfo is None:
                raise RevocationError(StatusErrorKind.INVALID, f"{label} must carry a time zone")
            if value > now + dt.timedelta(seconds=5):
                raise RevocationError(StatusErrorKind.INVALID, f"{label} {value.isoformat()} lies in the future")
        invalidity = invalidity_date.astimezone(dt.UTC).replace(microsecond=0) if invalidity_date else None
        with self.db.write() as s:
            cert = self._lookup(s, issuer_name, shex)
            entry = status_repo.status_entry(s, cert.issuer_id, shex)
            if entry is not None and entry.reason != "certificateHold":
                raise RevocationError(
                    StatusErrorKind.CONFLICT,
                    f"certificate {issuer_name}:{shex} was revoked at {entry.revoked_at.isoformat()} "
                    f"({entry.reason}); revocation is final (EN 319 411-1 REV-6.3.9-04)",
                )
            status_repo.add_status_entry(
                s,
                cert=cert,
                reason=reason,
                revoked_at=effective,
                invalidity_date=invalidity,
                received_at=received,
                requested_by=requested_by or actor.name,
                decided_by=actor.name,
                crl_entry_der=crl_entry_der(int(shex, 16), effective, reason, invalidity),
                at=now,
            )
            if not status_repo.mark_crl_pending(s, cert.issuer_id, now):
                raise _closed(issuer_name)
            details: dict[str, JSONValue] = {
                "issuer": issuer_name,
                "serial": shex,
                "subject": cert.subject,
                "profile": cert.profile,
                "reason": reason,
                "revoked_at": effective.isoformat(),
                "invalidity_date": invalidity.isoformat() if invalidity else None,
                "received_at": received.astimezone(dt.UTC).isoformat(),
                "requested_by": requested_by or actor.name,
                "was_activated": cert.status == "good",
                "processing_seconds": round((now - received).total_seconds(), 3),
            }
            seq = repo.append_audit(
                s,
                at=now,
                actor=actor.name,
                role=actor.role,
                action="certificate.revoked",
                object_type="certificate",
                object_id=f"{issuer_name}:{shex}",
                details=details,
            )
        self._changed(issuer_name, shex)
        return RevocationResult(issuer_name, shex, "revoked", reason, effective, seq)

    def activate(self, issuer_name: str, serial: str, *, actor: Actor, how: str = "operator") -> RevocationResult:
        """Release the hold of a not-activated certificate (the holder confirmed receipt, or the
        activation period after shipping passed).

        :raises RevocationError: unknown, already activated, or revoked (never reinstated).
        """
        shex = normalise_serial(serial)
        now = self.clock()
        with self.db.write() as s:
            cert = self._lookup(s, issuer_name, shex)
            if cert.status == "revoked":
                raise RevocationError(
                    StatusErrorKind.CONFLICT,
                    f"certificate {issuer_name}:{shex} is revoked; a revoked certificate is never reinstated "
                    "(eIDAS Art. 28(4), EN 319 411-1 REV-6.3.9-04)",
                )
            if cert.status != "on-hold" or not status_repo.remove_hold(s, cert=cert, at=now):
                raise RevocationError(
                    StatusErrorKind.CONFLICT, f"certificate {issuer_name}:{shex} is already activated"
                )
            if not status_repo.mark_crl_pending(s, cert.issuer_id, now):
                raise _closed(issuer_name)
            seq = repo.append_audit(
                s,
                at=now,
                actor=actor.name,
                role=actor.role,
                action="certificate.activated",
                object_type="certificate",
                object_id=f"{issuer_name}:{shex}",
                details={"issuer": issuer_name, "serial": shex, "subject": cert.subject, "how": how},
            )
        self._changed(issuer_name, shex)
        return RevocationResult(issuer_name, shex, "activated", None, now, seq)

    def schedule_activation(self, issuer_name: str, serial: str, at: dt.datetime, *, actor: Actor) -> None:
        """Set when a held certificate is activated automatically (the RA calls this at shipping)."""
        shex = normalise_serial(serial)
        with self.db.write() as s:
            cert = self._lookup(s, issuer_name, shex)
            if cert.status != "on-hold" or cert.certificate_id is None:
                raise RevocationError(
                    StatusErrorKind.CONFLICT, f"certificate {issuer_name}:{shex} is not awaiting activation"
                )
            status_repo.set_activate_after(s, certificate_id=cert.certificate_id, at=at)
            repo.append_audit(
                s,
                at=self.clock(),
                actor=actor.name,
                role=actor.role,
                action="certificate.activation_scheduled",
                object_type="certificate",
                object_id=f"{issuer_name}:{shex}",
                details={"activate_after": at.astimezone(dt.UTC).isoformat()},
            )

    def release_due_holds(self, *, actor: Actor, limit: int = 500) -> list[RevocationResult]:
        """Activate every held certificate whose activation time has passed (scheduler job)."""
        with self.db.read() as s:
            due = status_repo.holds_due(s, self.clock(), limit)
        done: list[RevocationResult] = []
        for issuer_name, serial in due:
            try:
                done.append(self.activate(issuer_name, serial, actor=actor, how="activation period elapsed"))
            except RevocationError:
                continue  # revoked or activated meanwhile
        return done

    def _changed(self, issuer_name: str, serial: str) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(issuer_name, serial)
        except Exception:  # the change is committed; the scheduler re-signs later
            return
