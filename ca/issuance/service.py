"""The issuance pipeline (DESIGN.md step 5; boulder's lint-then-sign).

    parse CSR (strict, proof of possession, key allow-list)
    -> subject rules of the profile                              (refusal: nothing written but audit)
    -> draw a random serial, build the TBS, sign it with a
       throwaway key, lint it                                    [lint]      (any error: HSM untouched)
    -> reserve the serial and journal the linted certificate
       as the record of intent, in one transaction               [reserve]   commit
    -> sign the same TBS with the HSM key                        [sign]
    -> check TBS byte-identical to the linted one, verify sig    [verify]
    -> store certificate, settle serial, audit                   [store]     commit

The serial is reserved before the HSM is touched, together with the journal row: a reservation
never exists without the TBS it was reserved for, and a certificate that the lint gate refuses
never takes a serial (a collision with an existing serial, p < 2^-60 per pair, draws again and
rebuilds).  An exception before the reservation is audited as ``certificate.issuance_failed``
against the profile; from the reservation on, it settles the reservation as ``failed`` (and
audits it) before it propagates.  A process that dies between two steps leaves the reservation
``reserved``; :meth:`IssuanceService.recover` settles those older than the configured age as
``failed``, so a reserved serial always ends as a stored certificate or a failed serial — never
a serial that could later answer "good" without a stored certificate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, NoReturn

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ca.asn1.crl_entry import assemble_signed, crl_entry_der, signature_algorithm_der
from ca.audit.chain import JSONValue
from ca.findings import Finding, Severity, errors_in
from ca.issuance.builder import IssuerView, build_end_entity, semantics_identifier, validity_window
from ca.issuance.csr import ParsedCSR, parse_csr, spki_sha256
from ca.issuance.errors import ErrorKind, IssuanceError, LintFailed
from ca.issuance.lint import PkilintGate, certificate_rules
from ca.issuance.serial import new_serial, serial_hex
from ca.issuance.throwaway import throwaway_key
from ca.profiles.oids import QC_IDENT_METHODS
from ca.profiles.profile import Profile
from ca.profiles.subject import SubjectInput, legal_person_rules, natural_person_rules
from ca.store import repository as repo
from ca.store import status as status_repo
from ca.store.db import Database, UnitOfWork
from ca.store.hotpath import HotTransaction
from hsm import HSMError, HSMUnavailable, KeyAlgorithm, SigningKey
from hsm.signing import sign, signature_valid

__all__ = ["STEPS", "Actor", "IssuanceService", "IssuedCertificate", "Issuer"]

STEPS: Final = ("lint", "reserve", "sign", "verify", "store")

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True, slots=True)
class _Intent:
    """A reserved serial and its journaled, linted TBS: what the HSM is about to sign."""

    serial: int
    serial_hex: str
    reservation_id: int
    journal_id: int
    lint_tbs: bytes
    lint_der: bytes
    findings: tuple[Finding, ...]
    hash_algorithm: hashes.HashAlgorithm


def _raise_as_issuance_error(exc: BaseException) -> NoReturn:
    """Re-raise ``exc``; a key backend error becomes the :class:`IssuanceError` callers handle."""
    if isinstance(exc, HSMUnavailable):
        raise IssuanceError(ErrorKind.HSM_UNAVAILABLE, f"key backend unavailable: {exc}") from exc
    if isinstance(exc, HSMError):
        raise IssuanceError(ErrorKind.INTERNAL, f"key backend error: {exc}") from exc
    if isinstance(exc, repo.SerialCollision):  # raised by the store step only
        raise IssuanceError(
            ErrorKind.INTERNAL, f"{exc}: recovery settled it as failed meanwhile; the certificate was discarded"
        ) from exc
    raise exc


def _failure_reason(exc: BaseException) -> str:
    """How a failed attempt's audit event (and its failed reservation) states the cause."""
    return f"{type(exc).__name__}: {exc}"[:500]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked: an authenticated operator (or the OS user for CLI commands on the CA host)."""

    name: str
    role: str


@dataclass(frozen=True, slots=True)
class Issuer:
    """An issuing CA ready to sign: its database id, certificate, key and the view the builder needs."""

    id: int
    view: IssuerView
    algorithm: KeyAlgorithm
    signing_key: SigningKey

    @property
    def name(self) -> str:
        return self.view.name


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    certificate: x509.Certificate
    serial_hex: str
    issuer: str
    profile: str
    findings: tuple[Finding, ...]
    """Non-blocking findings (notices and warnings) of the lint gate."""

    @property
    def lint_verdict(self) -> str:
        """``clean``, or ``clean (N notices)`` / ``clean (N warnings)``; INFO findings are not counted."""
        shown = [f for f in self.findings if f.severity >= Severity.NOTICE]
        if not shown:
            return "clean"
        worst = max(f.severity for f in shown).name.lower()
        return f"clean ({len(shown)} {worst}{'s' if len(shown) > 1 else ''})"


@dataclass
class IssuanceService:
    """Issues end-entity certificates for the configured profiles.

    :param faults: test hook called with each step name before the step runs; it may raise (an
        injected failure) or end the process (an injected crash).
    """

    db: Database
    profiles: Mapping[str, Profile]
    issuers: Mapping[str, Issuer]
    gate: PkilintGate | None
    clock: Clock = system_clock
    stale_after: dt.timedelta = dt.timedelta(minutes=5)
    faults: Callable[[str], None] | None = None
    random_bytes: Callable[[int], bytes] = secrets.token_bytes
    observer: Callable[[str, str, float], None] | None = None
    """Called with (profile, ``issued``/``refused``/``failed``/``hsm-error``, seconds) after each attempt."""

    # ------------------------------------------------------------------------------------------

    def _step(self, name: str) -> None:
        if self.faults is not None:
            self.faults(name)

    def subject_findings(self, profile: Profile, subject: SubjectInput) -> list[Finding]:
        """The profile's subject rules (EN 319 412-2 §4.2.4 natural, EN 319 412-3 §4.2.1 legal)."""
        rules = natural_person_rules if profile.subject_kind == "natural" else legal_person_rules
        findings = list(rules(subject))
        if (
            profile.subject_kind == "natural"
            and not profile.allow_organization
            and (subject.organizationName or subject.organizationIdentifier)
        ):
            findings.append(
                Finding(Severity.ERROR, "qtsp.profile.organization", f"profile {profile.name}: no organisation allowed")
            )
        if subject.admission is not None and not profile.allow_admission:
            findings.append(
                Finding(Severity.ERROR, "qtsp.profile.admission", f"profile {profile.name}: no admission allowed")
            )
        if subject.email is not None and not profile.allow_email:
            findings.append(Finding(Severity.ERROR, "qtsp.profile.email", f"profile {profile.name}: no email allowed"))
        return findings

    @contextlib.contextmanager
    def _observed(self, profile_name: str) -> Iterator[list[str]]:
        """Classify the attempt for :attr:`observer` (metrics); the body sets ``outcome[0]`` on success."""
        outcome = ["failed"]
        started = time.perf_counter()
        try:
            yield outcome
        except LintFailed:
            outcome[0] = "refused"
            raise
        except IssuanceError as exc:
            outcome[0] = "hsm-error" if exc.kind is ErrorKind.HSM_UNAVAILABLE else "failed"
            raise
        finally:
            if self.observer is not None:
                self.observer(profile_name, outcome[0], time.perf_counter() - started)

    def issue(
        self,
        *,
        profile_name: str,
        csr: bytes | ParsedCSR,
        subject: SubjectInput,
        actor: Actor,
        validity_days: int | None = None,
        evidence_ref: str | None = None,
        on_hold: bool = False,
        activate_after: dt.datetime | None = None,
        qc_ident_method: str | None = None,
    ) -> IssuedCertificate:
        """Run the whole pipeline for one certificate; report the outcome (``issued``, ``refused``,
        ``failed``, ``hsm-error``) and its duration to :attr:`observer` when one is set.

        :param on_hold: issue it *not activated* (a card's certificate before the holder confirms
            receipt, DESIGN.md step 6): status "on hold" (certificateHold) until
            :meth:`ca.crl_ocsp.revocation.RevocationService.activate` releases it.
        :param activate_after: for ``on_hold``, when the scheduler releases the hold by itself
            (None: only an explicit activation, or a time set later by the RA at shipping).

        :param qc_ident_method: add QcIdentMethod with this OID (EN 319 412-5 V2.5.1 §4.3.5): one of
            the four id-etsi-qct-eIDAS* values, for a profile with QC statements only.

        :raises IssuanceError: with a one-line detail; :class:`LintFailed` when a rule refused it.
        """
        with self._observed(profile_name) as outcome:
            profile = self.profiles.get(profile_name)
            if profile is None:
                raise IssuanceError(ErrorKind.NOT_FOUND, f"unknown profile {profile_name!r}")
            issuer = self.issuers.get(profile.issuer)
            if issuer is None:
                raise IssuanceError(
                    ErrorKind.NOT_FOUND, f"issuing CA {profile.issuer!r} does not exist (run qtsp init)"
                )
            if qc_ident_method is not None:
                if profile.qc is None:
                    raise IssuanceError(
                        ErrorKind.POLICY_VIOLATION,
                        f"profile {profile.name} carries no QC statements: no QcIdentMethod (EN 319 412-5 §4.3.5)",
                    )
                if qc_ident_method not in QC_IDENT_METHODS:
                    raise IssuanceError(
                        ErrorKind.POLICY_VIOLATION,
                        f"QcIdentMethod {qc_ident_method!r} is not one of EN 319 412-5 V2.5.1 §4.3.5's "
                        f"{', '.join(sorted(QC_IDENT_METHODS))}",
                    )
            parsed = csr if isinstance(csr, ParsedCSR) else parse_csr(csr)
            days = profile.default_validity_days if validity_days is None else validity_days
            if not 1 <= days <= profile.max_validity_days:
                raise IssuanceError(
                    ErrorKind.POLICY_VIOLATION,
                    f"profile {profile.name}: validity must be 1..{profile.max_validity_days} days (got {days})",
                )
            subject_findings = self.subject_findings(profile, subject)
            refusal = errors_in(subject_findings)
            if refusal:
                self._audit_refusal(actor, profile, issuer, refusal, "subject")
                raise LintFailed(tuple(refusal))

            now = self.clock()
            try:
                intent = self._lint_and_reserve(
                    profile, issuer, parsed, subject, actor, now, days, evidence_ref, subject_findings, qc_ident_method
                )
            except LintFailed:
                raise  # audited as certificate.refused
            except BaseException as exc:
                # Nothing is reserved yet: the attempt is audited against the profile.
                with contextlib.suppress(Exception):
                    self._audit_unreserved_failure(actor, profile, issuer, exc)
                _raise_as_issuance_error(exc)
            try:
                issued = self._sign_and_store(
                    profile, issuer, parsed, actor, intent, evidence_ref, on_hold, activate_after
                )
                outcome[0] = "issued"
                return issued
            except BaseException as exc:
                # The database may be what failed: then the reservation stays open, recovery settles it
                # as failed later, and the original error is the one the caller must see.
                with contextlib.suppress(Exception):
                    self._settle_failed(intent.reservation_id, issuer, intent.serial_hex, profile, actor, exc)
                _raise_as_issuance_error(exc)

    def _lint_and_reserve(
        self,
        profile: Profile,
        issuer: Issuer,
        parsed: ParsedCSR,
        subject: SubjectInput,
        actor: Actor,
        now: dt.datetime,
        days: int,
        evidence_ref: str | None,
        subject_findings: list[Finding],
        qc_ident_method: str | None,
    ) -> _Intent:
        """Draw a serial, build and lint the TBS, then reserve the serial and journal the linted
        certificate in one commit; a serial collision (p < 2^-60 per pair) draws again."""
        not_before, not_after = validity_window(now, days, issuer.view.certificate.not_valid_after_utc)
        sig_hash = issuer.algorithm.default_hash()
        for _ in range(3):
            self._step("lint")
            serial = new_serial(self.random_bytes)
            shex = serial_hex(serial)
            builder = build_end_entity(
                profile=profile,
                issuer=issuer.view,
                subject=subject,
                public_key=parsed.public_key,
                serial=serial,
                not_before=not_before,
                not_after=not_after,
                qc_ident_method=qc_ident_method,
            )
            lint_cert = builder.sign(throwaway_key(issuer.algorithm), sig_hash)
            lint_der = lint_cert.public_bytes(serialization.Encoding.DER)
            # Non-blocking subject findings (warnings, notices) travel with the certificate's own.
            findings = list(subject_findings)
            findings += certificate_rules(
                lint_cert, profile, issuer.view.certificate, semantics_identifier(profile, subject), qc_ident_method
            )
            if self.gate is not None:
                findings.extend(self.gate.lint(lint_der, profile.name))
            blocking = errors_in(findings)
            if blocking:
                self._audit_refusal(actor, profile, issuer, blocking, "lint")
                raise LintFailed(tuple(blocking))
            lint_tbs = lint_cert.tbs_certificate_bytes
            report = json.dumps(
                [{"severity": f.severity.name, "code": f.code, "message": f.message} for f in findings],
                separators=(",", ":"),
            )

            self._step("reserve")
            tbs_digest = hashlib.sha256(lint_tbs).hexdigest()
            at = self.clock()
            try:
                # Not synced by itself: the store commit syncs the WAL before any certificate leaves
                # the process (a power loss before it loses this row and the signature with it).
                with self.db.hot_write(durable=False) as tx:
                    reservation_id, journal_id = repo.reserve_and_journal(
                        tx,
                        issuer_id=issuer.id,
                        serial=shex,
                        profile=profile.name,
                        tbs_sha256=tbs_digest,
                        lint_certificate_der=lint_der,
                        lint_report=report,
                        requested_by=actor.name,
                        at=at,
                        evidence_ref=evidence_ref,
                    )
            except repo.SerialCollision:
                continue
            except repo.IssuerClosed:
                raise IssuanceError(
                    ErrorKind.CONFLICT,
                    f"CA {issuer.name} is closed: its last CRL is published and it issues no more certificates "
                    "(EN 319 411-2 CSS-6.3.10-07)",
                ) from None
            return _Intent(serial, shex, reservation_id, journal_id, lint_tbs, lint_der, tuple(findings), sig_hash)
        raise IssuanceError(ErrorKind.INTERNAL, "three serial collisions in a row: the random source is broken")

    def _sign_and_store(
        self,
        profile: Profile,
        issuer: Issuer,
        parsed: ParsedCSR,
        actor: Actor,
        intent: _Intent,
        evidence_ref: str | None,
        on_hold: bool,
        activate_after: dt.datetime | None,
    ) -> IssuedCertificate:
        serial, shex, lint_tbs, lint_der = intent.serial, intent.serial_hex, intent.lint_tbs, intent.lint_der
        reservation_id, journal_id, findings = intent.reservation_id, intent.journal_id, intent.findings
        self._step("sign")
        # The HSM signs the linted TBS itself, the bytes pkilint saw; the certificate is those bytes,
        # the issuer's signature algorithm (the same as in the lint certificate: the throwaway key
        # has the issuer's algorithm) and the signature (RFC 5280 §4.1).
        signature = sign(issuer.signing_key, lint_tbs, intent.hash_algorithm)
        der = assemble_signed(lint_tbs, signature_algorithm_der(lint_der), signature)

        self._step("verify")
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise IssuanceError(ErrorKind.INTERNAL, f"the signed certificate does not parse: {exc}") from exc
        # boulder's tbsCertIsDeterministic: what the HSM signed is exactly what was linted.
        if cert.tbs_certificate_bytes != lint_tbs:
            raise IssuanceError(ErrorKind.INTERNAL, "signed TBS differs from the linted TBS: certificate discarded")
        self._verify_signature(cert, issuer)

        self._step("store")
        # Everything is computed before the write transaction, which holds SQLite's single lock.
        fingerprint = hashlib.sha256(der).hexdigest()
        subject_text = cert.subject.rfc4514_string()
        not_before_utc, not_after_utc = cert.not_valid_before_utc, cert.not_valid_after_utc
        spki = spki_sha256(parsed.public_key)
        details: dict[str, JSONValue] = {
            "profile": profile.name,
            "issuer": issuer.name,
            "serial": shex,
            "subject": subject_text,
            "not_before": not_before_utc.isoformat(),
            "not_after": not_after_utc.isoformat(),
            "sha256": fingerprint,
            "journal_id": journal_id,
            "evidence_ref": evidence_ref,
            "lint": [f.code for f in findings],
            "activation": "on-hold" if on_hold else "immediate",
        }
        at = self.clock()
        hold_entry = crl_entry_der(serial, at, "certificateHold") if on_hold else b""
        # A certificate on hold also gets its status entry, through the ORM (the RA's cards; rare).
        store: contextlib.AbstractContextManager[HotTransaction] = self.db.write() if on_hold else self.db.hot_write()
        with store as tx:
            repo.settle_issued(tx, reservation_id=reservation_id, journal_id=journal_id, at=at)
            certificate_id = repo.add_certificate(
                tx,
                issuer_id=issuer.id,
                serial=shex,
                profile=profile.name,
                subject=subject_text,
                not_before=not_before_utc,
                not_after=not_after_utc,
                status="on-hold" if on_hold else "good",
                der=der,
                fingerprint_sha256=fingerprint,
                spki_sha256=spki,
                journal_id=journal_id,
                at=at,
                activate_after=activate_after if on_hold else None,
            )
            if on_hold:
                assert isinstance(tx, UnitOfWork)
                # Not activated: listed as certificateHold until activation (eIDAS Art. 28(4) forbids
                # reverting only *after* activation).  crl_state before the audit head (lock order).
                status_repo.add_status_entry(
                    tx,
                    cert=status_repo.CertificateStatusRow(
                        certificate_id=certificate_id,
                        issuer_id=issuer.id,
                        issuer_name=issuer.name,
                        serial=shex,
                        profile=profile.name,
                        subject=subject_text,
                        status="on-hold",
                        not_after=not_after_utc,
                        activate_after=activate_after,
                    ),
                    reason="certificateHold",
                    revoked_at=at.replace(microsecond=0),
                    invalidity_date=None,
                    received_at=at,
                    requested_by=actor.name,
                    decided_by=actor.name,
                    crl_entry_der=hold_entry,
                    at=at,
                )
                if not status_repo.mark_crl_pending(tx, issuer.id, at):
                    # Not reached: a CA with an open reservation is never closed (crl.publish_last).
                    raise IssuanceError(ErrorKind.INTERNAL, f"CA {issuer.name} was closed during the issuance")
            repo.append_audit(
                tx,
                at=at,
                actor=actor.name,
                role=actor.role,
                action="certificate.issued",
                object_type="certificate",
                object_id=f"{issuer.name}:{shex}",
                details=details,
            )
        return IssuedCertificate(
            certificate=cert,
            serial_hex=shex,
            issuer=issuer.name,
            profile=profile.name,
            findings=findings,
        )

    @staticmethod
    def _verify_signature(cert: x509.Certificate, issuer: Issuer) -> None:
        """Check the HSM's signature with the CA public key (catches faulty or wrong-key signatures)."""
        public = issuer.view.certificate.public_key()
        algorithm = cert.signature_hash_algorithm
        assert algorithm is not None
        if not isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise IssuanceError(ErrorKind.INTERNAL, "unsupported CA key type")
        if not signature_valid(public, cert.signature, cert.tbs_certificate_bytes, algorithm):
            raise IssuanceError(ErrorKind.INTERNAL, "HSM signature does not verify with the CA certificate")

    # ------------------------------------------------------------------------------------------

    def _settle_failed(
        self, reservation_id: int, issuer: Issuer, shex: str, profile: Profile, actor: Actor, exc: BaseException
    ) -> None:
        reason = _failure_reason(exc)
        at = self.clock()
        with self.db.write() as s:
            if repo.fail_reservation(s, reservation_id=reservation_id, reason=reason, at=at):
                repo.append_audit(
                    s,
                    at=at,
                    actor=actor.name,
                    role=actor.role,
                    action="certificate.issuance_failed",
                    object_type="serial",
                    object_id=f"{issuer.name}:{shex}",
                    details={"profile": profile.name, "reason": reason},
                )

    def _audit_unreserved_failure(self, actor: Actor, profile: Profile, issuer: Issuer, exc: BaseException) -> None:
        """An attempt that failed before its serial was reserved: nothing to settle, only the event."""
        details: dict[str, JSONValue] = {"issuer": issuer.name, "reason": _failure_reason(exc)}
        self._audit_profile_event(actor, "certificate.issuance_failed", profile, details)

    def _audit_refusal(
        self, actor: Actor, profile: Profile, issuer: Issuer, findings: Sequence[Finding], stage: str
    ) -> None:
        """A certificate the subject rules or the lint gate refused (it took no serial)."""
        details: dict[str, JSONValue] = {
            "issuer": issuer.name,
            "stage": stage,
            "findings": [f.message for f in findings],
        }
        self._audit_profile_event(actor, "certificate.refused", profile, details)

    def _audit_profile_event(
        self, actor: Actor, action: str, profile: Profile, details: Mapping[str, JSONValue]
    ) -> None:
        """One audit event about an attempt under ``profile``, in a transaction of its own."""
        with self.db.write() as s:
            repo.append_audit(
                s,
                at=self.clock(),
                actor=actor.name,
                role=actor.role,
                action=action,
                object_type="profile",
                object_id=profile.name,
                details=details,
            )

    def find_by_evidence_ref(self, evidence_ref: str) -> repo.CertificateSnapshot | None:
        """The certificate stored for the attempt ``evidence_ref`` (issuer, serial, DER, not_after,
        status), or None when that attempt stored nothing (refused, failed, or never reserved).

        A caller that lost the answer of :meth:`issue` (its process ended after the CA's commit)
        asks here before deciding to try again, so one attempt never yields two certificates.
        """
        with self.db.read() as s:
            return repo.certificate_by_evidence_ref(s, evidence_ref)

    def in_flight(self, evidence_ref: str) -> bool:
        """Whether the attempt ``evidence_ref`` is journaled but neither stored nor failed yet (it
        may still end in a certificate; :meth:`recover` settles it as failed once it is stale)."""
        with self.db.read() as s:
            return repo.journal_open_for_evidence_ref(s, evidence_ref)

    def recover(self, actor: Actor) -> list[repo.SettledReservation]:
        """Settle reservations left open by a dead process as ``failed`` (audited, one event each)."""
        now = self.clock()
        with self.db.write() as s:
            settled = repo.settle_stale_reservations(s, older_than=now - self.stale_after, at=now)
            for item in settled:
                repo.append_audit(
                    s,
                    at=now,
                    actor=actor.name,
                    role=actor.role,
                    action="serial.recovered_failed",
                    object_type="serial",
                    object_id=f"{item.issuer_name}:{item.serial}",
                    details={"reservation_id": item.reservation_id, "journaled": item.journaled},
                )
        return settled
