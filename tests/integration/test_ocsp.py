"""The OCSP responder (issue 3): statuses, CertID hashes, GET/POST, nonces, signature and responder
id, archiveCutoff, pkilint, error statuses — on SQLite and PostgreSQL, soft keys and SoftHSM2."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from ca.crl_ocsp.ocsp import MALFORMED, UNAUTHORIZED, OCSPResponder
from ca.store import repository as repo
from qtsp.wiring import Runtime, os_actor
from tests.conftest import Home
from tests.integration.helpers import open_runtime
from tests.integration.ocsp_helpers import (
    app_for,
    archive_cutoff,
    ca_certificates,
    extended_revoke,
    issue,
    multi_request_der,
    pkilint_findings,
    post,
    request_der,
    verify_response,
)

ACTOR = os_actor("revocation-officer")
NONCE = bytes(range(16))


def _fail_a_reservation(rt: Runtime, issuer_name: str, serial: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with rt.db.write() as s:
        ca = next(c for c in repo.list_cas(s) if c.name == issuer_name)
        rid = repo.reserve_serial(s, issuer_id=ca.id, serial=format(serial, "x"), at=now)
        repo.fail_reservation(s, reservation_id=rid, reason="test", at=now)


def test_statuses_over_every_home(any_home: Home) -> None:
    """good / revoked / held / never issued / failed reservation, SHA-1 and SHA-256, live and pre-signed."""
    with open_runtime(any_home.path) as rt:
        cas = ca_certificates(rt)
        good = issue(rt)
        ca = cas[good.issuer]
        revoked = issue(rt)
        held = issue(rt, on_hold=True)
        compromised = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        rt.revocation().revoke(
            revoked.issuer, revoked.serial_hex, "keyCompromise", actor=ACTOR, invalidity_date=compromised
        )
        failed_serial = 0x7A11ED00000000000001
        _fail_a_reservation(rt, good.issuer, failed_serial)
        client = app_for(rt.ocsp_responder()).test_client()
        for algorithm in ("sha1", "sha256"):
            for nonce in (None, NONCE):
                resp = post(client, request_der(ca, good.certificate.serial_number, algorithm, nonce))
                verify_response(resp, ca)
                assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
                assert resp.serial_number == good.certificate.serial_number
                assert resp.hash_algorithm.name == algorithm
                assert archive_cutoff(resp) == [ca.not_valid_before_utc]
                assert not extended_revoke(resp)
                nonces = [e.value.nonce for e in resp.extensions if isinstance(e.value, x509.OCSPNonce)]
                assert nonces == ([NONCE] if nonce else [])
                assert resp.next_update_utc is not None
                assert resp.next_update_utc - resp.this_update_utc == dt.timedelta(hours=24)
                assert pkilint_findings(resp.public_bytes(serialization.Encoding.DER)) == []

                r = post(client, request_der(ca, revoked.certificate.serial_number, algorithm, nonce))
                verify_response(r, ca)
                assert r.certificate_status is ocsp.OCSPCertStatus.REVOKED
                assert r.revocation_reason is x509.ReasonFlags.key_compromise
                assert r.revocation_time_utc is not None
                assert abs((r.revocation_time_utc - dt.datetime.now(dt.UTC)).total_seconds()) < 120
                # The invalidity date is a CRL entry extension only: nothing of it in OCSP.
                assert not any(e.oid == x509.oid.CRLEntryExtensionOID.INVALIDITY_DATE for e in r.single_extensions)

                h = post(client, request_der(ca, held.certificate.serial_number, algorithm, nonce))
                verify_response(h, ca)
                assert h.certificate_status is ocsp.OCSPCertStatus.REVOKED
                assert h.revocation_reason is x509.ReasonFlags.certificate_hold
                assert not extended_revoke(h)

                for serial in (0x1234567890ABCDEF, failed_serial):
                    n = post(client, request_der(ca, serial, algorithm, nonce))
                    verify_response(n, ca)
                    assert n.certificate_status is ocsp.OCSPCertStatus.REVOKED  # never "good" (OVR-6.6.3-02)
                    assert n.revocation_time_utc == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
                    assert n.revocation_reason is x509.ReasonFlags.certificate_hold
                    assert extended_revoke(n)
                    assert pkilint_findings(n.public_bytes(serialization.Encoding.DER)) == []
        # The revocation hook pre-signed the revoked certificate's answer; the refresh does the rest.
        stored = rt.ocsp_presigner().refresh_due()
        assert stored >= 2  # good and held (and the responder certificates)
        r = client.post(
            "/ocsp", data=request_der(ca, good.certificate.serial_number), content_type="application/ocsp-request"
        )
        assert r.headers["Cache-Control"].endswith("public, no-transform, must-revalidate")
        served = ocsp.load_der_ocsp_response(r.data)
        verify_response(served, ca)
        assert served.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert pkilint_findings(r.data) == []


@pytest.fixture
def rt(soft_home: Home) -> Runtime:
    with open_runtime(soft_home.path) as runtime:
        yield runtime  # type: ignore[misc]


def test_get_and_post_and_cache_headers(rt: Runtime) -> None:
    cas = ca_certificates(rt)
    cert = issue(rt)
    ca = cas[cert.issuer]
    client = app_for(rt.ocsp_responder()).test_client()
    der = request_der(ca, cert.certificate.serial_number, "sha256")
    encodings = {
        "standard": base64.b64encode(der).decode(),
        "url-safe, no padding": base64.urlsafe_b64encode(der).decode().rstrip("="),
    }
    for label, text in encodings.items():
        r = client.get("/ocsp/" + quote(text, safe=""))
        assert r.status_code == 200, label
        resp = ocsp.load_der_ocsp_response(r.data)
        assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD, label
        assert r.headers["Cache-Control"].startswith("max-age=")
    # A live answer without nonce may be cached; a pre-signed one carries RFC 5019 §6.2 headers.
    rt.ocsp_presigner().refresh_due()
    r = client.get("/ocsp/" + base64.b64encode(der).decode())
    resp = ocsp.load_der_ocsp_response(r.data)
    assert r.headers["Last-Modified"] and r.headers["Expires"] and r.headers["ETag"].startswith('"')
    max_age = int(r.headers["Cache-Control"].split(",")[0].removeprefix("max-age="))
    assert 0 < max_age <= 60
    assert r.headers["Cache-Control"] == f"max-age={max_age}, public, no-transform, must-revalidate"
    again = client.get("/ocsp/" + base64.b64encode(der).decode())
    assert again.data == r.data and again.headers["ETag"] == r.headers["ETag"]  # served from the store
    # With a nonce: live, echoed, never cached.
    live = client.post("/ocsp", data=request_der(ca, cert.certificate.serial_number, nonce=NONCE))
    assert live.headers["Cache-Control"] == "no-cache, no-store"
    assert "ETag" not in live.headers
    # Base64 with "//" in it is not mangled by slash merging.
    for serial in (0xFFFFFF << k for k in range(0, 64)):
        text = base64.b64encode(request_der(ca, serial)).decode()
        if "//" in text:
            break
    else:
        pytest.fail("no request with // in its base64 found")
    r = client.get("/ocsp/" + text)
    assert r.status_code == 200 and ocsp.load_der_ocsp_response(r.data).serial_number == serial


def test_multiple_requests_in_one_message(rt: Runtime) -> None:
    cas = ca_certificates(rt)
    a, b = issue(rt), issue(rt)
    ca = cas[a.issuer]
    rt.revocation().revoke(b.issuer, b.serial_hex, "superseded", actor=ACTOR)
    client = app_for(rt.ocsp_responder()).test_client()
    der = multi_request_der(
        [(ca, a.certificate.serial_number, "sha1"), (ca, b.certificate.serial_number, "sha256"), (ca, 77, "sha1")],
        nonce=NONCE,
    )
    resp = post(client, der)
    verify_response(resp, ca)
    singles = list(resp.responses)
    assert [s.serial_number for s in singles] == [a.certificate.serial_number, b.certificate.serial_number, 77]
    assert [s.certificate_status for s in singles] == [
        ocsp.OCSPCertStatus.GOOD,
        ocsp.OCSPCertStatus.REVOKED,
        ocsp.OCSPCertStatus.REVOKED,
    ]
    assert singles[1].revocation_reason is x509.ReasonFlags.superseded
    assert [s.hash_algorithm.name for s in singles] == ["sha1", "sha256", "sha1"]
    assert extended_revoke(resp)  # one of them was never issued
    assert len(archive_cutoff(resp)) == 3
    assert [e.value.nonce for e in resp.extensions if isinstance(e.value, x509.OCSPNonce)] == [NONCE]
    assert pkilint_findings(resp.public_bytes(serialization.Encoding.DER)) == []
    # Two issuers in one message: no single responder is authoritative (RFC 6960 §4.2.2.2).
    other = next(c for name, c in cas.items() if name not in (a.issuer, "root"))
    mixed = multi_request_der([(ca, a.certificate.serial_number, "sha1"), (other, 5, "sha1")])
    assert client.post("/ocsp", data=mixed).data == UNAUTHORIZED


def test_unknown_issuer_and_bad_input(rt: Runtime) -> None:
    cas = ca_certificates(rt)
    cert = issue(rt)
    client = app_for(rt.ocsp_responder()).test_client()
    # The root has no responder, and a foreign CA is not ours: unauthorized.
    for issuer in (cas["root"], cert.certificate):
        r = client.post("/ocsp", data=request_der(issuer, cert.certificate.serial_number))
        assert r.status_code == 200 and r.data == UNAUTHORIZED
        assert ocsp.load_der_ocsp_response(r.data).response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    ca = cas[cert.issuer]
    good = request_der(ca, cert.certificate.serial_number)
    for bad in (b"", b"garbage", good[:-1], good + b"\x00", b"\x30\x80" + good[2:], b"\x30" * 5000):
        r = client.post("/ocsp", data=bad)
        assert r.status_code == 200 and r.data == MALFORMED, bad[:10]
    assert client.get("/ocsp/not*base64").data == MALFORMED
    assert client.get("/ocsp/" + "A" * 10000).data == MALFORMED
    # RFC 8954 §2.1: nonces of 1..32 octets; longer ones are refused.
    assert client.post("/ocsp", data=request_der(ca, 5, nonce=b"x" * 33)).data == MALFORMED
    assert ocsp.load_der_ocsp_response(
        client.post("/ocsp", data=request_der(ca, 5, nonce=b"x")).data
    ).response_status is (ocsp.OCSPResponseStatus.SUCCESSFUL)
    # Oversize is refused before parsing, on the declared length and on the bytes read.
    responder: OCSPResponder = rt.ocsp_responder()
    assert responder.respond(good + b"\x00" * responder.max_request_bytes).outcome == "malformed"


def test_openssl_verifies_the_response(rt: Runtime, tmp_path: Path) -> None:
    cas = ca_certificates(rt)
    cert = issue(rt)
    ca = cas[cert.issuer]
    rt.revocation().revoke(cert.issuer, cert.serial_hex, "cessationOfOperation", actor=ACTOR)
    client = app_for(rt.ocsp_responder()).test_client()
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "chain.pem").write_bytes(
        ca.public_bytes(serialization.Encoding.PEM) + cas["root"].public_bytes(serialization.Encoding.PEM)
    )
    req = tmp_path / "req.der"
    subprocess.run(
        [
            "openssl",
            "ocsp",
            "-issuer",
            str(tmp_path / "ca.pem"),
            "-serial",
            f"0x{cert.serial_hex}",
            "-reqout",
            str(req),
        ],
        check=True,
        capture_output=True,
    )
    r = client.post("/ocsp", data=req.read_bytes(), content_type="application/ocsp-request")
    (tmp_path / "resp.der").write_bytes(r.data)
    # The nonce OpenSSL put into its request comes back, and the signature chains to the root.
    checked = subprocess.run(
        [
            "openssl",
            "ocsp",
            "-respin",
            str(tmp_path / "resp.der"),
            "-reqin",
            str(req),
            "-CAfile",
            str(tmp_path / "chain.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0 and "Response verify OK" in checked.stderr, checked.stdout + checked.stderr
    out = subprocess.run(
        [
            "openssl",
            "ocsp",
            "-respin",
            str(tmp_path / "resp.der"),
            "-no_nonce",
            "-CAfile",
            str(tmp_path / "chain.pem"),
            "-issuer",
            str(tmp_path / "ca.pem"),
            "-serial",
            f"0x{cert.serial_hex}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Response verify OK" in out.stderr
    assert ": revoked" in out.stdout and "Reason: cessationOfOperation" in out.stdout


def test_certid_with_a_non_der_hash_algorithm_is_malformed_not_echoed(soft_home: Home) -> None:
    """Regression (found by the fuzz test): a CertID whose hashAlgorithm parameters are not NULL was
    echoed into the answer, which strict parsers then refused.  Such a request is malformedRequest."""
    with open_runtime(soft_home.path) as rt:
        cas = ca_certificates(rt)
        cert = issue(rt)
        good = request_der(cas[cert.issuer], cert.certificate.serial_number)
        sha1_null = bytes.fromhex("06052b0e03021a0500")
        assert sha1_null in good
        odd = good.replace(sha1_null, bytes.fromhex("06052b0e03021a0000"))  # parameters: [UNIVERSAL 0] ''
        client = app_for(rt.ocsp_responder()).test_client()
        assert post(client, good).response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        r = client.post("/ocsp", data=odd, content_type="application/ocsp-request")
        assert r.data == MALFORMED
