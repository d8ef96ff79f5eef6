"""Audit key, signed checkpoints, verification and export (issue 5 points 1–2).

* The audit key lives in the key backend like every CA key; its certificate is issued by the
  root CA, so an auditor holding the root certificate can check an exported log offline.
* A checkpoint signs the chain head (sequence number and hash) under the appenders' lock, so it
  names a real prefix of the chain; it is itself recorded in the log (``audit.checkpoint``).
* :meth:`AuditService.verify` streams the whole table through :func:`ca.audit.verify.verify_entries`.
* An export is JSON Lines: a header (format, range, anchor, audit certificates), the entries, and
  the checkpoints in range; :func:`verify_export` checks it with no database.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from ca.audit.chain import GENESIS_HASH, AuditEntry
from ca.audit.verify import Checkpoint, StoredEntry, VerifyReport, checkpoint_message, verify_entries
from ca.issuance.builder import key_usage
from ca.issuance.csr import spki_sha256
from ca.issuance.hierarchy import HierarchySettings, ca_signing_key, record_key
from ca.issuance.serial import new_serial
from ca.issuance.service import Actor, Clock, system_clock
from ca.store import audit_repo
from ca.store import repository as repo
from ca.store.db import Database
from hsm import KeyBackend, KeyRef, SigningKey
from hsm.api import KeyAlgorithm

__all__ = ["EXPORT_FORMAT", "AuditService", "ExportSummary", "verify_export"]

EXPORT_FORMAT: Final = "qtsp-audit-export/v1"


def _sign(key: SigningKey, message: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        digest: hashes.HashAlgorithm = hashes.SHA384() if key.curve.key_size > 256 else hashes.SHA256()
        return key.sign(message, ec.ECDSA(digest))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    raise TypeError("unsupported audit key type")


@dataclass(frozen=True, slots=True)
class ExportSummary:
    path: Path
    entries: int
    checkpoints: int
    first_seq: int | None
    last_seq: int | None


@dataclass
class AuditService:
    db: Database
    backend: KeyBackend
    clock: Clock = system_clock

    # -- the audit key ---------------------------------------------------------------------------

    def ensure_signer(self, settings: HierarchySettings, actor: Actor) -> audit_repo.SignerSnapshot:
        """The current audit signer; generate its key in the backend and have the root CA certify
        it on first use (recorded as a ceremony event)."""
        with self.db.read() as s:
            current = audit_repo.current_signer(s)
            root = next((c for c in repo.list_cas(s) if c.role == "root"), None)
        if current is not None:
            return current
        if root is None:
            raise LookupError("no CA hierarchy: run qtsp init first")
        now = self.clock().replace(microsecond=0)
        algorithm: KeyAlgorithm = settings.ocsp_algorithm
        ref = self.backend.generate(f"audit-{now.strftime('%Y%m%dT%H%M%SZ')}", algorithm)
        key = self.backend.signing_key(ref)
        root_cert = x509.load_der_x509_certificate(root.certificate_der)
        _, root_key = ca_signing_key(self.backend, root)
        root_ski = root_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.COUNTRY_NAME, settings.country),
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, settings.organization_name),
                        x509.NameAttribute(NameOID.COMMON_NAME, f"{settings.organization_name} Audit Log Signer"),
                    ]
                )
            )
            .issuer_name(root_cert.subject)
            .public_key(key.public_key())
            .serial_number(new_serial())
            .not_valid_before(now)
            .not_valid_after(root_cert.not_valid_after_utc)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                key_usage("digitalSignature", "contentCommitment"),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
            .sign(root_key, KeyAlgorithm(root.key.algorithm).default_hash())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        key_sha = spki_sha256(cert.public_key())
        with self.db.write() as s:
            key_ref_id = record_key(s, ref=ref, purpose="audit", cert=cert, at=now)
            audit_repo.add_signer(
                s,
                key_ref_id=key_ref_id,
                certificate_der=der,
                key_sha256=key_sha,
                not_after=cert.not_valid_after_utc,
                at=now,
            )
            repo.append_audit(
                s,
                at=now,
                actor=actor.name,
                role=actor.role,
                action="ceremony.audit_key_created",
                object_type="audit_key",
                object_id=ref.label,
                details={
                    "label": ref.label,
                    "algorithm": ref.algorithm.value,
                    "backend": ref.backend,
                    "token": ref.token,
                    "public_key_sha256": key_sha,
                    "certificate_sha256": hashlib.sha256(der).hexdigest(),
                },
            )
        with self.db.read() as s:
            signer = audit_repo.current_signer(s)
        assert signer is not None
        return signer

    def _signing_key(self, signer: audit_repo.SignerSnapshot) -> SigningKey:
        return self.backend.signing_key(
            KeyRef(
                backend=signer.key_backend,
                label=signer.key_label,
                key_id=signer.key_id,
                algorithm=KeyAlgorithm(signer.algorithm),
                token=signer.key_token,
            )
        )

    def sign(self, settings: HierarchySettings, actor: Actor, data: bytes) -> tuple[bytes, bytes]:
        """Sign ``data`` (a ceremony report) with the audit key: (signature, audit certificate DER)."""
        signer = self.ensure_signer(settings, actor)
        return _sign(self._signing_key(signer), data), signer.certificate_der

    # -- checkpoints -------------------------------------------------------------------------------

    def checkpoint(self, settings: HierarchySettings, actor: Actor) -> Checkpoint:
        """Sign the current chain head with the audit key and record it."""
        signer = self.ensure_signer(settings, actor)
        key = self._signing_key(signer)
        with self.db.write() as s:
            seq, head_hash = audit_repo.lock_head(s)
            at = self.clock()
            signature = _sign(key, checkpoint_message(seq, head_hash, at))
            audit_repo.add_checkpoint(
                s, seq=seq, head_hash=head_hash, at=at, signer_id=signer.id, signature=signature, created_by=actor.name
            )
            repo.append_audit(
                s,
                at=at,
                actor=actor.name,
                role=actor.role,
                action="audit.checkpoint",
                object_type="audit_checkpoint",
                object_id=str(seq),
                details={"seq": seq, "head_hash": head_hash, "audit_key_sha256": signer.key_sha256},
            )
        return Checkpoint(seq, head_hash, at, signature, signer.key_sha256)

    # -- verification ----------------------------------------------------------------------------

    def _keys(self) -> tuple[dict[str, CertificatePublicKeyTypes], list[bytes]]:
        with self.db.read() as s:
            signers = audit_repo.signers(s)
        certs = [x.certificate_der for x in signers]
        keys = {x.key_sha256: x509.load_der_x509_certificate(x.certificate_der).public_key() for x in signers}
        return keys, certs

    def verify(self) -> VerifyReport:
        keys, _ = self._keys()
        with self.db.read() as s:
            head = audit_repo.head(s)
            checkpoints = audit_repo.checkpoints(s)
            report = verify_entries(audit_repo.iter_entries(s), checkpoints=checkpoints, keys=keys, head=head)
        if not checkpoints:
            report.notes.append("no signed checkpoint yet: a truncated tail is detected only against the chain head")
        return report

    # -- export ----------------------------------------------------------------------------------

    def export(self, out: Path, *, since: dt.datetime | None = None, until: dt.datetime | None = None) -> ExportSummary:
        keys, certs = self._keys()
        del keys
        tmp = out.with_name(out.name + ".tmp")
        entries = 0
        first: int | None = None
        last: int | None = None
        with self.db.read() as s, tmp.open("w", encoding="utf-8") as fh:
            rows = audit_repo.iter_entries(s, since=since, until=until)
            buffered: list[StoredEntry] = []
            peek = next(rows, None)
            anchor = audit_repo.anchor_before(s, peek.entry.seq) if peek is not None else None
            _write(
                fh,
                {
                    "type": "header",
                    "format": EXPORT_FORMAT,
                    "exported_at": self.clock().isoformat(),
                    "since": since.isoformat() if since else None,
                    "until": until.isoformat() if until else None,
                    "anchor_seq": anchor[0] if anchor else 0,
                    "anchor_hash": anchor[1] if anchor else GENESIS_HASH,
                    "audit_certificates": [base64.b64encode(c).decode() for c in certs],
                },
            )
            if peek is not None:
                buffered.append(peek)
            for stored in _chain(buffered, rows):
                first = stored.entry.seq if first is None else first
                last = stored.entry.seq
                entries += 1
                _write(fh, _entry_json(stored))
            checkpoints = [
                c
                for c in audit_repo.checkpoints(s)
                if first is not None and last is not None and first <= c.seq <= last
            ]
            for c in checkpoints:
                _write(
                    fh,
                    {
                        "type": "checkpoint",
                        "seq": c.seq,
                        "head_hash": c.head_hash,
                        "at": c.at.astimezone(dt.UTC).isoformat(),
                        "signature": base64.b64encode(c.signature).decode(),
                        "key_sha256": c.key_sha256,
                    },
                )
        tmp.replace(out)
        return ExportSummary(out, entries, len(checkpoints), first, last)


def _chain(head: list[StoredEntry], rest: Iterator[StoredEntry]) -> Iterator[StoredEntry]:
    yield from head
    yield from rest


def _write(fh: IO[str], obj: dict[str, Any]) -> None:
    fh.write(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n")


def _entry_json(stored: StoredEntry) -> dict[str, Any]:
    e = stored.entry
    return {
        "type": "event",
        "seq": e.seq,
        "at": e.at.astimezone(dt.UTC).isoformat(),
        "actor": e.actor,
        "role": e.role,
        "action": e.action,
        "object_type": e.object_type,
        "object_id": e.object_id,
        "details": e.details,
        "prev_hash": e.prev_hash,
        "hash": stored.hash,
    }


class ExportError(Exception):
    """The export file is not a readable audit export (one line for the operator)."""


def verify_export(path: Path, *, trusted_root: x509.Certificate | None = None) -> VerifyReport:
    """Verify an export offline: chain from its anchor, checkpoints with the audit certificates in
    the file — which must chain to ``trusted_root`` when given (otherwise the report says the key
    was taken from the file itself)."""
    with path.open(encoding="utf-8") as fh:
        lines = (json.loads(line) for line in fh if line.strip())
        try:
            header = next(lines)
        except StopIteration:
            raise ExportError(f"{path}: empty file") from None
        except json.JSONDecodeError as exc:
            raise ExportError(f"{path}: not JSON Lines ({exc})") from None
        if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
            raise ExportError(f"{path}: not a {EXPORT_FORMAT} file")
        certs = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header.get("audit_certificates", [])]
        notes: list[str] = []
        if trusted_root is not None:
            for cert in certs:
                try:
                    cert.verify_directly_issued_by(trusted_root)
                except Exception as exc:  # InvalidSignature, ValueError, TypeError
                    raise ExportError(
                        f"audit certificate {cert.subject.rfc4514_string()} is not issued by the root: {exc}"
                    ) from None
        else:
            notes.append("audit certificates taken from the file itself: pass --root to anchor them to the root CA")
        keys = {spki_sha256(c.public_key()): c.public_key() for c in certs}
        events: list[StoredEntry] = []
        checkpoints: list[Checkpoint] = []
        try:
            for obj in lines:
                kind = obj.get("type")
                if kind == "event":
                    events.append(
                        StoredEntry(
                            AuditEntry(
                                seq=int(obj["seq"]),
                                at=dt.datetime.fromisoformat(obj["at"]),
                                actor=obj["actor"],
                                role=obj["role"],
                                action=obj["action"],
                                object_type=obj["object_type"],
                                object_id=obj["object_id"],
                                details=obj["details"],
                                prev_hash=obj["prev_hash"],
                            ),
                            obj["hash"],
                        )
                    )
                elif kind == "checkpoint":
                    checkpoints.append(
                        Checkpoint(
                            seq=int(obj["seq"]),
                            head_hash=obj["head_hash"],
                            at=dt.datetime.fromisoformat(obj["at"]),
                            signature=base64.b64decode(obj["signature"]),
                            key_sha256=obj["key_sha256"],
                        )
                    )
                else:
                    raise ExportError(f"{path}: unknown record type {kind!r}")
        except (KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
            raise ExportError(f"{path}: malformed record ({type(exc).__name__}: {exc})") from None
    report = verify_entries(
        events,
        anchor_seq=int(header.get("anchor_seq", 0)),
        anchor_hash=str(header.get("anchor_hash", GENESIS_HASH)),
        checkpoints=checkpoints,
        keys=keys,
    )
    report.notes.extend(notes)
    return report
