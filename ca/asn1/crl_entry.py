"""One CRL entry (RFC 5280 §5.1.2.6 ``revokedCertificates`` element), encoded once at revocation.

A CRL of a million entries is then the concatenation of stored encodings under a header that
cryptography builds, instead of a re-encoding of every entry at each publication (DESIGN.md
"Libraries before hand-written code": the one measured exception; the tests check every encoding
against cryptography's CRL parser).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from asn1crypto import core, crl, x509

from ca.asn1.errors import Asn1EncodeError

__all__ = [
    "CRL_REASONS",
    "assemble_signed",
    "assemble_signed_parts",
    "crl_entry_der",
    "generalized_time_der",
    "signature_algorithm_der",
    "splice_entries",
    "tbs_parts",
    "tbs_span",
]

#: RFC 5280 §5.3.1 CRLReason names usable in an entry.  ``removeFromCRL`` (delta CRLs only) is absent;
#: ``unspecified`` is encoded by leaving the extension out (RFC 5280 §5.3.1: SHOULD be absent).
CRL_REASONS: Final = frozenset(
    {
        "unspecified",
        "keyCompromise",
        "cACompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
        "certificateHold",
        "privilegeWithdrawn",
        "aACompromise",
    }
)

_ASN1_REASON: Final = {
    "keyCompromise": "key_compromise",
    "cACompromise": "ca_compromise",
    "affiliationChanged": "affiliation_changed",
    "superseded": "superseded",
    "cessationOfOperation": "cessation_of_operation",
    "certificateHold": "certificate_hold",
    "privilegeWithdrawn": "privilege_withdrawn",
    "aACompromise": "aa_compromise",
}


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise Asn1EncodeError("CRL entry times must be timezone-aware")
    return value.astimezone(dt.UTC).replace(microsecond=0)


def crl_entry_der(
    serial: int, revoked_at: dt.datetime, reason: str, invalidity_date: dt.datetime | None = None
) -> bytes:
    """DER of one ``revokedCertificates`` element.

    revocationDate is UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 §5.1.2.4);
    invalidityDate is always GeneralizedTime (RFC 5280 §5.3.2).
    """
    if reason not in CRL_REASONS:
        raise Asn1EncodeError(f"unknown CRL reason {reason!r}")
    if serial <= 0:
        raise Asn1EncodeError("serial numbers are positive (RFC 5280 §4.1.2.2)")
    extensions: list[dict[str, object]] = []
    if reason != "unspecified":
        extensions.append({"extn_id": "crl_reason", "critical": False, "extn_value": _ASN1_REASON[reason]})
    if invalidity_date is not None:
        extensions.append({"extn_id": "invalidity_date", "critical": False, "extn_value": _utc(invalidity_date)})
    entry: dict[str, object] = {
        "user_certificate": serial,
        "revocation_date": x509.Time(
            name="utc_time" if _utc(revoked_at).year < 2050 else "general_time", value=_utc(revoked_at)
        ),
    }
    if extensions:
        entry["crl_entry_extensions"] = extensions
    return bytes(crl.RevokedCertificate(entry).dump(force=True))


# ----------------------------------------------------------------------------------------------
# Splicing stored entries into a CRL built by cryptography


def _length_octets(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(data: bytes | memoryview, offset: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of element) of the DER element at ``offset``."""
    try:
        tag = data[offset]
        first = data[offset + 1]
    except IndexError:
        raise Asn1EncodeError("truncated DER element") from None
    if tag & 0x1F == 0x1F:
        raise Asn1EncodeError("multi-octet tags do not occur in a TBSCertList")
    if first < 0x80:
        return tag, offset + 2, offset + 2 + first
    count = first & 0x7F
    if count == 0 or count > 4:
        raise Asn1EncodeError("unsupported DER length")
    length = int.from_bytes(bytes(data[offset + 2 : offset + 2 + count]), "big")
    start = offset + 2 + count
    if start + length > len(data):
        raise Asn1EncodeError("truncated DER element")
    return tag, start, start + length


_TIME_TAGS: Final = (0x17, 0x18)  # UTCTime, GeneralizedTime


def splice_entries(tbs_certlist: bytes, entries: Sequence[bytes]) -> bytes:
    """Insert ``revokedCertificates`` (the stored entry encodings, in order) into a TBSCertList built
    without entries, after thisUpdate/nextUpdate (RFC 5280 §5.1).  An empty list changes nothing."""
    return b"".join(tbs_parts(tbs_certlist, entries))


def tbs_parts(tbs_certlist: bytes, entries: Sequence[bytes]) -> list[bytes | memoryview]:
    """The TBSCertList of :func:`splice_entries` as a list of parts that are never concatenated here.

    ``entries`` may also be chunks of several concatenated entry encodings.  A caller hashes the
    parts for the signature and joins them once, with the signature, in
    :func:`assemble_signed_parts`: a million-entry CRL (about 50 MB) then exists once as chunks and
    once as the final DER, never as a separate TBS copy.
    """
    entries_len = sum(len(e) for e in entries)
    if not entries_len:
        return [tbs_certlist]
    tag, start, end = _tlv(tbs_certlist, 0)
    if tag != 0x30 or end != len(tbs_certlist):
        raise Asn1EncodeError("not a DER TBSCertList")
    pos = start
    times_seen = 0
    insert_at = None
    while pos < end:
        etag, _, eend = _tlv(tbs_certlist, pos)
        if etag in _TIME_TAGS:
            times_seen += 1
            insert_at = eend
        elif etag == 0x30 and times_seen:
            raise Asn1EncodeError("the TBSCertList already holds revokedCertificates")
        pos = eend
    if insert_at is None:
        raise Asn1EncodeError("TBSCertList without thisUpdate")
    revoked_header = b"\x30" + _length_octets(entries_len)
    inner_len = (insert_at - start) + len(revoked_header) + entries_len + (end - insert_at)
    view = memoryview(tbs_certlist)
    return [
        b"\x30" + _length_octets(inner_len),
        view[start:insert_at],
        revoked_header,
        *entries,
        view[insert_at:end],
    ]


def tbs_span(crl_der: bytes) -> tuple[int, int]:
    """(start, end) of the ``tbsCertList`` element inside a DER CertificateList."""
    _, start, _ = _tlv(crl_der, 0)
    _, _, tbs_end = _tlv(crl_der, start)
    return start, tbs_end


def generalized_time_der(value: dt.datetime) -> bytes:
    """DER ``GeneralizedTime`` (whole seconds, Z), e.g. the value of ExpiredCertsOnCRL (X.509 §9.3.21:
    ``expiredCertsOnCRL EXTENSION ::= { SYNTAX ExpiredCertsOnCRL ... }``, ``ExpiredCertsOnCRL ::= GeneralizedTime``)."""
    return bytes(core.GeneralizedTime(_utc(value)).dump(force=True))


def signature_algorithm_der(crl_der: bytes) -> bytes:
    """The ``signatureAlgorithm`` element of a DER CRL or certificate (the second element of
    CertificateList and of Certificate, RFC 5280 §5.1 and §4.1)."""
    _, start, _ = _tlv(crl_der, 0)
    _, _, tbs_end = _tlv(crl_der, start)
    _, _, alg_end = _tlv(crl_der, tbs_end)
    return crl_der[tbs_end:alg_end]


def assemble_signed_parts(tbs_parts: Sequence[bytes | memoryview], algorithm_der: bytes, signature: bytes) -> bytes:
    """:func:`assemble_signed` over the parts of :func:`tbs_parts`, joined in one allocation."""
    bit_string = b"\x03" + _length_octets(len(signature) + 1) + b"\x00" + signature
    body_len = sum(len(p) for p in tbs_parts) + len(algorithm_der) + len(bit_string)
    return b"".join([b"\x30" + _length_octets(body_len), *tbs_parts, algorithm_der, bit_string])


def assemble_signed(tbs_certlist: bytes, algorithm_der: bytes, signature: bytes) -> bytes:
    """``CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }``;
    a Certificate has the same shape (``tbsCertificate`` in place of ``tbsCertList``)."""
    bit_string = b"\x03" + _length_octets(len(signature) + 1) + b"\x00" + signature
    body_len = len(tbs_certlist) + len(algorithm_der) + len(bit_string)
    return b"".join((b"\x30", _length_octets(body_len), tbs_certlist, algorithm_der, bit_string))
