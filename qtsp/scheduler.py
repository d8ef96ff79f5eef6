"""The status jobs (and the audit checkpoint) on APScheduler, each under a database lease (issue 3 point 5).

``qtsp serve`` runs them in a background thread (``[status] scheduler = true``); ``qtsp worker``
runs them in the foreground for deployments where the web instances run none.  Whatever the
number of instances, the leases (:class:`ca.crl_ocsp.jobs.LeasedRunner`) make each job run in at
most one place at a time.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from ca.crl_ocsp.jobs import JobOutcome, LeasedRunner
from ca.issuance.service import Actor, system_clock
from qtsp.wiring import Runtime

__all__ = ["StatusJob", "build_scheduler", "status_jobs"]

log = logging.getLogger(__name__)

SCHEDULER_ACTOR = Actor(name="system:scheduler", role="system")


@dataclass(frozen=True, slots=True)
class StatusJob:
    name: str
    interval: dt.timedelta
    run: Callable[[], object]


def status_jobs(rt: Runtime) -> list[StatusJob]:
    """The jobs and their intervals, from ``[status]``."""
    st = rt.config.status
    jobs = [
        # A status change reaches the CRL within [status] crl_after_change_seconds (default 60 s).
        StatusJob(
            "crl-publish",
            dt.timedelta(seconds=max(1, min(30, st.crl_after_change_seconds // 2))),
            lambda: len(rt.crl().publish_due(SCHEDULER_ACTOR)),
        ),
        StatusJob(
            "hold-release",
            dt.timedelta(seconds=30),
            lambda: len(rt.revocation().release_due_holds(actor=SCHEDULER_ACTOR)),
        ),
        StatusJob("ocsp-presign", dt.timedelta(seconds=60), lambda: presign_all(rt)),
        StatusJob(
            "responder-renewal",
            dt.timedelta(hours=1),
            lambda: len(
                rt.responder_renewal().renew_due(dt.timedelta(days=st.responder_renew_days), actor=SCHEDULER_ACTOR)
            ),
        ),
        StatusJob("ra-cards", dt.timedelta(seconds=60), lambda: ra_card_jobs(rt)),
        StatusJob("ra-outbox", dt.timedelta(seconds=30), lambda: ra_outbox_job(rt)),
        StatusJob("ra-renewals", dt.timedelta(seconds=60), lambda: ra_renewal_job(rt)),
        StatusJob(
            "audit-checkpoint",
            dt.timedelta(seconds=rt.config.audit.checkpoint_interval_seconds),
            lambda: rt.audit().checkpoint(rt.config.ca, SCHEDULER_ACTOR).seq,
        ),
    ]
    return jobs


def ra_card_jobs(rt: Runtime) -> str:
    """Slots left ``issuing`` by a process that ended mid-issuance are reconciled with the CA;
    accepted revocation requests the CA has not carried out yet are retried;
    cards shipped longer ago than [ra] activation_hours are activated (their holds released in
    the CA); cards past their certificates' expiry are marked expired; identity-document copies
    older than [ra] evidence_retention_days are deleted (digests and audit entries kept)."""
    from qtsp.wiring import ra_service

    service = ra_service(rt)
    reconciled = service.reconcile_issuing()
    revoked, still_failing = service.complete_pending_revocations()
    activated, expired = service.activate_due(), service.expire_due()
    purged = service.purge_expired_copies(dt.timedelta(days=rt.config.ra.evidence_retention_days))
    service.purge_login_failures()
    abandoned = service.purge_unconfirmed_accounts()
    return (
        f"reconciled {len(reconciled.recorded)} recorded, {len(reconciled.reset)} reset; "
        f"revocations carried out {len(revoked)}, still failing {len(still_failing)}; "
        f"activated {len(activated)}, expired {len(expired)}; "
        f"orders whose copy or documents were deleted {len(purged)}, unconfirmed accounts deleted {len(abandoned)}"
    )


def ra_outbox_job(rt: Runtime) -> str:
    """SMS and letters due (new, or due for a retry) go to their gateways (the outbox alone: no
    CA issuers or products are loaded for it)."""
    from qtsp.wiring import outbox_gateways, ra_data_key
    from ra.outbox import Outbox

    result = Outbox(rt.db, ra_data_key(rt.config), system_clock).dispatch(outbox_gateways(rt.config))
    return f"sent {len(result.sent)}, retry {len(result.retried)}, failed {len(result.failed)}"


def ra_renewal_job(rt: Runtime) -> str:
    """Online renewals whose chosen issuance date has come are issued, eligibility re-checked first
    (a closed window or a revoked card: nothing issued, the reason recorded; ra/renewal.py)."""
    from qtsp.wiring import ra_service
    from ra.renewal import RenewalService

    run = RenewalService(ra_service(rt)).issue_due()
    return f"renewals issued {len(run.issued)}, not issued {len(run.not_issued)}, pending {len(run.pending)}"


def presign_all(rt: Runtime, batch: int = 500, max_batches: int = 40) -> int:
    """Re-sign pre-signed OCSP responses that are missing or past half their validity, batch by
    batch (bounded per run, so the lease is released well before it expires)."""
    presigner = rt.ocsp_presigner()
    total = 0
    for _ in range(max_batches):
        done = presigner.refresh_due(batch=batch)
        total += done
        if done < batch:
            break
    return total


def run_once(rt: Runtime, runner: LeasedRunner) -> list[JobOutcome]:
    """Every job once, in order (``qtsp worker --once``; tests)."""
    return [runner.run(job.name, job.run) for job in status_jobs(rt)]


def build_scheduler(rt: Runtime, *, blocking: bool = False, runner: LeasedRunner | None = None) -> BaseScheduler:
    runner = runner or LeasedRunner(rt.db)
    scheduler: BaseScheduler = BlockingScheduler(timezone="UTC") if blocking else BackgroundScheduler(timezone="UTC")
    for job in status_jobs(rt):

        def tick(job: StatusJob = job) -> None:
            outcome = runner.run(job.name, job.run)
            if outcome.state == "failed":
                log.error("job %s failed: %s", job.name, outcome.detail)
            else:
                log.debug("job %s: %s %s", job.name, outcome.state, outcome.detail)

        scheduler.add_job(
            tick,
            "interval",
            seconds=job.interval.total_seconds(),
            id=job.name,
            max_instances=1,
            coalesce=True,
            next_run_time=dt.datetime.now(dt.UTC),
        )
    return scheduler
