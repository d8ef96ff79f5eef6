"""Requests signed by a certificate this CA issued (e.g. a follow-up order signed with the holder's
current qualified signature card): verify the CMS SignedData and validate the signer's path to our
root with revocation status from *our own* status services, in process.

The end-entity status comes from the OCSP responder (``ocsp``: request DER -> response DER, e.g.
:meth:`ca.crl_ocsp.ocsp.OCSPResponder.respond`), so a certificate revoked or on hold a moment ago
fails at once (EN 319 411-1 REG-6.3.6-02 / REG-6.3.7-03: a certificate that authenticates a request
must exist and be valid).  The issuing CA's own status comes from the root's newest stored CRL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509

from ca.asn1.cms import CMSVerifyError, RevocationUnavailable, validate_signer, verify_signed_data
from ca.asn1.errors import Asn1DecodeError
from ca.issuance.serial import serial_hex
from ca.store import crl_repo
from ca.store import repository as repo
from ca.store.db import Database

__all__ = ["SignedRequestError", "SignedRequestUnavailable", "SignedRequestVerifier", "VerifiedRequest"]


class SignedRequestError(ValueError):
    """The signed request is malformed, does not verify, or its signer is not valid (one line)."""


class SignedRequestUnavailable(SignedRequestError):
    """The signer's revocation status cannot be obtained now: try again later (one line)."""


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    content: bytes
    """The signed content, byte for byte."""
    issuer: str
    """The name of our CA that issued the signer certificate."""
    serial_hex: str
    certificate_der: bytes


class SignedRequestVerifier:
    def __init__(self, db: Database, ocsp: Callable[[bytes], bytes]) -> None:
        self.db = db
        self.ocsp = ocsp

    def verify(self, cms_der: bytes) -> VerifiedRequest:
        """:raises SignedRequestError: naming the failed check."""
        try:
            signed = verify_signed_data(cms_der)
        except (Asn1DecodeError, CMSVerifyError) as exc:
            raise SignedRequestError(str(exc)) from None
        with self.db.read() as s:
            cas = repo.list_cas(s)
        by_subject = {x509.load_der_x509_certificate(ca.certificate_der).subject.public_bytes(): ca for ca in cas}
        issuer = by_subject.get(signed.signer_issuer_der)
        if issuer is None or issuer.role == "root":
            raise SignedRequestError("the signer certificate was not issued by one of our issuing CAs")

        def crls(issuer_name_der: bytes) -> Sequence[bytes]:
            ca = by_subject.get(issuer_name_der)
            if ca is None:
                return []
            with self.db.read() as s:
                meta = crl_repo.crl_meta(s, ca.name)
                return [] if meta is None else [crl_repo.crl_der(s, meta.id)]

        try:
            validate_signer(
                signed.signer_certificate_der,
                trust_roots=[ca.certificate_der for ca in cas if ca.role == "root"],
                intermediates=[ca.certificate_der for ca in cas if ca.role != "root"],
                ocsp=self.ocsp,
                crls=crls,
            )
        except RevocationUnavailable as exc:
            raise SignedRequestUnavailable(str(exc)) from None
        except CMSVerifyError as exc:
            raise SignedRequestError(str(exc)) from None
        return VerifiedRequest(
            content=signed.content,
            issuer=issuer.name,
            serial_hex=serial_hex(signed.signer_serial),
            certificate_der=signed.signer_certificate_der,
        )
