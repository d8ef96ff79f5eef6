"""``qtsp serve`` (development server with the scheduler) answers at the configured base URL's
paths: CA certificates, CRLs, OCSP, health; its scheduler runs the leased jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from tests.conftest import Home, init_home
from tests.integration.helpers import free_port


def test_qtsp_serve_answers_and_runs_the_scheduler(tmp_path: Path) -> None:
    port = free_port()
    home = init_home(tmp_path / "home", base_url=f"http://127.0.0.1:{port}")
    exe = str(Path(sys.executable).with_name("qtsp"))
    proc = subprocess.Popen(
        [exe, "--home", str(home.path), "serve", "--port", str(port)],
        env={**os.environ, **home.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, "qtsp serve did not come up"
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ca/root.crt", timeout=5) as r:
            root = x509.load_der_x509_certificate(r.read())
        assert "Root CA" in root.subject.rfc4514_string()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/crl/qes.crl", timeout=5) as r:
            assert x509.load_der_x509_crl(r.read()).issuer.rfc4514_string()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ocsp/MAMCAQA=", timeout=5) as r:
            assert ocsp.load_der_ocsp_response(r.read()).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        # The scheduler ran its jobs under leases (the audit checkpoint job among them).
        deadline = time.monotonic() + 20
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                metrics = r.read().decode()
            if 'qtsp_job_runs{job="audit-checkpoint"}' in metrics:
                break
            assert time.monotonic() < deadline, "the scheduler did not run"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_gunicorn_workers_prepare_for_issuing(soft_home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """qtsp.gunicorn_conf's hook opens the worker's runtime, builds pkilint's validators for every
    profile's certificate type and freezes the start-up heap (run here in this process, on the
    application as gunicorn loads it)."""
    import gc
    from types import SimpleNamespace

    from ca.issuance import lint
    from qtsp import gunicorn_conf
    from qtsp.app import create_app

    monkeypatch.setattr(lint, "_CONTAINERS", {})
    app = create_app(str(soft_home.path))
    try:
        gunicorn_conf.post_worker_init(SimpleNamespace(wsgi=app))
        assert gc.get_freeze_count() > 0
        assert set(lint._CONTAINERS) == set(lint.PROFILE_CERTIFICATE_TYPES.values())
        assert app.extensions["qtsp_runtime"]._runtime is not None  # opened by the hook, not by a request
    finally:
        gc.unfreeze()
        app.extensions["qtsp_runtime"].close()
