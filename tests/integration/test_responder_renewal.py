"""Delegated OCSP responder certificates are renewed before they expire; earlier ones are kept
(issue 3 point 4).  Runs with the soft keystore and with SoftHSM2."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import select

from ca.crl_ocsp.responders import ResponderRenewal
from ca.issuance.hierarchy import responder_key_ref
from ca.store import repository as repo
from ca.store.models import AuditEvent, OCSPResponder
from qtsp.wiring import os_actor
from tests.conftest import Home, init_home, make_softhsm_token
from tests.integration.helpers import assert_audit_chain, open_runtime


@pytest.fixture(params=["soft", "pkcs11"])
def home(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    token = make_softhsm_token() if request.param == "pkcs11" else None
    h = init_home(tmp_path / "home", backend=request.param, token=token)
    for k, v in h.env.items():
        monkeypatch.setenv(k, v)
    return h


def test_responders_renew_only_when_due_and_old_ones_stay(home: Home) -> None:
    with open_runtime(home.path) as rt:
        with rt.db.read() as s:
            before = {c.name: c.responder_certificate_der for c in repo.list_cas(s) if c.role == "issuing"}
        renewal = rt.responder_renewal()
        assert renewal.renew_due(dt.timedelta(days=7), actor=os_actor()) == []  # 30-day certificates: not due
        # 25 days later, with 7 days' notice, every responder is due.
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=25)
        renewal = ResponderRenewal(db=rt.db, backend=rt.backend, settings=rt.config.ca, clock=lambda: later)
        renewed = renewal.renew_due(dt.timedelta(days=7), actor=os_actor())
        assert sorted(r.ca for r in renewed) == ["auth", "qes", "seal"]
        assert renewal.renew_due(dt.timedelta(days=7), actor=os_actor()) == []  # done once
        with rt.db.read() as s:
            cas = {c.name: c for c in repo.list_cas(s)}
            assert (
                s.scalar(
                    select(OCSPResponder).where(OCSPResponder.issuer_id == cas["qes"].id).order_by(OCSPResponder.id)
                )
                is not None
            )
            counts = {
                n: len(s.scalars(select(OCSPResponder).where(OCSPResponder.issuer_id == c.id)).all())
                for n, c in cas.items()
                if c.role == "issuing"
            }
            events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert counts == {"auth": 2, "qes": 2, "seal": 2}
        assert_audit_chain(events)
        assert sum(e.action == "ocsp.responder_renewed" for e in events) == 3
        for name, ca in cas.items():
            if ca.role != "issuing":
                continue
            new = x509.load_der_x509_certificate(ca.responder_certificate_der or b"")
            assert ca.responder_certificate_der != before[name]  # the newest is the new one
            issuer = x509.load_der_x509_certificate(ca.certificate_der)
            new.verify_directly_issued_by(issuer)
            eku = new.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            assert ExtendedKeyUsageOID.OCSP_SIGNING in eku
            assert new.extensions.get_extension_for_class(x509.OCSPNoCheck)
            assert new.not_valid_after_utc > later + dt.timedelta(days=20)
            # the new key signs through the backend
            ref = responder_key_ref(ca)
            assert ref is not None
            key = rt.backend.signing_key(ref)
            assert key.public_key().public_numbers() == new.public_key().public_numbers()  # type: ignore[union-attr]


def test_two_forced_renewals_in_one_second_get_two_keys(home: Home) -> None:
    """Responder key labels carry the second; a second renewal within it gets a suffixed label
    instead of failing on the label the first one took (soft keystore and token alike)."""
    with open_runtime(home.path) as rt:
        at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        renewal = ResponderRenewal(db=rt.db, backend=rt.backend, settings=rt.config.ca, clock=lambda: at)
        first = renewal.renew_due(dt.timedelta(days=7), actor=os_actor(), force=True)
        second = renewal.renew_due(dt.timedelta(days=7), actor=os_actor(), force=True)
        assert len(first) == len(second) == 3
        with rt.db.read() as s:
            qes = next(c for c in repo.list_cas(s) if c.name == "qes")
        ref = responder_key_ref(qes)
        assert ref is not None and ref.label.startswith(f"qes-ocsp-{at:%Y%m%dT%H%M%SZ}-")
