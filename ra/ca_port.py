"""The RA's port to the CA: issue a certificate per slot, release a hold, revoke, generate a
remote key.  The RA hands the CA exactly what approval froze (profile, subject, CSR, validity,
evidence reference: DESIGN.md step 4) and nothing else.

:class:`CAAdapter` implements the port against the real :class:`ca.issuance.service.IssuanceService`
and the revocation service ``ca.crl_ocsp.revocation.RevocationService`` (``activate``/``revoke``).
Card certificates are issued *not activated* (``on_hold``: certificateHold) and the card's
activation releases the hold in the CA (eIDAS Art. 28(4)).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol

from cryptography.hazmat.primitives import serialization

from ca.audit.chain import JSONValue
from ca.crl_ocsp.revocation import RevocationError
from ca.findings import Finding
from ca.issuance.errors import IssuanceError
from ca.issuance.service import Actor, IssuanceService
from ca.issuance.signed_request import SignedRequestError, SignedRequestUnavailable, SignedRequestVerifier
from ca.profiles.subject import AdmissionInput, SubjectInput
from ra.errors import RAError, RAErrorKind

__all__ = [
    "CAAdapter",
    "CAPort",
    "IssuedRef",
    "ProfileOptions",
    "RevocationPort",
    "SignerRef",
    "subject_to_json",
]


def subject_to_json(subject: SubjectInput) -> dict[str, JSONValue]:
    """The subject as the JSON object :meth:`SubjectInput.from_json_obj` reads (absent keys omitted)."""
    out: dict[str, JSONValue] = {}
    for f in fields(subject):
        value = getattr(subject, f.name)
        if value is None:
            continue
        if isinstance(value, AdmissionInput):
            out[f.name] = {k.name: getattr(value, k.name) for k in fields(value) if getattr(value, k.name) is not None}
        else:
            out[f.name] = value
    return out


@dataclass(frozen=True, slots=True)
class ProfileOptions:
    """What a CA profile lets a subject carry beyond the name."""

    allow_organization: bool
    allow_admission: bool
    allow_email: bool


@dataclass(frozen=True, slots=True)
class IssuedRef:
    issuer: str
    serial_hex: str
    not_after: dt.datetime
    certificate_der: bytes
    on_hold: bool
    """Whether the CA holds the certificate (status on-hold) until activation."""
    status: str | None = None
    """The CA's status of the certificate (good, on-hold, revoked) where the answer gives it
    (:meth:`CAPort.find_issued`; online renewal checks it)."""


@dataclass(frozen=True, slots=True)
class SignerRef:
    """A request signed with a certificate of ours whose path and status (our OCSP) validated."""

    content: bytes
    issuer: str
    serial_hex: str
    certificate_der: bytes


class CAPort(Protocol):
    def profile_options(self, profile: str) -> ProfileOptions: ...

    def subject_findings(self, profile: str, subject: SubjectInput) -> list[Finding]:
        """The CA's subject rules for ``profile`` (run at approval, before anything is frozen)."""
        ...

    def issue(
        self,
        *,
        profile: str,
        csr: bytes,
        subject: SubjectInput,
        actor: Actor,
        validity_days: int,
        evidence_ref: str,
        on_hold: bool,
        qc_ident_method: str | None = None,
    ) -> IssuedRef: ...

    def verify_signed_request(self, cms_der: bytes) -> SignerRef:
        """Verify a CMS SignedData and validate its signer certificate (issued by us, path to our
        root, revocation status from our own OCSP responder, nonRepudiation key usage).

        :raises RAError: FORBIDDEN naming the failed check; CA_UNAVAILABLE when not wired.
        """
        ...

    def attempt_status(self, evidence_ref: str) -> str | None:
        """The CA's status (``good``, ``on-hold``, ``revoked``) of the certificate issued under
        ``evidence_ref`` (the source of its OCSP and CRL answers), or None if it issued none."""
        ...

    def find_issued(self, evidence_ref: str) -> IssuedRef | None:
        """The certificate the CA stored for the attempt ``evidence_ref``, or None if it stored none."""
        ...

    def in_flight(self, evidence_ref: str) -> bool:
        """Whether the CA journaled the attempt ``evidence_ref`` and has not settled it yet."""
        ...

    def activate(self, issuer: str, serial_hex: str, *, actor: Actor) -> None: ...

    def revoke(self, issuer: str, serial_hex: str, reason: str, *, actor: Actor, received_at: dt.datetime) -> None: ...

    def certificate_status(self, issuer: str, serial_hex: str) -> str:
        """``good``, ``on-hold`` or ``revoked``, as the CA's CRL and OCSP publish it."""
        ...

    def remote_key_csr(self, label: str) -> bytes:
        """Generate a key pair inside the HSM backend under ``label`` and return a CSR it signed (DER)."""
        ...


class RevocationPort(Protocol):
    """The signatures of ``ca.crl_ocsp.revocation.RevocationService`` the RA uses."""

    def activate(self, issuer_name: str, serial_hex: str, *, actor: Actor) -> object: ...

    def revoke(
        self,
        issuer_name: str,
        serial_hex: str,
        reason: str,
        *,
        actor: Actor,
        received_at: dt.datetime,
        invalidity_date: dt.datetime | None = None,
    ) -> object: ...

    def status(self, issuer_name: str, serial: str) -> str: ...


class CAAdapter:
    """:class:`CAPort` against the CA's services.

    :param revocation: the CA's revocation service, or None where it does not exist yet.
    :param remote_keys: generates a key in the key backend and returns a CSR (wired by ``qtsp``).
    """

    def __init__(
        self,
        issuance: IssuanceService,
        revocation: RevocationPort | None = None,
        remote_keys: Callable[[str], bytes] | None = None,
        signed_requests: SignedRequestVerifier | None = None,
    ) -> None:
        self._issuance = issuance
        self._signed_requests = signed_requests
        self._revocation = revocation
        self._remote_keys = remote_keys

    def profile_options(self, profile: str) -> ProfileOptions:
        p = self._issuance.profiles.get(profile)
        if p is None:
            raise RAError(RAErrorKind.CA_REFUSED, f"the CA has no profile {profile!r}")
        return ProfileOptions(p.allow_organization, p.allow_admission, p.allow_email)

    def subject_findings(self, profile: str, subject: SubjectInput) -> list[Finding]:
        p = self._issuance.profiles.get(profile)
        if p is None:
            raise RAError(RAErrorKind.CA_REFUSED, f"the CA has no profile {profile!r}")
        return self._issuance.subject_findings(p, subject)

    def issue(
        self,
        *,
        profile: str,
        csr: bytes,
        subject: SubjectInput,
        actor: Actor,
        validity_days: int,
        evidence_ref: str,
        on_hold: bool,
        qc_ident_method: str | None = None,
    ) -> IssuedRef:
        try:
            issued = self._issuance.issue(
                profile_name=profile,
                csr=csr,
                subject=subject,
                actor=actor,
                validity_days=validity_days,
                evidence_ref=evidence_ref,
                on_hold=on_hold,
                qc_ident_method=qc_ident_method,
            )
        except IssuanceError as exc:
            raise RAError(RAErrorKind.CA_REFUSED, f"the CA refused: {exc.detail}", exc.findings) from None
        cert = issued.certificate
        return IssuedRef(
            issuer=issued.issuer,
            serial_hex=issued.serial_hex,
            not_after=cert.not_valid_after_utc,
            certificate_der=cert.public_bytes(serialization.Encoding.DER),
            on_hold=on_hold,
        )

    def find_issued(self, evidence_ref: str) -> IssuedRef | None:
        found = self._issuance.find_by_evidence_ref(evidence_ref)
        if found is None:
            return None
        return IssuedRef(
            issuer=found.issuer_name,
            serial_hex=found.serial,
            not_after=found.not_after,
            certificate_der=found.der,
            on_hold=found.status == "on-hold",
            status=found.status,
        )

    def in_flight(self, evidence_ref: str) -> bool:
        return self._issuance.in_flight(evidence_ref)

    def verify_signed_request(self, cms_der: bytes) -> SignerRef:
        if self._signed_requests is None:
            raise RAError(RAErrorKind.CA_UNAVAILABLE, "no verifier for signed requests is wired")
        try:
            found = self._signed_requests.verify(cms_der)
        except SignedRequestUnavailable as exc:
            raise RAError(RAErrorKind.CA_UNAVAILABLE, f"the signed request cannot be checked now: {exc}") from None
        except SignedRequestError as exc:
            raise RAError(RAErrorKind.FORBIDDEN, f"the signed request is not accepted: {exc}") from None
        return SignerRef(found.content, found.issuer, found.serial_hex, found.certificate_der)

    def attempt_status(self, evidence_ref: str) -> str | None:
        found = self._issuance.find_by_evidence_ref(evidence_ref)
        return None if found is None else found.status

    def _service(self) -> RevocationPort:
        if self._revocation is None:
            raise RAError(RAErrorKind.CA_UNAVAILABLE, "the CA's revocation service is not available")
        return self._revocation

    def activate(self, issuer: str, serial_hex: str, *, actor: Actor) -> None:
        self._service().activate(issuer, serial_hex, actor=actor)

    def revoke(self, issuer: str, serial_hex: str, reason: str, *, actor: Actor, received_at: dt.datetime) -> None:
        self._service().revoke(issuer, serial_hex, reason, actor=actor, received_at=received_at)

    def certificate_status(self, issuer: str, serial_hex: str) -> str:
        try:
            return self._service().status(issuer, serial_hex)
        except RevocationError as exc:
            raise RAError(RAErrorKind.NOT_FOUND, f"the CA: {exc.detail}") from None

    def remote_key_csr(self, label: str) -> bytes:
        if self._remote_keys is None:
            raise RAError(RAErrorKind.CA_UNAVAILABLE, "no key backend is wired for remote keys")
        return self._remote_keys(label)
