"""Build the TBS of an end-entity certificate from a profile, an issuer and a verified subject.

Pure: takes values and returns a ``CertificateBuilder``; signing happens elsewhere.  The
extensions that depend only on (profile, issuer) are built once and cached (FIELD-NOTES:
asn1crypto is slow, so encode fixed parts once).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from ca.asn1 import qc_statements_der
from ca.profiles import oids
from ca.profiles.profile import Profile
from ca.profiles.subject import SubjectInput, legal_semantics_applies, natural_semantics_applies

__all__ = [
    "IssuerLinks",
    "IssuerView",
    "admission_extension",
    "build_end_entity",
    "ca_urls",
    "semantics_identifier",
    "validity_window",
]


@dataclass(frozen=True, slots=True)
class IssuerLinks:
    """The URLs written into certificates issued by one CA (must match what ``qtsp serve`` serves)."""

    ca_issuers: str
    ocsp: str
    crl: str


def ca_urls(base_url: str, ca_name: str) -> IssuerLinks:
    """``{base}/ca/{name}.crt`` (DER), ``{base}/ocsp``, ``{base}/crl/{name}.crl``."""
    base = base_url.rstrip("/")
    return IssuerLinks(ca_issuers=f"{base}/ca/{ca_name}.crt", ocsp=f"{base}/ocsp", crl=f"{base}/crl/{ca_name}.crl")


@dataclass(frozen=True, slots=True)
class IssuerView:
    """What the builder needs to know about the issuing CA."""

    name: str
    certificate: x509.Certificate
    links: IssuerLinks
    cp_arc: str
    pds: tuple[tuple[str, str], ...]


def validity_window(now: dt.datetime, days: int, issuer_not_after: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """notBefore = now (whole seconds); notAfter = notBefore + days, capped by the issuer's notAfter.

    RFC 5280 §4.1.2.5 counts notAfter inclusively, so one second is taken off.
    EN 319 411-1 GEN-6.3.3-05: end-entity validity does not exceed the issuing CA certificate's.
    """
    not_before = now.astimezone(dt.UTC).replace(microsecond=0)
    not_after = not_before + dt.timedelta(days=days) - dt.timedelta(seconds=1)
    return not_before, min(not_after, issuer_not_after)


def key_usage(*bits: str) -> x509.KeyUsage:
    """A KeyUsage with exactly the named bits (RFC 5280 §4.2.1.3 names: ``digitalSignature``,
    ``contentCommitment`` (nonRepudiation), ``keyEncipherment``, ``dataEncipherment``,
    ``keyAgreement``, ``keyCertSign``, ``cRLSign``)."""
    unknown = set(bits) - {
        "digitalSignature",
        "contentCommitment",
        "keyEncipherment",
        "dataEncipherment",
        "keyAgreement",
        "keyCertSign",
        "cRLSign",
    }
    if unknown:
        raise ValueError(f"unknown key usage bits: {', '.join(sorted(unknown))}")
    return x509.KeyUsage(
        digital_signature="digitalSignature" in bits,
        content_commitment="contentCommitment" in bits,
        key_encipherment="keyEncipherment" in bits,
        data_encipherment="dataEncipherment" in bits,
        key_agreement="keyAgreement" in bits,
        key_cert_sign="keyCertSign" in bits,
        crl_sign="cRLSign" in bits,
        encipher_only=False,
        decipher_only=False,
    )


@functools.lru_cache(maxsize=64)
def _fixed_extensions(profile: Profile, issuer: IssuerView) -> tuple[x509.Extension[x509.ExtensionType], ...]:
    """Extensions that depend on the profile and the issuer only."""
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
        issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    )
    # EN 319 412-2 NAT-4.3.2 / LEG-4.3.1: key usage critical, exactly the profile's bits.
    ku = key_usage(*(b for b in profile.key_usage if b not in ("keyCertSign", "cRLSign")))
    # EN 319 412-2 GEN-4.3.3-2 and EN 319 411-2 QCS-5.2-1: the ETSI policy, plus our own CP OID.
    policies = x509.CertificatePolicies(
        [
            x509.PolicyInformation(profile.etsi_policy, None),
            x509.PolicyInformation(profile.own_policy_oid(issuer.cp_arc), None),
        ]
    )
    # EN 319 412-2 GEN-4.3.11-1..5: an http CRL distribution point, not critical.
    cdp = x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(issuer.links.crl)], None, None, None)]
    )
    # EN 319 412-2 GEN-4.4.1-2..6: caIssuers and OCSP over http, not critical.
    aia = x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(issuer.links.ca_issuers)
            ),
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(issuer.links.ocsp)
            ),
        ]
    )
    return (
        x509.Extension(aki.oid, False, aki),
        x509.Extension(ku.oid, True, ku),
        x509.Extension(policies.oid, False, policies),
        x509.Extension(cdp.oid, False, cdp),
        x509.Extension(aia.oid, False, aia),
    )


@functools.lru_cache(maxsize=64)
def _qc_statements(
    profile: Profile, pds: tuple[tuple[str, str], ...], semantics_id: str | None, ident_method: str | None = None
) -> bytes:
    qc = profile.qc
    assert qc is not None
    return qc_statements_der(
        compliance=qc.compliance,
        sscd=qc.sscd,
        qc_type=qc.qc_type,
        pds=pds if qc.pds else (),
        semantics_id=semantics_id,
        ident_method=ident_method,
    )


def semantics_identifier(profile: Profile, subject: SubjectInput) -> str | None:
    """EN 319 412-1 §5.1.3/§5.1.4: a semantics identifier when the identifier uses an ETSI type."""
    if profile.qc is None:
        return None
    if profile.subject_kind == "natural":
        return oids.SEMANTICS_ID_NATURAL.dotted_string if natural_semantics_applies(subject.serialNumber) else None
    return oids.SEMANTICS_ID_LEGAL.dotted_string if legal_semantics_applies(subject.organizationIdentifier) else None


@functools.lru_cache(maxsize=64, typed=True)  # registration numbers are per person: few repeat
def admission_extension(
    authority: str | None, profession: str, profession_oid: str | None, registration_number: str | None
) -> x509.Admissions:
    """The Common PKI AdmissionSyntax (1.3.36.8.3.3) of a professional attribute (STANDARDS.md §1.8).

    One Admissions with one ProfessionInfo.  The admitting body (e.g. a chamber) is the outer
    admissionAuthority, a directoryName holding its organizationName.  ProfessionInfo carries the
    profession text, the profession OID if any, the registration number, and namingAuthorityId
    1.3.36.8.3.11.1 ("Recht, Wirtschaft, Steuern") when the profession OID is in that arc.
    The value limits (128 characters, PrintableString registration number) are subject rules
    checked before this is called (``ca.profiles.subject.admission_rules``).
    """
    rws = oids.ISISMTT_NAMING_AUTHORITY_RECHT_WIRTSCHAFT_STEUERN
    oid = x509.ObjectIdentifier(profession_oid) if profession_oid else None
    naming = (
        x509.NamingAuthority(id=rws, url=None, text=None)
        if oid is not None and oid.dotted_string.startswith(rws.dotted_string + ".")
        else None
    )
    info = x509.ProfessionInfo(
        naming_authority=naming,
        profession_items=[profession],
        profession_oids=[oid] if oid is not None else None,
        registration_number=registration_number,
        add_profession_info=None,
    )
    admission_authority = (
        x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, authority)])) if authority else None
    )
    return x509.Admissions(admission_authority, [x509.Admission(None, None, [info])])


def build_end_entity(
    *,
    profile: Profile,
    issuer: IssuerView,
    subject: SubjectInput,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    serial: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
    qc_ident_method: str | None = None,
) -> x509.CertificateBuilder:
    """The complete, deterministic TBS for one certificate (same inputs, same bytes).

    :param qc_ident_method: dotted OID of a QcIdentMethod statement (EN 319 412-5 V2.5.1 §4.3.5)
        for a qualified profile, e.g. a follow-up certificate requested with an existing QES.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject.to_x509_name(profile.subject_kind))
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    # RFC 5280 §4.2.1.2: SKI (method 1) in end-entity certificates (SHOULD).
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    for ext in _fixed_extensions(profile, issuer):
        builder = builder.add_extension(ext.value, critical=ext.critical)
    ekus: Sequence[x509.ObjectIdentifier] = profile.extended_key_usage
    if subject.email is not None:
        ekus = (*ekus, *profile.email_extended_key_usage)
        # EN 319 412-2 GEN-4.3.5-1: subjectAltName MUST NOT be critical when the subject DN is present.
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(subject.email)]), critical=False)
    if ekus:
        # EN 319 412-2 GEN-4.3.10-1: extKeyUsage not critical.
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    if profile.qc is not None:
        # EN 319 412-5 QCS-4.1-02: qcStatements not critical.
        der = _qc_statements(profile, issuer.pds, semantics_identifier(profile, subject), qc_ident_method)
        builder = builder.add_extension(x509.UnrecognizedExtension(oids.QC_STATEMENTS, der), critical=False)
    if subject.admission is not None:
        adm = subject.admission
        # Common PKI Admission (1.3.36.8.3.3), not critical (STANDARDS.md §1.8).
        builder = builder.add_extension(
            admission_extension(adm.authority, adm.profession, adm.professionOid, adm.registrationNumber),
            critical=False,
        )
    return builder
