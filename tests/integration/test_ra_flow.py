"""The RA end to end through the REST API, on SQLite and PostgreSQL with the real CA behind it:
signature card with OZB, seal card, UPC card and remote seal from application to activated
product; four-eyes approval; refusals."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from ca.store.models import AuditEvent, CertificateRecord
from tests.integration.helpers import assert_audit_chain
from tests.integration.ra_support import RAEnv, csr_pem


def _personalise_and_ship(env: RAEnv, order_id: int, slots: list[str]) -> int:
    for slot in slots:
        out = env.ok("POST", f"/api/orders/{order_id}/slots/{slot}/csr", "caop", json={"csr_pem": csr_pem()})
        assert out["state"] == "issued" and out["serial_hex"]
    order = env.ok("POST", f"/api/orders/{order_id}/ship", "caop")
    assert order["state"] == "shipped"
    return int(order["card_id"])


def test_signature_card_with_ozb_from_application_to_activated_card(env: RAEnv) -> None:
    env.applicant("erika", "Erika", "Mustermann", "1980-08-12")
    org_id, _ = env.organisation(
        signatories=[{"given_names": "Max", "surname": "Mustermann", "date_of_birth": "1970-01-01", "role": "GF"}]
    )
    sig_id = env.ok("GET", f"/api/organisations/{org_id}", "ra1")["signatories"][0]["id"]
    order_id = env.ok(
        "POST",
        "/api/orders",
        "erika",
        json={"product": "qes-card", "method": "postident-branch", "country": "DE", "organisation_id": org_id},
        status=201,
    )["id"]
    # Not ready: no identity, no OZB.
    r = env.call("POST", f"/api/orders/{order_id}/approve", "ra1")
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    codes = {f["code"] for f in r.get_json()["findings"]}
    assert {"qtsp.ra.order.identity_missing", "qtsp.ra.order.ozb_missing"} <= codes
    assert env.identity(order_id, "Erika", "Mustermann", "1980-08-12").status_code == 200
    assert env.ozb(order_id, sig_id).status_code == 200
    approval = env.ok("POST", f"/api/orders/{order_id}/approve", "ra1")
    assert approval["state"] == "in-production" and approval["needed"] == 1
    card_id = _personalise_and_ship(env, order_id, ["signature"])
    card = env.ok("GET", f"/api/cards/{card_id}", "erika")
    assert card["state"] == "not-activated"
    card = env.ok("POST", f"/api/cards/{card_id}/confirm-receipt", "erika")
    assert card["state"] == "valid"
    assert env.ok("GET", f"/api/orders/{order_id}", "erika")["state"] == "done"
    # The certificate carries the organisation from the OZB and the person's document identifier.
    with env.service.db.read() as s:
        subjects = [
            c.subject for c in s.scalars(select(CertificateRecord).where(CertificateRecord.profile == "qes-natural"))
        ]
        assert any("Musterfirma GmbH" in x and "Erika" in x for x in subjects)
        events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert_audit_chain(events)
    actions = [e.action for e in events if e.object_type == "order" and e.object_id == str(order_id)]
    assert actions[:1] == ["order.created"] and "order.approve" in actions and "order.complete" in actions


def test_seal_card_four_eyes_and_only_a_signatory_may_apply(env: RAEnv) -> None:
    env.applicant("max", "Max", "Mustermann", "1970-01-01")
    env.applicant("eve", "Eve", "Intruder", "1990-02-02")
    org_id, _ = env.organisation()
    body = {
        "product": "seal-card",
        "method": "on-site",
        "country": "DE",
        "organisation_id": org_id,
        "common_name": "Musterfirma Siegel",
    }
    r = env.call("POST", "/api/orders", "eve", json=body)
    assert r.status_code == 422 and "only an authorised signatory" in r.get_json()["detail"]
    order_id = env.ok("POST", "/api/orders", "max", json=body, status=201)["id"]
    assert env.identity(order_id, "Max", "Mustermann", "1970-01-01").status_code == 200
    first = env.ok("POST", f"/api/orders/{order_id}/approve", "ra1")
    assert first == {"state": "open", "approvals": [first["approvals"][0]], "needed": 2}
    r = env.call("POST", f"/api/orders/{order_id}/approve", "ra1")
    assert r.status_code == 409 and "second, different RA officer" in r.get_json()["detail"]
    assert env.ok("POST", f"/api/orders/{order_id}/approve", "ra2")["state"] == "in-production"
    card_id = _personalise_and_ship(env, order_id, ["seal"])
    # Automatic activation a configured time after shipping (default 24 h).
    assert env.service.activate_due() == []
    real_clock = env.service.clock
    env.service.clock = lambda: real_clock() + dt.timedelta(hours=24, seconds=1)
    try:
        assert env.service.activate_due() == [card_id]
    finally:
        env.service.clock = real_clock
    assert env.ok("GET", f"/api/cards/{card_id}", "max")["state"] == "valid"


def test_upc_card_two_slots(env: RAEnv) -> None:
    env.applicant("pa", "Paula", "Patent", "1975-05-05")
    order_id = env.ok(
        "POST",
        "/api/orders",
        "pa",
        json={"product": "upc-card", "method": "postident-eid", "country": "DE", "email": "paula@patent.example"},
        status=201,
    )["id"]
    assert env.identity(order_id, "Paula", "Patent", "1975-05-05").status_code == 200
    # The address goes into the authentication certificate: confirmed first (ra/email_confirmation.py).
    r = env.call("POST", f"/api/orders/{order_id}/approve", "ra1")
    assert r.status_code == 422 and "qtsp.ra.order.email_unconfirmed" in json.dumps(r.get_json()), r.get_json()
    env.confirm_email(order_id)
    env.ok("POST", f"/api/orders/{order_id}/approve", "ra1")
    assert env.ok("POST", f"/api/orders/{order_id}/approve", "ra2")["state"] == "in-production"
    r = env.call("POST", f"/api/orders/{order_id}/ship", "caop")
    assert r.status_code == 409  # not personalised yet
    card_id = _personalise_and_ship(env, order_id, ["signature", "authentication"])
    assert env.ok("POST", f"/api/cards/{card_id}/confirm-receipt", "pa")["state"] == "valid"
    with env.service.db.read() as s:
        profiles = sorted(
            c.profile for c in s.scalars(select(CertificateRecord).where(CertificateRecord.profile != "ocsp"))
        )
    assert "upc-auth" in profiles and "qes-natural" in profiles


def test_remote_seal_key_generated_in_the_backend(env: RAEnv) -> None:
    env.applicant("max", "Max", "Mustermann", "1970-01-01")
    org_id, _ = env.organisation()
    order_id = env.ok(
        "POST",
        "/api/orders",
        "max",
        json={
            "product": "remote-seal",
            "method": "notary",
            "country": "DE",
            "organisation_id": org_id,
            "common_name": "Remote Siegel",
        },
        status=201,
    )["id"]
    assert env.identity(order_id, "Max", "Mustermann", "1970-01-01").status_code == 200
    env.ok("POST", f"/api/orders/{order_id}/approve", "ra1")
    assert env.ok("POST", f"/api/orders/{order_id}/approve", "ra2")["state"] == "done"
    order = env.ok("GET", f"/api/orders/{order_id}", "max")
    assert order["slots"][0]["key_location"] == "hsm" and order["slots"][0]["state"] == "issued"
    assert env.ok("GET", f"/api/cards/{order['card_id']}", "max")["state"] == "valid"
