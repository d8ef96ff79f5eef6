"""Baseline WSGI applications for ``qtsp bench ocsp`` (run under gunicorn by the benchmark)."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response

__all__ = ["fixed_bytes_app"]


def fixed_bytes_app() -> Flask:
    """A Flask view returning the bytes of ``$QTSP_BENCH_FIXED_BODY`` for any /ocsp request: the
    ceiling of what a Flask origin serves under the same gunicorn set-up."""
    body = Path(os.environ["QTSP_BENCH_FIXED_BODY"]).read_bytes()
    app = Flask("fixed-bytes")

    @app.route("/ocsp", methods=["GET", "POST"])
    @app.route("/ocsp/<path:_encoded>", methods=["GET"])
    def answer(_encoded: str | None = None) -> Response:
        return Response(body, mimetype="application/ocsp-response")

    return app
