"""Two processes issuing at once on one database: every serial settled, one unbroken audit chain."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ca.store.models import AuditEvent, CertificateRecord, SerialReservation
from tests.conftest import init_home
from tests.integration.helpers import assert_audit_chain, open_runtime

PER_PROCESS = 25


def _issue_many(home: str, env: dict[str, str], n: int) -> None:
    os.environ.update(env)
    from ca.profiles.subject import SubjectInput
    from qtsp.demo import DEMO_SUBJECTS, fresh_csr
    from qtsp.wiring import os_actor

    with open_runtime(Path(home)) as rt:
        service = rt.issuance(pkilint=False)  # the gate is not what this test is about
        for i in range(n):
            profile = ("qes-natural", "qseal-legal", "upc-auth")[i % 3]
            service.issue(
                profile_name=profile,
                csr=fresh_csr(),
                subject=SubjectInput.from_json_obj(DEMO_SUBJECTS[profile]),
                actor=os_actor(),
            )


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_two_issuing_processes(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: str
) -> None:
    url = request.getfixturevalue("pg_url") if database == "postgres" else None
    home = init_home(tmp_path / "home", database_url=url)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_issue_many, args=(str(home.path), home.env, PER_PROCESS)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    with open_runtime(home.path) as rt, rt.db.read() as s:
        issued = s.scalar(
            select(func.count()).select_from(CertificateRecord).where(CertificateRecord.journal_id.is_not(None))
        )
        states = dict(s.execute(select(SerialReservation.state, func.count()).group_by(SerialReservation.state)).all())
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert issued == 2 * PER_PROCESS
    assert states == {"issued": 2 * PER_PROCESS}
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert sum(e.action == "certificate.issued" for e in events) == 2 * PER_PROCESS
    assert_audit_chain(events)
