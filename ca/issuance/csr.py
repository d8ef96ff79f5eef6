"""Strict parsing of certificate signing requests (PKCS#10, RFC 2986).

The CSR contributes only its public key: the subject, extensions and attributes it asks for are
ignored, because the profile and the RA's verified subject decide them (STANDARDS.md §5.1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from ca.issuance.errors import ErrorKind, IssuanceError

__all__ = ["MAX_CSR_BYTES", "ParsedCSR", "check_public_key", "parse_csr", "spki_der", "spki_sha256"]

MAX_CSR_BYTES: Final = 64 * 1024

# ETSI TS 119 312 (via EN 319 412-2 GEN-4.2.5-1) and pkilint's accepted SPKI list.
_ALLOWED_CURVES: Final = {
    "secp256r1": 256,
    "secp384r1": 384,
    "secp521r1": 521,
    "brainpoolP256r1": 256,
    "brainpoolP384r1": 384,
    "brainpoolP512r1": 512,
}
MIN_RSA_BITS: Final = 3072
MAX_RSA_BITS: Final = 8192


@dataclass(frozen=True, slots=True)
class ParsedCSR:
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    key_description: str


def spki_der(public_key: CertificatePublicKeyTypes) -> bytes:
    """The DER SubjectPublicKeyInfo of a public key."""
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def spki_sha256(public_key: CertificatePublicKeyTypes) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo (the key fingerprint of ceremony records, EN 319 411-1 GEN-6.5.1-13A)."""
    return hashlib.sha256(spki_der(public_key)).hexdigest()


def check_public_key(key: object) -> tuple[ec.EllipticCurvePublicKey | rsa.RSAPublicKey, str]:
    """Refuse keys outside the allow-list; return the key and a description such as ``EC secp256r1``."""
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.key_size
        e = key.public_numbers().e
        if bits < MIN_RSA_BITS or bits > MAX_RSA_BITS:
            raise IssuanceError(
                ErrorKind.BAD_PUBLIC_KEY,
                f"ETSI TS 119 312: RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits (got {bits})",
            )
        # pkilint ts_119_312 RsaKeyValidator: odd exponent with 2^16 < e < 2^256.
        if e % 2 == 0 or not (2**16 < e < 2**256):
            raise IssuanceError(ErrorKind.BAD_PUBLIC_KEY, f"ETSI TS 119 312: RSA public exponent {e} not allowed")
        return key, f"RSA {bits}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _ALLOWED_CURVES:
            raise IssuanceError(
                ErrorKind.BAD_PUBLIC_KEY,
                f"ETSI TS 119 312: curve {key.curve.name} not allowed (allowed: {', '.join(sorted(_ALLOWED_CURVES))})",
            )
        return key, f"EC {key.curve.name}"
    raise IssuanceError(
        ErrorKind.BAD_PUBLIC_KEY, f"ETSI TS 119 312: {type(key).__name__} keys are not allowed (RSA or EC only)"
    )


def parse_csr(data: bytes) -> ParsedCSR:
    """Parse a PEM or DER CSR, verify its proof of possession and check its key.

    :raises IssuanceError: ``bad_csr`` for anything malformed, ``bad_public_key`` for a refused key.
    """
    if len(data) > MAX_CSR_BYTES:
        raise IssuanceError(ErrorKind.BAD_CSR, f"CSR larger than {MAX_CSR_BYTES} bytes")
    stripped = data.strip()
    try:
        if stripped.startswith(b"-----BEGIN"):
            if stripped.count(b"-----BEGIN") != 1:
                raise IssuanceError(ErrorKind.BAD_CSR, "CSR: expected exactly one PEM block")
            csr = x509.load_pem_x509_csr(stripped)
        else:
            csr = x509.load_der_x509_csr(data)
    except IssuanceError:
        raise
    except (ValueError, x509.InvalidVersion) as exc:
        # RFC 2986 §4.1: version 0 (v1) is the only CSR version.
        raise IssuanceError(ErrorKind.BAD_CSR, f"CSR cannot be parsed: {exc}") from None
    try:
        key = csr.public_key()
    except (ValueError, x509.UnsupportedGeneralNameType) as exc:
        raise IssuanceError(ErrorKind.BAD_PUBLIC_KEY, f"CSR public key cannot be read: {exc}") from None
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for unknown key types
        raise IssuanceError(ErrorKind.BAD_PUBLIC_KEY, f"CSR public key not supported: {exc}") from None
    public_key, description = check_public_key(key)
    # Proof of possession: the CSR is signed by the private key of the key it carries (RFC 2986 §3).
    try:
        valid = csr.is_signature_valid
    except Exception as exc:  # an unsupported signature algorithm
        raise IssuanceError(ErrorKind.BAD_CSR, f"CSR signature cannot be checked: {exc}") from None
    if not valid:
        raise IssuanceError(ErrorKind.BAD_CSR, "CSR signature invalid: no proof of possession of the private key")
    return ParsedCSR(public_key=public_key, key_description=description)
