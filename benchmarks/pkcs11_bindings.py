"""Compare the two Python PKCS#11 bindings against a throw-away SoftHSM2 token.

The script creates its own token directory and ``softhsm2.conf`` in a temporary directory (FIELD-NOTES
#5: never touch the system token directory), generates one P-256, one P-384 and one RSA-3072 key with
python-pkcs11, and then measures signatures per second through

* python-pkcs11, one session, raw ``CKM_ECDSA`` over a SHA-256/384 digest and ``CKM_SHA256_RSA_PKCS``;
* PyKCS11, the same mechanisms;
* PyKCS11 with two threads (it keeps the GIL, so no speed-up is expected);
* the project's :class:`hsm.pkcs11.Pkcs11Backend` signing key (hash in Python, process-wide lock,
  session pool, DER encoding of the ECDSA signature): the cost of the abstraction;
* cryptography in memory, as the reference.

Every binding runs in its own child process so that the two never share one initialised library.
Optionally (``--segfault-demo``) a child signs from two threads through python-pkcs11 *without* a
lock, to show FIELD-NOTES #2 (the child is expected to die with SIGSEGV; core dumps are disabled).

Usage::

    .venv/bin/python benchmarks/pkcs11_bindings.py [--seconds 2] [--segfault-demo]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
# Throw-away credentials of the temporary benchmark token.
TOKEN_LABEL = "bench"  # noqa: S105 - a token label, not a password.
SO_PIN = "87654321"
USER_PIN = "246810"

#: Key label -> (algorithm name for the table, key kind, curve OID DER or RSA bits).
KEYS: dict[str, tuple[str, str, Any]] = {
    "bench-p256": ("P-256", "ec", bytes.fromhex("06082a8648ce3d030107")),
    "bench-p384": ("P-384", "ec", bytes.fromhex("06052b81040022")),
    "bench-rsa3072": ("RSA-3072", "rsa", 3072),
}
MESSAGE = b"The quick brown fox jumps over the lazy dog. " * 4


def _rate(fn: Callable[[], object], seconds: float) -> float:
    """Call ``fn`` repeatedly for about ``seconds`` and return calls per second."""
    fn()  # Warm-up: first-call costs (key lookup caches, OpenSSL init) are not measured.
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        fn()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def _threaded_rate(fn: Callable[[], object], seconds: float, threads: int) -> float:
    """Run ``fn`` from ``threads`` threads for about ``seconds``; return total calls per second."""
    counts = [0] * threads
    stop = threading.Event()

    def worker(index: int) -> None:
        while not stop.is_set():
            fn()
            counts[index] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in pool:
        thread.join()
    return sum(counts) / (time.perf_counter() - start)


def _digest_for(label: str) -> bytes:
    """The digest an ECDSA key signs: SHA-384 for P-384, SHA-256 otherwise (TS 119 312)."""
    if label == "bench-p384":
        return hashlib.sha384(MESSAGE).digest()
    return hashlib.sha256(MESSAGE).digest()


# --- child-process workers -------------------------------------------------------------------------


def worker_keygen(module: str, pin: str) -> dict[str, Any]:
    """Generate the benchmark keys inside the token with python-pkcs11."""
    import pkcs11
    from pkcs11 import Attribute, KeyType

    token = pkcs11.lib(module).get_token(token_label=TOKEN_LABEL)
    seconds: dict[str, float] = {}
    with token.open(rw=True, user_pin=pin) as session:
        for label, (name, kind, param) in KEYS.items():
            start = time.perf_counter()
            if kind == "ec":
                session.generate_keypair(
                    KeyType.EC,
                    store=True,
                    label=label,
                    id=label.encode(),
                    public_template={Attribute.EC_PARAMS: param},
                )
            else:
                session.generate_keypair(KeyType.RSA, param, store=True, label=label, id=label.encode())
            seconds[name] = time.perf_counter() - start
    return {"keygen_seconds": seconds}


def worker_python_pkcs11(module: str, pin: str, seconds: float) -> dict[str, Any]:
    """Signatures per second through python-pkcs11, one logged-in session."""
    import pkcs11
    from pkcs11 import Mechanism, ObjectClass

    token = pkcs11.lib(module).get_token(token_label=TOKEN_LABEL)
    rates: dict[str, float] = {}
    with token.open(user_pin=pin) as session:
        for label, (name, kind, _param) in KEYS.items():
            key = session.get_key(ObjectClass.PRIVATE_KEY, label=label)
            if kind == "ec":
                digest = _digest_for(label)
                rates[name] = _rate(lambda k=key, d=digest: k.sign(d, mechanism=Mechanism.ECDSA), seconds)
            else:
                rates[name] = _rate(lambda k=key: k.sign(MESSAGE, mechanism=Mechanism.SHA256_RSA_PKCS), seconds)
    return {"rates": rates}


def worker_pykcs11(module: str, pin: str, seconds: float, threads: int = 1) -> dict[str, Any]:
    """Signatures per second through PyKCS11 (one session; optionally shared by several threads)."""
    import PyKCS11

    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    slot = next(s for s in lib.getSlotList(tokenPresent=True) if lib.getTokenInfo(s).label.strip() == TOKEN_LABEL)
    session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION)
    session.login(pin)
    rates: dict[str, float] = {}
    try:
        for label, (name, kind, _param) in KEYS.items():
            key = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_LABEL, label)])[0]
            if kind == "ec":
                digest = _digest_for(label)
                mech = PyKCS11.Mechanism(PyKCS11.CKM_ECDSA)

                def fn(k: Any = key, d: bytes = digest, m: Any = mech) -> object:
                    return session.sign(k, d, m)

            else:
                mech = PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS)

                def fn(k: Any = key, m: Any = mech) -> object:
                    return session.sign(k, MESSAGE, m)

            rates[name] = _rate(fn, seconds) if threads == 1 else _threaded_rate(fn, seconds, threads)
    finally:
        session.logout()
        session.closeSession()
    return {"rates": rates}


def worker_backend(module: str, pin: str, seconds: float) -> dict[str, Any]:
    """Signatures per second through hsm.pkcs11.Pkcs11Backend signing keys (the whole abstraction)."""
    sys.path.insert(0, str(REPO_ROOT))
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    from hsm.api import KeyAlgorithm
    from hsm.keyid import key_identifier
    from hsm.pkcs11 import Pkcs11Backend

    backend = Pkcs11Backend(module, TOKEN_LABEL, pin, pool_size=1)
    algorithms = {
        "bench-p256": KeyAlgorithm.EC_P256,
        "bench-p384": KeyAlgorithm.EC_P384,
        "bench-rsa3072": KeyAlgorithm.RSA_3072,
    }
    rates: dict[str, float] = {}
    try:
        for label, (name, kind, _param) in KEYS.items():
            # The backend's keys carry CKA_ID = key identifier, so it generates its own copies.
            ref = backend.generate(f"{label}-backend", algorithms[label])
            key = backend.signing_key(ref)
            assert ref.key_id == key_identifier(key.public_key())
            if kind == "ec":
                assert isinstance(key, ec.EllipticCurvePrivateKey)
                algorithm = ec.ECDSA(hashes.SHA384() if label == "bench-p384" else hashes.SHA256())
                rates[name] = _rate(lambda k=key, a=algorithm: k.sign(MESSAGE, a), seconds)
            else:
                assert isinstance(key, rsa.RSAPrivateKey)
                rates[name] = _rate(lambda k=key: k.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256()), seconds)
    finally:
        backend.close()
    return {"rates": rates}


def worker_segfault(module: str, pin: str, seconds: float) -> dict[str, Any]:
    """Sign from two threads through python-pkcs11 with no lock (expected to crash the process)."""
    import pkcs11
    from pkcs11 import Mechanism, ObjectClass

    token = pkcs11.lib(module).get_token(token_label=TOKEN_LABEL)
    login = token.open(user_pin=pin)
    digest = _digest_for("bench-p256")

    def fn_for_new_session() -> Callable[[], object]:
        session = token.open()
        key = session.get_key(ObjectClass.PRIVATE_KEY, label="bench-p256")
        return lambda: key.sign(digest, mechanism=Mechanism.ECDSA)

    fns = [fn_for_new_session(), fn_for_new_session()]
    stop = threading.Event()

    def worker(fn: Callable[[], object]) -> None:
        while not stop.is_set():
            fn()

    threads = [threading.Thread(target=worker, args=(fn,)) for fn in fns]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    login.close()
    return {"crashed": False}


def worker_cryptography(seconds: float) -> dict[str, Any]:
    """Signatures per second with cryptography's in-memory keys (the reference row)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    p256 = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    rsa3072 = rsa.generate_private_key(65537, 3072)
    return {
        "rates": {
            "P-256": _rate(lambda: p256.sign(MESSAGE, ec.ECDSA(hashes.SHA256())), seconds),
            "P-384": _rate(lambda: p384.sign(MESSAGE, ec.ECDSA(hashes.SHA384())), seconds),
            "RSA-3072": _rate(lambda: rsa3072.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256()), seconds),
        }
    }


# --- orchestration ---------------------------------------------------------------------------------


def _disable_core_dumps() -> None:
    """Child pre-exec hook: a deliberate crash must not leave a core file behind."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _run_worker(name: str, env: dict[str, str], seconds: float, timeout: float) -> dict[str, Any]:
    """Run one worker in a child process and return its JSON result (or the way it died)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--seconds", str(seconds)]
    try:
        proc = subprocess.run(  # noqa: S603 - our own interpreter and script.
            cmd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_disable_core_dumps,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode < 0:
        return {"error": f"killed by {signal.Signals(-proc.returncode).name}", "crashed": True}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _make_token(workdir: Path, module: str, util: str) -> dict[str, str]:
    """Create a private SoftHSM2 configuration and token; return the environment for the children."""
    tokendir = workdir / "tokens"
    tokendir.mkdir(mode=0o700)
    conf = workdir / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        encoding="utf-8",
    )
    env = dict(os.environ, SOFTHSM2_CONF=str(conf), BENCH_MODULE=module, BENCH_PIN=USER_PIN)
    subprocess.run(  # noqa: S603 - softhsm2-util found on PATH.
        [util, "--init-token", "--free", "--label", TOKEN_LABEL, "--so-pin", SO_PIN, "--pin", USER_PIN],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def _fmt(value: Any) -> str:
    return f"{value:,.0f}" if isinstance(value, (int, float)) else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per cell (default 2)")
    parser.add_argument("--module", default=os.environ.get("SOFTHSM2_MODULE", DEFAULT_MODULE))
    parser.add_argument("--segfault-demo", action="store_true", help="also run the unlocked two-thread child")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        module = os.environ["BENCH_MODULE"]
        pin = os.environ["BENCH_PIN"]
        workers: dict[str, Callable[[], dict[str, Any]]] = {
            "keygen": lambda: worker_keygen(module, pin),
            "python-pkcs11": lambda: worker_python_pkcs11(module, pin, args.seconds),
            "PyKCS11": lambda: worker_pykcs11(module, pin, args.seconds),
            "PyKCS11-2threads": lambda: worker_pykcs11(module, pin, args.seconds, threads=2),
            "hsm-backend": lambda: worker_backend(module, pin, args.seconds),
            "segfault": lambda: worker_segfault(module, pin, args.seconds),
            "cryptography": lambda: worker_cryptography(args.seconds),
        }
        print(json.dumps(workers[args.worker]()))
        return 0

    util = shutil.which("softhsm2-util")
    if util is None or not Path(args.module).exists():
        print("SoftHSM2 is not installed (softhsm2-util and the module are needed)", file=sys.stderr)
        return 2

    timeout = 60 + 10 * args.seconds
    with tempfile.TemporaryDirectory(prefix="pkcs11-bench-") as tmp:
        env = _make_token(Path(tmp), args.module, util)
        keygen = _run_worker("keygen", env, args.seconds, timeout)
        if "error" in keygen:
            print(f"key generation failed: {keygen['error']}", file=sys.stderr)
            return 1
        rows = {
            "python-pkcs11 0.10, one session": _run_worker("python-pkcs11", env, args.seconds, timeout),
            "PyKCS11 1.5, one session": _run_worker("PyKCS11", env, args.seconds, timeout),
            "PyKCS11 1.5, two threads": _run_worker("PyKCS11-2threads", env, args.seconds, timeout),
            "hsm.pkcs11 backend (python-pkcs11)": _run_worker("hsm-backend", env, args.seconds, timeout),
            "cryptography (in memory, reference)": _run_worker("cryptography", env, args.seconds, timeout),
        }
        segfault = _run_worker("segfault", env, args.seconds, timeout) if args.segfault_demo else None

    names = [name for name, _kind, _param in KEYS.values()]
    print(f"SoftHSM2 signatures/s, {args.seconds:g} s per cell, {os.cpu_count()} CPUs, module {args.module}")
    print(f"{'':40} | " + " | ".join(f"{n:>9}" for n in names))
    print(f"{'-' * 40}-|-" + "-|-".join("-" * 9 for _ in names))
    for row, result in rows.items():
        if "error" in result:
            print(f"{row:40} | {result['error']}")
            continue
        print(f"{row:40} | " + " | ".join(f"{_fmt(result['rates'].get(n, '-')):>9}" for n in names))
    gen = keygen["keygen_seconds"]
    print("key generation in the token (s): " + ", ".join(f"{k} {v:.2f}" for k, v in gen.items()))
    if segfault is not None:
        outcome = segfault.get("error", "no crash")
        print(f"python-pkcs11, two threads, no lock, {args.seconds:g} s: {outcome}")
    if args.json:
        print(json.dumps({"rows": rows, "keygen": keygen, "segfault": segfault}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
