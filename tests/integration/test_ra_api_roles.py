"""Every endpoint x every role: the API refuses (401 without a token, 403 with a wrong role) or
lets the call through to the service; and the OpenAPI document is generated from the schemas."""

from __future__ import annotations

import pytest

from tests.integration.ra_support import RAEnv, csr_pem

A, RA, REV, CA, AUD, SEC = "app", "ra1", "revo", "caop", "aud", "sec"
ANY = None  # no token needed

# (method, rule) -> callers allowed.  Written out independently of the code under test.
EXPECTED: dict[tuple[str, str], set[str] | None] = {
    ("POST", "/api/accounts"): ANY,
    ("POST", "/api/accounts/confirmation"): ANY,
    ("POST", "/api/auth/login"): ANY,
    ("GET", "/api/products"): ANY,
    ("GET", "/api/orders"): {A, RA, CA, AUD},
    ("POST", "/api/orders"): {A},
    ("GET", "/api/orders/<int:order_id>"): {A, RA, CA, AUD},
    ("POST", "/api/orders/<int:order_id>/identity"): {RA},
    ("POST", "/api/orders/<int:order_id>/copy"): {A, RA},
    ("GET", "/api/orders/<int:order_id>/copy"): {RA, AUD},
    ("POST", "/api/orders/<int:order_id>/ozb"): {RA},
    ("POST", "/api/orders/<int:order_id>/chamber"): {RA},
    ("POST", "/api/orders/<int:order_id>/hold"): {RA},
    ("POST", "/api/orders/<int:order_id>/resubmit"): {A, RA},
    ("POST", "/api/orders/<int:order_id>/reject"): {RA},
    ("POST", "/api/orders/<int:order_id>/cancel"): {A, RA},
    ("POST", "/api/orders/<int:order_id>/approve"): {RA},
    ("POST", "/api/orders/<int:order_id>/slots/<slot>/csr"): {CA},
    ("POST", "/api/orders/<int:order_id>/ship"): {CA},
    ("GET", "/api/cards"): {A, RA, REV, CA, AUD},
    ("GET", "/api/cards/<int:card_id>"): {A, RA, REV, CA, AUD},
    ("POST", "/api/cards/<int:card_id>/confirm-receipt"): {A},
    ("POST", "/api/cards/<int:card_id>/revoke"): {A, RA, REV},
    ("PUT", "/api/cards/<int:card_id>/revocation-password"): {A},
    ("POST", "/api/cards/<int:card_id>/revocation-password/letter"): {A, RA},
    ("GET", "/api/cards/<int:card_id>/revocation-requests"): {A, RA, REV, AUD},
    ("POST", "/api/cards/<int:card_id>/follow-up/challenge"): {A},
    ("POST", "/api/cards/<int:card_id>/order-password"): {A},
    ("POST", "/api/cards/<int:card_id>/follow-up"): {A},
    ("POST", "/api/revocations"): ANY,
    ("GET", "/api/cards/<int:card_id>/sms-tan"): {A, RA, REV, CA, AUD},
    ("POST", "/api/cards/<int:card_id>/registration-secret"): {A, RA},
    ("PUT", "/api/cards/<int:card_id>/mobile"): {A},
    ("POST", "/api/tans"): ANY,
    ("POST", "/api/email-confirmations"): ANY,
    ("POST", "/api/orders/<int:order_id>/email-confirmation"): {A, RA},
    ("POST", "/api/revocations/sms-tan"): ANY,
    ("GET", "/api/cards/<int:card_id>/renewal"): {A},
    ("POST", "/api/cards/<int:card_id>/renewal"): {A},
    ("GET", "/api/renewals/<int:order_id>"): {A, RA, AUD},
    ("POST", "/api/renewals/<int:order_id>/documents"): {A, RA},
    ("POST", "/api/renewals/<int:order_id>/approve"): {RA},
    ("POST", "/api/organisations"): {RA},
    ("GET", "/api/organisations/<int:org_id>"): {RA, AUD},
    ("GET", "/api/operators"): {SEC, AUD},
    ("POST", "/api/operators"): {SEC},
    ("PUT", "/api/operators/<int:account_id>/roles"): {SEC},
    ("GET", "/api/audit"): {AUD, SEC},
    ("GET", "/api/audit/evidence/<issuer>/<serial>"): {AUD, SEC},
    ("POST", "/api/cards/<int:card_id>/transport-pin"): {A},
    ("POST", "/api/organisations/<int:org_id>/shops"): {RA},
    ("GET", "/api/shops"): {A, RA},
    ("POST", "/api/shops"): {A},
    ("GET", "/api/shops/<int:shop_id>/products"): {A, RA},
    ("POST", "/api/shops/<int:shop_id>/disable"): {RA},
}
CALLERS = [None, A, RA, REV, CA, AUD, SEC]


def test_every_endpoint_checks_every_role(env: RAEnv) -> None:
    env.applicant(A, "Anna", "Applicant", "1985-03-03")
    order_id = env.ok(
        "POST", "/api/orders", A, json={"product": "qes-card", "method": "on-site", "country": "DE"}, status=201
    )["id"]
    env.identity(order_id, "Anna", "Applicant", "1985-03-03")
    env.ok("POST", f"/api/orders/{order_id}/approve", RA)
    env.ok("POST", f"/api/orders/{order_id}/slots/signature/csr", CA, json={"csr_pem": csr_pem()})
    card_id = env.ok("POST", f"/api/orders/{order_id}/ship", CA)["card_id"]
    org_id, _ = env.organisation()
    shop = {"name": "Role shop", "products": ["qes-card"], "methods": ["on-site"]}
    shop_id = env.ok("POST", f"/api/organisations/{org_id}/shops", RA, json=shop, status=201)["id"]
    values = {
        "shop_id": shop_id,
        "order_id": order_id,
        "card_id": card_id,
        "org_id": org_id,
        "account_id": env.ids[AUD],
        "slot": "signature",
        "issuer": "qes",
        "serial": env.slot_serial(order_id),
    }
    rules = {
        (method, rule.rule): rule
        for rule in env.client.application.url_map.iter_rules()
        if rule.rule.startswith("/api/") and rule.endpoint.startswith("ra.")
        for method in rule.methods or ()
        if method in {"GET", "POST", "PUT", "DELETE", "PATCH"}
    }
    assert set(rules) == set(EXPECTED), "an endpoint was added or removed without updating EXPECTED"
    failures = []
    for method, rule_text in sorted(rules):
        url = rule_text
        for name, value in values.items():
            url = url.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
        allowed = EXPECTED[(method, rule_text)]
        for caller in CALLERS:
            r = env.call(method, url, caller, json={})
            if allowed is ANY:
                ok = r.status_code not in (401, 403)
            elif caller is None:
                ok = r.status_code == 401
            elif caller in allowed:
                ok = r.status_code not in (401, 403) or (r.get_json() or {}).get("type", "").endswith(
                    "second_factor_required"
                )
            else:
                ok = r.status_code == 403
            if r.status_code >= 400:
                ok = ok and r.mimetype == "application/problem+json"
            if not ok:
                failures.append(f"{method} {rule_text} as {caller}: {r.status_code} {r.get_json()}")
    assert failures == []


@pytest.mark.filterwarnings("error::UserWarning")  # e.g. apispec's "added to the spec twice"
def test_openapi_document_is_generated_from_the_schemas(env: RAEnv) -> None:
    doc = env.ok("GET", "/api/openapi.json")
    assert doc["openapi"].startswith("3.")
    assert {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops} >= {
        ("POST", "/api/orders"),
        ("POST", "/api/orders/{order_id}/approve"),
        ("POST", "/api/cards/{card_id}/revoke"),
    }
    schemas = doc["components"]["schemas"]
    assert "document_type" in schemas["IdentityIn"]["properties"]
    assert doc["components"]["securitySchemes"]["BearerAuth"]["scheme"].lower() == "bearer"


def test_errors_are_rfc9457_problems(env: RAEnv) -> None:
    r = env.call("POST", "/api/accounts", json={"email": 5})
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["status"] == 422 and body["type"].endswith("validation") and "errors" in body
    r = env.call("GET", "/api/orders", headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401 and r.get_json()["type"].endswith("unauthenticated")
    r = env.call("GET", "/api/nothing-here")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
