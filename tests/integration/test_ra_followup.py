"""Follow-up orders (issue 6 point 1) on SQLite and PostgreSQL: authenticated by the current card's
qualified signature (CMS, path and OCSP status validated by pyhanko-certvalidator against our own
responder) or by an order password posted to the registered address; at most
``followups_without_identification`` in a row without a new identification; refused after a name
change; QcIdentMethod eIDAS2-b when configured."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from sqlalchemy import select, update

from ca.asn1 import parse_qc_statements
from ca.profiles import oids
from ca.store.models import AuditEvent
from ra.followup_rules import FollowUpSettings, canonical_request
from ra.outbox import Channel, SpoolGateway
from ra.store import repository as repo
from ra.store.models import FollowUp, OrderPassword, Person
from tests.integration.helpers import pkilint_findings
from tests.integration.ra_support import RAEnv

ADDRESS = "Anna A\nMusterstraße 1\n10115 Berlin"


@dataclass
class Card:
    order: int
    card: int
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _csr(key: ec.EllipticCurvePrivateKey) -> str:
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _produce(env: RAEnv, order: int, *, activate: bool = True) -> Card:
    """Approve, personalise (with a key kept for signing), ship and (by default) activate."""
    env.ok("POST", f"/api/orders/{order}/approve", "ra1")
    key = ec.generate_private_key(ec.SECP256R1())
    env.ok("POST", f"/api/orders/{order}/slots/signature/csr", "caop", json={"csr_pem": _csr(key)})
    card = int(env.ok("POST", f"/api/orders/{order}/ship", "caop")["card_id"])
    if activate:
        assert env.ok("POST", f"/api/cards/{card}/confirm-receipt", "a")["state"] == "valid"
    with env.service.db.read() as s:
        slot = repo.slots(s, order)[0]
    assert slot.evidence_ref is not None
    found = env.service.ca.find_issued(slot.evidence_ref)
    assert found is not None
    return Card(order, card, key, x509.load_der_x509_certificate(found.certificate_der))


def _first_card(env: RAEnv, *, activate: bool = True, address: str | None = ADDRESS) -> Card:
    env.applicant("a", "Anna", "A", "1980-01-01")
    body: dict[str, Any] = {"product": "qes-card", "method": "on-site", "country": "DE"}
    if address is not None:
        body["postal_address"] = address
    order = env.ok("POST", "/api/orders", "a", json=body, status=201)["id"]
    assert env.identity(order, "Anna", "A", "1980-01-01").status_code == 200
    return _produce(env, order, activate=activate)


def _cms(content: bytes, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> str:
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    return base64.b64encode(der).decode()


def _signed(env: RAEnv, c: Card, *, method: str | None = None) -> dict[str, Any]:
    """A follow-up body signed with the card over a fresh challenge."""
    nonce = env.ok("POST", f"/api/cards/{c.card}/follow-up/challenge", "a", status=201)["nonce"]
    content = canonical_request(c.card, "qes-card", nonce, method)
    return {
        "authentication": "qualified-signature",
        "nonce": nonce,
        "method": method,
        "signed_request": _cms(content, c.cert, c.key),
    }


def _follow_up(env: RAEnv, c: Card, body: dict[str, Any]) -> Any:
    return env.call("POST", f"/api/cards/{c.card}/follow-up", "a", json=body)


def _audit(env: RAEnv) -> list[tuple[str, str, Any]]:
    with env.service.db.read() as s:
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        return [
            (e.action, e.object_id, json.loads(e.details) if isinstance(e.details, str) else e.details) for e in events
        ]


def _order_password(env: RAEnv, c: Card) -> str:
    """Request an order password and read it from the spooled letter."""
    body = env.ok("POST", f"/api/cards/{c.card}/order-password", "a", status=202)
    assert set(body) == {"letter", "expires_at", "recipient"}
    env.service.dispatch_outbox()
    spool = env.service.gateways[Channel.POST]
    assert isinstance(spool, SpoolGateway)
    raw = (spool.directory / "post" / f"{body['letter']}.txt").read_text(encoding="utf-8")
    assert raw.startswith(f"To: {ADDRESS}\n")  # the registered address, never one from the request
    found = re.search(
        r"\b([2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4})\b", spool.read(Channel.POST, body["letter"])
    )
    assert found is not None
    return found.group(1)


def _qc_ident(cert: x509.Certificate) -> tuple[str, ...]:
    ext = cert.extensions.get_extension_for_oid(oids.QC_STATEMENTS)
    assert isinstance(ext.value, x509.UnrecognizedExtension)
    return parse_qc_statements(ext.value.value).ident_methods


def test_followup_by_signature_to_an_issued_card(env: RAEnv) -> None:
    c = _first_card(env)
    body = _signed(env, c)
    order = env.ok("POST", f"/api/cards/{c.card}/follow-up", "a", json=body, status=201)["id"]
    view = env.ok("GET", f"/api/orders/{order}", "a")
    assert (view["kind"], view["parent_card_id"], view["product"]) == ("follow-up", c.card, "qes-card")
    # Replaying the same signed request (same nonce) is refused: the challenge is single use.
    r = _follow_up(env, c, body)
    assert r.status_code == 403 and "challenge" in r.get_json()["detail"]
    new = _produce(env, order)
    assert new.cert.subject == c.cert.subject  # the current certificate's subject, not client input
    assert _qc_ident(new.cert) == ()  # not configured: no QcIdentMethod
    assert pkilint_findings(new.cert, "qes-natural") == []
    # D-Trust keeps both: the old card stays valid until its holder revokes it.
    assert env.ok("GET", f"/api/cards/{c.card}", "a")["state"] == "valid"
    events = _audit(env)
    signer = f"{c.cert.serial_number:x}"
    verified = [d for a, _, d in events if a == "card.followup_signature_verified"]
    assert len(verified) == 1 and verified[0]["signer"].endswith(f":{signer}")
    created = next(d for a, o, d in events if a == "order.created" and o == str(order))
    assert created["authenticated_by"] == "qualified-signature" and created["position"] == 1
    assert any(a == "card.followup_refused" for a, _, _ in events)  # the replay

    # [ra] followup_qc_ident_method = true: QcIdentMethod eIDAS2-b (EN 319 412-5 V2.5.1 §4.3.5).
    env.service.followup_settings = dataclasses.replace(env.service.followup_settings, qc_ident_method=True)
    order = env.ok("POST", f"/api/cards/{c.card}/follow-up", "a", json=_signed(env, c), status=201)["id"]
    marked = _produce(env, order)
    assert _qc_ident(marked.cert) == (oids.QC_IDENT_EIDAS2_B.dotted_string,)
    assert pkilint_findings(marked.cert, "qes-natural") == []
    # An order-password follow-up was not identified with a QC: no statement.
    body = {"authentication": "order-password", "order_password": _order_password(env, c)}
    order = env.ok("POST", f"/api/cards/{c.card}/follow-up", "a", json=body, status=201)["id"]
    assert _qc_ident(_produce(env, order).cert) == ()
    # A QC obtained with a QC (eIDAS2-b) derives no further one without identification (STANDARDS.md §3.7).
    r = _follow_up(env, marked, _signed(env, marked))
    assert r.status_code == 422 and "eIDAS2-b" in r.get_json()["detail"]


def test_signature_refusals(env: RAEnv) -> None:
    c = _first_card(env)
    # Another key and certificate with the very same subject and serial.
    other_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    forged = (
        x509.CertificateBuilder()
        .subject_name(c.cert.subject)
        .issuer_name(c.cert.issuer)
        .public_key(other_key.public_key())
        .serial_number(c.cert.serial_number)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(other_key, hashes.SHA256())
    )
    body = _signed(env, c)
    body["signed_request"] = _cms(canonical_request(c.card, "qes-card", body["nonce"], None), forged, other_key)
    r = _follow_up(env, c, body)
    assert r.status_code == 403 and "not accepted" in r.get_json()["detail"]
    # Tampered content: signed for another product.
    body = _signed(env, c)
    body["signed_request"] = _cms(canonical_request(c.card, "upc-card", body["nonce"], None), c.cert, c.key)
    r = _follow_up(env, c, body)
    assert r.status_code == 403 and "signed content" in r.get_json()["detail"]
    # A flipped bit in the signature value.
    body = _signed(env, c)
    der = bytearray(base64.b64decode(body["signed_request"]))
    der[-5] ^= 0x01
    body["signed_request"] = base64.b64encode(bytes(der)).decode()
    assert _follow_up(env, c, body).status_code in (400, 403)
    # Not CMS at all.
    body = _signed(env, c)
    body["signed_request"] = base64.b64encode(b"\x30\x03\x02\x01\x01").decode()
    assert _follow_up(env, c, body).status_code == 403
    # Our responder cannot answer now (tryLater): no verdict on the signer, 503, and the nonce
    # stays usable for a retry.
    verifier = env.service.ca._signed_requests  # type: ignore[attr-defined]
    real_ocsp = verifier.ocsp
    verifier.ocsp = lambda der: bytes.fromhex("3003" + "0a0103")  # OCSPResponse, responseStatus tryLater
    body = _signed(env, c)
    r = _follow_up(env, c, body)
    assert r.status_code == 503 and "cannot be checked now" in r.get_json()["detail"], r.get_json()
    verifier.ocsp = real_ocsp
    # Revoked through the RA after the challenge was signed: our OCSP says revoked.
    env.ok("POST", f"/api/cards/{c.card}/revoke", "a", json={"reason": "keyCompromise"})
    r = _follow_up(env, c, body)
    assert r.status_code == 403 and "revoked" in r.get_json()["detail"].lower(), r.get_json()
    with env.service.db.read() as s:
        assert s.scalar(select(FollowUp.order_id)) is None  # nothing was created
    # And no further challenge for a card that is not valid.
    assert env.call("POST", f"/api/cards/{c.card}/follow-up/challenge", "a").status_code == 409


def test_held_card_and_card_without_address(env: RAEnv) -> None:
    c = _first_card(env, activate=False, address=None)  # shipped, not activated: its certificate is on hold
    assert env.call("POST", f"/api/cards/{c.card}/follow-up/challenge", "a").status_code == 409
    assert env.call("POST", f"/api/cards/{c.card}/order-password", "a").status_code == 409
    # The CA refuses a signature by the held certificate too (OCSP: certificateHold).
    from ra.errors import RAError

    content = canonical_request(c.card, "qes-card", "n", None)
    try:
        env.service.ca.verify_signed_request(base64.b64decode(_cms(content, c.cert, c.key)))
    except RAError as exc:
        assert "revoked" in exc.detail.lower() or "hold" in exc.detail.lower(), exc.detail
    else:
        raise AssertionError("a held certificate was accepted")
    # The CA accepts only the standard's QcIdentMethod values, and only on qualified profiles.
    from ca.issuance.service import Actor
    from ca.profiles.subject import SubjectInput
    from qtsp.demo import DEMO_SUBJECTS, fresh_csr

    for profile, oid, why in (
        ("qes-natural", "1.2.3.4", "not one of"),
        ("upc-auth", oids.QC_IDENT_EIDAS2_B.dotted_string, "no QC statements"),
    ):
        try:
            env.service.ca.issue(
                profile=profile,
                csr=fresh_csr(),
                subject=SubjectInput.from_json_obj(DEMO_SUBJECTS[profile]),
                actor=Actor("test", "ca-operator"),
                validity_days=10,
                evidence_ref=f"test:{profile}",
                on_hold=True,
                qc_ident_method=oid,
            )
        except RAError as exc:
            assert why in exc.detail, exc.detail
        else:
            raise AssertionError(f"QcIdentMethod {oid} accepted on {profile}")
    # Once valid: no order password without a registered postal address to post it to.
    env.ok("POST", f"/api/cards/{c.card}/confirm-receipt", "a")
    r = env.call("POST", f"/api/cards/{c.card}/order-password", "a")
    assert r.status_code == 422 and "postal address" in r.get_json()["detail"]


def test_followup_by_order_password(env: RAEnv) -> None:
    c = _first_card(env)
    password = _order_password(env, c)
    assert password not in json.dumps(_audit(env), default=str)
    # Wrong password, unknown card and someone else's card give the same answer.
    bad = env.call(
        "POST",
        f"/api/cards/{c.card}/follow-up",
        "a",
        json={"authentication": "order-password", "order_password": "AAAA-BBBB-CCCC-DDDD"},
    )
    unknown = env.call(
        "POST", "/api/cards/99999/follow-up", "a", json={"authentication": "order-password", "order_password": password}
    )
    assert bad.status_code == unknown.status_code == 403
    assert bad.get_json()["detail"] == unknown.get_json()["detail"]
    body = {"authentication": "order-password", "order_password": password.lower().replace("-", " ")}
    order = env.ok("POST", f"/api/cards/{c.card}/follow-up", "a", json=body, status=201)["id"]
    # Single use.
    assert _follow_up(env, c, body).status_code == 403
    with env.service.db.read() as s:
        row = s.get(FollowUp, order)
        assert row is not None and (row.authenticated_by, row.signer, row.position) == ("order-password", None, 1)
    # Expiry: a password whose 30 days have passed is refused.
    password = _order_password(env, c)
    with env.service.db.write() as s:
        s.execute(update(OrderPassword).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert _follow_up(env, c, {"authentication": "order-password", "order_password": password}).status_code == 403
    # Wrong passwords are limited per card: 5 failures in the hour (three above: the wrong, the
    # reused and the expired one), then even the right password gets 429 with Retry-After.
    password = _order_password(env, c)
    statuses = [
        _follow_up(env, c, {"authentication": "order-password", "order_password": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"}).status_code
        for _ in range(3)
    ]
    assert statuses == [403, 403, 429]
    r = _follow_up(env, c, {"authentication": "order-password", "order_password": password})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    text = json.dumps(_audit(env), default=str)
    assert password not in text and "card.order_password_refused" in text and "card.order_password_used" in text


def test_third_followup_needs_identification_and_name_change_is_refused(env: RAEnv) -> None:
    c0 = _first_card(env)
    o1 = env.ok("POST", f"/api/cards/{c0.card}/follow-up", "a", json=_signed(env, c0), status=201)["id"]
    c1 = _produce(env, o1)
    o2 = env.ok("POST", f"/api/cards/{c1.card}/follow-up", "a", json=_signed(env, c1), status=201)["id"]
    # The rule holds at approval too: lower the limit after creation and approval asks for identity.
    env.service.followup_settings = FollowUpSettings(without_identification=1)
    r = env.call("POST", f"/api/orders/{o2}/approve", "ra1")
    assert r.status_code == 422 and "identity" in r.get_json()["detail"]
    env.service.followup_settings = FollowUpSettings()
    c2 = _produce(env, o2)
    # Third in a row without identification: refused with a message naming the rule.
    r = _follow_up(env, c2, _signed(env, c2))
    assert r.status_code == 422 and "new identification" in r.get_json()["detail"]
    # Naming the existing signature as the "new identification" does not count.
    r = _follow_up(env, c2, _signed(env, c2, method="existing-qes"))
    assert r.status_code == 422
    # With an identification method it is created but needs identity evidence before approval.
    o3 = env.ok(
        "POST", f"/api/cards/{c2.card}/follow-up", "a", json=_signed(env, c2, method="postident-branch"), status=201
    )["id"]
    r = env.call("POST", f"/api/orders/{o3}/approve", "ra1")
    assert r.status_code == 422 and "identity" in r.get_json()["detail"]
    assert env.identity(o3, "Anna", "A", "1980-01-01").status_code == 200
    c3 = _produce(env, o3)
    with env.service.db.read() as s:
        row = s.get(FollowUp, o3)
        assert row is not None and (row.position, row.identification_required) == (3, True)
    # The identification resets the count: the next follow-up needs none.
    o4 = env.ok("POST", f"/api/cards/{c3.card}/follow-up", "a", json=_signed(env, c3), status=201)["id"]
    # A name change (e.g. marriage) after the order: approval refuses; a new request too.
    with env.service.db.write() as s:
        s.execute(update(Person).values(surname="Becker"))
    r = env.call("POST", f"/api/orders/{o4}/approve", "ra1")
    assert r.status_code == 422 and "changed name" in r.get_json()["detail"]
    r = _follow_up(env, c3, _signed(env, c3))
    assert r.status_code == 422 and "changed name needs a new order" in r.get_json()["detail"]
    assert "surname" in r.get_json()["detail"]
