"""Transport PINs (issue 6 point 5, seed 004) on SQLite and PostgreSQL: issued at shipping and
returned that once to card production; stored only encrypted and bound to the card; revealed once
to the holder who confirms their password, then destroyed, audited without the PIN; refused to
everybody else, a second time, after too many wrong passwords, and once the card is revoked or
expired."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import replace

import pytest
from sqlalchemy import select, update

from ca.store.models import AuditEvent
from ra.store.models import SecretFailure, TransportPin
from ra.transport_pin import REVEAL_FAILURES_PER_CARD
from tests.integration.ra_support import PASSWORD, RAEnv, csr_pem


def _shipped(env: RAEnv, who: str, given: str, dob: str, digits: int = 6) -> tuple[int, int, str]:
    """A shipped card of a new applicant ``who``: (order, card, transport PIN from the ship response)."""
    env.applicant(who, given, "Holder", dob)
    order = env.ok(
        "POST", "/api/orders", who, json={"product": "qes-card", "method": "on-site", "country": "DE"}, status=201
    )["id"]
    env.identity(order, given, "Holder", dob)
    env.ok("POST", f"/api/orders/{order}/approve", "ra1")
    env.ok("POST", f"/api/orders/{order}/slots/signature/csr", "caop", json={"csr_pem": csr_pem()})
    shipped = env.ok("POST", f"/api/orders/{order}/ship", "caop")
    pin = shipped["transport_pin"]
    assert isinstance(pin, str) and len(pin) == digits and pin.isdigit()
    return order, int(shipped["card_id"]), pin


def _row(env: RAEnv, card: int) -> TransportPin:
    with env.service.db.read() as s:
        row = s.scalar(select(TransportPin).where(TransportPin.card_id == card))
        assert row is not None
        s.expunge(row)
    return row


def _events(env: RAEnv, action_prefix: str) -> list[tuple[str, str, dict[str, object]]]:
    with env.service.db.read() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action.startswith(action_prefix)).order_by(AuditEvent.seq))
        return [(e.action, e.object_id or "", json.loads(e.details)) for e in rows]


def _reveal(env: RAEnv, card: int, who: str | None, password: str = PASSWORD, **kw: object) -> object:
    return env.call("POST", f"/api/cards/{card}/transport-pin", who, json={"password": password}, **kw)


def test_revealed_once_to_the_holder_then_destroyed(env: RAEnv, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    order, card, pin = _shipped(env, "h", "Hanna", "1981-02-03")
    # Stored only encrypted: the PIN is not in the row, the ciphertext is AES-GCM (nonce + tag).
    row = _row(env, card)
    assert row.ciphertext is not None and pin.encode() not in row.ciphertext and len(row.ciphertext) == 12 + 6 + 16
    assert row.key_id == env.service.data_key.key_id and row.revealed_at is None
    # No other response carries it: the order, the card, the lists; shipping again is refused.
    for url, who in (
        (f"/api/orders/{order}", "caop"),
        (f"/api/orders/{order}", "h"),
        (f"/api/cards/{card}", "h"),
        ("/api/cards", "ra1"),
        ("/api/orders", "aud"),
    ):
        assert pin not in json.dumps(env.ok("GET", url, who)), url
    again = env.call("POST", f"/api/orders/{order}/ship", "caop")
    assert again.status_code == 409 and pin not in json.dumps(again.get_json())

    # Nobody but the holder: operators 403 (even the security officer), another applicant 404.
    env.applicant("other", "Otto", "Other", "1979-09-09")
    for who in ("ra1", "caop", "revo", "aud", "sec"):
        assert _reveal(env, card, who).status_code == 403, who
    assert _reveal(env, card, "other").status_code == 404
    assert _reveal(env, card, None).status_code == 401
    assert _row(env, card).ciphertext is not None  # nothing destroyed by the refusals

    body = env.ok("POST", f"/api/cards/{card}/transport-pin", "h", json={"password": PASSWORD})
    assert body["transport_pin"] == pin and body["card_id"] == card
    row = _row(env, card)
    assert row.ciphertext is None and row.revealed_at is not None and row.destroyed_reason == "revealed"
    assert row.revealed_by == f"account:{env.ids['h']}:h@example.org"

    second = _reveal(env, card, "h")
    assert second.status_code == 409 and second.mimetype == "application/problem+json"
    detail = second.get_json()["detail"]
    assert "revealed on" in detail and row.revealed_at.isoformat()[:19] in detail and pin not in detail

    # Audited: issued at shipping by the CA operator, revealed by the holder, refusals; never the PIN.
    events = _events(env, "card.transport-pin")
    actions = [a for a, _, _ in events]
    assert actions.count("card.transport-pin-issued") == 1 and actions.count("card.transport-pin-revealed") == 1
    assert actions.count("card.transport-pin-reveal-refused") == 1  # the second reveal (role refusals stop at the API)
    for _, object_id, details in events:
        assert object_id == str(card)
        assert pin not in json.dumps(details)
    with env.service.db.read() as s:
        everything = "\n".join(e.details for e in s.scalars(select(AuditEvent)))  # the stored JSON texts
    assert f'"{pin}"' not in everything and f": {pin}" not in everything and PASSWORD not in everything
    assert pin not in caplog.text and PASSWORD not in caplog.text


def test_wrong_passwords_are_refused_and_rate_limited(env: RAEnv) -> None:
    _, card, pin = _shipped(env, "h", "Hanna", "1981-02-03")
    addr = {"environ_base": {"REMOTE_ADDR": "198.51.100.7"}}
    for _ in range(REVEAL_FAILURES_PER_CARD):
        r = _reveal(env, card, "h", "not my password at all", **addr)
        assert r.status_code == 403 and "wrong password" in r.get_json()["detail"]
    assert _row(env, card).ciphertext is not None
    # At the limit even the right password is refused, with Retry-After; nothing is shown or destroyed.
    r = _reveal(env, card, "h", **addr)
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 3600
    assert pin not in json.dumps(r.get_json()) and _row(env, card).ciphertext is not None
    with env.service.db.read() as s:
        rows = list(s.scalars(select(SecretFailure).where(SecretFailure.card_id == card)))
    assert len(rows) == REVEAL_FAILURES_PER_CARD
    assert {(x.purpose, x.client_address, x.account_id) for x in rows} == {
        ("transport-pin", "198.51.100.7", env.ids["h"])
    }
    # After the window the holder gets it.
    real = env.service.clock
    env.service.clock = lambda: real() + dt.timedelta(hours=1, seconds=5)
    try:
        body = env.ok("POST", f"/api/cards/{card}/transport-pin", "h", json={"password": PASSWORD})
        assert body["transport_pin"] == pin
    finally:
        env.service.clock = real


def test_ciphertext_bound_to_its_card_and_destroyed_on_revocation_and_expiry(env: RAEnv) -> None:
    _, card1, pin1 = _shipped(env, "h", "Hanna", "1981-02-03")
    # This card's product asks for 8 digits (products.toml transport_pin_digits).
    product = env.service.products["qes-card"]
    env.service.products = {**env.service.products, "qes-card": replace(product, transport_pin_digits=8)}
    _, card2, pin2 = _shipped(env, "k", "Karl", "1975-05-06", digits=8)
    assert _row(env, card2).digits == 8
    # Moving card 1's ciphertext onto card 2 does not decrypt there: a clear 409, nothing shown.
    stolen = _row(env, card1).ciphertext
    own = _row(env, card2).ciphertext
    with env.service.db.write() as s:
        s.execute(update(TransportPin).where(TransportPin.card_id == card2).values(ciphertext=stolen))
    r = _reveal(env, card2, "k")
    assert r.status_code == 409 and "does not authenticate" in r.get_json()["detail"]
    assert pin1 not in json.dumps(r.get_json()) and _row(env, card2).ciphertext == stolen
    with env.service.db.write() as s:
        s.execute(update(TransportPin).where(TransportPin.card_id == card2).values(ciphertext=own))

    # Revocation destroys the unrevealed PIN in the same transaction as the request; reveal refused.
    assert env.ok("POST", f"/api/cards/{card1}/revoke", "h", json={"reason": "keyCompromise"})["state"] == "revoked"
    row = _row(env, card1)
    assert row.ciphertext is None and row.destroyed_reason == "revoked" and row.revealed_at is None
    r = _reveal(env, card1, "h")
    assert r.status_code == 409 and "destroyed" in r.get_json()["detail"]

    # Expiry (the scheduled job) destroys it too.
    real = env.service.clock
    env.service.clock = lambda: real() + dt.timedelta(days=1100)
    try:
        assert card2 in env.service.expire_due()
    finally:
        env.service.clock = real
    row = _row(env, card2)
    assert row.ciphertext is None and row.destroyed_reason == "expired"
    assert _reveal(env, card2, "k").status_code == 409
    destroyed = [(a, o, d) for a, o, d in _events(env, "card.transport-pin-destroyed")]
    assert [(o, d["reason"]) for _, o, d in destroyed] == [(str(card1), "revoked"), (str(card2), "expired")]
    assert pin2 not in json.dumps(destroyed)
