"""The hierarchy `qtsp init` builds: CA certificates and delegated OCSP responders, linted with
pkilint's RFC 5280 validators (as its `lint_pkix_cert`) and checked against RFC 6960 §4.2.2.2 and
EN 319 411-1 CSS-6.6.3-01A/B."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from pkilint import loader
from pkilint.pkix import certificate, extension, name

from ca.store import repository as repo
from tests.conftest import Home
from tests.integration.helpers import open_runtime

_PKIX = certificate.create_pkix_certificate_validator_container(
    certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
    [
        certificate.create_issuer_validator_container([]),
        certificate.create_validity_validator_container(),
        certificate.create_subject_validator_container([]),
        certificate.create_extensions_validator_container([]),
        certificate.create_spki_validator_container([]),
    ],
)


def _pkix_findings(der: bytes) -> list[str]:
    doc = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "ca")
    return [
        f"{fd.finding.severity.name} {fd.finding.code} {fd.message or ''}"
        for r in _PKIX.validate(doc.root)
        for fd in r.finding_descriptions
        if fd.finding.severity.name in ("FATAL", "ERROR", "WARNING")
    ]


@pytest.fixture
def hierarchy(any_home: Home) -> dict[str, repo.CASnapshot]:
    with open_runtime(any_home.path) as rt, rt.db.read() as s:
        return {ca.name: ca for ca in repo.list_cas(s)}


def test_ca_certificates(hierarchy: dict[str, repo.CASnapshot]) -> None:
    assert set(hierarchy) == {"root", "qes", "seal", "auth"}
    root = x509.load_der_x509_certificate(hierarchy["root"].certificate_der)
    for ca_name, snapshot in hierarchy.items():
        cert = x509.load_der_x509_certificate(snapshot.certificate_der)
        assert _pkix_findings(snapshot.certificate_der) == [], ca_name
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca  # RFC 5280 §4.2.1.9
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
        assert cert.issuer == root.subject
        if ca_name == "root":
            assert bc.value.path_length == 1
        else:
            assert bc.value.path_length == 0
            cert.verify_directly_issued_by(root)
            assert cert.not_valid_after_utc <= root.not_valid_after_utc


def test_delegated_ocsp_responders(hierarchy: dict[str, repo.CASnapshot]) -> None:
    for ca_name in ("qes", "seal", "auth"):
        snapshot = hierarchy[ca_name]
        assert snapshot.responder_certificate_der is not None and snapshot.responder_key is not None
        assert snapshot.responder_key.purpose == "ocsp"
        ca_cert = x509.load_der_x509_certificate(snapshot.certificate_der)
        responder = x509.load_der_x509_certificate(snapshot.responder_certificate_der)
        assert _pkix_findings(snapshot.responder_certificate_der) == [], ca_name
        # RFC 6960 §4.2.2.2: issued directly by the CA it answers for, with id-kp-OCSPSigning.
        responder.verify_directly_issued_by(ca_cert)
        assert list(responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
            ExtendedKeyUsageOID.OCSP_SIGNING
        ]
        # EN 319 411-1 CSS-6.6.3-01A: ocsp-nocheck, hence a short validity.
        responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
        lifetime = responder.not_valid_after_utc - responder.not_valid_before_utc
        assert dt.timedelta(days=1) <= lifetime <= dt.timedelta(days=31)
        # CSS-6.6.3-01B: no AIA OCSP pointer (no loops).
        with pytest.raises(x509.ExtensionNotFound):
            responder.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
        ku = responder.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
        assert isinstance(responder.public_key(), ec.EllipticCurvePublicKey)
