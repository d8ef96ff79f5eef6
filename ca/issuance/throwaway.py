"""Throwaway keys for lint certificates (and lint CRLs): one per signature algorithm and process,
never stored.

The lint certificate must carry exactly the TBS the HSM signs afterwards, and the TBS names only
the signature *algorithm* (RFC 5280 §4.1.1.2: ``ecdsa-with-SHA256``, ``sha256WithRSAEncryption``,
...), never the key's size or curve.  So the throwaway key is the cheapest key that yields the
issuer's algorithm identifier: P-256 for every EC issuer and RSA-1024 for every RSA issuer (an
RSA-3072 signature costs about 1 ms here, an RSA-1024 one 0.1 ms).  Only the signature value,
which is discarded and which no lint rule reads, differs from one of a key of the issuer's size;
``tests/unit/test_throwaway.py`` proves the TBS and the lint findings are the same.
"""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hsm import KeyAlgorithm

__all__ = ["throwaway_key"]

THROWAWAY_RSA_BITS = 1024
"""The smallest RSA key cryptography generates; it signs with SHA-256, SHA-384 or SHA-512 (PKCS #1 v1.5)."""


@functools.cache
def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@functools.cache
def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=THROWAWAY_RSA_BITS)


def throwaway_key(algorithm: KeyAlgorithm) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """A key whose signatures carry the same algorithm identifier as ``algorithm``'s (with the
    hash the caller passes, e.g. :meth:`KeyAlgorithm.default_hash`)."""
    return _ec_key() if algorithm.is_ec else _rsa_key()
