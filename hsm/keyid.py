"""Key identifiers and key labels shared by every backend.

A key's identifier is the hexadecimal SHA-1 digest of the ``subjectPublicKey`` BIT STRING of its
public key (RFC 5280 section 4.2.1.2, method 1).  It is therefore equal to the Subject Key
Identifier that cryptography computes for a certificate on that key, and for PKCS#11 it is the
value stored in ``CKA_ID`` on both the private and the public key object.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hsm.api import KeyAlgorithm

__all__ = ["LABEL_PATTERN", "algorithm_of", "check_label", "key_identifier"]

LABEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Allowed key labels: a safe file name that does not start with a dot (hidden and temporary files)."""


def key_identifier(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str:
    """Return the hexadecimal key identifier of ``public_key``.

    :param public_key: an EC or RSA public key.
    :returns: 40 lower-case hexadecimal digits (SHA-1 of the subjectPublicKey BIT STRING).
    """
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest.hex()


def check_label(label: str) -> str:
    """Validate a key label and return it unchanged.

    The software backend uses the label as a file name, so the same rule is applied to every
    backend: keys can then move between backends (for example from a test token to the
    software keystore of a demonstration set-up) under the same name.

    :raises ValueError: if the label is empty, too long or contains other characters than
        ``A-Z a-z 0-9 . _ -`` (or starts with a dot, dash or underscore).
    """
    if not isinstance(label, str) or LABEL_PATTERN.fullmatch(label) is None:
        raise ValueError(
            f"invalid key label {label!r}: use 1-64 characters A-Z a-z 0-9 . _ - starting with a letter or digit"
        )
    return label


def algorithm_of(public_key: object) -> KeyAlgorithm:
    """Return the :class:`KeyAlgorithm` of a public key.

    :raises ValueError: for a key type, curve or size outside :class:`KeyAlgorithm`.
    """
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return KeyAlgorithm.EC_P256
        if isinstance(public_key.curve, ec.SECP384R1):
            return KeyAlgorithm.EC_P384
        raise ValueError(f"unsupported curve {public_key.curve.name}")
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size == 3072:
            return KeyAlgorithm.RSA_3072
        if public_key.key_size == 4096:
            return KeyAlgorithm.RSA_4096
        raise ValueError(f"unsupported RSA key size {public_key.key_size}")
    raise ValueError(f"unsupported key type {type(public_key).__name__}")
