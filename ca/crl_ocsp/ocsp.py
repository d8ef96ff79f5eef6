"""The OCSP responder core (RFC 6960 with the RFC 5019 / RFC 9919 profile), free of any web framework.

:meth:`OCSPResponder.respond` turns request bytes into response bytes and never raises:

* too large (checked before parsing) or undecodable → ``malformedRequest`` (RFC 6960 §2.3);
* a CertID whose issuer hashes match none of our issuing CAs → ``unauthorized`` (RFC 6960 §2.3;
  STANDARDS.md §2.6 item 4).  CAs without a delegated responder (the root) are not served;
* several requests for *different* issuers in one message → ``unauthorized``: one delegated
  responder signs a response, and a delegated responder may only speak for its own CA
  (RFC 6960 §4.2.2.2), so no single signer is authoritative for all of them;
* database or HSM unavailable → ``tryLater`` (RFC 6960 §2.3); anything unexpected →
  ``internalError``, logged.

Answers:

* ``good``; ``revoked`` with revocationTime and reason (the invalidity date is a CRL entry
  extension and not part of OCSP); a not-yet-activated certificate is ``revoked`` with reason
  certificateHold (STANDARDS.md §2.1, eIDAS Art. 28(5));
* a serial of one of our CAs without a stored certificate (never issued, a failed or a still
  reserved serial) is **never** ``good`` (EN 319 411-1 OVR-6.6.3-02): ``revoked``, revocationTime
  1970-01-01T00:00:00Z, reason certificateHold and the extended-revoke extension in
  responseExtensions (RFC 6960 §2.2 and §4.4.8), which makes "not issued" identifiable; each such
  request is logged as a possible attack (OVR-6.6.3-03);
* ``unknown`` is never answered: an unknown issuer gets ``unauthorized``, an unknown serial the
  answer above.

Every successful response is signed by the newest valid delegated responder of the CA
(RFC 6960 §4.2.2.2; its certificate carries id-kp-OCSPSigning and id-pkix-ocsp-nocheck), names
it byKey (RFC 6960 §4.2.1; RFC 9919 §2.2) and includes its certificate; each SingleResponse
carries archiveCutoff = the CA certificate's notBefore (EN 319 411-2 CSS-6.3.10-10; RFC 6960
§4.4.4, in singleExtensions as RFC 6960's ASN.1 module places it).  thisUpdate and producedAt are
the signing time, nextUpdate ``validity`` later.

Nonces (RFC 6960 §4.4.1, RFC 8954 §2.1): a request nonce of 1–32 octets is echoed, which forces
live signing; a longer or empty nonce is refused with ``malformedRequest`` (RFC 8954 limits the
value to 32 octets; refusing is explicit where ignoring would let a client believe in replay
protection it does not get).

A single request without a nonce is answered from the stored pre-signed response
(:mod:`ca.crl_ocsp.presign`) when it is current (thisUpdate ≤ now < nextUpdate), states the
certificate's present status and was signed by a currently valid responder; otherwise the
response is signed live.  Status and stored response are read in one statement, and nothing about
status is cached in the process, so a revocation is visible to every worker as soon as it commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp as x509_ocsp

from ca.asn1.errors import Asn1DecodeError
from ca.asn1.ocsp_request import HASH_NAMES, CertIDValues, OCSPRequestValues, parse_ocsp_request
from ca.asn1.ocsp_response import (
    NEVER_ISSUED_TIME,
    SingleResponseValues,
    basic_response_der,
    cert_id_der,
    response_data_der,
    signature_algorithm_der,
    subject_public_key_bits,
    unsuccessful_response_der,
)
from ca.store import ocsp_repo
from ca.store.db import Database, StoreError
from ca.store.ocsp_repo import CertificateStatus, OCSPStatusReader, OCSPStoreUnavailable
from hsm import HSMError, KeyAlgorithm, KeyBackend, KeyRef, SigningKey
from hsm.signing import sign

__all__ = [
    "MAX_NONCE_OCTETS",
    "PRESIGNED_HASHES",
    "InconsistentStatus",
    "IssuerEntry",
    "OCSPAnswer",
    "OCSPResponder",
    "ResponderDirectory",
    "ResponderSigner",
    "sign_response",
    "single_response",
    "split_presigned",
]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

#: RFC 8954 §2.1: Nonce ::= OCTET STRING (SIZE(1..32)).
MAX_NONCE_OCTETS: Final = 32

#: A stored pre-signed response holds one OCSPResponse per CertID hash algorithm, concatenated in
#: this order (clients match the CertID of the answer against their request: RFC 9919 §2.1
#: recommends SHA-256, most clients still send SHA-1).
PRESIGNED_HASHES: Final = ("sha1", "sha256")

MALFORMED: Final = unsuccessful_response_der(1)
INTERNAL_ERROR: Final = unsuccessful_response_der(2)
TRY_LATER: Final = unsuccessful_response_der(3)
UNAUTHORIZED: Final = unsuccessful_response_der(6)


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class OCSPAnswer:
    """A complete DER OCSPResponse plus what the HTTP adapter and metrics need."""

    der: bytes
    outcome: str
    """Metrics label: ``presigned``, ``live``, ``malformed``, ``unauthorized``, ``try_later``, ``internal_error``."""
    this_update: dt.datetime | None = None
    """Set on answers that may be cached (no nonce): RFC 5019 §6.2 Last-Modified."""
    next_update: dt.datetime | None = None
    """RFC 5019 §6.2 Expires."""
    etag: str | None = None
    nonce: bool = False
    """True when a nonce was echoed (live answer, never to be cached)."""
    cert_status: str = "-"
    """Metrics label of a successful answer: ``good``, ``revoked``, ``on-hold``, ``not-issued``, or
    ``mixed`` for several requests with different statuses; ``-`` for error answers."""

    @property
    def successful(self) -> bool:
        return self.outcome in ("presigned", "live")


_MALFORMED_ANSWER: Final = OCSPAnswer(MALFORMED, "malformed")
_UNAUTHORIZED_ANSWER: Final = OCSPAnswer(UNAUTHORIZED, "unauthorized")
_TRY_LATER_ANSWER: Final = OCSPAnswer(TRY_LATER, "try_later")
_INTERNAL_ERROR_ANSWER: Final = OCSPAnswer(INTERNAL_ERROR, "internal_error")


class InconsistentStatus(Exception):
    """A certificate marked on hold or revoked without its status entry (answered internalError)."""


def split_presigned(blob: bytes) -> list[bytes]:
    """The DER OCSPResponses concatenated in a stored pre-signed value (see :data:`PRESIGNED_HASHES`)."""
    out: list[bytes] = []
    i = 0
    while i < len(blob):
        if blob[i] != 0x30 or i + 2 > len(blob):
            raise ValueError("stored pre-signed value is not a sequence of DER OCSPResponses")
        first = blob[i + 1]
        if first < 0x80:
            header, length = 2, first
        else:
            n = first & 0x7F
            header, length = 2 + n, int.from_bytes(blob[i + 2 : i + 2 + n], "big")
        end = i + header + length
        if end > len(blob):
            raise ValueError("stored pre-signed value is truncated")
        out.append(blob[i:end])
        i = end
    return out


# ----------------------------------------------------------------------------------------------
# Per-process directory of issuers and responders


@dataclass(slots=True)
class ResponderSigner:
    """A delegated responder: its certificate, byKey id and signing key (loaded on first use)."""

    id: int
    certificate_der: bytes
    not_before: dt.datetime
    not_after: dt.datetime
    key_ref: KeyRef
    key_hash: bytes
    signature_algorithm: bytes
    hash: hashes.HashAlgorithm
    backend: KeyBackend
    _key: SigningKey | None = None

    def valid_at(self, now: dt.datetime) -> bool:
        return self.not_before <= now < self.not_after

    def sign(self, tbs: bytes) -> bytes:
        key = self._key
        if key is None:
            if self.key_ref.backend != self.backend.name:
                raise HSMError(
                    f"responder key {self.key_ref.label} lives in the {self.key_ref.backend} backend, "
                    f"not in the configured {self.backend.name} backend"
                )
            key = self._key = self.backend.signing_key(self.key_ref)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise HSMError(f"responder key {self.key_ref.label} is neither EC nor RSA")
        return sign(key, tbs, self.hash)


@dataclass(slots=True)
class IssuerEntry:
    id: int
    name: str
    ca_certificate_der: bytes
    archive_cutoff: dt.datetime
    name_hashes: dict[str, bytes]
    key_hashes: dict[str, bytes]
    signers: list[ResponderSigner] = field(default_factory=list)
    """Newest first."""
    closed: bool = False
    """The CA is closed (its last CRL published): it signs its answers with its own key, live."""

    def signer(self, now: dt.datetime) -> ResponderSigner | None:
        """The newest responder whose certificate is valid now."""
        return next((s for s in self.signers if s.valid_at(now)), None)

    def valid_responder_ids(self, now: dt.datetime) -> frozenset[int]:
        return frozenset(s.id for s in self.signers if s.valid_at(now))


@dataclass(frozen=True, slots=True)
class _Snapshot:
    loaded_at: float
    by_hash: dict[tuple[str, bytes, bytes], IssuerEntry]
    by_name: dict[str, IssuerEntry]


def _hash(name: str, data: bytes) -> bytes:
    return hashlib.new(name, data).digest()


def _signer(
    signer_id: int,
    certificate_der: bytes,
    key: ocsp_repo.ResponderRecord | ocsp_repo.ClosedAuthority,
    key_hash: bytes,
    backend: KeyBackend,
) -> ResponderSigner:
    """A signer from its certificate (the delegated responder's, or the CA's own) and key record."""
    cert = x509.load_der_x509_certificate(certificate_der)
    algorithm = KeyAlgorithm(key.key_algorithm)
    return ResponderSigner(
        id=signer_id,
        certificate_der=certificate_der,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_ref=KeyRef(
            backend=key.key_backend,
            label=key.key_label,
            key_id=key.key_id,
            algorithm=algorithm,
            token=key.key_token,
        ),
        key_hash=key_hash,
        signature_algorithm=signature_algorithm_der("ec" if algorithm.is_ec else "rsa", algorithm.default_hash().name),
        hash=algorithm.default_hash(),
        backend=backend,
    )


class ResponderDirectory:
    """Issuer hashes and responder keys, cached per process (issue 3: lean hot path).

    Reloaded every ``reload_seconds`` (so a renewed responder is picked up by every worker) and at
    once when a CA's newest responder is no longer valid.  Status is never cached here.
    """

    def __init__(self, db: Database, backend: KeyBackend, clock: Clock = system_clock, reload_seconds: float = 60.0):
        self._db = db
        self._backend = backend
        self._clock = clock
        self._reload_seconds = reload_seconds
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def get(self) -> _Snapshot:
        snap = self._snapshot
        if snap is not None and time.monotonic() - snap.loaded_at < self._reload_seconds:
            return snap
        with self._lock:
            if self._snapshot is snap or self._snapshot is None:
                self._snapshot = self._load(snap)
            return self._snapshot

    def refresh(self) -> None:
        """Reload now (a responder was renewed by this process)."""
        with self._lock:
            self._snapshot = self._load(self._snapshot)

    def _sign_closed_with_their_own_keys(
        self,
        by_name: dict[str, IssuerEntry],
        closed: dict[int, ocsp_repo.ClosedAuthority],
        old_signers: dict[int, ResponderSigner],
    ) -> None:
        """A closed CA answers with its own key (RFC 6960 §4.2.2.2: the CA that issued the
        certificate), not a delegated responder: each of those is expired or revoked by then (a
        closed CA has no other certificates), and a new one would be a certificate issued after
        the CA's last CRL.  So status stays available by OCSP for as long as the CA certificate is
        valid (STANDARDS.md §2.6 item 3), not only by the last CRL.  Answers are signed live (the
        stored pre-signed ones name a delegated responder)."""
        for issuer in by_name.values():
            rec = closed.get(issuer.id)
            if rec is None:
                continue
            old = old_signers.get(-issuer.id)
            if old is None:
                # id: never a delegated responder's, so nothing is pre-signed with it; RFC 6960
                # §4.2.1 byKey: the CA's own key.
                old = _signer(-issuer.id, issuer.ca_certificate_der, rec, issuer.key_hashes["sha1"], self._backend)
            issuer.signers = [old]
            issuer.closed = True

    def _load(self, previous: _Snapshot | None) -> _Snapshot:
        with self._db.read() as s:
            records = ocsp_repo.list_responders(s)
            closed = {c.issuer_id: c for c in ocsp_repo.closed_authorities(s)}
        old_signers = {
            signer.id: signer for issuer in (previous.by_name.values() if previous else ()) for signer in issuer.signers
        }
        by_name: dict[str, IssuerEntry] = {}
        for rec in records:
            issuer = by_name.get(rec.issuer_name)
            if issuer is None:
                ca_cert = x509.load_der_x509_certificate(rec.ca_certificate_der)
                name_der = ca_cert.subject.public_bytes()
                key_bits = subject_public_key_bits(
                    ca_cert.public_key().public_bytes(
                        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                    )
                )
                issuer = by_name[rec.issuer_name] = IssuerEntry(
                    id=rec.issuer_id,
                    name=rec.issuer_name,
                    ca_certificate_der=rec.ca_certificate_der,
                    archive_cutoff=ca_cert.not_valid_before_utc,
                    name_hashes={h: _hash(h, name_der) for h in HASH_NAMES},
                    key_hashes={h: _hash(h, key_bits) for h in HASH_NAMES},
                )
            old = old_signers.get(rec.responder_id)
            if old is not None:
                issuer.signers.append(old)  # keeps its loaded key
                continue
            cert = x509.load_der_x509_certificate(rec.certificate_der)
            spki = cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            # RFC 6960 §4.2.1: KeyHash = SHA-1 of the subjectPublicKey BIT STRING value.
            key_hash = _hash("sha1", subject_public_key_bits(spki))
            issuer.signers.append(_signer(rec.responder_id, rec.certificate_der, rec, key_hash, self._backend))
        self._sign_closed_with_their_own_keys(by_name, closed, old_signers)
        by_hash = {
            (h, issuer.name_hashes[h], issuer.key_hashes[h]): issuer for issuer in by_name.values() for h in HASH_NAMES
        }
        snapshot = _Snapshot(loaded_at=time.monotonic(), by_hash=by_hash, by_name=by_name)
        now = self._clock()
        for issuer in by_name.values():
            if issuer.signer(now) is None:
                log.error("OCSP: CA %s has no valid delegated responder certificate", issuer.name)
        return snapshot


# ----------------------------------------------------------------------------------------------
# Responder


def single_response(
    cert_id: bytes,
    status: CertificateStatus | None,
    this_update: dt.datetime,
    next_update: dt.datetime,
    archive_cutoff: dt.datetime,
) -> SingleResponseValues:
    """The SingleResponse for a looked-up status (``None``: never issued, RFC 6960 §2.2)."""
    if status is None:
        return SingleResponseValues(
            cert_id_der=cert_id,
            status="revoked",
            this_update=this_update,
            next_update=next_update,
            revoked_at=NEVER_ISSUED_TIME,
            reason="certificateHold",
            archive_cutoff=archive_cutoff,
        )
    if status.status == "good":
        return SingleResponseValues(
            cert_id_der=cert_id,
            status="good",
            this_update=this_update,
            next_update=next_update,
            archive_cutoff=archive_cutoff,
        )
    if status.revoked_at is None or status.reason is None:
        raise InconsistentStatus(f"certificate is {status.status} without a status entry")
    return SingleResponseValues(
        cert_id_der=cert_id,
        status="revoked",
        this_update=this_update,
        next_update=next_update,
        revoked_at=status.revoked_at,
        reason=status.reason,
        archive_cutoff=archive_cutoff,
    )


def sign_response(
    signer: ResponderSigner,
    singles: Sequence[SingleResponseValues],
    produced_at: dt.datetime,
    *,
    nonce: bytes | None = None,
    extended_revoke: bool = False,
) -> bytes:
    """Encode, sign (HSM) and assemble a successful OCSPResponse; the responder certificate is included."""
    tbs = response_data_der(
        responder_key_hash=signer.key_hash,
        produced_at=produced_at,
        responses=singles,
        nonce=nonce,
        extended_revoke=extended_revoke,
    )
    return basic_response_der(tbs, signer.signature_algorithm, signer.sign(tbs), [signer.certificate_der])


def _cert_id_from_request(request_der: bytes, values: CertIDValues) -> bytes:
    """The CertID as the client encoded it (with or without NULL hash parameters)."""
    with_null = cert_id_der(values.hash_algorithm, values.issuer_name_hash, values.issuer_key_hash, values.serial)
    if with_null in request_der:
        return with_null
    without = cert_id_der(
        values.hash_algorithm, values.issuer_name_hash, values.issuer_key_hash, values.serial, null_params=False
    )
    return without if without in request_der else with_null


def _parse(request_der: bytes) -> OCSPRequestValues:
    """cryptography for the common single request; asn1crypto for the rest (several requests)."""
    try:
        req = x509_ocsp.load_der_ocsp_request(request_der)
        algorithm = req.hash_algorithm.name
        nonce: bytes | None = None
        for ext in req.extensions:
            if isinstance(ext.value, x509.OCSPNonce):
                nonce = ext.value.nonce
        values = CertIDValues(
            hash_algorithm=algorithm,
            issuer_name_hash=req.issuer_name_hash,
            issuer_key_hash=req.issuer_key_hash,
            serial=req.serial_number,
            der=b"",
        )
    except Exception:  # any refusal: the asn1crypto parser decides (several requests, odd algorithms)
        return parse_ocsp_request(request_der)
    if algorithm not in HASH_NAMES:
        return parse_ocsp_request(request_der)
    values = CertIDValues(
        hash_algorithm=values.hash_algorithm,
        issuer_name_hash=values.issuer_name_hash,
        issuer_key_hash=values.issuer_key_hash,
        serial=values.serial,
        der=_cert_id_from_request(request_der, values),
    )
    return OCSPRequestValues(cert_ids=(values,), nonce=nonce)


def _serial_hex(serial: int) -> str:
    return format(serial, "x") if serial > 0 else f"-{-serial:x}"


class OCSPResponder:
    """Answers OCSP requests for every issuing CA that has a delegated responder.

    :param validity: thisUpdate → nextUpdate of every response (``[status] ocsp_validity_hours``;
        STANDARDS.md §2.4: ≤ 24 h recommended).
    :param max_request_bytes: larger requests get ``malformedRequest`` before any parsing.
    :param cache_seconds: how long this process may answer a byte-identical request (no nonce) with
        the answer it gave before, without reading the database.  It bounds how late a status change
        becomes visible here, so it must stay well under the one-second visibility promise
        (``[status] ocsp_cache_ms``, default 0.5 s; 0 turns the cache off).  Answers with a nonce
        are never cached (their request bytes differ anyway).
    """

    CACHE_ENTRIES: Final = 20_000

    def __init__(
        self,
        db: Database,
        backend: KeyBackend,
        *,
        validity: dt.timedelta = dt.timedelta(hours=24),
        max_request_bytes: int = 4096,
        clock: Clock = system_clock,
        directory: ResponderDirectory | None = None,
        cache_seconds: float = 0.0,
    ) -> None:
        if not 0.0 <= cache_seconds < 1.0:
            raise ValueError("cache_seconds must lie in [0, 1): a revocation is visible within one second")
        self.cache_seconds = cache_seconds
        self._cache: dict[bytes, tuple[float, OCSPAnswer]] = {}
        self.db = db
        self.backend = backend
        self.validity = validity
        self.max_request_bytes = max_request_bytes
        self.clock = clock
        self.directory = directory or ResponderDirectory(db, backend, clock)
        self.reader = OCSPStatusReader(db)

    def respond(self, request_der: bytes) -> OCSPAnswer:
        """Answer one OCSP request; never raises."""
        if self.cache_seconds:
            key = bytes(request_der)
            hit = self._cache.get(key)
            now = time.monotonic()
            if hit is not None and hit[0] > now:
                return hit[1]
            answer = self._respond_safely(key)
            if answer.successful and not answer.nonce:
                if len(self._cache) >= self.CACHE_ENTRIES:
                    self._cache.clear()  # bounded memory; refilled within cache_seconds
                self._cache[key] = (now + self.cache_seconds, answer)
            return answer
        return self._respond_safely(request_der)

    def forget_cached_answers(self) -> None:
        """Drop this process's cached answers (called after a status change committed here)."""
        self._cache.clear()

    def _respond_safely(self, request_der: bytes) -> OCSPAnswer:
        try:
            return self._respond(request_der)
        except (OCSPStoreUnavailable, StoreError) as exc:
            log.warning("OCSP tryLater: database unavailable (%s)", exc)
            return _TRY_LATER_ANSWER
        except HSMError as exc:
            log.warning("OCSP tryLater: key backend unavailable (%s)", exc)
            return _TRY_LATER_ANSWER
        except Exception:
            log.exception("OCSP internalError")
            return _INTERNAL_ERROR_ANSWER

    def _respond(self, request_der: bytes) -> OCSPAnswer:
        if len(request_der) > self.max_request_bytes:  # before parsing (issue 3)
            return _MALFORMED_ANSWER
        try:
            request = _parse(bytes(request_der))
        except Asn1DecodeError:
            return _MALFORMED_ANSWER
        nonce = request.nonce
        if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE_OCTETS:  # RFC 8954 §2.1
            return _MALFORMED_ANSWER
        snapshot = self.directory.get()
        matched = [
            snapshot.by_hash.get((c.hash_algorithm, c.issuer_name_hash, c.issuer_key_hash)) for c in request.cert_ids
        ]
        issuer = matched[0]
        if issuer is None or any(other is not issuer for other in matched):
            return _UNAUTHORIZED_ANSWER  # not our CA, or CAs of more than one responder
        now = self.clock()
        signer = issuer.signer(now)
        if signer is None:
            log.error("OCSP tryLater: CA %s has no valid responder certificate", issuer.name)
            return _TRY_LATER_ANSWER

        lookups = [self.reader.lookup(issuer.id, _serial_hex(c.serial)) for c in request.cert_ids]
        if nonce is None and len(lookups) == 1:
            answer = self._presigned(issuer, request.cert_ids[0], lookups[0], now)
            if answer is not None:
                return answer

        this_update = now.replace(microsecond=0)
        next_update = this_update + self.validity
        singles = []
        never_issued = False
        for cert_id, found in zip(request.cert_ids, lookups, strict=True):
            if found.status is None:
                never_issued = True
                # EN 319 411-1 OVR-6.6.3-03: requests for non-issued serials are monitored as possible attacks.
                log.warning(
                    "OCSP request for serial %s of CA %s, which was never issued (answered revoked, extended revoke)",
                    _serial_hex(cert_id.serial),
                    issuer.name,
                )
            singles.append(single_response(cert_id.der, found.status, this_update, next_update, issuer.archive_cutoff))
        der = sign_response(signer, singles, this_update, nonce=nonce, extended_revoke=never_issued)
        labels = {found.status.status if found.status is not None else "not-issued" for found in lookups}
        label = labels.pop() if len(labels) == 1 else "mixed"
        if nonce is not None:
            return OCSPAnswer(der, "live", nonce=True, cert_status=label)
        return OCSPAnswer(der, "live", this_update, next_update, _etag(der), cert_status=label)

    def _presigned(
        self, issuer: IssuerEntry, cert_id: CertIDValues, found: ocsp_repo.StatusLookup, now: dt.datetime
    ) -> OCSPAnswer | None:
        stored = found.presigned
        if stored is None or found.status is None or cert_id.hash_algorithm not in PRESIGNED_HASHES:
            return None
        if not stored.this_update <= now < stored.next_update:
            return None
        if stored.cert_status != found.status.status or stored.responder_id not in issuer.valid_responder_ids(now):
            return None
        variants = split_presigned(stored.der)
        index = PRESIGNED_HASHES.index(cert_id.hash_algorithm)
        if index >= len(variants):
            return None
        der = variants[index]
        return OCSPAnswer(
            der, "presigned", stored.this_update, stored.next_update, _etag(der), cert_status=found.status.status
        )


def _etag(der: bytes) -> str:
    return '"' + hashlib.sha256(der).hexdigest()[:32] + '"'
