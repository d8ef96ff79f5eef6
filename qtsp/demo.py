"""``qtsp demo``: one certificate of every profile from freshly generated keys, linted, exported."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from rich.console import Console
from rich.table import Table

from ca.findings import Severity
from ca.issuance.service import IssuedCertificate
from ca.profiles.subject import SubjectInput
from qtsp.config import Config
from qtsp.wiring import Runtime, os_actor, runtime

__all__ = ["DEMO_SUBJECTS", "READABLE_NAMES", "fresh_csr", "run_demo"]

READABLE_NAMES: Final = {
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.GIVEN_NAME: "givenName",
    NameOID.SURNAME: "surname",
    NameOID.PSEUDONYM: "pseudonym",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
}
"""X.520 names for the attributes RFC 4514 prints as dotted OIDs (display only)."""

DEMO_SUBJECTS: Final[dict[str, dict[str, object]]] = {
    "qes-natural": {
        "countryName": "DE",
        "commonName": "Erika Mustermann",
        "givenName": "Erika",
        "surname": "Mustermann",
        "serialNumber": "IDCDE-T22000129",
        "organizationName": "Mustermann Patentanwälte PartG mbB",
        "organizationIdentifier": "NTRDE-PR1234",
        "admission": {
            "authority": "Patentanwaltskammer",
            "profession": "Patentanwältin",
            "professionOid": "1.3.36.8.3.11.1.18",
            "registrationNumber": "PA-2020-0815",
        },
    },
    "qseal-legal": {
        "countryName": "DE",
        "organizationName": "Musterfirma GmbH",
        "organizationIdentifier": "VATDE-123456789",
        "commonName": "Musterfirma Rechnungssiegel",
    },
    "upc-auth": {
        "countryName": "DE",
        "commonName": "Erika Mustermann",
        "givenName": "Erika",
        "surname": "Mustermann",
        "email": "erika.mustermann@example.com",
    },
}


def fresh_csr(curve: ec.EllipticCurve | None = None) -> bytes:
    """A CSR for a freshly generated key (as card personalisation would submit for one slot)."""
    from cryptography.hazmat.primitives import serialization

    key = ec.generate_private_key(curve or ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def run_status_demo(rt: Runtime, issued: list[IssuedCertificate], console: Console) -> None:
    """Revoke one of the demo certificates, publish the CRLs, and show what a relying party sees."""
    good, revoked = issued[0], issued[-1]
    result = rt.revocation().revoke(
        revoked.issuer, revoked.serial_hex, "keyCompromise", actor=os_actor("revocation-officer")
    )
    console.print(
        f"revoked {revoked.profile} {result.issuer}:{result.serial} (keyCompromise) "
        f"at {result.effective_at.isoformat()}",
        markup=False,
    )
    published = rt.crl().publish_all(os_actor(), force=False)
    for crl in published:
        console.print(
            f"published CRL #{crl.number} of CA {crl.issuer}: {crl.entries} entries, next update "
            f"{crl.next_update.isoformat()}",
            markup=False,
        )
    rt.ocsp_presigner().refresh_due()  # what the scheduler's ocsp-presign job does every minute
    table = Table(title="OCSP answers (delegated responder, as served at /ocsp)")
    for col in ("certificate", "status", "revoked at / reason", "this update", "next update", "answer"):
        table.add_column(col, overflow="fold")
    issuers = rt.issuance(pkilint=False).issuers
    for cert in (good, revoked):
        issuer_cert = issuers[cert.issuer].view.certificate
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(cert.certificate, issuer_cert, hashes.SHA256())
            .build()
            .public_bytes(serialization.Encoding.DER)
        )
        answer = rt.ocsp_responder().respond(request)
        response = ocsp.load_der_ocsp_response(answer.der)
        single = next(iter(response.responses))
        reason = single.revocation_reason.name if single.revocation_reason else "-"
        detail = f"{single.revocation_time_utc.isoformat()} / {reason}" if single.revocation_time_utc else "-"
        table.add_row(
            f"{cert.profile} {cert.serial_hex}",
            single.certificate_status.name.lower(),
            detail,
            single.this_update_utc.isoformat(),
            single.next_update_utc.isoformat() if single.next_update_utc else "-",
            answer.outcome,
        )
    console.print(table)


def run_demo(config: Config, out: Path, console: Console) -> None:
    from qtsp.cli import export_all

    table = Table(title="qtsp demo: one certificate per profile")
    for col in ("profile", "subject", "serial", "lint verdict"):
        table.add_column(col, overflow="fold")
    notices: set[str] = set()
    issued_all: list[IssuedCertificate] = []
    with runtime(config) as rt:
        service = rt.issuance()
        for profile_name in sorted(rt.profiles):
            subject = SubjectInput.from_json_obj(DEMO_SUBJECTS[profile_name])
            issued = service.issue(
                profile_name=profile_name,
                csr=fresh_csr(),
                subject=subject,
                actor=os_actor(),
                evidence_ref="demo",
            )
            subject_text = issued.certificate.subject.rfc4514_string(READABLE_NAMES)
            table.add_row(profile_name, subject_text, issued.serial_hex, issued.lint_verdict)
            notices.update(f.code for f in issued.findings if f.severity >= Severity.NOTICE)
            issued_all.append(issued)
    console.print(table)
    if notices:
        console.print(
            f"notices: {', '.join(sorted(notices))} — the base URL {config.ca.base_url} is a loopback development URL; "
            "pkilint's internal-host finding is downgraded for it only (README, 'Development base URLs').",
            markup=False,
        )
    n = export_all(config, out)
    console.print(f"exported {n} certificates (PEM) to {out}")
    with runtime(config) as rt:
        run_status_demo(rt, issued_all, console)
    from qtsp.ra_demo import run_ra_demo

    run_ra_demo(config, console)
    if config.keys.backend == "soft":
        console.print("[yellow]Software keys: development and demonstration only, not qualified.[/yellow]")
