"""OCSP requests (RFC 6960 §4.1.1) that cryptography's parser refuses: several requests per message.

``cryptography.x509.ocsp.load_der_ocsp_request`` accepts exactly one ``Request`` per message
(FIELD-NOTES); RFC 6960 allows a ``requestList`` of several.  This module parses any request with
asn1crypto (strict DER: trailing data is refused) and returns plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from asn1crypto import core, ocsp

from ca.asn1.errors import Asn1DecodeError

__all__ = ["HASH_NAMES", "CertIDValues", "OCSPRequestValues", "parse_ocsp_request"]

#: CertID hash algorithms we can match (RFC 6960 §4.1.1; RFC 9919 §2.1 recommends SHA-256, SHA-1 is common).
HASH_NAMES: Final = frozenset({"sha1", "sha256", "sha384", "sha512"})

_NONCE_OID: Final = "1.3.6.1.5.5.7.48.1.2"


@dataclass(frozen=True, slots=True)
class CertIDValues:
    """One ``CertID`` of a request, as plain values."""

    hash_algorithm: str
    """``sha1``, ``sha256``, ``sha384``, ``sha512``, or the dotted OID of any other algorithm."""
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    der: bytes
    """The CertID exactly as the client encoded it (echoed in the answer, RFC 6960 §4.2.1)."""


@dataclass(frozen=True, slots=True)
class OCSPRequestValues:
    cert_ids: tuple[CertIDValues, ...]
    nonce: bytes | None
    """The value of the nonce extension (RFC 6960 §4.4.1, RFC 8954), if the request has one."""


def parse_ocsp_request(der: bytes) -> OCSPRequestValues:
    """Parse a DER ``OCSPRequest`` with one or more requests.

    :raises Asn1DecodeError: when ``der`` is not a DER OCSPRequest with at least one request, or
        its nonce extension is not an OCTET STRING or appears twice.
    """
    try:
        request = ocsp.OCSPRequest.load(der, strict=True)
        tbs = request["tbs_request"]
        cert_ids: list[CertIDValues] = []
        for item in tbs["request_list"]:
            cert_id = item["req_cert"]
            original = cert_id.dump()
            # The CertID is echoed in the answer, so it must be DER that strict parsers accept:
            # parse every field, allow only absent or NULL hash parameters, and re-encode exactly.
            _ = cert_id.native
            if cert_id["hash_algorithm"]["parameters"].native is not None:
                raise Asn1DecodeError("CertID hashAlgorithm parameters must be absent or NULL")
            if cert_id.dump(force=True) != original:
                raise Asn1DecodeError("the CertID is not DER")
            algorithm = cert_id["hash_algorithm"]["algorithm"]
            name = algorithm.native if algorithm.native in HASH_NAMES else algorithm.dotted
            cert_ids.append(
                CertIDValues(
                    hash_algorithm=name,
                    issuer_name_hash=bytes(cert_id["issuer_name_hash"].native),
                    issuer_key_hash=bytes(cert_id["issuer_key_hash"].native),
                    serial=int(cert_id["serial_number"].native),
                    der=original,
                )
            )
        nonce: bytes | None = None
        seen = False
        extensions = tbs["request_extensions"]
        for extension in extensions if extensions.native is not None else ():
            if extension["extn_id"].dotted != _NONCE_OID:
                continue
            if seen:
                raise Asn1DecodeError("the nonce extension appears twice")
            seen = True
            # RFC 8954 §2.1: Nonce ::= OCTET STRING, inside extnValue.
            inner = core.OctetString.load(extension["extn_value"].contents, strict=True)
            nonce = bytes(inner.native)
    except Asn1DecodeError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise Asn1DecodeError(f"not a DER OCSPRequest: {exc}") from None
    if not cert_ids:
        raise Asn1DecodeError("the OCSPRequest has an empty requestList")
    return OCSPRequestValues(cert_ids=tuple(cert_ids), nonce=nonce)
