"""Signing abstraction: a key-backend protocol, a software backend and a PKCS#11 backend.

Nothing in this package imports ``ca``, ``ra`` or ``qtsp`` (dependency direction
``qtsp -> ra -> ca -> hsm``).  Only :mod:`hsm.pkcs11` imports a PKCS#11 binding, and importing
:mod:`hsm` does not import it: :class:`Pkcs11Backend` is loaded on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hsm.api import (
    HSMError,
    HSMUnavailable,
    KeyAlgorithm,
    KeyBackend,
    KeyExists,
    KeyNotExtractable,
    KeyNotFound,
    KeyRef,
    SigningKey,
    TokenInfo,
)
from hsm.keyid import key_identifier
from hsm.soft import SoftBackend

if TYPE_CHECKING:
    from hsm.pkcs11 import Pkcs11Backend

__all__ = [
    "HSMError",
    "HSMUnavailable",
    "KeyAlgorithm",
    "KeyBackend",
    "KeyExists",
    "KeyNotExtractable",
    "KeyNotFound",
    "KeyRef",
    "Pkcs11Backend",
    "SigningKey",
    "SoftBackend",
    "TokenInfo",
    "key_identifier",
]


def __getattr__(name: str) -> Any:
    # Lazy import: the PKCS#11 binding is loaded only by code that asks for the PKCS#11 backend.
    if name == "Pkcs11Backend":
        from hsm.pkcs11 import Pkcs11Backend

        return Pkcs11Backend
    raise AttributeError(f"module 'hsm' has no attribute {name!r}")
