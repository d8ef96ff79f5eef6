"""The small Flask blueprint that serves stored CRLs and CA certificates (DESIGN.md step 8).

* ``GET /crl/<ca>.crl``: the CA's newest stored CRL, the URL of the certificates' CRL distribution
  point (EN 319 412-2 GEN-4.3.11-3: http).  ``application/pkix-crl`` (RFC 5280 §4.2.1.13 /
  RFC 2585 §4.2), ``ETag`` = its SHA-256, ``Last-Modified`` = thisUpdate, ``Cache-Control: public,
  max-age=N`` with N bounded by nextUpdate and by ``crl_after_change_seconds``, so that relying
  parties fetch again soon after a revocation (the publisher publishes within that time).
  Conditional GETs (``If-None-Match``, else ``If-Modified-Since``: RFC 9110 §13.2.2) get 304.
* ``GET /ca/<ca>.crt``: the CA certificate, DER, ``application/pkix-cert`` (RFC 2585 §4.1), the URL
  of the AIA caIssuers entry.

Only bytes that are already stored are served: nothing is signed on a web request.  An unknown CA
is 404; a database that cannot be reached is 503 with ``Retry-After``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Final

from flask import Blueprint, Response, request
from werkzeug.http import http_date

from ca.issuance.service import Clock, system_clock
from ca.store import crl_repo
from ca.store.db import Database, StoreError

__all__ = ["crl_blueprint"]

_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}\Z")


def crl_blueprint(
    db: Database | Callable[[], Database],
    *,
    after_change_seconds: int = 60,
    ca_max_age_seconds: int = 86400,
    retry_after_seconds: int = 30,
    clock: Clock = system_clock,
    name: str = "crl",
) -> Blueprint:
    """Build the blueprint.

    :param db: the database, or a factory returning it (called per request, so the app factory can
        open it lazily).
    :param after_change_seconds: ``status.crl_after_change_seconds``: upper bound of ``max-age``.
    """
    bp = Blueprint(name, __name__)

    def database() -> Database:
        return db if isinstance(db, Database) else db()

    def unavailable() -> Response:
        resp = Response("status database unavailable\n", status=503, mimetype="text/plain")
        resp.headers["Retry-After"] = str(retry_after_seconds)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def not_found(what: str) -> Response:
        return Response(f"{what}\n", status=404, mimetype="text/plain")

    def not_modified(etag: str, modified: dt.datetime) -> bool:
        # RFC 9110 §13.2.2: If-None-Match takes precedence; If-Modified-Since only without it.
        if request.if_none_match:
            return request.if_none_match.contains_weak(etag)
        since = request.if_modified_since
        return since is not None and modified.replace(microsecond=0) <= since

    def finish(body: bytes, mimetype: str, etag: str, modified: dt.datetime, max_age: int) -> Response:
        status = 304 if not_modified(etag, modified) else 200
        resp = Response(b"" if status == 304 else body, status=status, mimetype=mimetype)
        resp.set_etag(etag)
        resp.headers["Last-Modified"] = http_date(modified)
        resp.headers["Cache-Control"] = f"public, max-age={max_age}, no-transform"
        return resp

    @bp.get("/crl/<name>.crl")
    def get_crl(name: str) -> Response:
        if not _NAME.match(name):
            return not_found("no such CA")
        try:
            store = database()
            with store.read() as s:
                if crl_repo.ca_certificate(s, name) is None:
                    return not_found(f"no CA named {name}")
                meta = crl_repo.crl_meta(s, name)
                if meta is None:
                    return unavailable()  # the first CRL is published by `qtsp init`; not yet here
                etag_hit = request.if_none_match.contains_weak(meta.sha256) if request.if_none_match else False
                body = b"" if etag_hit else crl_repo.crl_der(s, meta.id)
        except StoreError:
            return unavailable()
        now = clock()
        until_next = int((meta.next_update - now).total_seconds())
        max_age = max(0, min(until_next, after_change_seconds))
        return finish(body, "application/pkix-crl", meta.sha256, meta.this_update, max_age)

    @bp.get("/ca/<name>.crt")
    def get_ca(name: str) -> Response:
        if not _NAME.match(name):
            return not_found("no such CA")
        try:
            with database().read() as s:
                cert = crl_repo.ca_certificate(s, name)
        except StoreError:
            return unavailable()
        if cert is None:
            return not_found(f"no CA named {name}")
        return finish(cert.der, "application/pkix-cert", cert.fingerprint_sha256, cert.created_at, ca_max_age_seconds)

    return bp
