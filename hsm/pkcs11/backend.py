"""The PKCS#11 key backend (python-pkcs11).

Keys are generated inside the token (EN 319 411-1 clause 6.5.1, GEN-6.5.1-02) with
``CKA_TOKEN``, ``CKA_PRIVATE``, ``CKA_SENSITIVE`` and ``CKA_SIGN`` true and ``CKA_EXTRACTABLE``,
``CKA_DECRYPT``, ``CKA_UNWRAP`` and ``CKA_DERIVE`` false; the public key is stored next to it.
Both objects carry ``CKA_LABEL`` = the key label and ``CKA_ID`` = the key identifier (SHA-1 of the
public key BIT STRING, see :mod:`hsm.keyid`).

Concurrency (see :mod:`hsm.pkcs11._runtime`): every PKCS#11 call runs under one process-wide lock
(FIELD-NOTES #2).  A backend keeps a pool of up to ``pool_size`` sessions, opened without a PIN; a
thread borrows one session for one operation.  Login is per token and process (FIELD-NOTES #3), so
it belongs to the process, not to a backend: the backends of a process on one token share one
logged-in session (:class:`hsm.pkcs11._runtime.Login`), and closing a backend logs the token out
only if no other backend of the process still uses it.

Lock order: the inter-process start-up file lock (to connect and log in, and to generate a key),
then a pool slot, then the process-wide lock.  Nobody waits for the file lock or sleeps while
holding the process-wide lock, so waiting for another process that is logging in never stalls the
signatures of a backend that is connected already.

Recovery: when a call fails in a way that means the session, the login or the token is gone
(:data:`_LOST`), the backend finalises the module, finds the token again by label (slot ids may
change), logs in again, finds its keys again by label and CKA_ID, and repeats the operation once.
If that fails as well the caller gets :class:`~hsm.api.HSMUnavailable`.  Start-up and login are
serialised between processes with a file lock and retried with re-initialisation, because a
process enumerating tokens while another logs in can see ``NoSuchToken``/``CKR_GENERAL_ERROR``
(FIELD-NOTES #4).  A wrong PIN is never retried: each attempt would use up the token's PIN counter.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import filelock
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11

from hsm.api import (
    HSMError,
    HSMUnavailable,
    KeyAlgorithm,
    KeyExists,
    KeyNotFound,
    KeyRef,
    Secret,
    SigningKey,
    TokenInfo,
)
from hsm.keyid import algorithm_of, check_label, key_identifier
from hsm.pkcs11 import _runtime
from hsm.pkcs11.keys import Pkcs11EllipticCurvePrivateKey, Pkcs11RSAPrivateKey

__all__ = ["KeyAttributes", "Pkcs11Backend"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

_PUBLIC_EXPONENT = b"\x01\x00\x01"
"""65537, big-endian, as CKA_PUBLIC_EXPONENT."""

_CURVE_PARAMS: dict[KeyAlgorithm, bytes] = {
    # CKA_EC_PARAMS: DER of the named-curve OID (RFC 5480 ECParameters, namedCurve choice).
    KeyAlgorithm.EC_P256: bytes.fromhex("06082a8648ce3d030107"),  # 1.2.840.10045.3.1.7 (prime256v1)
    KeyAlgorithm.EC_P384: bytes.fromhex("06052b81040022"),  # 1.3.132.0.34 (secp384r1)
}

_LOST: tuple[type[p11.PKCS11Error], ...] = (
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.DeviceRemoved,
    p11.DeviceError,
    p11.DeviceMemory,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.UserNotLoggedIn,
    p11.ObjectHandleInvalid,
    p11.KeyHandleInvalid,
    p11.GeneralError,
    p11.FunctionFailed,
    p11.NoSuchToken,
    p11.SlotIDInvalid,
    p11.OperationActive,
)
"""Errors after which the session, the login or the token is presumed lost: recover and retry."""

_LOGIN_REFUSED: tuple[type[p11.PKCS11Error], ...] = (
    p11.PinIncorrect,
    p11.PinInvalid,
    p11.PinLenRange,
    p11.PinLocked,
    p11.PinExpired,
    p11.UserPinNotInitialized,
)
"""Login errors that are never retried (a retry would count against the PIN retry limit)."""

_PRIVATE_KEY_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
}
_PUBLIC_KEY_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: False,
    Attribute.VERIFY: True,
    Attribute.ENCRYPT: False,
    Attribute.WRAP: False,
}


def _describe(exc: BaseException) -> str:
    """``ExceptionName: message`` (python-pkcs11 exceptions often carry no message)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_lost(exc: p11.PKCS11Error) -> bool:
    # A bare PKCS11Error is what python-pkcs11 raises for CKR_CRYPTOKI_NOT_INITIALIZED and for a
    # module that cannot be loaded: both are worth one re-initialisation.
    return isinstance(exc, _LOST) or type(exc) is p11.PKCS11Error


def _first_objects(session: Any, template: dict[Any, Any], limit: int) -> list[Any]:
    """At most ``limit`` objects matching ``template``; the search always ends (C_FindObjectsFinal)
    before the session goes back to the pool."""
    found = session.get_objects(template)
    try:
        return [obj for _, obj in zip(range(limit), found, strict=False)]
    finally:
        found.close()


def _is_software_token(model: str, manufacturer: str) -> bool:
    """SoftHSM (v1/v2) identifies itself in the token's model and manufacturer fields."""
    return "softhsm" in model.lower() or "softhsm" in manufacturer.lower()


@dataclass(frozen=True, slots=True)
class KeyAttributes:
    """Security attributes of a private key as the token reports them.

    ``always_sensitive``, ``never_extractable`` and ``local`` show that the key was generated in
    the token and has never been exportable: evidence for a key ceremony record
    (EN 319 411-1 clause 6.5.1).
    """

    token: bool
    private: bool
    sensitive: bool
    extractable: bool
    always_sensitive: bool
    never_extractable: bool
    local: bool
    sign: bool
    decrypt: bool
    unwrap: bool
    derive: bool

    @property
    def protected(self) -> bool:
        """Whether the key is persistent, private, sensitive, never exportable and generated in the token."""
        return (
            self.token
            and self.private
            and self.sensitive
            and self.always_sensitive
            and not self.extractable
            and self.never_extractable
            and self.local
        )


class _Lease:
    """One session of the pool, with the private-key objects found through it."""

    __slots__ = ("conn", "keys", "session")

    def __init__(self, session: Any, conn: _Connection) -> None:
        self.session = session
        self.conn = conn
        self.keys: dict[tuple[str, bytes], Any] = {}


class _Connection:
    """The token as found in one generation of the module: its sessions and identity."""

    __slots__ = ("generation", "idle", "login", "manufacturer", "model", "serial", "token")

    def __init__(self, generation: int, token: Any) -> None:
        self.generation = generation
        self.token = token
        self.serial = bytes(token.serial).decode("ascii", "replace").strip()
        self.model = str(token.model).strip()
        self.manufacturer = str(token.manufacturer_id).strip()
        self.idle: list[_Lease] = []
        self.login: _runtime.Login | None = None
        """This connection's reference to the process's login to the token (released once)."""


class _SessionNotOpened(Exception):
    """Internal: no session could be opened, and the module was re-initialised to recover."""


class Pkcs11Backend:
    """A :class:`~hsm.api.KeyBackend` whose keys live in a PKCS#11 token.

    Nothing is loaded or opened until the first operation, so a service can start while the HSM is
    unreachable (its operations then raise :class:`~hsm.api.HSMUnavailable`).

    :param module_path: path of the PKCS#11 module (e.g. ``/usr/lib/softhsm/libsofthsm2.so``).
    :param token_label: CKA label of the token; the token is found by label, never by slot id.
    :param pin: the user PIN, read by the caller from its secret store.  It never appears in
        ``repr()``, log records or error messages.
    :param pool_size: the most sessions this backend keeps open for its operations.  The process
        keeps one more session per token, shared by its backends, to hold the login.
    :param lock_dir: directory for the inter-process start-up/login lock file (default: the
        system temporary directory).
    :param lock_timeout: seconds to wait for that lock before giving up with ``HSMUnavailable``.
    :param connect_attempts: attempts to find the token and log in, with re-initialisation between.
    :raises ValueError: for an empty label or PIN or a pool size below 1.
    """

    name = "pkcs11"

    def __init__(
        self,
        module_path: str,
        token_label: str,
        pin: str,
        pool_size: int = 4,
        *,
        lock_dir: Path | None = None,
        lock_timeout: float = 30.0,
        connect_attempts: int = 3,
    ) -> None:
        if not token_label:
            raise ValueError("the token label must not be empty")
        if not isinstance(pin, str) or not pin:
            raise ValueError("the token PIN must be a non-empty string")
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        if connect_attempts < 1:
            raise ValueError("connect_attempts must be at least 1")
        self._module_path = module_path
        self._token_label = token_label
        self._pin = Secret(pin)
        self._pool_size = pool_size
        self._connect_attempts = connect_attempts
        self._module = _runtime.module(module_path)
        self._lock_file = self._lock_path(lock_dir or Path(tempfile.gettempdir()))
        self._lock_timeout = lock_timeout
        self._file_lock = filelock.FileLock(str(self._lock_file), timeout=lock_timeout)
        self._pid = os.getpid()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._conn: _Connection | None = None
        self._keys: dict[tuple[str, str, KeyAlgorithm], SigningKey] = {}

    def __repr__(self) -> str:
        return (
            f"Pkcs11Backend(module_path={self._module_path!r}, token_label={self._token_label!r}, "
            f"pool_size={self._pool_size})"
        )

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Pkcs11Backend holds live sessions and a PIN and cannot be pickled")

    def __enter__(self) -> Pkcs11Backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def module_path(self) -> str:
        """Path of the PKCS#11 module."""
        return self._module_path

    @property
    def token_label(self) -> str:
        """Label of the token."""
        return self._token_label

    # --- KeyBackend -----------------------------------------------------------------------------

    def info(self) -> TokenInfo:
        """Describe the token, asking it afresh (raises :class:`HSMUnavailable` if unreachable)."""

        def op(lease: _Lease) -> TokenInfo:
            token = lease.conn.token.slot.get_token()
            serial = bytes(token.serial).decode("ascii", "replace").strip()
            model = str(token.model).strip()
            manufacturer = str(token.manufacturer_id).strip()
            return TokenInfo(
                backend=self.name,
                token_id=f"{self._token_label}/{serial}",
                model=model,
                manufacturer=manufacturer,
                # SoftHSM2 is a software token for tests: it is never reported as a qualified
                # (EN 319 411-1 OVR-6.5.2-01: EAL4+ / FIPS 140 level 3) key store.
                qualified=not _is_software_token(model, manufacturer),
            )

        return self._run("reading the token information", op)

    def generate(self, label: str, algorithm: KeyAlgorithm) -> KeyRef:
        """Generate a key pair inside the token.

        :raises ValueError: for a label that is not a safe name (see :func:`hsm.keyid.check_label`).
        :raises KeyExists: if a key object with this label exists on the token.
        :raises HSMUnavailable: if the token cannot be reached, or the connection was lost during
            generation (the token may then hold a key object with a ``pending-`` CKA_ID).
        """
        check_label(label)
        if not isinstance(algorithm, KeyAlgorithm):
            raise ValueError(f"unsupported key algorithm {algorithm!r}")
        started = False
        what = f"generating key {label!r}"

        def op(lease: _Lease) -> KeyRef:
            nonlocal started
            if _first_objects(lease.session, {Attribute.LABEL: label}, 1):
                raise KeyExists(f"token {self._token_label!r} already holds an object labelled {label!r}")
            started = True
            return self._generate_in(lease, label, algorithm)

        self._after_fork()
        # The file lock makes "is the label free? then generate" atomic between processes.  It is
        # taken before the process-wide lock (which _run takes around op), never while holding it.
        with self._token_file_lock(what):
            return self._run(what, op, retry_if=lambda: not started)

    def signing_key(self, ref: KeyRef) -> SigningKey:
        """Return a key object whose ``sign()`` runs in the token; cached per reference.

        The public key is read from the token once, and checked against ``ref.key_id`` and
        ``ref.algorithm``.

        :raises KeyNotFound: if the token holds no private key with this label and CKA_ID.
        :raises HSMError: if the key on the token does not match the reference.
        :raises HSMUnavailable: if the token cannot be reached.
        """
        key_id = self._check_ref(ref)
        cache_key = (ref.label, ref.key_id.lower(), ref.algorithm)
        with _runtime.lock():
            cached = self._keys.get(cache_key)
        if cached is not None:
            return cached

        def op(lease: _Lease) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
            self._private_key_object(lease, ref, key_id)
            public = self._find_one(lease, ObjectClass.PUBLIC_KEY, ref, key_id)
            return self._public_key_of(public)

        public_key = self._run(f"loading key {ref.label!r}", op)
        try:
            actual = algorithm_of(public_key).value
        except ValueError as exc:
            actual = str(exc)
        if actual != ref.algorithm.value or key_identifier(public_key) != ref.key_id.lower():
            raise HSMError(
                f"the key labelled {ref.label!r} on token {self._token_label!r} does not match its "
                f"reference: expected {ref.algorithm.value} with key id {ref.key_id}, found {actual} "
                f"with key id {key_identifier(public_key)}"
            )
        key: SigningKey
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            key = Pkcs11EllipticCurvePrivateKey(self, ref, public_key)
        else:
            key = Pkcs11RSAPrivateKey(self, ref, public_key)
        with _runtime.lock():
            return self._keys.setdefault(cache_key, key)

    def has_key(self, ref: KeyRef) -> bool:
        """Whether the token holds a private key with ``ref``'s label and CKA_ID.

        :raises HSMUnavailable: if the token cannot be reached.
        """
        key_id = self._check_ref(ref)

        def op(lease: _Lease) -> bool:
            try:
                self._private_key_object(lease, ref, key_id)
            except KeyNotFound:
                return False
            return True

        return self._run(f"looking up key {ref.label!r}", op)

    def close(self) -> None:
        """Close this backend's idle sessions, give back its share of the login, forget cached keys.

        The token stays logged in while another backend of this process on the same token uses the
        login; the last one to close logs it out (FIELD-NOTES #3).  The backend stays usable: the
        next operation connects again.  Sessions borrowed by other threads at this moment are
        abandoned, not closed; do not close a backend that is in use.
        """
        with _runtime.lock():
            self._keys.clear()
            conn, self._conn = self._conn, None
            if conn is None or self._pid != os.getpid():
                return
            if conn.generation != self._module.current_generation():
                return  # The module was re-initialised: these sessions and that login no longer exist.
            # The pool's sessions were opened without a PIN: closing them never logs the token out.
            for lease in conn.idle:
                with suppress(p11.PKCS11Error):
                    lease.session.close()
            conn.idle.clear()
            self._release_login(conn)

    # --- additions to the protocol --------------------------------------------------------------

    def key_attributes(self, ref: KeyRef) -> KeyAttributes:
        """Read the security attributes of the private key ``ref`` from the token.

        :raises KeyNotFound: if the key does not exist.
        :raises HSMUnavailable: if the token cannot be reached.
        """
        key_id = self._check_ref(ref)
        names = {
            "token": Attribute.TOKEN,
            "private": Attribute.PRIVATE,
            "sensitive": Attribute.SENSITIVE,
            "extractable": Attribute.EXTRACTABLE,
            "always_sensitive": Attribute.ALWAYS_SENSITIVE,
            "never_extractable": Attribute.NEVER_EXTRACTABLE,
            "local": Attribute.LOCAL,
            "sign": Attribute.SIGN,
            "decrypt": Attribute.DECRYPT,
            "unwrap": Attribute.UNWRAP,
            "derive": Attribute.DERIVE,
        }

        def op(lease: _Lease) -> KeyAttributes:
            obj = self._private_key_object(lease, ref, key_id)
            values = obj.get_attributes(list(names.values()))
            return KeyAttributes(**{field: bool(values[attr]) for field, attr in names.items()})

        return self._run(f"reading the attributes of key {ref.label!r}", op)

    def sign_with_token(self, ref: KeyRef, mechanism: Mechanism, param: Any, data: bytes) -> bytes:
        """Sign ``data`` with the private key ``ref`` inside the token (used by the key classes).

        :raises KeyNotFound: if the key has disappeared from the token.
        :raises HSMUnavailable: if the token cannot be reached even after re-initialisation.
        """
        key_id = self._check_ref(ref)

        def op(lease: _Lease) -> bytes:
            obj = self._private_key_object(lease, ref, key_id)
            return bytes(obj.sign(data, mechanism=mechanism, mechanism_param=param))

        return self._run(f"signing with key {ref.label!r}", op)

    @property
    def reinitialisations(self) -> int:
        """How many times the module was finalised in this process (recovery and forks)."""
        return self._module.reinitialisations

    # --- running operations ---------------------------------------------------------------------

    def _run(
        self,
        what: str,
        op: Callable[[_Lease], _T],
        *,
        retry_if: Callable[[], bool] = lambda: True,
    ) -> _T:
        """Run ``op`` on a borrowed session, recovering once from a lost session or token.

        ``op`` runs while holding the process-wide lock.  PKCS#11 errors that mean the connection
        is gone trigger a re-initialisation and one more attempt (if ``retry_if()`` allows);
        other PKCS#11 errors become :class:`HSMError`.  ``HSMError`` raised by ``op`` passes through.

        Connecting (which may wait for the start-up file lock) happens before taking a pool slot and
        outside the process-wide lock; a thread holding a slot or that lock never waits for the file lock.
        """
        self._after_fork()
        failures = 0
        stale = 0
        open_failed = False
        while True:
            try:
                self._connection()
            except HSMUnavailable as exc:
                raise HSMUnavailable(f"{what} failed: {exc}") from None
            with self._slots:
                try:
                    lease = self._borrow(may_recover=not open_failed)
                except _SessionNotOpened:
                    open_failed = True
                    lease = None
                except HSMUnavailable as exc:
                    raise HSMUnavailable(f"{what} failed: {exc}") from None
                if lease is None:
                    # The module was re-initialised since connecting: connect again, outside the slot.
                    stale += 1
                    if stale > self._pool_size + 2:
                        raise HSMUnavailable(f"{what} failed: the PKCS#11 library keeps being re-initialised")
                    continue
                broken = False
                try:
                    with _runtime.lock():
                        if lease.conn is not self._conn or lease.conn.generation != self._module.generation:
                            # Another thread re-initialised the module after this session was
                            # borrowed; its handles may now belong to someone else.  Never use it.
                            broken = True
                        else:
                            return op(lease)
                except p11.PKCS11Error as exc:
                    if not _is_lost(exc):
                        raise HSMError(f"{what} failed in token {self._token_label!r}: {_describe(exc)}") from None
                    broken = True
                    failures += 1
                    if failures > 1:
                        raise HSMUnavailable(
                            f"{what} failed: token {self._token_label!r} via {self._module_path} is not "
                            f"usable even after re-initialising the PKCS#11 library ({_describe(exc)})"
                        ) from None
                    if not retry_if():
                        # The operation may have had an effect in the token (a generated key), so
                        # it is not repeated; the next operation reconnects.
                        self._recover(lease.conn.generation)
                        raise HSMUnavailable(
                            f"{what} failed: the connection to token {self._token_label!r} was lost during "
                            f"the operation ({_describe(exc)}); it was not repeated automatically"
                        ) from None
                    _log.warning(
                        "PKCS#11 %s failed (%s); re-initialising the library and retrying once",
                        what,
                        _describe(exc),
                    )
                    self._recover(lease.conn.generation)
                finally:
                    self._release(lease, broken)
            stale += 1
            if stale > self._pool_size + 2:
                raise HSMUnavailable(f"{what} failed: the PKCS#11 library keeps being re-initialised")

    def _borrow(self, *, may_recover: bool) -> _Lease | None:
        """Take an idle session of the live connection or open a new one (caller holds a pool slot).

        Only the process-wide lock is taken: this never connects.

        :returns: ``None`` if there is no live connection (the module was re-initialised, or the
            backend closed, after :meth:`_connection`): the caller connects again.
        :raises _SessionNotOpened: if opening a session failed as if the token was lost and
            ``may_recover`` allowed re-initialising the module.
        :raises HSMUnavailable: if opening a session failed otherwise.
        """
        with _runtime.lock():
            conn = self._live_connection()
            if conn is None:
                return None
            if conn.idle:
                return conn.idle.pop()
            try:
                return _Lease(conn.token.open(rw=True), conn)
            except p11.PKCS11Error as exc:
                if not _is_lost(exc) or not may_recover:
                    raise HSMUnavailable(
                        f"cannot open a session on token {self._token_label!r}: {_describe(exc)}"
                    ) from None
                self._recover(conn.generation)
                raise _SessionNotOpened from None

    def _release(self, lease: _Lease, broken: bool) -> None:
        with _runtime.lock():
            if not broken and lease.conn is self._conn and lease.conn.generation == self._module.generation:
                lease.conn.idle.append(lease)
            # A broken or stale session is dropped without C_CloseSession: after a
            # re-initialisation its handle number may belong to a new session.

    def _recover(self, seen_generation: int) -> None:
        """Finalise the module, once per failed generation, so that the next borrow reconnects.

        Several threads may fail on sessions of the same generation; the first one finalises the
        module and reconnects, the others must leave that new connection alone.
        """
        with _runtime.lock():
            self._module.reinitialise(seen_generation)
            if self._conn is not None and self._conn.generation <= seen_generation:
                self._conn = None

    def _live_connection(self) -> _Connection | None:
        """The connection of the module's current generation, if any (caller holds the process lock)."""
        conn = self._conn
        if conn is not None and conn.generation == self._module.current_generation():
            return conn
        return None

    def _connection(self) -> _Connection:
        """Return the live connection, connecting (again) if there is none for this generation.

        Never call it while holding the process-wide lock: connecting waits for the start-up file lock.
        """
        with _runtime.lock():
            conn = self._live_connection()
        return conn if conn is not None else self._connect()

    def _connect(self) -> _Connection:
        """Load the module, find the token by label and log in, serialised between processes.

        Each attempt takes the start-up file lock, then the process-wide lock; the pause between
        attempts holds neither.
        """
        last: p11.PKCS11Error | None = None
        for attempt in range(self._connect_attempts):
            if attempt:
                time.sleep(0.05 * 2**attempt)
            with self._token_file_lock(), _runtime.lock():
                conn = self._live_connection()
                if conn is not None:
                    return conn  # Another thread connected while this one waited for the file lock.
                try:
                    conn = self._open_connection()
                except _LOGIN_REFUSED as exc:
                    raise HSMUnavailable(
                        f"login to token {self._token_label!r} refused ({_describe(exc)}); not retried so "
                        "that the PIN retry counter is not used up"
                    ) from None
                except (p11.MultipleTokensReturned, p11.UserTooManyTypes) as exc:
                    raise HSMUnavailable(f"cannot use token {self._token_label!r}: {_describe(exc)}") from None
                except p11.PKCS11Error as exc:
                    last = exc
                    _log.warning(
                        "PKCS#11 token %r not usable via %s (%s), attempt %d of %d",
                        self._token_label,
                        self._module_path,
                        _describe(exc),
                        attempt + 1,
                        self._connect_attempts,
                    )
                    self._module.reinitialise(self._module.generation)
                    continue
                if self._conn is not None:
                    self._release_login(self._conn)  # Of an earlier generation: nothing left to close.
                self._conn = conn
                return conn
        detail = _describe(last) if last is not None else "no attempt made"
        raise HSMUnavailable(
            f"PKCS#11 token {self._token_label!r} is not available via {self._module_path} "
            f"after {self._connect_attempts} attempts with re-initialisation ({detail})"
        )

    def _open_connection(self) -> _Connection:
        """Find the token in the current generation and take a share of the process's login to it.

        The caller holds the start-up file lock and then the process-wide lock.
        """
        lib = self._module.lib()
        conn = _Connection(self._module.generation, self._find_token(lib))
        conn.login = self._module.acquire_login(self._token_label, lambda: self._open_logged_in(conn.token))
        return conn

    def _release_login(self, conn: _Connection) -> None:
        """Give back ``conn``'s share of the login, once (caller holds the process-wide lock)."""
        login, conn.login = conn.login, None
        if login is not None:
            self._module.release_login(login)

    def _find_token(self, lib: Any) -> Any:
        """Find the token by label (a seam for tests that simulate enumeration failures)."""
        return lib.get_token(token_label=self._token_label)

    def _open_logged_in(self, token: Any) -> Any:
        """Open the session that holds this process's login to the token, and log the user in.

        Called only when no backend of this process holds a login to the token in this generation.
        """
        try:
            return token.open(rw=True, user_pin=self._pin.reveal())
        except p11.UserAlreadyLoggedIn:
            # Login is per token and process (FIELD-NOTES #3): a component of this process other
            # than these backends logged in to the token, so a session without PIN is already a
            # user session.  It holds the shared login for as long as that component stays logged
            # in; closing it does not log out.  python-pkcs11 leaves the session of the refused
            # C_Login open; it is released at the next re-initialisation.
            return token.open(rw=True)

    def _after_fork(self) -> None:
        """In a forked child, abandon the parent's sessions (the module re-initialises itself)."""
        pid = os.getpid()
        if pid != self._pid:
            with _runtime.lock():
                if pid != self._pid:
                    self._pid = pid
                    self._conn = None
                    self._slots = threading.BoundedSemaphore(self._pool_size)
                    # filelock refuses a lock object inherited across fork; the child needs its own.
                    self._file_lock = filelock.FileLock(str(self._lock_file), timeout=self._lock_timeout)

    @contextmanager
    def _token_file_lock(self, what: str = "") -> Iterator[None]:
        """Hold the inter-process start-up/login lock (FIELD-NOTES #4).

        Take it before the process-wide lock, never while holding that (see the module docstring).
        It is re-entrant within one thread (generate holds it while connecting).

        :param what: the operation, for the error message.
        """
        failed = f"{what} failed: " if what else ""
        try:
            self._file_lock.acquire()
        except filelock.Timeout:
            raise HSMUnavailable(
                f"{failed}timed out waiting for the PKCS#11 start-up lock {self._file_lock.lock_file}"
            ) from None
        except (OSError, RuntimeError) as exc:
            # E.g. lock_dir is not a writable directory: an HSM error, not a stray OSError.  filelock
            # raises RuntimeError for a lock it considers unusable here (e.g. a deadlock it detects).
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise HSMUnavailable(
                f"{failed}cannot use the PKCS#11 start-up lock {self._file_lock.lock_file}: {detail}"
            ) from None
        try:
            yield
        finally:
            self._file_lock.release()

    def _lock_path(self, lock_dir: Path) -> Path:
        # Token enumeration and login of every token of one module touch the same token store,
        # so the lock is per module.  SoftHSM2 keeps its token directory in SOFTHSM2_CONF; tests
        # with separate configurations need not wait for each other.
        identity = f"{os.path.realpath(self._module_path)}\0{os.environ.get('SOFTHSM2_CONF', '')}"
        digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
        return lock_dir / f"hsm-pkcs11-{digest}.lock"

    # --- token objects --------------------------------------------------------------------------

    def _check_ref(self, ref: KeyRef) -> bytes:
        if ref.backend != self.name:
            raise KeyNotFound(f"key {ref.label!r} belongs to backend {ref.backend!r}, not {self.name!r}")
        try:
            return bytes.fromhex(ref.key_id)
        except ValueError:
            raise KeyNotFound(f"key {ref.label!r} has a malformed key id {ref.key_id!r}") from None

    def _private_key_object(self, lease: _Lease, ref: KeyRef, key_id: bytes) -> Any:
        """The private key object of ``ref`` as seen through ``lease`` (found once per session)."""
        cache_key = (ref.label, key_id)
        obj = lease.keys.get(cache_key)
        if obj is None:
            obj = self._find_one(lease, ObjectClass.PRIVATE_KEY, ref, key_id)
            lease.keys[cache_key] = obj
        return obj

    def _find_one(self, lease: _Lease, object_class: ObjectClass, ref: KeyRef, key_id: bytes) -> Any:
        kind = "private" if object_class is ObjectClass.PRIVATE_KEY else "public"
        # get_objects with an explicit close, not get_key: get_key leaves its search open when it
        # finds two objects, and a pooled session with an active search fails its next operation.
        hits = _first_objects(
            lease.session, {Attribute.CLASS: object_class, Attribute.LABEL: ref.label, Attribute.ID: key_id}, 2
        )
        if not hits:
            raise KeyNotFound(
                f"token {self._token_label!r} holds no {kind} key labelled {ref.label!r} with id {ref.key_id}"
            )
        if len(hits) > 1:
            raise HSMError(
                f"token {self._token_label!r} holds several {kind} keys labelled {ref.label!r} with id {ref.key_id}"
            )
        return hits[0]

    def _generate_in(self, lease: _Lease, label: str, algorithm: KeyAlgorithm) -> KeyRef:
        """Generate the key pair, then set CKA_ID to the key identifier on both objects."""
        session = lease.session
        pending_id = b"pending-" + os.urandom(12)
        public_template = dict(_PUBLIC_KEY_TEMPLATE)
        if algorithm.is_ec:
            public_template[Attribute.EC_PARAMS] = _CURVE_PARAMS[algorithm]
            key_type, bits = KeyType.EC, None
        else:
            public_template[Attribute.PUBLIC_EXPONENT] = _PUBLIC_EXPONENT
            key_type, bits = KeyType.RSA, algorithm.rsa_bits
        public_obj, private_obj = session.generate_keypair(
            key_type,
            bits,
            id=pending_id,
            label=label,
            store=True,
            capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            public_template=public_template,
            private_template=dict(_PRIVATE_KEY_TEMPLATE),
        )
        try:
            public_key = self._public_key_of(public_obj)
            if algorithm_of(public_key) is not algorithm:
                raise HSMError(f"the token generated a key that is not {algorithm.value}")
            key_id = key_identifier(public_key)
            private_obj[Attribute.ID] = bytes.fromhex(key_id)
            public_obj[Attribute.ID] = bytes.fromhex(key_id)
        except BaseException:
            # Never leave a half-labelled key behind: destroy both objects, then report.
            for obj in (private_obj, public_obj):
                with suppress(p11.PKCS11Error):
                    obj.destroy()
            raise
        _log.info("generated %s key %r (id %s) in token %r", algorithm.value, label, key_id, self._token_label)
        return KeyRef(
            backend=self.name,
            label=label,
            key_id=key_id,
            algorithm=algorithm,
            token=f"{self._token_label}/{lease.conn.serial}",
        )

    def _public_key_of(self, obj: Any) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        """Build the cryptography public key from a public key object's attributes."""
        key_type = obj[Attribute.KEY_TYPE]
        if key_type == KeyType.EC:
            values = obj.get_attributes([Attribute.EC_PARAMS, Attribute.EC_POINT])
            params = bytes(values[Attribute.EC_PARAMS])
            algorithm = next((alg for alg, der in _CURVE_PARAMS.items() if der == params), None)
            if algorithm is None:
                raise HSMError(f"the token key uses an unsupported curve (CKA_EC_PARAMS {params.hex()})")
            curve = algorithm.curve
            point = _unwrap_ec_point(bytes(values[Attribute.EC_POINT]), curve)
            return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
        if key_type == KeyType.RSA:
            values = obj.get_attributes([Attribute.MODULUS, Attribute.PUBLIC_EXPONENT])
            modulus = int.from_bytes(bytes(values[Attribute.MODULUS]), "big")
            exponent = int.from_bytes(bytes(values[Attribute.PUBLIC_EXPONENT]), "big")
            return rsa.RSAPublicNumbers(exponent, modulus).public_key()
        raise HSMError(f"the token key has the unsupported key type {key_type!r}")


def _unwrap_ec_point(value: bytes, curve: ec.EllipticCurve) -> bytes:
    """Return the uncompressed point from CKA_EC_POINT.

    PKCS#11 stores the point DER-encoded as an OCTET STRING (``04 len 04 X Y``); some modules
    return the raw point.  The two forms are told apart by length, which is unambiguous.
    """
    raw_len = 1 + 2 * ((curve.key_size + 7) // 8)
    if len(value) == raw_len and value[0] == 0x04:
        return value
    if len(value) == raw_len + 2 and value[0] == 0x04 and value[1] == raw_len:
        return value[2:]
    raise HSMError(f"cannot decode CKA_EC_POINT of {len(value)} bytes for curve {curve.name}")
