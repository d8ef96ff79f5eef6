"""Operations endpoints (issue 5 point 5): /metrics exposes process counters and database figures,
/healthz and /readyz report liveness and readiness; JSON logs redact secrets."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ca.profiles.subject import SubjectInput
from qtsp.app import create_app
from qtsp.config import load_config
from qtsp.demo import DEMO_SUBJECTS, fresh_csr
from qtsp.wiring import os_actor
from tests.conftest import Home


def test_metrics_count_issuance_and_read_database_figures(soft_home: Home) -> None:
    app = create_app(config=load_config(soft_home.path))
    rt = app.extensions["qtsp_runtime"].get()
    rt.issuance(pkilint=False).issue(
        profile_name="upc-auth",
        csr=fresh_csr(),
        subject=SubjectInput.from_json_obj(DEMO_SUBJECTS["upc-auth"]),
        actor=os_actor(),
    )
    rt.revocation().revoke("auth", _serial(rt), "superseded", actor=os_actor())
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    with rt.db.read() as s:
        from sqlalchemy import select

        from ca.store.models import CertificateRecord

        der = s.scalars(select(CertificateRecord.der).where(CertificateRecord.profile == "upc-auth")).one()
    cert = x509.load_der_x509_certificate(der)
    issuer = rt.issuance(pkilint=False).issuers["auth"].view.certificate
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    client = app.test_client()
    answer = client.post("/ocsp", data=req.public_bytes(serialization.Encoding.DER))
    assert ocsp.load_der_ocsp_response(answer.data).certificate_status is ocsp.OCSPCertStatus.REVOKED
    client.post("/ocsp", data=b"garbage")
    body = client.get("/metrics").get_data(as_text=True)
    assert 'qtsp_ocsp_responses_total{outcome="presigned",status="revoked"}' in body or (
        'qtsp_ocsp_responses_total{outcome="live",status="revoked"}' in body
    )
    assert 'qtsp_ocsp_responses_total{outcome="malformed",status="-"}' in body
    assert 'qtsp_issuance_total{profile="upc-auth",result="issued"}' in body
    assert 'qtsp_issuance_seconds_count{profile="upc-auth"}' in body
    assert "qtsp_database_up 1.0" in body
    assert 'qtsp_certificates{ca="auth",status="revoked"} 1.0' in body
    delay = [
        line for line in body.splitlines() if line.startswith('qtsp_revocation_publication_delay_seconds{ca="auth"}')
    ]
    assert delay and float(delay[0].split()[-1]) >= 0.0
    assert "qtsp_audit_entries" in body
    app.extensions["qtsp_runtime"].close()


def _serial(rt: object) -> str:
    from sqlalchemy import select

    from ca.store.models import CertificateRecord

    with rt.db.read() as s:  # type: ignore[attr-defined]
        return str(s.scalars(select(CertificateRecord.serial).where(CertificateRecord.profile == "upc-auth")).one())


def test_health_and_readiness(soft_home: Home, tmp_path: Path) -> None:
    app = create_app(config=load_config(soft_home.path))
    client = app.test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"] == {"database": "ok", "key_backend": "ok"}
    app.extensions["qtsp_runtime"].close()
    # the database file disappears: not ready, and the metrics say so instead of failing
    (soft_home.path / "qtsp.db").rename(tmp_path / "moved.db")
    for suffix in ("-wal", "-shm"):
        p = soft_home.path / f"qtsp.db{suffix}"
        if p.exists():
            p.unlink()
    (soft_home.path / "qtsp.db").mkdir()  # not a database any more
    app2 = create_app(config=load_config(soft_home.path))
    client2 = app2.test_client()
    bad = client2.get("/readyz")
    assert bad.status_code == 503 and bad.json["checks"]["database"] != "ok"
    assert "qtsp_database_up 0.0" in client2.get("/metrics").get_data(as_text=True)


def test_json_logs_redact_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    import structlog

    from qtsp.observability import configure_logging

    configure_logging("INFO")
    structlog.get_logger("qtsp.test").info("login", user="op1", pin="123456", password="hunter2")
    logging.getLogger("qtsp.std").warning("plain %s", "message")
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert lines[0]["event"] == "login" and lines[0]["user"] == "op1"
    assert lines[0]["pin"] == "[redacted]" and lines[0]["password"] == "[redacted]"
    assert lines[1]["event"] == "plain message" and lines[1]["level"] == "warning"
    logging.getLogger().handlers.clear()


@pytest.mark.parametrize("hops", [0, 1])
def test_client_address_behind_a_trusted_proxy(soft_home: Home, hops: int) -> None:
    """Per-address revocation limits and request records use the proxy's X-Forwarded-For only when
    [serve] trusted_proxies says a proxy is there; otherwise a client cannot forge its address."""
    text = (soft_home.path / "qtsp.toml").read_text()
    (soft_home.path / "qtsp.toml").write_text(text.replace("trusted_proxies = 0", f"trusted_proxies = {hops}"))
    app = create_app(config=load_config(soft_home.path))
    body = {"card_id": 999999, "password": "not the password", "reason": "keyCompromise", "requester_name": "X"}
    r = app.test_client().post("/api/revocations", json=body, headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 403
    from sqlalchemy import select

    from ra.store.models import RevocationRequest

    with app.extensions["qtsp_runtime"].get().db.read() as s:
        [address] = list(s.scalars(select(RevocationRequest.client_address)))
    assert address == ("203.0.113.9" if hops else "127.0.0.1")
