"""Build a certificate, a CRL and an OCSP response with a given key, and verify their signatures."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from hsm.api import SigningKey


@dataclass(frozen=True)
class Signed:
    cert: x509.Certificate
    crl: x509.CertificateRevocationList
    ocsp: ocsp.OCSPResponse


def sign_all(key: SigningKey, algorithm: hashes.HashAlgorithm, rsa_padding: padding.PSS | None = None) -> Signed:
    """Sign a self-signed CA certificate, a CRL and an OCSP response with ``key``."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hsm test CA")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    cert = builder.sign(key, algorithm, rsa_padding=rsa_padding)
    revoked = x509.RevokedCertificateBuilder().serial_number(12345).revocation_date(now).build()
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(now)
        .next_update(now + datetime.timedelta(days=1))
        .add_revoked_certificate(revoked)
        .sign(key, algorithm, rsa_padding=rsa_padding)
    )
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=cert,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now,
            next_update=now + datetime.timedelta(hours=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, cert)
        .sign(key, algorithm)
    )
    return Signed(cert, crl, response)


def verify_signature(
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    signature: bytes,
    data: bytes,
    algorithm: hashes.HashAlgorithm,
    rsa_padding: padding.AsymmetricPadding | None = None,
) -> None:
    """Verify one signature (raises InvalidSignature)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(algorithm))
    else:
        public_key.verify(signature, data, rsa_padding or padding.PKCS1v15(), algorithm)


def verify_all(signed: Signed, public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> None:
    """Verify the certificate, CRL and OCSP signatures with ``public_key``."""
    cert, crl, response = signed.cert, signed.crl, signed.ocsp
    assert cert.signature_hash_algorithm is not None
    params = cert.signature_algorithm_parameters
    verify_signature(
        public_key,
        cert.signature,
        cert.tbs_certificate_bytes,
        cert.signature_hash_algorithm,
        params if isinstance(params, (padding.PSS, padding.PKCS1v15)) else None,
    )
    cert.verify_directly_issued_by(cert)
    assert crl.is_signature_valid(public_key)
    assert response.signature_hash_algorithm is not None
    verify_signature(public_key, response.signature, response.tbs_response_bytes, response.signature_hash_algorithm)
