"""The CRL / CA-certificate blueprint on a local Flask app: content types, cache headers, conditional
GETs, 404 for unknown CAs, 503 when the database is unreachable."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import flask
import pytest
from cryptography import x509
from werkzeug.http import http_date, parse_date

from ca.crl_ocsp.crl_http import crl_blueprint
from ca.store.db import Database
from qtsp.wiring import os_actor
from tests.conftest import Home, init_home
from tests.integration.helpers import open_runtime


def _app(db: Database, **kw: object) -> flask.Flask:
    app = flask.Flask("crl-test")
    app.register_blueprint(crl_blueprint(db, **kw))  # type: ignore[arg-type]
    return app


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_crl_is_served_with_cache_headers_and_conditional_gets(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: str
) -> None:
    url = request.getfixturevalue("pg_url") if database == "postgres" else None
    home = init_home(tmp_path / "home", database_url=url)
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    with open_runtime(home.path) as rt:
        stored = rt.crl().latest("qes")
        assert stored is not None
        client = _app(rt.db, after_change_seconds=60).test_client()
        resp = client.get("/crl/qes.crl")
        assert resp.status_code == 200
        assert resp.mimetype == "application/pkix-crl"
        assert resp.data == stored.der
        assert resp.headers["ETag"] == f'"{hashlib.sha256(stored.der).hexdigest()}"'
        assert parse_date(resp.headers["Last-Modified"]) == stored.this_update
        cache = resp.headers["Cache-Control"]
        assert "public" in cache
        max_age = int(cache.split("max-age=")[1].split(",")[0])
        assert 0 < max_age <= 60  # bounded by crl_after_change_seconds

        assert client.get("/crl/qes.crl", headers={"If-None-Match": resp.headers["ETag"]}).status_code == 304
        not_mod = client.get("/crl/qes.crl", headers={"If-Modified-Since": resp.headers["Last-Modified"]})
        assert not_mod.status_code == 304 and not_mod.data == b""
        assert client.get("/crl/qes.crl", headers={"If-None-Match": '"0000"'}).status_code == 200
        older = http_date(stored.this_update - dt.timedelta(seconds=1))
        assert client.get("/crl/qes.crl", headers={"If-Modified-Since": older}).status_code == 200
        # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
        both = {"If-None-Match": '"0000"', "If-Modified-Since": resp.headers["Last-Modified"]}
        assert client.get("/crl/qes.crl", headers=both).status_code == 200

        # A new CRL changes the ETag: a cached copy is no longer "not modified".
        assert rt.crl().publish("qes", os_actor(), force=True) is not None
        fresh = client.get("/crl/qes.crl", headers={"If-None-Match": resp.headers["ETag"]})
        assert fresh.status_code == 200 and fresh.headers["ETag"] != resp.headers["ETag"]
        assert (
            x509.load_der_x509_crl(fresh.data).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
        )

        for name in ("root", "seal", "auth"):
            assert client.get(f"/crl/{name}.crl").status_code == 200
        assert client.get("/crl/nope.crl").status_code == 404
        assert client.get("/crl/..%2Fetc.crl").status_code == 404


def test_max_age_is_bounded_by_next_update(soft_home: Home) -> None:
    with open_runtime(soft_home.path) as rt:
        stored = rt.crl().latest("qes")
        assert stored is not None
        near = stored.next_update - dt.timedelta(seconds=20)
        client = _app(rt.db, after_change_seconds=3600, clock=lambda: near).test_client()
        assert "max-age=20," in client.get("/crl/qes.crl").headers["Cache-Control"]
        past = _app(rt.db, clock=lambda: stored.next_update + dt.timedelta(hours=1), name="late").test_client()
        assert "max-age=0," in past.get("/crl/qes.crl").headers["Cache-Control"]


def test_ca_certificates_are_served_as_der(soft_home: Home) -> None:
    with open_runtime(soft_home.path) as rt:
        client = _app(rt.db).test_client()
        for name in ("root", "qes", "seal", "auth"):
            resp = client.get(f"/ca/{name}.crt")
            assert resp.status_code == 200 and resp.mimetype == "application/pkix-cert"
            cert = x509.load_der_x509_certificate(resp.data)
            assert name == "root" or "CA 1" in cert.subject.rfc4514_string()
            assert client.get(f"/ca/{name}.crt", headers={"If-None-Match": resp.headers["ETag"]}).status_code == 304
        assert client.get("/ca/nope.crt").status_code == 404


def test_unreachable_database_is_503_with_retry_after() -> None:
    db = Database("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")
    try:
        client = _app(db, retry_after_seconds=17).test_client()
        for path in ("/crl/qes.crl", "/ca/qes.crt"):
            resp = client.get(path)
            assert resp.status_code == 503
            assert resp.headers["Retry-After"] == "17"
    finally:
        db.dispose()


def test_database_factory_is_called_per_request(soft_home: Home) -> None:
    with open_runtime(soft_home.path) as rt:
        calls: list[int] = []

        def factory() -> Database:
            calls.append(1)
            return rt.db

        client = _app(factory).test_client()  # type: ignore[arg-type]
        assert client.get("/crl/qes.crl").status_code == 200
        assert client.get("/ca/qes.crt").status_code == 200
        assert len(calls) == 2
