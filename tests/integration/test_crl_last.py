"""A CA's last CRL (STANDARDS.md §2.6 item 5; EN 319 411-1 CSS-6.3.9-06, EN 319 411-2
CSS-6.3.10-07): nextUpdate 99991231235959Z, published only once every certificate of the CA is
expired or revoked, and final — afterwards the CA issues nothing (certificates, responder
certificates) and changes no status, also against an issuance or a revocation racing the close,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from sqlalchemy import func, select

from ca.asn1.ocsp_response import subject_public_key_bits
from ca.crl_ocsp.crl import EXPIRED_CERTS_ON_CRL, LAST_NEXT_UPDATE, CRLError, CRLErrorKind, CRLPublisher
from ca.crl_ocsp.ocsp import OCSPResponder
from ca.crl_ocsp.revocation import RevocationError
from ca.issuance.errors import ErrorKind, IssuanceError
from ca.issuance.hierarchy import CAClosed, rollover_issuing_ca
from ca.profiles.subject import SubjectInput
from ca.store.models import AuditEvent, CertificateAuthority, CertificateRecord, CRLState, SerialReservation
from qtsp.demo import DEMO_SUBJECTS, fresh_csr
from qtsp.wiring import Runtime, os_actor
from tests.conftest import Home
from tests.integration.helpers import assert_audit_chain, open_runtime
from tests.integration.test_crl import _issue

OFFICER = os_actor("security-officer")
ACTOR = os_actor("revocation-officer")


@pytest.fixture
def home(db_home: Home) -> Home:
    return db_home


def _ca_id(rt: Runtime, name: str) -> int:
    with rt.db.read() as s:
        return int(s.scalars(select(CertificateAuthority.id).where(CertificateAuthority.name == name)).one())


def _live(rt: Runtime, name: str) -> list[tuple[str, str, dt.datetime]]:
    """(serial, profile, notAfter) of the CA's certificates that are not revoked."""
    with rt.db.read() as s:
        rows = s.execute(
            select(CertificateRecord.serial, CertificateRecord.profile, CertificateRecord.not_after).where(
                CertificateRecord.issuer_id == _ca_id(rt, name), CertificateRecord.status != "revoked"
            )
        ).all()
    return [(str(r[0]), str(r[1]), r[2]) for r in rows]


def _publisher_at(rt: Runtime, at: dt.datetime) -> CRLPublisher:
    publisher = rt.crl()
    publisher.clock = lambda: at
    return publisher


def _reservations(rt: Runtime) -> int:
    with rt.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(SerialReservation)) or 0)


def test_last_crl_only_when_every_certificate_is_expired_or_revoked_then_final(home: Home, tmp_path: Path) -> None:
    with open_runtime(home.path) as rt:
        _, _, short = _issue(rt, validity_days=1)
        _, revoked_serial, revoked_cert = _issue(rt)
        _, _, held = _issue(rt, validity_days=1, on_hold=True)
        # Today: the certificates and the OCSP responder certificate are valid -> refused, named.
        with pytest.raises(CRLError) as refused:
            rt.crl().publish_last("qes", OFFICER)
        assert refused.value.kind is CRLErrorKind.NOT_CLOSABLE
        assert (
            "EN 319 411-2 CSS-6.3.10-07" in refused.value.detail
            and "neither expired nor revoked" in refused.value.detail
        )
        assert format(short.serial_number, "x") in refused.value.detail.lower()
        before = rt.crl().latest("qes")
        assert before is not None

        rt.revocation().revoke("qes", revoked_serial, "cessationOfOperation", actor=ACTOR)
        # The OCSP responder's certificate is one of the CA's certificates too.
        for serial, profile, _ in _live(rt, "qes"):
            if profile == "ocsp-responder":
                rt.revocation().revoke("qes", serial, "cessationOfOperation", actor=ACTOR)
        # The day after the last short-lived certificate (and the held one) expired.
        later = max(short.not_valid_after_utc, held.not_valid_after_utc) + dt.timedelta(days=1)
        assert all(not_after < later for _, _, not_after in _live(rt, "qes"))
        done = _publisher_at(rt, later).publish_last("qes", OFFICER)

        # EN 319 411-1 CSS-6.3.9-06: the last CRL's nextUpdate is 99991231235959Z.
        assert done.next_update == LAST_NEXT_UPDATE == dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
        assert done.number == before.number + 1
        stored = rt.crl().latest("qes")
        assert stored is not None and stored.number == done.number
        crl = x509.load_der_x509_crl(stored.der)
        assert crl.next_update_utc == LAST_NEXT_UPDATE
        assert b"\x18\x0f99991231235959Z" in crl.tbs_certlist_bytes  # GeneralizedTime (RFC 5280 §5.1.2.5)
        with rt.db.read() as s:
            ca_der = s.scalars(
                select(CertificateAuthority.certificate_der).where(CertificateAuthority.name == "qes")
            ).one()
        ca_cert = x509.load_der_x509_certificate(ca_der)
        assert crl.is_signature_valid(ca_cert.public_key())  # type: ignore[arg-type]
        assert crl.extensions.get_extension_for_oid(EXPIRED_CERTS_ON_CRL) is not None
        listed = {e.serial_number for e in crl}
        assert int(revoked_serial, 16) in listed and held.serial_number in listed  # the hold stays listed
        assert short.serial_number not in listed  # expired, never revoked
        # openssl reads it as a relying party would.
        path = tmp_path / "last.crl"
        path.write_bytes(stored.der)
        text = subprocess.run(
            ["openssl", "crl", "-inform", "DER", "-in", str(path), "-noout", "-text"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "Next Update: Dec 31 23:59:59 9999 GMT" in text
        assert done.findings == () or all(f.severity.name != "ERROR" for f in done.findings)

        with rt.db.read() as s:
            state = s.get(CRLState, _ca_id(rt, "qes"))
            assert state is not None and state.closed_at is not None
            events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert_audit_chain(events)
        [closing] = [e for e in events if e.action == "crl.last_published"]
        details = json.loads(closing.details)
        assert details["issuer"] == "qes" and details["number"] == done.number
        assert details["next_update"] == "9999-12-31T23:59:59+00:00" and details["certificates"] == 4

        # Final: no further CRL, forced or due; the scheduler passes the CA by without an error.
        with pytest.raises(CRLError) as again:
            _publisher_at(rt, later).publish("qes", OFFICER, force=True)
        assert again.value.kind is CRLErrorKind.CLOSED and f"#{done.number}" in again.value.detail
        assert _publisher_at(rt, later + dt.timedelta(days=30)).publish("qes", OFFICER) is None  # never due
        assert "qes" not in rt.crl().open_ca_names() and rt.crl().closed_since("qes") is not None
        with pytest.raises(CRLError) as twice:
            _publisher_at(rt, later).publish_last("qes", OFFICER)
        assert twice.value.kind is CRLErrorKind.CLOSED
        due = _publisher_at(rt, later + dt.timedelta(days=30)).publish_due(OFFICER)
        assert "qes" not in {p.issuer for p in due} and {"seal", "auth", "root"} <= {p.issuer for p in due}
        assert rt.crl().latest("qes").number == done.number  # type: ignore[union-attr]

        # No certificate and no status change any more: refused, and no serial taken.
        reservations = _reservations(rt)
        with pytest.raises(IssuanceError) as closed:
            _issue(rt)
        assert closed.value.kind is ErrorKind.CONFLICT and "closed" in str(closed.value)
        assert _reservations(rt) == reservations
        with pytest.raises(RevocationError, match="last CRL"):
            rt.revocation().revoke("qes", format(short.serial_number, "x"), "keyCompromise", actor=ACTOR)
        with pytest.raises(RevocationError, match="last CRL"):
            rt.revocation().activate("qes", format(held.serial_number, "x"), actor=ACTOR)
        # OCSP goes on for it, signed with the CA's own key (its responder certificates are all
        # expired or revoked by now, and a new one would be a certificate after the last CRL).
        responder = OCSPResponder(rt.db, rt.backend, clock=lambda: later)
        for cert, status in ((revoked_cert, ocsp.OCSPCertStatus.REVOKED), (short, ocsp.OCSPCertStatus.GOOD)):
            request = ocsp.OCSPRequestBuilder().add_certificate(cert, ca_cert, hashes.SHA256()).build()
            answer = responder.respond(request.public_bytes(serialization.Encoding.DER))
            assert answer.outcome == "live", answer.outcome
            resp = ocsp.load_der_ocsp_response(answer.der)
            assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL and resp.certificate_status is status
            spki = ca_cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            assert resp.responder_key_hash == hashlib.sha1(subject_public_key_bits(spki)).digest()
            ca_cert.public_key().verify(  # type: ignore[call-arg]
                resp.signature, resp.tbs_response_bytes, ec.ECDSA(resp.signature_hash_algorithm)
            )
        # A relying party's view: openssl accepts the CA as the response's signer.
        with rt.db.read() as s:
            root_der = s.scalars(
                select(CertificateAuthority.certificate_der).where(CertificateAuthority.name == "root")
            ).one()
        (tmp_path / "root.pem").write_bytes(
            x509.load_der_x509_certificate(root_der).public_bytes(serialization.Encoding.PEM)
        )
        (tmp_path / "qes.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "resp.der").write_bytes(answer.der)
        checked = subprocess.run(
            [
                *("openssl", "ocsp", "-respin", str(tmp_path / "resp.der"), "-issuer", str(tmp_path / "qes.pem")),
                *("-CAfile", str(tmp_path / "root.pem"), "-no_nonce", "-resp_text"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "Response verify OK" in checked.stderr + checked.stdout, checked.stderr
        # Nor a new OCSP responder certificate for it; the other CAs go on.
        renewed = rt.responder_renewal().renew_due(dt.timedelta(days=1), actor=OFFICER, force=True)
        assert "qes" not in {r.ca for r in renewed} and "seal" in {r.ca for r in renewed}
        _issue(rt, "qseal-legal")


def test_refused_while_an_issuance_is_in_flight(home: Home) -> None:
    """A serial reserved but not yet settled (the HSM is signing) is an issuance in progress: the
    close is refused until it is settled, never left to a certificate signed after the last CRL."""
    with open_runtime(home.path) as rt:
        service = rt.issuance(pkilint=False)
        signing = threading.Event()
        go_on = threading.Event()

        def pause(step: str) -> None:
            if step == "sign":
                signing.set()
                assert go_on.wait(30)

        service.faults = pause
        result: list[object] = []
        worker = threading.Thread(
            target=lambda: result.append(
                service.issue(
                    profile_name="qes-natural",
                    csr=fresh_csr(),
                    subject=SubjectInput.from_json_obj(DEMO_SUBJECTS["qes-natural"]),
                    actor=os_actor(),
                )
            )
        )
        worker.start()
        try:
            assert signing.wait(30)
            far = dt.datetime.now(dt.UTC) + dt.timedelta(days=36500)
            with pytest.raises(CRLError) as refused:
                _publisher_at(rt, far).publish_last("qes", OFFICER)
            assert refused.value.kind is CRLErrorKind.NOT_CLOSABLE and "in progress" in refused.value.detail
        finally:
            go_on.set()
            worker.join(30)
        assert len(result) == 1  # the issuance finished normally
        with rt.db.read() as s:
            assert s.get(CRLState, _ca_id(rt, "qes")).closed_at is None  # type: ignore[union-attr]


def test_an_issuance_and_a_revocation_racing_the_close_are_refused(home: Home) -> None:
    """While the close holds its transaction (paused at its store step), an issuance and a
    revocation start; whichever way the database orders them, none lands after the last CRL."""
    with open_runtime(home.path) as rt:
        _, _, cert = _issue(rt, validity_days=1)
        responders: set[int] = set()
        for serial, profile, _ in _live(rt, "qes"):
            if profile == "ocsp-responder":
                rt.revocation().revoke("qes", serial, "cessationOfOperation", actor=ACTOR)
                responders.add(int(serial, 16))
        later = cert.not_valid_after_utc + dt.timedelta(days=1)
        publisher = _publisher_at(rt, later)
        issuance = rt.issuance(pkilint=False)
        revocation = rt.revocation()
        outcomes: dict[str, BaseException | object] = {}

        def issue() -> None:
            try:
                outcomes["issue"] = issuance.issue(
                    profile_name="qes-natural",
                    csr=fresh_csr(),
                    subject=SubjectInput.from_json_obj(DEMO_SUBJECTS["qes-natural"]),
                    actor=os_actor(),
                )
            except BaseException as exc:
                outcomes["issue"] = exc

        def revoke() -> None:
            try:
                outcomes["revoke"] = revocation.revoke(
                    "qes", format(cert.serial_number, "x"), "keyCompromise", actor=ACTOR
                )
            except BaseException as exc:
                outcomes["revoke"] = exc

        racers = [threading.Thread(target=issue), threading.Thread(target=revoke)]

        def race(step: str) -> None:
            if step == "store":  # inside the close's transaction, after its checks
                for t in racers:
                    t.start()
                time.sleep(1.0)  # both reach the database and wait for the close to commit

        publisher.faults = race
        certificates = _certificates(rt, "qes")
        done = publisher.publish_last("qes", OFFICER)
        for t in racers:
            t.join(60)
        assert isinstance(outcomes["issue"], IssuanceError), outcomes
        assert outcomes["issue"].kind is ErrorKind.CONFLICT and "closed" in str(outcomes["issue"])
        assert isinstance(outcomes["revoke"], RevocationError) and "last CRL" in str(outcomes["revoke"]), outcomes
        # Nothing landed: no certificate, no open reservation, the certificate still unrevoked,
        # and the last CRL lists exactly what was revoked before it.
        assert _certificates(rt, "qes") == certificates
        with rt.db.read() as s:
            open_ = s.scalar(
                select(func.count())
                .select_from(SerialReservation)
                .where(SerialReservation.issuer_id == _ca_id(rt, "qes"), SerialReservation.state == "reserved")
            )
        assert open_ == 0
        assert format(cert.serial_number, "x") in {serial for serial, _, _ in _live(rt, "qes")}
        last = rt.crl().latest("qes")
        assert last is not None and last.number == done.number
        assert {e.serial_number for e in x509.load_der_x509_crl(last.der)} == responders


def _certificates(rt: Runtime, name: str) -> int:
    with rt.db.read() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(CertificateRecord)
                .where(CertificateRecord.issuer_id == _ca_id(rt, name))
            )
            or 0
        )


def test_the_roots_last_carl_once_every_issuing_ca_certificate_has_expired(soft_home: Home) -> None:
    """The root's certificates are the issuing CAs' certificates: its last CARL comes once they
    have all expired (or been revoked), and closes the root."""
    with open_runtime(soft_home.path) as rt:
        root_id = _ca_id(rt, "root")
        with pytest.raises(CRLError, match="neither expired nor revoked"):
            rt.crl().publish_last("root", OFFICER)
        with rt.db.read() as s:
            root_not_after = s.get(CertificateAuthority, root_id).not_after  # type: ignore[union-attr]
            issuing = s.scalars(
                select(CertificateAuthority.not_after).where(CertificateAuthority.parent_id == root_id)
            ).all()
        assert len(issuing) == 3  # qes, seal, auth
        after = max(issuing) + dt.timedelta(days=1)
        assert after < root_not_after
        done = _publisher_at(rt, after).publish_last("root", OFFICER)
        carl = x509.load_der_x509_crl(rt.crl().latest("root").der)  # type: ignore[union-attr]
        assert done.next_update == LAST_NEXT_UPDATE == carl.next_update_utc and len(list(carl)) == 0
        assert rt.crl().closed_since("root") is not None and "root" not in rt.crl().open_ca_names()
        # A closed root signs no new CA certificate: a rollover is refused before any key is made.
        with pytest.raises(CAClosed, match="root CA is closed"):
            rollover_issuing_ca(rt.db, rt.backend, rt.config.ca, "qes", OFFICER, lambda: after)
