"""Signing abstraction: a key-backend protocol, a software backend and a PKCS#11 backend.

Nothing in this package imports ``ca``, ``ra`` or ``qtsp`` (dependency direction
``qtsp -> ra -> ca -> hsm``).  Only :mod:`hsm.pkcs11` imports a PKCS#11 binding.
"""

from hsm.api import (
    HSMError,
    HSMUnavailable,
    KeyAlgorithm,
    KeyBackend,
    KeyNotFound,
    KeyRef,
    SigningKey,
    TokenInfo,
)

__all__ = [
    "HSMError",
    "HSMUnavailable",
    "KeyAlgorithm",
    "KeyBackend",
    "KeyNotFound",
    "KeyRef",
    "SigningKey",
    "TokenInfo",
]
