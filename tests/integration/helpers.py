"""Helpers for integration tests: issue through the real runtime, lint with pkilint, verify with openssl."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca.audit.chain import GENESIS_HASH, AuditEntry, entry_hash
from ca.issuance.lint import PkilintGate
from ca.store.models import AuditEvent
from qtsp.config import load_config
from qtsp.wiring import Runtime, runtime

_GATE = PkilintGate()  # built once for the whole test session (no development host downgrade)


@contextmanager
def open_runtime(home: Path) -> Iterator[Runtime]:
    with runtime(load_config(home)) as rt:
        yield rt


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
