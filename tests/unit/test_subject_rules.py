"""ca.profiles.subject: one parametrized case per rule (EN 319 412-1/-2/-3), JSON input, DN encoding."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from pkilint.iso import lei as pkilint_lei
from pkilint.validation import ValidationFindingEncountered

from ca.findings import Finding, Severity, errors_in
from ca.profiles import oids
from ca.profiles.subject import (
    AdmissionInput,
    SubjectError,
    SubjectInput,
    admission_rules,
    legal_person_rules,
    legal_semantics_applies,
    lei_check_digits_valid,
    natural_person_rules,
    natural_semantics_applies,
)

NATURAL = SubjectInput(countryName="DE", givenName="Erika", surname="Mustermann", commonName="Erika Mustermann")
LEGAL = SubjectInput(
    countryName="DE",
    organizationName="Muster GmbH",
    organizationIdentifier="VATDE-123456789",
    commonName="Muster",
)
VALID_LEIS = ["5493001KJTIIGC8Y1R12", "506700GE1G29325QX363", "529900T8BM49AURSDO55", "7LTWFZYICNSX8D621K86"]


def natural(**changes: object) -> SubjectInput:
    return dataclasses.replace(NATURAL, **changes)  # type: ignore[arg-type]


def legal(**changes: object) -> SubjectInput:
    return dataclasses.replace(LEGAL, **changes)  # type: ignore[arg-type]


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def check_messages(findings: list[Finding]) -> None:
    """Every message names its clause first and is one line."""
    for f in findings:
        assert f.source == "qtsp"
        assert "\n" not in f.message
        assert f.message.split(":")[0].startswith(
            ("EN 319 412-", "ITU-T X.520", "RFC 5280", "RFC 5322", "ISO 17442", "Common PKI")
        ), f.message


# --- natural persons: EN 319 412-2 ------------------------------------------------------------------

NAT = "etsi.en_319_412_2."
NAT_ID = "etsi.en_319_412_1.nat-5.1.3"
ORG = "etsi.en_319_412_1.leg-5.1.4"

NATURAL_CASES = [
    # accepted
    pytest.param({}, [], id="ok-given-and-surname"),
    pytest.param({"givenName": None}, [], id="ok-surname-only"),
    pytest.param({"surname": None, "commonName": "Erika"}, [], id="ok-given-name-only"),
    pytest.param(
        {"givenName": None, "surname": None, "pseudonym": "Kafka42", "commonName": "Kafka42 (pseudonym)"},
        [],
        id="ok-pseudonym",
    ),
    pytest.param({"commonName": "ERIKA MUSTERMANN"}, [], id="ok-cn-case-insensitive"),
    pytest.param({"commonName": "Dr. Erika Mustermann"}, [], id="ok-cn-with-title"),
    pytest.param({"serialNumber": "PASDE-C01X00T47"}, [], id="ok-serial-pas"),
    pytest.param({"serialNumber": "IDCBE-590082394654"}, [], id="ok-serial-idc"),
    pytest.param({"serialNumber": "PNOSE-200007292386"}, [], id="ok-serial-pno"),
    pytest.param({"serialNumber": "TINDE-12345678901"}, [], id="ok-serial-tin"),
    pytest.param({"serialNumber": "TINEL-123456789"}, [], id="ok-serial-tin-el"),
    pytest.param({"serialNumber": "PASEU-123456"}, [], id="ok-serial-eu"),
    pytest.param({"organizationName": "Muster GmbH", "organizationIdentifier": "VATDE-123456789"}, [], id="ok-org"),
    pytest.param({"organizationName": "Muster GmbH"}, [], id="ok-org-name-only"),
    pytest.param(
        {"givenName": "Ελένη", "surname": "Παπαδοπούλου", "commonName": "Ελένη Παπαδοπούλου"},
        [],
        id="ok-greek-only",
    ),
    pytest.param({"email": "erika.mustermann+qes@example.co.uk"}, [], id="ok-email"),
    # NAT-4.2.4-1
    pytest.param({"countryName": None}, [NAT + "nat-4.2.4-1.missing_country"], id="nat-4.2.4-1-country"),
    pytest.param({"commonName": None}, [NAT + "nat-4.2.4-1.missing_common_name"], id="nat-4.2.4-1-cn"),
    pytest.param({"givenName": None, "surname": None}, [NAT + "nat-4.2.4-1.missing_name"], id="nat-4.2.4-1-name"),
    # NAT-4.2.4-4
    pytest.param({"pseudonym": "Kafka42"}, [NAT + "nat-4.2.4-4.pseudonym_with_name"], id="nat-4.2.4-4-both"),
    pytest.param(
        {"givenName": None, "pseudonym": "Kafka42", "commonName": "Kafka42"},
        [NAT + "nat-4.2.4-4.pseudonym_with_name"],
        id="nat-4.2.4-4-surname",
    ),
    # X.520 countryName
    pytest.param({"countryName": "de"}, ["itu.x520.country_name.not_iso3166_alpha2"], id="x520-country-lowercase"),
    pytest.param({"countryName": "XX"}, ["itu.x520.country_name.not_iso3166_alpha2"], id="x520-country-unknown"),
    pytest.param({"countryName": "EU"}, ["itu.x520.country_name.not_iso3166_alpha2"], id="x520-country-eu"),
    # EN 319 412-1 §5.1.3
    pytest.param({"serialNumber": "X123"}, [NAT_ID + ".serial_syntax"], id="nat-5.1.3-syntax"),
    pytest.param({"serialNumber": "PASde-123"}, [NAT_ID + ".serial_syntax"], id="nat-5.1.3-lowercase-country"),
    pytest.param({"serialNumber": "PASDE123"}, [NAT_ID + ".serial_syntax"], id="nat-5.1.3-no-dash"),
    pytest.param({"serialNumber": "PASDE-"}, [NAT_ID + ".serial_syntax"], id="nat-5.1.3-no-id"),
    pytest.param({"serialNumber": "ABCDE-1"}, [NAT_ID + ".unknown_type"], id="nat-5.1.3-unknown-type"),
    pytest.param({"serialNumber": "PASXX-1"}, [NAT_ID + ".invalid_country"], id="nat-5.1.3-country"),
    pytest.param({"serialNumber": "PASEL-1"}, [NAT_ID + ".invalid_country"], id="nat-5.1.3-el-only-for-tin"),
    pytest.param({"serialNumber": "TAXDE-123"}, [NAT_ID + "-04.deprecated_tax"], id="nat-5.1.3-04-tax"),
    pytest.param(
        {"serialNumber": "EI:SE-200007292386"},
        [NAT_ID + "-05.national_scheme_unsupported"],
        id="nat-5.1.3-05",
    ),
    pytest.param({"serialNumber": "EIDDE-123"}, ["qtsp.pkilint_gap.nat-5.1.3.eid"], id="nat-5.1.3-eid-gap"),
    pytest.param(
        {"serialNumber": "PASDE-ä123"},
        ["rfc5280.appendix_a.serial_number_not_printable"],
        id="rfc5280-serial-charset",
    ),
    pytest.param(
        {"serialNumber": "PASDE-" + "1" * 59},
        ["rfc5280.appendix_a.serial_number_not_printable"],
        id="rfc5280-serial-length",
    ),
    # NAT-4.2.4-6 / GEN-4.2.3.1-8 / §5.1.4
    pytest.param(
        {"organizationIdentifier": "VATDE-123456789"},
        [NAT + "nat-4.2.4-6.organization_identifier_without_name"],
        id="nat-4.2.4-6",
    ),
    pytest.param(
        {"organizationName": "vatde-123456789", "organizationIdentifier": "VATDE-123456789"},
        [NAT + "gen-4.2.3.1-8.organization_identifier_equals_name"],
        id="gen-4.2.3.1-8",
    ),
    pytest.param(
        {"organizationName": "Muster GmbH", "organizationIdentifier": "DE123456789"},
        [ORG + "-02.invalid_format"],
        id="nat-org-id-syntax",
    ),
    # NAT-4.2.4-15
    pytest.param({"commonName": "Max Muster"}, [NAT + "nat-4.2.4-15.common_name_not_subject_name"], id="nat-4.2.4-15"),
    pytest.param(
        {"givenName": None, "surname": None, "pseudonym": "Kafka42", "commonName": "Franz"},
        [NAT + "nat-4.2.4-15.common_name_not_subject_name"],
        id="nat-4.2.4-15-pseudonym",
    ),
    # NAT-4.2.4-19
    pytest.param(
        {"givenName": "Ελένη", "surname": "Papadopoulou", "commonName": "Eleni Papadopoulou"},
        [NAT + "nat-4.2.4-19.mixed_scripts"],
        id="nat-4.2.4-19",
    ),
    # email
    pytest.param({"email": "erika"}, ["rfc5322.addr_spec.invalid"], id="email-no-at"),
    pytest.param({"email": "erika@localhost"}, ["rfc5322.addr_spec.invalid"], id="email-single-label"),
    pytest.param({"email": "erika@@example.com"}, ["rfc5322.addr_spec.invalid"], id="email-two-at"),
    pytest.param({"email": "eri..ka@example.com"}, ["rfc5322.addr_spec.invalid"], id="email-double-dot"),
    pytest.param({"email": "erika@-example.com"}, ["rfc5322.addr_spec.invalid"], id="email-bad-label"),
    pytest.param({"email": "erika@example.123"}, ["rfc5322.addr_spec.invalid"], id="email-numeric-tld"),
    pytest.param({"email": "jörg@example.com"}, ["rfc5322.addr_spec.invalid"], id="email-non-ascii"),
    # several at once
    pytest.param(
        {"countryName": None, "commonName": None, "givenName": None, "surname": None},
        [
            NAT + "nat-4.2.4-1.missing_country",
            NAT + "nat-4.2.4-1.missing_common_name",
            NAT + "nat-4.2.4-1.missing_name",
        ],
        id="empty-subject",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), NATURAL_CASES)
def test_natural_person_rules(changes: dict[str, object], expected: list[str]) -> None:
    found = natural_person_rules(natural(**changes))
    assert codes(found) == expected
    check_messages(found)


@pytest.mark.parametrize(
    ("serial", "severity"),
    [
        pytest.param("TAXDE-123", Severity.WARNING, id="tax-warning"),
        pytest.param("EIDDE-123", Severity.NOTICE, id="eid-known-pkilint-gap"),
        pytest.param("EI:SE-200007292386", Severity.ERROR, id="national-error"),
        pytest.param("X123", Severity.ERROR, id="syntax-error"),
    ],
)
def test_natural_serial_severity(serial: str, severity: Severity) -> None:
    (finding,) = natural_person_rules(natural(serialNumber=serial))
    assert finding.severity == severity


def test_mixed_scripts_is_only_a_warning() -> None:
    found = natural_person_rules(natural(givenName="Ελένη", surname="Papadopoulou", commonName="Eleni Papadopoulou"))
    assert found and errors_in(found) == []


def test_serial_syntax_exact_message() -> None:
    (finding,) = natural_person_rules(natural(serialNumber="X123"))
    assert finding == Finding(
        Severity.ERROR,
        "etsi.en_319_412_1.nat-5.1.3.serial_syntax",
        'EN 319 412-1 §5.1.3: serialNumber "X123" is not <type><country>-<id>',
    )
    assert str(finding) == 'EN 319 412-1 §5.1.3: serialNumber "X123" is not <type><country>-<id>'


def test_exact_messages_natural() -> None:
    found = natural_person_rules(SubjectInput(commonName="X"))
    assert [f.message for f in found] == [
        "EN 319 412-2 NAT-4.2.4-1: countryName is required",
        "EN 319 412-2 NAT-4.2.4-1: givenName and/or surname, or pseudonym, is required",
    ]
    (tax,) = natural_person_rules(natural(serialNumber="TAXDE-123"))
    assert tax.message == 'EN 319 412-1 NAT-5.1.3-04: serialNumber "TAXDE-123" uses the deprecated type TAX; use TIN'
    (nat,) = natural_person_rules(natural(serialNumber="EI:SE-200007292386"))
    assert nat.message.startswith('EN 319 412-1 NAT-5.1.3-05: serialNumber "EI:SE-200007292386" uses national scheme')


# --- legal persons: EN 319 412-3 --------------------------------------------------------------------

LEG = "etsi.en_319_412_3."

LEGAL_ID_ACCEPTED = [
    pytest.param("VATDE-123456789", [], id="vat"),
    pytest.param("VATEL-123456789", [], id="vat-el"),
    pytest.param("VATXI-123456789", [], id="vat-xi"),
    pytest.param("VATGR-123456789", [], id="vat-gr-iso"),
    pytest.param("VATEU-372000041", [], id="vat-eu"),
    pytest.param("NTRDE-HRB12345", [], id="ntr"),
    pytest.param("NTRDE-DED2601V.HRB12345", [], id="ntr-euid"),
    pytest.param("PSDDE-BAFIN-123456", [], id="psd"),
    *(pytest.param(f"LEIXG-{lei}", [], id=f"lei-{lei}") for lei in VALID_LEIS),
    pytest.param("EORDE-DE1234567", ["qtsp.pkilint_gap.leg-5.1.4.eor"], id="eor-with-pkilint-gap-warning"),
    pytest.param("EXCDE-DE00000000123", ["qtsp.pkilint_gap.leg-5.1.4.exc"], id="exc-with-pkilint-gap-warning"),
]

LEGAL_ID_REFUSED = [
    pytest.param("X123", [ORG + "-02.invalid_format"], id="syntax"),
    pytest.param("VATDE123456789", [ORG + "-02.invalid_format"], id="no-dash"),
    pytest.param("VATde-123", [ORG + "-02.invalid_format"], id="lowercase-country"),
    pytest.param("ABCDE-1", [ORG + "-03.unknown_type"], id="unknown-type"),
    pytest.param("EI:SE-5567971433", [ORG + "-05.national_scheme_unsupported"], id="national-scheme"),
    pytest.param("NTRDE+HE-123456", [ORG + "-08.subdivision_refused"], id="ntr-subdivision-pkilint-gap"),
    pytest.param("VATDE+HE-123456", [ORG + "-08.subdivision_not_ntr"], id="vat-subdivision"),
    pytest.param("VATXX-123", [ORG + "-03.invalid_country"], id="vat-country"),
    pytest.param("NTREL-123", [ORG + "-03.invalid_country"], id="ntr-el"),
    pytest.param("NTRXI-123", [ORG + "-03.invalid_country"], id="ntr-xi"),
    pytest.param("EORXG-123", [ORG + "-03.invalid_country", "qtsp.pkilint_gap.leg-5.1.4.eor"], id="eor-xg"),
    pytest.param("LEIDE-5493001KJTIIGC8Y1R12", [ORG + "-03.invalid_country"], id="lei-not-xg"),
    pytest.param("LEIXG-5493001KJTIIGC8Y1R13", ["iso.17442.lei.invalid_checksum"], id="lei-check-digits"),
    pytest.param("LEIXG-5493001KJTIIGC8Y1R21", ["iso.17442.lei.invalid_checksum"], id="lei-swapped-digits"),
    pytest.param("LEIXG-5493001KJTIIGC8Y1R", ["iso.17442.lei.invalid_format"], id="lei-short"),
    pytest.param("LEIXG-5493001kjtiigc8y1r12", ["iso.17442.lei.invalid_format"], id="lei-lowercase"),
    pytest.param("LEIXG-5493001KJTIIGC8Y1RAB", ["iso.17442.lei.invalid_format"], id="lei-letter-check-digits"),
]


@pytest.mark.parametrize(("org_id", "expected"), LEGAL_ID_ACCEPTED + LEGAL_ID_REFUSED)
def test_legal_organization_identifier(org_id: str, expected: list[str]) -> None:
    found = legal_person_rules(legal(organizationIdentifier=org_id))
    assert codes(found) == expected
    check_messages(found)
    # the same syntax applies to a natural person's associated organisation (NAT-4.2.4-6)
    assert codes(natural_person_rules(natural(organizationName="Muster GmbH", organizationIdentifier=org_id))) == (
        expected
    )


LEGAL_CASES = [
    pytest.param({}, [], id="ok"),
    pytest.param({"email": "siegel@muster.example"}, [], id="ok-email"),
    pytest.param({"countryName": None}, [LEG + "leg-4.2.1-2.missing_country"], id="leg-4.2.1-2-country"),
    pytest.param({"organizationName": None}, [LEG + "leg-4.2.1-2.missing_organization_name"], id="leg-4.2.1-2-o"),
    pytest.param(
        {"organizationIdentifier": None},
        [LEG + "leg-4.2.1-2.missing_organization_identifier"],
        id="leg-4.2.1-2-org-id",
    ),
    pytest.param({"commonName": None}, [LEG + "leg-4.2.1-2.missing_common_name"], id="leg-4.2.1-2-cn"),
    pytest.param({"givenName": "Erika"}, [LEG + "leg-4.2.1.natural_person_attribute"], id="leg-given-name"),
    pytest.param({"surname": "Muster"}, [LEG + "leg-4.2.1.natural_person_attribute"], id="leg-surname"),
    pytest.param({"pseudonym": "Muster"}, [LEG + "leg-4.2.1.natural_person_attribute"], id="leg-pseudonym"),
    pytest.param({"countryName": "XX"}, [LEG + "leg-4.2.1-4.invalid_country"], id="leg-4.2.1-4"),
    pytest.param(
        {"organizationName": "VATDE-123456789"},
        [LEG + "leg-4.2.1-6.organization_identifier_equals_name"],
        id="leg-4.2.1-6",
    ),
    pytest.param(
        {"organizationName": "vatde-123456789"},
        [LEG + "leg-4.2.1-6.organization_identifier_equals_name"],
        id="leg-4.2.1-6-case-insensitive",
    ),
    pytest.param({"serialNumber": "ä"}, ["rfc5280.appendix_a.serial_number_not_printable"], id="rfc5280-serial"),
    pytest.param({"email": "siegel@"}, ["rfc5322.addr_spec.invalid"], id="email"),
]


@pytest.mark.parametrize(("changes", "expected"), LEGAL_CASES)
def test_legal_person_rules(changes: dict[str, object], expected: list[str]) -> None:
    found = legal_person_rules(legal(**changes))
    assert codes(found) == expected
    check_messages(found)


def test_exact_messages_legal() -> None:
    (syntax,) = legal_person_rules(legal(organizationIdentifier="X123"))
    assert syntax.message == 'EN 319 412-1 §5.1.4: organizationIdentifier "X123" is not <type><country>-<id>'
    (sub,) = legal_person_rules(legal(organizationIdentifier="NTRDE+HE-123456"))
    assert sub.severity == Severity.ERROR
    assert sub.message == (
        'EN 319 412-1 LEG-5.1.4-08: organizationIdentifier "NTRDE+HE-123456" uses the "+HE" subdivision '
        "form; V1.6.1 allows it but pkilint 0.13.3 reports etsi.en_319_412_1.leg-5.1.4-02.invalid_format, "
        "so this CA refuses it"
    )
    (eq,) = legal_person_rules(legal(organizationName="VATDE-123456789"))
    assert eq.message == (
        'EN 319 412-3 LEG-4.2.1-6: organizationIdentifier "VATDE-123456789" must differ from organizationName'
    )
    (lei,) = legal_person_rules(legal(organizationIdentifier="LEIXG-5493001KJTIIGC8Y1R13"))
    assert lei.message == 'ISO 17442 (ISO 7064 MOD 97-10): LEI "5493001KJTIIGC8Y1R13" has wrong check digits'


@pytest.mark.parametrize("org_id", ["EORDE-DE1234567", "EXCDE-DE00000000123"])
def test_eor_exc_are_notices_only(org_id: str) -> None:
    (finding,) = legal_person_rules(legal(organizationIdentifier=org_id))
    assert finding.severity == Severity.NOTICE
    assert "pkilint 0.13.3" in finding.message


# --- LEI check digits against pkilint's implementation ----------------------------------------------


def _pkilint_accepts_lei(value: str) -> bool:
    try:
        pkilint_lei.validate_lei(value)
    except ValidationFindingEncountered:
        return False
    return True


@pytest.mark.parametrize(
    "value",
    [
        *VALID_LEIS,
        "5493001KJTIIGC8Y1R13",
        "5493001KJTIIGC8Y1R21",
        "506700GE1G29325QX364",
        "0000000000000000000",
        "00000000000000000098",
        "ABCDEFGHIJKLMNOPQR00",
    ],
)
def test_lei_check_digits_agree_with_pkilint(value: str) -> None:
    assert lei_check_digits_valid(value) == _pkilint_accepts_lei(value)


# --- Admission ---------------------------------------------------------------------------------------

ADM = "commonpki.admission."


@pytest.mark.parametrize(
    ("admission", "expected"),
    [
        pytest.param(
            AdmissionInput(
                authority="Patentanwaltskammer",
                profession="Patentanwalt",
                professionOid="1.3.36.8.3.11.1.19",
                registrationNumber="12345",
            ),
            [],
            id="ok",
        ),
        pytest.param(AdmissionInput(profession="European Patent Attorney"), [], id="ok-text-only"),
        pytest.param(AdmissionInput(profession="x" * 129), [ADM + "profession_too_long"], id="profession-length"),
        pytest.param(
            AdmissionInput(profession="P", professionOid="1.3.36.x"),
            [ADM + "profession_oid_syntax"],
            id="oid",
        ),
        pytest.param(AdmissionInput(profession="P", professionOid="1.40.1"), [ADM + "profession_oid_syntax"], id="arc"),
        pytest.param(
            AdmissionInput(profession="P", registrationNumber="12_345"),
            [ADM + "registration_number_syntax"],
            id="registration-charset",
        ),
    ],
)
def test_admission_rules(admission: AdmissionInput, expected: list[str]) -> None:
    assert codes(admission_rules(admission)) == expected
    assert codes(natural_person_rules(natural(admission=admission))) == expected
    assert codes(legal_person_rules(legal(admission=admission))) == expected
    check_messages(admission_rules(admission))


# --- semantics helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("serial", "applies"),
    [
        ("PASDE-1", True),
        ("IDCDE-1", True),
        ("PNODE-1", True),
        ("TINDE-1", True),
        ("EIDDE-1", True),
        ("TAXDE-1", True),
        ("EI:SE-200007292386", False),
        ("ABCDE-1", False),
        ("X123", False),
        (None, False),
    ],
)
def test_natural_semantics_applies(serial: str | None, applies: bool) -> None:
    assert natural_semantics_applies(serial) is applies


@pytest.mark.parametrize(
    ("org_id", "applies"),
    [
        ("VATDE-123456789", True),
        ("NTRDE-HRB12345", True),
        ("PSDDE-BAFIN-1", True),
        ("LEIXG-5493001KJTIIGC8Y1R12", True),
        ("EORDE-DE1", True),
        ("EXCDE-DE1", True),
        ("NTRDE+HE-123456", False),
        ("EI:SE-5567971433", False),
        ("ABCDE-1", False),
        ("Muster GmbH", False),
        (None, False),
    ],
)
def test_legal_semantics_applies(org_id: str | None, applies: bool) -> None:
    assert legal_semantics_applies(org_id) is applies


# --- JSON input ---------------------------------------------------------------------------------------

FULL_JSON: dict[str, object] = {
    "countryName": "DE",
    "commonName": "Erika Mustermann",
    "givenName": "Erika",
    "surname": "Mustermann",
    "serialNumber": "IDCDE-T22000129",
    "organizationName": "Muster Patentanwälte GmbH",
    "organizationIdentifier": "NTRDE-DED2601V.HRB12345",
    "email": "erika@muster.example",
    "admission": {
        "authority": "Patentanwaltskammer",
        "profession": "Patentanwalt",
        "professionOid": "1.3.36.8.3.11.1.19",
        "registrationNumber": "12345",
    },
}


def test_from_json_obj_full() -> None:
    s = SubjectInput.from_json_obj(FULL_JSON)
    assert s == SubjectInput(
        countryName="DE",
        commonName="Erika Mustermann",
        givenName="Erika",
        surname="Mustermann",
        serialNumber="IDCDE-T22000129",
        organizationName="Muster Patentanwälte GmbH",
        organizationIdentifier="NTRDE-DED2601V.HRB12345",
        email="erika@muster.example",
        admission=AdmissionInput(
            authority="Patentanwaltskammer",
            profession="Patentanwalt",
            professionOid="1.3.36.8.3.11.1.19",
            registrationNumber="12345",
        ),
    )
    assert natural_person_rules(s) == []


def test_from_json_obj_minimal() -> None:
    assert SubjectInput.from_json_obj({"pseudonym": "Kafka42"}) == SubjectInput(pseudonym="Kafka42")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        pytest.param({"foo": "x"}, 'subject: unknown key "foo"', id="unknown-key"),
        pytest.param({"cn": "x", "C": "DE"}, 'subject: unknown key "C", "cn"', id="unknown-keys"),
        pytest.param({"commonName": 5}, "subject.commonName: expected a string, got number", id="number"),
        pytest.param({"commonName": None}, "subject.commonName: expected a string, got null", id="null"),
        pytest.param({"surname": True}, "subject.surname: expected a string, got boolean", id="boolean"),
        pytest.param({"surname": ["a"]}, "subject.surname: expected a string, got array", id="array"),
        pytest.param({"commonName": ""}, "subject.commonName: must not be empty", id="empty"),
        pytest.param(
            {"commonName": "Erika\x07"},
            "subject.commonName: control or format character U+0007 is not allowed",
            id="control",
        ),
        pytest.param(
            {"commonName": "Erika\nMustermann"},
            "subject.commonName: control or format character U+000A is not allowed",
            id="newline",
        ),
        pytest.param(
            {"commonName": "Erika\u202eMustermann"},
            "subject.commonName: control or format character U+202E is not allowed",
            id="bidi-override",
        ),
        pytest.param(
            {"commonName": "Erika\u2028"},
            "subject.commonName: control or format character U+2028 is not allowed",
            id="line-separator",
        ),
        pytest.param(
            {"commonName": " Erika"},
            "subject.commonName: leading or trailing whitespace is not allowed",
            id="lead-ws",
        ),
        pytest.param(
            {"commonName": "Erika\u00a0"},
            "subject.commonName: leading or trailing whitespace is not allowed",
            id="trail-nbsp",
        ),
        pytest.param({"admission": "Patentanwalt"}, "subject.admission: expected an object, got str", id="adm-str"),
        pytest.param(
            {"admission": {"profession": "P", "oid": "1.2"}},
            'subject.admission: unknown key "oid"',
            id="adm-unknown-key",
        ),
        pytest.param({"admission": {}}, "subject.admission.profession: missing", id="adm-no-profession"),
        pytest.param(
            {"admission": {"profession": "P", "registrationNumber": 12345}},
            "subject.admission.registrationNumber: expected a string, got number",
            id="adm-number",
        ),
        pytest.param(
            {"admission": {"profession": "P "}},
            "subject.admission.profession: leading or trailing whitespace is not allowed",
            id="adm-ws",
        ),
    ],
)
def test_from_json_obj_errors(obj: dict[str, object], message: str) -> None:
    with pytest.raises(SubjectError) as exc:
        SubjectInput.from_json_obj(obj)
    assert str(exc.value) == message
    assert isinstance(exc.value, ValueError)


def test_from_json_obj_not_a_mapping() -> None:
    with pytest.raises(SubjectError, match="subject: expected an object, got array"):
        SubjectInput.from_json_obj([])  # type: ignore[arg-type]


def test_direct_construction_checks_values_too() -> None:
    with pytest.raises(SubjectError, match=r"subject\.surname: must not be empty"):
        SubjectInput(surname="")
    with pytest.raises(SubjectError, match=r"subject\.admission\.profession: expected a string, got null"):
        AdmissionInput(profession=None)  # type: ignore[arg-type]


# --- to_x509_name -------------------------------------------------------------------------------------


def _layout(name: x509.Name) -> list[tuple[str, _ASN1Type | None, str]]:
    out = []
    for rdn in name.rdns:
        (attr,) = list(rdn)
        out.append((attr.oid.dotted_string, attr._type, str(attr.value)))
    return out


def test_natural_name_order_and_types() -> None:
    s = SubjectInput.from_json_obj({k: v for k, v in FULL_JSON.items() if k != "admission"})
    p, u = _ASN1Type.PrintableString, _ASN1Type.UTF8String
    assert _layout(s.to_x509_name("natural")) == [
        (NameOID.COUNTRY_NAME.dotted_string, p, "DE"),
        (NameOID.ORGANIZATION_NAME.dotted_string, u, "Muster Patentanwälte GmbH"),
        (oids.ORGANIZATION_IDENTIFIER.dotted_string, p, "NTRDE-DED2601V.HRB12345"),
        (NameOID.SURNAME.dotted_string, u, "Mustermann"),
        (NameOID.GIVEN_NAME.dotted_string, u, "Erika"),
        (NameOID.SERIAL_NUMBER.dotted_string, p, "IDCDE-T22000129"),
        (NameOID.COMMON_NAME.dotted_string, u, "Erika Mustermann"),
    ]


def test_name_der_tags() -> None:
    """The DER really carries PrintableString (0x13) / UTF8String (0x0c) where we say so."""
    der = NATURAL.to_x509_name("natural").public_bytes()
    assert bytes.fromhex("060355040613024445") in der  # C PrintableString "DE"
    assert bytes.fromhex("06035504030c10") + b"Erika Mustermann" in der  # CN UTF8String


def test_legal_name() -> None:
    p, u = _ASN1Type.PrintableString, _ASN1Type.UTF8String
    assert _layout(LEGAL.to_x509_name("legal")) == [
        (NameOID.COUNTRY_NAME.dotted_string, p, "DE"),
        (NameOID.ORGANIZATION_NAME.dotted_string, u, "Muster GmbH"),
        (oids.ORGANIZATION_IDENTIFIER.dotted_string, p, "VATDE-123456789"),
        (NameOID.COMMON_NAME.dotted_string, u, "Muster"),
    ]


def test_pseudonym_name() -> None:
    s = SubjectInput(countryName="DE", pseudonym="Kafka42", commonName="Kafka42")
    assert [oid for oid, _, _ in _layout(s.to_x509_name("natural"))] == [
        NameOID.COUNTRY_NAME.dotted_string,
        NameOID.PSEUDONYM.dotted_string,
        NameOID.COMMON_NAME.dotted_string,
    ]


def test_org_id_falls_back_to_utf8() -> None:
    s = legal(organizationIdentifier="NTRDE-HRB_12345")
    ((_, typ, _),) = [t for t in _layout(s.to_x509_name("legal")) if t[0] == oids.ORGANIZATION_IDENTIFIER.dotted_string]
    assert typ == _ASN1Type.UTF8String


@pytest.mark.parametrize(
    ("subject", "kind", "message"),
    [
        pytest.param(legal(givenName="Erika"), "legal", "subject.givenName: not allowed", id="legal-given-name"),
        pytest.param(natural(serialNumber="PASDE-ä"), "natural", "subject.serialNumber: not encodable", id="serial"),
        pytest.param(natural(countryName="DEU"), "natural", "subject.countryName: must be 2", id="country-length"),
        pytest.param(natural(countryName="Dä"), "natural", "subject.countryName: not encodable", id="country-charset"),
        pytest.param(SubjectInput(email="a@example.com"), "natural", "subject: no DN attribute", id="empty"),
        pytest.param(NATURAL, "person", 'subject: unknown kind "person"', id="bad-kind"),
    ],
)
def test_to_x509_name_refuses(subject: SubjectInput, kind: str, message: str) -> None:
    with pytest.raises(SubjectError, match=message):
        subject.to_x509_name(kind)  # type: ignore[arg-type]


def test_email_and_admission_not_in_dn() -> None:
    s = SubjectInput.from_json_obj(FULL_JSON)
    rendered = s.to_x509_name("natural").rfc4514_string()
    assert "erika@muster.example" not in rendered
    assert "Patentanwalt" not in rendered.replace("Patentanwälte", "")


def test_unknown_key_with_newline_stays_one_line() -> None:
    """Found by the property test in CI: an unknown key is echoed escaped, never raw."""
    with pytest.raises(SubjectError) as info:
        SubjectInput.from_json_obj({"countryName": "DE", "bad\nkey\u2028": "x"})
    assert len(str(info.value).splitlines()) == 1
    assert '"bad\\nkey\\u2028"' in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"serialNumber": "IDCDE-T22000129\n"},
        {"organizationIdentifier": "VATDE-123456789\n"},
    ],
)
def test_trailing_newline_is_refused(kwargs: dict[str, str]) -> None:
    """Review finding: patterns ending in `$` accepted a trailing newline; \\Z does not."""
    with pytest.raises(SubjectError):
        SubjectInput.from_json_obj({"countryName": "DE", "commonName": "X", "surname": "X", **kwargs})


@pytest.mark.parametrize(
    ("given", "surname", "cn", "ok"),
    [
        ("Jürgen", "Müller", "Jürgen Müller", True),
        ("Jürgen", "Müller", "Juergen Mueller", True),  # ICAO 9303 Part 3 transliteration
        ("Jürgen", "Müller", "Jurgen Muller", True),  # diacritics dropped
        ("José", "Núñez", "Jose Nunez", True),
        ("Søren", "Kierkegaard", "Soeren K.", True),
        ("Erika", "Mustermann", "Max Beispiel", False),
    ],
)
def test_common_name_may_be_transliterated(given: str, surname: str, cn: str, ok: bool) -> None:
    """Review finding: NAT-4.2.4-15 refused transliterated CNs that NAT-4.2.4-12A expects."""
    found = natural_person_rules(natural(givenName=given, surname=surname, commonName=cn))
    codes = {f.code for f in errors_in(found)}
    assert ("etsi.en_319_412_2.nat-4.2.4-15.common_name_not_subject_name" not in codes) is ok
