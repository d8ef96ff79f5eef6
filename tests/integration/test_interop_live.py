"""Relying-party interop against a live server on loopback (issue 3 point 7).

gunicorn with two workers serves the application factory; the relying parties are the real
tools: ``openssl ocsp`` (POST) and a GET through ``urllib`` verified by ``openssl ocsp -respin``,
``openssl verify -crl_check`` with the CRL fetched over HTTP, and pyhanko-certvalidator
validating a certificate of every profile with revocation checking required, fetching CA
certificates, CRLs and OCSP answers from the server.  A revocation committed by another process
is visible through OCSP within one second, whichever worker answers.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ca.profiles.subject import SubjectInput
from qtsp.cli import cli
from qtsp.demo import DEMO_SUBJECTS, fresh_csr
from qtsp.wiring import os_actor
from tests.conftest import Home, init_home, make_softhsm_token
from tests.integration.helpers import free_port, gunicorn_app, open_runtime
from tests.integration.ocsp_helpers import request_der

PROFILES = ("qes-natural", "qseal-legal", "upc-auth")


@dataclass
class Live:
    home: Home
    url: str
    env: dict[str, str]
    pem: dict[str, Path]
    certs: dict[str, x509.Certificate]
    cas: dict[str, x509.Certificate]


@pytest.fixture(scope="module", params=["soft", "pkcs11"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp(f"live-{request.param}")
    port = free_port()
    token = make_softhsm_token() if request.param == "pkcs11" else None
    home = init_home(tmp / "home", backend=request.param, token=token, base_url=f"http://127.0.0.1:{port}")
    env = {**home.env, "QTSP_HOME": str(home.path)}
    if "SOFTHSM2_CONF" in os.environ:
        env["SOFTHSM2_CONF"] = os.environ["SOFTHSM2_CONF"]
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        certs: dict[str, x509.Certificate] = {}
        with open_runtime(home.path) as rt:
            service = rt.issuance()
            for name in PROFILES:
                certs[name] = service.issue(
                    profile_name=name,
                    csr=fresh_csr(),
                    subject=SubjectInput.from_json_obj(DEMO_SUBJECTS[name]),
                    actor=os_actor(),
                ).certificate
            for extra in ("revoked", "held"):
                certs[extra] = service.issue(
                    profile_name="qes-natural",
                    csr=fresh_csr(),
                    subject=SubjectInput.from_json_obj(DEMO_SUBJECTS["qes-natural"]),
                    actor=os_actor(),
                    on_hold=extra == "held",
                ).certificate
            rt.revocation().revoke(
                "qes", format(certs["revoked"].serial_number, "x"), "keyCompromise", actor=os_actor()
            )
            from ca.store import repository as repo

            with rt.db.read() as s:
                cas = {c.name: x509.load_der_x509_certificate(c.certificate_der) for c in repo.list_cas(s)}
        result = CliRunner().invoke(cli, ["--home", str(home.path), "crl", "publish"])
        assert result.exit_code == 0, result.output
        pem: dict[str, Path] = {}
        for name, cert in {**certs, **{f"ca-{k}": v for k, v in cas.items()}}.items():
            pem[name] = tmp / f"{name}.pem"
            pem[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        with gunicorn_app(env, port):
            yield Live(home, f"http://127.0.0.1:{port}", env, pem, certs, cas)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _issuer_name(cert: x509.Certificate, live: Live) -> str:
    return next(n for n, c in live.cas.items() if c.subject == cert.issuer)


def _openssl_ocsp(live: Live, name: str, *extra: str) -> str:
    issuer = _issuer_name(live.certs[name], live)
    out = subprocess.run(
        [
            "openssl",
            "ocsp",
            "-issuer",
            str(live.pem[f"ca-{issuer}"]),
            "-cert",
            str(live.pem[name]),
            "-url",
            f"{live.url}/ocsp",
            "-CAfile",
            str(live.pem["ca-root"]),
            "-verify_other",
            str(live.pem[f"ca-{issuer}"]),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Response verify OK" in out.stderr + out.stdout
    return out.stdout


@pytest.mark.hsm
def test_openssl_ocsp_post_good_revoked_held(live: Live) -> None:
    assert f"{live.pem['qes-natural']}: good" in _openssl_ocsp(live, "qes-natural")
    revoked = _openssl_ocsp(live, "revoked")
    assert f"{live.pem['revoked']}: revoked" in revoked and "Reason: keyCompromise" in revoked
    held = _openssl_ocsp(live, "held", "-no_nonce")
    assert "revoked" in held and "Reason: certificateHold" in held


def _get(live: Live, request_der: bytes) -> bytes:
    encoded = urllib.parse.quote(base64.b64encode(request_der).decode(), safe="")
    with urllib.request.urlopen(f"{live.url}/ocsp/{encoded}", timeout=10) as r:
        assert r.headers["Content-Type"] == "application/ocsp-response"
        return bytes(r.read())


def test_get_request_verified_by_openssl(live: Live, tmp_path: Path) -> None:
    cert = live.certs["qseal-legal"]
    issuer = live.cas[_issuer_name(cert, live)]
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    resp = tmp_path / "resp.der"
    resp.write_bytes(_get(live, req.public_bytes(serialization.Encoding.DER)))
    out = subprocess.run(
        [
            "openssl",
            "ocsp",
            "-respin",
            str(resp),
            "-issuer",
            str(live.pem["ca-seal"]),
            "-sha256",  # the CertID openssl looks up is SHA-256, like the request (before -cert)
            "-cert",
            str(live.pem["qseal-legal"]),
            "-CAfile",
            str(live.pem["ca-root"]),
            "-verify_other",
            str(live.pem["ca-seal"]),
            "-no_nonce",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0 and "Response verify OK" in out.stderr + out.stdout, out.stdout + out.stderr
    assert f"{live.pem['qseal-legal']}: good" in out.stdout


def test_never_issued_serial_is_never_good(live: Live) -> None:
    """A GET for a serial the CA never issued: revoked, with the extended-revoke extension."""
    never_issued = live.certs["qes-natural"].serial_number ^ 0x5A5A
    resp = ocsp.load_der_ocsp_response(_get(live, request_der(live.cas["qes"], never_issued)))
    assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert any(e.oid.dotted_string == "1.3.6.1.5.5.7.48.1.9" for e in resp.extensions)


def test_openssl_verify_crl_check_with_crl_over_http(live: Live, tmp_path: Path) -> None:
    with urllib.request.urlopen(f"{live.url}/crl/qes.crl", timeout=10) as r:
        assert r.headers["Content-Type"] == "application/pkix-crl"
        der = r.read()
    crl_pem = tmp_path / "qes.crl.pem"
    crl = x509.load_der_x509_crl(der)
    crl_pem.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    with urllib.request.urlopen(f"{live.url}/crl/root.crl", timeout=10) as r:
        root_crl = x509.load_der_x509_crl(r.read())
    root_crl_pem = tmp_path / "root.crl.pem"
    root_crl_pem.write_bytes(root_crl.public_bytes(serialization.Encoding.PEM))

    def verify(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "openssl",
                "verify",
                "-crl_check_all",
                "-CAfile",
                str(live.pem["ca-root"]),
                "-untrusted",
                str(live.pem["ca-qes"]),
                "-CRLfile",
                str(crl_pem),
                "-CRLfile",
                str(root_crl_pem),
                str(live.pem[name]),
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    good = verify("qes-natural")
    assert good.returncode == 0, good.stdout + good.stderr
    bad = verify("revoked")
    assert bad.returncode != 0 and "certificate revoked" in bad.stdout + bad.stderr


@pytest.mark.parametrize("name", PROFILES)
def test_pyhanko_certvalidator_requires_revocation_and_fetches_from_us(live: Live, name: str) -> None:
    from pyhanko_certvalidator import CertificateValidator, ValidationContext

    def load(cert: x509.Certificate) -> object:
        from asn1crypto import x509 as a

        return a.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    context = ValidationContext(trust_roots=[load(live.cas["root"])], allow_fetching=True, revocation_mode="require")
    validator = CertificateValidator(load(live.certs[name]), validation_context=context)
    path = asyncio.run(validator.async_validate_path())
    assert len(path) == 3


def test_pyhanko_rejects_the_revoked_certificate(live: Live) -> None:
    from asn1crypto import x509 as a
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import RevokedError

    root = a.Certificate.load(live.cas["root"].public_bytes(serialization.Encoding.DER))
    leaf = a.Certificate.load(live.certs["revoked"].public_bytes(serialization.Encoding.DER))
    context = ValidationContext(trust_roots=[root], allow_fetching=True, revocation_mode="require")
    with pytest.raises(RevokedError):
        asyncio.run(CertificateValidator(leaf, validation_context=context).async_validate_path())


def test_revocation_visible_within_one_second_across_workers(live: Live) -> None:
    """Revoke in another process (the CLI), then ask every worker: revoked within one second."""
    with open_runtime(live.home.path) as rt:
        cert = (
            rt.issuance(pkilint=False)
            .issue(
                profile_name="upc-auth",
                csr=fresh_csr(),
                subject=SubjectInput.from_json_obj(DEMO_SUBJECTS["upc-auth"]),
                actor=os_actor(),
            )
            .certificate
        )
    issuer = live.cas[_issuer_name(cert, live)]
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    der = req.public_bytes(serialization.Encoding.DER)
    assert ocsp.load_der_ocsp_response(_get(live, der)).certificate_status is ocsp.OCSPCertStatus.GOOD
    out = subprocess.run(
        [
            str(Path(sys.executable).with_name("qtsp")),
            "--home",
            str(live.home.path),
            "ca",
            "revoke",
            format(cert.serial_number, "x"),
            "--reason",
            "superseded",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **live.env},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    committed = time.monotonic()  # the CLI has exited, so its transaction has committed
    # A worker may repeat an earlier answer for [status] ocsp_cache_ms (0.5 s), never longer.
    while ocsp.load_der_ocsp_response(_get(live, der)).certificate_status is not ocsp.OCSPCertStatus.REVOKED:
        assert time.monotonic() - committed < 1.0, "revocation not visible through OCSP within one second"
        time.sleep(0.02)
    # Once ocsp_cache_ms has passed since the commit, no worker holds an answer from before it
    # (the GOOD one above may still be cached in another worker when the CLI exits quickly):
    # twenty fresh connections, gunicorn's workers taking turns, every one answers revoked.
    time.sleep(max(0.0, committed + 0.5 - time.monotonic()))
    answers = {ocsp.load_der_ocsp_response(_get(live, der)).certificate_status for _ in range(20)}
    assert answers == {ocsp.OCSPCertStatus.REVOKED}
