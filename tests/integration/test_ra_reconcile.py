"""A crash between the CA's commit and the RA's record, or before the CA stored anything, leaves
the database consistent: ``RAService.reconcile_issuing`` records the CA's certificate on the slot
or puts the slot back to awaiting a CSR, and never issues twice for one slot attempt (SQLite and
PostgreSQL, the real CA behind the RA)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from ca.issuance.service import IssuanceService
from ca.store.models import AuditEvent, CertificateRecord, IssuanceJournal, SerialReservation
from ra.ca_port import CAAdapter
from ra.records import SlotRec
from ra.roles import Role
from ra.service import RAService, cli_principal
from ra.store import repository as ra_repo
from tests.integration.helpers import assert_audit_chain
from tests.integration.ra_support import RAEnv, csr_pem

CA_OPERATOR = cli_principal("os:personalisation@host", Role.CA_OPERATOR)


class Crash(BaseException):
    """The process ends here (not an ``Exception``: nothing on the way may handle it)."""


def _order_in_production(env: RAEnv) -> int:
    env.applicant("erika", "Erika", "Mustermann", "1980-08-12")
    order_id = int(
        env.ok(
            "POST",
            "/api/orders",
            "erika",
            json={"product": "qes-card", "method": "postident-branch", "country": "DE"},
            status=201,
        )["id"]
    )
    assert env.identity(order_id, "Erika", "Mustermann", "1980-08-12").status_code == 200
    assert env.ok("POST", f"/api/orders/{order_id}/approve", "ra1")["state"] == "in-production"
    return order_id


def _csr() -> bytes:
    return x509.load_pem_x509_csr(csr_pem().encode()).public_bytes(serialization.Encoding.DER)


def _slot(service: RAService, order_id: int) -> SlotRec:
    with service.db.read() as s:
        (slot,) = ra_repo.slots(s, order_id)
    return slot


def _issuance(service: RAService) -> IssuanceService:
    assert isinstance(service.ca, CAAdapter)
    return service.ca._issuance


def _certificates_of(service: RAService, order_id: int) -> int:
    """Certificates the CA stored for any attempt of the order's slot."""
    with service.db.read() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(CertificateRecord)
                .join(IssuanceJournal, IssuanceJournal.id == CertificateRecord.journal_id)
                .where(IssuanceJournal.evidence_ref.like(f"ra:order:{order_id}:slot:signature:%"))
            )
            or 0
        )


def _actions(service: RAService, order_id: int) -> list[str]:
    with service.db.read() as s:
        events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert_audit_chain(events)
    return [e.action for e in events if e.object_type == "order" and e.object_id == str(order_id)]


def _later(clock: Callable[[], dt.datetime], delta: dt.timedelta) -> Callable[[], dt.datetime]:
    return lambda: clock() + delta


def test_crash_after_the_ca_commit_is_reconciled_to_the_one_certificate(
    env: RAEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = env.service
    order_id = _order_in_production(env)

    def crash(*args: object, **kwargs: object) -> SlotRec:
        raise Crash("process ended after the CA committed, before the RA recorded")

    monkeypatch.setattr(service, "_record_issued", crash)
    with pytest.raises(Crash):
        service.submit_csr(CA_OPERATOR, order_id, "signature", _csr())
    monkeypatch.undo()
    slot = _slot(service, order_id)
    assert slot.state == "issuing" and slot.serial_hex is None
    assert slot.evidence_ref is not None and slot.evidence_ref.startswith(f"ra:order:{order_id}:slot:signature:")
    assert _certificates_of(service, order_id) == 1
    # A retry of the same slot is refused while it is issuing: it would issue a second certificate.
    r = env.call("POST", f"/api/orders/{order_id}/slots/signature/csr", "caop", json={"csr_pem": csr_pem()})
    assert r.status_code == 409

    # Younger than the threshold: left alone (it may still be issuing in a live process).
    result = service.reconcile_issuing(dt.timedelta(minutes=5))
    assert result.recorded == result.reset == result.pending == ()
    assert _slot(service, order_id).state == "issuing"

    service.clock = _later(service.clock, dt.timedelta(minutes=6))
    result = service.reconcile_issuing(dt.timedelta(minutes=5))
    assert result.recorded == (slot.id,) and result.reset == ()
    done = _slot(service, order_id)
    assert done.state == "issued" and done.serial_hex and done.issuer and done.on_hold
    assert done.evidence_ref == slot.evidence_ref and done.issuing_since is None
    with service.db.read() as s:
        cert = s.scalar(select(CertificateRecord).where(CertificateRecord.serial == done.serial_hex))
        assert cert is not None and cert.status == "on-hold"
        assert done.not_after == cert.not_after
    assert _certificates_of(service, order_id) == 1
    # The order continues as after a normal issuance: the card is personalised and can ship.
    assert "slot.reconciled" in _actions(service, order_id)
    order = env.ok("POST", f"/api/orders/{order_id}/ship", "caop")
    assert order["state"] == "shipped" and order["card_id"]
    # A second run finds nothing to do.
    assert service.reconcile_issuing(dt.timedelta(minutes=5)).recorded == ()
    assert _certificates_of(service, order_id) == 1


def test_failure_before_the_ca_stored_resets_the_slot_and_a_resubmission_issues_once(
    env: RAEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = env.service
    issuance = _issuance(service)
    order_id = _order_in_production(env)

    def die_before_signing(step: str) -> None:
        if step == "sign":
            raise Crash("process ended after the journal, before the HSM signed")

    # A real crash: nothing in the process settles the CA's reservation either.
    monkeypatch.setattr(issuance, "faults", die_before_signing)
    monkeypatch.setattr(issuance, "_settle_failed", lambda *args: None)
    with pytest.raises(Crash):
        service.submit_csr(CA_OPERATOR, order_id, "signature", _csr())
    monkeypatch.undo()
    slot = _slot(service, order_id)
    assert slot.state == "issuing" and _certificates_of(service, order_id) == 0

    later = dt.timedelta(minutes=6)
    service.clock = _later(service.clock, later)
    # The CA's journal still has the attempt open: it is left for its recovery.
    result = service.reconcile_issuing(dt.timedelta(minutes=5))
    assert result.pending == (slot.id,) and result.reset == () and result.recorded == ()
    assert _slot(service, order_id).state == "issuing"

    issuance.clock = _later(issuance.clock, later)
    settled = issuance.recover(CA_OPERATOR.actor(Role.CA_OPERATOR))
    assert len(settled) == 1 and settled[0].journaled
    result = service.reconcile_issuing(dt.timedelta(minutes=5))
    assert result.reset == (slot.id,) and result.recorded == ()
    reset = _slot(service, order_id)
    assert reset.state == "awaiting-csr" and reset.csr_sha256 is None and reset.evidence_ref is None
    assert "slot.issuance_abandoned" in _actions(service, order_id)

    issued = service.submit_csr(CA_OPERATOR, order_id, "signature", _csr())
    assert issued.state == "issued" and issued.serial_hex
    assert issued.evidence_ref is not None and issued.evidence_ref != slot.evidence_ref
    assert _certificates_of(service, order_id) == 1
    with service.db.read() as s:
        rows = s.execute(select(SerialReservation.state, func.count()).group_by(SerialReservation.state)).all()
    states = {str(state): int(n) for state, n in rows}
    assert states.get("failed") == 1 and states.get("reserved", 0) == 0


def test_a_refusal_settled_by_the_ca_is_reset_by_the_next_run(env: RAEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CA settled its reservation as failed but the process ended before the RA reset the slot."""
    service = env.service
    issuance = _issuance(service)
    order_id = _order_in_production(env)

    def hsm_gone(step: str) -> None:
        if step == "sign":
            raise RuntimeError("key backend vanished")

    def crash(*args: object, **kwargs: object) -> bool:
        raise Crash("process ended before the RA reset the slot")

    monkeypatch.setattr(issuance, "faults", hsm_gone)
    monkeypatch.setattr(service, "_reset_slot", crash)
    with pytest.raises(Crash):
        service.submit_csr(CA_OPERATOR, order_id, "signature", _csr())
    monkeypatch.undo()
    slot = _slot(service, order_id)
    assert slot.state == "issuing"
    service.clock = _later(service.clock, dt.timedelta(minutes=6))
    assert service.reconcile_issuing().reset == (slot.id,)
    assert _slot(service, order_id).state == "awaiting-csr"
    assert service.submit_csr(CA_OPERATOR, order_id, "signature", _csr()).state == "issued"
    assert _certificates_of(service, order_id) == 1
