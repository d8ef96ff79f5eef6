"""The pure rules of online renewal (ra/renewal.py): the window, eligibility, the chosen date,
unchanged attributes, the contract's signer and the subject read back from a certificate."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ra.errors import RAError, RAErrorKind
from ra.renewal import (
    changed_attributes,
    contract_signer_problem,
    eligibility_findings,
    issue_date_findings,
    renewal_window,
    subject_of_certificate,
)

NOT_AFTER = dt.datetime(2027, 6, 30, 12, 0, tzinfo=dt.UTC)


def _codes(**over: object) -> set[str]:
    args: dict[str, object] = {
        "card_state": "valid",
        "ca_statuses": {"signature": "good"},
        "not_after": NOT_AFTER,
        "now": NOT_AFTER - dt.timedelta(days=10),
        "min_days": 3,
    }
    args.update(over)
    return {f.code.rsplit(".", 1)[1] for f in eligibility_findings(**args)}  # type: ignore[arg-type]


def test_window_closes_n_days_before_expiry() -> None:
    now = dt.datetime(2027, 6, 1, 9, 0, tzinfo=dt.UTC)
    w = renewal_window(NOT_AFTER, now, 3)
    assert (w.earliest, w.latest, w.closes_at) == (
        dt.date(2027, 6, 1),
        dt.date(2027, 6, 27),
        NOT_AFTER - dt.timedelta(days=3),
    )
    assert renewal_window(NOT_AFTER, now, 5).latest == dt.date(2027, 6, 25)


def test_eligibility_names_each_rule() -> None:
    assert _codes() == set()
    assert _codes(now=NOT_AFTER - dt.timedelta(days=3)) == set()  # exactly N days left: still open
    assert _codes(now=NOT_AFTER - dt.timedelta(days=3) + dt.timedelta(seconds=1)) == {"closing_window"}
    assert _codes(now=NOT_AFTER) == {"expired"}
    assert _codes(card_state="revoked", ca_statuses={"signature": "revoked"}) == {"card_state", "ca_revoked"}
    assert _codes(card_state="not-activated", ca_statuses={"signature": "on-hold"}) == {"card_state", "ca_held"}
    assert _codes(ca_statuses={"signature": "good", "authentication": None}) == {"ca_unknown"}
    assert _codes(card_state="expired") == {"card_state"}


def test_issue_date_lies_in_the_window() -> None:
    w = renewal_window(NOT_AFTER, dt.datetime(2027, 6, 1, tzinfo=dt.UTC), 3)
    assert issue_date_findings(dt.date(2027, 6, 1), w) == []
    assert issue_date_findings(dt.date(2027, 6, 27), w) == []
    [past] = issue_date_findings(dt.date(2027, 5, 31), w)
    [late] = issue_date_findings(dt.date(2027, 6, 28), w)
    assert past.code.endswith("date_past") and late.code.endswith("date_after_window")
    assert "2027-06-27" in late.message


def test_changed_attributes_lists_every_difference() -> None:
    current = {"signature": {"commonName": "Anna A", "countryName": "DE"}}
    assert changed_attributes(current, {"signature": {"commonName": "Anna A", "countryName": "DE"}}) == []
    assert changed_attributes(current, {"signature": {"commonName": "Anna B", "countryName": "DE"}}) == [
        "signature.commonName"
    ]
    assert changed_attributes(current, {"signature": {"commonName": "Anna A"}}) == ["signature.countryName"]
    assert changed_attributes(current, {"signature": {**current["signature"], "email": "a@x.example"}}) == [
        "signature.email"
    ]
    assert changed_attributes(current, {}) == ["signature"]


@pytest.mark.parametrize(
    ("organisation", "holder_is_rep", "signer_is_holder", "signer_is_rep", "ok"),
    [
        (None, False, True, False, True),  # no organisation: the holder signs
        (None, False, False, True, False),
        ("Musterfirma", True, True, True, True),  # the holder is the representative
        ("Musterfirma", False, True, False, False),  # representative differs: the holder may not sign
        ("Musterfirma", False, False, False, False),  # nor a non-signatory
        ("Musterfirma", False, False, True, True),  # the representative signed
    ],
)
def test_contract_signer(
    organisation: str | None, holder_is_rep: bool, signer_is_holder: bool, signer_is_rep: bool, ok: bool
) -> None:
    problem = contract_signer_problem(
        organisation=organisation,
        holder_is_representative=holder_is_rep,
        signer_is_holder=signer_is_holder,
        signer_is_representative=signer_is_rep,
    )
    assert (problem is None) is ok


def _certificate(name: x509.Name, *extensions: tuple[x509.ExtensionType, bool]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
    )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical)
    der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der, spki


def test_subject_is_read_back_from_the_certificate() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.GIVEN_NAME, "Paula"),
            x509.NameAttribute(NameOID.SURNAME, "Patent"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Paula Patent"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "IDCDE-T0001"),
        ]
    )
    san = x509.SubjectAlternativeName([x509.RFC822Name("paula@example.org")])
    der, spki = _certificate(name, (san, False))
    subject, key = subject_of_certificate(der)
    assert subject == {
        "countryName": "DE",
        "givenName": "Paula",
        "surname": "Patent",
        "commonName": "Paula Patent",
        "serialNumber": "IDCDE-T0001",
        "email": "paula@example.org",
    }
    assert key == spki


def test_attributes_a_renewal_cannot_carry_over_are_refused() -> None:
    odd = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "X"), x509.NameAttribute(NameOID.LOCALITY_NAME, "Berlin")])
    with pytest.raises(RAError) as e:
        subject_of_certificate(_certificate(odd)[0])
    assert e.value.kind is RAErrorKind.POLICY_VIOLATION and "attribute_unsupported" in e.value.detail
    profession = x509.ProfessionInfo(None, ["Rechtsanwalt"], None, None, None)
    admission = x509.Admissions(None, [x509.Admission(None, None, [profession])])
    plain = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "X")])
    with pytest.raises(RAError) as e:
        subject_of_certificate(_certificate(plain, (admission, False))[0])
    assert "qtsp.ra.renewal.admission" in e.value.detail
