"""Throwaway keys for lint certificates: one per algorithm and process, never stored.

The lint certificate is signed with a key of the issuer's algorithm, so its TBS (which names
the signature algorithm) is byte-identical to the one the HSM signs afterwards.
"""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hsm import KeyAlgorithm

__all__ = ["throwaway_key"]


@functools.cache
def throwaway_key(algorithm: KeyAlgorithm) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if algorithm.is_ec:
        return ec.generate_private_key(algorithm.curve)
    return rsa.generate_private_key(public_exponent=65537, key_size=algorithm.rsa_bits)
