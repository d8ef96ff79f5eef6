"""Database or HSM unavailable → tryLater (RFC 6960 §2.3), never internalError and never HTTP 500."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from cryptography.x509 import ocsp

from ca.crl_ocsp.ocsp import TRY_LATER
from tests.conftest import PG_ADMIN_URL, Home, init_home, make_softhsm_token
from tests.integration.helpers import open_runtime
from tests.integration.ocsp_helpers import app_for, ca_certificates, issue, request_der

NONCE = b"0123456789abcdef"


def test_postgres_gone_gives_try_later(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = init_home(tmp_path / "home", database_url=pg_url)
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    with open_runtime(home.path) as rt:
        cas = ca_certificates(rt)
        cert = issue(rt)
        req = request_der(cas[cert.issuer], cert.certificate.serial_number)
        client = app_for(rt.ocsp_responder()).test_client()
        first = ocsp.load_der_ocsp_response(client.post("/ocsp", data=req).data)
        assert first.certificate_status is ocsp.OCSPCertStatus.GOOD  # warmed up: caches and connection
        name = pg_url.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        rt.ocsp_responder().forget_cached_answers()  # else the last answer is repeated for up to 0.5 s
        for _ in range(2):  # the broken connection, then a failed reconnect
            r = client.post("/ocsp", data=req)
            assert r.status_code == 200 and r.data == TRY_LATER
        rt.db.dispose()


def test_sqlite_file_gone_gives_try_later(soft_home: Home) -> None:
    with open_runtime(soft_home.path) as rt:
        cas = ca_certificates(rt)
        cert = issue(rt)
    req = request_der(cas[cert.issuer], cert.certificate.serial_number)
    db_file = soft_home.path / "qtsp.db"
    shutil.move(db_file, soft_home.path / "moved.db")
    for suffix in ("-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    with open_runtime(soft_home.path) as rt:  # a fresh worker: SQLite opens an empty file
        responder = rt.ocsp_responder()
        answer = responder.respond(req)
        assert answer.outcome == "try_later" and answer.der == TRY_LATER


def test_hsm_token_gone_gives_try_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = make_softhsm_token()
    home = init_home(tmp_path / "home", backend="pkcs11", token=token)
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    with open_runtime(home.path) as rt:
        cas = ca_certificates(rt)
        cert = issue(rt)
        ca = cas[cert.issuer]
        rt.ocsp_presigner().refresh_due()
        client = app_for(rt.ocsp_responder()).test_client()
        live = ocsp.load_der_ocsp_response(client.post("/ocsp", data=request_der(ca, 99, nonce=NONCE)).data)
        assert live.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL  # the key works before
        subprocess.run(
            ["softhsm2-util", "--delete-token", "--token", token.label],
            check=True,
            capture_output=True,
            env=os.environ.copy(),
        )
        for serial in (99, cert.certificate.serial_number):
            r = client.post("/ocsp", data=request_der(ca, serial, nonce=NONCE))  # a nonce needs live signing
            assert r.status_code == 200 and r.data == TRY_LATER
        # Pre-signed answers need no HSM: still served.
        stored = client.post("/ocsp", data=request_der(ca, cert.certificate.serial_number))
        assert ocsp.load_der_ocsp_response(stored.data).certificate_status is ocsp.OCSPCertStatus.GOOD
