"""The WSGI application factory: the status services (OCSP, CRLs, CA certificates) and the RA API.

Development: ``qtsp serve`` (Flask's server plus the scheduler).  Production::

    QTSP_HOME=/srv/qtsp gunicorn --workers 4 --bind 127.0.0.1:8080 'qtsp.app:create_app()'

with ``[status] scheduler = false`` on the web instances and one ``qtsp worker`` (or keep the
scheduler on everywhere: database leases let only one instance run each job at a time).

Each gunicorn worker opens its own database pool and key backend lazily, on its first request
and never before the fork (FIELD-NOTES: never fork after the PKCS#11 library is initialised).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from apiflask import APIFlask
from flask import Flask

from ca.crl_ocsp.crl_http import crl_blueprint
from ca.crl_ocsp.ocsp_http import OCSPHTTP, OCSPFastPath, ocsp_blueprint
from qtsp.config import Config, load_config
from qtsp.observability import OCSP_ANSWERS, observability_blueprint
from qtsp.wiring import Runtime, open_runtime, ra_service
from ra.api import init_app as init_ra_api
from ra.service import RAService

__all__ = ["ProcessRuntime", "create_app"]


@dataclass
class ProcessRuntime:
    """One :class:`Runtime` per process, opened on first use (after any fork)."""

    config: Config
    _runtime: Runtime | None = None
    _pid: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ra: RAService | None = None
    _ra_pid: int = 0

    def get(self) -> Runtime:
        rt = self._runtime
        if rt is not None and self._pid == os.getpid():
            return rt
        with self._lock:
            if self._runtime is None or self._pid != os.getpid():
                rt = open_runtime(self.config)
                from qtsp.observability import record_issuance

                rt.issuance_observer = record_issuance
                self._runtime = rt
                self._pid = os.getpid()
            return self._runtime

    def ra_service(self) -> RAService:
        """This process's RA service (on the same runtime)."""
        rt = self.get()
        service = self._ra
        if service is None or self._ra_pid != os.getpid():
            service = self._ra = ra_service(rt)
            self._ra_pid = os.getpid()
        return service

    def close(self) -> None:
        with self._lock:
            if self._runtime is not None and self._pid == os.getpid():
                self._runtime.close()
            self._runtime = None


def create_app(home: str | None = None, *, config: Config | None = None) -> Flask:
    """Build the application for ``home`` (default: ``QTSP_HOME`` or ``./var``)."""
    config = config or load_config(home)
    # APIFlask generates the RA API's OpenAPI document (/api/openapi.json) from its schemas.
    app = APIFlask(
        "qtsp",
        title="QTSP engine",
        version="0.1.0",
        spec_path="/api/openapi.json",
        docs_path="/api/docs",
    )
    app.config["QTSP_CONFIG"] = config
    runtimes = ProcessRuntime(config)
    app.extensions["qtsp_runtime"] = runtimes
    app.register_blueprint(observability_blueprint(runtimes.get))
    app.register_blueprint(
        crl_blueprint(lambda: runtimes.get().db, after_change_seconds=config.status.crl_after_change_seconds)
    )
    ocsp_http = OCSPHTTP(
        lambda: runtimes.get().ocsp_responder(),
        max_age_seconds=config.status.ocsp_max_age_seconds,
        on_answer=lambda outcome, status: OCSP_ANSWERS.labels(outcome, status).inc(),
    )
    app.register_blueprint(ocsp_blueprint(ocsp_http))
    # The same handler in front of Flask for the hottest path (identical answers and headers).
    app.wsgi_app = OCSPFastPath(app.wsgi_app, ocsp_http)  # type: ignore[method-assign]
    init_ra_api(app, runtimes.ra_service)
    if config.serve.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = config.serve.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    return app
