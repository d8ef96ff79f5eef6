"""The contract between the CA core and wherever its keys live.

A :class:`KeyBackend` generates keys *inside* the backend and hands out :data:`SigningKey`
objects.  A signing key is an instance of cryptography's ``EllipticCurvePrivateKey`` or
``RSAPrivateKey`` (for PKCS#11, a subclass whose ``sign()`` calls the token), so
cryptography's certificate, CRL and OCSP builders sign through it unchanged.  Private
key material of a PKCS#11 key never leaves the token; ``private_bytes``/``private_numbers``
raise :class:`KeyNotExtractable`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import AnyStr, Generic, NoReturn, Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = [
    "HSMError",
    "HSMUnavailable",
    "KeyAlgorithm",
    "KeyBackend",
    "KeyExists",
    "KeyNotExtractable",
    "KeyNotFound",
    "KeyRef",
    "Secret",
    "SigningKey",
    "TokenInfo",
]

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
"""What a backend hands out: usable as ``private_key`` in cryptography's builders."""


class HSMError(Exception):
    """Base class of every error raised by a key backend."""


class HSMUnavailable(HSMError):
    """The backend cannot be reached or used right now (token absent, login failed, library error).

    Callers may retry later; OCSP answers ``tryLater`` on this error.
    """


class KeyNotFound(HSMError):
    """No key with the given reference exists in the backend."""


class KeyExists(HSMError):
    """A key with this label already exists; backends never overwrite keys."""


class KeyNotExtractable(HSMError):
    """Raised when code asks for the private key material of a non-extractable key."""


class KeyAlgorithm(enum.Enum):
    """Key algorithms the CA keys may use (ETSI TS 119 312; EN 319 411-1 GEN-6.5.1-06/-07)."""

    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"

    @property
    def is_ec(self) -> bool:
        return self in (KeyAlgorithm.EC_P256, KeyAlgorithm.EC_P384)

    @property
    def curve(self) -> ec.EllipticCurve:
        if self is KeyAlgorithm.EC_P256:
            return ec.SECP256R1()
        if self is KeyAlgorithm.EC_P384:
            return ec.SECP384R1()
        raise ValueError(f"{self.value} is not an elliptic-curve algorithm")

    @property
    def rsa_bits(self) -> int:
        if self is KeyAlgorithm.RSA_3072:
            return 3072
        if self is KeyAlgorithm.RSA_4096:
            return 4096
        raise ValueError(f"{self.value} is not an RSA algorithm")

    def default_hash(self) -> hashes.SHA256 | hashes.SHA384:
        """The signature hash paired with this key (TS 119 312: SHA-256 for P-256/RSA-3072, SHA-384 above)."""
        if self in (KeyAlgorithm.EC_P384, KeyAlgorithm.RSA_4096):
            return hashes.SHA384()
        return hashes.SHA256()


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A reference to a key held by a backend; never the key material itself.

    :ivar backend: ``"soft"`` or ``"pkcs11"``.
    :ivar label: the key's label (CKA_LABEL for PKCS#11, file stem for soft).
    :ivar key_id: hex of the key identifier (CKA_ID for PKCS#11).
    :ivar algorithm: the key algorithm.
    :ivar token: the backend's token identifier (PKCS#11 token label and serial; soft keystore path).
    """

    backend: str
    label: str
    key_id: str
    algorithm: KeyAlgorithm
    token: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a ceremony record and ``qtsp status`` say about the backend."""

    backend: str
    token_id: str
    model: str
    manufacturer: str
    qualified: bool
    """False for the software backend: it is for development and demonstration only."""


class Secret(Generic[AnyStr]):
    """Holds a PIN or passphrase: ``repr``/``str`` never show it, and it refuses to be pickled."""

    __slots__ = ("_value",)
    _value: AnyStr

    def __init__(self, value: AnyStr) -> None:
        self._value = value

    def reveal(self) -> AnyStr:
        return self._value

    def __repr__(self) -> str:
        return "<secret redacted>"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("secrets cannot be pickled")


@runtime_checkable
class KeyBackend(Protocol):
    """A place where CA keys are generated, kept and used."""

    name: str

    def info(self) -> TokenInfo:
        """Describe the token (raises :class:`HSMUnavailable` if it cannot be reached)."""
        ...

    def generate(self, label: str, algorithm: KeyAlgorithm) -> KeyRef:
        """Generate a new key pair inside the backend; raise :class:`KeyExists` if the label is taken."""
        ...

    def signing_key(self, ref: KeyRef) -> SigningKey:
        """Return a signing key usable with cryptography's builders; cached, never reloaded per signature."""
        ...

    def has_key(self, ref: KeyRef) -> bool:
        """Whether the key exists in the backend."""
        ...

    def close(self) -> None:
        """Release sessions, handles and cached keys."""
        ...
