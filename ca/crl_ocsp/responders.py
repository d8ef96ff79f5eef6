"""Renewal of the delegated OCSP responder certificates (issue 3 point 4).

Responder certificates carry id-pkix-ocsp-nocheck, so they are short-lived (EN 319 411-1
CSS-6.6.3-01A); a new key and certificate are made inside the key backend some days before the
current one expires (``status.responder_renew_days``).  Earlier certificates and keys stay
recorded: responses they signed remain verifiable, and the OCSP responder always signs with the
newest valid one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ca.issuance.csr import spki_sha256
from ca.issuance.hierarchy import HierarchySettings, ca_signing_key, issue_responder, store_responder
from ca.issuance.service import Actor, Clock, system_clock
from ca.store import crl_repo
from ca.store import repository as repo
from ca.store.db import Database
from hsm import KeyBackend

__all__ = ["RenewedResponder", "ResponderRenewal"]


@dataclass(frozen=True, slots=True)
class RenewedResponder:
    ca: str
    serial: str
    not_after: dt.datetime
    certificate_sha256: str


@dataclass
class ResponderRenewal:
    db: Database
    backend: KeyBackend
    settings: HierarchySettings
    clock: Clock = system_clock

    def renew_due(self, renew_before: dt.timedelta, *, actor: Actor, force: bool = False) -> list[RenewedResponder]:
        """Issue a new responder certificate for every issuing CA whose newest one expires within
        ``renew_before`` (or has none).  A renewal that would not extend the coverage (the CA
        itself expires first) is skipped."""
        now = self.clock().replace(microsecond=0)
        with self.db.read() as s:
            # A closed CA (its last CRL published) signs nothing more, responders included.
            closed = crl_repo.closed_ca_names(s)
            cas = [c for c in repo.list_cas(s) if c.role == "issuing" and c.name not in closed]
        renewed: list[RenewedResponder] = []
        for ca in cas:
            current = (
                x509.load_der_x509_certificate(ca.responder_certificate_der).not_valid_after_utc
                if ca.responder_certificate_der
                else None
            )
            if not force and current is not None and current - now > renew_before:
                continue
            ca_cert = x509.load_der_x509_certificate(ca.certificate_der)
            if current is not None and ca_cert.not_valid_after_utc <= current:
                continue  # the CA expires first: a new responder would cover nothing more
            _, ca_key = ca_signing_key(self.backend, ca)
            stamp = now.strftime("%Y%m%dT%H%M%SZ")
            ref, cert = issue_responder(self.backend, self.settings, ca.name, ca_cert, ca_key, now, stamp)
            fingerprint = cert.fingerprint(hashes.SHA256()).hex()
            with self.db.write() as s:
                if crl_repo.closed_at(s, ca.id, lock=True) is not None:
                    continue  # closed while the certificate was made: it is never stored nor served
                store_responder(s, ca.id, ref, cert, now)
                repo.append_audit(
                    s,
                    at=now,
                    actor=actor.name,
                    role=actor.role,
                    action="ocsp.responder_renewed",
                    object_type="ca",
                    object_id=ca.name,
                    details={
                        "ca": ca.name,
                        "serial": format(cert.serial_number, "x"),
                        "not_before": cert.not_valid_before_utc.isoformat(),
                        "not_after": cert.not_valid_after_utc.isoformat(),
                        "certificate_sha256": fingerprint,
                        "public_key_sha256": spki_sha256(cert.public_key()),
                        "key_label": ref.label,
                        "previous_not_after": current.isoformat() if current else None,
                    },
                )
            renewed.append(
                RenewedResponder(ca.name, format(cert.serial_number, "x"), cert.not_valid_after_utc, fingerprint)
            )
        return renewed
