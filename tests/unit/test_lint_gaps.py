"""The known-pkilint-gap table applies only to its exact code, node and identifier types."""

from __future__ import annotations

import pytest

from ca.issuance.lint import _known_gap

ORG = "certificate.tbsCertificate.subject.rdnSequence.2.0.value.x520OrganizationIdentifier"
SERIAL = "certificate.tbsCertificate.subject.rdnSequence.5.0.value.x520SerialNumber"
LEG = "etsi.en_319_412_1.leg-5.1.4-03.invalid_scheme"
NAT = "etsi.en_319_412_1.nat-5.1.3.invalid_identifier_scheme"
CTRY = "etsi.en_319_412_1.nat-5.1.3.invalid_identifier_country"


@pytest.mark.parametrize(
    ("code", "message", "path", "applies"),
    [
        (LEG, 'Invalid registration scheme "EOR" in organization identifier: "EORDE-1"', ORG, True),
        (LEG, 'Invalid registration scheme "EXC" in organization identifier: "EXCDE-1"', ORG, True),
        (LEG, 'Invalid registration scheme "FOO" in organization identifier: "FOODE-1"', ORG, False),
        (LEG, 'Invalid registration scheme "EOR" in organization identifier: "EORDE-1"', SERIAL, False),
        (NAT, 'Invalid natural person identifier scheme: "EID"', SERIAL, True),
        (NAT, 'Invalid natural person identifier scheme: "XYZ"', SERIAL, False),
        (NAT, 'Invalid natural person identifier scheme: "EID"', ORG, False),
        ("etsi.internal_domain_name", 'Invalid registration scheme "EOR"', ORG, False),
        (CTRY, 'Invalid natural person identifier country code: "EL"', SERIAL, True),
        (CTRY, 'Invalid natural person identifier country code: "XX"', SERIAL, False),
        (CTRY, 'Invalid natural person identifier country code: "EL"', ORG, False),
        (LEG, None, ORG, False),
    ],
)
def test_known_gap_is_narrow(code: str, message: str | None, path: str, applies: bool) -> None:
    assert (_known_gap(code, message, path) is not None) is applies
