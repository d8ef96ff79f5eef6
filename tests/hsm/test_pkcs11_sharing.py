"""Several backends in one process sharing a token, and the locks they share.

Login is per token and process (FIELD-NOTES #3): the backends of one process on one token share one
login, which ends only when the last of them is closed.  Waiting for the inter-process start-up lock
must never hold the process-wide PKCS#11 lock: a backend that is connected keeps signing meanwhile.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, ObjectClass

from hsm.api import KeyAlgorithm, KeyRef
from hsm.pkcs11 import Pkcs11Backend, _runtime
from tests.hsm.conftest import SoftHsm
from tests.hsm.pki import verify_signature

pytestmark = pytest.mark.hsm

REPO_ROOT = Path(__file__).resolve().parents[2]
MESSAGE = b"sharing"


def _sign_and_verify(backend: Pkcs11Backend, ref: KeyRef, message: bytes = MESSAGE) -> None:
    key = backend.signing_key(ref)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    verify_signature(key.public_key(), key.sign(message, ec.ECDSA(hashes.SHA256())), message, hashes.SHA256())


def _private_keys_visible(softhsm: SoftHsm, label: str) -> bool:
    """Whether a session without PIN sees private keys, i.e. whether this process is logged in."""
    with _runtime.lock():
        token = pkcs11.lib(softhsm.module).get_token(token_label=label)
        with token.open() as session:
            found: Any = session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
            try:
                return next(iter(found), None) is not None
            finally:
                found.close()


def _users(softhsm: SoftHsm, label: str) -> int:
    """How many backends of this process share the login to token ``label``."""
    with _runtime.lock():
        login = _runtime.module(softhsm.module).logged_in(label)
        return 0 if login is None else login.users


def test_closing_one_backend_keeps_the_others_logged_in(softhsm: SoftHsm, new_token: str) -> None:
    first = softhsm.backend(new_token, pool_size=2)
    second = softhsm.backend(new_token, pool_size=2)
    ref = first.generate("shared-key", KeyAlgorithm.EC_P256)  # The first backend logs in.
    _sign_and_verify(second, ref)  # The second finds the token logged in already.
    before = second.reinitialisations

    first.close()
    other = second.generate("after-close", KeyAlgorithm.EC_P256)
    _sign_and_verify(second, ref)
    _sign_and_verify(second, other)
    assert second.reinitialisations == before  # Nothing was lost, nothing recovered.
    assert _private_keys_visible(softhsm, new_token)  # Still logged in: the second backend uses the login.
    assert _users(softhsm, new_token) == 1  # The first backend gave back its share of the login.

    second.close()
    assert _users(softhsm, new_token) == 0
    assert not _private_keys_visible(softhsm, new_token)  # The last user logged the token out.
    with softhsm.backend(new_token, pool_size=1) as third:
        _sign_and_verify(third, ref)
        _sign_and_verify(third, third.generate("third-key", KeyAlgorithm.EC_P256))
        assert third.reinitialisations == before
    assert not _private_keys_visible(softhsm, new_token)


def test_close_twice_and_close_unused_backend(softhsm: SoftHsm, new_token: str) -> None:
    first = softhsm.backend(new_token, pool_size=1)
    second = softhsm.backend(new_token, pool_size=1)
    never_used = softhsm.backend(new_token, pool_size=1)
    ref = first.generate("twice", KeyAlgorithm.EC_P256)
    _sign_and_verify(second, ref)
    before = second.reinitialisations
    first.close()
    first.close()  # A second close must not release the shared login a second time.
    never_used.close()
    _sign_and_verify(second, ref)
    assert second.reinitialisations == before
    assert _private_keys_visible(softhsm, new_token)
    assert _users(softhsm, new_token) == 1
    _sign_and_verify(first, ref)  # A closed backend connects again when used.
    second.close()
    assert _private_keys_visible(softhsm, new_token)
    first.close()
    assert not _private_keys_visible(softhsm, new_token)


def test_shared_login_survives_a_reinitialisation(softhsm: SoftHsm, new_token: str) -> None:
    first = softhsm.backend(new_token, pool_size=2)
    second = softhsm.backend(new_token, pool_size=2)
    ref = first.generate("reinit-key", KeyAlgorithm.EC_P256)
    _sign_and_verify(second, ref)
    before = first.reinitialisations
    # Another component of the process re-initialises the module: every session and the login are gone.
    with _runtime.lock():
        pkcs11.lib(softhsm.module).reinitialize()
    _sign_and_verify(second, ref)  # Recovers and logs in again, in the new generation.
    assert second.reinitialisations == before + 1
    _sign_and_verify(first, ref)  # Shares that new login (no second recovery).
    assert first.reinitialisations == before + 1
    second.close()
    _sign_and_verify(first, ref)
    assert first.reinitialisations == before + 1
    assert _users(softhsm, new_token) == 1
    first.close()
    assert not _private_keys_visible(softhsm, new_token)


# --- the inter-process start-up lock and the process-wide lock --------------------------------------

HOLD_SECONDS = 2.0
SIGNATURE_BOUND = 0.5  # Generous on a busy two-core machine; a signature takes well under 1 ms.

HOLDER = textwrap.dedent(
    """
    import sys, time
    import filelock
    lock = filelock.FileLock(sys.argv[1], timeout=10)
    with lock:
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


@pytest.fixture
def connected(softhsm: SoftHsm, new_token: str) -> Iterator[tuple[Pkcs11Backend, KeyRef]]:
    """A backend with two pooled sessions that has signed already, and its key."""
    with softhsm.backend(new_token, pool_size=2) as backend:
        ref = backend.generate("lock-key", KeyAlgorithm.EC_P256)
        _sign_and_verify(backend, ref)
        yield backend, ref


@pytest.mark.parametrize("waiter", ["connect", "generate"])
def test_waiting_for_the_start_up_lock_does_not_stall_connected_backends(
    softhsm: SoftHsm, new_token: str, connected: tuple[Pkcs11Backend, KeyRef], waiter: str
) -> None:
    backend, ref = connected
    key = backend.signing_key(ref)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    public = key.public_key()
    newcomer = softhsm.backend(new_token, pool_size=1)
    waiting: Callable[[], object]
    if waiter == "connect":
        # A backend that is not connected yet must wait for the lock to connect and log in.
        def waiting() -> object:
            return newcomer.signing_key(ref).sign(b"newcomer", ec.ECDSA(hashes.SHA256()))
    else:
        # Generation takes the lock too (label check and generation are atomic between processes).
        def waiting() -> object:
            return backend.generate("generated-while-locked", KeyAlgorithm.EC_P256)

    # Another process holds the start-up lock, as a worker logging in at that moment would.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(backend._lock_file), str(HOLD_SECONDS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    outcome: dict[str, object] = {}
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        held_at = time.monotonic()

        def run_waiter() -> None:
            try:
                outcome["result"] = waiting()
            except BaseException as exc:  # Reported by the main thread.
                outcome["error"] = exc
            outcome["done_at"] = time.monotonic()

        thread = threading.Thread(target=run_waiter)
        thread.start()
        time.sleep(0.1)  # Let the waiter reach the lock.
        durations: list[float] = []
        while holder.poll() is None:
            started = time.monotonic()
            message = f"signature {len(durations)}".encode()
            signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
            durations.append(time.monotonic() - started)
            verify_signature(public, signature, message, hashes.SHA256())
            time.sleep(0.01)
        thread.join(timeout=30)
        assert not thread.is_alive()
    finally:
        holder.kill()
        holder.wait()
        newcomer.close()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"]
    # The waiter really waited for the other process...
    assert isinstance(outcome["done_at"], float)
    assert outcome["done_at"] - held_at >= HOLD_SECONDS - 0.5
    # ...while the connected backend went on signing, never stalled by that wait.
    print(f"{len(durations)} signatures while waiting, the slowest took {max(durations):.4f} s")
    assert max(durations) < SIGNATURE_BOUND, f"slowest signature {max(durations):.3f} s"
    assert len(durations) >= 10


def test_locks_under_mixed_load_do_not_deadlock(softhsm: SoftHsm, new_token: str) -> None:
    """Connecting, generating, signing, closing and re-initialising at once, in one process.

    Every path takes the start-up file lock before the process-wide lock, so this always ends; a
    short lock timeout turns a deadlock into a failure instead of a hang.
    """
    signer = softhsm.backend(new_token, pool_size=2, lock_timeout=10)
    generator = softhsm.backend(new_token, pool_size=1, lock_timeout=10)
    ref = signer.generate("mixed-key", KeyAlgorithm.EC_P256)
    module = _runtime.module(softhsm.module)
    deadline = time.monotonic() + 1.5
    errors: list[BaseException] = []
    counts = {"sign": 0, "generate": 0, "connect": 0, "reinit": 0}

    def sign() -> None:
        while time.monotonic() < deadline:
            _sign_and_verify(signer, ref, b"mixed")
            counts["sign"] += 1

    def generate() -> None:
        while time.monotonic() < deadline:
            generator.generate(f"mixed-{counts['generate']}", KeyAlgorithm.EC_P256)
            counts["generate"] += 1

    def connect_and_close() -> None:
        while time.monotonic() < deadline:
            with softhsm.backend(new_token, pool_size=1, lock_timeout=10) as passer_by:
                _sign_and_verify(passer_by, ref, b"passer-by")
            counts["connect"] += 1

    def reinitialise() -> None:
        while time.monotonic() < deadline:
            time.sleep(0.2)
            with _runtime.lock():  # The way a backend recovering from a lost token does it.
                module.reinitialise(module.generation)
            counts["reinit"] += 1

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [
        threading.Thread(target=guarded(work)) for work in (sign, sign, generate, connect_and_close, reinitialise)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors
    assert min(counts.values()) >= 1, counts
    signer.close()
    generator.close()
    assert _users(softhsm, new_token) == 0
