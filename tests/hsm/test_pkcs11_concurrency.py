"""Threads, forked children and concurrently starting processes sharing one token."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from hsm.api import KeyAlgorithm, KeyRef, SigningKey
from hsm.pkcs11 import Pkcs11Backend, _runtime
from tests.hsm.conftest import SoftHsm
from tests.hsm.pki import verify_signature

pytestmark = pytest.mark.hsm

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shared(softhsm: SoftHsm) -> Iterator[tuple[Pkcs11Backend, KeyRef, KeyRef]]:
    """A pool of four sessions and one P-256 and one RSA-3072 key, on a token of their own."""
    label = f"conc-{uuid.uuid4().hex[:8]}"
    softhsm.init_token(label)
    with softhsm.backend(label, pool_size=4) as backend:
        yield (
            backend,
            backend.generate("conc-p256", KeyAlgorithm.EC_P256),
            backend.generate("conc-rsa", KeyAlgorithm.RSA_3072),
        )


def _sign(key: SigningKey, message: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(hashes.SHA256()))
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def test_eight_threads_sign_concurrently(shared: tuple[Pkcs11Backend, KeyRef, KeyRef]) -> None:
    backend, ec_ref, rsa_ref = shared
    keys = [backend.signing_key(ec_ref), backend.signing_key(rsa_ref)]
    start = threading.Barrier(8)

    def work(worker: int) -> list[tuple[SigningKey, bytes, bytes]]:
        start.wait()
        results = []
        for i in range(40):
            key = keys[0] if i % 8 else keys[1]  # Mostly ECDSA, some RSA.
            message = f"worker {worker} message {i}".encode()
            results.append((key, message, _sign(key, message)))
        return results

    with ThreadPoolExecutor(max_workers=8) as pool:
        batches = list(pool.map(work, range(8)))
    assert sum(len(batch) for batch in batches) == 320
    for batch in batches:
        for key, message, signature in batch:
            public = key.public_key()
            assert isinstance(public, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey))
            verify_signature(public, signature, message, hashes.SHA256())
    conn = backend._conn
    assert conn is not None
    assert 1 <= len(conn.idle) <= 4  # Never more sessions than the pool size.


def test_threads_survive_a_reinitialisation_behind_their_back(
    softhsm: SoftHsm, shared: tuple[Pkcs11Backend, KeyRef, KeyRef]
) -> None:
    backend, ec_ref, _rsa_ref = shared
    key = backend.signing_key(ec_ref)
    public = key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    before = backend.reinitialisations
    started = threading.Barrier(5)
    halfway = threading.Event()

    def work(worker: int) -> list[tuple[bytes, bytes]]:
        started.wait()
        results = []
        for i in range(60):
            if i == 30:
                halfway.wait(timeout=10)
            message = f"{worker}/{i}".encode()
            results.append((message, _sign(key, message)))
        return results

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(work, worker) for worker in range(4)]
        started.wait()
        time.sleep(0.01)
        # Another component of the process re-initialises the module while the threads sign.
        # (Under the process-wide lock: an unserialised PKCS#11 call could crash the process.)
        with _runtime.lock():
            pkcs11.lib(softhsm.module).reinitialize()
        halfway.set()
        batches = [future.result() for future in futures]
    for batch in batches:
        for message, signature in batch:
            verify_signature(public, signature, message, hashes.SHA256())
    assert backend.reinitialisations == before + 1  # Recovered once, not once per thread.


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_reinitialises_and_parent_keeps_working(
    shared: tuple[Pkcs11Backend, KeyRef, KeyRef],
) -> None:
    backend, ec_ref, _rsa_ref = shared
    key = backend.signing_key(ec_ref)
    _sign(key, b"before fork")  # The parent has live sessions when it forks.
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        status = 1
        try:
            os.close(read_end)
            os.write(write_end, _sign(key, b"child"))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child_signature = pipe.read()
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    public = key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    verify_signature(public, child_signature, b"child", hashes.SHA256())
    verify_signature(public, _sign(key, b"parent after fork"), b"parent after fork", hashes.SHA256())


CHILD = """
import sys, time
from pathlib import Path
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hsm.api import KeyAlgorithm, KeyRef
from hsm.pkcs11 import Pkcs11Backend, _runtime

module, label, key_label, key_id, go, lock_dir, index = sys.argv[1:]
ref = KeyRef("pkcs11", key_label, key_id, KeyAlgorithm.EC_P256, label)
pin = sys.stdin.readline().strip()
while not Path(go).exists():
    time.sleep(0.001)
backend = Pkcs11Backend(module, label, pin, pool_size=1, lock_dir=Path(lock_dir))
key = backend.signing_key(ref)
print(key.sign(f"process {index}".encode(), ec.ECDSA(hashes.SHA256())).hex())
backend.close()
"""


def test_processes_starting_and_logging_in_together(
    softhsm: SoftHsm, shared: tuple[Pkcs11Backend, KeyRef, KeyRef], tmp_path: Path
) -> None:
    _backend, ec_ref, _rsa_ref = shared
    go = tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                softhsm.module,
                _backend.token_label,
                ec_ref.label,
                ec_ref.key_id,
                str(go),
                str(softhsm.lock_dir),
                str(index),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for index in range(4)
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.write(softhsm.pin + "\n")  # The PIN never appears on a command line.
        child.stdin.flush()
    time.sleep(0.5)  # Let every child import and wait at the start line.
    go.touch()
    public = _backend.signing_key(ec_ref).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    for index, child in enumerate(children):
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        verify_signature(public, bytes.fromhex(out.strip()), f"process {index}".encode(), hashes.SHA256())
