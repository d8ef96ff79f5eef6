"""Helpers for the OCSP tests: requests built independently of the responder, a local Flask app,
and checks of a response (signature, responder id, archiveCutoff, pkilint)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Sequence
from typing import Any

from asn1crypto import core
from asn1crypto import ocsp as a_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.x509 import ocsp
from flask import Flask
from flask.testing import FlaskClient

from ca.crl_ocsp.ocsp import OCSPResponder
from ca.crl_ocsp.ocsp_http import ocsp_blueprint
from ca.issuance.service import IssuedCertificate
from ca.store import repository as repo
from qtsp.demo import DEMO_SUBJECTS, fresh_csr
from qtsp.wiring import Runtime, os_actor

HASHES = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256()}


def issue(rt: Runtime, profile: str = "qes-natural", **kw: object) -> IssuedCertificate:
    from ca.profiles.subject import SubjectInput

    return rt.issuance(pkilint=False).issue(
        profile_name=profile,
        csr=fresh_csr(),
        subject=SubjectInput.from_json_obj(DEMO_SUBJECTS[profile]),
        actor=os_actor(),
        **kw,  # type: ignore[arg-type]
    )


def ca_certificates(rt: Runtime) -> dict[str, x509.Certificate]:
    with rt.db.read() as s:
        return {ca.name: x509.load_der_x509_certificate(ca.certificate_der) for ca in repo.list_cas(s)}


def request_der(issuer: x509.Certificate, serial: int, algorithm: str = "sha1", nonce: bytes | None = None) -> bytes:
    """A single-request OCSPRequest built by cryptography from the issuer certificate."""
    name_hash = _digest(algorithm, issuer.subject.public_bytes())
    key_hash = _digest(algorithm, _key_bits(issuer))
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, serial, HASHES[algorithm])
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def multi_request_der(items: Sequence[tuple[x509.Certificate, int, str]], nonce: bytes | None = None) -> bytes:
    """An OCSPRequest with several requests (cryptography cannot build these): asn1crypto."""
    requests = []
    for issuer, serial, algorithm in items:
        requests.append(
            {
                "req_cert": {
                    "hash_algorithm": {"algorithm": algorithm},
                    "issuer_name_hash": _digest(algorithm, issuer.subject.public_bytes()),
                    "issuer_key_hash": _digest(algorithm, _key_bits(issuer)),
                    "serial_number": serial,
                }
            }
        )
    tbs: dict[str, object] = {"request_list": requests}
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "critical": False, "extn_value": nonce}]
    return bytes(a_ocsp.OCSPRequest({"tbs_request": tbs}).dump())


def _digest(algorithm: str, data: bytes) -> bytes:
    return hashlib.new(algorithm, data).digest()


def _key_bits(cert: x509.Certificate) -> bytes:
    from asn1crypto import keys

    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bytes(keys.PublicKeyInfo.load(spki)["public_key"].contents[1:])


def app_for(responder: OCSPResponder) -> Flask:
    app = Flask("ocsp-test")
    app.register_blueprint(ocsp_blueprint(lambda: responder))
    return app


def post(client: FlaskClient, der: bytes) -> ocsp.OCSPResponse:
    r = client.post("/ocsp", data=der, content_type="application/ocsp-request")
    assert r.status_code == 200 and r.mimetype == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(r.data)


def verify_response(resp: ocsp.OCSPResponse, ca: x509.Certificate) -> x509.Certificate:
    """Signature by the included responder certificate, issued by ``ca`` with OCSPSigning; byKey id."""
    assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert len(resp.certificates) == 1
    responder = resp.certificates[0]
    responder.verify_directly_issued_by(ca)
    eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in eku
    assert responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    # RFC 6960 §4.2.1: byKey = SHA-1 of the responder's subjectPublicKey BIT STRING value.
    assert resp.responder_name is None
    assert resp.responder_key_hash == hashlib.sha1(_key_bits(responder)).digest()
    key = responder.public_key()
    assert resp.signature_hash_algorithm is not None
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(resp.signature_hash_algorithm))
    else:
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(resp.signature, resp.tbs_response_bytes, PKCS1v15(), resp.signature_hash_algorithm)
    return responder


def archive_cutoff(resp: ocsp.OCSPResponse) -> list[dt.datetime]:
    """archiveCutoff of every SingleResponse (RFC 6960 §4.4.4, singleExtensions)."""
    basic = a_ocsp.OCSPResponse.load(resp.public_bytes(serialization.Encoding.DER), strict=True)
    out = []
    for single in basic["response_bytes"]["response"].parsed["tbs_response_data"]["responses"]:
        for ext in single["single_extensions"]:
            if ext["extn_id"].native == "archive_cutoff":
                out.append(ext["extn_value"].parsed.native)
    return out


def extended_revoke(resp: ocsp.OCSPResponse) -> bool:
    oid = x509.ObjectIdentifier("1.3.6.1.5.5.7.48.1.9")
    try:
        ext = resp.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return False
    assert isinstance(ext.value, x509.UnrecognizedExtension) and ext.value.value == core.Null().dump()
    return True


@functools.cache
def _linter() -> Any:
    from pkilint import pkix
    from pkilint.pkix import extension, name
    from pkilint.pkix import ocsp as lint_ocsp

    return lint_ocsp.create_pkix_ocsp_response_validator_container(
        [
            lint_ocsp.create_response_decoder(),
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [],
    )


def pkilint_findings(der: bytes) -> list[str]:
    """pkilint's RFC 6960 OCSP response lint (as pkilint/bin/lint_ocsp_response.py), findings above INFO."""
    from pkilint import loader

    results = _linter().validate(loader.load_der_ocsp_response(der, "response").root)
    return [
        f"{f.finding.severity.name} {f.finding.code} {f.message or ''}"
        for r in results
        for f in r.finding_descriptions
        if f.finding.severity.name != "INFO"
    ]
