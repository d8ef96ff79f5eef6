"""qcStatements DER (ca.asn1) and the Admission extension (ca.issuance.builder), checked against
independent decoders.

Oracles: hand-computed DER, cryptography's own ``x509.Admissions`` encoder/decoder, the OpenSSL CLI's
admission printer, and pkilint 0.13.3 (pyasn1 with the EN 319 412-5 Annex B module) over whole
certificates built with cryptography.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID
from pkilint import etsi, finding_filter, loader
from pkilint.etsi import etsi_constants
from pkilint.pkix import certificate
from pkilint.validation import ValidationFindingSeverity

from ca.asn1 import (
    QC_TYPES,
    Asn1DecodeError,
    Asn1EncodeError,
    QCStatementsInfo,
    parse_qc_statements,
    qc_statements_der,
)
from ca.issuance.builder import admission_extension
from ca.issuance.lint import KNOWN_PKILINT_GAPS, PkilintGate
from ca.profiles import oids
from ca.profiles.subject import SubjectInput, legal_person_rules, natural_person_rules

PDS = (("https://pki.example.com/pds_en.pdf", "en"), ("https://pki.example.com/pds_de.pdf", "de"))


def tlv(tag: int, content: bytes) -> bytes:
    """Minimal DER TLV (short and long form lengths)."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def oid_der(dotted: str) -> bytes:
    """DER OBJECT IDENTIFIER, computed independently of the code under test."""
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


# --- qcStatements -----------------------------------------------------------------------------------


class TestQcStatementsEncoding:
    def test_compliance_only_matches_hand_encoding(self) -> None:
        expected = seq(seq(oid_der("0.4.0.1862.1.1")))
        assert expected.hex() == "300a3008060604008e460101"
        assert qc_statements_der(compliance=True, sscd=False, qc_type=None) == expected

    def test_full_qes_set_matches_hand_encoding_and_order(self) -> None:
        expected = seq(
            seq(oid_der("0.4.0.1862.1.1")),
            seq(oid_der("0.4.0.1862.1.4")),
            seq(oid_der("0.4.0.1862.1.6"), seq(oid_der("0.4.0.1862.1.6.1"))),
            seq(
                oid_der("0.4.0.1862.1.5"),
                seq(*(seq(tlv(0x16, url.encode()), tlv(0x13, lang.encode())) for url, lang in PDS)),
            ),
            seq(oid_der("1.3.6.1.5.5.7.11.2"), seq(oid_der("0.4.0.194121.1.1"))),
            seq(oid_der("0.4.0.1862.1.3"), tlv(0x02, bytes([30]))),
            seq(oid_der("0.4.0.1862.1.8"), seq(oid_der("0.4.0.1862.1.8.3"))),
        )
        got = qc_statements_der(
            compliance=True,
            sscd=True,
            qc_type="esign",
            pds=PDS,
            semantics_id="0.4.0.194121.1.1",
            retention_years=30,
            ident_method="0.4.0.1862.1.8.3",
        )
        assert got == expected

    def test_deterministic_and_list_pds_accepted(self) -> None:
        a = qc_statements_der(compliance=True, sscd=False, qc_type="eseal", pds=[list(p) for p in PDS])  # type: ignore[misc]
        b = qc_statements_der(compliance=True, sscd=False, qc_type="eseal", pds=PDS)
        assert a == b

    @pytest.mark.parametrize(("name", "oid"), sorted(QC_TYPES.items()), ids=sorted(QC_TYPES))
    def test_qc_type_oids(self, name: str, oid: str) -> None:
        der = qc_statements_der(compliance=True, sscd=False, qc_type=name)
        assert parse_qc_statements(der).qc_types == (oid,)
        assert oid == {"esign": oids.QCT_ESIGN, "eseal": oids.QCT_ESEAL, "web": oids.QCT_WEB}[name].dotted_string

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"qc_type": "qes"}, id="unknown-qc-type"),
            pytest.param({"pds": (("https://x.example/ä.pdf", "en"),)}, id="pds-url-not-ia5"),
            pytest.param({"pds": (("https://x.example/a b.pdf", "en"),)}, id="pds-url-space"),
            pytest.param({"pds": (("", "en"),)}, id="pds-url-empty"),
            pytest.param({"pds": (("https://x.example/a.pdf", "eng"),)}, id="pds-lang-3-letters"),
            pytest.param({"pds": (("https://x.example/a.pdf", "e1"),)}, id="pds-lang-digit"),
            pytest.param({"semantics_id": "semanticsId-Natural"}, id="semantics-not-dotted"),
            pytest.param({"semantics_id": "1.45.3"}, id="semantics-bad-second-arc"),
            pytest.param({"retention_years": 0}, id="retention-zero"),
            pytest.param({"retention_years": True}, id="retention-bool"),
            pytest.param({"ident_method": "0.4.0.1862.1.8."}, id="ident-method-trailing-dot"),
        ],
    )
    def test_unencodable_values_refused(self, kwargs: dict[str, object]) -> None:
        args: dict[str, object] = {"compliance": True, "sscd": False, "qc_type": None, **kwargs}
        with pytest.raises(Asn1EncodeError) as exc:
            qc_statements_der(**args)  # type: ignore[arg-type]
        assert "\n" not in str(exc.value)

    def test_no_statement_refused(self) -> None:
        with pytest.raises(Asn1EncodeError, match="at least one statement"):
            qc_statements_der(compliance=False, sscd=False, qc_type=None)


class TestQcStatementsParsing:
    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"compliance": True, "sscd": True, "qc_type": "esign", "pds": PDS}, id="qes"),
            pytest.param(
                {"compliance": True, "sscd": True, "qc_type": "eseal", "semantics_id": "0.4.0.194121.1.2"},
                id="qseal",
            ),
            pytest.param(
                {"compliance": False, "sscd": False, "qc_type": None, "semantics_id": "0.4.0.194121.1.1"},
                id="ncp-semantics-only",
            ),
            pytest.param(
                {
                    "compliance": True,
                    "sscd": False,
                    "qc_type": "esign",
                    "retention_years": 35,
                    "ident_method": "0.4.0.1862.1.8.4",
                },
                id="retention-ident",
            ),
        ],
    )
    def test_round_trip(self, kwargs: dict[str, object]) -> None:
        der = qc_statements_der(**kwargs)  # type: ignore[arg-type]
        info = parse_qc_statements(der)
        qc_type = kwargs.get("qc_type")
        assert info == QCStatementsInfo(
            compliance=bool(kwargs["compliance"]),
            sscd=bool(kwargs["sscd"]),
            qc_types=(QC_TYPES[str(qc_type)],) if qc_type else (),
            pds=tuple(kwargs.get("pds", ())),  # type: ignore[arg-type]
            semantics_ids=(str(kwargs["semantics_id"]),) if "semantics_id" in kwargs else (),
            semantics_nra_present=False,
            retention_years=kwargs.get("retention_years"),  # type: ignore[arg-type]
            ident_methods=(str(kwargs["ident_method"]),) if "ident_method" in kwargs else (),
            cc_legislation_present=False,
            unknown_statement_oids=(),
            statement_oids=info.statement_oids,
        )

    def test_foreign_statements_reported(self) -> None:
        limit = seq(oid_der("0.4.0.1862.1.2"), seq(tlv(0x13, b"EUR"), tlv(0x02, b"\x64"), tlv(0x02, b"\x03")))
        cc = seq(oid_der("0.4.0.1862.1.7"), seq(tlv(0x13, b"CH")))
        v1 = seq(oid_der("1.3.6.1.5.5.7.11.1"), seq(oid_der("0.4.0.194121.1.1")))
        uri = tlv(0x86, b"https://register.example")  # [6] IMPLICIT IA5String
        v2_nra = seq(oid_der("1.3.6.1.5.5.7.11.2"), seq(oid_der("0.4.0.194121.1.1"), seq(uri)))
        der = seq(seq(oid_der("0.4.0.1862.1.1")), limit, cc, v1, v2_nra)
        info = parse_qc_statements(der)
        assert info.compliance
        assert info.cc_legislation_present
        assert info.unknown_statement_oids == ("0.4.0.1862.1.2", "1.3.6.1.5.5.7.11.1")
        assert info.semantics_ids == ("0.4.0.194121.1.1",)
        assert info.semantics_nra_present
        assert info.statement_oids[0] == "0.4.0.1862.1.1"

    @pytest.mark.parametrize(
        "der",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b"\x04\x00", id="not-a-sequence"),
            pytest.param(bytes.fromhex("300a3008060604008e460101") + b"\x00", id="trailing-byte"),
            pytest.param(bytes.fromhex("30803008060604008e4601010000"), id="ber-indefinite-length"),
            pytest.param(bytes.fromhex("308200083006060604008e46"), id="truncated"),
            pytest.param(seq(seq(oid_der("0.4.0.1862.1.6"))), id="qctype-without-info"),
            pytest.param(seq(seq(oid_der("0.4.0.1862.1.6"), tlv(0x02, b"\x01"))), id="qctype-wrong-type"),
        ],
    )
    def test_malformed_refused(self, der: bytes) -> None:
        with pytest.raises(Asn1DecodeError) as exc:
            parse_qc_statements(der)
        assert "\n" not in str(exc.value)


# --- Admission --------------------------------------------------------------------------------------


def _crypto_admissions(
    authority: str | None,
    profession: str,
    profession_oid: str | None,
    registration_number: str | None,
    naming_authority_oid: str | None,
) -> bytes:
    """The same AdmissionSyntax built by cryptography's own encoder (an independent implementation)."""
    gn = (
        x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, authority)]))
        if authority is not None
        else None
    )
    na = x509.NamingAuthority(x509.ObjectIdentifier(naming_authority_oid), None, None) if naming_authority_oid else None
    info = x509.ProfessionInfo(
        na,
        [profession],
        [x509.ObjectIdentifier(profession_oid)] if profession_oid else None,
        registration_number,
        None,
    )
    return x509.Admissions(gn, [x509.Admission(None, None, [info])]).public_bytes()


ADMISSION_CASES = [
    pytest.param(
        ("Patentanwaltskammer", "Patentanwalt", "1.3.36.8.3.11.1.19", "12345"),
        "1.3.36.8.3.11.1",
        id="patentanwalt-derived-naming-authority",
    ),
    pytest.param(
        ("Rechtsanwaltskammer München", "Rechtsanwältin", "1.3.36.8.3.11.1.1", None),
        "1.3.36.8.3.11.1",
        id="umlauts-no-registration",
    ),
    pytest.param((None, "European Patent Attorney", None, "EPA-1234"), None, id="text-only-no-authority"),
    pytest.param(("gematik", "Arzt", "1.2.276.0.76.4.30", "1-2-ARZT-1234"), None, id="foreign-arc-no-naming-authority"),
]

# The DER that the asn1crypto encoder this project used before produced for the Patentanwalt case
# (commit "HSM backends: ...", ca/asn1/admission.py, run from a checkout of that commit); it was
# byte-identical to cryptography's encoder and printed correctly by OpenSSL.
PATENTANWALT_DER = bytes.fromhex(
    "3058a420301e311c301a060355040a0c13506174656e74616e77616c74736b616d6d6572303430323030302ea00a3008"
    "06062b2408030b01300e0c0c506174656e74616e77616c74300906072b2408030b011313053132333435"
)


class TestAdmission:
    @pytest.mark.parametrize(("args", "naming_authority"), ADMISSION_CASES)
    def test_matches_reference_structure(self, args: tuple[str | None, ...], naming_authority: str | None) -> None:
        authority, profession, profession_oid, registration_number = args
        assert profession is not None
        ext = admission_extension(authority, profession, profession_oid, registration_number)
        assert ext.public_bytes() == _crypto_admissions(
            authority, profession, profession_oid, registration_number, naming_authority
        )

    @pytest.mark.parametrize(("args", "naming_authority"), ADMISSION_CASES)
    def test_round_trip_through_a_certificate(self, args: tuple[str | None, ...], naming_authority: str | None) -> None:
        authority, profession, profession_oid, registration_number = args
        assert profession is not None
        der = build_cert(
            NATURAL.to_x509_name("natural"),
            oids.QCP_N_QSCD,
            None,
            admission_extension(authority, profession, profession_oid, registration_number).public_bytes(),
            KU_A,
        )
        value = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.Admissions).value
        expected_authority = (
            x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, authority)]))
            if authority
            else None
        )
        assert value.authority == expected_authority
        (admission,) = list(value)
        assert admission.admission_authority is None
        (info,) = admission.profession_infos
        assert info.profession_items == [profession]
        assert [o.dotted_string for o in info.profession_oids or []] == ([profession_oid] if profession_oid else [])
        assert info.registration_number == registration_number
        assert (
            info.naming_authority.id.dotted_string if info.naming_authority and info.naming_authority.id else None
        ) == (naming_authority)

    def test_golden_encoding(self) -> None:
        ext = admission_extension(
            "Patentanwaltskammer", "Patentanwalt", oids.ISISMTT_PATENTANWALT.dotted_string, "12345"
        )
        assert ext.public_bytes() == PATENTANWALT_DER


# --- whole certificates: cryptography, OpenSSL and pkilint ------------------------------------------

KU_A = x509.KeyUsage(False, True, False, False, False, False, False, False, False)  # nonRepudiation only
KU_C = x509.KeyUsage(True, False, False, False, False, False, False, False, False)  # digitalSignature only
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

NATURAL = SubjectInput(
    countryName="DE",
    givenName="Erika",
    surname="Mustermann",
    commonName="Erika Mustermann",
    serialNumber="IDCDE-T22000129",
)
LEGAL = SubjectInput(
    countryName="DE",
    organizationName="Muster Patentanwälte GmbH",
    organizationIdentifier="NTRDE-DED2601V.HRB12345",
    commonName="Muster Patentanwälte Siegel",
)
ADMISSION = admission_extension(
    "Patentanwaltskammer", "Patentanwalt", oids.ISISMTT_PATENTANWALT.dotted_string, "12345"
).public_bytes()


def build_cert(
    subject: x509.Name,
    policy: x509.ObjectIdentifier,
    qc_statements: bytes | None,
    admission: bytes | None,
    key_usage: x509.KeyUsage,
) -> bytes:
    """A throwaway EE certificate with every extension EN 319 412-2 asks for, signed by a throwaway CA key."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Trust GmbH"),
            x509.NameAttribute(oids.ORGANIZATION_IDENTIFIER, "VATDE-123456789"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Example Qualified CA 1"),
        ]
    )
    uri = x509.UniformResourceIdentifier
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + datetime.timedelta(days=365))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.CertificatePolicies([x509.PolicyInformation(policy, None)]), critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([uri("http://crl.example.com/ca1.crl")], None, None, None)]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS, uri("http://pki.example.com/ca1.cer")
                    ),
                    x509.AccessDescription(AuthorityInformationAccessOID.OCSP, uri("http://ocsp.example.com")),
                ]
            ),
            critical=False,
        )
    )
    if qc_statements is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(oids.QC_STATEMENTS, qc_statements), critical=False)
    if admission is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(oids.ADMISSION, admission), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(Encoding.DER)


@dataclass(frozen=True)
class PkilintFinding:
    severity: ValidationFindingSeverity
    code: str
    message: str | None
    path: str


def run_pkilint(
    der: bytes,
) -> tuple[etsi_constants.CertificateType, list[PkilintFinding]]:
    """How to run pkilint 0.13.3's ETSI linter in-process (the same calls as ``lint_etsi_cert lint -d``)."""
    doc = loader.load_der_certificate(der, "under-test")
    cert_type = etsi.determine_certificate_type(doc)
    validator = certificate.create_pkix_certificate_validator_container(
        etsi.create_decoding_validators(cert_type),
        etsi.create_validators(cert_type),
    )
    results = validator.validate(doc.root)
    results, _ = finding_filter.filter_results(etsi.create_etsi_finding_filters(cert_type), results)
    found = [
        PkilintFinding(fd.finding.severity, fd.finding.code, fd.message, r.node.path)
        for r in results
        for fd in r.finding_descriptions
    ]
    return cert_type, found


def problems(found: list[PkilintFinding]) -> list[PkilintFinding]:
    """Findings of NOTICE or worse (pkilint's severities count down: FATAL=0 ... INFO=4)."""
    return [f for f in found if f.severity <= ValidationFindingSeverity.NOTICE]


PKILINT_CASES = [
    pytest.param(
        NATURAL,
        "natural",
        oids.QCP_N_QSCD,
        dict(
            compliance=True,
            sscd=True,
            qc_type="esign",
            pds=PDS,
            semantics_id=oids.SEMANTICS_ID_NATURAL.dotted_string,
            retention_years=30,
            ident_method=oids.QC_IDENT_EIDAS2_ACD.dotted_string,
        ),
        ADMISSION,
        KU_A,
        etsi_constants.CertificateType.QCP_N_QSCD_EIDAS_FINAL_CERTIFICATE,
        id="qes-qcp-n-qscd-with-admission",
    ),
    pytest.param(
        LEGAL,
        "legal",
        oids.QCP_L_QSCD,
        dict(
            compliance=True,
            sscd=True,
            qc_type="eseal",
            pds=PDS[:1],
            semantics_id=oids.SEMANTICS_ID_LEGAL.dotted_string,
        ),
        None,
        KU_A,
        # pkilint 0.13.3 has no QCP-l type: determine_certificate_type gives NCP-LEGAL-PERSON.
        etsi_constants.CertificateType.NCP_LEGAL_PERSON_CERTIFICATE,
        id="qseal-qcp-l-qscd",
    ),
    pytest.param(
        NATURAL,
        "natural",
        oids.NCP_PLUS,
        dict(compliance=False, sscd=False, qc_type=None, semantics_id=oids.SEMANTICS_ID_NATURAL.dotted_string),
        ADMISSION,
        KU_C,
        etsi_constants.CertificateType.NCP_NATURAL_PERSON_CERTIFICATE,
        id="upc-auth-ncp-plus",
    ),
]


class TestCertificates:
    @pytest.mark.parametrize(("subject", "kind", "policy", "qcs", "adm", "ku", "expected_type"), PKILINT_CASES)
    def test_pkilint_clean(
        self,
        subject: SubjectInput,
        kind: str,
        policy: x509.ObjectIdentifier,
        qcs: dict[str, object],
        adm: bytes | None,
        ku: x509.KeyUsage,
        expected_type: etsi_constants.CertificateType,
    ) -> None:
        rules = natural_person_rules if kind == "natural" else legal_person_rules
        assert rules(subject) == []
        der = build_cert(subject.to_x509_name(kind), policy, qc_statements_der(**qcs), adm, ku)  # type: ignore[arg-type]
        cert_type, found = run_pkilint(der)
        assert cert_type == expected_type
        assert problems(found) == []

    def test_pkilint_decodes_our_statements(self) -> None:
        """Negative control: pkilint really reads our qcStatements and subject (it flags what it should)."""
        qcs = qc_statements_der(
            compliance=True,
            sscd=True,
            qc_type="eseal",  # wrong for QCP-n-qscd
            pds=(("http://pki.example.com/pds_en.pdf", "en"),),  # not https
            semantics_id=oids.SEMANTICS_ID_NATURAL.dotted_string,
        )
        subject = SubjectInput(countryName="DE", surname="Mustermann", commonName="Mustermann", serialNumber="EIDDE-1")
        der = build_cert(subject.to_x509_name("natural"), oids.QCP_N_QSCD, qcs, None, KU_A)
        _, found = run_pkilint(der)
        codes = {f.code for f in problems(found)}
        assert codes == {
            "etsi.en_319_412_5.gen-4.2.3.qc_type_mismatch",
            "etsi.en_319_412_5.gen-4.3.4.url_scheme_not_https",
            # the pkilint gap our rule warns about (qtsp.pkilint_gap.nat-5.1.3.eid)
            "etsi.en_319_412_1.nat-5.1.3.invalid_identifier_scheme",
        }

    @pytest.mark.parametrize(
        ("org_id", "pkilint_code"),
        [
            pytest.param("NTRDE+HE-123456", "etsi.en_319_412_1.leg-5.1.4-02.invalid_format", id="ntr-subdivision"),
            pytest.param("EORDE-DE1234567", "etsi.en_319_412_1.leg-5.1.4-03.invalid_scheme", id="eori"),
            pytest.param("EXCDE-DE00000000123", "etsi.en_319_412_1.leg-5.1.4-03.invalid_scheme", id="excise"),
        ],
    )
    def test_pkilint_gaps_our_rules_name(self, org_id: str, pkilint_code: str) -> None:
        subject = SubjectInput(
            countryName="DE",
            organizationName="Muster GmbH",
            organizationIdentifier=org_id,
            commonName="Muster",
        )
        ours = legal_person_rules(subject)
        assert len(ours) == 1
        qcs = qc_statements_der(
            compliance=True, sscd=True, qc_type="eseal", semantics_id=oids.SEMANTICS_ID_LEGAL.dotted_string
        )
        der = build_cert(subject.to_x509_name("legal"), oids.QCP_L_QSCD, qcs, None, KU_A)
        _, found = run_pkilint(der)
        assert [f.code for f in problems(found)] == [pkilint_code]
        gate = {f.code: f for f in PkilintGate().lint(der, "qseal-legal")}
        if pkilint_code in KNOWN_PKILINT_GAPS:
            # V1.6.1 allows EOR and EXC: our rule notes it, the gate records pkilint's finding as a notice.
            assert ours[0].severity.name == "NOTICE"
            assert gate[pkilint_code].severity.name == "NOTICE"
        else:
            # The NTR subdivision form is refused by our own rule, naming pkilint's code.
            assert ours[0].severity.name == "ERROR" and pkilint_code in ours[0].message
            assert gate[pkilint_code].severity.name == "ERROR"

    def test_garbage_qc_statements_is_fatal_in_pkilint(self) -> None:
        der = build_cert(NATURAL.to_x509_name("natural"), oids.QCP_N_QSCD, b"\x30\x03\x02\x01\x01", None, KU_A)
        _, found = run_pkilint(der)
        assert any(f.severity == ValidationFindingSeverity.FATAL for f in found)

    def test_cryptography_parses_admission_back(self) -> None:
        der = build_cert(NATURAL.to_x509_name("natural"), oids.QCP_N_QSCD, None, ADMISSION, KU_A)
        ext = x509.load_der_x509_certificate(der).extensions.get_extension_for_oid(ExtensionOID.ADMISSIONS)
        assert not ext.critical
        value = ext.value
        assert isinstance(value, x509.Admissions)
        assert value.authority == x509.DirectoryName(
            x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Patentanwaltskammer")])
        )
        (admission,) = list(value)
        (info,) = admission.profession_infos
        assert info.profession_items == ["Patentanwalt"]
        assert info.profession_oids == [oids.ISISMTT_PATENTANWALT]
        assert info.registration_number == "12345"
        assert info.naming_authority is not None
        assert info.naming_authority.id == oids.ISISMTT_NAMING_AUTHORITY_RECHT_WIRTSCHAFT_STEUERN

    @pytest.mark.skipif(shutil.which("openssl") is None, reason="OpenSSL CLI not installed")
    def test_openssl_prints_admission_and_name_types(self) -> None:
        der = build_cert(NATURAL.to_x509_name("natural"), oids.QCP_N_QSCD, None, ADMISSION, KU_A)
        text = subprocess.run(
            [
                "openssl",
                "x509",
                "-inform",
                "DER",
                "-noout",
                "-text",
                "-subject",
                "-nameopt",
                "RFC2253,show_type",
            ],
            input=der,
            capture_output=True,
            check=True,
        ).stdout.decode()
        assert "DirName:O = Patentanwaltskammer" in text
        assert "registrationNumber: 12345" in text
        assert "namingAuthorityId: undefined (1.3.36.8.3.11.1)" in text
        assert "undefined (1.3.36.8.3.11.1.19)" in text
        assert (
            "subject=CN=UTF8STRING:Erika Mustermann,serialNumber=PRINTABLESTRING:IDCDE-T22000129,"
            "GN=UTF8STRING:Erika,SN=UTF8STRING:Mustermann,C=PRINTABLESTRING:DE"
        ) in text


def test_cached_encoder_does_not_confuse_true_and_one() -> None:
    """Review finding: an lru_cache without typed=True answered retention_years=True from the 1 entry."""
    qc_statements_der(compliance=True, sscd=True, qc_type="esign", retention_years=1)
    with pytest.raises(Asn1EncodeError):
        qc_statements_der(compliance=True, sscd=True, qc_type="esign", retention_years=True)


def test_oid_check_refuses_trailing_newline() -> None:
    from ca.asn1._specs import check_oid

    with pytest.raises(Asn1EncodeError):
        check_oid("1.2.3\n", "test OID")
