"""The hash-chained audit log (hashing rules; the table is in :mod:`ca.store`)."""

from ca.audit.chain import GENESIS_HASH, AuditEntry, canonical_details, entry_hash

__all__ = ["GENESIS_HASH", "AuditEntry", "canonical_details", "entry_hash"]
