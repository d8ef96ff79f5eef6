"""The pure rules of follow-up orders (ra/followup_rules.py) and the CMS check (ca/asn1/cms.py)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from ca.asn1.cms import CMSVerifyError, verify_signed_data
from ca.asn1.errors import Asn1DecodeError
from ra.followup_rules import (
    ChainLink,
    canonical_request,
    consecutive_without_identification,
    expected_subject,
    new_order_password,
    normalise_order_password,
    subject_changes,
)


def test_canonical_request_is_deterministic_and_binds_every_field() -> None:
    base = canonical_request(7, "qes-card", "n1", None)
    assert base == canonical_request(7, "qes-card", "n1", None)
    assert json.loads(base) == {
        "card_id": 7,
        "method": None,
        "nonce": "n1",
        "product": "qes-card",
        "purpose": "qtsp-follow-up-order/1",
    }
    assert b" " not in base and list(json.loads(base)) == sorted(json.loads(base))
    others = {
        canonical_request(8, "qes-card", "n1", None),
        canonical_request(7, "upc-card", "n1", None),
        canonical_request(7, "qes-card", "n2", None),
        canonical_request(7, "qes-card", "n1", "postident-branch"),
    }
    assert base not in others and len(others) == 4


def test_order_passwords_are_typable_random_and_normalised() -> None:
    seen = {new_order_password() for _ in range(200)}
    assert len(seen) == 200
    for pw in seen:
        groups = pw.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]
        assert not set("".join(groups)) & set("01IOL")
    pw = next(iter(seen))
    assert normalise_order_password(pw.lower().replace("-", " ")) == pw.replace("-", "")


@pytest.mark.parametrize(
    ("chain", "count"),
    [
        ([ChainLink("new", True)], 0),
        ([ChainLink("follow-up", False), ChainLink("new", True)], 1),
        ([ChainLink("follow-up", False), ChainLink("follow-up", False), ChainLink("new", True)], 2),
        # A follow-up with fresh identity evidence resets the count.
        ([ChainLink("follow-up", False), ChainLink("follow-up", True), ChainLink("follow-up", False)], 1),
        ([ChainLink("renewal", False), ChainLink("follow-up", False), ChainLink("new", False)], 2),
        ([], 0),
    ],
)
def test_consecutive_follow_ups_without_identification(chain: list[ChainLink], count: int) -> None:
    assert consecutive_without_identification(chain) == count


CURRENT: dict[str, object] = {
    "countryName": "DE",
    "commonName": "Anna A",
    "givenName": "Anna",
    "surname": "A",
    "serialNumber": "IDCDE-T1",
    "organizationName": "Musterfirma GmbH",
    "organizationIdentifier": "NTRDE-HRB1",
}


def test_unchanged_records_keep_the_subject() -> None:
    expected = expected_subject(
        CURRENT,  # type: ignore[arg-type]
        subject_kind="natural",
        given_names="Anna",
        surname="A",
        organisation=("Musterfirma GmbH", "NTRDE-HRB1", "DE"),
    )
    assert subject_changes(CURRENT, expected) == []  # type: ignore[arg-type]


def test_a_changed_name_or_organisation_is_found() -> None:
    married = expected_subject(
        CURRENT,  # type: ignore[arg-type]
        subject_kind="natural",
        given_names="Anna",
        surname="Becker",
        organisation=("Musterfirma GmbH", "NTRDE-HRB1", "DE"),
    )
    assert subject_changes(CURRENT, married) == ["commonName", "surname"]  # type: ignore[arg-type]
    renamed = expected_subject(
        CURRENT,  # type: ignore[arg-type]
        subject_kind="natural",
        given_names="Anna",
        surname="A",
        organisation=("Musterfirma SE", "NTRDE-HRB1", "DE"),
    )
    assert subject_changes(CURRENT, renamed) == ["organizationName"]  # type: ignore[arg-type]


def _self_signed() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Holder")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _sign(content: bytes, *options: pkcs7.PKCS7Options) -> tuple[bytes, x509.Certificate]:
    key, cert = _self_signed()
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary, *options])
    )
    return der, cert


def test_cms_signature_verifies_and_returns_content_and_signer() -> None:
    der, cert = _sign(b"the request")
    signed = verify_signed_data(der)
    assert signed.content == b"the request"
    assert signed.signer_certificate_der == cert.public_bytes(serialization.Encoding.DER)
    assert signed.signer_serial == cert.serial_number


def test_cms_without_signed_attributes_verifies_too() -> None:
    der, _ = _sign(b"plain", pkcs7.PKCS7Options.NoAttributes)
    assert verify_signed_data(der).content == b"plain"


def test_cms_tampering_is_refused() -> None:
    der, _ = _sign(b"the request")
    i = der.index(b"the request")
    tampered = der[:i] + b"The request" + der[i + len(b"the request") :]
    with pytest.raises(CMSVerifyError, match="messageDigest"):
        verify_signed_data(tampered)
    flipped = bytearray(der)
    flipped[-3] ^= 0x01  # inside the signature value
    with pytest.raises((CMSVerifyError, Asn1DecodeError)):
        verify_signed_data(bytes(flipped))


def test_cms_shapes_that_are_refused() -> None:
    detached, _ = _sign(b"x", pkcs7.PKCS7Options.DetachedSignature)
    with pytest.raises(Asn1DecodeError, match="detached"):
        verify_signed_data(detached)
    key, cert = _self_signed()
    no_certs = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(b"x")
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoCerts])
    )
    with pytest.raises(Asn1DecodeError, match="signer certificate"):
        verify_signed_data(no_certs)
    for junk in (b"", b"\x30\x00", b"not der", b"\x30" * 70_000):
        with pytest.raises(Asn1DecodeError):
            verify_signed_data(junk)
