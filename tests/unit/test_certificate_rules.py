"""Our own post-build certificate rules (ca.issuance.lint.certificate_rules): one broken
certificate per rule, each must produce exactly the rule's finding; a faithful certificate none."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID

from ca.asn1 import parse_qc_statements, qc_statements_der
from ca.issuance.builder import IssuerView, build_end_entity, ca_urls, semantics_identifier, validity_window
from ca.issuance.lint import certificate_rules
from ca.profiles import load_builtin_profiles, oids
from ca.profiles.subject import SubjectInput

PROFILES = load_builtin_profiles()
NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
PDS = (("https://qtsp.example.com/pds-en.pdf", "en"), ("https://qtsp.example.com/pds-de.pdf", "de"))
CA_KEY = ec.generate_private_key(ec.SECP256R1())
EE_KEY = ec.generate_private_key(ec.SECP256R1())
CA_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test QTSP GmbH"),
        x509.NameAttribute(oids.ORGANIZATION_IDENTIFIER, "NTRDE-HRB1"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Test Qualified CA"),
    ]
)
CA_CERT = (
    x509.CertificateBuilder()
    .subject_name(CA_NAME)
    .issuer_name(CA_NAME)
    .public_key(CA_KEY.public_key())
    .serial_number(1 << 70)
    .not_valid_before(NOW - dt.timedelta(days=1))
    .not_valid_after(NOW + dt.timedelta(days=3650))
    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    .add_extension(x509.SubjectKeyIdentifier.from_public_key(CA_KEY.public_key()), critical=False)
    .sign(CA_KEY, hashes.SHA256())
)
ISSUER = IssuerView(
    name="qes", certificate=CA_CERT, links=ca_urls("http://qtsp.example.com", "qes"), cp_arc="1.2.3", pds=PDS
)
SUBJECTS = {
    "qes-natural": SubjectInput(
        countryName="DE", commonName="Erika Mustermann", givenName="Erika", surname="Mustermann",
        serialNumber="IDCDE-T22000129",
    ),
    "qseal-legal": SubjectInput(
        countryName="DE", organizationName="Muster GmbH", organizationIdentifier="VATDE-123456789",
        commonName="Muster Siegel",
    ),
    "upc-auth": SubjectInput(countryName="DE", commonName="Erika Mustermann", givenName="Erika", surname="Mustermann"),
}  # fmt: skip

Mutation = Callable[[list[x509.Extension[x509.ExtensionType]]], list[x509.Extension[x509.ExtensionType]]]


def _good_extensions(profile: str) -> tuple[x509.CertificateBuilder, list[x509.Extension[x509.ExtensionType]]]:
    builder = build_end_entity(
        profile=PROFILES[profile],
        issuer=ISSUER,
        subject=SUBJECTS[profile],
        public_key=EE_KEY.public_key(),
        serial=1 << 100,
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=365),
    )
    cert = builder.sign(CA_KEY, hashes.SHA256())
    return builder, list(cert.extensions)


def _cert(
    profile: str,
    mutate: Mutation = lambda e: e,
    *,
    serial: int = 1 << 100,
    not_after: dt.datetime | None = None,
    issuer: x509.Name = CA_NAME,
) -> x509.Certificate:
    _, extensions = _good_extensions(profile)
    builder = (
        x509.CertificateBuilder()
        .subject_name(SUBJECTS[profile].to_x509_name(PROFILES[profile].subject_kind))
        .issuer_name(issuer)
        .public_key(EE_KEY.public_key())
        .serial_number(serial)
        .not_valid_before(NOW)
        .not_valid_after(not_after or NOW + dt.timedelta(days=365))
    )
    for ext in mutate(extensions):
        builder = builder.add_extension(ext.value, critical=ext.critical)
    return builder.sign(CA_KEY, hashes.SHA256())


def _codes(cert: x509.Certificate, profile: str) -> list[str]:
    semantics = semantics_identifier(PROFILES[profile], SUBJECTS[profile])
    return sorted(f.code for f in certificate_rules(cert, PROFILES[profile], CA_CERT, semantics))


def _without(oid: x509.ObjectIdentifier) -> Mutation:
    return lambda exts: [e for e in exts if e.oid != oid]


def _replace(oid: x509.ObjectIdentifier, value: x509.ExtensionType, critical: bool | None = None) -> Mutation:
    def mutate(exts: list[x509.Extension[x509.ExtensionType]]) -> list[x509.Extension[x509.ExtensionType]]:
        return [
            x509.Extension(oid, e.critical if critical is None else critical, value) if e.oid == oid else e
            for e in exts
        ]

    return mutate


def _add(value: x509.ExtensionType, critical: bool = False) -> Mutation:
    return lambda exts: [*exts, x509.Extension(value.oid, critical, value)]


def _qc(**changes: object) -> Mutation:
    args: dict[str, object] = {
        "compliance": True,
        "sscd": True,
        "qc_type": "esign",
        "pds": PDS,
        "semantics_id": oids.SEMANTICS_ID_NATURAL.dotted_string,
    }
    args.update(changes)
    der = qc_statements_der(**args)  # type: ignore[arg-type]
    return _replace(oids.QC_STATEMENTS, x509.UnrecognizedExtension(oids.QC_STATEMENTS, der))


def _ku(**bits: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")  # fmt: skip
    return x509.KeyUsage(**{n: bits.get(n, False) for n in names})


URI = x509.UniformResourceIdentifier


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_faithful_certificates_have_no_findings(profile: str) -> None:
    assert _codes(_cert(profile), profile) == []


CASES: list[tuple[str, str, dict[str, object]]] = [
    ("serial-too-short", "qtsp.serial", {"serial": 1 << 40}),
    ("after-issuer", "qtsp.validity", {"not_after": NOW + dt.timedelta(days=3651)}),
    ("wrong-issuer", "qtsp.issuer", {"issuer": x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other")])}),
    ("policy-constraints", "qtsp.forbidden_extension",
     {"mutate": _add(x509.PolicyConstraints(require_explicit_policy=0, inhibit_policy_mapping=None))}),
    ("critical-policies", "qtsp.criticality",
     {"mutate": lambda exts: [x509.Extension(e.oid, True, e.value)
                              if e.oid == ExtensionOID.CERTIFICATE_POLICIES else e for e in exts]}),
    ("no-aki", "qtsp.aki", {"mutate": _without(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)}),
    ("no-ski", "qtsp.ski", {"mutate": _without(ExtensionOID.SUBJECT_KEY_IDENTIFIER)}),
    ("ku-not-critical", "qtsp.key_usage",
     {"mutate": _replace(ExtensionOID.KEY_USAGE, _ku(content_commitment=True), critical=False)}),
    ("ku-mixed", "qtsp.key_usage",
     {"mutate": _replace(ExtensionOID.KEY_USAGE, _ku(content_commitment=True, digital_signature=True))}),
    ("two-etsi-policies", "qtsp.policies",
     {"mutate": _replace(ExtensionOID.CERTIFICATE_POLICIES, x509.CertificatePolicies(
         [x509.PolicyInformation(oids.QCP_N_QSCD, None), x509.PolicyInformation(oids.QCP_N, None)]))}),
    ("no-policies", "qtsp.policies", {"mutate": _without(ExtensionOID.CERTIFICATE_POLICIES)}),
    ("aia-no-ocsp", "qtsp.aia",
     {"mutate": _replace(ExtensionOID.AUTHORITY_INFORMATION_ACCESS, x509.AuthorityInformationAccess(
         [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, URI("http://qtsp.example.com/ca.crt"))]))}),
    ("aia-ldap", "qtsp.aia",
     {"mutate": _replace(ExtensionOID.AUTHORITY_INFORMATION_ACCESS, x509.AuthorityInformationAccess([
         x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, URI("ldap://qtsp.example.com/ca")),
         x509.AccessDescription(AuthorityInformationAccessOID.OCSP, URI("http://qtsp.example.com/ocsp"))]))}),
    ("no-crl-dp", "qtsp.crl_dp", {"mutate": _without(ExtensionOID.CRL_DISTRIBUTION_POINTS)}),
    ("crl-dp-https-only", "qtsp.crl_dp",
     {"mutate": _replace(ExtensionOID.CRL_DISTRIBUTION_POINTS, x509.CRLDistributionPoints(
         [x509.DistributionPoint([URI("https://qtsp.example.com/qes.crl")], None, None, None)]))}),
    ("no-qc-statements", "qtsp.qc_statements", {"mutate": _without(oids.QC_STATEMENTS)}),
    ("qc-garbage", "qtsp.qc_statements",
     {"mutate": _replace(oids.QC_STATEMENTS, x509.UnrecognizedExtension(oids.QC_STATEMENTS, b"\x30\x03\x02\x01\x01"))}),
    ("no-qc-compliance", "qtsp.qc_compliance", {"mutate": _qc(compliance=False)}),
    ("no-qc-sscd", "qtsp.qc_sscd", {"mutate": _qc(sscd=False)}),
    ("qc-type-eseal", "qtsp.qc_type", {"mutate": _qc(qc_type="eseal")}),
    ("pds-no-english", "qtsp.qc_pds", {"mutate": _qc(pds=(("https://qtsp.example.com/pds-de.pdf", "de"),))}),
    ("pds-two-english", "qtsp.qc_pds",
     {"mutate": _qc(pds=(("https://a.example.com/en.pdf", "en"), ("https://b.example.com/en.pdf", "en")))}),
    ("pds-http", "qtsp.qc_pds", {"mutate": _qc(pds=(("http://qtsp.example.com/pds-en.pdf", "en"),))}),
    ("semantics-missing", "qtsp.semantics", {"mutate": _qc(semantics_id=None)}),
    ("semantics-legal", "qtsp.semantics", {"mutate": _qc(semantics_id=oids.SEMANTICS_ID_LEGAL.dotted_string)}),
    ("qc-ident-method-unexpected", "qtsp.qc_ident_method",
     {"mutate": _qc(ident_method=oids.QCS_QC_IDENT_METHOD.dotted_string + ".3")}),
    ("qc-retention-unexpected", "qtsp.qc_unexpected", {"mutate": _qc(retention_years=30)}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "code", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_fires_alone(case: str, code: str, kwargs: dict[str, object]) -> None:
    cert = _cert("qes-natural", **kwargs)  # type: ignore[arg-type]
    codes = _codes(cert, "qes-natural")
    assert codes and set(codes) == {code}, codes


def test_qc_statements_in_an_authentication_certificate() -> None:
    der = qc_statements_der(compliance=True, sscd=False, qc_type="esign")
    cert = _cert("upc-auth", _add(x509.UnrecognizedExtension(oids.QC_STATEMENTS, der)))
    assert _codes(cert, "upc-auth") == ["qtsp.qc_statements"]


def test_seal_with_esign_type_is_refused() -> None:
    der = qc_statements_der(
        compliance=True, sscd=True, qc_type="esign", pds=PDS, semantics_id=oids.SEMANTICS_ID_LEGAL.dotted_string
    )
    cert = _cert("qseal-legal", _replace(oids.QC_STATEMENTS, x509.UnrecognizedExtension(oids.QC_STATEMENTS, der)))
    assert _codes(cert, "qseal-legal") == ["qtsp.qc_type"]


def test_cc_legislation_is_refused() -> None:
    """EN 319 412-5 QCS-4.2.1-01: QcCClegislation marks a non-EU QC; appended as a raw statement."""
    good = _cert("qes-natural").extensions.get_extension_for_oid(oids.QC_STATEMENTS).value
    assert isinstance(good, x509.UnrecognizedExtension)
    # SEQUENCE { OID 0.4.0.1862.1.7 (06 06 04 00 8e 46 01 07), SEQUENCE { PrintableString "CH" } }
    statement = bytes.fromhex("300e" + "060604008e460107" + "3004" + "1302" + "4348")
    header = 2 + (good.value[1] & 0x7F if good.value[1] & 0x80 else 0)  # DER tag + length octets
    content = good.value[header:] + statement
    length = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    der = b"\x30" + (length if len(content) < 0x80 else bytes([0x80 | len(length)]) + length) + content
    assert parse_qc_statements(der).cc_legislation_present  # the fixture is what it claims to be
    cert = _cert("qes-natural", _replace(oids.QC_STATEMENTS, x509.UnrecognizedExtension(oids.QC_STATEMENTS, der)))
    assert _codes(cert, "qes-natural") == ["qtsp.qc_cc_legislation"]


def test_validity_window_caps_at_issuer() -> None:
    nb, na = validity_window(NOW, 1095, NOW + dt.timedelta(days=10))
    assert nb == NOW and na == NOW + dt.timedelta(days=10)
    nb, na = validity_window(NOW.replace(microsecond=123), 365, NOW + dt.timedelta(days=3650))
    assert nb.microsecond == 0 and na == nb + dt.timedelta(days=365) - dt.timedelta(seconds=1)


def test_issuer_view_is_hashable_for_the_extension_cache() -> None:
    assert hash(dataclasses.replace(ISSUER)) == hash(ISSUER)
