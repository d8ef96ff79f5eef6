"""Helpers for integration tests: the real runtime, a live gunicorn app on loopback, pkilint, openssl."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca.audit.chain import GENESIS_HASH, AuditEntry, entry_hash
from ca.issuance.lint import PkilintGate
from ca.store.models import AuditEvent
from qtsp.bench_ocsp import free_port
from qtsp.config import load_config
from qtsp.wiring import Runtime, runtime

__all__ = [
    "assert_audit_chain",
    "free_port",
    "gunicorn_app",
    "open_runtime",
    "openssl_verify",
    "pkilint_findings",
]

_GATE = PkilintGate()  # built once for the whole test session (no development host downgrade)


@contextmanager
def open_runtime(home: Path) -> Iterator[Runtime]:
    with runtime(load_config(home)) as rt:
        yield rt


@contextmanager
def gunicorn_app(env: dict[str, str], port: int, workers: int = 2) -> Iterator[None]:
    exe = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [
            str(exe),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "-c",
            "python:qtsp.gunicorn_conf",  # the production settings (README)
            "qtsp.app:create_app()",
        ],
        env={**os.environ, **env},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"gunicorn exited with {proc.returncode}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ca/root.crt", timeout=2) as r:
                    assert r.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not come up"
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(15)


def pkilint_findings(cert: x509.Certificate, profile: str) -> list[str]:
    """Every pkilint finding above INFO, as strings (zero is the goal: no errors, no warnings, no notices)."""
    return [
        f"{f.severity.name} {f.message}"
        for f in _GATE.lint(cert.public_bytes(serialization.Encoding.DER), profile)
        if f.severity.name != "INFO"
    ]


def openssl_verify(tmp: Path, leaf: x509.Certificate, root: x509.Certificate, intermediate: x509.Certificate) -> str:
    paths = {}
    for name, cert in (("leaf", leaf), ("root", root), ("int", intermediate)):
        p = tmp / f"{name}.pem"
        p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[name] = str(p)
    out = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-CAfile", paths["root"], "-untrusted", paths["int"], paths["leaf"]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def assert_audit_chain(events: Sequence[AuditEvent]) -> str:
    """Every event links to its predecessor from the genesis hash and hashes to its stored hash.

    :returns: the hash of the last event (the chain head).
    """
    prev = GENESIS_HASH
    for e in events:
        assert e.prev_hash == prev, f"event {e.seq}: prev_hash breaks the chain"
        prev = entry_hash(
            AuditEntry(e.seq, e.at, e.actor, e.role, e.action, e.object_type, e.object_id, e.details, e.prev_hash)
        )
        assert e.hash == prev, f"event {e.seq}: hash does not match its content"
    return prev


def race(n: int, attempt: Callable[[int], str]) -> list[str]:
    """Run ``attempt(0)`` .. ``attempt(n - 1)`` in ``n`` threads released at once; their outcomes."""
    barrier = threading.Barrier(n)
    outcomes: list[str] = []

    def run(i: int) -> None:
        barrier.wait()
        outcomes.append(attempt(i))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes
