"""Online renewal (issue 6 point 2, the DigiSign model) on SQLite and PostgreSQL: the form from the
current certificate, the window (at least N days before expiry), the chosen issuance date, a new
key, unchanged attributes, the documents with the representative's contract, the officer's
approval and the scheduled issuance on the date that re-checks eligibility."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import func, select, update

from ca.store.models import AuditEvent, CertificateRecord, IssuanceJournal
from ra.errors import RAError, RAErrorKind
from ra.renewal import RenewalService
from ra.store.models import Card, Order, SlotRecord
from tests.integration.ra_support import RAEnv

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
ANNA = ("Anna", "A", "1980-01-01")


def _csr(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _valid_card(
    env: RAEnv, *, organisation: tuple[int, int] | None = None, confirm: bool = True
) -> tuple[int, int, ec.EllipticCurvePrivateKey]:
    """A card of applicant "a" (Anna), activated unless asked otherwise: (order, card, its key)."""
    if "a" not in env.tokens:
        env.applicant("a", *ANNA)
    body: dict[str, object] = {"product": "qes-card", "method": "on-site", "country": "DE"}
    if organisation is not None:
        body.update(method="postident-branch", organisation_id=organisation[0])
    order = env.ok("POST", "/api/orders", "a", json=body, status=201)["id"]
    env.identity(order, *ANNA)
    if organisation is not None:
        assert env.ozb(order, organisation[1]).status_code == 200
    env.ok("POST", f"/api/orders/{order}/approve", "ra1")
    key = ec.generate_private_key(ec.SECP256R1())
    env.ok("POST", f"/api/orders/{order}/slots/signature/csr", "caop", json={"csr_pem": _csr(key)})
    card = int(env.ok("POST", f"/api/orders/{order}/ship", "caop")["card_id"])
    if confirm:
        env.ok("POST", f"/api/cards/{card}/confirm-receipt", "a")
    return order, card, key


def _form(env: RAEnv, card: int) -> Any:
    return env.ok("GET", f"/api/cards/{card}/renewal", "a")


def _request(env: RAEnv, card: int, issue_on: dt.date, **over: Any) -> Any:
    form = over.pop("form", None) or _form(env, card)
    body = {
        "issue_on": issue_on.isoformat(),
        "subjects": {s["name"]: s["subject"] for s in form["slots"]},
        "csrs": {s["name"]: _csr(ec.generate_private_key(ec.SECP256R1())) for s in form["slots"]},
    }
    body.update(over)
    return env.call("POST", f"/api/cards/{card}/renewal", "a", json=body)


def _doc(env: RAEnv, order: int, kind: str, who: str = "a", signatory_id: int | None = None) -> Any:
    data: dict[str, Any] = {"kind": kind, "file": (io.BytesIO(PDF), f"{kind}.pdf")}
    if signatory_id is not None:
        data["signatory_id"] = str(signatory_id)
    return env.call("POST", f"/api/renewals/{order}/documents", who, data=data, content_type="multipart/form-data")


def _id_copy(env: RAEnv, order: int) -> None:
    r = env.call(
        "POST",
        f"/api/orders/{order}/copy",
        "a",
        data={"file": (io.BytesIO(PNG), "id.png"), "redacted": ""},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.get_json()


def _all_documents(env: RAEnv, order: int, signatory_id: int | None = None) -> None:
    assert _doc(env, order, "contract", signatory_id=signatory_id).status_code == 201
    assert _doc(env, order, "declaration").status_code == 201
    assert _doc(env, order, "terms", who="ra1").status_code == 201
    _id_copy(env, order)


def _rule(r: Any, code: str, status: int = 422) -> None:
    body = r.get_json()
    assert r.status_code == status, body
    assert r.mimetype == "application/problem+json"
    assert f"qtsp.ra.renewal.{code}" in {f["code"] for f in body.get("findings", [])}, body


def _not_after(env: RAEnv, card: int) -> dt.datetime:
    with env.service.db.read() as s:
        value = s.scalar(select(Card.not_after).where(Card.id == card))
    assert value is not None
    return value


def _at(env: RAEnv, when: dt.datetime) -> None:
    env.service.clock = lambda: when


def _actions(env: RAEnv) -> list[tuple[str, str, Any]]:
    with env.service.db.read() as s:
        rows = s.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        return [(e.action, e.object_id or "", e.details) for e in rows]


def _count_orders(env: RAEnv) -> int:
    with env.service.db.read() as s:
        return len(list(s.scalars(select(Order.id))))


def test_form_comes_from_the_certificate_and_only_the_holder_renews(env: RAEnv) -> None:
    order, card, _ = _valid_card(env)
    # The form is read from the issued certificate, not from the order: change the order's data.
    with env.service.db.write() as s:
        s.execute(update(Order).where(Order.id == order).values(country="AT"))
    form = _form(env, card)
    [slot] = form["slots"]
    subject = slot["subject"]
    assert subject["countryName"] == "DE" and subject["givenName"] == "Anna" and subject["surname"] == "A"
    assert subject["commonName"] == "Anna A" and subject["serialNumber"].startswith("IDCDE-T")
    assert slot["serial_hex"] == env.slot_serial(order)
    not_after = _not_after(env, card)
    assert form["window"]["earliest"] == dt.datetime.now(dt.UTC).date().isoformat()
    assert form["window"]["latest"] == (not_after - dt.timedelta(days=3)).date().isoformat()
    assert form["documents_required"] == ["contract", "declaration", "terms", "id-copy"]
    assert form["contract_signer"] == "holder"
    # Operators cannot renew on the holder's behalf (API and service); another applicant sees nothing.
    for who in ("ra1", "revo", "caop", "aud"):
        assert env.call("GET", f"/api/cards/{card}/renewal", who).status_code == 403
        assert env.call("POST", f"/api/cards/{card}/renewal", who, json={}).status_code == 403
    officer = env.service.authenticate(env.tokens["ra1"])
    try:
        RenewalService(env.service).form(officer, card)
        raise AssertionError("an officer got the holder's renewal form")
    except RAError as exc:
        assert exc.kind is RAErrorKind.FORBIDDEN
    env.applicant("b", "Bert", "B", "1970-02-02")
    assert env.call("GET", f"/api/cards/{card}/renewal", "b").status_code == 404


def test_request_rules_window_date_attributes_and_new_key(env: RAEnv) -> None:
    _, card, old_key = _valid_card(env)
    form = _form(env, card)
    today = dt.datetime.now(dt.UTC).date()
    latest = dt.date.fromisoformat(form["window"]["latest"])
    before = _count_orders(env)
    _rule(_request(env, card, today - dt.timedelta(days=1), form=form), "date_past")
    _rule(_request(env, card, latest + dt.timedelta(days=1), form=form), "date_after_window")
    changed = {"signature": {**form["slots"][0]["subject"], "surname": "Other"}}
    _rule(_request(env, card, today, form=form, subjects=changed), "changed_attribute")
    added = {"signature": {**form["slots"][0]["subject"], "organizationName": "Extra GmbH"}}
    _rule(_request(env, card, today, form=form, subjects=added), "changed_attribute")
    _rule(_request(env, card, today, form=form, csrs={"signature": _csr(old_key)}), "same_key")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # below TS 119 312's 3072 bits
    _rule(_request(env, card, today, form=form, csrs={"signature": _csr(weak)}), "csr")
    r = _request(env, card, today, form=form, csrs={"signature": "not a csr"})
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    assert _count_orders(env) == before  # nothing was created by the refusals, but each was audited
    refused = [d for a, o, d in _actions(env) if a == "renewal.refused" and o == str(card)]
    # The unparsable CSR is refused by the API before the service: six refusals reached the service.
    assert len(refused) == 6 and "qtsp.ra.renewal.date_past" in refused[0]
    # Inside the closing window (fewer than 3 days left) and after expiry: refused, naming the rule.
    holder = env.service.authenticate(env.tokens["a"])
    renewals = RenewalService(env.service)
    not_after = _not_after(env, card)
    for when, code in (
        (not_after - dt.timedelta(days=2, hours=23), "closing_window"),
        (not_after + dt.timedelta(hours=1), "expired"),
    ):
        _at(env, when)
        try:
            renewals.form(holder, card)
            raise AssertionError(f"renewal allowed at {when}")
        except RAError as exc:
            assert exc.kind is RAErrorKind.POLICY_VIOLATION and f"qtsp.ra.renewal.{code}" in exc.detail
    # Exactly N days before expiry is still inside the window.
    _at(env, not_after - dt.timedelta(days=3))
    assert renewals.form(holder, card).window.latest == (not_after - dt.timedelta(days=3)).date()
    env.service.clock = lambda: dt.datetime.now(dt.UTC)
    r = _request(env, card, latest, form=form)
    assert r.status_code == 201, r.get_json()
    new = r.get_json()["id"]
    view = env.ok("GET", f"/api/orders/{new}", "a")
    assert view["kind"] == "renewal" and view["state"] == "open"
    assert view["slots"][0]["state"] == "awaiting-csr"
    with env.service.db.read() as s:
        frozen = s.scalar(select(SlotRecord.subject_json).where(SlotRecord.order_id == new))
    assert frozen is not None and json.loads(frozen) == form["slots"][0]["subject"]
    assert _request(env, card, latest, form=form).status_code == 409  # one pending renewal per card
    assert any(a == "renewal.requested" and o == str(new) for a, o, _ in _actions(env))


def test_revoked_expired_and_held_cards_are_refused(env: RAEnv) -> None:
    _, card, _ = _valid_card(env, confirm=False)  # shipped, not activated: on hold at the CA
    r = env.call("GET", f"/api/cards/{card}/renewal", "a")
    _rule(r, "card_state")
    _rule(r, "ca_held")
    # Even with the card marked valid, the CA's hold refuses it.
    with env.service.db.write() as s:
        s.execute(update(Card).where(Card.id == card).values(state="valid"))
    r = env.call("GET", f"/api/cards/{card}/renewal", "a")
    _rule(r, "ca_held")
    assert "card_state" not in json.dumps(r.get_json()["findings"])
    with env.service.db.write() as s:
        s.execute(update(Card).where(Card.id == card).values(state="not-activated"))
    env.ok("POST", f"/api/cards/{card}/revoke", "a", json={"reason": "keyCompromise"})
    r = env.call("GET", f"/api/cards/{card}/renewal", "a")
    _rule(r, "card_state")
    _rule(r, "ca_revoked")
    # An expired card (marked by the expiry job) is refused too.
    _, card2, _ = _valid_card(env)
    with env.service.db.write() as s:
        s.execute(update(Card).where(Card.id == card2).values(state="expired"))
    _rule(env.call("GET", f"/api/cards/{card2}/renewal", "a"), "card_state")


def test_documents_representative_contract_approval_and_issuance_on_the_date(env: RAEnv) -> None:
    org_id, max_id = env.organisation()  # legal representative: Max Mustermann, not the holder
    _, other_sig = env.organisation()
    order, card, old_key = _valid_card(env, organisation=(org_id, max_id))
    form = _form(env, card)
    assert "Max Mustermann" in form["contract_signer"]
    issue_on = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=5)
    renewal = _request(env, card, issue_on, form=form).get_json()["id"]
    # Missing documents block approval, naming them.
    r = env.call("POST", f"/api/renewals/{renewal}/approve", "ra1")
    _rule(r, "documents_missing")
    assert "contract, declaration, terms, id-copy" in r.get_json()["detail"]
    # The contract signed by the holder (or by someone else's representative) is refused; nothing stored.
    _rule(_doc(env, renewal, "contract"), "contract_signer")
    _rule(_doc(env, renewal, "contract", signatory_id=other_sig), "contract_signer")
    assert env.ok("GET", f"/api/renewals/{renewal}", "a")["documents"]["contract"] is None
    assert _doc(env, renewal, "declaration", signatory_id=max_id).status_code == 400
    assert _doc(env, renewal, "id-copy").status_code == 422  # schema: the ID copy goes to /copy
    exe = env.call(
        "POST",
        f"/api/renewals/{renewal}/documents",
        "a",
        data={"kind": "terms", "file": (io.BytesIO(b"MZ\x90\x00" + b"\x00" * 64), "t.exe")},
        content_type="multipart/form-data",
    )
    assert exe.status_code == 415
    _all_documents(env, renewal, signatory_id=max_id)
    docs = env.ok("GET", f"/api/renewals/{renewal}", "ra1")["documents"]
    assert docs["contract"]["signed_by"].startswith("Max Mustermann") and docs["contract"]["signatory_id"] == max_id
    assert docs["terms"]["supplied_by"].startswith(f"account:{env.ids['ra1']}:")
    assert docs["declaration"]["supplied_by"].startswith(f"account:{env.ids['a']}:")
    assert all(len(docs[k]["sha256"]) == 64 and docs[k]["received_at"] for k in docs)
    # The generic approval and CSR submission do not apply to a renewal.
    assert env.call("POST", f"/api/orders/{renewal}/approve", "ra1").status_code == 409
    # Approval: the order waits for its date.
    assert env.ok("POST", f"/api/renewals/{renewal}/approve", "ra1")["state"] == "in-production"
    assert env.ok("GET", f"/api/renewals/{renewal}", "a")["renewal_state"] == "scheduled"
    r = env.call("POST", f"/api/orders/{renewal}/slots/signature/csr", "caop", json={"csr_pem": _csr(old_key)})
    assert r.status_code == 409
    renewals = RenewalService(env.service)
    midnight = dt.datetime.combine(issue_on, dt.time(), tzinfo=dt.UTC)
    _at(env, midnight - dt.timedelta(seconds=1))
    assert renewals.issue_due().issued == ()  # not before the date
    assert env.slot_serial(order) and _new_card(env, renewal) is None
    _at(env, midnight + dt.timedelta(minutes=1))
    run = renewals.issue_due()
    assert run.issued == (renewal,)
    assert renewals.issue_due().issued == ()  # idempotent
    env.service.clock = lambda: dt.datetime.now(dt.UTC)
    view = env.ok("GET", f"/api/renewals/{renewal}", "a")
    assert view["state"] == "done" and view["renewal_state"] == "issued"
    new_card = view["new_card_id"]
    assert new_card is not None and new_card != card
    # The new certificate: same subject, new key; the old card is not revoked.
    new_serial = env.slot_serial(renewal)
    with env.service.db.read() as s:
        rows = {r.serial: r for r in s.scalars(select(CertificateRecord))}
    new_cert = x509.load_der_x509_certificate(rows[new_serial].der)
    old_cert = x509.load_der_x509_certificate(rows[env.slot_serial(order)].der)
    assert new_cert.subject == old_cert.subject
    assert new_cert.public_key() != old_cert.public_key()
    assert rows[env.slot_serial(order)].status == "good"
    assert env.ok("GET", f"/api/cards/{card}", "a")["state"] == "valid"
    # The auditor's evidence bundle of the new certificate carries the renewal and its documents.
    [new_slot] = env.ok("GET", f"/api/orders/{renewal}", "ra1")["slots"]
    bundle = env.ok("GET", f"/api/audit/evidence/{new_slot['issuer']}/{new_serial}", "aud")
    registration = bundle["registration"]
    assert registration["renewal"]["card_id"] == card and registration["renewal"]["state"] == "issued"
    assert {d["kind"] for d in registration["renewal_documents"]} == {"contract", "declaration", "terms"}
    assert registration["evidence_copy"] is not None
    # Delivered online: the holder confirms installing it, which releases the CA's hold.
    assert env.ok("POST", f"/api/cards/{new_card}/confirm-receipt", "a")["state"] == "valid"
    actions = [a for a, _, _ in _actions(env)]
    for action in ("renewal.requested", "renewal.document_received", "order.approve", "renewal.issued"):
        assert action in actions


def _new_card(env: RAEnv, order: int) -> int | None:
    with env.service.db.read() as s:
        return s.scalar(select(Card.id).where(Card.order_id == order))


def test_scheduled_issuance_rechecks_eligibility(env: RAEnv) -> None:
    # The holder is the organisation's representative: their own contract suffices.
    anna = {"given_names": "Anna", "surname": "A", "date_of_birth": "1980-01-01", "role": "Geschäftsführerin"}
    org_id, anna_sig = env.organisation(signatories=[anna])
    _, card, _ = _valid_card(env, organisation=(org_id, anna_sig))
    assert _form(env, card)["contract_signer"] == "holder"
    today = dt.datetime.now(dt.UTC).date()
    first = _request(env, card, today + dt.timedelta(days=2)).get_json()["id"]
    _all_documents(env, first)
    env.ok("POST", f"/api/renewals/{first}/approve", "ra1")
    # The card is revoked between approval and the date: nothing is issued, the reason recorded.
    env.ok("POST", f"/api/cards/{card}/revoke", "a", json={"reason": "keyCompromise"})
    renewals = RenewalService(env.service)
    _at(env, dt.datetime.combine(today + dt.timedelta(days=2), dt.time(1), tzinfo=dt.UTC))
    assert renewals.issue_due().not_issued == (first,)
    env.service.clock = lambda: dt.datetime.now(dt.UTC)
    view = env.ok("GET", f"/api/renewals/{first}", "a")
    assert view["state"] == "cancelled" and view["renewal_state"] == "not-issued" and view["new_card_id"] is None
    assert "qtsp.ra.renewal.card_state" in view["outcome"] and "ca_revoked" in view["outcome"]

    # A card without organisation: the holder signs; the window closes before the job runs.
    _, card2, _ = _valid_card(env)
    second = _request(env, card2, today + dt.timedelta(days=1)).get_json()["id"]
    _rule(_doc(env, second, "contract", signatory_id=anna_sig), "contract_signer")
    _all_documents(env, second)
    env.ok("POST", f"/api/renewals/{second}/approve", "ra1")
    _at(env, _not_after(env, card2) - dt.timedelta(days=2))  # the job did not run until too late
    assert renewals.issue_due().not_issued == (second,)
    env.service.clock = lambda: dt.datetime.now(dt.UTC)
    view = env.ok("GET", f"/api/renewals/{second}", "a")
    assert view["state"] == "cancelled" and "closing_window" in view["outcome"]
    assert _new_card(env, second) is None
    assert any(a == "order.cancel" and o == str(second) for a, o, _ in _actions(env))


class Crash(BaseException):
    """The process ends here (not an ``Exception``: nothing on the way may handle it)."""


def _certificates_of(env: RAEnv, order_id: int) -> int:
    with env.service.db.read() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(CertificateRecord)
                .join(IssuanceJournal, IssuanceJournal.id == CertificateRecord.journal_id)
                .where(IssuanceJournal.evidence_ref.like(f"ra:order:{order_id}:slot:%"))
            )
            or 0
        )


def test_a_crash_during_scheduled_issuance_is_reconciled_to_one_certificate(
    env: RAEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, card, _ = _valid_card(env)
    issue_on = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    renewal = _request(env, card, issue_on).get_json()["id"]
    _all_documents(env, renewal)
    env.ok("POST", f"/api/renewals/{renewal}/approve", "ra1")
    service, renewals = env.service, RenewalService(env.service)
    on_the_day = dt.datetime.combine(issue_on, dt.time(8), tzinfo=dt.UTC)
    _at(env, on_the_day)

    def crash(*args: object, **kwargs: object) -> object:
        raise Crash("process ended after the CA committed, before the RA recorded")

    monkeypatch.setattr(service, "_record_issued", crash)
    with pytest.raises(Crash):
        renewals.issue_due()
    monkeypatch.undo()
    assert _certificates_of(env, renewal) == 1
    # The next run does not issue again while the slot is issuing: reconciliation settles it.
    assert renewals.issue_due().pending == (renewal,)
    assert _certificates_of(env, renewal) == 1
    _at(env, on_the_day + dt.timedelta(minutes=6))
    assert len(service.reconcile_issuing(dt.timedelta(minutes=5)).recorded) == 1
    assert renewals.issue_due().issued == (renewal,)
    assert _certificates_of(env, renewal) == 1 and _new_card(env, renewal) is not None
    with service.db.read() as s:
        state = s.scalar(select(Order.state).where(Order.id == renewal))
    assert state == "done"


def test_two_slot_card_needs_a_new_key_per_slot_and_four_eyes(env: RAEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    env.applicant("a", *ANNA)
    body = {"product": "upc-card", "method": "postident-eid", "country": "DE", "email": "anna@example.org"}
    order = env.ok("POST", "/api/orders", "a", json=body, status=201)["id"]
    env.identity(order, *ANNA)
    env.confirm_email(order)
    env.ok("POST", f"/api/orders/{order}/approve", "ra1")
    env.ok("POST", f"/api/orders/{order}/approve", "ra2")
    for slot in ("signature", "authentication"):
        key = ec.generate_private_key(ec.SECP256R1())
        env.ok("POST", f"/api/orders/{order}/slots/{slot}/csr", "caop", json={"csr_pem": _csr(key)})
    card = int(env.ok("POST", f"/api/orders/{order}/ship", "caop")["card_id"])
    env.ok("POST", f"/api/cards/{card}/confirm-receipt", "a")
    form = _form(env, card)
    assert [s["name"] for s in form["slots"]] == ["signature", "authentication"]
    # Each slot's subject as its certificate carries it (the email only where the profile allows it).
    assert [s["subject"].get("email") for s in form["slots"]] == [None, "anna@example.org"]
    issue_on = dt.datetime.now(dt.UTC).date()
    one = _csr(ec.generate_private_key(ec.SECP256R1()))
    _rule(_request(env, card, issue_on, form=form, csrs={"signature": one, "authentication": one}), "same_key")
    r = _request(env, card, issue_on, form=form, csrs={"signature": one})
    assert r.status_code == 400  # one CSR per slot
    # The CA refuses the second slot on the date: the renewal is not issued, and the first slot's
    # certificate, which belongs to no card, is revoked.
    refused = _request(env, card, issue_on, form=form).get_json()["id"]
    _all_documents(env, refused)
    env.ok("POST", f"/api/renewals/{refused}/approve", "ra1")
    env.ok("POST", f"/api/renewals/{refused}/approve", "ra2")
    real_issue = env.service.ca.issue

    def refuse_authentication(**kwargs: Any) -> Any:
        if kwargs["profile"] == "upc-auth":
            raise RAError(RAErrorKind.CA_REFUSED, "the CA refused: injected refusal of the authentication slot")
        return real_issue(**kwargs)

    monkeypatch.setattr(env.service.ca, "issue", refuse_authentication)
    assert RenewalService(env.service).issue_due().not_issued == (refused,)
    monkeypatch.undo()
    orphan = env.slot_serial(refused, "signature")
    with env.service.db.read() as s:
        assert s.scalar(select(CertificateRecord.status).where(CertificateRecord.serial == orphan)) == "revoked"
    assert any(a == "renewal.orphan_revoked" and o == str(refused) for a, o, _ in _actions(env))
    view = env.ok("GET", f"/api/renewals/{refused}", "a")
    assert view["state"] == "cancelled" and "injected refusal" in view["outcome"] and view["new_card_id"] is None
    # A new request after the cancelled one goes through.
    renewal = _request(env, card, issue_on, form=form).get_json()["id"]
    _all_documents(env, renewal)
    assert env.ok("POST", f"/api/renewals/{renewal}/approve", "ra1") == {
        "state": "open",
        "approvals": [f"account:{env.ids['ra1']}:ra1@qtsp.example"],
        "needed": 2,
    }
    assert env.call("POST", f"/api/renewals/{renewal}/approve", "ra1").status_code == 409  # four eyes
    assert env.ok("POST", f"/api/renewals/{renewal}/approve", "ra2")["state"] == "in-production"
    assert RenewalService(env.service).issue_due().issued == (renewal,)  # the date is today
    view = env.ok("GET", f"/api/orders/{renewal}", "a")
    assert view["state"] == "done" and [s["state"] for s in view["slots"]] == ["issued", "issued"]
    assert env.ok("GET", f"/api/cards/{view['card_id']}", "a")["state"] == "not-activated"


def test_renewal_documents_follow_the_retention_period(env: RAEnv) -> None:
    """The contract, declaration and terms of a renewal are deleted with the ID copy once the
    evidence retention period has passed; digests, sizes, signers and the audit entries stay."""
    import dataclasses

    from ra.store.models import RenewalDocument

    anna = {"given_names": "Anna", "surname": "A", "date_of_birth": "1980-01-01", "role": "Geschäftsführerin"}
    org_id, anna_sig = env.organisation(signatories=[anna])
    _, card, _ = _valid_card(env, organisation=(org_id, anna_sig))
    today = dt.datetime.now(dt.UTC).date()
    renewal = _request(env, card, today + dt.timedelta(days=2)).get_json()["id"]
    _all_documents(env, renewal)
    retention = dt.timedelta(days=30)
    assert renewal not in env.service.purge_expired_copies(retention)  # not yet due
    later = dataclasses.replace(env.service, clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=31))
    assert renewal in later.purge_expired_copies(retention)
    assert renewal not in later.purge_expired_copies(retention)  # once
    with env.service.db.read() as s:
        rows = s.scalars(select(RenewalDocument).where(RenewalDocument.order_id == renewal)).all()
    assert sorted(r.kind for r in rows) == ["contract", "declaration", "terms"]
    assert all(r.ciphertext is None and r.purged_at is not None and len(r.sha256) == 64 for r in rows)
    docs = env.ok("GET", f"/api/renewals/{renewal}", "ra1")["documents"]
    assert all(docs[k]["purged_at"] and docs[k]["sha256"] for k in ("contract", "declaration", "terms"))
    purged = [(a, d) for a, o, d in _actions(env) if a == "order.renewal_document_purged" and o == str(renewal)]
    assert sorted(json.loads(d)["kind"] for _, d in purged) == ["contract", "declaration", "terms"]
