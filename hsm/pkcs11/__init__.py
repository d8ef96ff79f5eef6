"""PKCS#11 key backend.  This package is the only place in the project that imports a PKCS#11 binding.

The binding is python-pkcs11 (see ``docs/pkcs11-binding.md`` for the measurements and the reasons).
"""

from __future__ import annotations

from hsm.pkcs11.backend import KeyAttributes, Pkcs11Backend
from hsm.pkcs11.keys import Pkcs11EllipticCurvePrivateKey, Pkcs11RSAPrivateKey

__all__ = [
    "KeyAttributes",
    "Pkcs11Backend",
    "Pkcs11EllipticCurvePrivateKey",
    "Pkcs11RSAPrivateKey",
]
