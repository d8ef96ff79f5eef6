"""The OCSP HTTP binding (RFC 6960 Appendix A; RFC 5019 / RFC 9919 §5–6) as a Flask blueprint.

* ``POST /ocsp`` with the DER request as body.  The Content-Type should be
  ``application/ocsp-request``; other types are parsed all the same (the body decides, and a
  wrong header is no reason to leave a relying party without status).  At most
  ``max_request_bytes + 1`` bytes are read before the size is judged.
* ``GET /ocsp/<url-encoded base64 of the DER request>``: the standard and the URL-safe alphabet
  are accepted, missing padding is tolerated, and a ``+`` that a proxy turned into a space is
  restored.  The route does not merge slashes (``//`` occurs in base64).

Every answer is HTTP 200 with ``application/ocsp-response`` and a valid OCSPResponse, errors
included (malformedRequest, unauthorized, tryLater, internalError).  Answers without a nonce
carry the RFC 5019 §6.2 cache headers (Last-Modified = thisUpdate, Expires = nextUpdate, ETag,
``Cache-Control: max-age=<min(nextUpdate - now, max_age)>, public, no-transform,
must-revalidate``); answers that echo a nonce and error answers are marked not cacheable.

The responder is obtained from ``get_responder`` on the first request of each process, never at
import or blueprint creation: gunicorn forks its workers before they may initialise the PKCS#11
library (FIELD-NOTES, SoftHSM2 gotcha 2).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import math
import threading
from collections.abc import Callable, Iterable
from email.utils import format_datetime
from typing import Any, Final

from flask import Blueprint, Response, request

from ca.crl_ocsp.ocsp import INTERNAL_ERROR, MALFORMED, TRY_LATER, OCSPAnswer, OCSPResponder
from ca.store.db import StoreError
from hsm import HSMError

__all__ = ["OCSPHTTP", "OCSP_REQUEST_TYPE", "OCSP_RESPONSE_TYPE", "OCSPFastPath", "ocsp_blueprint"]

log = logging.getLogger(__name__)

OCSP_REQUEST_TYPE: Final = "application/ocsp-request"
OCSP_RESPONSE_TYPE: Final = "application/ocsp-response"
_NOT_CACHEABLE: Final = "no-cache, no-store"
_B64_TO_STANDARD: Final = bytes.maketrans(b"-_ ", b"+/+")


def _http_date(value: dt.datetime) -> str:
    return format_datetime(value.astimezone(dt.UTC), usegmt=True)


def _decode_get(encoded: str, max_request_bytes: int) -> bytes | None:
    """The DER request of a GET path segment, or None when it cannot be one (too long, not base64)."""
    if len(encoded) > 4 * math.ceil(max_request_bytes / 3) + 8:
        return None
    try:
        data = encoded.strip().encode("ascii").translate(_B64_TO_STANDARD).rstrip(b"=")
        data += b"=" * (-len(data) % 4)
        return base64.b64decode(data, validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None


Headers = list[tuple[str, str]]


class OCSPHTTP:
    """The HTTP binding without a framework: ``post``/``get`` return (body, headers) of a 200
    answer.  Used by the Flask blueprint and by :class:`OCSPFastPath`.

    :param max_age_seconds: upper bound of ``Cache-Control: max-age`` (``[status] ocsp_max_age_seconds``).
    :param on_answer: called with each answer's outcome and certificate-status labels (metrics).
    """

    def __init__(
        self,
        get_responder: Callable[[], OCSPResponder],
        *,
        clock: Callable[[], dt.datetime] | None = None,
        max_age_seconds: int = 60,
        on_answer: Callable[[str, str], None] | None = None,
    ) -> None:
        self._get_responder = get_responder
        self._clock = clock
        self._max_age = max_age_seconds
        self._on_answer = on_answer
        self._lock = threading.Lock()
        self._responder: OCSPResponder | None = None
        # Header values of cacheable answers, formatted once per answer (the hot path of pre-signed
        # answers is otherwise dominated by date formatting).
        self._formatted: dict[tuple[dt.datetime, dt.datetime, str | None], tuple[str, str]] = {}

    def responder(self) -> OCSPResponder:
        r = self._responder
        if r is not None:
            return r
        with self._lock:
            if self._responder is None:
                self._responder = self._get_responder()
            return self._responder

    def _now(self) -> dt.datetime:
        return self._clock() if self._clock is not None else dt.datetime.now(dt.UTC)

    def reply(self, answer: OCSPAnswer) -> tuple[bytes, Headers]:
        if self._on_answer is not None:
            self._on_answer(answer.outcome, answer.cert_status)
        if answer.this_update is None or answer.next_update is None or answer.nonce:
            return answer.der, [("Content-Type", OCSP_RESPONSE_TYPE), ("Cache-Control", _NOT_CACHEABLE)]
        key = (answer.this_update, answer.next_update, answer.etag)
        dates = self._formatted.get(key)
        if dates is None:
            if len(self._formatted) > 50_000:
                self._formatted.clear()
            dates = self._formatted[key] = (_http_date(answer.this_update), _http_date(answer.next_update))
        remaining = int((answer.next_update - self._now()).total_seconds())
        max_age = max(0, min(remaining, self._max_age))
        headers = [
            ("Content-Type", OCSP_RESPONSE_TYPE),
            ("Last-Modified", dates[0]),
            ("Expires", dates[1]),
            ("Cache-Control", f"max-age={max_age}, public, no-transform, must-revalidate"),
        ]
        if answer.etag:
            headers.append(("ETag", answer.etag))
        return answer.der, headers

    def _fixed(self, der: bytes, outcome: str) -> tuple[bytes, Headers]:
        return self.reply(OCSPAnswer(der, outcome))

    def answer(self, der: bytes | None) -> tuple[bytes, Headers]:
        try:
            r = self.responder()
        except (StoreError, HSMError) as exc:
            log.warning("OCSP tryLater: responder cannot start (%s)", exc)
            return self._fixed(TRY_LATER, "try_later")
        except Exception:
            log.exception("OCSP internalError: responder cannot start")
            return self._fixed(INTERNAL_ERROR, "internal_error")
        if der is None:
            return self._fixed(MALFORMED, "malformed")
        return self.reply(r.respond(der))

    def _limit(self) -> int:
        try:
            return self.responder().max_request_bytes
        except Exception:
            return 4096

    def post(self, content_length: int | None, read: Callable[[int], bytes]) -> tuple[bytes, Headers]:
        """A POST whose body ``read(n)`` returns (at most ``n`` bytes per call)."""
        try:
            maximum = self._limit()
            if content_length is not None:
                if content_length > maximum:  # refused before reading or parsing
                    return self._fixed(MALFORMED, "malformed")
                return self.answer(read(content_length))
            # No Content-Length (chunked): read at most maximum + 1 bytes before deciding.
            chunks: list[bytes] = []
            size = 0
            while size <= maximum:
                chunk = read(maximum + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            if size > maximum:
                return self._fixed(MALFORMED, "malformed")
            return self.answer(b"".join(chunks))
        except Exception:
            log.exception("OCSP internalError in POST")
            return self._fixed(INTERNAL_ERROR, "internal_error")

    def get(self, encoded: str) -> tuple[bytes, Headers]:
        try:
            return self.answer(_decode_get(encoded, self._limit()))
        except Exception:
            log.exception("OCSP internalError in GET")
            return self._fixed(INTERNAL_ERROR, "internal_error")


def ocsp_blueprint(
    get_responder: Callable[[], OCSPResponder] | OCSPHTTP,
    *,
    name: str = "ocsp",
    clock: Callable[[], dt.datetime] | None = None,
    max_age_seconds: int = 60,
    on_answer: Callable[[str, str], None] | None = None,
) -> Blueprint:
    """The OCSP endpoints; ``get_responder`` is called lazily, once per process.

    :param max_age_seconds: upper bound of ``Cache-Control: max-age`` (``[status] ocsp_max_age_seconds``).
    :param on_answer: called with each answer's outcome and certificate-status labels (metrics).
    """
    http = (
        get_responder
        if isinstance(get_responder, OCSPHTTP)
        else OCSPHTTP(get_responder, clock=clock, max_age_seconds=max_age_seconds, on_answer=on_answer)
    )
    bp = Blueprint(name, __name__)

    def respond(result: tuple[bytes, Headers]) -> Response:
        return Response(result[0], status=200, headers=result[1])

    @bp.post("/ocsp")
    def ocsp_post() -> Response:
        return respond(http.post(request.content_length, request.stream.read))

    def ocsp_get(encoded: str) -> Response:
        return respond(http.get(encoded))

    # Base64 may contain "//": never merge slashes (Werkzeug would redirect).
    bp.add_url_rule("/ocsp/<path:encoded>", view_func=ocsp_get, methods=["GET"], merge_slashes=False)
    # An empty GET request is answered as malformed too, not with 404.
    bp.add_url_rule("/ocsp/", view_func=ocsp_get, methods=["GET"], defaults={"encoded": ""}, endpoint="ocsp_get_empty")
    bp.add_url_rule("/ocsp", view_func=ocsp_get, methods=["GET"], defaults={"encoded": ""}, endpoint="ocsp_get_bare")
    return bp


class OCSPFastPath:
    """WSGI middleware answering ``POST /ocsp`` and ``GET /ocsp/...`` before the framework's
    request handling (the same :class:`OCSPHTTP` as the blueprint; everything else passes to
    ``app``).  It saves Flask's per-request context work on the hottest path of the service."""

    def __init__(self, app: Callable[..., Iterable[bytes]], http: OCSPHTTP) -> None:
        self.app = app
        self.http = http

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if method == "POST" and path == "/ocsp":
            raw_length = environ.get("CONTENT_LENGTH")
            try:
                length = int(raw_length) if raw_length else None
            except ValueError:
                length = None
            if length is not None and length < 0:
                length = None
            stream = environ["wsgi.input"]
            body, headers = self.http.post(length, stream.read)
        elif method == "GET" and (path == "/ocsp" or path.startswith("/ocsp/")):
            body, headers = self.http.get(path[6:])
        else:
            return self.app(environ, start_response)
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [body]
