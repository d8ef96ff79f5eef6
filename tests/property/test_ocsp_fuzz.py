"""Bad input to the OCSP endpoint (issue 3 point 8): random bytes and mutated valid requests, through
the Flask test client.  Every answer is HTTP 200 with a parseable OCSPResponse; nothing escapes."""

from __future__ import annotations

import base64
import logging
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.x509 import ocsp
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import init_home
from tests.integration.helpers import open_runtime
from tests.integration.ocsp_helpers import app_for, ca_certificates, issue, multi_request_der, request_der

SEEDS: list[bytes] = []


@pytest.fixture(scope="module", params=["blueprint", "production-app"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    """The blueprint on a bare Flask app, and the production app factory, whose WSGI fast path
    answers /ocsp before Flask (both must behave the same under bad input)."""
    home = init_home(Path(tmp_path_factory.mktemp("ocsp-fuzz")) / "home")
    os.environ.update(home.env)
    with open_runtime(home.path) as rt:
        cas = ca_certificates(rt)
        cert = issue(rt)
        ca = cas[cert.issuer]
        serial = cert.certificate.serial_number
        rt.ocsp_presigner().refresh_due()
        SEEDS[:] = [
            request_der(ca, serial),
            request_der(ca, serial, "sha256", nonce=b"n" * 16),
            multi_request_der([(ca, serial, "sha1"), (ca, 12345, "sha256")], nonce=b"m" * 20),
        ]
        if request.param == "blueprint":
            app = app_for(rt.ocsp_responder())
        else:
            from qtsp.app import create_app
            from qtsp.config import load_config

            app = create_app(config=load_config(home.path))
        app.testing = False  # an escaped exception must show up as a 500, not as a test-client raise
        yield app.test_client()
        if request.param != "blueprint":
            app.extensions["qtsp_runtime"].close()


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        i = rng.randrange(len(b)) if b else 0
        if op == 0 and b:
            b[i] ^= 1 << rng.randrange(8)  # bit flip
        elif op == 1 and b:
            del b[i:]  # truncation
        elif op == 2 and b:
            b[i] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF])  # length edits
        elif op == 3:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif b:
            del b[i : i + rng.randint(1, 8)]
    return bytes(b)


def _check(client: FlaskClient, data: bytes, caplog: pytest.LogCaptureFixture) -> list[ocsp.OCSPResponseStatus]:
    statuses = []
    for r in (
        client.post("/ocsp", data=data, content_type="application/ocsp-request"),
        client.get("/ocsp/" + base64.urlsafe_b64encode(data).decode().rstrip("=")),
    ):
        assert r.status_code == 200
        assert r.mimetype == "application/ocsp-response"
        resp = ocsp.load_der_ocsp_response(r.data)
        assert resp.response_status is not ocsp.OCSPResponseStatus.INTERNAL_ERROR, data.hex()
        statuses.append(resp.response_status)
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR], data.hex()
    return statuses


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600))
def test_random_bytes(client: FlaskClient, data: bytes, caplog: pytest.LogCaptureFixture) -> None:
    _check(client, data, caplog)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), which=st.integers(min_value=0, max_value=2))
def test_mutated_requests(client: FlaskClient, seed: int, which: int, caplog: pytest.LogCaptureFixture) -> None:
    _check(client, _mutate(SEEDS[which], random.Random(seed)), caplog)


def test_fixed_seed_mutations(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(20261121)  # the same 600 cases every run
    seen: set[ocsp.OCSPResponseStatus] = set()
    for _ in range(200):
        for seed in SEEDS:
            seen.update(_check(client, _mutate(seed, rng), caplog))
    # The mutations reach every branch: refused, foreign issuer, and answered (a flipped serial bit).
    assert {
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
        ocsp.OCSPResponseStatus.UNAUTHORIZED,
        ocsp.OCSPResponseStatus.SUCCESSFUL,
    } <= seen
