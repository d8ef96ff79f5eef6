"""The CRL publisher: full CRLs per issuing CA and the root's CA revocation list (CARL).

One publication is **one write transaction** (DESIGN.md step 8; STANDARDS.md §2.3, §2.6)::

    lock the CA's crl_state row                                  [lock]
    number = last_number + 1; thisUpdate = now (never before the previous CRL's)
    header by cryptography's CRL builder, signed with a throwaway key -> tbsCertList
    every status entry of the CA, streamed in serial order       [read]
    spliced in as stored at revocation time (ca.asn1.crl_entry)
    hash the TBS, sign the digest with the CA key in the backend [sign]
    assemble; parse with cryptography; verify with the CA key    [verify]
    pkilint's CRL validators (as ``lint_crl -p PKIX``)            [lint]      (any error: refused)
    CRL history row, crl_state advanced and cleared, audit       [store]     commit

Any failure rolls everything back: no history row, the CRL number is not consumed, the pending
mark stays, and a ``crl.publication_failed`` audit event records the refusal.  After the commit
the CRL (and the CA certificate) is written atomically to the publish directory.

**What is in a CRL.**  Version 2, issuer = the CA's subject, AKI = the CA's SKI, cRLNumber
(RFC 5280 §5.2.1, §5.2.3), thisUpdate/nextUpdate from the configuration (EN 319 411-1
CSS-6.3.9-06: nextUpdate always present), and every status entry of the CA: revocations, which are
final, and holds of not-activated certificates (certificateHold), which disappear on activation.
Expired revoked certificates are never removed (EN 319 411-2 CSS-6.3.10-03), so every CRL carries
ExpiredCertsOnCRL (2.5.29.60) = the CA certificate's notBefore (EN 319 411-2 CSS-6.3.10-05;
STANDARDS.md §2.6 item 3).  The root's CARL uses ``carl_next_update_days`` (EN 319 411-1
CSS-6.3.9-12: nextUpdate at most one year).

**Lint threshold.**  pkilint walks every node of the CRL: about 0.2 ms per entry here, and
superlinear (1,000 entries 0.2 s, 5,000 entries 1.6 s), so a CRL of a million entries would take
many minutes.  Up to :data:`LINT_FULL_MAX` entries the published DER itself is linted.  Above it
the *same header* (same tbsCertList up to nextUpdate, same extensions, same signature algorithm) is
linted with a bounded sample of the stored entries — the first :data:`LINT_SAMPLE_HEAD` and one
from each streamed batch, batches sized so that at most :data:`LINT_SAMPLE_SPREAD` more are taken
(about 1,000 entries, 0.2 s, whatever the CRL's size).  That loses nothing the lint could find:
each entry was encoded once, at revocation, by :func:`ca.asn1.crl_entry.crl_entry_der` from
validated values (positive serial of the CA, reason from RFC 5280 §5.3.1, UTC times), the
revocation tests parse every encoding back with cryptography, and the complete CRL is parsed and
its signature verified by cryptography before publication.  The lint report stored with the CRL
says which scope was linted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import fcntl
import hashlib
import json
import math
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ca.asn1.crl_entry import (
    assemble_signed,
    assemble_signed_parts,
    generalized_time_der,
    signature_algorithm_der,
    splice_entries,
    tbs_parts,
    tbs_span,
)
from ca.audit.chain import JSONValue
from ca.findings import Finding, Severity, errors_in, format_findings
from ca.issuance.hierarchy import ca_signing_key
from ca.issuance.service import Actor, Clock, system_clock
from ca.issuance.throwaway import throwaway_key
from ca.store import crl_repo
from ca.store import repository as repo
from ca.store.db import Database, StoreError, UnitOfWork
from hsm import HSMError, HSMUnavailable, KeyAlgorithm, KeyBackend, SigningKey
from hsm.signing import sign, signature_valid

__all__ = [
    "EXPIRED_CERTS_ON_CRL",
    "LAST_NEXT_UPDATE",
    "LINT_FULL_MAX",
    "STEPS",
    "CRLError",
    "CRLErrorKind",
    "CRLLinter",
    "CRLPublisher",
    "CRLSettings",
    "PublishedCRL",
    "StoredCRL",
]

#: X.509 (10/2019) §9.3.21 expiredCertsOnCRL; EN 319 411-2 CSS-6.3.10-05 requires it when expired
#: certificates are kept on the CRL (STANDARDS.md §1.1: not 2.5.29.27, which is deltaCRLIndicator).
EXPIRED_CERTS_ON_CRL: Final = x509.ObjectIdentifier("2.5.29.60")

#: EN 319 411-1 CSS-6.3.9-06 / EN 319 411-2 CSS-6.3.10-07: the last CRL's nextUpdate,
#: 99991231235959Z (RFC 5280 §4.1.2.5 "no well-defined expiration date"; GeneralizedTime).
LAST_NEXT_UPDATE: Final = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)

#: Lint the complete CRL up to this many entries; above, the header with a bounded sample.
LINT_FULL_MAX: Final = 1000
LINT_SAMPLE_HEAD: Final = 500
LINT_SAMPLE_SPREAD: Final = 500
#: Rows fetched per round trip when streaming entries (at least; more for very large CRLs).
MIN_BATCH: Final = 5000

STEPS: Final = ("lock", "read", "sign", "verify", "lint", "store")

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class CRLErrorKind(enum.Enum):
    NOT_FOUND = "not_found"
    CLOSED = "closed"
    """The CA is closed: its last CRL is final."""
    NOT_CLOSABLE = "not_closable"
    """A last CRL was asked for while a certificate of the CA is live or an issuance in progress."""
    LINT = "lint"
    HSM_UNAVAILABLE = "hsm_unavailable"
    INTERNAL = "internal"


class CRLError(Exception):
    """A refused or failed publication; ``str()`` is one line for the operator."""

    def __init__(self, kind: CRLErrorKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CRLSettings:
    """``[status]`` settings of the CRL publisher (``qtsp.config.StatusConfig``)."""

    next_update_days: int = 7
    """Issuing CAs: nextUpdate = thisUpdate + this (STANDARDS.md §2.3: at most 7 days recommended)."""
    carl_next_update_days: int = 30
    """The root's CARL: nextUpdate = thisUpdate + this (EN 319 411-1 CSS-6.3.9-12: at most 1 year)."""
    interval_seconds: int = 3600
    """Publish at least this often even without a change (EN 319 411-1 CSS-6.3.9-05: at least every 24 h)."""
    publish_dir: Path | None = None
    """Also write ``crl/<ca>.crl`` and ``ca/<ca>.crt`` here (static hosting), or None."""


@dataclass(frozen=True, slots=True)
class PublishedCRL:
    issuer: str
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    entries: int
    size: int
    sha256: str
    lint_scope: str
    findings: tuple[Finding, ...]
    """Non-blocking findings (warnings, notices) of the lint."""
    path: Path | None = None
    """Where the CRL was written in the publish directory (None: no directory, or a newer CRL won)."""
    file_error: str | None = None
    """Writing the publish directory failed (the CRL is published and served all the same)."""


@dataclass(frozen=True, slots=True)
class StoredCRL:
    """A CRL from the history."""

    issuer: str
    der: bytes
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    sha256: str
    entries: int
    published_by: str
    lint_report: str


# ----------------------------------------------------------------------------------------------
# pkilint


class CRLLinter:
    """pkilint's RFC 5280 CRL validators, as its ``lint_crl --profile PKIX`` builds them.

    Built once per process (:meth:`shared`) and reused; pkilint is imported only on first use.
    """

    _shared: CRLLinter | None = None
    _shared_lock = threading.Lock()

    def __init__(self) -> None:
        from pkilint import pkix
        from pkilint.pkix import crl, extension, name

        self._container = crl.create_pkix_crl_validator_container(
            [
                pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
                pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
            ],
            [
                crl.create_issuer_validator_container([]),
                crl.create_validity_validator_container([]),
                crl.create_extensions_validator_container([]),
            ],
        )
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> CRLLinter:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def lint(self, der: bytes) -> list[Finding]:
        from pkilint import loader

        try:
            with self._lock:
                doc = loader.RFC5280CertificateListDocumentLoader().load_der_document(der, "crl")
                results = self._container.validate(doc.root)
        except Exception as exc:
            return [Finding(Severity.FATAL, "pkilint.exception", f"pkilint could not lint the CRL: {exc}", "pkilint")]
        out: list[Finding] = []
        for result in results:
            for desc in result.finding_descriptions:
                code = str(desc.finding.code)
                message = f"pkilint {code} at {result.node.path}" + (f": {desc.message}" if desc.message else "")
                out.append(Finding(Severity[desc.finding.severity.name], code, message, source="pkilint"))
        return out


# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Authority:
    id: int
    name: str
    role: str
    certificate: x509.Certificate
    certificate_der: bytes
    algorithm: KeyAlgorithm
    key: SigningKey


def _atomic_write(path: Path, data: bytes) -> None:
    """tmp file in the same directory, fsync, rename: readers see the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass
class CRLPublisher:
    """Publishes, stores and looks up CRLs.

    :param faults: test hook called with each step name (:data:`STEPS`) before the step runs; it
        may raise (an injected failure).
    """

    db: Database
    backend: KeyBackend
    settings: CRLSettings = field(default_factory=CRLSettings)
    clock: Clock = system_clock
    faults: Callable[[str], None] | None = None
    linter: CRLLinter | None = None
    _authorities: dict[str, _Authority] = field(default_factory=dict, init=False, repr=False)

    def _step(self, name: str) -> None:
        if self.faults is not None:
            self.faults(name)

    def _linter(self) -> CRLLinter:
        if self.linter is None:
            self.linter = CRLLinter.shared()
        return self.linter

    def ca_names(self) -> list[str]:
        """Every CA of the hierarchy, issuing CAs first and the root (its CARL) last."""
        with self.db.read() as s:
            cas = repo.list_cas(s)
        return [c.name for c in cas if c.role != "root"] + [c.name for c in cas if c.role == "root"]

    def open_ca_names(self) -> list[str]:
        """:meth:`ca_names` without the closed CAs (their last CRL is published)."""
        with self.db.read() as s:
            closed = crl_repo.closed_ca_names(s)
        return [n for n in self.ca_names() if n not in closed]

    def closed_since(self, name: str) -> dt.datetime | None:
        """When the CA published its last CRL, or None while it is open."""
        with self.db.read() as s:
            state = crl_repo.read_states(s).get(name)
        return state.closed_at if state else None

    def _authority(self, name: str) -> _Authority:
        found = self._authorities.get(name)
        if found is not None:
            return found
        with self.db.read() as s:
            ca = next((c for c in repo.list_cas(s) if c.name == name), None)
        if ca is None:
            raise CRLError(CRLErrorKind.NOT_FOUND, f"no CA named {name!r}")
        algorithm, key = ca_signing_key(self.backend, ca)
        found = _Authority(
            id=ca.id,
            name=ca.name,
            role=ca.role,
            certificate=x509.load_der_x509_certificate(ca.certificate_der),
            certificate_der=ca.certificate_der,
            algorithm=algorithm,
            key=key,
        )
        self._authorities[name] = found
        return found

    def _due(self, state: crl_repo.CRLStateSnapshot, now: dt.datetime) -> bool:
        """A change awaits publication (any age: publish promptly), or the interval has passed."""
        if state.pending_since is not None or state.last_published_at is None:
            return True
        return now - state.last_published_at >= dt.timedelta(seconds=self.settings.interval_seconds)

    def _header(
        self, ca: _Authority, number: int, this_update: dt.datetime, *, last: bool = False
    ) -> x509.CertificateRevocationListBuilder:
        days = self.settings.carl_next_update_days if ca.role == "root" else self.settings.next_update_days
        ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.certificate.subject)
            .last_update(this_update)
            # EN 319 411-1 CSS-6.3.9-06: every CRL states the next scheduled issue, except the
            # last one, whose nextUpdate is 99991231235959Z.
            .next_update(LAST_NEXT_UPDATE if last else this_update + dt.timedelta(days=days))
            # RFC 5280 §5.2.1: AKI required, from the CA's SKI.
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            # RFC 5280 §5.2.3: cRLNumber required, monotonically increasing, non-critical.
            .add_extension(x509.CRLNumber(number), critical=False)
            # EN 319 411-2 CSS-6.3.10-05: expired certificates are kept, so ExpiredCertsOnCRL is present.
            .add_extension(
                x509.UnrecognizedExtension(
                    EXPIRED_CERTS_ON_CRL, generalized_time_der(ca.certificate.not_valid_before_utc)
                ),
                critical=False,
            )
        )

    # ------------------------------------------------------------------------------------------

    def publish(self, issuer_name: str, actor: Actor, *, force: bool = False) -> PublishedCRL | None:
        """Publish the CA's next CRL; without ``force`` only when it is due (see :meth:`publish_due`).

        :returns: the published CRL, or None when not forced and nothing was due.
        :raises CRLError: unknown CA, lint refusal, key backend failure, signature mismatch.
        """
        return self._publish_and_write(self._authority(issuer_name), actor, force, last=False)

    def publish_last(self, issuer_name: str, actor: Actor) -> PublishedCRL:
        """Publish the CA's **last CRL** and close the CA (its end of life; STANDARDS.md §2.6 item 5).

        EN 319 411-2 CSS-6.3.10-07: only once every certificate the CA issued (end entities, its
        OCSP responder certificates, CA certificates) is expired or revoked, and no issuance is in
        progress (an unsettled serial reservation); a certificate on hold is not final and counts
        as live.  The CRL lists every status entry as always, with nextUpdate 99991231235959Z
        (EN 319 411-1 CSS-6.3.9-06).  In the same transaction the CA is marked closed: afterwards
        it publishes no CRL, reserves no serial, renews no responder and changes no status — the
        last CRL stays true for good and is served as the CA's CRL (CSS-6.3.10-08: keep it
        available).  Irreversible.

        Concurrency: the CRL state row is locked first (publishers, revocations and activations
        queue behind it and, once it commits, see the CA closed); on PostgreSQL new serial
        reservations are held off for the transaction (:func:`ca.store.crl_repo.freeze_issuance`).

        :raises CRLError: NOT_CLOSABLE (live certificates, named; an issuance in progress),
            CLOSED (already closed), and the failures of :meth:`publish`.
        """
        published = self._publish_and_write(self._authority(issuer_name), actor, True, last=True)
        assert published is not None
        return published

    def _publish_and_write(self, ca: _Authority, actor: Actor, force: bool, *, last: bool) -> PublishedCRL | None:
        try:
            result = self._publish(ca, actor, force, last=last)
        except CRLError as exc:
            self._audit_failure(ca, actor, exc.kind.value, exc.detail)
            raise
        except HSMUnavailable as exc:
            self._audit_failure(ca, actor, "hsm_unavailable", str(exc))
            raise CRLError(CRLErrorKind.HSM_UNAVAILABLE, f"key backend unavailable: {exc}") from exc
        except HSMError as exc:
            self._audit_failure(ca, actor, "hsm_error", str(exc))
            raise CRLError(CRLErrorKind.INTERNAL, f"key backend error: {exc}") from exc
        if result is None:
            return None
        published, der = result
        return self._write_files(ca, published, der)

    def _publish(
        self, ca: _Authority, actor: Actor, force: bool, *, last: bool = False
    ) -> tuple[PublishedCRL, bytes] | None:
        hash_alg = ca.algorithm.default_hash()
        throwaway = throwaway_key(ca.algorithm)
        with self.db.write() as s:
            self._step("lock")
            state = crl_repo.lock_state(s, ca.id)
            if state is None:
                raise CRLError(CRLErrorKind.INTERNAL, f"CA {ca.name} has no CRL state row")
            if state.closed_at is not None:
                if not force:
                    return None  # never due again
                raise CRLError(
                    CRLErrorKind.CLOSED,
                    f"CA {ca.name} is closed since {state.closed_at.isoformat()}: its last CRL "
                    f"#{state.last_number} is final (EN 319 411-2 CSS-6.3.10-07)",
                )
            now = self.clock()
            if not force and not self._due(state, now):
                return None
            in_scope = 0
            if last:
                in_scope = self._closable(s, ca, now)
            number = state.last_number + 1
            previous = crl_repo.last_this_update(s, ca.id) or _EPOCH
            # Under the row lock: thisUpdate never goes back, in number (= commit) order.
            this_update = max(now.astimezone(dt.UTC).replace(microsecond=0), previous)
            shell = self._header(ca, number, this_update, last=last).sign(throwaway, hash_alg)
            shell_tbs = shell.tbs_certlist_bytes
            algorithm_der = signature_algorithm_der(shell.public_bytes(serialization.Encoding.DER))
            next_update = shell.next_update_utc
            assert next_update is not None

            self._step("read")
            total = crl_repo.count_entries(s, ca.id)
            batch = max(MIN_BATCH, math.ceil(total / LINT_SAMPLE_SPREAD))
            chunks: list[bytes] = []
            sample: list[bytes] = []
            count = 0
            for rows in crl_repo.entry_batches(s, ca.id, batch):
                chunks.append(b"".join(rows))
                # The lint sample: the first LINT_SAMPLE_HEAD entries, then the first of each batch.
                sample.extend(rows[: LINT_SAMPLE_HEAD - count] if count < LINT_SAMPLE_HEAD else rows[:1])
                count += len(rows)
            parts = tbs_parts(shell_tbs, chunks)

            self._step("sign")
            hasher = hashlib.new(hash_alg.name)
            for part in parts:
                hasher.update(part)
            signature = sign(ca.key, hasher.digest(), Prehashed(hash_alg))
            der = assemble_signed_parts(parts, algorithm_der, signature)
            del parts, chunks

            self._step("verify")
            self._verify(ca, der, number, this_update, hash_alg)

            self._step("lint")
            if count <= LINT_FULL_MAX:
                scope = f"complete CRL ({count} entries)"
                findings = self._linter().lint(der)
            else:
                scope = f"header with a sample of {len(sample)} of {count} entries"
                sample_tbs = splice_entries(shell_tbs, sample)
                sample_sig = sign(throwaway, hashlib.new(hash_alg.name, sample_tbs).digest(), Prehashed(hash_alg))
                findings = self._linter().lint(assemble_signed(sample_tbs, algorithm_der, sample_sig))
            blocking = errors_in(findings)
            if blocking:
                raise CRLError(
                    CRLErrorKind.LINT,
                    f"CRL {ca.name} #{number} refused by lint ({scope}): {format_findings(blocking)}",
                )
            report = json.dumps(
                {
                    "scope": scope,
                    "findings": [{"severity": f.severity.name, "code": f.code, "message": f.message} for f in findings],
                },
                separators=(",", ":"),
            )

            self._step("store")
            sha256 = hashlib.sha256(der).hexdigest()
            at = self.clock()
            crl_repo.add_crl(
                s,
                issuer_id=ca.id,
                number=number,
                this_update=this_update,
                next_update=next_update,
                entries=count,
                der=der,
                sha256=sha256,
                lint_report=report,
                published_by=actor.name,
                at=at,
            )
            crl_repo.mark_published(s, issuer_id=ca.id, number=number, at=at)
            if last:
                crl_repo.close(s, ca.id, at)
            details: dict[str, JSONValue] = {
                "issuer": ca.name,
                "kind": "CARL" if ca.role == "root" else "CRL",
                "number": number,
                "entries": count,
                "this_update": this_update.isoformat(),
                "next_update": next_update.isoformat(),
                "sha256": sha256,
                "size": len(der),
                "lint": scope,
                "pending_since": state.pending_since.isoformat() if state.pending_since else None,
            }
            if last:
                # The CA's end of life: what the auditor needs to see that the scope was complete.
                details.update(last=True, certificates=in_scope, closed_at=at.isoformat())
            repo.append_audit(  # the audit head is locked last (lock order: crl_state first)
                s,
                at=at,
                actor=actor.name,
                role=actor.role,
                action="crl.last_published" if last else "crl.published",
                object_type="crl",
                object_id=f"{ca.name}:{number}",
                details=details,
            )
        published = PublishedCRL(
            issuer=ca.name,
            number=number,
            this_update=this_update,
            next_update=next_update,
            entries=count,
            size=len(der),
            sha256=sha256,
            lint_scope=scope,
            findings=tuple(findings),
        )
        return published, der

    def _closable(self, s: UnitOfWork, ca: _Authority, now: dt.datetime) -> int:
        """Refuse the last CRL unless every certificate of the CA is expired or revoked at ``now``
        and no issuance is in progress; return how many certificates the CA has issued.  Runs
        under the CRL state row lock, after new reservations are held off."""
        crl_repo.freeze_issuance(s)
        pending = crl_repo.open_reservations(s, ca.id)
        if pending:
            raise CRLError(
                CRLErrorKind.NOT_CLOSABLE,
                f"CA {ca.name}: {pending} issuance(s) in progress (serials reserved, not settled); "
                "retry once they are settled (`qtsp ca recover` settles those a crash left)",
            )
        live, sample = crl_repo.live_certificates(s, ca.id, now)
        if live:
            more = f" and {live - len(sample)} more" if live > len(sample) else ""
            raise CRLError(
                CRLErrorKind.NOT_CLOSABLE,
                f"EN 319 411-2 CSS-6.3.10-07: a last CRL only once every certificate is expired or revoked; "
                f"CA {ca.name} has {live} certificate(s) neither expired nor revoked at {now.isoformat()} "
                f"(serials {', '.join(sample)}{more})",
            )
        return crl_repo.certificates(s, ca.id)

    @staticmethod
    def _verify(
        ca: _Authority, der: bytes, number: int, this_update: dt.datetime, hash_alg: hashes.HashAlgorithm
    ) -> None:
        """Parse what will be published and check the backend's signature with the CA certificate.

        The signature is checked over the tbsCertList bytes *inside the DER* (not over
        ``tbs_certlist_bytes``, which cryptography re-encodes: a second copy and a second of work
        for a million entries), so what is verified is exactly what is published.
        """
        try:
            crl = x509.load_der_x509_crl(der)
        except ValueError as exc:
            raise CRLError(CRLErrorKind.INTERNAL, f"CRL {ca.name} #{number} does not parse: {exc}") from None
        start, end = tbs_span(der)
        with memoryview(der) as view:
            digest = hashlib.new(hash_alg.name, view[start:end]).digest()
        if not signature_valid(ca.certificate.public_key(), crl.signature, digest, Prehashed(hash_alg)):
            raise CRLError(
                CRLErrorKind.INTERNAL, f"CRL {ca.name} #{number}: the signature does not verify with the CA certificate"
            )
        crl_number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        if crl.issuer != ca.certificate.subject or crl_number != number or crl.last_update_utc != this_update:
            raise CRLError(CRLErrorKind.INTERNAL, f"CRL {ca.name} #{number}: parsed header differs from the built one")

    def _audit_failure(self, ca: _Authority, actor: Actor, reason: str, detail: str) -> None:
        """Record the refusal (EN 319 411-1 REV-6.4.5-09 spirit: every status action is logged)."""
        with contextlib.suppress(StoreError), self.db.write() as s:
            repo.append_audit(
                s,
                at=self.clock(),
                actor=actor.name,
                role=actor.role,
                action="crl.publication_failed",
                object_type="crl",
                object_id=ca.name,
                details={"issuer": ca.name, "reason": reason, "detail": detail[:2000]},
            )

    def _write_files(self, ca: _Authority, result: PublishedCRL, der: bytes) -> PublishedCRL:
        """Write ``<dir>/crl/<ca>.crl`` (the URL in the certificates' CDP) and ``<dir>/ca/<ca>.crt``.

        Two publishers may finish in either order: under a file lock, only the CRL that is still the
        newest in the database is written, so the file never goes back to an older number.
        """
        base = self.settings.publish_dir
        if base is None:
            return result
        try:
            crl_dir, ca_dir = base / "crl", base / "ca"
            crl_dir.mkdir(parents=True, exist_ok=True)
            ca_dir.mkdir(parents=True, exist_ok=True)
            cert_path = ca_dir / f"{ca.name}.crt"
            if not cert_path.exists() or cert_path.read_bytes() != ca.certificate_der:
                _atomic_write(cert_path, ca.certificate_der)
            path = crl_dir / f"{ca.name}.crl"
            locks = base / ".locks"
            locks.mkdir(exist_ok=True)
            with _file_lock(locks / f"crl-{ca.name}.lock"):
                with self.db.read() as s:
                    newest = crl_repo.latest_number(s, ca.id)
                if newest != result.number:
                    return result  # a newer CRL was committed meanwhile; its publisher writes it
                _atomic_write(path, der)
        except (OSError, StoreError) as exc:
            return dataclasses.replace(result, file_error=f"{base}: {exc}")
        return dataclasses.replace(result, path=path)

    def publish_all(self, actor: Actor, *, force: bool = False) -> list[PublishedCRL]:
        """:meth:`publish` for every open CA (issuing CAs first, the root's CARL last); a closed
        CA's last CRL is final and is passed by, forced or not."""
        out: list[PublishedCRL] = []
        for name in self.open_ca_names():
            done = self.publish(name, actor, force=force)
            if done is not None:
                out.append(done)
        return out

    def publish_due(self, actor: Actor) -> list[PublishedCRL]:
        """The scheduler job: publish each CA whose CRL is due — a status change is pending (at any
        age: "promptly", eIDAS Art. 24(3); EN 319 411-1 REV-6.2.4-03A allows at most 24 h), it was
        never published, or ``interval_seconds`` passed since the last one (CSS-6.3.9-05).

        Every due CA is tried; the first failure is raised afterwards.
        """
        with self.db.read() as s:
            states = crl_repo.read_states(s)
        now = self.clock()
        out: list[PublishedCRL] = []
        failures: list[CRLError] = []
        for name in self.ca_names():
            state = states.get(name)
            if state is None or state.closed_at is not None or not self._due(state, now):
                continue  # a closed CA's last CRL is final
            try:
                done = self.publish(name, actor, force=False)
            except CRLError as exc:
                failures.append(exc)
                continue
            if done is not None:
                out.append(done)
        if failures:
            raise CRLError(failures[0].kind, "; ".join(f.detail for f in failures))
        return out

    # ------------------------------------------------------------------------------------------

    def latest(self, issuer_name: str, number: int | None = None) -> StoredCRL | None:
        """The CA's newest stored CRL (or CRL ``number``); None when there is none.

        :raises CRLError: for an unknown CA.
        """
        with self.db.read() as s:
            if crl_repo.ca_certificate(s, issuer_name) is None:
                raise CRLError(CRLErrorKind.NOT_FOUND, f"no CA named {issuer_name!r}")
            meta = crl_repo.crl_meta(s, issuer_name, number)
            if meta is None:
                return None
            der = crl_repo.crl_der(s, meta.id)
        return StoredCRL(
            issuer=meta.issuer_name,
            der=der,
            number=meta.number,
            this_update=meta.this_update,
            next_update=meta.next_update,
            sha256=meta.sha256,
            entries=meta.entries,
            published_by=meta.published_by,
            lint_report=meta.lint_report,
        )
