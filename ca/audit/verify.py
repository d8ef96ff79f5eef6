"""Offline verification of the audit chain and its signed checkpoints (issue 5; EN 319 401
REQ-7.10-02, EN 319 411-1 OVR-6.4.5: records kept with their integrity protected).

Pure functions over plain values, so the same code checks the live database (``qtsp audit
verify``) and an export file with no database at all (``qtsp audit verify-export``).

What each check catches (the report names the first bad entry):

* a stored hash that does not match the entry's content — an **edited** entry;
* a sequence number that skips — **deleted** entries; one that repeats or goes back —
  **reordered** or **inserted** entries;
* a ``prev_hash`` that does not link to the previous entry's hash — an entry **inserted**,
  removed or moved before it with the numbering repaired;
* an entry whose hash differs from a signed checkpoint at its sequence number — the chain was
  **rewritten** (every hash recomputed) by someone without the audit key;
* a log that ends before the chain head or before the newest signed checkpoint — a **truncated**
  tail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from ca.audit.chain import GENESIS_HASH, AuditEntry, entry_hash

__all__ = [
    "Checkpoint",
    "Problem",
    "StoredEntry",
    "VerifyReport",
    "checkpoint_message",
    "verify_audit_signature",
    "verify_checkpoint_signature",
    "verify_entries",
]


@dataclass(frozen=True, slots=True)
class StoredEntry:
    entry: AuditEntry
    hash: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "the chain had ``seq`` entries and its head was ``head_hash`` at ``at``"."""

    seq: int
    head_hash: str
    at: dt.datetime
    signature: bytes
    key_sha256: str
    """SHA-256 of the audit public key (SubjectPublicKeyInfo DER) that signed it."""


def checkpoint_message(seq: int, head_hash: str, at: dt.datetime) -> bytes:
    """The exact bytes an audit checkpoint signs (domain-separated, canonical)."""
    when = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"qtsp-audit-checkpoint/v1\nseq={seq}\nhead={head_hash}\nat={when}\n".encode("ascii")


def verify_audit_signature(public_key: CertificatePublicKeyTypes, signature: bytes, data: bytes) -> bool:
    """Check a signature made with the audit key (checkpoints, ceremony reports): ECDSA with SHA-256
    (P-256) or SHA-384 (larger curves), or RSA PKCS#1 v1.5 with SHA-256."""
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            digest: hashes.HashAlgorithm = hashes.SHA384() if public_key.curve.key_size > 256 else hashes.SHA256()
            public_key.verify(signature, data, ec.ECDSA(digest))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True


def verify_checkpoint_signature(checkpoint: Checkpoint, public_key: CertificatePublicKeyTypes) -> bool:
    message = checkpoint_message(checkpoint.seq, checkpoint.head_hash, checkpoint.at)
    return verify_audit_signature(public_key, checkpoint.signature, message)


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int | None
    kind: str
    """``edited``, ``deleted``, ``inserted``, ``reordered``, ``rewritten``, ``truncated``, ``bad-checkpoint``."""
    message: str


@dataclass
class VerifyReport:
    entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_hash: str | None = None
    checkpoints_verified: int = 0
    problem: Problem | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_entries(
    entries: Iterable[StoredEntry],
    *,
    anchor_seq: int = 0,
    anchor_hash: str = GENESIS_HASH,
    checkpoints: Sequence[Checkpoint] = (),
    keys: Mapping[str, CertificatePublicKeyTypes] | None = None,
    head: tuple[int, str] | None = None,
) -> VerifyReport:
    """Recompute the chain from ``(anchor_seq, anchor_hash)`` and check it against the checkpoints
    (signature with the audit key named by their ``key_sha256`` in ``keys``, hash at their
    sequence number) and the stored head.

    Streams ``entries`` (ordered by storage order, not re-sorted: a reordering must show).  Stops
    at the first problem.
    """
    report = VerifyReport()
    keys = keys or {}
    for c in checkpoints:
        key = keys.get(c.key_sha256)
        if key is None:
            report.problem = Problem(
                c.seq, "bad-checkpoint", f"checkpoint at entry {c.seq}: unknown audit key {c.key_sha256}"
            )
            return report
        if not verify_checkpoint_signature(c, key):
            report.problem = Problem(
                c.seq, "bad-checkpoint", f"checkpoint at entry {c.seq}: signature does not verify with the audit key"
            )
            return report
    by_seq = {c.seq: c for c in checkpoints}
    expected_seq = anchor_seq + 1
    prev = anchor_hash
    for stored in entries:
        e = stored.entry
        report.first_seq = e.seq if report.first_seq is None else report.first_seq
        if e.seq != expected_seq:
            if e.seq > expected_seq:
                gap = f"{expected_seq}" if e.seq == expected_seq + 1 else f"{expected_seq}..{e.seq - 1}"
                report.problem = Problem(expected_seq, "deleted", f"entries {gap} are missing (deleted)")
            else:
                report.problem = Problem(
                    e.seq, "reordered", f"entry {e.seq} appears after entry {expected_seq - 1} (reordered or inserted)"
                )
            return report
        if e.prev_hash != prev:
            report.problem = Problem(
                e.seq,
                "inserted",
                f"entry {e.seq}: prev_hash does not link to entry {e.seq - 1} "
                "(an entry was inserted, removed or moved before it)",
            )
            return report
        computed = entry_hash(e)
        if computed != stored.hash:
            report.problem = Problem(
                e.seq, "edited", f"entry {e.seq} ({e.action}): content does not match its hash (edited)"
            )
            return report
        checkpoint = by_seq.get(e.seq)
        if checkpoint is not None:
            if checkpoint.head_hash != computed:
                report.problem = Problem(
                    e.seq,
                    "rewritten",
                    f"entry {e.seq}: hash differs from the signed checkpoint of {checkpoint.at.isoformat()} "
                    "(the chain was rewritten)",
                )
                return report
            report.checkpoints_verified += 1
        prev = computed
        expected_seq += 1
        report.entries += 1
        report.last_seq = e.seq
    report.head_hash = prev
    last = expected_seq - 1
    beyond = [c for c in checkpoints if c.seq > last]
    if beyond:
        c = max(beyond, key=lambda c: c.seq)
        report.problem = Problem(
            last + 1,
            "truncated",
            f"the log ends at entry {last} but a checkpoint signed at {c.at.isoformat()} covers {c.seq} entries "
            "(truncated tail)",
        )
        return report
    if head is not None:
        head_seq, head_hash = head
        if head_seq > last:
            report.problem = Problem(
                last + 1,
                "truncated",
                f"the log ends at entry {last} but the chain head says {head_seq} (truncated tail)",
            )
        elif head_seq < last or head_hash != prev:
            report.problem = Problem(
                head_seq, "rewritten", f"the chain head ({head_seq}) does not match the last entry ({last})"
            )
    return report
