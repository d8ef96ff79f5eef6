"""Shop codes (issue 6 point 6, seed 001) on SQLite and PostgreSQL: an RA officer opens a shop for
an organisation (code shown once, stored only as an HMAC), an applicant enters the code once and
keeps the shop, orders through it are limited to its products and methods and affiliated with its
organisation, closed and expired shops refuse, wrong codes are rate-limited in the database."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from ca.store.models import AuditEvent
from ra import shop as shop_rules
from ra.store.models import Order, SecretFailure, Shop, ShopMember
from tests.integration.ra_support import RAEnv

OFFER = {
    "name": "Musterfirma staff shop",
    "products": ["qes-card", "seal-card"],
    "methods": ["on-site", "postident-branch"],
}


def _open(env: RAEnv, org_id: int, **over: Any) -> tuple[int, str]:
    body = env.ok("POST", f"/api/organisations/{org_id}/shops", "ra1", json={**OFFER, **over}, status=201)
    return int(body["id"]), str(body["code"])


def _audit(env: RAEnv, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    with env.service.db.read() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
        return [(e.actor, e.object_id or "", json.loads(e.details)) for e in rows]


def _count(env: RAEnv, model: type[Any]) -> int:
    with env.service.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _order(env: RAEnv, who: str, shop_id: int | None, **over: Any) -> Any:
    body = {"product": "qes-card", "method": "on-site", "country": "DE", "shop_id": shop_id, **over}
    return env.call("POST", "/api/orders", who, json=body)


def _refused(r: Any, code: str) -> None:
    assert r.status_code == 422 and r.mimetype == "application/problem+json", (r.status_code, r.get_json())
    body = r.get_json()
    assert code in [f["code"] for f in body["findings"]] and "shop rule" in body["detail"], body


def test_officer_opens_a_shop_whose_code_is_shown_once_and_stored_hashed(env: RAEnv) -> None:
    org_id, _ = env.organisation()
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).replace(microsecond=0)
    shop_id, code = _open(env, org_id, valid_until=until.isoformat())
    assert len(code) == 14 and shop_rules.normalise_code(code)
    # Only the keyed digest is stored: not the code, not a plain SHA-256 of it; not in the audit either.
    with env.service.db.read() as s:
        row = s.scalar(select(Shop).where(Shop.id == shop_id))
        assert row is not None
        stored = json.dumps({c.name: str(getattr(row, c.name)) for c in Shop.__table__.columns})
    canonical = code.replace("-", "")
    assert code not in stored and canonical not in stored
    assert row.code_digest == shop_rules.code_digest(env.service.data_key, code)
    assert row.code_digest != hashlib.sha256(canonical.encode()).hexdigest()
    [(actor, object_id, details)] = _audit(env, "shop.created")
    assert actor.startswith(f"account:{env.ids['ra1']}:") and object_id == str(shop_id)
    assert details["products"] == ["qes-card", "seal-card"] and canonical not in json.dumps(details)
    listed = env.ok("GET", "/api/shops", "ra1")
    assert [(x["id"], x["enabled"], x["members"]) for x in listed] == [(shop_id, True, 0)]
    assert code not in json.dumps(listed) and "code" not in listed[0]
    assert dt.datetime.fromisoformat(listed[0]["valid_until"]) == until

    # What a shop offers is validated; a refusal stores nothing.
    bad: list[tuple[dict[str, Any], int]] = [
        ({"products": ["no-such-product"]}, 400),
        ({"methods": ["carrier-pigeon"]}, 400),
        ({"products": ["seal-card"], "methods": ["embassy"]}, 422),  # embassy is certified for no offered product
        ({"methods": ["existing-qes"]}, 422),
        ({"valid_until": "2020-01-01T00:00:00+00:00"}, 400),
        ({"valid_until": "2099-01-01T00:00:00"}, 400),  # no time zone
        ({"products": []}, 422),  # schema: at least one
    ]
    for over, status in bad:
        r = env.call("POST", f"/api/organisations/{org_id}/shops", "ra1", json={**OFFER, **over})
        assert r.status_code == status, (over, r.get_json())
    assert env.call("POST", "/api/organisations/99999/shops", "ra1", json=OFFER).status_code == 404
    assert _count(env, Shop) == 1


def test_applicant_enters_the_code_once_and_orders_within_the_shop(env: RAEnv) -> None:
    org_id, _ = env.organisation()
    other_org, _ = env.organisation(name="Andere AG", legal_form="AG")
    shop_id, code = _open(env, org_id)
    env.applicant("a", "Anna", "Applicant", "1985-03-03")
    env.applicant("b", "Bert", "Bystander", "1986-04-04")

    # Entered once, typed sloppily (lower case, blanks, O for 0): the shop stays in the navigation.
    typed = code.lower().replace("-", " ").replace("0", "o")
    entered = env.ok("POST", "/api/shops", "a", json={"code": typed})
    assert (entered["id"], entered["organisation"], entered["created_by"]) == (shop_id, "Musterfirma GmbH", None)
    env.ok("POST", "/api/shops", "a", json={"code": code})  # again: idempotent
    assert _count(env, ShopMember) == 1 and len(_audit(env, "shop.entered")) == 1  # before "max" enters
    [mine] = env.ok("GET", "/api/shops", "a")
    assert (mine["name"], mine["products"], mine["methods"]) == (
        OFFER["name"],
        ["qes-card", "seal-card"],
        ["on-site", "postident-branch"],
    )
    assert env.ok("GET", "/api/shops", "b") == []

    # The shop's listing: its products only, each with the shop's methods certified for it.
    offers = env.ok("GET", f"/api/shops/{shop_id}/products", "a")
    by_name = {p["name"]: sorted(m["name"] for m in p["methods"]) for p in offers["products"]}
    assert by_name == {"qes-card": ["on-site", "postident-branch"], "seal-card": ["on-site", "postident-branch"]}
    assert env.call("GET", f"/api/shops/{shop_id}/products", "b").status_code == 404

    # An order through the shop: recorded with the shop, affiliated with the shop's organisation.
    order_id = _order(env, "a", shop_id).get_json()["id"]
    with env.service.db.read() as s:
        order = s.scalar(select(Order).where(Order.id == order_id))
        assert order is not None and (order.shop_id, order.organisation_id) == (shop_id, org_id)
    [(_, _, created)] = [x for x in _audit(env, "order.created") if x[1] == str(order_id)]
    assert created["shop_id"] == shop_id and created["organisation_id"] == org_id
    assert env.ok("GET", f"/api/orders/{order_id}", "a")["organisation_id"] == org_id

    # A seal through the shop: the shop names the organisation; only its authorised signatory may apply.
    env.applicant("max", "Max", "Mustermann", "1970-01-01")
    env.ok("POST", "/api/shops", "max", json={"code": code})
    seal = _order(env, "max", shop_id, product="seal-card", common_name="Musterfirma Siegel")
    assert seal.status_code == 201, seal.get_json()
    assert env.ok("GET", f"/api/orders/{seal.get_json()['id']}", "max")["organisation_id"] == org_id
    r = _order(env, "a", shop_id, product="seal-card", common_name="Not mine")
    assert r.status_code == 422 and "authorised signatory" in r.get_json()["detail"]

    # Each shop rule refuses with 422 naming it, and nothing is stored.
    orders_before = _count(env, Order)
    _refused(_order(env, "a", shop_id, product="upc-card", email="anna@example.org"), "qtsp.ra.shop.product")
    _refused(_order(env, "a", shop_id, method="notary"), "qtsp.ra.shop.method")
    _refused(_order(env, "a", shop_id, organisation_id=other_org), "qtsp.ra.shop.organisation")
    _refused(_order(env, "b", shop_id), "qtsp.ra.shop.not_entered")
    _refused(_order(env, "b", 99999), "qtsp.ra.shop.not_entered")  # an unknown shop looks the same
    assert _count(env, Order) == orders_before

    # Closed by an officer: orders and the code are refused; closing twice is a conflict.
    closed = env.ok("POST", f"/api/shops/{shop_id}/disable", "ra1")
    assert closed["enabled"] is False and closed["disabled_at"] is not None
    assert env.call("POST", f"/api/shops/{shop_id}/disable", "ra1").status_code == 409
    _refused(_order(env, "a", shop_id), "qtsp.ra.shop.disabled")
    r = env.call("POST", "/api/shops", "b", json={"code": code})
    assert r.status_code == 422 and "closed" in r.get_json()["detail"]
    assert [d["name"] for _, _, d in _audit(env, "shop.disabled")] == [OFFER["name"]]
    assert _count(env, Order) == orders_before

    # A shop past its end of validity refuses orders.
    until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    short_id, short_code = _open(env, org_id, name="Pop-up", valid_until=until.isoformat())
    env.ok("POST", "/api/shops", "a", json={"code": short_code})
    real = env.service.clock
    env.service.clock = lambda: real() + dt.timedelta(hours=2)
    try:
        _refused(_order(env, "a", short_id), "qtsp.ra.shop.expired")
    finally:
        env.service.clock = real


def test_wrong_codes_are_rate_limited_per_account_and_address(env: RAEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    org_id, _ = env.organisation()
    shop_id, code = _open(env, org_id)
    wrong = "ZZZZ-ZZZZ-ZZZZ" if code != "ZZZZ-ZZZZ-ZZZZ" else "YYYY-YYYY-YYYY"
    env.applicant("a", "Anna", "Applicant", "1985-03-03")
    assert env.call("POST", "/api/shops", "a", json={"code": "not a code"}).status_code == 400
    for _ in range(shop_rules.CODE_FAILURES_PER_ACCOUNT):
        assert env.call("POST", "/api/shops", "a", json={"code": wrong}).status_code == 404
    r = env.call("POST", "/api/shops", "a", json={"code": wrong})
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 3600
    r = env.call("POST", "/api/shops", "a", json={"code": code})  # even the right code, within the window
    assert r.status_code == 429 and env.ok("GET", "/api/shops", "a") == []
    with env.service.db.read() as s:
        rows = list(s.scalars(select(SecretFailure)))
    assert len(rows) == shop_rules.CODE_FAILURES_PER_ACCOUNT
    assert {(x.purpose, x.account_id) for x in rows} == {("shop-code", env.ids["a"])}
    refused = _audit(env, "shop.code_refused")
    assert len(refused) == shop_rules.CODE_FAILURES_PER_ACCOUNT + 2
    assert wrong not in json.dumps(refused) and code not in json.dumps(refused)

    # Per client address across accounts (limit lowered for the test).
    monkeypatch.setattr(shop_rules, "CODE_FAILURES_PER_ADDRESS", 3)
    env.applicant("b", "Bert", "Bystander", "1986-04-04")
    env.applicant("c", "Cleo", "Caller", "1987-05-05")
    here = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}
    elsewhere = {"environ_base": {"REMOTE_ADDR": "192.0.2.1"}}
    for who in ("b", "b", "c"):
        assert env.call("POST", "/api/shops", who, json={"code": wrong}, **here).status_code == 404
    assert env.call("POST", "/api/shops", "c", json={"code": code}, **here).status_code == 429
    assert env.call("POST", "/api/shops", "c", json={"code": code}, **elsewhere).status_code == 200

    # After the window the account may try again.
    real = env.service.clock
    env.service.clock = lambda: real() + dt.timedelta(hours=1, seconds=5)
    try:
        assert env.ok("POST", "/api/shops", "a", json={"code": code})["id"] == shop_id
    finally:
        env.service.clock = real
