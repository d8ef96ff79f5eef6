"""CRL publication (issue 3 point 2): CRLs per issuing CA and the root's CARL, v2, AKI, strictly
increasing cRLNumber (also with two racing processes on PostgreSQL), entries equal to the status
entries, expired certificates kept with ExpiredCertsOnCRL, HSM signatures, pkilint, openssl, and
failures that leave nothing behind."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from ca.asn1.crl_entry import crl_entry_der
from ca.crl_ocsp.crl import EXPIRED_CERTS_ON_CRL, LINT_FULL_MAX, CRLError, CRLErrorKind, CRLLinter, CRLPublisher
from ca.profiles.subject import SubjectInput
from ca.store import crl_repo
from ca.store.models import AuditEvent, CertificateAuthority, CRLRecord, CRLState, StatusEntry
from hsm import HSMUnavailable
from qtsp.demo import DEMO_SUBJECTS, fresh_csr
from qtsp.wiring import Runtime, os_actor
from tests.conftest import Home, init_home
from tests.integration.helpers import assert_audit_chain, open_runtime

ACTOR = os_actor("revocation-officer")
PUBLISHER = os_actor("crl-publisher")
REASONS = {
    x509.ReasonFlags.key_compromise: "keyCompromise",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.certificate_hold: "certificateHold",
    x509.ReasonFlags.affiliation_changed: "affiliationChanged",
    x509.ReasonFlags.ca_compromise: "cACompromise",
}


def _issue(rt: Runtime, profile: str = "qes-natural", **kw: object) -> tuple[str, str, x509.Certificate]:
    issued = rt.issuance(pkilint=False).issue(
        profile_name=profile,
        csr=fresh_csr(),
        subject=SubjectInput.from_json_obj(DEMO_SUBJECTS[profile]),
        actor=os_actor(),
        **kw,  # type: ignore[arg-type]
    )
    return issued.issuer, issued.serial_hex, issued.certificate


@pytest.fixture
def home(db_home: Home) -> Home:
    return db_home


def _ca_cert(rt: Runtime, name: str) -> x509.Certificate:
    with rt.db.read() as s:
        der = s.scalars(select(CertificateAuthority.certificate_der).where(CertificateAuthority.name == name)).one()
    return x509.load_der_x509_certificate(der)


def _latest(rt: Runtime, name: str) -> x509.CertificateRevocationList:
    stored = rt.crl().latest(name)
    assert stored is not None
    return x509.load_der_x509_crl(stored.der)


def _number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def _version_field(crl: x509.CertificateRevocationList) -> bytes:
    """The first element of tbsCertList: ``version INTEGER 1`` means v2 (RFC 5280 §5.1.2.1)."""
    tbs = crl.tbs_certlist_bytes
    start = 2 if tbs[1] < 0x80 else 2 + (tbs[1] & 0x7F)
    return tbs[start : start + 3]


def _pkilint(der: bytes) -> list[str]:
    return [f"{f.severity.name} {f.message}" for f in CRLLinter.shared().lint(der) if f.severity.name != "INFO"]


# ----------------------------------------------------------------------------------------------


def test_every_ca_publishes_a_conforming_signed_crl(any_home: Home) -> None:
    """`qtsp init` published CRL #1 of every CA; the profile holds on every database and backend."""
    with open_runtime(any_home.path) as rt:
        _issuer, serial, _ = _issue(rt)
        rt.revocation().revoke("qes", serial, "keyCompromise", actor=ACTOR)
        rt.revocation().revoke("root", format(_ca_cert(rt, "auth").serial_number, "x"), "superseded", actor=ACTOR)
        published = {p.issuer: p for p in rt.crl().publish_all(PUBLISHER, force=True)}
        assert set(published) == {"root", "qes", "seal", "auth"}
        for name, done in published.items():
            stored = rt.crl().latest(name)
            assert stored is not None and stored.number == done.number == 2
            crl = x509.load_der_x509_crl(stored.der)
            ca = _ca_cert(rt, name)
            # RFC 5280 §5.1.2.1 v2; §5.2.1 AKI = the CA's SKI; §5.2.3 cRLNumber.
            assert _version_field(crl) == b"\x02\x01\x01"
            aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
            ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            assert aki.key_identifier == ski.digest
            assert _number(crl) == 2
            assert crl.issuer == ca.subject
            assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
            # EN 319 411-2 CSS-6.3.10-05: ExpiredCertsOnCRL = the CA's notBefore (GeneralizedTime).
            eco = crl.extensions.get_extension_for_oid(EXPIRED_CERTS_ON_CRL)
            assert not eco.critical
            assert eco.value.value == b"\x18\x0f" + ca.not_valid_before_utc.strftime("%Y%m%d%H%M%SZ").encode()
            assert crl.next_update_utc is not None and crl.last_update_utc == done.this_update
            days = 30 if name == "root" else 7
            assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(days=days)
            assert _pkilint(stored.der) == [], name
            assert hashlib.sha256(stored.der).hexdigest() == stored.sha256
        assert [e.serial_number for e in _latest(rt, "qes")] == [int(serial, 16)]
        assert [e.serial_number for e in _latest(rt, "root")] == [_ca_cert(rt, "auth").serial_number]
        assert len(list(_latest(rt, "seal"))) == 0
        with rt.db.read() as s:
            states = s.scalars(select(CRLState)).all()
            assert {st.last_number for st in states} == {2}
            assert all(st.pending_since is None and st.last_published_at is not None for st in states)
            events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert_audit_chain(events)
    crl_events = [json.loads(e.details) for e in events if e.action == "crl.published"]
    assert len(crl_events) == 8  # four at init, four now
    last = next(d for d in reversed(crl_events) if d["issuer"] == "qes")
    assert last["number"] == 2 and last["entries"] == 1 and last["sha256"] == published["qes"].sha256
    assert {"this_update", "next_update"} <= set(last)


def test_entries_match_status_entries_and_holds_go_on_activation(home: Home) -> None:
    with open_runtime(home.path) as rt:
        _, compromised, _ = _issue(rt)
        _, superseded, _ = _issue(rt)
        _, held, _ = _issue(rt, on_hold=True)
        _, good, _ = _issue(rt)
        when = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
        service = rt.revocation()
        service.revoke("qes", compromised, "keyCompromise", actor=ACTOR, invalidity_date=when)
        service.revoke("qes", superseded, "superseded", actor=ACTOR)
        done = rt.crl().publish_due(PUBLISHER)
        assert [d.issuer for d in done] == ["qes"]  # only the CA with a pending change
        crl = _latest(rt, "qes")
        with rt.db.read() as s:
            rows = {r.serial: r for r in s.scalars(select(StatusEntry))}
        listed = {format(e.serial_number, "x"): e for e in crl}
        assert set(listed) == {compromised, superseded, held} == set(rows)
        assert good not in listed
        for shex, entry in listed.items():
            row = rows[shex]
            assert entry.revocation_date_utc == row.revoked_at.replace(microsecond=0)
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
            assert REASONS[reason] == row.reason
        invalidity = listed[compromised].extensions.get_extension_for_class(x509.InvalidityDate).value
        assert invalidity.invalidity_date_utc == when
        assert REASONS[listed[held].extensions.get_extension_for_class(x509.CRLReason).value.reason] == (
            "certificateHold"
        )

        service.activate("qes", held, actor=os_actor())
        assert [d.issuer for d in rt.crl().publish_due(PUBLISHER)] == ["qes"]
        after = {format(e.serial_number, "x") for e in _latest(rt, "qes")}
        assert after == {compromised, superseded}  # the hold is gone, revocations stay
        assert _number(_latest(rt, "qes")) == 3
        assert rt.crl().publish_due(PUBLISHER) == []  # nothing pending, interval not passed


def test_expired_revoked_certificates_stay_listed(home: Home) -> None:
    with open_runtime(home.path) as rt:
        _, serial, cert = _issue(rt, validity_days=1)
        rt.revocation().revoke("qes", serial, "keyCompromise", actor=ACTOR)
        later = cert.not_valid_after_utc + dt.timedelta(days=30)
        publisher = rt.crl()
        publisher.clock = lambda: later
        done = publisher.publish("qes", PUBLISHER, force=True)
        assert done is not None and done.this_update >= later.replace(microsecond=0)
        crl = _latest(rt, "qes")
        assert crl.last_update_utc > cert.not_valid_after_utc  # the certificate expired before this CRL
        assert [e.serial_number for e in crl] == [cert.serial_number]  # EN 319 411-2 CSS-6.3.10-03
        assert crl.extensions.get_extension_for_oid(EXPIRED_CERTS_ON_CRL) is not None


def test_openssl_verify_crl_check(tmp_path: Path, soft_home: Home) -> None:
    with open_runtime(soft_home.path) as rt:
        _, revoked_serial, revoked = _issue(rt)
        _, _, good = _issue(rt)
        rt.revocation().revoke("qes", revoked_serial, "keyCompromise", actor=ACTOR)
        assert rt.crl().publish("qes", PUBLISHER) is not None  # pending: due without --force
        root, qes = _ca_cert(rt, "root"), _ca_cert(rt, "qes")
    publish = soft_home.path / "publish"
    pem = serialization.Encoding.PEM
    files = {}
    for name, obj in (("root", root), ("qes", qes), ("revoked", revoked), ("good", good)):
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_bytes(obj.public_bytes(pem))
    for name in ("qes", "root"):
        der = (publish / "crl" / f"{name}.crl").read_bytes()
        files[f"{name}.crl"] = tmp_path / f"{name}.crl.pem"
        files[f"{name}.crl"].write_bytes(x509.load_der_x509_crl(der).public_bytes(pem))
    assert (publish / "ca" / "qes.crt").read_bytes() == qes.public_bytes(serialization.Encoding.DER)

    def verify(leaf: str, *flags: str) -> subprocess.CompletedProcess[str]:
        args = ["openssl", "verify", *flags, "-CAfile", str(files["root"]), "-untrusted", str(files["qes"])]
        args += ["-CRLfile", str(files["qes.crl"]), "-CRLfile", str(files["root.crl"]), str(files[leaf])]
        return subprocess.run(args, capture_output=True, text=True, check=False)

    for flag in ("-crl_check", "-crl_check_all"):
        ok = verify("good", flag)
        assert ok.returncode == 0 and ": OK" in ok.stdout, ok.stdout + ok.stderr
        bad = verify("revoked", flag)
        assert bad.returncode != 0 and "certificate revoked" in bad.stdout + bad.stderr
    for name, issuer in (("qes", "qes"), ("root", "root")):
        check = subprocess.run(
            ["openssl", "crl", "-in", str(files[f"{name}.crl"]), "-CAfile", str(files[issuer]), "-noout"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0 and "verify OK" in check.stdout + check.stderr, check.stderr
    # pkilint's own command line (issue 3 point 7): zero findings for the CRL and the CARL.
    for name, kind in (("qes", "CRL"), ("root", "ARL")):
        path = str(publish / "crl" / f"{name}.crl")
        lint = subprocess.run(
            [sys.executable, "-m", "pkilint.bin.lint_crl", "lint", "-t", kind, "-p", "PKIX", path],
            capture_output=True,
            text=True,
            check=False,
        )
        assert lint.returncode == 0 and lint.stdout.strip() == "", lint.stdout + lint.stderr


def _race(home: str, env: dict[str, str], n: int, barrier: object, out: object) -> None:
    os.environ.update(env)
    with open_runtime(Path(home)) as rt:
        publisher = rt.crl()
        barrier.wait()  # type: ignore[attr-defined]
        numbers = [publisher.publish("qes", os_actor("race"), force=True) for _ in range(n)]
    out.put([p.number for p in numbers if p is not None])  # type: ignore[attr-defined]


def test_two_processes_racing_on_postgres(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    home = init_home(tmp_path / "home", database_url=pg_url)
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    per = 10
    procs = [ctx.Process(target=_race, args=(str(home.path), home.env, per, barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    seen = got[0] + got[1]
    assert len(seen) == 2 * per and len(set(seen)) == 2 * per  # none lost, none duplicated
    assert all(a < b for a, b in zip(got[0], got[0][1:], strict=False))  # each process sees them increase
    assert sorted(seen) == list(range(2, 2 * per + 2))  # #1 came from qtsp init
    with open_runtime(home.path) as rt, rt.db.read() as s:
        qes_id = s.scalars(select(CertificateAuthority.id).where(CertificateAuthority.name == "qes")).one()
        rows = s.execute(
            select(CRLRecord.crl_number, CRLRecord.this_update, CRLRecord.created_at, CRLRecord.der)
            .where(CRLRecord.issuer_id == qes_id)
            .order_by(CRLRecord.created_at)  # commit order: each publisher held the row lock throughout
        ).all()
        state = s.get_one(CRLState, qes_id)
    numbers = [r[0] for r in rows]
    assert numbers == list(range(1, 2 * per + 2))  # strictly increasing in commit order
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(rows))  # thisUpdate never goes back
    assert [_number(x509.load_der_x509_crl(r[3])) for r in rows] == numbers
    assert state.last_number == 2 * per + 1


class InjectedFailure(Exception):
    pass


@pytest.mark.parametrize("step", ["lock", "read", "sign", "verify", "lint", "store"])
def test_failure_at_any_step_leaves_no_crl_and_keeps_the_number(home: Home, step: str) -> None:
    with open_runtime(home.path) as rt:
        _, serial, _ = _issue(rt)
        rt.revocation().revoke("qes", serial, "keyCompromise", actor=ACTOR)
        publisher = rt.crl()

        def fault(name: str) -> None:
            if name == step:
                if step == "sign":
                    raise HSMUnavailable("token removed")  # what the PKCS#11 backend raises
                raise InjectedFailure(step)

        publisher.faults = fault
        expected: type[Exception] = CRLError if step == "sign" else InjectedFailure
        with pytest.raises(expected) as raised:
            publisher.publish("qes", PUBLISHER, force=True)
        if step == "sign":
            assert isinstance(raised.value, CRLError) and raised.value.kind is CRLErrorKind.HSM_UNAVAILABLE
        _assert_untouched(rt)
        publisher.faults = None
        assert publisher.publish("qes", PUBLISHER) is not None  # still pending, so due
        assert _number(_latest(rt, "qes")) == 2


def _assert_untouched(rt: Runtime) -> None:
    with rt.db.read() as s:
        qes_id = s.scalars(select(CertificateAuthority.id).where(CertificateAuthority.name == "qes")).one()
        assert s.scalars(select(CRLRecord.crl_number).where(CRLRecord.issuer_id == qes_id)).all() == [1]
        state = s.get_one(CRLState, qes_id)
        assert state.last_number == 1 and state.pending_since is not None


def test_lint_error_refuses_publication(home: Home) -> None:
    """A stored entry pkilint rejects (a 22-octet serial, RFC 5280 §4.1.2.2) stops the publication."""
    with open_runtime(home.path) as rt:
        _, serial, _ = _issue(rt)
        rt.revocation().revoke("qes", serial, "keyCompromise", actor=ACTOR)
        now = dt.datetime.now(dt.UTC)
        with rt.db.write() as s:
            qes_id = s.scalars(select(CertificateAuthority.id).where(CertificateAuthority.name == "qes")).one()
            # A corrupted stored encoding: the row says one serial, the DER holds a 22-octet one.
            crl_repo.bulk_add_status_entries(s, [{**_synthetic(qes_id, 1 << 170, now), "serial": "badc0de"}])
        with pytest.raises(CRLError, match="certificate_serial_number_out_of_range") as refused:
            rt.crl().publish("qes", PUBLISHER, force=True)
        assert refused.value.kind is CRLErrorKind.LINT
        _assert_untouched(rt)
        with rt.db.read() as s:
            failed = s.scalars(select(AuditEvent).where(AuditEvent.action == "crl.publication_failed")).all()
        assert len(failed) == 1 and '"reason":"lint"' in failed[0].details


def _synthetic(issuer_id: int, serial: int, now: dt.datetime, reason: str = "keyCompromise") -> dict[str, object]:
    return {
        "issuer_id": issuer_id,
        "serial": format(serial, "x"),
        "certificate_id": None,
        "reason": reason,
        "revoked_at": now.replace(microsecond=0),
        "invalidity_date": None,
        "not_after": now + dt.timedelta(days=365),
        "received_at": now,
        "requested_by": "test",
        "decided_by": "test",
        "crl_entry_der": crl_entry_der(serial, now, reason),
        "created_at": now,
    }


def test_large_crl_is_linted_on_a_bounded_sample(soft_home: Home) -> None:
    count = LINT_FULL_MAX + 700
    with open_runtime(soft_home.path) as rt:
        now = dt.datetime.now(dt.UTC)
        with rt.db.write() as s:
            seal_id = s.scalars(select(CertificateAuthority.id).where(CertificateAuthority.name == "seal")).one()
            rows = [
                _synthetic(seal_id, (1 << 100) + i, now, ("keyCompromise", "superseded")[i % 2]) for i in range(count)
            ]
            crl_repo.bulk_add_status_entries(s, rows)
        done = rt.crl().publish("seal", PUBLISHER, force=True)
        assert done is not None and done.entries == count
        assert done.lint_scope.startswith("header with a sample of") and f"of {count} entries" in done.lint_scope
        stored = rt.crl().latest("seal")
        assert stored is not None and json.loads(stored.lint_report)["scope"] == done.lint_scope
        crl = x509.load_der_x509_crl(stored.der)
        assert sorted(e.serial_number for e in crl) == [(1 << 100) + i for i in range(count)]
        assert crl.is_signature_valid(_ca_cert(rt, "seal").public_key())  # type: ignore[arg-type]


def test_unknown_ca_is_refused(soft_home: Home) -> None:
    with open_runtime(soft_home.path) as rt:
        with pytest.raises(CRLError, match="no CA named 'nope'") as e:
            rt.crl().publish("nope", PUBLISHER, force=True)
        assert e.value.kind is CRLErrorKind.NOT_FOUND
        with pytest.raises(CRLError):
            rt.crl().latest("nope")


def test_publish_due_follows_the_interval(soft_home: Home) -> None:
    with open_runtime(soft_home.path) as rt:
        publisher: CRLPublisher = rt.crl()
        assert publisher.publish_due(PUBLISHER) == []  # all published by init a moment ago
        assert publisher.publish("qes", PUBLISHER) is None  # not due, not forced
        interval = dt.timedelta(seconds=publisher.settings.interval_seconds)
        later = dt.datetime.now(dt.UTC) + interval + dt.timedelta(seconds=5)
        publisher.clock = lambda: later
        done = publisher.publish_due(PUBLISHER)
        assert [d.issuer for d in done] == ["qes", "seal", "auth", "root"]
        assert publisher.publish_due(PUBLISHER) == []
