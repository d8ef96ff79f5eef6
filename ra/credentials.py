"""Passwords (Argon2), TOTP second factors (pyotp) and encryption at rest (AES-256-GCM).

The data key encrypts identity-document copies and TOTP secrets at rest.  It is 32 random bytes
read from a secret file (``QTSP_EVIDENCE_KEY_FILE``, default ``<home>/secrets/evidence.key``,
mode 0600), never from the configuration file; see README "Registration authority".  The key
backend cannot hold it: both backends keep signing keys only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from typing import Final

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ra.errors import RAError, RAErrorKind

__all__ = [
    "CROCKFORD_ALPHABET",
    "LETTER_ALPHABET",
    "MIN_PASSWORD_LENGTH",
    "DataKey",
    "hash_password",
    "new_letter_secret",
    "new_totp_secret",
    "sha256_text",
    "totp_step",
    "verify_password",
]

MIN_PASSWORD_LENGTH: Final = 12
_HASHER: Final = PasswordHasher()
_NONCE: Final = 12


def sha256_text(text: str) -> str:
    """SHA-256 of ``text`` (UTF-8), hex: how a high-entropy token, a nonce or an identifier such as
    an email address is stored or looked up without keeping the value itself."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RAError(RAErrorKind.MALFORMED, f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


#: Passwords printed in letters: no 0/O and 1/I/L, which are read alike on paper (31 symbols).
LETTER_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
#: Crockford's base32: digits and capitals without I, L, O, U; typed codes read O as 0 and I, L as 1.
CROCKFORD_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_letter_secret(groups: int = 4, size: int = 4, alphabet: str = LETTER_ALPHABET) -> str:
    """A secret to be printed or shown for typing: ``groups`` x ``size`` characters of ``alphabet``
    from a CSPRNG, joined by hyphens (4 x 4 of :data:`LETTER_ALPHABET`: about 79 bits)."""
    return "-".join("".join(secrets.choice(alphabet) for _ in range(size)) for _ in range(groups))


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_step(secret: str, code: str, at: dt.datetime) -> int | None:
    """The time step ``code`` is valid for (RFC 6238, 30 s, one step of drift), or None.

    The caller refuses a step not greater than the last one accepted (no replay).
    """
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    for drift in (0, -1, 1):
        t = at + dt.timedelta(seconds=30 * drift)
        if secrets.compare_digest(totp.at(t), code):
            return int(totp.timecode(t))
    return None


@dataclass(frozen=True)
class DataKey:
    """AES-256-GCM with a 96-bit random nonce per message; ``key_id`` names the key in each record."""

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise ValueError("the data key must be 32 bytes")

    def __repr__(self) -> str:
        return f"DataKey(key_id={self.key_id})"

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"qtsp-ra-data-key" + self.key).hexdigest()[:16]

    def derive(self, label: bytes) -> bytes:
        """A 32-byte key for one purpose (HMAC-SHA256 of ``label`` under the data key), so keyed
        digests of short secrets never use the data key itself."""
        return hmac.new(self.key, label, hashlib.sha256).digest()

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(self.key).encrypt(nonce, plaintext, aad)

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return AESGCM(self.key).decrypt(blob[:_NONCE], blob[_NONCE:], aad)
        except InvalidTag:
            raise RAError(RAErrorKind.CONFLICT, "stored ciphertext does not authenticate with the data key") from None

    @classmethod
    def from_file(cls, path: os.PathLike[str] | str, *, create: bool) -> DataKey:
        """Read the key (64 hex digits) from ``path``; create it (0600) when absent and ``create``."""
        from pathlib import Path

        p = Path(path)
        if not p.exists() and create:
            p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
        try:
            text = p.read_text(encoding="ascii").strip()
            return cls(bytes.fromhex(text))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise RAError(RAErrorKind.MALFORMED, f"data key file {p}: unusable ({type(exc).__name__})") from None
