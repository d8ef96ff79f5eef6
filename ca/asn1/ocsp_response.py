"""DER encoding of OCSP responses (RFC 6960 §4.2.1), fast enough for live signing on every request.

Why not a library builder (DESIGN.md "Libraries before hand-written code"; the second measured
exception after :mod:`ca.asn1.crl_entry`):

* cryptography's ``OCSPResponseBuilder`` takes one SingleResponse only and cannot put extensions
  into ``singleExtensions``, where RFC 6960's ASN.1 module (Appendix B.2, ``SingleExtensions``)
  places archiveCutoff and where validators such as the EU DSS library read it.
* asn1crypto builds a BasicOCSPResponse from dicts in about 1.1 ms (measured here), too slow for
  the live-signing target of issue 3 (≥1,500 answers/s on two cores).

So the constant parts (OIDs, algorithm identifiers, responder id, certificates) are encoded once
with asn1crypto, and each response is a concatenation of short TLVs around them.  The tests parse
every shape this module produces with cryptography, asn1crypto (strict) and pkilint, and verify
the signatures with OpenSSL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from asn1crypto import algos, core, keys

from ca.asn1.errors import Asn1EncodeError

__all__ = [
    "CRL_REASON_CODES",
    "NEVER_ISSUED_TIME",
    "SingleResponseValues",
    "basic_response_der",
    "cert_id_der",
    "response_data_der",
    "signature_algorithm_der",
    "subject_public_key_bits",
    "unsuccessful_response_der",
]

#: RFC 5280 §5.3.1 CRLReason codes (ENUMERATED), used in RevokedInfo.revocationReason.
CRL_REASON_CODES: Final = {
    "unspecified": 0,
    "keyCompromise": 1,
    "cACompromise": 2,
    "affiliationChanged": 3,
    "superseded": 4,
    "cessationOfOperation": 5,
    "certificateHold": 6,
    "privilegeWithdrawn": 9,
    "aACompromise": 10,
}

#: RFC 6960 §2.2: revocationTime of the "revoked" answer for a serial that was never issued.
NEVER_ISSUED_TIME: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def _oid(dotted: str) -> bytes:
    return bytes(core.ObjectIdentifier(dotted).dump())


def _gtime(value: dt.datetime) -> bytes:
    """GeneralizedTime in UTC with whole seconds (RFC 5280 §4.1.2.5.2 form, as RFC 6960 uses it)."""
    if value.tzinfo is None:
        raise Asn1EncodeError("OCSP times must be timezone-aware")
    v = value.astimezone(dt.UTC)
    return _tlv(0x18, f"{v.year:04d}{v.month:02d}{v.day:02d}{v.hour:02d}{v.minute:02d}{v.second:02d}Z".encode("ascii"))


def _integer(value: int) -> bytes:
    length = (value.bit_length() + 8) // 8 if value >= 0 else ((-value - 1).bit_length() + 8) // 8
    return _tlv(0x02, value.to_bytes(max(length, 1), "big", signed=True))


_EXT_NONCE: Final = _oid("1.3.6.1.5.5.7.48.1.2")
_EXT_ARCHIVE_CUTOFF: Final = _oid("1.3.6.1.5.5.7.48.1.6")
_EXT_EXTENDED_REVOKE: Final = _oid("1.3.6.1.5.5.7.48.1.9")
_BASIC_RESPONSE_TYPE: Final = _oid("1.3.6.1.5.5.7.48.1.1")
_HASH_OIDS: Final = {
    "sha1": "1.3.14.3.2.26",
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
}
_HASH_ALGORITHMS: Final = {name: _tlv(0x30, _oid(dotted) + b"\x05\x00") for name, dotted in _HASH_OIDS.items()}
_HASH_ALGORITHMS_NO_PARAMS: Final = {name: _tlv(0x30, _oid(dotted)) for name, dotted in _HASH_OIDS.items()}


def _extension(oid_der: bytes, value_der: bytes) -> bytes:
    # Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE (omitted), extnValue OCTET STRING }
    return _tlv(0x30, oid_der + _tlv(0x04, value_der))


def cert_id_der(
    hash_algorithm: str, issuer_name_hash: bytes, issuer_key_hash: bytes, serial: int, *, null_params: bool = True
) -> bytes:
    """A CertID (RFC 6960 §4.1.1); the AlgorithmIdentifier carries NULL parameters unless asked not to."""
    table = _HASH_ALGORITHMS if null_params else _HASH_ALGORITHMS_NO_PARAMS
    try:
        algorithm = table[hash_algorithm]
    except KeyError:
        raise Asn1EncodeError(f"unsupported CertID hash algorithm {hash_algorithm!r}") from None
    return _tlv(0x30, algorithm + _tlv(0x04, issuer_name_hash) + _tlv(0x04, issuer_key_hash) + _integer(serial))


@dataclass(frozen=True, slots=True)
class SingleResponseValues:
    """One SingleResponse: the CertID as the request encoded it, and the status to state."""

    cert_id_der: bytes
    status: str
    """``good`` or ``revoked`` (``unknown`` is never answered: see :mod:`ca.crl_ocsp.ocsp`)."""
    this_update: dt.datetime
    next_update: dt.datetime
    revoked_at: dt.datetime | None = None
    reason: str | None = None
    """RFC 5280 CRLReason name; ``None`` or ``unspecified`` leaves revocationReason out (as in the CRL)."""
    archive_cutoff: dt.datetime | None = None


def _single_response(single: SingleResponseValues) -> bytes:
    if single.status == "good":
        status = b"\x80\x00"  # [0] IMPLICIT NULL
    elif single.status == "revoked":
        if single.revoked_at is None:
            raise Asn1EncodeError("a revoked SingleResponse needs revocationTime")
        revoked = _gtime(single.revoked_at)
        if single.reason is not None and single.reason != "unspecified":
            try:
                code = CRL_REASON_CODES[single.reason]
            except KeyError:
                raise Asn1EncodeError(f"unknown revocation reason {single.reason!r}") from None
            revoked += _tlv(0xA0, _tlv(0x0A, bytes((code,))))  # [0] EXPLICIT CRLReason
        status = _tlv(0xA1, revoked)  # [1] IMPLICIT RevokedInfo
    else:
        raise Asn1EncodeError(f"unsupported certStatus {single.status!r}")
    body = single.cert_id_der + status + _gtime(single.this_update) + _tlv(0xA0, _gtime(single.next_update))
    if single.archive_cutoff is not None:
        # RFC 6960 §4.4.4 / Appendix B.2 (SingleExtensions); EN 319 411-2 CSS-6.3.10-10.
        body += _tlv(0xA1, _tlv(0x30, _extension(_EXT_ARCHIVE_CUTOFF, _gtime(single.archive_cutoff))))
    return _tlv(0x30, body)


def response_data_der(
    *,
    responder_key_hash: bytes,
    produced_at: dt.datetime,
    responses: Sequence[SingleResponseValues],
    nonce: bytes | None = None,
    extended_revoke: bool = False,
) -> bytes:
    """``tbsResponseData`` (RFC 6960 §4.2.1): version v1 (default, omitted), responderID byKey.

    :param responder_key_hash: SHA-1 of the responder's subjectPublicKey BIT STRING value (RFC 6960 §4.2.1).
    :param nonce: echoed in responseExtensions (RFC 6960 §4.4.1; RFC 8954 §2.1).
    :param extended_revoke: add id-pkix-ocsp-extended-revoke (RFC 6960 §4.4.8), NULL, for answers
        "revoked" to serials that were never issued (RFC 6960 §2.2).
    """
    if len(responder_key_hash) != 20:
        raise Asn1EncodeError("the byKey responder id is a SHA-1 hash (20 octets)")
    if not responses:
        raise Asn1EncodeError("a response needs at least one SingleResponse")
    body = _tlv(0xA2, _tlv(0x04, responder_key_hash)) + _gtime(produced_at)
    body += _tlv(0x30, b"".join(_single_response(r) for r in responses))
    extensions = b""
    if nonce is not None:
        extensions += _extension(_EXT_NONCE, _tlv(0x04, nonce))
    if extended_revoke:
        extensions += _extension(_EXT_EXTENDED_REVOKE, b"\x05\x00")
    if extensions:
        body += _tlv(0xA1, _tlv(0x30, extensions))
    return _tlv(0x30, body)


def basic_response_der(
    response_data: bytes, signature_algorithm: bytes, signature: bytes, certificates: Sequence[bytes]
) -> bytes:
    """The complete ``OCSPResponse`` (status successful) around a signed BasicOCSPResponse."""
    basic = response_data + signature_algorithm + _tlv(0x03, b"\x00" + signature)
    if certificates:
        basic += _tlv(0xA0, _tlv(0x30, b"".join(certificates)))
    response_bytes = _tlv(0x30, _BASIC_RESPONSE_TYPE + _tlv(0x04, _tlv(0x30, basic)))
    return _tlv(0x30, b"\x0a\x01\x00" + _tlv(0xA0, response_bytes))


def unsuccessful_response_der(status: int) -> bytes:
    """An OCSPResponse without responseBytes (RFC 6960 §4.2.1: unsigned), e.g. 1 malformedRequest."""
    if status not in (1, 2, 3, 5, 6):
        raise Asn1EncodeError(f"{status} is not an unsuccessful OCSPResponseStatus")
    return bytes((0x30, 0x03, 0x0A, 0x01, status))


def signature_algorithm_der(key_type: str, hash_name: str) -> bytes:
    """AlgorithmIdentifier of the response signature: ``key_type`` ``ec`` (no parameters, RFC 5758 §3.2)
    or ``rsa`` (PKCS#1 v1.5, NULL parameters, RFC 4055)."""
    if key_type not in ("ec", "rsa") or hash_name not in ("sha256", "sha384", "sha512"):
        raise Asn1EncodeError(f"unsupported signature algorithm {hash_name} with {key_type}")
    name = f"{hash_name}_{'ecdsa' if key_type == 'ec' else 'rsa'}"
    return bytes(algos.SignedDigestAlgorithm({"algorithm": name}).dump())


def subject_public_key_bits(spki_der: bytes) -> bytes:
    """The subjectPublicKey BIT STRING value of a SubjectPublicKeyInfo (what OCSP key hashes cover)."""
    try:
        info = keys.PublicKeyInfo.load(spki_der, strict=True)
        contents = bytes(info["public_key"].contents)
    except (ValueError, TypeError) as exc:
        raise Asn1EncodeError(f"not a SubjectPublicKeyInfo: {exc}") from None
    if not contents or contents[0] != 0:
        raise Asn1EncodeError("the subjectPublicKey BIT STRING has unused bits")
    return contents[1:]
