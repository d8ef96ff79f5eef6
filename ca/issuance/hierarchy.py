"""The CA hierarchy: a root CA, issuing CAs for qualified signatures, qualified seals and
authentication certificates, and a delegated OCSP responder per issuing CA.

Why three issuing CAs (README "Hierarchy"): a relying party's trust list entry (EU TL "service")
names one CA per qualified service type, so QES (Annex I) and QSeal (Annex III) get their own
issuing CAs; the non-qualified UPC authentication certificates live under a third CA so that a
compromise or policy change there never touches a qualified service.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ca.issuance.builder import IssuerLinks, IssuerView, ca_urls, key_usage
from ca.issuance.csr import spki_der, spki_sha256
from ca.issuance.serial import new_serial, serial_hex
from ca.issuance.service import Actor, Issuer
from ca.profiles import oids
from ca.store import crl_repo
from ca.store import repository as repo
from ca.store.db import Database, UnitOfWork
from hsm import KeyAlgorithm, KeyBackend, KeyExists, KeyRef, SigningKey

__all__ = [
    "ISSUING_CAS",
    "CAClosed",
    "HierarchyExists",
    "HierarchyMismatch",
    "HierarchySettings",
    "ca_signing_key",
    "create_hierarchy",
    "issue_responder",
    "load_issuers",
    "record_key",
    "responder_key_ref",
    "rollover_issuing_ca",
    "store_responder",
]

ISSUING_CAS: Final = {
    "qes": "Qualified Signature CA",
    "seal": "Qualified Seal CA",
    "auth": "Authentication CA",
}


class HierarchyExists(Exception):
    """``qtsp init`` never overwrites an existing hierarchy."""


class HierarchyMismatch(Exception):
    """The stored hierarchy's keys live in another backend than the configured one."""


class CAClosed(Exception):
    """The CA is closed (its last CRL is published): it signs no new certificate."""


@dataclass(frozen=True, slots=True)
class HierarchySettings:
    """The CA settings (``[ca]`` in qtsp.toml), validated by ``qtsp.config``."""

    base_url: str
    """Public base URL written into AIA (caIssuers, OCSP) and CRL distribution points."""
    country: str
    organization_name: str
    organization_identifier: str
    root_algorithm: KeyAlgorithm
    issuing_algorithm: KeyAlgorithm
    ocsp_algorithm: KeyAlgorithm
    root_validity_days: int
    issuing_validity_days: int
    ocsp_validity_days: int
    cp_arc: str
    """Arc of our own CP OIDs; each profile appends its own number."""
    pds: tuple[tuple[str, str], ...]
    """(url, language) of the PKI disclosure statements (EN 319 412-5 §4.3.4: https, one English)."""


def _ca_name(s: HierarchySettings, common_name: str) -> x509.Name:
    # EN 319 412-2 GEN-4.2.3.1: issuer DN of a legal person with C, O, organizationIdentifier, CN.
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, s.country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, s.organization_name),
            x509.NameAttribute(oids.ORGANIZATION_IDENTIFIER, s.organization_identifier),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_key_usage() -> x509.KeyUsage:
    return key_usage("keyCertSign", "cRLSign")


def _store_ca(
    session: UnitOfWork,
    *,
    name: str,
    role: str,
    parent_id: int | None,
    ref: KeyRef,
    cert: x509.Certificate,
    at: dt.datetime,
    family: str | None = None,
    generation: int = 1,
) -> int:
    """Record a CA's key reference and its certificate; return the CA's id."""
    return repo.add_ca(
        session,
        name=name,
        role=role,
        parent_id=parent_id,
        key_ref_id=record_key(session, ref=ref, purpose="ca", cert=cert, at=at),
        subject=cert.subject.rfc4514_string(),
        serial=serial_hex(cert.serial_number),
        ski=cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        certificate_der=cert.public_bytes(serialization.Encoding.DER),
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        at=at,
        family=family,
        generation=generation,
    )


def record_key(
    session: UnitOfWork,
    *,
    ref: KeyRef,
    purpose: str,
    cert: x509.Certificate,
    at: dt.datetime,
) -> int:
    public_der = spki_der(cert.public_key())
    return repo.add_key_reference(
        session,
        label=ref.label,
        backend=ref.backend,
        token=ref.token,
        key_id=ref.key_id,
        algorithm=ref.algorithm.value,
        purpose=purpose,
        public_key_der=public_der,
        spki_sha256=hashlib.sha256(public_der).hexdigest(),
        at=at,
    )


def create_hierarchy(
    db: Database,
    backend: KeyBackend,
    settings: HierarchySettings,
    actor: Actor,
    clock: Callable[[], dt.datetime],
) -> dict[str, x509.Certificate]:
    """Generate every key inside the backend, build and sign the certificates, store and audit them.

    :raises HierarchyExists: when any CA is already recorded.
    """
    with db.read() as s:
        if repo.list_cas(s):
            raise HierarchyExists("a CA hierarchy already exists in this database; qtsp init never overwrites it")
    now = clock().replace(microsecond=0)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    info = backend.info()

    def key(label: str, algorithm: KeyAlgorithm) -> tuple[KeyRef, SigningKey]:
        ref = backend.generate(f"{label}-{stamp}", algorithm)
        return ref, backend.signing_key(ref)

    # Root CA: self-signed; RFC 5280 §4.2.1.9 basicConstraints critical, cA true.
    root_ref, root_key = key("root-ca", settings.root_algorithm)
    root_name = _ca_name(settings, f"{settings.organization_name} Root CA 1")
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root_cert = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(new_serial())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=settings.root_validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(root_ski, critical=False)
        .sign(root_key, settings.root_algorithm.default_hash())
    )
    certs: dict[str, x509.Certificate] = {"root": root_cert}
    records: list[tuple[str, KeyRef, x509.Certificate, str | None]] = [("root", root_ref, root_cert, None)]
    responders: list[tuple[str, KeyRef, x509.Certificate]] = []

    issuing_not_after = min(now + dt.timedelta(days=settings.issuing_validity_days), root_cert.not_valid_after_utc)
    for ca_name, title in ISSUING_CAS.items():
        ref, ca_key = key(f"{ca_name}-ca", settings.issuing_algorithm)
        cert = issuing_ca_certificate(
            settings,
            root_cert,
            root_key,
            settings.root_algorithm.default_hash(),
            ca_key,
            title,
            1,
            now,
            issuing_not_after,
        )
        certs[ca_name] = cert
        records.append((ca_name, ref, cert, "root"))
        responders.append((ca_name, *issue_responder(backend, settings, ca_name, cert, ca_key, now, stamp)))

    # Store everything in one transaction, with the ceremony record (EN 319 411-1 GEN-6.5.1-13A).
    with db.write() as s:
        ids: dict[str, int] = {}
        inventory: list[dict[str, str | None]] = []
        for ca_name, ref, cert, parent in records:
            ids[ca_name] = _store_ca(
                s,
                name=ca_name,
                role="root" if parent is None else "issuing",
                parent_id=ids[parent] if parent else None,
                ref=ref,
                cert=cert,
                at=now,
            )
            inventory.append(_inventory_entry(ca_name, "ca", ref, cert))
        for ca_name, ref, cert in responders:
            store_responder(s, ids[ca_name], ref, cert, now)
            inventory.append(_inventory_entry(f"{ca_name}-ocsp", "ocsp", ref, cert))
        repo.append_audit(
            s,
            at=now,
            actor=actor.name,
            role=actor.role,
            action="ceremony.hierarchy_created",
            object_type="hierarchy",
            object_id="root",
            details={
                "backend": info.backend,
                "token_id": info.token_id,
                "token_model": info.model,
                "token_manufacturer": info.manufacturer,
                "qualified_backend": info.qualified,
                "base_url": settings.base_url,
                "keys": inventory,  # type: ignore[dict-item]
            },
        )
    return certs


def _inventory_entry(name: str, purpose: str, ref: KeyRef, cert: x509.Certificate) -> dict[str, str | None]:
    """EN 319 411-1 GEN-6.5.1-13A: key inventory with a SHA-256 public-key fingerprint."""
    return {
        "name": name,
        "purpose": purpose,
        "label": ref.label,
        "key_id": ref.key_id,
        "algorithm": ref.algorithm.value,
        "public_key_sha256": spki_sha256(cert.public_key()),
        "certificate_sha256": cert.fingerprint(hashes.SHA256()).hex(),
        "subject": cert.subject.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def issuing_ca_certificate(
    settings: HierarchySettings,
    root_cert: x509.Certificate,
    root_key: SigningKey,
    root_hash: hashes.SHA256 | hashes.SHA384 | hashes.SHA512,
    ca_key: SigningKey,
    title: str,
    generation: int,
    now: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """An issuing CA certificate signed by the root (RFC 5280 §4.2.1.9 pathLen 0; the root's CRL
    distribution point and caIssuers).  Generation ``n`` is named "... <title> n"."""
    root_ski = root_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    root_links = ca_urls(settings.base_url, "root")
    return (
        x509.CertificateBuilder()
        .subject_name(_ca_name(settings, f"{settings.organization_name} {title} {generation}"))
        .issuer_name(root_cert.subject)
        .public_key(ca_key.public_key())
        .serial_number(new_serial())
        .not_valid_before(now)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"), None)]),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(root_links.crl)], None, None, None)]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(root_links.ca_issuers),
                    )
                ]
            ),
            critical=False,
        )
        .sign(root_key, root_hash)
    )


def issue_responder(
    backend: KeyBackend,
    settings: HierarchySettings,
    ca_name: str,
    ca_cert: x509.Certificate,
    ca_key: SigningKey,
    now: dt.datetime,
    stamp: str,
) -> tuple[KeyRef, x509.Certificate]:
    """A delegated OCSP responder certificate issued directly by the CA (RFC 6960 §4.2.2.2).

    EKU id-kp-OCSPSigning; id-pkix-ocsp-nocheck (EN 319 411-1 CSS-6.6.3-01A) and therefore a short
    validity; no AIA OCSP URL (CSS-6.6.3-01B).
    """
    label = f"{ca_name}-ocsp-{stamp}"
    try:
        ref = backend.generate(label, settings.ocsp_algorithm)
    except KeyExists:  # a second responder within the same second (a forced renewal right after init)
        ref = backend.generate(f"{label}-{secrets.token_hex(3)}", settings.ocsp_algorithm)
    key = backend.signing_key(ref)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    not_after = min(now + dt.timedelta(days=settings.ocsp_validity_days), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_ca_name(settings, f"{ISSUING_CAS.get(ca_name, ca_name)} OCSP Responder {stamp}"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(new_serial())
        .not_valid_before(now)
        .not_valid_after(not_after)
        .add_extension(
            key_usage("digitalSignature"),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, settings.issuing_algorithm.default_hash())
    )
    return ref, cert


def store_responder(session: UnitOfWork, issuer_id: int, ref: KeyRef, cert: x509.Certificate, at: dt.datetime) -> int:
    key_ref_id = record_key(session, ref=ref, purpose="ocsp", cert=cert, at=at)
    der = cert.public_bytes(serialization.Encoding.DER)
    cert_id = repo.add_certificate(
        session,
        issuer_id=issuer_id,
        serial=serial_hex(cert.serial_number),
        profile="ocsp-responder",
        subject=cert.subject.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        status="good",
        der=der,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        spki_sha256=spki_sha256(cert.public_key()),
        journal_id=None,
        at=at,
    )
    return repo.add_ocsp_responder(
        session,
        issuer_id=issuer_id,
        key_ref_id=key_ref_id,
        certificate_id=cert_id,
        not_after=cert.not_valid_after_utc,
        at=at,
    )


def _key_ref(snapshot: repo.KeySnapshot) -> KeyRef:
    return KeyRef(
        backend=snapshot.backend,
        label=snapshot.label,
        key_id=snapshot.key_id,
        algorithm=KeyAlgorithm(snapshot.algorithm),
        token=snapshot.token,
    )


def responder_key_ref(ca: repo.CASnapshot) -> KeyRef | None:
    return _key_ref(ca.responder_key) if ca.responder_key else None


def ca_signing_key(backend: KeyBackend, ca: repo.CASnapshot) -> tuple[KeyAlgorithm, SigningKey]:
    """The signing key of any CA of the hierarchy, the root included (its CA revocation list)."""
    ref = _key_ref(ca.key)
    if ref.backend != backend.name:
        raise HierarchyMismatch(
            f"keys.backend: CA {ca.name}'s key is in the {ref.backend} backend, "
            f"but the configured backend is {backend.name}"
        )
    return ref.algorithm, backend.signing_key(ref)


def load_issuers(
    db: Database,
    backend: KeyBackend,
    base_url: str,
    cp_arc: str,
    pds: tuple[tuple[str, str], ...],
) -> Mapping[str, Issuer]:
    """The issuing CAs of the stored hierarchy, each with its signing key from the backend."""
    with db.read() as s:
        cas = repo.list_cas(s)
    out: dict[str, Issuer] = {}
    # Issuance goes to the newest generation of each family (a rollover supersedes the older one,
    # which keeps publishing CRLs and OCSP for the certificates it issued).
    for ca in cas:
        if ca.role != "issuing" or ca.superseded_at is not None:
            continue
        algorithm, signing_key = ca_signing_key(backend, ca)
        cert = x509.load_der_x509_certificate(ca.certificate_der)
        links: IssuerLinks = ca_urls(base_url, ca.name)
        out[ca.family] = Issuer(
            id=ca.id,
            view=IssuerView(name=ca.name, certificate=cert, links=links, cp_arc=cp_arc, pds=pds),
            algorithm=algorithm,
            signing_key=signing_key,
        )
    return out


_ROOT_CLOSED: Final = (
    "the root CA is closed (its last CARL is published): it signs no new CA certificate (EN 319 411-2 CSS-6.3.10-07)"
)


def rollover_issuing_ca(
    db: Database,
    backend: KeyBackend,
    settings: HierarchySettings,
    family: str,
    actor: Actor,
    clock: Callable[[], dt.datetime],
) -> tuple[str, x509.Certificate]:
    """Key rollover of an issuing CA: a new key generated in the backend, a new CA certificate
    (generation n+1, "... <title> n+1") from the root, a delegated OCSP responder for it, and the
    older generation marked superseded (it stops issuing but keeps its CRLs and OCSP answers for
    the certificates it issued, EN 319 411-2 CSS-6.3.10-02).  Audited as ``ceremony.ca_rollover``.

    :returns: the new CA's name (``<family>-g<n>``) and certificate.
    :raises LookupError: no such issuing CA family.
    """
    with db.read() as s:
        cas = repo.list_cas(s)
    current = max(
        (c for c in cas if c.family == family and c.role == "issuing"), key=lambda c: c.generation, default=None
    )
    root = next((c for c in cas if c.role == "root"), None)
    if current is None or root is None:
        raise LookupError(f"no issuing CA family {family!r} (the families are {', '.join(sorted(ISSUING_CAS))})")
    with db.read() as s:
        if crl_repo.closed_at(s, root.id) is not None:
            raise CAClosed(_ROOT_CLOSED)
    now = clock().replace(microsecond=0)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    generation = current.generation + 1
    name = f"{family}-g{generation}"
    root_cert = x509.load_der_x509_certificate(root.certificate_der)
    root_algorithm, root_key = ca_signing_key(backend, root)
    root_hash = root_algorithm.default_hash()
    ref = backend.generate(f"{family}-ca-g{generation}-{stamp}", settings.issuing_algorithm)
    ca_key = backend.signing_key(ref)
    not_after = min(now + dt.timedelta(days=settings.issuing_validity_days), root_cert.not_valid_after_utc)
    title = ISSUING_CAS.get(family, family)
    cert = issuing_ca_certificate(settings, root_cert, root_key, root_hash, ca_key, title, generation, now, not_after)
    responder_ref, responder_cert = issue_responder(backend, settings, name, cert, ca_key, now, stamp)
    with db.write() as s:
        if crl_repo.closed_at(s, root.id, lock=True) is not None:  # closed while the keys were made
            raise CAClosed(_ROOT_CLOSED)
        new_id = _store_ca(
            s,
            name=name,
            role="issuing",
            parent_id=root.id,
            ref=ref,
            cert=cert,
            at=now,
            family=family,
            generation=generation,
        )
        store_responder(s, new_id, responder_ref, responder_cert, now)
        repo.supersede_ca(s, current.id, now)
        repo.append_audit(
            s,
            at=now,
            actor=actor.name,
            role=actor.role,
            action="ceremony.ca_rollover",
            object_type="ca",
            object_id=name,
            details={
                "family": family,
                "previous": current.name,
                "generation": generation,
                "backend": backend.info().backend,
                "token_id": backend.info().token_id,
                "keys": [
                    dict(_inventory_entry(name, "ca", ref, cert)),
                    dict(_inventory_entry(f"{name}-ocsp", "ocsp", responder_ref, responder_cert)),
                ],
            },
        )
    return name, cert
