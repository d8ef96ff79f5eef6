"""Several instances on one PostgreSQL database (issue 5 point 6): two ``qtsp serve`` instances and
a ``qtsp worker``, each running the scheduler, while two client processes issue and revoke at the
same time.  Afterwards: no duplicate serial, CRL numbers unique and increasing, no job ever ran
in two places at once (from the instances' JSON ``job.run`` log lines), one unbroken audit chain,
and every instance answers OCSP with the final status."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from sqlalchemy import func, select

from ca.store.models import CertificateRecord, CRLRecord, SerialReservation, StatusEntry
from tests.conftest import init_home
from tests.integration.helpers import free_port, open_runtime


def _client(home: str, env: dict[str, str], count: int, barrier_path: str) -> None:
    os.environ.update(env)
    from ca.profiles.subject import SubjectInput
    from qtsp.demo import DEMO_SUBJECTS, fresh_csr
    from qtsp.wiring import os_actor

    while not Path(barrier_path).exists():
        time.sleep(0.01)
    with open_runtime(Path(home)) as rt:
        service = rt.issuance(pkilint=False)
        revocation = rt.revocation()
        for i in range(count):
            issued = service.issue(
                profile_name="upc-auth",
                csr=fresh_csr(),
                subject=SubjectInput.from_json_obj(DEMO_SUBJECTS["upc-auth"]),
                actor=os_actor(),
            )
            if i % 2 == 0:
                revocation.revoke(issued.issuer, issued.serial_hex, "superseded", actor=os_actor())


def _tune(home: Path) -> None:
    """Publish CRLs within 2 s of a change (the job then runs every second)."""
    path = home / "qtsp.toml"
    text = re.sub(r"crl_after_change_seconds = \d+", "crl_after_change_seconds = 2", path.read_text())
    path.write_text(text)


@pytest.mark.postgres
def test_two_servers_and_a_worker_share_one_database(pg_url: str, tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    home = init_home(tmp_path / "home", database_url=pg_url, base_url=f"http://127.0.0.1:{ports[0]}")
    _tune(home.path)
    env = {**os.environ, **home.env, "QTSP_LOG_LEVEL": "INFO"}
    exe = str(Path(sys.executable).with_name("qtsp"))
    logs = [tmp_path / f"instance{i}.log" for i in range(3)]
    commands = [
        [exe, "--home", str(home.path), "serve", "--port", str(ports[0])],
        [exe, "--home", str(home.path), "serve", "--port", str(ports[1])],
        [exe, "--home", str(home.path), "worker"],
    ]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
        for cmd, log in zip(commands, logs, strict=True)
    ]
    try:
        for port in ports:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                        assert r.status == 200
                    break
                except OSError:
                    assert time.monotonic() < deadline, "an instance did not come up"
                    time.sleep(0.1)
        barrier = tmp_path / "go"
        ctx = multiprocessing.get_context("spawn")
        clients = [ctx.Process(target=_client, args=(str(home.path), home.env, 12, str(barrier))) for _ in range(2)]
        for c in clients:
            c.start()
        barrier.touch()
        for c in clients:
            c.join(180)
            assert c.exitcode == 0
        time.sleep(4)  # the CRL job (every second) publishes the last changes
        with open_runtime(home.path) as rt:
            with rt.db.read() as s:
                certs = s.execute(select(CertificateRecord.issuer_id, CertificateRecord.serial)).all()
                revoked = {r for (r,) in s.execute(select(StatusEntry.serial))}
                states = dict(
                    s.execute(select(SerialReservation.state, func.count()).group_by(SerialReservation.state)).all()
                )
                crls = s.execute(
                    select(CRLRecord.issuer_id, CRLRecord.crl_number, CRLRecord.this_update, CRLRecord.der).order_by(
                        CRLRecord.id
                    )
                ).all()
            report = rt.audit().verify()
            issuers = rt.issuance(pkilint=False).issuers
            auth = issuers["auth"]
        # No duplicate serial, every reservation settled as issued.
        assert len(certs) == len(set(certs))
        assert states == {"issued": states.get("issued", 0)} and states["issued"] == 24
        assert len(revoked) == 12
        # CRL numbers per CA: unique and increasing in publication order, thisUpdate never back.
        by_ca: dict[int, list[tuple[int, object]]] = defaultdict(list)
        for issuer_id, number, this_update, _ in crls:
            by_ca[issuer_id].append((number, this_update))
        for runs in by_ca.values():
            numbers = [n for n, _ in runs]
            assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
            times = [t for _, t in runs]
            assert times == sorted(times)
        from cryptography import x509

        newest_auth = [der for issuer_id, _, _, der in crls if issuer_id == auth.id][-1]
        listed = {format(e.serial_number, "x") for e in x509.load_der_x509_crl(newest_auth)}
        assert revoked <= listed  # every revocation reached the CRL
        # One audit chain, no fork.
        assert report.ok, report.problem
        # Both servers answer OCSP with the final status.
        with open_runtime(home.path) as rt, rt.db.read() as s:
            sample = (
                s.execute(select(CertificateRecord.der).where(CertificateRecord.profile == "upc-auth")).scalars().all()
            )
        for der in sample[:4]:
            cert = x509.load_der_x509_certificate(der)
            req = ocsp.OCSPRequestBuilder().add_certificate(cert, auth.view.certificate, hashes.SHA1()).build()
            body = req.public_bytes(serialization.Encoding.DER)
            expected = (
                ocsp.OCSPCertStatus.REVOKED if format(cert.serial_number, "x") in revoked else ocsp.OCSPCertStatus.GOOD
            )
            for port in ports:
                r = urllib.request.Request(
                    f"http://127.0.0.1:{port}/ocsp", data=body, headers={"Content-Type": "application/ocsp-request"}
                )
                with urllib.request.urlopen(r, timeout=10) as resp:
                    assert ocsp.load_der_ocsp_response(resp.read()).certificate_status is expected
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    # No job ran in two places at once: the run spans of each job, from all three logs, never overlap.
    runs: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for log in logs:
        for line in log.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("event") == "job.run":
                runs[record["job"]].append((record["started"], record["finished"], record["holder"]))
    assert runs["crl-publish"], "the scheduler logged no job runs"
    holders = {h for spans in runs.values() for _, _, h in spans}
    assert len(holders) >= 2, "only one instance ever ran a job: no contention was tested"
    for job, spans in runs.items():
        spans.sort()
        for (_, end, h1), (start, _, h2) in itertools.pairwise(spans):
            assert end <= start + 0.001, f"job {job} ran in {h1} and {h2} at once"
