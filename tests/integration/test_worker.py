"""The scheduler (issue 3 point 5): ``qtsp worker --once`` runs every job under its lease, and the
APScheduler set-up used by ``qtsp serve`` runs each job at start."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from ca.profiles.subject import SubjectInput
from ca.store import lease
from ca.store.models import CertificateRecord
from qtsp.cli import cli
from qtsp.demo import DEMO_SUBJECTS, fresh_csr
from qtsp.scheduler import build_scheduler, status_jobs
from qtsp.wiring import os_actor
from tests.conftest import Home
from tests.integration.helpers import open_runtime


def test_worker_once_runs_every_job(soft_home: Home) -> None:
    with open_runtime(soft_home.path) as rt:
        issued = rt.issuance(pkilint=False).issue(
            profile_name="qes-natural",
            csr=fresh_csr(),
            subject=SubjectInput.from_json_obj(DEMO_SUBJECTS["qes-natural"]),
            actor=os_actor(),
            on_hold=True,
            activate_after=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
        )
        names = [j.name for j in status_jobs(rt)]
    result = CliRunner().invoke(cli, ["--home", str(soft_home.path), "worker", "--once"])
    assert result.exit_code == 0, result.output
    for name in names:
        assert f"{name}: ran" in result.output
    assert "hold-release: ran 1" in result.output
    with open_runtime(soft_home.path) as rt:
        with rt.db.read() as s:
            status = s.scalars(
                select(CertificateRecord.status).where(CertificateRecord.serial == issued.serial_hex)
            ).one()
            runs = {x.name: x.runs for x in lease.leases(s)}
        assert status == "good"
        assert set(runs) == set(names) and all(n == 1 for n in runs.values())
        assert rt.audit().verify().checkpoints_verified == 1


def test_background_scheduler_runs_the_jobs(soft_home: Home, tmp_path: Path) -> None:
    with open_runtime(soft_home.path) as rt:
        scheduler = build_scheduler(rt)
        scheduler.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with rt.db.read() as s:
                    done = {x.name for x in lease.leases(s) if x.last_finished_at is not None}
                if done >= {j.name for j in status_jobs(rt)}:
                    break
                time.sleep(0.1)
        finally:
            scheduler.shutdown(wait=True)
        assert done >= {j.name for j in status_jobs(rt)}
