"""Dual-control key ceremonies (issue 5 point 4; EN 319 411-1 GEN-6.5.1-13A, EN 319 401 §7.5
dual control for critical CA operations).

With the PKCS#11 backend no single person can run ``qtsp init``: the token PIN is split into
shares (XOR secret sharing, every share needed), each handed to one named key custodian by
``qtsp ceremony split-pin``.  ``qtsp init`` then takes at least two share files of *distinct*
custodians, recombines the PIN in memory, and ignores any PIN in the environment or in a file.
A share alone reveals nothing about the PIN.  With the soft backend (development and demo only)
one operator suffices and the report says so, so ``make run`` stays one command.

Every ceremony ends with a report (roles, date, key inventory with SHA-256 fingerprints, token
identity, settings) signed with the audit key, written under ``<home>/ceremonies/`` and
referenced from the audit log; ``qtsp ceremony verify`` checks it against the root certificate.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ca.audit.verify import verify_audit_signature

__all__ = [
    "SHARE_FORMAT",
    "CeremonyError",
    "Custodian",
    "combine_shares",
    "in_memory_custodians",
    "read_share",
    "split_secret",
    "verify_report",
    "write_shares",
]

SHARE_FORMAT: Final = "qtsp-secret-share/v1"
REPORT_FORMAT: Final = "qtsp-ceremony-report/v1"


class CeremonyError(Exception):
    """A ceremony precondition failed (one line for the operator)."""


@dataclass(frozen=True, slots=True)
class Custodian:
    """A key custodian taking part in a ceremony, with the PIN share they hold."""

    name: str
    share: bytes
    index: int
    of: int
    token_label: str


def split_secret(secret: bytes, count: int) -> list[bytes]:
    """``count`` shares whose XOR is ``secret``; any ``count - 1`` of them are uniformly random."""
    if count < 2:
        raise CeremonyError("dual control needs at least two shares")
    shares = [secrets.token_bytes(len(secret)) for _ in range(count - 1)]
    last = bytearray(secret)
    for share in shares:
        last = bytearray(a ^ b for a, b in zip(last, share, strict=True))
    return [*shares, bytes(last)]


def combine_shares(custodians: Sequence[Custodian]) -> bytes:
    """The secret from every share of one split, held by distinct custodians."""
    if len(custodians) < 2:
        raise CeremonyError("dual control: this ceremony needs the shares of at least two key custodians")
    names = [c.name for c in custodians]
    if len(set(names)) != len(names):
        raise CeremonyError(f"dual control: the custodians must be distinct people (got {', '.join(names)})")
    of = {c.of for c in custodians}
    labels = {c.token_label for c in custodians}
    if len(of) != 1 or len(labels) != 1:
        raise CeremonyError("the shares belong to different splits (share count or token differ)")
    (total,) = of
    if sorted(c.index for c in custodians) != list(range(1, total + 1)):
        raise CeremonyError(f"all {total} shares of the split are needed, each once")
    length = {len(c.share) for c in custodians}
    if len(length) != 1:
        raise CeremonyError("the shares have different lengths")
    out = bytearray(len(custodians[0].share))
    for c in custodians:
        out = bytearray(a ^ b for a, b in zip(out, c.share, strict=True))
    return bytes(out)


def write_shares(secret: bytes, operators: Sequence[str], token_label: str, out_dir: Path) -> list[Path]:
    """Split ``secret`` for ``operators`` and write one share file each (0600, never overwritten)."""
    if len(set(operators)) != len(operators):
        raise CeremonyError("each custodian must be named once")
    shares = split_secret(secret, len(operators))
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = []
    for index, (name, share) in enumerate(zip(operators, shares, strict=True), start=1):
        path = out_dir / f"{name}.share"
        body = {
            "format": SHARE_FORMAT,
            "operator": name,
            "token_label": token_label,
            "index": index,
            "of": len(operators),
            "share": base64.b64encode(share).decode(),
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(body, fh)
        paths.append(path)
    return paths


def read_share(path: Path, operator: str) -> Custodian:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("format") != SHARE_FORMAT:
            raise CeremonyError(f"{path}: not a {SHARE_FORMAT} file")
        if body["operator"] != operator:
            raise CeremonyError(f"{path}: this share belongs to {body['operator']}, not {operator}")
        return Custodian(
            name=operator,
            share=base64.b64decode(body["share"], validate=True),
            index=int(body["index"]),
            of=int(body["of"]),
            token_label=str(body["token_label"]),
        )
    except OSError as exc:
        raise CeremonyError(f"{path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CeremonyError(f"{path}: malformed share file ({type(exc).__name__})") from None


def in_memory_custodians(
    secret: bytes, token_label: str, names: Sequence[str] = ("custodian-a", "custodian-b")
) -> list[Custodian]:
    """Shares made and used in one process (benchmarks and test fixtures, never a real ceremony)."""
    shares = split_secret(secret, len(names))
    return [
        Custodian(name=n, share=sh, index=i, of=len(names), token_label=token_label)
        for i, (n, sh) in enumerate(zip(names, shares, strict=True), start=1)
    ]


# ----------------------------------------------------------------------------------------------
# Reports


def report_bytes(report: dict[str, Any]) -> bytes:
    return json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def verify_report(path: Path, root: x509.Certificate | None) -> dict[str, Any]:
    """Check a signed ceremony report; return the report.

    :raises CeremonyError: malformed, the signature does not verify with the audit certificate in
        the file, or that certificate is not issued by ``root``.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        report = doc["report"]
        signature = base64.b64decode(doc["signature"])
        cert = x509.load_der_x509_certificate(base64.b64decode(doc["audit_certificate"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CeremonyError(f"{path}: not a readable ceremony report ({type(exc).__name__})") from None
    if report.get("format") != REPORT_FORMAT:
        raise CeremonyError(f"{path}: not a {REPORT_FORMAT} report")
    if root is not None:
        try:
            cert.verify_directly_issued_by(root)
        except (InvalidSignature, ValueError, TypeError):
            raise CeremonyError("the report's audit certificate is not issued by this root CA") from None
    if not verify_audit_signature(cert.public_key(), signature, report_bytes(report)):
        raise CeremonyError("the ceremony report's signature does not verify: it was altered")
    return dict(report)


def report_sha256(report: dict[str, Any]) -> str:
    return hashlib.sha256(report_bytes(report)).hexdigest()
