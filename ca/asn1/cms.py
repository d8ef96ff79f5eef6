"""CMS SignedData (RFC 5652) of a signed request, and the signer certificate's path validation.

:func:`verify_signed_data` parses an attached SignedData with exactly one signer, checks its
signature (over the signed attributes when present: RFC 5652 §5.4, contentType id-data and a
messageDigest equal to the content's digest, §11.1/§11.2) with the signer certificate carried in
the structure, and returns the signed content and the signer certificate.  It says nothing about
*who* the signer is: :func:`validate_signer` builds and validates the certificate path with
pyhanko-certvalidator against the given trust roots, with revocation status fetched through the
callables it is given (our own OCSP responder for the end entity, the CA's stored CRLs for the
intermediate), ``require`` mode: no revocation information, no validity.

Only this package imports asn1crypto; pyhanko-certvalidator works on asn1crypto objects, so the
validation lives here too.  Public functions take and return bytes and plain values.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from asn1crypto import cms as a_cms
from asn1crypto import crl as a_crl
from asn1crypto import ocsp as a_ocsp
from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ca.asn1._specs import one_line
from ca.asn1.errors import Asn1DecodeError

__all__ = [
    "CMSVerifyError",
    "RevocationUnavailable",
    "SignedContent",
    "ocsp_request_for",
    "validate_signer",
    "verify_signed_data",
]

_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
MAX_CMS_BYTES: Final = 64 * 1024


class CMSVerifyError(ValueError):
    """The SignedData is well formed but does not verify, or its signer's path does not validate
    (one-line message naming the check that failed)."""


class RevocationUnavailable(CMSVerifyError):
    """No usable revocation status could be obtained for the signer (e.g. the responder answered
    tryLater): not a verdict on the signer, the caller may try again later."""


@dataclass(frozen=True, slots=True)
class SignedContent:
    content: bytes
    """The encapsulated content (id-data) the signature covers."""
    signer_certificate_der: bytes
    signer_issuer_der: bytes
    """The DER of the signer certificate's issuer Name."""
    signer_serial: int
    other_certificates_der: tuple[bytes, ...]


def _load(der: bytes) -> Any:
    if not isinstance(der, bytes | bytearray) or not der:
        raise Asn1DecodeError("CMS: expected DER bytes")
    if len(der) > MAX_CMS_BYTES:
        raise Asn1DecodeError(f"CMS: larger than {MAX_CMS_BYTES} bytes")
    try:
        info = a_cms.ContentInfo.load(bytes(der), strict=True)
        _ = info.native  # parse everything now, so that malformed inner parts fail here
    except (ValueError, TypeError, KeyError) as exc:
        raise Asn1DecodeError(f"CMS: not a DER ContentInfo: {one_line(exc)}") from exc
    if info["content_type"].native != "signed_data":
        raise Asn1DecodeError(f"CMS: content type {info['content_type'].native}, not signed data")
    return info["content"]


def verify_signed_data(der: bytes) -> SignedContent:
    """Parse and verify an attached CMS SignedData with one signer (identified by issuer and serial).

    :raises Asn1DecodeError: not a DER SignedData of that shape.
    :raises CMSVerifyError: the digest or the signature does not verify.
    """
    sd = _load(der)
    encap = sd["encap_content_info"]
    if encap["content_type"].native != "data":
        raise Asn1DecodeError("CMS: the encapsulated content is not id-data (RFC 5652 §4)")
    if encap["content"].native is None:
        raise Asn1DecodeError("CMS: detached signature: the request must be encapsulated")
    content = bytes(encap["content"].native)
    infos = list(sd["signer_infos"])
    if len(infos) != 1:
        raise Asn1DecodeError(f"CMS: {len(infos)} signers, exactly one expected")
    si = infos[0]
    sid = si["sid"]
    if sid.name != "issuer_and_serial_number":
        raise Asn1DecodeError("CMS: the signer must be identified by issuer and serial number")
    issuer_der = sid.chosen["issuer"].dump()
    serial = int(sid.chosen["serial_number"].native)
    certs: list[bytes] = []
    signer_der: bytes | None = None
    for choice in sd["certificates"] or ():
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        cert_der = cert.dump()
        certs.append(cert_der)
        if cert.issuer.dump() == issuer_der and cert.serial_number == serial:
            signer_der = cert_der
    if signer_der is None:
        raise Asn1DecodeError("CMS: the signer certificate is not included")
    digest_name = si["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        raise CMSVerifyError(f"CMS: digest algorithm {digest_name} is not accepted (SHA-2 only)")
    hash_cls = _HASHES[digest_name]
    signed_attrs = si["signed_attrs"]
    if signed_attrs.native is None:
        to_verify = content
    else:
        values: dict[str, list[Any]] = {}
        for attr in signed_attrs:
            values.setdefault(attr["type"].native, []).extend(attr["values"].native)
        if values.get("content_type") != ["data"]:
            raise CMSVerifyError("CMS: signed contentType attribute is not id-data (RFC 5652 §11.1)")
        digest = hashlib.new(digest_name, content).digest()
        if values.get("message_digest") != [digest]:
            raise CMSVerifyError("CMS: messageDigest does not match the content (RFC 5652 §11.2)")
        # RFC 5652 §5.4: the signature covers the DER of the attributes as a SET OF (tag 0x31).
        encoded = signed_attrs.dump()
        to_verify = b"\x31" + encoded[1:]
    signature = bytes(si["signature"].native)
    algo = si["signature_algorithm"].signature_algo
    public_key = x509.load_der_x509_certificate(signer_der).public_key()
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and algo == "ecdsa":
            public_key.verify(signature, to_verify, ec.ECDSA(hash_cls()))
        elif isinstance(public_key, rsa.RSAPublicKey) and algo == "rsassa_pkcs1v15":
            public_key.verify(signature, to_verify, padding.PKCS1v15(), hash_cls())
        else:
            raise CMSVerifyError(f"CMS: signature algorithm {algo} does not fit the signer's key")
    except InvalidSignature:
        raise CMSVerifyError("CMS: the signature does not verify with the signer certificate") from None
    return SignedContent(content, signer_der, issuer_der, serial, tuple(certs))


def ocsp_request_for(cert_der: bytes, issuer_der: bytes) -> bytes:
    """A one-certificate OCSPRequest (SHA-1 CertID, RFC 5019 §2.1.1), no nonce."""
    cert = a_x509.Certificate.load(cert_der)
    issuer = a_x509.Certificate.load(issuer_der)
    cert_id = a_ocsp.CertId(
        {
            "hash_algorithm": {"algorithm": "sha1"},
            "issuer_name_hash": hashlib.sha1(issuer.subject.dump()).digest(),  # noqa: S324 (RFC 5019 CertID)
            "issuer_key_hash": hashlib.sha1(issuer.public_key["public_key"].contents[1:]).digest(),  # noqa: S324
            "serial_number": cert.serial_number,
        }
    )
    request = a_ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}})
    der = request.dump()
    assert isinstance(der, bytes)
    return der


# -- path validation ----------------------------------------------------------------------------


def _fetchers(ocsp: Callable[[bytes], bytes], crls: Callable[[bytes], Sequence[bytes]]) -> Any:
    """pyhanko-certvalidator fetchers that answer from the CA itself: OCSP from the in-process
    responder, CRLs from the CA's store, no certificate fetching (the chain comes from the CA)."""
    from pyhanko_certvalidator.errors import OCSPFetchError
    from pyhanko_certvalidator.fetchers.api import CertificateFetcher, CRLFetcher, Fetchers, OCSPFetcher

    class _OCSP(OCSPFetcher):
        def __init__(self) -> None:
            self._done: dict[bytes, list[Any]] = {}

        async def fetch(self, cert: Any, authority: Any) -> Any:
            issuer = authority.certificate if hasattr(authority, "certificate") else None
            if issuer is None:
                raise OCSPFetchError("no issuer certificate to build the OCSP request")
            answer = a_ocsp.OCSPResponse.load(ocsp(ocsp_request_for(cert.dump(), issuer.dump())))
            if answer["response_status"].native != "successful":
                raise OCSPFetchError(f"OCSP responder answered {answer['response_status'].native}")
            self._done.setdefault(cert.issuer_serial, []).append(answer)
            return answer

        def fetched_responses(self) -> Iterable[Any]:
            return [r for rs in self._done.values() for r in rs]

        def fetched_responses_for_cert(self, cert: Any) -> Iterable[Any]:
            return self._done.get(cert.issuer_serial, [])

    class _CRL(CRLFetcher):
        def __init__(self) -> None:
            self._done: dict[bytes, list[Any]] = {}

        async def fetch(self, cert: Any, *, use_deltas: Any = None) -> Iterable[Any]:
            found = [a_crl.CertificateList.load(d) for d in crls(cert.issuer.dump())]
            self._done[cert.issuer_serial] = found
            return found

        def fetched_crls(self) -> Iterable[Any]:
            return [c for cs in self._done.values() for c in cs]

        def fetched_crls_for_cert(self, cert: Any) -> Iterable[Any]:
            return self._done[cert.issuer_serial]

    class _Certs(CertificateFetcher):
        async def _none(self) -> AsyncGenerator[Any, None]:
            for _ in ():
                yield _

        def fetch_cert_issuers(self, cert: Any) -> AsyncGenerator[Any, None]:
            return self._none()

        def fetch_crl_issuers(self, certificate_list: Any) -> AsyncGenerator[Any, None]:
            return self._none()

        def fetched_certs(self) -> Iterable[Any]:
            return ()

    return Fetchers(ocsp_fetcher=_OCSP(), crl_fetcher=_CRL(), cert_fetcher=_Certs())


def validate_signer(
    cert_der: bytes,
    *,
    trust_roots: Sequence[bytes],
    intermediates: Sequence[bytes],
    ocsp: Callable[[bytes], bytes],
    crls: Callable[[bytes], Sequence[bytes]],
    key_usage: frozenset[str] = frozenset({"non_repudiation"}),
) -> None:
    """Validate ``cert_der``'s path to one of ``trust_roots`` now, with revocation status
    required: OCSP (through ``ocsp``: request DER -> response DER) for the end-entity certificate,
    CRL or OCSP for the CA certificates (``crls``: issuer Name DER -> CRL DERs); and its key usage.

    :raises CMSVerifyError: naming why the certificate is not valid (revoked, on hold, expired,
        unknown issuer, wrong key usage, no revocation information).
    """
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import (
        InsufficientRevinfoError,
        PathBuildingError,
        PathValidationError,
        RevokedError,
    )
    from pyhanko_certvalidator.policy_decl import (
        CertRevTrustPolicy,
        RevocationCheckingPolicy,
        RevocationCheckingRule,
    )

    policy = CertRevTrustPolicy(
        RevocationCheckingPolicy(
            ee_certificate_rule=RevocationCheckingRule.OCSP_REQUIRED,
            intermediate_ca_cert_rule=RevocationCheckingRule.CRL_OR_OCSP_REQUIRED,
        )
    )
    context = ValidationContext(
        trust_roots=[a_x509.Certificate.load(d) for d in trust_roots],
        other_certs=[a_x509.Certificate.load(d) for d in intermediates],
        allow_fetching=True,
        revinfo_policy=policy,
        fetchers=_fetchers(ocsp, crls),
    )
    validator = CertificateValidator(a_x509.Certificate.load(cert_der), validation_context=context)
    try:
        asyncio.run(validator.async_validate_usage(set(key_usage)))  # type: ignore[no-untyped-call]
    except RevokedError as exc:
        raise CMSVerifyError(f"signer certificate: {one_line(exc)}") from None
    except InsufficientRevinfoError as exc:
        raise RevocationUnavailable(f"signer certificate: no revocation status now: {one_line(exc)}") from None
    except (PathBuildingError, PathValidationError) as exc:
        raise CMSVerifyError(f"signer certificate path: {one_line(exc)}") from None
    except (ValueError, TypeError) as exc:
        raise CMSVerifyError(f"signer certificate: {one_line(exc)}") from None
