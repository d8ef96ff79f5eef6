"""SMS-TAN (issue 6 point 4, seed 000) on SQLite and PostgreSQL: the mobile number given with the
first application or registered later with a posted registration secret; one-time TANs through
the outbox (single use, short validity, bound to card and purpose, rate-limited in the database);
revocation by TAN carried out through the CA; portal-ordered cards refuse every TAN operation;
no TAN, secret or full number in responses or the audit log."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select, update

from ca.store.models import AuditEvent, CertificateRecord
from ra.errors import RAError, RAErrorKind
from ra.outbox import Channel, SpoolGateway
from ra.store.models import OutboxMessage, RegistrationSecret, RevocationRequest, SmsMobile, Tan, TanFailure
from ra.tan import (
    TAN_ATTEMPTS,
    TAN_FAILURES_PER_ADDRESS,
    TAN_FAILURES_PER_CARD,
    TAN_REFUSAL,
    TAN_REQUEST_ANSWER,
    TAN_REQUESTS_PER_ADDRESS,
    TAN_REQUESTS_PER_CARD,
    TanService,
)
from tests.integration.helpers import race
from tests.integration.ra_support import RAEnv, csr_pem

MOBILE = "+49 151 2345 6789"
E164 = "+4915123456789"
ADDRESS = "Hanna Holder\nMusterstraße 1\n10115 Berlin"
HOLDER = ("Hanna", "Holder", "1981-02-03")


def _card(env: RAEnv, *, channel: str = "partner", mobile: str | None = MOBILE, who: str = "h") -> tuple[int, int]:
    """A shipped card of applicant ``who`` (created on first use): (order, card)."""
    if who not in env.tokens:
        env.applicant(who, *HOLDER)
    body: dict[str, Any] = {
        "product": "qes-card",
        "method": "on-site",
        "country": "DE",
        "channel": channel,
        "postal_address": ADDRESS,
    }
    if mobile is not None:
        body["mobile"] = mobile
    order = env.ok("POST", "/api/orders", who, json=body, status=201)["id"]
    env.identity(order, *HOLDER)
    env.ok("POST", f"/api/orders/{order}/approve", "ra1")
    env.ok("POST", f"/api/orders/{order}/slots/signature/csr", "caop", json={"csr_pem": csr_pem()})
    return order, int(env.ok("POST", f"/api/orders/{order}/ship", "caop")["card_id"])


def _spool(env: RAEnv, channel: Channel) -> SpoolGateway:
    gateway = env.service.gateways[channel]
    assert isinstance(gateway, SpoolGateway)
    return gateway


def _request(env: RAEnv, card: int, purpose: str = "revocation") -> dict[str, Any]:
    """Ask for a TAN as anyone may; the answer is the same whatever happened (checked here)."""
    body = env.ok("POST", "/api/tans", json={"card_id": card, "purpose": purpose}, status=202)
    assert body == {"card_id": card, "purpose": purpose, "detail": _answer(card, purpose)}, body
    return dict(body)


def _answer(card: int, purpose: str) -> str:
    wording = "revoke" if purpose == "revocation" else "order a follow-up card for"
    return TAN_REQUEST_ANSWER.format(card_id=card, wording=wording, minutes=5)


def _last_sms(env: RAEnv, card: int) -> OutboxMessage | None:
    with env.service.db.read() as s:
        stmt = select(OutboxMessage).where(OutboxMessage.card_id == card, OutboxMessage.channel == "sms")
        return s.scalars(stmt.order_by(OutboxMessage.id.desc())).first()


def _tan(env: RAEnv, card: int, purpose: str = "revocation") -> tuple[str, OutboxMessage]:
    """Request a TAN; read it from the spooled SMS (sent once the answer was closed).  Returns
    (TAN, the SMS's outbox row)."""
    before = _last_sms(env, card)
    body = _request(env, card, purpose)
    sms = _last_sms(env, card)
    assert sms is not None and (before is None or sms.id != before.id), "no SMS was queued"
    assert sms.state == "sent"  # dispatched after the answer, before the call returned
    text = _spool(env, Channel.SMS).read(Channel.SMS, sms.reference)
    found = re.match(r"^(\d{6}) is your TAN", text)
    assert found is not None, text
    assert found.group(1) not in json.dumps(body)  # the TAN never comes back in the response
    return found.group(1), sms


def _refused_request(env: RAEnv, card: int, words: str, purpose: str = "revocation") -> None:
    """A TAN request that sends nothing: the caller gets the usual answer, the audit log the reason."""
    before = _last_sms(env, card)
    _request(env, card, purpose)
    after = _last_sms(env, card)
    assert (after.id if after else None) == (before.id if before else None), "an SMS was queued"
    with env.service.db.read() as s:
        event = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_type == "card", AuditEvent.object_id == str(card))
            .order_by(AuditEvent.seq.desc())
        ).first()
    assert event is not None and event.action == "card.tan_request_refused", event
    assert words in json.loads(event.details)["detail"], event.details


def _refused_revocation(env: RAEnv, card: int, tan: str, words: str) -> None:
    """A refused revocation by TAN: the caller gets TAN_REFUSAL, the request record the reason."""
    _problem(_revoke(env, card, tan), 403, TAN_REFUSAL)
    with env.service.db.read() as s:
        row = s.scalars(
            select(RevocationRequest)
            .where(RevocationRequest.card_ref == str(card))
            .order_by(RevocationRequest.id.desc())
        ).first()
    assert row is not None and row.decision == "refused" and row.auth_failed, row
    assert row.detail is not None and words in row.detail, row.detail


def _revoke(env: RAEnv, card: int, tan: str) -> Any:
    return env.call("POST", "/api/revocations/sms-tan", json={"card_id": card, "tan": tan, "reason": "keyCompromise"})


def _secret(env: RAEnv, card: int, who: str = "h") -> str:
    body = env.ok("POST", f"/api/cards/{card}/registration-secret", who, status=202)
    text = _spool(env, Channel.POST).read(Channel.POST, body["reference"])
    found = re.search(r"card \d+: ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})", text)
    assert found is not None, text
    assert found.group(1) not in json.dumps(body)
    return found.group(1)


def _audit_text(env: RAEnv) -> str:
    with env.service.db.read() as s:
        text = json.dumps([(e.actor, e.action, e.details) for e in s.scalars(select(AuditEvent))], default=str)
    return _strip_times(text)


def _strip_times(text: str) -> str:
    """Times have 6-digit microseconds and logs epoch fractions: drop them before looking for a TAN."""
    text = re.sub(r"\d{4}-\d\d-\d\d[T ][0-9:.,+]+", "<time>", text)
    return re.sub(r"\d+\.\d+", "<number>", text)


def _actions(env: RAEnv, card: int) -> list[str]:
    with env.service.db.read() as s:
        stmt = select(AuditEvent.action).where(AuditEvent.object_type == "card", AuditEvent.object_id == str(card))
        return list(s.scalars(stmt.order_by(AuditEvent.seq)))


def _ca_status(env: RAEnv, order: int) -> str:
    serial = env.slot_serial(order)
    with env.service.db.read() as s:
        status = s.scalar(select(CertificateRecord.status).where(CertificateRecord.serial == serial))
    assert status is not None
    return status


def _problem(r: Any, status: int, words: str) -> dict[str, Any]:
    body = r.get_json()
    assert r.status_code == status, (r.status_code, body)
    assert r.mimetype == "application/problem+json" and words in body["detail"], body
    return dict(body)


# Each test runs a few scenarios on one RA (setting one up costs seconds); each scenario uses its
# own cards, and every limit it exercises is per card (the per-address limits stay far away).


def test_number_with_first_application_revocation_by_tan_and_portal_refusals(
    env: RAEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ra")
    tan = _first_application_then_revocation_by_tan(env)
    assert caplog.records  # the spool gateway logged the SMS, by its metadata only
    standard = set(logging.makeLogRecord({}).__dict__)
    extras = [{k: v for k, v in r.__dict__.items() if k not in standard} for r in caplog.records]
    logged = " ".join(r.getMessage() for r in caplog.records) + json.dumps(extras, default=str)
    assert tan not in logged and E164 not in logged
    _portal_ordered_cards_refuse_every_tan_operation(env)


def test_registration_with_the_posted_secret_and_its_limits(env: RAEnv) -> None:
    _later_registration_with_the_posted_secret(env)
    _wrong_secrets_kill_the_secret_then_are_rate_limited(env)


def test_tan_rules_request_flood_and_concurrent_use(env: RAEnv) -> None:
    _binding_expiry_supersession_and_wrong_attempts(env)
    _a_flood_of_tan_requests_is_refused(env)
    _concurrent_use_of_one_tan_succeeds_exactly_once(env)


def _first_application_then_revocation_by_tan(env: RAEnv) -> str:
    order, card = _card(env)
    assert env.ok("GET", f"/api/orders/{order}", "h")["channel"] == "partner"
    status = env.ok("GET", f"/api/cards/{card}/sms-tan", "h")
    assert status["offered"] is True and status["source"] == "application"
    assert status["mobile"] == "+49*********89" and E164 not in json.dumps(status)
    with env.service.db.read() as s:
        stored = s.get(SmsMobile, order)
        assert stored is not None and E164.encode() not in stored.number  # encrypted with the data key

    tan, sent = _tan(env, card)
    assert sent.recipient_hint == "+49*********89" and sent.purpose == "sms-tan-revocation"
    before = dt.datetime.now(dt.UTC)
    done = env.ok(
        "POST",
        "/api/revocations/sms-tan",
        json={"card_id": card, "tan": tan, "reason": "keyCompromise", "requester_name": "Hanna"},
    )
    assert done["state"] == "revoked" and tan not in json.dumps(done)
    assert _ca_status(env, order) == "revoked"
    with env.service.db.read() as s:
        [req] = s.scalars(select(RevocationRequest).where(RevocationRequest.card_id == card)).all()
        assert (req.requester_kind, req.authenticated_by, req.decision, req.reason) == (
            "holder",
            "sms-tan",
            "carried-out",
            "keyCompromise",
        )
        assert req.received_at >= before - dt.timedelta(seconds=1) and req.requester == "sms-tan:+49*********89 (Hanna)"
        row = s.scalar(select(OutboxMessage).where(OutboxMessage.reference == sent.reference))
        assert row is not None and (row.state, row.payload) == ("sent", None)  # text wiped once sent
    # Single use: the same TAN again is refused; a revoked card gets no more TANs.
    _refused_revocation(env, card, tan, "no valid TAN")
    _refused_request(env, card, "the card is revoked")
    # (the card's other events, e.g. its transport PIN destroyed at revocation, may interleave)
    tan_flow = {"card.tan_issued", "card.tan_used", "card.revocation_requested", "card.revoked", "card.tan_refused"}
    tan_flow |= {"card.revocation_refused", "card.tan_request_refused"}
    assert [a for a in _actions(env, card) if a in tan_flow][-7:] == [
        "card.tan_issued",
        "card.tan_used",
        "card.revocation_requested",
        "card.revoked",
        "card.tan_refused",
        "card.revocation_refused",
        "card.tan_request_refused",
    ]
    text = _audit_text(env)
    assert tan not in text and E164 not in text and "+49*********89" in text
    return tan


def _later_registration_with_the_posted_secret(env: RAEnv) -> None:
    _, card = _card(env, mobile=None)
    _refused_request(env, card, "no mobile number")
    # Another applicant cannot ask for the holder's letter; an RA officer may (it goes to the registered address).
    env.applicant("x", "Xaver", "Other", "1970-05-05")
    assert env.call("POST", f"/api/cards/{card}/registration-secret", "x").status_code == 404
    first = _secret(env, card, "ra1")
    secret = _secret(env, card)  # supersedes the first
    letter = next((_spool(env, Channel.POST).directory / "post").glob("*.txt")).read_text(encoding="utf-8")
    assert letter.startswith("To: " + ADDRESS + "\n")  # the registered address, nowhere else

    _problem(env.call("PUT", f"/api/cards/{card}/mobile", "h", json={"secret": first, "mobile": MOBILE}), 403, "wrong")
    _problem(
        env.call("PUT", f"/api/cards/{card}/mobile", "h", json={"secret": secret, "mobile": "0151 123"}), 400, "E.164"
    )
    assert (
        env.call("PUT", f"/api/cards/{card}/mobile", "x", json={"secret": secret, "mobile": MOBILE}).status_code == 404
    )
    got = env.ok("PUT", f"/api/cards/{card}/mobile", "h", json={"secret": secret.lower(), "mobile": MOBILE})
    assert (got["mobile"], got["source"]) == ("+49*********89", "registration-secret")
    # Single use.
    _problem(env.call("PUT", f"/api/cards/{card}/mobile", "h", json={"secret": secret, "mobile": MOBILE}), 403, "wrong")

    tan, _ = _tan(env, card)
    # Changing the number needs a new secret; TANs sent to the old number die with it.
    again = _secret(env, card)
    # An expired secret is refused (and not counted as a wrong one).
    with env.service.db.write() as s:
        s.execute(
            update(RegistrationSecret)
            .where(RegistrationSecret.state == "active")
            .values(expires_at=dt.datetime.now(dt.UTC))
        )
    body = {"secret": again, "mobile": "+43 664 1234567"}
    _problem(env.call("PUT", f"/api/cards/{card}/mobile", "h", json=body), 403, "expired")
    with env.service.db.write() as s:
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        s.execute(update(RegistrationSecret).where(RegistrationSecret.state == "active").values(expires_at=later))
    env.ok("PUT", f"/api/cards/{card}/mobile", "h", json=body)
    assert env.ok("GET", f"/api/cards/{card}/sms-tan", "ra1")["mobile"] == "+43********67"
    _refused_revocation(env, card, tan, "no valid TAN")
    actions = _actions(env, card)
    assert actions.count("card.registration_secret_requested") == 3
    assert "card.mobile_registered" in actions and "card.mobile_changed" in actions
    with env.service.db.read() as s:
        states = list(s.scalars(select(RegistrationSecret.state).order_by(RegistrationSecret.id)))
    assert states == ["superseded", "used", "used"]
    # At most three letters per card and day.
    r = env.call("POST", f"/api/cards/{card}/registration-secret", "h")
    _problem(r, 429, "per card and day")
    assert int(r.headers["Retry-After"]) > 3600
    text = _audit_text(env)
    for value in (secret, again, first, E164, "+436641234567"):
        assert value not in text


def _wrong_secrets_kill_the_secret_then_are_rate_limited(env: RAEnv) -> None:
    _, card = _card(env, mobile=None)
    secret = _secret(env, card)
    url = f"/api/cards/{card}/mobile"
    for _ in range(3):
        _problem(env.call("PUT", url, "h", json={"secret": "AAAA-BBBB-CCCC-DDDD", "mobile": MOBILE}), 403, "wrong")
    # Three wrong entries killed it: the right secret is refused now.
    _problem(env.call("PUT", url, "h", json={"secret": secret, "mobile": MOBILE}), 403, "wrong or no valid")
    _problem(env.call("PUT", url, "h", json={"secret": secret, "mobile": MOBILE}), 403, "wrong or no valid")
    limited = env.call("PUT", url, "h", json={"secret": secret, "mobile": MOBILE})
    _problem(limited, 429, "too many wrong registration secrets")
    assert 0 < int(limited.headers["Retry-After"]) <= 3600
    # A fresh secret is still refused within the window: the limit holds per card.
    fresh = _secret(env, card)
    _problem(env.call("PUT", url, "h", json={"secret": fresh, "mobile": MOBILE}), 429, "too many")
    assert env.ok("GET", f"/api/cards/{card}/sms-tan", "h")["mobile"] is None


def _binding_expiry_supersession_and_wrong_attempts(env: RAEnv) -> None:
    order, card = _card(env)
    _, other = _card(env)
    tans = TanService(env.service)

    # Bound to purpose and card.
    follow_up, _ = _tan(env, card, "follow-up")
    _refused_revocation(env, card, follow_up, "no valid TAN for revocation")
    revocation, _ = _tan(env, card)
    _refused_revocation(env, other, revocation, "no valid TAN")

    # The follow-up flow's entry point: verify_tan consumes the TAN in the caller's transaction.
    with env.service.db.write() as s:
        verdict = tans.verify_tan(s, card, "follow-up", follow_up)
    assert verdict.ok and verdict.refusal is None
    with env.service.db.write() as s:
        again = tans.verify_tan(s, card, "follow-up", follow_up)
    assert not again.ok and again.refusal is not None

    # Expired.
    with env.service.db.write() as s:
        s.execute(update(Tan).where(Tan.card_id == card).values(expires_at=dt.datetime.now(dt.UTC)))
    _refused_revocation(env, card, revocation, "expired")

    # A new TAN supersedes the unused one and withdraws its SMS while still queued.
    gateways = env.service.gateways
    env.service.gateways = {}  # no carrier: the SMS stays queued
    try:
        _request(env, other)
        old = _last_sms(env, other)
        _request(env, other)
    finally:
        env.service.gateways = gateways
    assert old is not None
    with env.service.db.read() as s:
        row = s.scalar(select(OutboxMessage).where(OutboxMessage.reference == old.reference))
        assert row is not None and (row.state, row.payload) == ("cancelled", None)
        assert list(s.scalars(select(Tan.state).where(Tan.card_id == other).order_by(Tan.id))) == [
            "superseded",
            "active",
        ]

    # Three wrong TANs kill it: then even the right one is refused (another card: the refusals
    # above count against this one's limit, as every refused TAN does).
    order, card = _card(env)
    right, _ = _tan(env, card)
    wrong = "000000" if right != "000000" else "111111"
    for n in range(1, TAN_ATTEMPTS + 1):
        _refused_revocation(env, card, wrong, "now invalid" if n == TAN_ATTEMPTS else "wrong TAN")
    _refused_revocation(env, card, right, "no valid TAN")
    # Refused TANs per card and hour: past the limit even a fresh, right TAN is refused (429).
    fresh, _ = _tan(env, card)
    for _ in range(TAN_FAILURES_PER_CARD - TAN_ATTEMPTS - 1):
        _refused_revocation(env, card, wrong if fresh != wrong else "222222", "wrong TAN")
    limited = _revoke(env, card, fresh)
    _problem(limited, 429, "too many wrong TANs")
    assert 0 < int(limited.headers["Retry-After"]) <= 3600
    assert _ca_status(env, order) != "revoked"
    with env.service.db.read() as s:
        refused = s.scalars(
            select(RevocationRequest).where(RevocationRequest.card_id == card, RevocationRequest.auth_failed.is_(True))
        ).all()
        assert len(refused) == TAN_FAILURES_PER_CARD and {r.authenticated_by for r in refused} == {"sms-tan"}
    text = _audit_text(env)
    for value in (follow_up, revocation, right, fresh):
        assert value not in text


def _a_flood_of_tan_requests_is_refused(env: RAEnv) -> None:
    _, card = _card(env)
    for _ in range(TAN_REQUESTS_PER_CARD):
        _tan(env, card)
    # Past the card's limit nothing is sent; the caller is told what every caller is told.
    _refused_request(env, card, "too many TAN requests for this card", "follow-up")
    with env.service.db.read() as s:
        assert len(s.scalars(select(Tan).where(Tan.card_id == card)).all()) == TAN_REQUESTS_PER_CARD
    # Unknown cards: the same answer, recorded and audited all the same.
    _refused_request(env, 999999, "no card 999999")
    # A revocation by TAN for a card that does not exist is refused as a wrong TAN is, and still
    # recorded (REV-6.4.5-09) with the real reason.
    _refused_revocation(env, 999999, "123456", "no card 999999")
    with env.service.db.read() as s:
        row = s.scalars(select(RevocationRequest).where(RevocationRequest.card_ref == "999999")).one()
    assert (row.card_id, row.authenticated_by, row.decision) == (None, "sms-tan", "refused")
    # ... and limited per card id as an existing card is (429 after TAN_FAILURES_PER_CARD).
    for _ in range(TAN_FAILURES_PER_CARD - 1):
        _refused_revocation(env, 999999, "123456", "no card 999999")
    _problem(_revoke(env, 999999, "123456"), 429, "too many wrong TANs")
    # What depends on the request alone is still told: a malformed purpose or TAN.
    assert env.call("POST", "/api/tans", json={"card_id": card, "purpose": "login"}).status_code == 422
    _problem(_revoke(env, 999998, "12345"), 400, "6 digits")

    # Per client address: TAN requests and wrong TANs over all cards (rows of another card stand in
    # for a caller who spread them over many).
    _, fresh = _card(env)
    tans = TanService(env.service)
    address = "203.0.113.9"
    now = dt.datetime.now(dt.UTC)
    with env.service.db.write() as s:
        for _ in range(TAN_REQUESTS_PER_ADDRESS):
            s.add(
                Tan(
                    card_id=card,
                    purpose="revocation",
                    salt="00",
                    digest="00",
                    state="superseded",
                    attempts=0,
                    created_at=now,
                    expires_at=now,
                    requested_by="test",
                    client_address=address,
                    outbox_ref="x",
                )
            )
        for _ in range(TAN_FAILURES_PER_ADDRESS):
            s.add(TanFailure(card_id=card, kind="tan", at=now, client_address=address))
    with pytest.raises(RAError, match="too many TAN requests") as exc:
        tans.request_tan(fresh, "revocation", client_address=address)
    assert exc.value.kind is RAErrorKind.RATE_LIMITED and exc.value.retry_after
    receipt = tans.request_tan(fresh, "revocation", client_address="203.0.113.10")  # another address may
    assert receipt.sent is not None and receipt.refusal is None
    code = _spool(env, Channel.SMS).read(Channel.SMS, receipt.sent.reference)[:6]
    with env.service.db.write() as s:
        verdict = tans.verify_tan(s, fresh, "revocation", code, client_address=address)
    assert verdict.refusal is not None and verdict.refusal.kind is RAErrorKind.RATE_LIMITED
    with env.service.db.write() as s:
        assert tans.verify_tan(s, fresh, "revocation", code, client_address="203.0.113.10").ok
    # Requests that sent nothing count for the address too, whatever card id they named: after
    # the address's limit the answer (429) is the same for an existing card as for none.
    prober = "203.0.113.11"
    for i in range(TAN_REQUESTS_PER_ADDRESS):
        assert tans.request_tan(900000 + i, "revocation", client_address=prober).refusal is not None
    for target in (fresh, 999999):
        with pytest.raises(RAError, match="too many TAN requests from this address") as exc:
            tans.request_tan(target, "revocation", client_address=prober)
        assert exc.value.kind is RAErrorKind.RATE_LIMITED
    with env.service.db.read() as s:
        counted = s.scalars(select(TanFailure).where(TanFailure.client_address == prober)).all()
    assert len(counted) == TAN_REQUESTS_PER_ADDRESS and {(f.card_id, f.kind) for f in counted} == {
        (None, "tan-request")
    }


def _portal_ordered_cards_refuse_every_tan_operation(env: RAEnv) -> None:
    env.applicant("p", "Paul", "Portal", "1975-07-07")
    base = {"product": "qes-card", "method": "on-site", "country": "DE", "postal_address": ADDRESS}
    # No number with a portal order, nor for a product without SMS-TAN, nor a malformed one.
    _problem(env.call("POST", "/api/orders", "p", json={**base, "mobile": MOBILE}), 422, "portal")
    _problem(
        env.call(
            "POST",
            "/api/orders",
            "p",
            json={**base, "product": "upc-card", "channel": "partner", "mobile": MOBILE, "email": "p@example.org"},
        ),
        422,
        "not offered",
    )
    _problem(env.call("POST", "/api/orders", "p", json={**base, "channel": "partner", "mobile": "12345"}), 400, "E.164")
    assert env.call("POST", "/api/orders", "p", json={**base, "channel": "shop"}).status_code == 422

    order, card = _card(env, channel="portal", mobile=None)
    assert env.ok("GET", f"/api/orders/{order}", "h")["channel"] == "portal"
    assert env.ok("GET", f"/api/cards/{card}/sms-tan", "h")["offered"] is False
    _refused_request(env, card, "portal")
    _problem(env.call("POST", f"/api/cards/{card}/registration-secret", "h"), 422, "portal")
    _problem(
        env.call("PUT", f"/api/cards/{card}/mobile", "h", json={"secret": "AAAA-BBBB-CCCC-DDDD", "mobile": MOBILE}),
        422,
        "portal",
    )
    _refused_revocation(env, card, "123456", "portal")
    assert _ca_status(env, order) != "revoked"
    with env.service.db.read() as s:
        [req] = s.scalars(select(RevocationRequest).where(RevocationRequest.card_id == card)).all()
        assert (req.authenticated_by, req.decision) == ("sms-tan", "refused")
        assert s.scalar(select(Tan).where(Tan.card_id == card)) is None
    assert "card.tan_request_refused" in _actions(env, card)


def _concurrent_use_of_one_tan_succeeds_exactly_once(env: RAEnv) -> None:
    _, card = _card(env)
    tan, _ = _tan(env, card, "follow-up")
    tans = TanService(env.service)
    barrier = threading.Barrier(2)
    outcomes: list[bool] = []
    errors: list[BaseException] = []

    def use() -> None:
        try:
            barrier.wait()
            with env.service.db.write() as s:
                verdict = tans.verify_tan(s, card, "follow-up", tan)
                time.sleep(0.3)  # hold the transaction open: the other one must wait or lose
            outcomes.append(verdict.ok)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(outcomes) == [False, True]
    with env.service.db.read() as s:
        assert s.scalar(select(Tan.state).where(Tan.card_id == card)) == "used"
    assert _actions(env, card).count("card.tan_used") == 1


def test_follow_up_order_authenticated_by_sms_tan(env: RAEnv) -> None:
    """Seed 000: a follow-up card applied for "electronically via the SMS-TAN method": the holder's
    session plus a TAN for purpose follow-up; a revocation TAN, a spent TAN or a portal card fail."""
    _, card = _card(env)
    env.ok("POST", f"/api/cards/{card}/confirm-receipt", "h")
    revocation_tan, _ = _tan(env, card, "revocation")
    body = {"authentication": "sms-tan", "tan": revocation_tan}
    _problem(env.call("POST", f"/api/cards/{card}/follow-up", "h", json=body), 403, "TAN")
    tan, _ = _tan(env, card, "follow-up")
    order = env.ok("POST", f"/api/cards/{card}/follow-up", "h", json={**body, "tan": tan}, status=201)["id"]
    view = env.ok("GET", f"/api/orders/{order}", "h")
    assert (view["kind"], view["parent_card_id"]) == ("follow-up", card)
    _problem(env.call("POST", f"/api/cards/{card}/follow-up", "h", json={**body, "tan": tan}), 403, "TAN")
    assert tan not in _audit_text(env)
    _, portal = _card(env, channel="portal", mobile=None)
    env.ok("POST", f"/api/cards/{portal}/confirm-receipt", "h")
    r = env.call("POST", f"/api/cards/{portal}/follow-up", "h", json={**body, "tan": "123456"})
    assert r.status_code == 422, r.get_json()


def test_anonymous_answers_do_not_tell_cards_apart(env: RAEnv) -> None:
    """Card ids are small integers and the two TAN endpoints need no login: their answers must not
    tell an unknown card from a portal card, a revoked one, one without a number, or one that
    really got a TAN (ra/tan.py, "Anonymous answers").  The SMS leaves only once the answer is
    closed, so the gateway's latency does not tell either."""
    _, good = _card(env)
    _, no_number = _card(env, mobile=None)
    _, portal = _card(env, channel="portal", mobile=None)
    _, revoked = _card(env)
    tan, _ = _tan(env, revoked)
    env.ok("POST", "/api/revocations/sms-tan", json={"card_id": revoked, "tan": tan, "reason": "keyCompromise"})
    unknown = 10 * max(good, no_number, portal, revoked)
    cards = {"good": good, "no number": no_number, "portal": portal, "revoked": revoked, "unknown": unknown}

    def answer(card: int) -> tuple[int, str, tuple[str, ...], str]:
        r = env.call("POST", "/api/tans", json={"card_id": card, "purpose": "revocation"})
        body = r.get_json()
        assert (body["card_id"], body["detail"]) == (card, _answer(card, "revocation")), body
        return r.status_code, r.mimetype, tuple(sorted(body)), body["purpose"]

    answers = {name: answer(card) for name, card in cards.items()}
    assert len(set(answers.values())) == 1, answers
    assert answers["good"][0] == 202

    def refusal(card: int) -> tuple[int, str, str, dict[str, Any]]:
        r = env.call(
            "POST", "/api/revocations/sms-tan", json={"card_id": card, "tan": "000001", "reason": "keyCompromise"}
        )
        return r.status_code, r.mimetype, r.headers.get("Retry-After", ""), r.get_json()

    refusals = {name: refusal(card) for name, card in cards.items()}
    assert len({json.dumps(r, sort_keys=True) for r in refusals.values()}) == 1, refusals
    assert refusals["unknown"][0] == 403 and refusals["unknown"][3]["detail"] == TAN_REFUSAL
    # What the records keep is the truth, one event per request.
    for name in ("no number", "portal", "revoked"):
        assert "card.tan_request_refused" in _actions(env, cards[name]), name
    assert _actions(env, unknown) == [
        "card.tan_request_refused",
        "card.revocation_refused",
    ]

    # Sent after the answer: unread and unclosed, the answer leaves the SMS queued.
    r = env.call("POST", "/api/tans", json={"card_id": good, "purpose": "follow-up"}, buffered=False)
    assert r.status_code == 202
    sms = _last_sms(env, good)
    assert sms is not None and sms.purpose == "sms-tan-follow-up" and sms.state == "pending"
    r.close()
    sms = _last_sms(env, good)
    assert sms is not None and sms.state == "sent"


def test_the_address_limit_holds_under_concurrent_requests(env: RAEnv) -> None:
    """Eight requests from one address at once, one below its limit: exactly one is counted, the
    other seven are refused (429), on PostgreSQL too, where the count and the record of each
    request are serialised per address (ra.store.repository.serialise_limit)."""
    address = "203.0.113.77"
    now = dt.datetime.now(dt.UTC)
    with env.service.db.write() as s:
        for _ in range(TAN_REQUESTS_PER_ADDRESS - 1):
            s.add(TanFailure(card_id=None, kind="tan-request", at=now, client_address=address))
    tans = TanService(env.service)

    def request(i: int) -> str:
        try:
            tans.request_tan(900100 + i, "revocation", client_address=address)
        except RAError as exc:
            return str(exc.kind.value)
        return "counted"

    outcomes = race(8, request)
    assert sorted(outcomes) == ["counted"] + [RAErrorKind.RATE_LIMITED.value] * 7, outcomes
    with env.service.db.read() as s:
        counted = s.scalars(select(TanFailure).where(TanFailure.client_address == address)).all()
    assert len(counted) == TAN_REQUESTS_PER_ADDRESS
