"""What an auditor sees (issue 5 points 2–3): the evidence bundle behind one certificate, and
audit events by certificate, order, actor and time range.

The bundle joins the CA's record (certificate, status entry, reservation, issuance journal with
the lint report) with the RA's (order, approvals, identity evidence, evidence-copy record, OZB,
chamber confirmation, card) and every audit event about any of them.  The identity-document
copy itself is included only for the auditor role, and reading it is audited like any other read.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from ca.audit.chain import JSONValue
from ca.store import repository as ca_repo
from ca.store.db import Database
from ra import email_confirmation
from ra.errors import RAError, RAErrorKind
from ra.roles import Principal, Role
from ra.service import RAService
from ra.store import evidence_repo, renewal_repo
from ra.store import repository as repo

__all__ = ["AuditView"]


def _plain(value: object) -> JSONValue:
    """Records (dataclasses) as JSON values."""
    if value is None:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


@dataclass
class AuditView:
    db: Database
    ra: RAService

    def events(
        self,
        principal: Principal,
        *,
        certificate: str | None = None,
        order_id: int | None = None,
        actor: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 1000,
    ) -> list[dict[str, JSONValue]]:
        """Audit events filtered by certificate (``issuer:serial``), order, actor and time range."""
        principal.require(Role.AUDITOR, Role.SECURITY_OFFICER)
        objects: list[tuple[str, str]] = []
        if certificate is not None:
            objects += [("certificate", certificate), ("serial", certificate)]
        if order_id is not None:
            objects.append(("order", str(order_id)))
            with self.db.read() as s:
                card = evidence_repo.card_of_order(s, order_id)
            if card is not None:
                objects.append(("card", str(card)))
        if (certificate is not None or order_id is not None) and not objects:
            return []
        with self.db.read() as s:
            return ca_repo.audit_rows(s, object_ids=objects, actor=actor, since=since, until=until, limit=limit)

    def evidence_bundle(
        self, principal: Principal, issuer: str, serial_hex: str, *, include_copy: bool = False
    ) -> dict[str, Any]:
        """Everything behind one certificate.  ``include_copy`` needs the auditor role."""
        acting = principal.require(Role.AUDITOR, Role.SECURITY_OFFICER)
        if include_copy and Role.AUDITOR not in principal.roles:
            raise RAError(RAErrorKind.FORBIDDEN, "only the auditor role may read identity-document copies")
        with self.db.read() as s:
            certificate = ca_repo.certificate_dossier(s, issuer, serial_hex)
            if certificate is None:
                raise RAError(RAErrorKind.NOT_FOUND, f"CA {issuer} has no certificate with serial {serial_hex}")
            slot = evidence_repo.slot_of_certificate(s, issuer, serial_hex)
            order = repo.order_get(s, slot.order_id) if slot is not None else None
            ra_part: dict[str, Any] | None = None
            if order is not None:
                copy = repo.copy_get(s, order.id)
                card_id = evidence_repo.card_of_order(s, order.id)
                ra_part = {
                    "order": _plain(order),
                    "slot": _plain(slot),
                    "approvals": repo.approvals(s, order.id),
                    "identity_evidence": _plain(repo.identity_get(s, order.id)),
                    "evidence_copy": _plain(copy[0]) if copy is not None else None,
                    "ozb": _plain(repo.ozb_get(s, order.id)),
                    "chamber_confirmation": _plain(repo.chamber_get(s, order.id)),
                    # REG-6.2.2-02A: when the certified email address was confirmed (None: no email).
                    "email_confirmed_at": _plain(email_confirmation.confirmed_at(s, order.id, order.email))
                    if order.email is not None
                    else None,
                    "card": _plain(repo.card_get(s, card_id)) if card_id is not None else None,
                    # Online renewal: the renewed card, chosen date, outcome and the documents' records.
                    "renewal": _plain(renewal_repo.renewal_get(s, order.id)),
                    "renewal_documents": _plain(renewal_repo.documents(s, order.id)),
                }
        events = self.events(
            principal,
            certificate=f"{issuer}:{serial_hex}",
            order_id=order.id if order is not None else None,
        )
        bundle: dict[str, Any] = {
            "certificate": certificate,
            "registration": ra_part,
            "audit_events": events,
            "prepared_for": {"actor": principal.name, "role": str(acting)},
        }
        if include_copy and order is not None and ra_part is not None and ra_part["evidence_copy"] is not None:
            media_type, data = self.ra.read_copy(principal, order.id)  # audited as order.copy_read
            bundle["evidence_copy_content"] = {"media_type": media_type, "base64": base64.b64encode(data).decode()}
        return bundle
