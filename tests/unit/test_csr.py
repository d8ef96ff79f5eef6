"""Strict CSR parsing: proof of possession, key allow-list, clear errors for malformed input."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from ca.issuance.csr import MAX_CSR_BYTES, parse_csr
from ca.issuance.errors import ErrorKind, IssuanceError


def _csr(key: object, encoding: serialization.Encoding = serialization.Encoding.DER) -> bytes:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, algorithm)  # type: ignore[arg-type]
    return csr.public_bytes(encoding)


@pytest.mark.parametrize(
    "curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1(), ec.BrainpoolP256R1()], ids=lambda c: c.name
)
def test_allowed_curves(curve: ec.EllipticCurve) -> None:
    parsed = parse_csr(_csr(ec.generate_private_key(curve)))
    assert parsed.key_description == f"EC {curve.name}"


def test_pem_and_rsa_3072() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    assert parse_csr(_csr(key, serialization.Encoding.PEM)).key_description == "RSA 3072"


@pytest.mark.parametrize(
    ("make_key", "kind", "text"),
    [
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), ErrorKind.BAD_PUBLIC_KEY, "3072"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), ErrorKind.BAD_PUBLIC_KEY, "secp256k1"),
        (ed25519.Ed25519PrivateKey.generate, ErrorKind.BAD_PUBLIC_KEY, "RSA or EC only"),
        (lambda: dsa.generate_private_key(key_size=2048), ErrorKind.BAD_PUBLIC_KEY, "RSA or EC only"),
    ],
    ids=["rsa2048", "secp256k1", "ed25519", "dsa"],
)
def test_refused_keys(make_key: object, kind: ErrorKind, text: str) -> None:
    with pytest.raises(IssuanceError) as info:
        parse_csr(_csr(make_key()))  # type: ignore[operator]
    assert info.value.kind is kind
    assert text in str(info.value)


def test_bad_proof_of_possession() -> None:
    der = bytearray(_csr(ec.generate_private_key(ec.SECP256R1())))
    der[-5] ^= 0x01  # flip a bit inside the signature
    with pytest.raises(IssuanceError) as info:
        parse_csr(bytes(der))
    assert info.value.kind in (ErrorKind.BAD_CSR,)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"\x30\x03\x02\x01\x01",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    ],
    ids=["empty", "garbage", "wrong-structure", "bad-pem"],
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(IssuanceError) as info:
        parse_csr(data)
    assert info.value.kind is ErrorKind.BAD_CSR
    assert "\n" not in str(info.value)


def test_trailing_data_refused() -> None:
    der = _csr(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(IssuanceError):
        parse_csr(der + b"\x00")


def test_two_pem_blocks_refused() -> None:
    pem = _csr(ec.generate_private_key(ec.SECP256R1()), serialization.Encoding.PEM)
    with pytest.raises(IssuanceError, match="exactly one PEM block"):
        parse_csr(pem + pem)


def test_oversized_refused_before_parsing() -> None:
    with pytest.raises(IssuanceError, match="larger than"):
        parse_csr(b"\x30" * (MAX_CSR_BYTES + 1))


def test_wrong_csr_version_is_a_clear_error() -> None:
    """Found by the fuzz test: cryptography raises InvalidVersion (not a ValueError) for version != 0."""
    der = _csr(ec.generate_private_key(ec.SECP256R1()))
    version_at = der.index(b"\x02\x01\x00")  # CertificationRequestInfo.version, the first INTEGER
    bad = der[:version_at] + b"\x02\x01\x01" + der[version_at + 3 :]
    with pytest.raises(IssuanceError) as info:
        parse_csr(bad)
    assert info.value.kind is ErrorKind.BAD_CSR
    assert "version" in str(info.value)
