"""Pre-signed OCSP responses: refresh before half their validity, re-signing on status changes, the
guard against a stale "good" racing a revocation, and visibility of a revocation in another process."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from cryptography.x509 import ocsp
from sqlalchemy import select

from ca.crl_ocsp.ocsp import PRESIGNED_HASHES, split_presigned
from ca.crl_ocsp.revocation import RevocationService
from ca.store import ocsp_repo
from ca.store.models import PresignedOCSPResponse
from qtsp.wiring import Runtime, os_actor
from tests.conftest import Home
from tests.integration.helpers import open_runtime
from tests.integration.ocsp_helpers import ca_certificates, issue, request_der, verify_response

ACTOR = os_actor("revocation-officer")


@pytest.fixture
def home(db_home: Home) -> Home:
    return db_home


def _stored(rt: Runtime, serial: str) -> PresignedOCSPResponse | None:
    with rt.db.read() as s:
        return s.scalars(select(PresignedOCSPResponse).where(PresignedOCSPResponse.serial == serial)).first()


def test_refresh_signs_missing_and_half_expired_responses(home: Home) -> None:
    with open_runtime(home.path) as rt:
        cas = ca_certificates(rt)
        good, held = issue(rt), issue(rt, on_hold=True)
        revoked = issue(rt)
        RevocationService(db=rt.db).revoke(revoked.issuer, revoked.serial_hex, "superseded", actor=ACTOR)
        presigner = rt.ocsp_presigner()
        responder = rt.ocsp_responder()
        now = dt.datetime.now(dt.UTC)
        first = presigner.refresh_due(now)
        assert first >= 3  # the three certificates, plus every responder certificate
        assert presigner.refresh_due(now) == 0  # nothing due any more
        assert presigner.refresh_due(now + dt.timedelta(hours=11)) == 0  # before half the 24 h validity
        for cert, status in ((good, "good"), (held, "on-hold"), (revoked, "revoked")):
            row = _stored(rt, cert.serial_hex)
            assert row is not None and row.cert_status == status
            variants = split_presigned(row.der)
            assert len(variants) == len(PRESIGNED_HASHES)
            for algorithm, der in zip(PRESIGNED_HASHES, variants, strict=True):
                resp = ocsp.load_der_ocsp_response(der)
                verify_response(resp, cas[cert.issuer])
                assert resp.hash_algorithm.name == algorithm and resp.serial_number == cert.certificate.serial_number
                assert not list(resp.extensions)  # no nonce in a pre-produced response
            answer = responder.respond(request_der(cas[cert.issuer], cert.certificate.serial_number, "sha256"))
            assert answer.outcome == "presigned" and answer.der == variants[1]
        before = _stored(rt, good.serial_hex)
        assert before is not None
        later = now + dt.timedelta(hours=12, minutes=1)  # past half the validity: all of them again
        assert presigner.refresh_due(later, batch=2) == 2  # bounded by the batch
        assert presigner.refresh_due(later) == first - 2
        after = _stored(rt, good.serial_hex)
        assert after is not None and after.this_update > before.this_update


def test_status_changes_re_sign_at_once(home: Home) -> None:
    with open_runtime(home.path) as rt:
        cas = ca_certificates(rt)
        held = issue(rt, on_hold=True)
        ca = cas[held.issuer]
        responder = rt.ocsp_responder()
        rt.ocsp_presigner().refresh_due()
        req = request_der(ca, held.certificate.serial_number)
        assert ocsp.load_der_ocsp_response(responder.respond(req).der).revocation_reason is not None
        rt.revocation().activate(held.issuer, held.serial_hex, actor=ACTOR)
        answer = responder.respond(req)
        assert answer.outcome == "presigned"  # signed by the hook right after the commit
        assert ocsp.load_der_ocsp_response(answer.der).certificate_status is ocsp.OCSPCertStatus.GOOD
        rt.revocation().revoke(held.issuer, held.serial_hex, "privilegeWithdrawn", actor=ACTOR)
        answer = responder.respond(req)
        assert answer.outcome == "presigned"
        assert ocsp.load_der_ocsp_response(answer.der).certificate_status is ocsp.OCSPCertStatus.REVOKED


def test_a_stale_good_signed_before_a_revocation_is_never_stored(home: Home) -> None:
    with open_runtime(home.path) as rt:
        cas = ca_certificates(rt)
        cert = issue(rt)
        presigner = rt.ocsp_presigner()
        issuer = rt.ocsp_responder().directory.get().by_name[cert.issuer]
        now = dt.datetime.now(dt.UTC)
        with rt.db.read() as s:
            status = ocsp_repo.certificate_statuses(s, issuer.id, [cert.serial_hex])[cert.serial_hex]
        stale = presigner._sign(issuer, cert.serial_hex, status, now)  # a refresh signs "good" ...
        assert stale is not None and status.status == "good"
        # ... a revocation commits meanwhile (no hook: nothing re-signs it) ...
        RevocationService(db=rt.db).revoke(cert.issuer, cert.serial_hex, "keyCompromise", actor=ACTOR)
        # ... and the refresh's write must not store its stale "good".
        with rt.db.write() as s:
            assert ocsp_repo.store_presigned(s, issuer.id, [stale], now) == 0
        assert _stored(rt, cert.serial_hex) is None
        answer = rt.ocsp_responder().respond(request_der(cas[cert.issuer], cert.certificate.serial_number))
        assert answer.outcome == "live"
        assert ocsp.load_der_ocsp_response(answer.der).certificate_status is ocsp.OCSPCertStatus.REVOKED


def test_a_revocation_waits_for_a_storing_refresh_and_deletes_its_answer(home: Home) -> None:
    """The refresh holds the certificate row while it stores; the revocation then removes what it stored."""
    with open_runtime(home.path) as rt:
        cas = ca_certificates(rt)
        cert = issue(rt)
        presigner = rt.ocsp_presigner()
        issuer = rt.ocsp_responder().directory.get().by_name[cert.issuer]
        now = dt.datetime.now(dt.UTC)
        with rt.db.read() as s:
            status = ocsp_repo.certificate_statuses(s, issuer.id, [cert.serial_hex])[cert.serial_hex]
        good = presigner._sign(issuer, cert.serial_hex, status, now)
        assert good is not None
        done = threading.Event()
        errors: list[BaseException] = []

        def revoke() -> None:
            try:
                RevocationService(db=rt.db).revoke(cert.issuer, cert.serial_hex, "keyCompromise", actor=ACTOR)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                done.set()

        with rt.db.write() as s:
            assert ocsp_repo.store_presigned(s, issuer.id, [good], now) == 1
            thread = threading.Thread(target=revoke)
            thread.start()
            assert not done.wait(0.5)  # blocked behind the refresh's transaction
        thread.join(10)
        assert done.is_set() and errors == []
        assert _stored(rt, cert.serial_hex) is None
        answer = rt.ocsp_responder().respond(request_der(cas[cert.issuer], cert.certificate.serial_number))
        assert ocsp.load_der_ocsp_response(answer.der).certificate_status is ocsp.OCSPCertStatus.REVOKED


_CHILD = textwrap.dedent(
    """
    import sys
    from qtsp.config import load_config
    from qtsp.wiring import runtime

    with runtime(load_config(sys.argv[1])) as rt:
        responder = rt.ocsp_responder()
        print("ready", flush=True)
        for line in sys.stdin:
            answer = responder.respond(bytes.fromhex(line.strip()))
            print(answer.outcome, answer.der.hex(), flush=True)
    """
)


def test_a_revocation_is_visible_at_once_in_another_process(home: Home) -> None:
    """Two processes share the database: revoke in this one, ask the other (no status cache anywhere)."""
    with open_runtime(home.path) as rt:
        cas = ca_certificates(rt)
        plain, hooked = issue(rt), issue(rt)
        rt.ocsp_presigner().refresh_due()
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(home.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **home.env},
        )
        try:
            assert child.stdin is not None and child.stdout is not None
            assert child.stdout.readline().strip() == "ready"

            def ask(serial: int) -> tuple[str, ocsp.OCSPResponse]:
                assert child.stdin is not None and child.stdout is not None
                child.stdin.write(request_der(cas[plain.issuer], serial).hex() + "\n")
                child.stdin.flush()
                outcome, der = child.stdout.readline().split()
                return outcome, ocsp.load_der_ocsp_response(bytes.fromhex(der))

            for cert in (plain, hooked):
                outcome, resp = ask(cert.certificate.serial_number)
                assert (outcome, resp.certificate_status) == ("presigned", ocsp.OCSPCertStatus.GOOD)
            # Without the re-signing hook: the revocation's own transaction removed the stored "good".
            RevocationService(db=rt.db).revoke(plain.issuer, plain.serial_hex, "keyCompromise", actor=ACTOR)

            def first_revoked(serial: int) -> tuple[float, str]:
                # The other process may repeat its earlier answer for up to [status] ocsp_cache_ms (0.5 s).
                committed = time.monotonic()
                while True:
                    outcome, resp = ask(serial)
                    elapsed = time.monotonic() - committed
                    if resp.certificate_status is ocsp.OCSPCertStatus.REVOKED:
                        return elapsed, outcome
                    assert outcome == "presigned" and elapsed < 1.0, "revocation not visible within one second"
                    time.sleep(0.02)

            elapsed, outcome = first_revoked(plain.certificate.serial_number)
            assert elapsed < 1.0 and outcome == "live"
            # With it (the production wiring): the new answer is pre-signed as well.
            rt.revocation().revoke(hooked.issuer, hooked.serial_hex, "keyCompromise", actor=ACTOR)
            elapsed, outcome = first_revoked(hooked.certificate.serial_number)
            assert elapsed < 1.0 and outcome == "presigned"
        finally:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(10)


def test_answer_cache_is_bounded_and_never_holds_nonce_answers(home: Home) -> None:
    """[status] ocsp_cache_ms: a process repeats an answer for at most that long; a status change
    committed elsewhere shows as soon as it expires, one committed here at once."""
    from ca.crl_ocsp.ocsp import OCSPResponder

    with open_runtime(home.path) as rt:
        cas = ca_certificates(rt)
        cert = issue(rt)
        rt.ocsp_presigner().refresh_due()
        responder = OCSPResponder(rt.db, rt.backend, cache_seconds=0.3)
        req = request_der(cas[cert.issuer], cert.certificate.serial_number)
        first = responder.respond(req)
        assert responder.respond(req) is first  # served from the cache
        # Revoked by another process (no hook into this responder): the cached "good" lasts < 0.3 s.
        RevocationService(db=rt.db).revoke(cert.issuer, cert.serial_hex, "superseded", actor=ACTOR)
        assert ocsp.load_der_ocsp_response(responder.respond(req).der).certificate_status is ocsp.OCSPCertStatus.GOOD
        time.sleep(0.35)
        assert ocsp.load_der_ocsp_response(responder.respond(req).der).certificate_status is ocsp.OCSPCertStatus.REVOKED
        # Nonce answers are signed live every time.
        nonce_req = request_der(cas[cert.issuer], cert.certificate.serial_number, nonce=b"0123456789abcdef")
        a, b = responder.respond(nonce_req), responder.respond(nonce_req)
        assert a.nonce and b.nonce and a is not b
        with pytest.raises(ValueError, match="one second"):
            OCSPResponder(rt.db, rt.backend, cache_seconds=1.0)
