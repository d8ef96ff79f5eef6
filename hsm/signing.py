"""Signatures with a CA key: the two schemes CA keys use here, ECDSA and RSA PKCS #1 v1.5.

One place for "sign ``data`` with this key and this hash" and its check, whatever the backend
(soft keys and PKCS#11 keys are both :data:`hsm.SigningKey`).  ``algorithm`` is a hash, or
``Prehashed(hash)`` when ``data`` is already the digest (a streamed CRL).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from hsm.api import SigningKey

__all__ = ["sign", "signature_valid"]


def sign(key: SigningKey, data: bytes, algorithm: hashes.HashAlgorithm | Prehashed) -> bytes:
    """``key``'s signature over ``data``: ECDSA for an EC key, PKCS #1 v1.5 for an RSA key."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(algorithm))
    return key.sign(data, padding.PKCS1v15(), algorithm)


def signature_valid(
    public_key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | Prehashed
) -> bool:
    """True when ``signature`` over ``data`` verifies with ``public_key`` (EC or RSA, as :func:`sign`
    makes them); False for a bad signature or any other kind of key."""
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            return False
    except InvalidSignature:
        return False
    return True
