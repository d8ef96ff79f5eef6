"""The audit chain's hashing rule (pure; storage lives in :mod:`ca.store`).

Each entry's hash is ``SHA-256(prev_hash || canonical JSON of the entry)``.  The canonical JSON
has sorted keys, no insignificant whitespace, UTF-8, and the time as ISO 8601 UTC with
microseconds, so the same entry always hashes the same on every database and machine.  The first
entry's ``prev_hash`` is :data:`GENESIS_HASH` (EN 319 401 REQ-7.10-02: integrity of records).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["GENESIS_HASH", "AuditEntry", "canonical_details", "entry_hash"]

GENESIS_HASH: Final = "0" * 64

JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]


def canonical_details(details: Mapping[str, JSONValue]) -> str:
    """Canonical JSON for the details column (sorted keys, compact, UTF-8 kept)."""
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: dt.datetime
    actor: str
    role: str
    action: str
    object_type: str | None
    object_id: str | None
    details: str
    """Already canonical JSON (see :func:`canonical_details`)."""
    prev_hash: str


def entry_hash(entry: AuditEntry) -> str:
    """The hash that chains ``entry`` to its predecessor."""
    if entry.at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware UTC")
    body = json.dumps(
        {
            "seq": entry.seq,
            "at": entry.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": entry.actor,
            "role": entry.role,
            "action": entry.action,
            "object_type": entry.object_type,
            "object_id": entry.object_id,
            "details": entry.details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(bytes.fromhex(entry.prev_hash) + body.encode("utf-8")).hexdigest()
