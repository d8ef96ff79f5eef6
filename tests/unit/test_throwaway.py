"""The lint certificate's throwaway key (ca.issuance.throwaway) is cheaper than the issuer's key
but gives the same TBS, hence the same findings, as a key of the issuer's own size would."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ca.issuance.builder import IssuerView, build_end_entity, ca_urls
from ca.issuance.lint import PROFILE_CERTIFICATE_TYPES, PkilintGate, certificate_rules
from ca.issuance.throwaway import THROWAWAY_RSA_BITS, throwaway_key
from ca.profiles import load_builtin_profiles
from ca.profiles.subject import SubjectInput
from hsm import KeyAlgorithm
from hsm.soft import _generate_key
from qtsp.demo import DEMO_SUBJECTS

NOW = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_the_throwaway_key_is_the_cheap_one(algorithm: KeyAlgorithm) -> None:
    key = throwaway_key(algorithm)
    if algorithm.is_ec:
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    else:
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == THROWAWAY_RSA_BITS
    assert throwaway_key(algorithm) is key  # one per process


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
@pytest.mark.parametrize("profile_name", sorted(PROFILE_CERTIFICATE_TYPES))
def test_same_tbs_and_findings_as_with_a_key_of_the_issuers_size(algorithm: KeyAlgorithm, profile_name: str) -> None:
    issuer_key = _generate_key(algorithm)  # as the soft backend makes a CA key
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"), x509.NameAttribute(NameOID.COMMON_NAME, "CA")])
    hash_alg = algorithm.default_hash()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(issuer_key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hash_alg)
    )
    pds = (("https://qtsp.example.com/pds-en.pdf", "en"), ("https://qtsp.example.com/pds-de.pdf", "de"))
    issuer = IssuerView("qes", ca_cert, ca_urls("http://qtsp.example.com", "qes"), "1.3.6.1.4.1.32473.1", pds)
    profile = load_builtin_profiles()[profile_name]
    builder = build_end_entity(
        profile=profile,
        issuer=issuer,
        subject=SubjectInput.from_json_obj(DEMO_SUBJECTS[profile_name]),
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        serial=x509.random_serial_number(),
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=365),
    )
    cheap = builder.sign(throwaway_key(algorithm), hash_alg)
    full = builder.sign(_generate_key(algorithm), hash_alg)
    assert cheap.tbs_certificate_bytes == full.tbs_certificate_bytes
    assert cheap.signature_algorithm_oid == full.signature_algorithm_oid
    gate = PkilintGate()

    def findings(cert: x509.Certificate) -> list[tuple[str, str, str]]:
        ours = certificate_rules(cert, profile, ca_cert, None, None)
        theirs = gate.lint(cert.public_bytes(serialization.Encoding.DER), profile_name)
        return [(f.severity.name, f.code, f.message) for f in [*ours, *theirs]]

    assert findings(cheap) == findings(full)
