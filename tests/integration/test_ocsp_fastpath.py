"""The production app answers /ocsp through a WSGI fast path in front of Flask; it must give the
same bytes and headers as the blueprint, and leave every other route to Flask."""

from __future__ import annotations

import base64

from ca.crl_ocsp.ocsp import MALFORMED
from qtsp.app import create_app
from qtsp.config import load_config
from tests.conftest import Home
from tests.integration.helpers import open_runtime
from tests.integration.ocsp_helpers import app_for, ca_certificates, issue, request_der

HEADERS = ("Content-Type", "Cache-Control", "ETag", "Last-Modified", "Expires")


def test_fast_path_matches_the_blueprint(soft_home: Home) -> None:
    with open_runtime(soft_home.path) as rt:
        cas = ca_certificates(rt)
        cert = issue(rt)
        rt.ocsp_presigner().refresh_due()
        plain = request_der(cas[cert.issuer], cert.certificate.serial_number)
        blueprint = app_for(rt.ocsp_responder()).test_client()
        app = create_app(config=load_config(soft_home.path))
        fast = app.test_client()
        encoded = base64.b64encode(plain).decode()
        for method, path, body in (
            ("POST", "/ocsp", plain),
            ("GET", f"/ocsp/{encoded}", None),
            ("GET", "/ocsp/", None),
            ("POST", "/ocsp", b"\x30\x03garbage"),
            ("POST", "/ocsp", b"\x30" * 5000),  # oversized: refused before parsing
        ):
            a = blueprint.open(path, method=method, data=body, content_type="application/ocsp-request")
            b = fast.open(path, method=method, data=body, content_type="application/ocsp-request")
            assert a.status_code == b.status_code == 200
            assert a.data == b.data, (method, path)
            for h in HEADERS:
                if h != "Cache-Control":  # max-age counts down by the second
                    assert a.headers.get(h) == b.headers.get(h), (method, path, h)
            assert b.headers["Content-Length"] == str(len(b.data))
        assert fast.post("/ocsp", data=b"\x30" * 5000).data == MALFORMED
        assert fast.get("/healthz").json == {"status": "ok"}  # everything else is Flask's
        assert fast.get("/crl/qes.crl").status_code == 200
        app.extensions["qtsp_runtime"].close()
