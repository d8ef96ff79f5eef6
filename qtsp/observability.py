"""Operations endpoints and logs (issue 5 point 5): Prometheus metrics, liveness and readiness,
structured JSON logs without secrets.

Metrics come from two places:

* **per-process counters** (OCSP answers by outcome, issuance count and latency, lint refusals,
  key-backend errors).  Under gunicorn set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory so
  every worker's counters are summed at scrape time (prometheus-client's multiprocess mode);
* **database figures read at scrape time** (CRL age and number per CA, revocation-to-publication
  delay, job leases, certificates by status, audit chain length), identical whichever instance
  is scraped.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Final

import structlog
from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ca.store.db import StoreError
from ca.store.metrics_repo import ping, status_figures
from hsm import HSMError
from qtsp.wiring import Runtime
from ra.store.repository import ra_figures

__all__ = [
    "HSM_ERRORS",
    "ISSUANCE",
    "ISSUANCE_SECONDS",
    "LINT_REFUSALS",
    "OCSP_ANSWERS",
    "configure_logging",
    "observability_blueprint",
    "record_issuance",
]

OCSP_ANSWERS: Final = Counter(
    "qtsp_ocsp_responses",
    "OCSP answers by outcome (presigned, live, malformed, unauthorized, try_later, internal_error) and "
    "certificate status (good, revoked, on-hold, not-issued, mixed; - for error answers)",
    ["outcome", "status"],
)
ISSUANCE: Final = Counter("qtsp_issuance", "Issuance attempts by profile and result", ["profile", "result"])
ISSUANCE_SECONDS: Final = Histogram(
    "qtsp_issuance_seconds",
    "Whole-pipeline issuance latency",
    ["profile"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LINT_REFUSALS: Final = Counter("qtsp_lint_refusals", "Certificates refused by the lint gate", ["profile"])
HSM_ERRORS: Final = Counter("qtsp_hsm_errors", "Key backend errors seen by a service", ["operation"])


def record_issuance(profile: str, result: str, seconds: float) -> None:
    """The issuance service's outcome hook (``issued``, ``refused``, ``failed``, ``hsm-error``)."""
    ISSUANCE.labels(profile, result).inc()
    if result == "issued":
        ISSUANCE_SECONDS.labels(profile).observe(seconds)
    elif result == "refused":
        LINT_REFUSALS.labels(profile).inc()
    elif result == "hsm-error":
        HSM_ERRORS.labels("issuance").inc()


class DatabaseFigures(Collector):
    """Gauges read from the database at each scrape."""

    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        try:
            rt = self._runtime()
            with rt.db.read() as s:
                f = status_figures(s)
                ra = ra_figures(s)
        except (StoreError, HSMError, OSError):
            up = GaugeMetricFamily("qtsp_database_up", "1 when the database answered this scrape")
            up.add_metric([], 0)
            yield up
            return
        now = dt.datetime.now(dt.UTC)
        up = GaugeMetricFamily("qtsp_database_up", "1 when the database answered this scrape")
        up.add_metric([], 1)
        yield up
        age = GaugeMetricFamily("qtsp_crl_age_seconds", "Seconds since the newest CRL's thisUpdate", labels=["ca"])
        number = GaugeMetricFamily("qtsp_crl_number", "Newest CRL number", labels=["ca"])
        for ca, this_update in f.crl_this_update.items():
            age.add_metric([ca], (now - this_update).total_seconds())
            number.add_metric([ca], f.crl_number[ca])
        yield age
        yield number
        delay = GaugeMetricFamily(
            "qtsp_revocation_publication_delay_seconds",
            "Seconds a status change has waited for CRL publication (0 when none waits); EN 319 411-1 "
            "REV-6.2.4-03A allows 24 h",
            labels=["ca"],
        )
        for ca in f.crl_this_update.keys() | f.crl_pending_since.keys():
            since = f.crl_pending_since.get(ca)
            delay.add_metric([ca], (now - since).total_seconds() if since else 0.0)
        yield delay
        certs = GaugeMetricFamily(
            "qtsp_certificates", "Stored certificates by issuer and status", labels=["ca", "status"]
        )
        for (ca, status), n in f.certificates.items():
            certs.add_metric([ca, status], n)
        yield certs
        started = GaugeMetricFamily("qtsp_job_last_started_timestamp", "Last start of a leased job", labels=["job"])
        finished = GaugeMetricFamily("qtsp_job_last_finished_timestamp", "Last end of a leased job", labels=["job"])
        failed = GaugeMetricFamily("qtsp_job_last_run_failed", "1 when the job's last run failed", labels=["job"])
        runs = GaugeMetricFamily("qtsp_job_runs", "Runs of a leased job (all instances)", labels=["job"])
        for job, (s_at, f_at, err, n) in f.leases.items():
            if s_at:
                started.add_metric([job], s_at.timestamp())
            if f_at:
                finished.add_metric([job], f_at.timestamp())
            failed.add_metric([job], 1 if err else 0)
            runs.add_metric([job], n)
        yield started
        yield finished
        yield failed
        yield runs
        audit = GaugeMetricFamily("qtsp_audit_entries", "Entries in the hash-chained audit log")
        audit.add_metric([], f.audit_entries)
        yield audit
        pending = GaugeMetricFamily(
            "qtsp_ra_revocations_pending", "Accepted revocation requests not yet carried out by the CA"
        )
        pending.add_metric([], ra.revocations_pending)
        yield pending
        oldest = GaugeMetricFamily(
            "qtsp_ra_revocations_pending_oldest_seconds",
            "Age of the oldest accepted revocation request not yet carried out (0 when none); EN 319 411-1 "
            "REV-6.2.4-03A allows 24 h from receipt to publication",
        )
        received = ra.oldest_pending_received_at
        oldest.add_metric([], (now - received).total_seconds() if received else 0.0)
        yield oldest
        outbox = GaugeMetricFamily(
            "qtsp_ra_outbox_messages", "SMS and letters in the outbox by state", labels=["state"]
        )
        for state in ("pending", "sending", "sent", "failed", "cancelled"):
            outbox.add_metric([state], ra.outbox.get(state, 0))
        yield outbox


def _registry(runtime: Callable[[], Runtime]) -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in (OCSP_ANSWERS, ISSUANCE, ISSUANCE_SECONDS, LINT_REFUSALS, HSM_ERRORS):
            registry.register(collector)
    registry.register(DatabaseFigures(runtime))
    return registry


def observability_blueprint(runtime: Callable[[], Runtime]) -> Blueprint:
    """``/metrics`` (Prometheus text format), ``/healthz`` (process alive), ``/readyz`` (database
    answers and the key backend reports its token: 503 with the failing part otherwise)."""
    bp = Blueprint("observability", __name__)
    registry = _registry(runtime)

    @bp.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    @bp.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @bp.get("/readyz")
    def readyz() -> tuple[Response, int]:
        checks: dict[str, str] = {}
        try:
            rt = runtime()
        except Exception as exc:
            return jsonify(status="unavailable", checks={"runtime": type(exc).__name__}), 503
        try:
            with rt.db.read() as s:
                ping(s)
            checks["database"] = "ok"
        except (StoreError, OSError) as exc:
            checks["database"] = type(exc).__name__
        try:
            rt.backend.info()
            checks["key_backend"] = "ok"
        except (HSMError, OSError) as exc:
            checks["key_backend"] = type(exc).__name__
        ok = all(v == "ok" for v in checks.values())
        return jsonify(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503

    return bp


# ----------------------------------------------------------------------------------------------
# Logs

_SECRET_KEY: Final = re.compile(r"pin|pass(word|phrase)?|secret|token_value|otp|totp|authorization|cookie", re.I)


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if _SECRET_KEY.search(key):
            event[key] = "[redacted]"
    return event


def configure_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    """One JSON object per line on stderr (timestamp, level, logger, event, fields); values under
    secret-looking keys are redacted.  Personal data never goes into log calls: identifiers only."""
    renderer: Any = structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
