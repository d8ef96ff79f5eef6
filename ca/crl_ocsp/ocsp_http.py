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
from collections.abc import Callable
from email.utils import format_datetime
from typing import Final

from flask import Blueprint, Response, request

from ca.crl_ocsp.ocsp import INTERNAL_ERROR, MALFORMED, TRY_LATER, OCSPAnswer, OCSPResponder
from ca.store.db import StoreError
from hsm import HSMError

__all__ = ["OCSP_REQUEST_TYPE", "OCSP_RESPONSE_TYPE", "ocsp_blueprint"]

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


def ocsp_blueprint(
    get_responder: Callable[[], OCSPResponder],
    *,
    name: str = "ocsp",
    clock: Callable[[], dt.datetime] | None = None,
    max_age_seconds: int = 60,
    on_answer: Callable[[str], None] | None = None,
) -> Blueprint:
    """The OCSP endpoints; ``get_responder`` is called lazily, once per process.

    :param max_age_seconds: upper bound of ``Cache-Control: max-age`` (``[status] ocsp_max_age_seconds``).
    :param on_answer: called with each answer's outcome label (metrics).
    """
    bp = Blueprint(name, __name__)
    lock = threading.Lock()
    holder: list[OCSPResponder] = []

    def responder() -> OCSPResponder:
        if holder:
            return holder[0]
        with lock:
            if not holder:
                holder.append(get_responder())
            return holder[0]

    def now() -> dt.datetime:
        return clock() if clock is not None else dt.datetime.now(dt.UTC)

    # Header values of cacheable answers, formatted once per answer (the hot path of pre-signed
    # answers is otherwise dominated by date formatting and header validation).
    formatted: dict[tuple[dt.datetime, dt.datetime, str | None], tuple[str, str]] = {}

    def reply(answer: OCSPAnswer) -> Response:
        if on_answer is not None:
            on_answer(answer.outcome)
        if answer.this_update is None or answer.next_update is None or answer.nonce:
            return Response(
                answer.der, status=200, mimetype=OCSP_RESPONSE_TYPE, headers=[("Cache-Control", _NOT_CACHEABLE)]
            )
        key = (answer.this_update, answer.next_update, answer.etag)
        dates = formatted.get(key)
        if dates is None:
            if len(formatted) > 50_000:
                formatted.clear()
            dates = formatted[key] = (_http_date(answer.this_update), _http_date(answer.next_update))
        remaining = int((answer.next_update - now()).total_seconds())
        max_age = max(0, min(remaining, max_age_seconds))
        headers = [
            ("Last-Modified", dates[0]),
            ("Expires", dates[1]),
            ("Cache-Control", f"max-age={max_age}, public, no-transform, must-revalidate"),
        ]
        if answer.etag:
            headers.append(("ETag", answer.etag))
        return Response(answer.der, status=200, mimetype=OCSP_RESPONSE_TYPE, headers=headers)

    def fixed(der: bytes, outcome: str) -> Response:
        return reply(OCSPAnswer(der, outcome))

    def answer(der: bytes | None) -> Response:
        try:
            r = responder()
        except (StoreError, HSMError) as exc:
            log.warning("OCSP tryLater: responder cannot start (%s)", exc)
            return fixed(TRY_LATER, "try_later")
        except Exception:
            log.exception("OCSP internalError: responder cannot start")
            return fixed(INTERNAL_ERROR, "internal_error")
        if der is None:
            return fixed(MALFORMED, "malformed")
        return reply(r.respond(der))

    def limit() -> int:
        try:
            return responder().max_request_bytes
        except Exception:
            return 4096

    @bp.post("/ocsp")
    def ocsp_post() -> Response:
        try:
            maximum = limit()
            length = request.content_length
            if length is not None:
                if length > maximum:  # refused before reading or parsing
                    return fixed(MALFORMED, "malformed")
                return answer(request.stream.read(length))
            # No Content-Length (chunked): read at most maximum + 1 bytes before deciding.
            chunks: list[bytes] = []
            size = 0
            stream = request.stream
            while size <= maximum:
                chunk = stream.read(maximum + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            if size > maximum:
                return fixed(MALFORMED, "malformed")
            return answer(b"".join(chunks))
        except Exception:
            log.exception("OCSP internalError in POST")
            return fixed(INTERNAL_ERROR, "internal_error")

    def ocsp_get(encoded: str) -> Response:
        try:
            return answer(_decode_get(encoded, limit()))
        except Exception:
            log.exception("OCSP internalError in GET")
            return fixed(INTERNAL_ERROR, "internal_error")

    # Base64 may contain "//": never merge slashes (Werkzeug would redirect).
    bp.add_url_rule("/ocsp/<path:encoded>", view_func=ocsp_get, methods=["GET"], merge_slashes=False)
    # An empty GET request is answered as malformed too, not with 404.
    bp.add_url_rule("/ocsp/", view_func=ocsp_get, methods=["GET"], defaults={"encoded": ""}, endpoint="ocsp_get_empty")
    bp.add_url_rule("/ocsp", view_func=ocsp_get, methods=["GET"], defaults={"encoded": ""}, endpoint="ocsp_get_bare")
    return bp
