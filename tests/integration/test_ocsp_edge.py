"""nginx as a caching edge (deploy/nginx/qtsp-ocsp.conf) in front of gunicorn, on loopback.

Real components: gunicorn with two workers serving ``qtsp.app:create_app()``, Debian's nginx with
the rendered configuration (its own prefix, pid file and cache), the ``qtsp`` CLI in another
process for the revocation.  GET answers are cached for at most one second and come back
byte-identical; POST, nonce and error answers are never cached; a revocation is visible through
the edge within 2 s.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ca.profiles.subject import SubjectInput
from qtsp.demo import DEMO_SUBJECTS, fresh_csr
from qtsp.edge import nginx_binary, nginx_edge, render_nginx_config
from qtsp.wiring import os_actor
from tests.conftest import Home, init_home, require
from tests.integration.helpers import free_port, gunicorn_app, open_runtime


@dataclass
class Edge:
    home: Home
    env: dict[str, str]
    origin: str
    edge: str
    issuer: x509.Certificate
    run: Path


@dataclass
class Reply:
    body: bytes
    cache_status: str | None
    cache_control: str | None
    headers: dict[str, str]

    @property
    def status(self) -> ocsp.OCSPCertStatus:
        return ocsp.load_der_ocsp_response(self.body).certificate_status


def _request(base: str, der: bytes | None = None, *, get: bytes | None = None) -> Reply:
    if get is not None:
        encoded = urllib.parse.quote(base64.b64encode(get).decode(), safe="")
        req = urllib.request.Request(f"{base}/ocsp/{encoded}")
    else:
        req = urllib.request.Request(f"{base}/ocsp", data=der, headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/ocsp-response"
        return Reply(bytes(r.read()), r.headers["X-Cache-Status"], r.headers["Cache-Control"], dict(r.headers))


def _issue(edge: Edge, profile: str = "qes-natural") -> tuple[x509.Certificate, bytes]:
    """A new certificate with a pre-signed answer; returns it and a SHA-1 CertID request."""
    with open_runtime(edge.home.path) as rt:
        cert = (
            rt.issuance(pkilint=False)
            .issue(
                profile_name=profile,
                csr=fresh_csr(),
                subject=SubjectInput.from_json_obj(DEMO_SUBJECTS[profile]),
                actor=os_actor(),
            )
            .certificate
        )
        rt.ocsp_presigner().refresh_due()
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, edge.issuer, hashes.SHA1()).build()
    return cert, req.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    require(nginx_binary() is not None, "nginx (Debian package nginx)")
    tmp = tmp_path_factory.mktemp("edge")
    port, edge_port = free_port(), free_port()
    home = init_home(tmp / "home", base_url=f"http://127.0.0.1:{edge_port}")
    env = {**home.env, "QTSP_HOME": str(home.path)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from ca.store import repository as repo

        with open_runtime(home.path) as rt, rt.db.read() as s:
            issuer = next(
                x509.load_der_x509_certificate(c.certificate_der) for c in repo.list_cas(s) if c.name == "qes"
            )
        with gunicorn_app(env, port), nginx_edge(tmp, edge_port, f"127.0.0.1:{port}") as run:
            yield Edge(home, env, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{edge_port}", issuer, run)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_render_fills_every_placeholder_and_refuses_injection(tmp_path: Path) -> None:
    text = render_nginx_config("127.0.0.1:8080", "127.0.0.1:8000", tmp_path / "cache", worker_processes=3)
    assert "{{" not in text and "}}" not in text
    assert "listen 127.0.0.1:8080 reuseport;" in text and "server 127.0.0.1:8000;" in text
    assert f"proxy_cache_path {tmp_path / 'cache'} " in text and "worker_processes 3;" in text
    directives = [line.strip() for line in text.splitlines() if not line.strip().startswith("#")]
    assert not any(d.startswith("proxy_cache_valid") for d in directives)  # lifetime: the stamp only
    assert "add_header X-Accel-Expires $qtsp_expires;" in directives
    with pytest.raises(ValueError, match="upstream"):
        render_nginx_config("127.0.0.1:8080", "127.0.0.1:8000; include /etc/passwd", tmp_path / "cache")


def test_get_through_the_edge_miss_then_hit_same_answer(edge: Edge) -> None:
    cert, der = _issue(edge)
    direct = _request(edge.origin, get=der)
    first = _request(edge.edge, get=der)
    assert first.cache_status == "MISS"
    assert first.body == direct.body  # the pre-signed answer, byte for byte
    resp = ocsp.load_der_ocsp_response(first.body)
    assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.serial_number == cert.serial_number and resp.certificate_status is ocsp.OCSPCertStatus.GOOD
    # The origin's RFC 5019 headers reach the client unchanged; the internal stamp does not.
    for name in ("Cache-Control", "Expires", "Last-Modified", "ETag"):
        assert first.headers[name] == direct.headers[name], name
    assert first.cache_control is not None and "max-age=" in first.cache_control
    assert "X-Accel-Expires" not in first.headers
    seen = [first.cache_status]
    deadline = time.monotonic() + 3
    while seen[-1] != "HIT":
        assert time.monotonic() < deadline, f"no cache hit: {seen}"
        reply = _request(edge.edge, get=der)
        assert reply.body == direct.body
        seen.append(reply.cache_status)
    assert set(seen) <= {"MISS", "EXPIRED", "HIT"}, seen


def test_cached_answer_lives_at_most_one_second(edge: Edge) -> None:
    """nginx counts whole seconds; the stamp keeps an entry at most until its second ends."""
    _, der = _issue(edge)
    fetched: float | None = None
    last_hit_age = 0.0
    end = time.monotonic() + 4
    while time.monotonic() < end:
        before = time.monotonic()
        status = _request(edge.edge, get=der).cache_status
        if status in ("MISS", "EXPIRED"):
            fetched = before
        elif status == "HIT":
            assert fetched is not None
            last_hit_age = max(last_hit_age, time.monotonic() - fetched)
        else:
            pytest.fail(f"unexpected X-Cache-Status {status!r}")
        time.sleep(0.01)
    assert 0.0 < last_hit_age <= 1.1, f"a cached answer was served {last_hit_age:.2f} s after its fetch"


def test_post_passes_through_uncached(edge: Edge) -> None:
    cert, _ = _issue(edge)
    for _ in range(3):
        nonce = os.urandom(16)
        req = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(cert, edge.issuer, hashes.SHA1())
            .add_extension(x509.OCSPNonce(nonce), critical=False)
            .build()
        )
        reply = _request(edge.edge, req.public_bytes(serialization.Encoding.DER))
        assert reply.cache_status is None  # the POST location has no cache at all
        answer = ocsp.load_der_ocsp_response(reply.body)
        assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    plain = ocsp.OCSPRequestBuilder().add_certificate(cert, edge.issuer, hashes.SHA1()).build()
    der = plain.public_bytes(serialization.Encoding.DER)
    for _ in range(3):
        reply = _request(edge.edge, der)
        assert reply.cache_status is None and reply.status is ocsp.OCSPCertStatus.GOOD


def test_nonce_and_error_answers_are_never_cached(edge: Edge) -> None:
    cert, _ = _issue(edge)
    req = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, edge.issuer, hashes.SHA1())
        .add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
        .build()
    )
    der = req.public_bytes(serialization.Encoding.DER)
    bodies = set()
    for _ in range(5):
        reply = _request(edge.edge, get=der)
        assert reply.cache_control is not None and "no-store" in reply.cache_control
        assert reply.cache_status == "MISS", reply.cache_status
        bodies.add(reply.body)
    assert len(bodies) == 5  # signed afresh every time (ECDSA signatures differ)
    with urllib.request.urlopen(f"{edge.edge}/ocsp/AAAA", timeout=10) as r:
        assert r.headers["X-Cache-Status"] == "MISS" and "no-store" in r.headers["Cache-Control"]
    with urllib.request.urlopen(f"{edge.edge}/ocsp/AAAA", timeout=10) as r:
        assert r.headers["X-Cache-Status"] == "MISS"
        error = ocsp.load_der_ocsp_response(r.read())
        assert error.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_revocation_visible_through_the_edge_within_two_seconds(edge: Edge) -> None:
    """The CLI revokes in another process while clients keep the edge's entry warm."""
    cert, der = _issue(edge)
    assert _request(edge.edge, get=der).status is ocsp.OCSPCertStatus.GOOD
    samples: list[tuple[float, ocsp.OCSPCertStatus]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            status = _request(edge.edge, get=der).status
            samples.append((time.monotonic(), status))
            time.sleep(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        out = subprocess.run(
            [
                str(Path(sys.executable).with_name("qtsp")),
                "--home",
                str(edge.home.path),
                "ca",
                "revoke",
                format(cert.serial_number, "x"),
                "--reason",
                "keyCompromise",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **edge.env},
            check=False,
        )
        assert out.returncode == 0, out.stderr
        committed = time.monotonic()  # the CLI has exited, so its transaction has committed
        time.sleep(3.0)
    finally:
        stop.set()
        poller.join(15)
    after = [(t - committed, s) for t, s in samples if t > committed]
    assert after and len(after) > 50, "the poller stalled"
    assert any(s is ocsp.OCSPCertStatus.GOOD for t, s in samples if t <= committed), "edge never warm"
    good_after = [t for t, s in after if s is not ocsp.OCSPCertStatus.REVOKED]
    last_good = max(good_after, default=0.0)
    assert last_good < 2.0, f"the edge answered good {last_good:.2f} s after the revocation was committed"
    assert all(s is ocsp.OCSPCertStatus.REVOKED for t, s in after if t >= 2.0)
    print(f"revocation visible through the edge after {last_good:.2f} s")
