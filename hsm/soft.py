"""A software keystore: encrypted PKCS#8 files in a directory.

This backend is for development, tests and demonstrations only.  EN 319 411-1 clause 6.5.1
(GEN-6.5.1-02) requires CA key pairs to be generated and kept in a secure cryptographic device, so
:meth:`SoftBackend.info` always reports ``qualified=False`` and callers issuing qualified
certificates must refuse this backend.

Each key is one file ``<directory>/<label>.p8`` holding the private key as PEM-encoded PKCS#8,
encrypted with cryptography's ``BestAvailableEncryption`` under the keystore passphrase.  Files are
created with mode 0600, written to a temporary file first and then linked into place atomically;
an existing key file is never replaced (:class:`~hsm.api.KeyExists`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path

import cryptography
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hsm.api import (
    HSMError,
    KeyAlgorithm,
    KeyExists,
    KeyNotFound,
    KeyRef,
    Secret,
    SigningKey,
    TokenInfo,
)
from hsm.keyid import algorithm_of, check_label, key_identifier

__all__ = ["KEY_FILE_SUFFIX", "SoftBackend"]

KEY_FILE_SUFFIX = ".p8"
"""File name suffix of a key file (PKCS#8)."""

_PUBLIC_EXPONENT = 65537


def _generate_key(algorithm: KeyAlgorithm) -> SigningKey:
    """Generate a private key of ``algorithm`` with cryptography."""
    if algorithm.is_ec:
        return ec.generate_private_key(algorithm.curve)
    return rsa.generate_private_key(public_exponent=_PUBLIC_EXPONENT, key_size=algorithm.rsa_bits)


class SoftBackend:
    """A :class:`~hsm.api.KeyBackend` keeping encrypted PKCS#8 key files in a directory.

    :param directory: the keystore directory; created with mode 0700 when the first key is written.
    :param passphrase: the passphrase that encrypts every key file (non-empty bytes).  It is kept
        in memory only and never appears in ``repr()`` or error messages.
    :raises ValueError: if the passphrase is empty or not bytes.
    """

    name = "soft"

    def __init__(self, directory: Path, passphrase: bytes) -> None:
        if not isinstance(passphrase, bytes) or not passphrase:
            raise ValueError("the soft keystore passphrase must be non-empty bytes")
        self._directory = Path(directory)
        self._passphrase = Secret(passphrase)
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[SigningKey, str]] = {}

    def __repr__(self) -> str:
        return f"SoftBackend(directory={str(self._directory)!r})"

    @property
    def directory(self) -> Path:
        """The keystore directory."""
        return self._directory

    # --- KeyBackend -----------------------------------------------------------------------------

    def info(self) -> TokenInfo:
        """Describe the keystore; ``qualified`` is always False (not a secure cryptographic device)."""
        return TokenInfo(
            backend=self.name,
            token_id=str(self._directory),
            model="software keystore (not qualified)",
            manufacturer=f"pyca/cryptography {cryptography.__version__}",
            qualified=False,
        )

    def generate(self, label: str, algorithm: KeyAlgorithm) -> KeyRef:
        """Generate a key pair and store it encrypted as ``<directory>/<label>.p8``.

        :raises ValueError: if the label is not a safe file name.
        :raises KeyExists: if a key file with this label exists (it is never overwritten).
        :raises HSMError: if the file cannot be written.
        """
        check_label(label)
        path = self._path(label)
        if path.exists():
            raise KeyExists(f"soft keystore {self._directory} already holds a key labelled {label!r}")
        key = _generate_key(algorithm)
        pem = key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.BestAvailableEncryption(self._passphrase.reveal()),
        )
        self._write_new(label, path, pem)
        key_id = key_identifier(key.public_key())
        with self._lock:
            self._cache[label] = (key, key_id)
        return KeyRef(
            backend=self.name,
            label=label,
            key_id=key_id,
            algorithm=algorithm,
            token=str(self._directory),
        )

    def signing_key(self, ref: KeyRef) -> SigningKey:
        """Return the private key of ``ref``, decrypted once and then cached.

        :raises KeyNotFound: if no file has this label or the file holds another key than ``ref.key_id``.
        :raises HSMError: if the file cannot be decrypted (wrong passphrase, damaged file) or the key
            does not have the algorithm ``ref`` names.
        """
        self._check_ref(ref)
        key, key_id = self._load(ref.label)
        if key_id != ref.key_id.lower():
            raise KeyNotFound(f"soft key {ref.label!r} in {self._directory} has key id {key_id}, not {ref.key_id}")
        try:
            actual = algorithm_of(key.public_key())
        except ValueError as exc:
            raise HSMError(f"soft key {ref.label!r} in {self._directory}: {exc}") from None
        if actual is not ref.algorithm:
            raise HSMError(f"soft key {ref.label!r} in {self._directory} is {actual.value}, not {ref.algorithm.value}")
        return key

    def has_key(self, ref: KeyRef) -> bool:
        """Whether a key file with ``ref.label`` exists and holds the key ``ref.key_id``.

        :raises HSMError: if the file exists but cannot be decrypted.
        """
        self._check_ref(ref)
        if not self._path(ref.label).exists():
            return False
        _key, key_id = self._load(ref.label)
        return key_id == ref.key_id.lower()

    def close(self) -> None:
        """Forget the decrypted keys held in memory."""
        with self._lock:
            self._cache.clear()

    # --- internals ------------------------------------------------------------------------------

    def _path(self, label: str) -> Path:
        return self._directory / f"{check_label(label)}{KEY_FILE_SUFFIX}"

    def _check_ref(self, ref: KeyRef) -> None:
        if ref.backend != self.name:
            raise KeyNotFound(f"key {ref.label!r} belongs to backend {ref.backend!r}, not {self.name!r}")
        try:
            check_label(ref.label)
        except ValueError as exc:
            raise KeyNotFound(str(exc)) from None

    def _load(self, label: str) -> tuple[SigningKey, str]:
        """Decrypt the key file of ``label`` (once) and return the key and its identifier."""
        with self._lock:
            cached = self._cache.get(label)
            if cached is not None:
                return cached
            path = self._path(label)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise KeyNotFound(f"no key labelled {label!r} in soft keystore {self._directory}") from None
            except OSError as exc:
                raise HSMError(f"cannot read soft key file {path}: {exc.strerror}") from None
            try:
                key = serialization.load_pem_private_key(data, password=self._passphrase.reveal())
            except (ValueError, TypeError, UnsupportedAlgorithm):
                # cryptography's message ("Bad decrypt. Incorrect password?") and traceback say
                # little to an operator; the chained exception is suppressed on purpose.
                raise HSMError(
                    f"cannot decrypt soft key file {path}: wrong keystore passphrase or damaged file"
                ) from None
            if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
                raise HSMError(f"soft key file {path} holds a {type(key).__name__}, not an EC or RSA key")
            entry: tuple[SigningKey, str] = (key, key_identifier(key.public_key()))
            self._cache[label] = entry
            return entry

    def _write_new(self, label: str, path: Path, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically, mode 0600, refusing to replace an existing file.

        The data goes to a temporary file in the same directory, is flushed to disk, and is then
        hard-linked to the final name: ``link`` fails if the name exists, so two processes
        generating the same label cannot overwrite each other's key (a check followed by
        ``os.replace`` could).  File systems without hard links fall back to ``os.replace``
        after a fresh existence check.
        """
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{label}.", suffix=".tmp", dir=self._directory)
        except OSError as exc:
            raise HSMError(f"cannot create a key file in {self._directory}: {exc.strerror}") from None
        tmp = Path(tmp_name)
        try:
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise KeyExists(f"soft keystore {self._directory} already holds a key labelled {label!r}") from None
            except OSError:
                if path.exists():
                    raise KeyExists(f"soft keystore {self._directory} already holds a key labelled {label!r}") from None
                os.replace(tmp, path)
            self._fsync_directory()
        except OSError as exc:
            raise HSMError(f"cannot write soft key file {path}: {exc.strerror}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _fsync_directory(self) -> None:
        """Flush the directory entry so that a crash cannot lose a key that was reported as generated."""
        dir_fd = os.open(self._directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
