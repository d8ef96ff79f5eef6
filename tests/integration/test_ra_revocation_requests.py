"""Revocation requests (issue 6 point 3) on SQLite and PostgreSQL: by the holder, by the
revocation-authorised person with the revocation password (rate-limited in the database), by the
organisation for an affiliated card and by a revocation officer; each recorded with receipt time,
requester, authentication and decision, and carried out through the CA (EN 319 411-1 REV-6.2.4-09,
REV-6.4.5-09)."""

from __future__ import annotations

import datetime as dt
import json
import re

from sqlalchemy import select, update

from ca.store.models import AuditEvent, CertificateRecord, StatusEntry
from ra.errors import RAError, RAErrorKind
from ra.outbox import Channel, SpoolGateway
from ra.service import PASSWORD_FAILURES_PER_CARD
from ra.store.models import RevocationPassword, RevocationRequest
from tests.integration.ra_support import RAEnv, csr_pem

SECRET = "Sperr-Passwort 2026!"


def _card(env: RAEnv, *, organisation: bool = False) -> tuple[int, int]:
    """A shipped card of applicant "a" (affiliated with an organisation if asked): (order, card)."""
    if "a" not in env.tokens:
        env.applicant("a", "Anna", "A", "1980-01-01")
    body: dict[str, object] = {"product": "qes-card", "method": "on-site", "country": "DE"}
    sig_id = None
    if organisation:
        org_id, sig_id = env.organisation()
        body.update(method="postident-branch", organisation_id=org_id)
    order = env.ok("POST", "/api/orders", "a", json=body, status=201)["id"]
    env.identity(order, "Anna", "A", "1980-01-01")
    if organisation:
        assert env.ozb(order, sig_id).status_code == 200
    env.ok("POST", f"/api/orders/{order}/approve", "ra1")
    env.ok("POST", f"/api/orders/{order}/slots/signature/csr", "caop", json={"csr_pem": csr_pem()})
    return order, int(env.ok("POST", f"/api/orders/{order}/ship", "caop")["card_id"])


def _ca_status(env: RAEnv, order: int) -> str:
    serial = env.slot_serial(order)
    with env.service.db.read() as s:
        status = s.scalar(select(CertificateRecord.status).where(CertificateRecord.serial == serial))
    assert status is not None
    return status


def _requests(env: RAEnv, card: int | None = None) -> list[RevocationRequest]:
    with env.service.db.read() as s:
        stmt = select(RevocationRequest).order_by(RevocationRequest.id)
        if card is not None:
            stmt = stmt.where(RevocationRequest.card_id == card)
        rows = list(s.scalars(stmt))
        s.expunge_all()
    return rows


def _audit_text(env: RAEnv) -> str:
    with env.service.db.read() as s:
        return json.dumps([(e.actor, e.action, e.details) for e in s.scalars(select(AuditEvent))], default=str)


def _by_password(env: RAEnv, card: int, password: str, reason: str = "keyCompromise") -> object:
    body = {"card_id": card, "password": password, "reason": reason, "requester_name": "Paul Prokurist"}
    return env.call("POST", "/api/revocations", json=body)


def test_holder_request_is_recorded_and_carried_out(env: RAEnv) -> None:
    order, card = _card(env)
    before = dt.datetime.now(dt.UTC)
    assert env.ok("POST", f"/api/cards/{card}/revoke", "a", json={"reason": "keyCompromise"})["state"] == "revoked"
    assert _ca_status(env, order) == "revoked"
    [row] = _requests(env, card)
    assert (row.requester_kind, row.authenticated_by, row.decision, row.reason) == (
        "holder",
        "session",
        "carried-out",
        "keyCompromise",
    )
    assert row.requester == f"account:{env.ids['a']}:a@example.org"
    assert row.received_at >= before - dt.timedelta(seconds=1) and row.carried_out_at is not None
    # The holder may not withdraw a privilege: that is the revocation officer's reason.
    r = env.call("POST", f"/api/cards/{card}/revoke", "a", json={"reason": "privilegeWithdrawn"})
    assert r.status_code == 422 and r.mimetype == "application/problem+json"


def test_authorised_person_revokes_with_the_password(env: RAEnv) -> None:
    order, card = _card(env)
    out = env.ok(
        "PUT",
        f"/api/cards/{card}/revocation-password",
        "a",
        json={"password": SECRET, "authorised_person": "Paul Prokurist"},
    )
    assert out["card_id"] == card and "password" not in out
    # Nobody else sets it; too short a password is refused.
    assert (
        env.call("PUT", f"/api/cards/{card}/revocation-password", "ra1", json={"password": SECRET}).status_code == 403
    )
    assert env.call("PUT", f"/api/cards/{card}/revocation-password", "a", json={"password": "short"}).status_code == 400
    with env.service.db.read() as s:
        stored = s.scalar(select(RevocationPassword.password_hash).where(RevocationPassword.card_id == card))
    assert stored is not None and stored.startswith("$argon2") and SECRET not in stored
    r = _by_password(env, card, SECRET)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["state"] == "revoked" and SECRET not in r.get_data(as_text=True)
    assert _ca_status(env, order) == "revoked"
    [row] = _requests(env, card)
    assert (row.requester_kind, row.authenticated_by, row.decision) == (
        "authorised-person",
        "revocation-password",
        "carried-out",
    )
    assert row.requester == "revocation-authorised:Paul Prokurist" and row.client_address == "127.0.0.1"
    assert SECRET not in _audit_text(env)
    for caller in ("a", "ra1", "revo", "aud"):
        assert SECRET not in env.call("GET", f"/api/cards/{card}", caller).get_data(as_text=True)


def test_wrong_passwords_are_recorded_and_rate_limited(env: RAEnv) -> None:
    order, card = _card(env)
    env.ok("PUT", f"/api/cards/{card}/revocation-password", "a", json={"password": SECRET})
    for _ in range(PASSWORD_FAILURES_PER_CARD):
        r = _by_password(env, card, "wrong password 123")
        assert r.status_code == 403 and r.mimetype == "application/problem+json"
    # An unknown card gives the same answer (existence is not revealed) and is recorded too.
    unknown = _by_password(env, 999_999, SECRET)
    assert unknown.status_code == 403 and unknown.get_json()["detail"] == r.get_json()["detail"]
    limited = _by_password(env, card, "wrong password 123")
    assert limited.status_code == 429 and limited.get_json()["type"].endswith("rate_limited")
    assert 0 < int(limited.headers["Retry-After"]) <= 3600
    # Within the window even the right password is refused.
    assert _by_password(env, card, SECRET).status_code == 429
    assert env.ok("GET", f"/api/cards/{card}", "a")["state"] == "not-activated"
    assert _ca_status(env, order) == "on-hold"
    rows = _requests(env, card)
    assert len(rows) == PASSWORD_FAILURES_PER_CARD + 2
    assert all(x.decision == "refused" and x.authenticated_by == "revocation-password" for x in rows)
    assert [x.auth_failed for x in rows] == [True] * PASSWORD_FAILURES_PER_CARD + [False, False]
    assert [x.card_ref for x in _requests(env) if x.card_id is None] == ["999999"]
    with env.service.db.read() as s:
        refused = [e for e in s.scalars(select(AuditEvent)) if e.action == "card.revocation_refused"]
    assert len(refused) == PASSWORD_FAILURES_PER_CARD + 3
    text = _audit_text(env)
    assert SECRET not in text and "wrong password 123" not in text
    # Once the window has passed (the failures are older than an hour), the right password works.
    with env.service.db.write() as s:
        s.execute(update(RevocationRequest).values(received_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)))
    assert _by_password(env, card, SECRET).status_code == 200
    assert _ca_status(env, order) == "revoked"


def test_organisation_revokes_affiliated_cards_only(env: RAEnv) -> None:
    order, card = _card(env, organisation=True)
    body = {"reason": "affiliationChanged", "requester_name": "Max Mustermann (GF)"}
    # The organisation revokes for affiliationChanged only.
    r = env.call("POST", f"/api/cards/{card}/revoke", "ra1", json={"reason": "keyCompromise"})
    assert r.status_code == 422
    assert env.ok("POST", f"/api/cards/{card}/revoke", "ra1", json=body)["state"] == "revoked"
    assert _ca_status(env, order) == "revoked"
    refused, done = _requests(env, card)
    assert (refused.requester_kind, refused.decision) == ("organisation", "refused")
    assert (done.requester_kind, done.authenticated_by, done.decision, done.reason) == (
        "organisation",
        "session-totp",
        "carried-out",
        "affiliationChanged",
    )
    assert "Max Mustermann (GF)" in done.requester


def test_organisation_request_refused_on_a_card_without_affiliation(env: RAEnv) -> None:
    order, card = _card(env)
    r = env.call("POST", f"/api/cards/{card}/revoke", "ra1", json={"reason": "affiliationChanged"})
    assert r.status_code == 422 and "not affiliated" in r.get_json()["detail"]
    assert env.ok("GET", f"/api/cards/{card}", "a")["state"] == "not-activated"
    assert _ca_status(env, order) == "on-hold"
    [row] = _requests(env, card)
    assert (row.requester_kind, row.decision) == ("organisation", "refused") and "not affiliated" in (row.detail or "")


def test_revocation_officer_withdraws_a_privilege(env: RAEnv) -> None:
    order, card = _card(env)
    env.ok("POST", f"/api/cards/{card}/confirm-receipt", "a")
    out = env.ok("POST", f"/api/cards/{card}/revoke", "revo", json={"reason": "privilegeWithdrawn"})
    assert out["state"] == "revoked" and out["revocation_reason"] == "privilegeWithdrawn"
    assert _ca_status(env, order) == "revoked"
    [row] = _requests(env, card)
    assert (row.requester_kind, row.authenticated_by, row.decision) == (
        "revocation-officer",
        "session-totp",
        "carried-out",
    )
    # Revoked is final (REV-6.3.9-04): a second request is refused and recorded.
    r = env.call("POST", f"/api/cards/{card}/revoke", "revo", json={"reason": "keyCompromise"})
    assert r.status_code == 409
    assert [x.decision for x in _requests(env, card)] == ["carried-out", "refused"]


class _CAOutage:
    """The real CA behind the port, whose revocation first fails (the CA host unreachable), or
    succeeds and then loses the answer (the RA process ends right after the CA's commit)."""

    def __init__(self, real: object, *, after_commit: bool = False) -> None:
        self._real = real
        self._after_commit = after_commit
        self.calls = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def revoke(self, *args: object, **kwargs: object) -> None:
        self.calls += 1
        if self._after_commit:
            self._real.revoke(*args, **kwargs)  # type: ignore[attr-defined]
        raise RAError(RAErrorKind.CA_UNAVAILABLE, "connection to the CA lost")


def _metric(env: RAEnv, name: str) -> float:
    from prometheus_client.core import Metric

    from qtsp.observability import DatabaseFigures

    class _RT:
        db = env.service.db

    metrics: list[Metric] = list(DatabaseFigures(_RT).collect())  # type: ignore[arg-type, return-value]
    [value] = [s.value for m in metrics for s in m.samples if s.name == name]
    return value


def test_accepted_request_is_carried_out_by_the_job_after_a_ca_outage(env: RAEnv) -> None:
    order, card = _card(env)
    real = env.service.ca
    env.service.ca = _CAOutage(real)  # type: ignore[assignment]
    r = env.call("POST", f"/api/cards/{card}/revoke", "a", json={"reason": "keyCompromise"})
    assert r.status_code == 503
    [row] = _requests(env, card)
    assert row.decision == "accepted" and row.carried_out_at is None
    assert env.ok("GET", f"/api/cards/{card}", "a")["state"] == "revocation-in-progress"
    assert _ca_status(env, order) == "on-hold"
    assert _metric(env, "qtsp_ra_revocations_pending") == 1
    assert _metric(env, "qtsp_ra_revocations_pending_oldest_seconds") >= 0

    # Not before a minute has passed (the request itself may still be finishing), and the CA still down.
    assert env.service.complete_pending_revocations() == ([], [])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    env.service.clock = lambda: later
    assert env.service.complete_pending_revocations() == ([], [row.id])
    env.service.ca = real
    assert env.service.complete_pending_revocations() == ([row.id], [])
    assert _ca_status(env, order) == "revoked"
    [row] = _requests(env, card)
    assert row.decision == "carried-out" and row.carried_out_at == later
    assert env.ok("GET", f"/api/cards/{card}", "a")["state"] == "revoked"
    assert _metric(env, "qtsp_ra_revocations_pending") == 0
    # The CA recorded the original receipt time (REV-6.2.4-03A counts from it), not the retry's.
    with env.service.db.read() as s:
        received = s.scalar(select(StatusEntry.received_at).where(StatusEntry.serial == env.slot_serial(order)))
    assert received == row.received_at
    assert env.service.complete_pending_revocations() == ([], [])


def test_retry_after_the_ca_committed_does_not_revoke_twice(env: RAEnv) -> None:
    order, card = _card(env)
    real = env.service.ca
    env.service.ca = outage = _CAOutage(real, after_commit=True)  # type: ignore[assignment]
    assert env.call("POST", f"/api/cards/{card}/revoke", "a", json={"reason": "keyCompromise"}).status_code == 503
    assert outage.calls == 1 and _ca_status(env, order) == "revoked"
    env.service.ca = real
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    env.service.clock = lambda: later
    [row] = _requests(env, card)
    assert env.service.complete_pending_revocations() == ([row.id], [])
    assert env.ok("GET", f"/api/cards/{card}", "a")["state"] == "revoked"
    with env.service.db.read() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "certificate.revoked"))]
    assert len(actions) == 1


def _letter_password(env: RAEnv, reference: str) -> str:
    """Send the outbox and read the password from the spooled letter (the development gateway)."""
    spool = env.service.gateways[Channel.POST]
    assert isinstance(spool, SpoolGateway)
    assert reference in env.service.dispatch_outbox().sent
    [password] = re.findall(r"^    ([A-Z0-9]{4}(?:-[A-Z0-9]{4}){3})$", spool.read(Channel.POST, reference), re.M)
    return password


def test_ra_generates_the_password_and_posts_it_to_the_authorised_person(env: RAEnv) -> None:
    order, card = _card(env)
    env.ok("PUT", f"/api/cards/{card}/revocation-password", "a", json={"password": SECRET})
    body = {"authorised_person": "Paul  Prokurist", "postal_address": "Muster GmbH\nHauptstr. 1\n10115 Berlin"}
    out = env.ok("POST", f"/api/cards/{card}/revocation-password/letter", "a", json=body, status=201)
    assert set(out) == {"card_id", "set_at", "letter"}
    password = _letter_password(env, out["letter"])
    assert password not in _audit_text(env) and password not in json.dumps(out)
    # The holder's earlier password is replaced; the letter's one revokes.
    assert _by_password(env, card, SECRET).status_code == 403
    r = _by_password(env, card, password)
    assert r.status_code == 200 and r.get_json()["state"] == "revoked"
    assert _ca_status(env, order) == "revoked"
    with env.service.db.read() as s:
        stored = s.get(RevocationPassword, card)
        assert stored is not None and stored.authorised_person == "Paul Prokurist"
        assert password not in stored.password_hash
    # Revoked: no new password can be issued.
    r = env.call("POST", f"/api/cards/{card}/revocation-password/letter", "a", json=body)
    assert r.status_code == 409


def test_revocation_letter_rules(env: RAEnv) -> None:
    _, card = _card(env)
    _, affiliated = _card(env, organisation=True)
    body = {"authorised_person": "Paul Prokurist", "postal_address": "Muster GmbH\n10115 Berlin"}
    r = env.call("POST", f"/api/cards/{card}/revocation-password/letter", "ra1", json=body)
    assert r.status_code == 422 and "not affiliated" in r.get_json()["detail"]
    env.ok("POST", f"/api/cards/{affiliated}/revocation-password/letter", "ra1", json=body, status=201)
    r = env.call(
        "POST", f"/api/cards/{card}/revocation-password/letter", "a", json={**body, "postal_address": "one line"}
    )
    assert r.status_code == 400 and "postal_address" in r.get_json()["detail"]
    env.applicant("b", "Bert", "B", "1970-01-01")
    assert env.call("POST", f"/api/cards/{card}/revocation-password/letter", "b", json=body).status_code == 404


def test_revocation_requests_are_readable_by_holder_and_officers(env: RAEnv) -> None:
    _, card = _card(env)
    env.ok("PUT", f"/api/cards/{card}/revocation-password", "a", json={"password": SECRET})
    assert _by_password(env, card, "wrong password 123").status_code == 403
    own = env.ok("GET", f"/api/cards/{card}/revocation-requests", "a")
    assert [(r["decision"], r["authenticated_by"], r["auth_failed"]) for r in own] == [
        ("refused", "revocation-password", True)
    ]
    assert "client_address" not in own[0]  # never shown to the holder
    audited = env.ok("GET", f"/api/cards/{card}/revocation-requests", "aud")
    assert audited[0]["client_address"] == "127.0.0.1"
    env.applicant("b", "Bert", "B", "1970-01-01")
    assert env.call("GET", f"/api/cards/{card}/revocation-requests", "b").status_code == 404
