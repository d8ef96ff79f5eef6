"""Adversarial RA cases through the API on SQLite and PostgreSQL: visibility, self-approval,
second factor, TOTP replay, illegal transitions, evidence and copy refusals, OZB, chamber,
method matrix, DN reassignment, CA refusal leaving the slot reusable; and the tests that wait
for the CA's on_hold and RevocationService."""

from __future__ import annotations

import datetime as dt
import io

import pyotp
from sqlalchemy import select

from ca.store.models import CertificateRecord
from ra.email_confirmation import ACCOUNT_ANSWER
from ra.roles import Role
from ra.store import repository as repo
from ra.store.models import EvidenceCopy, OutboxMessage
from tests.integration.helpers import race
from tests.integration.ra_support import PASSWORD, RAEnv, csr_pem

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


def _order(env: RAEnv, who: str, product: str = "qes-card", method: str = "on-site", **extra: object) -> int:
    body = {"product": product, "method": method, "country": "DE", **extra}
    return int(env.ok("POST", "/api/orders", who, json=body, status=201)["id"])


def test_applicants_see_only_their_own(env: RAEnv) -> None:
    env.applicant("a", "Anna", "A", "1980-01-01")
    env.applicant("b", "Bert", "B", "1981-01-01")
    order_a = _order(env, "a")
    assert env.call("GET", f"/api/orders/{order_a}", "b").status_code == 404
    assert env.call("POST", f"/api/orders/{order_a}/cancel", "b").status_code == 404
    assert env.ok("GET", "/api/orders", "b") == []
    assert [o["id"] for o in env.ok("GET", "/api/orders", "a")] == [order_a]


def test_one_account_per_person_and_email(env: RAEnv) -> None:
    env.applicant("a", "Anna", "A", "1980-01-01")
    body = {
        "email": "other@example.org",
        "password": PASSWORD,
        "given_names": "ANNA",
        "surname": "a",
        "date_of_birth": "1980-01-01",
    }
    # Refused, but told as any registration is (the address's owner learns why by mail).
    r = env.call("POST", "/api/accounts", json=body)
    assert r.status_code == 202 and r.get_json() == {"detail": ACCOUNT_ANSWER}
    r = env.call("POST", "/api/accounts", json={**body, "email": "a@example.org", "given_names": "Zoe"})
    assert r.status_code == 202 and r.get_json() == {"detail": ACCOUNT_ANSWER}
    with env.service.db.read() as s:
        assert repo.account_by_email(s, "other@example.org") is None
        assert repo.person_find(s, "Zoe", "a", dt.date(1980, 1, 1)) is None
        mails = {
            m.purpose: m.recipient_hint
            for m in s.scalars(select(OutboxMessage).where(OutboxMessage.channel == "email"))
        }
    assert mails["account-refused"] == "ot***@example.org" and mails["account-exists"] == "a***@example.org"


def test_nobody_approves_their_own_order_or_as_subject(env: RAEnv) -> None:
    env.applicant("a", "Olga", "Officer", "1979-09-09")
    env.operator("olga", Role.RA_OFFICER, person=("Olga", "Officer", dt.date(1979, 9, 9)))
    order = _order(env, "a")
    env.identity(order, "Olga", "Officer", "1979-09-09")
    r = env.call("POST", f"/api/orders/{order}/approve", "olga")
    assert r.status_code == 403 and "subject" in r.get_json()["detail"]
    assert env.ok("POST", f"/api/orders/{order}/approve", "ra1")["state"] == "in-production"


def test_approval_needs_a_totp_session_and_codes_are_not_replayed(env: RAEnv) -> None:
    env.applicant("a", "Anna", "A", "1980-01-01")
    order = _order(env, "a")
    env.identity(order, "Anna", "A", "1980-01-01")
    plain = env.ok("POST", "/api/auth/login", json={"email": "ra1@qtsp.example", "password": PASSWORD})
    assert plain["second_factor"] is False
    env.tokens["plain"] = plain["token"]
    r = env.call("POST", f"/api/orders/{order}/approve", "plain")
    assert r.status_code == 403 and r.get_json()["type"].endswith("second_factor_required")
    code = pyotp.TOTP(env.totp["ra2"]).now()
    login = {"email": "ra2@qtsp.example", "password": PASSWORD, "totp": code}
    first = env.call("POST", "/api/auth/login", json=login)
    second = env.call("POST", "/api/auth/login", json=login)
    assert 401 in (first.status_code, second.status_code)  # one of them replays a spent code
    assert (
        env.call("POST", "/api/auth/login", json={**login, "totp": "000000", "password": "wrong password!"}).status_code
        == 401
    )


def test_one_totp_code_wins_a_login_race(env: RAEnv) -> None:
    """Two logins racing with the same fresh code: the step is claimed by a conditional update, so
    exactly one gets a second-factor session (SQLite serialises writers; PostgreSQL really races)."""
    import threading

    from ra.errors import RAError

    now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)  # a step no earlier login has used
    env.service.clock = lambda: now
    code = pyotp.TOTP(env.totp["ra2"]).at(now)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            env.service.login("ra2@qtsp.example", PASSWORD, code)
            outcomes.append("ok")
        except RAError as exc:
            outcomes.append(exc.detail)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes) == ["ok"] + ["wrong or already used TOTP code"] * 3


def test_failed_logins_are_throttled_per_email_and_per_address(env: RAEnv) -> None:
    from ra.service import LOGIN_FAILURES_PER_ADDRESS, LOGIN_FAILURES_PER_EMAIL, LOGIN_WINDOW

    env.applicant("a", "Anna", "A", "1980-01-01")
    right = {"email": "a@example.org", "password": PASSWORD}
    wrong = {**right, "password": "not the password"}
    for _ in range(LOGIN_FAILURES_PER_EMAIL):
        assert env.call("POST", "/api/auth/login", json=wrong).status_code == 401
    # At the limit even the right password is refused, with the time to wait.
    r = env.call("POST", "/api/auth/login", json=right)
    assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= LOGIN_WINDOW.total_seconds()
    # Another account from the same address is still fine (below the address limit)...
    assert env.call("POST", "/api/auth/login", json={**right, "email": "ra1@qtsp.example"}).status_code == 200
    # ...until the address itself has failed too often, for any email, known or not.
    for i in range(LOGIN_FAILURES_PER_ADDRESS - LOGIN_FAILURES_PER_EMAIL):
        env.call("POST", "/api/auth/login", json={"email": f"nobody{i}@example.org", "password": "x" * 12})
    r = env.call("POST", "/api/auth/login", json={**right, "email": "ra1@qtsp.example"})
    assert r.status_code == 429
    # After the window the right password works again, and old failures are purged.
    later = dt.datetime.now(dt.UTC) + LOGIN_WINDOW + dt.timedelta(seconds=5)
    env.service.clock = lambda: later
    assert env.call("POST", "/api/auth/login", json=right).status_code == 200
    assert env.service.purge_login_failures() == LOGIN_FAILURES_PER_ADDRESS


def test_illegal_transitions_are_refused(env: RAEnv) -> None:
    env.applicant("a", "Anna", "A", "1980-01-01")
    order = _order(env, "a")
    assert env.call("POST", f"/api/orders/{order}/ship", "caop").status_code == 409
    assert env.call("POST", f"/api/orders/{order}/resubmit", "a").status_code == 409
    held = env.ok("POST", f"/api/orders/{order}/hold", "ra1", json={"reason": "incomplete", "note": "copy missing"})
    assert held["state"] == "waiting" and held["waiting_reason"] == "incomplete"
    assert env.call("POST", f"/api/orders/{order}/hold", "ra1", json={"reason": "bored"}).status_code == 422
    assert env.ok("POST", f"/api/orders/{order}/resubmit", "a")["state"] == "open"
    assert env.ok("POST", f"/api/orders/{order}/cancel", "a")["state"] == "cancelled"
    assert env.call("POST", f"/api/orders/{order}/approve", "ra1").status_code == 409
    assert env.call("POST", f"/api/orders/{order}/identity", "ra1", json={}).status_code == 422


def test_hold_voids_a_first_approval(env: RAEnv) -> None:
    env.applicant("a", "Paula", "P", "1975-05-05")
    order = _order(env, "a", "upc-card", "postident-branch", email="p@example.org")
    env.identity(order, "Paula", "P", "1975-05-05")
    env.confirm_email(order)
    assert len(env.ok("POST", f"/api/orders/{order}/approve", "ra1")["approvals"]) == 1
    env.ok("POST", f"/api/orders/{order}/hold", "ra1", json={"reason": "data-error"})
    assert env.ok("GET", f"/api/orders/{order}", "ra1")["approvals"] == []


def test_identity_evidence_refusals(env: RAEnv) -> None:
    env.applicant("a", "Anna", "A", "1980-01-01")
    order = _order(env, "a", method="postident-eid")
    soon = (dt.date.today() + dt.timedelta(days=27)).isoformat()
    cases = {
        "expiry": {"expires_on": soon},
        "name_mismatch": {"given_names": "Hanna"},
        "birth_date_mismatch": {"date_of_birth": "1980-01-02"},
        "security_features": {"security_features": ["hologram", "Hologram"]},
        "issuing_state": {"issuing_state": "XX"},
        "no_eid": {"document_type": "passport"},
    }
    for code, override in cases.items():
        r = env.identity(order, "Anna", "A", "1980-01-01", **override)
        assert r.status_code == 422, code
        assert f"qtsp.ra.evidence.{code}" in {f["code"] for f in r.get_json()["findings"]}
    assert env.ok("GET", f"/api/orders/{order}", "ra1")["evidence"]["identity"] is None  # nothing stored


def test_copy_by_content_size_and_redaction_encrypted_at_rest(env: RAEnv) -> None:
    env.applicant("a", "Anna", "A", "1980-01-01")
    order = _order(env, "a")

    def upload(data: bytes, name: str, redacted: str = "") -> object:
        return env.call(
            "POST",
            f"/api/orders/{order}/copy",
            "a",
            data={"file": (io.BytesIO(data), name), "redacted": redacted},
            content_type="multipart/form-data",
        )

    r = upload(b"MZ" + b"\x00" * 100, "id.pdf")
    assert r.status_code == 415 and "by its content" in r.get_json()["detail"]  # type: ignore[attr-defined]
    r = upload(PNG + b"\x00" * (2 * 1024 * 1024), "id.png")
    assert r.status_code == 413  # type: ignore[attr-defined]
    assert upload(PNG, "id.png", "eye-colour,signature").status_code == 400  # type: ignore[attr-defined]
    r = upload(PNG, "scan.exe", "eye-colour,height,card-access-number")
    assert r.status_code == 201  # type: ignore[attr-defined]
    copy = env.ok("GET", f"/api/orders/{order}", "a")["evidence"]["copy"]
    assert copy["media_type"] == "image/png" and copy["redacted"] is True and len(copy["redacted_fields"]) == 3
    with env.service.db.read() as s:
        stored = s.scalar(select(EvidenceCopy.ciphertext))
    assert stored is not None and PNG not in stored
    back = env.call("GET", f"/api/orders/{order}/copy", "ra1")
    assert back.status_code == 200 and back.data == PNG and back.mimetype == "image/png"


def test_ozb_must_be_signed_by_an_authorised_signatory_with_consent(env: RAEnv) -> None:
    env.applicant("a", "Anna", "A", "1980-01-01")
    org_id, sig_id = env.organisation()
    order = _order(env, "a", organisation_id=org_id)
    r = env.ozb(order, None, signed_by="Some Clerk")
    assert r.status_code == 422 and "not an authorised signatory" in r.get_json()["detail"]
    r = env.ozb(order, sig_id, person_agrees=False)
    assert r.status_code == 422 and "person has not agreed" in r.get_json()["detail"]
    r = env.ozb(order, sig_id, signed_on=(dt.date.today() - dt.timedelta(days=200)).isoformat())
    assert r.status_code == 422
    assert env.ozb(order, sig_id).status_code == 200


def test_professional_attribute_needs_chamber_confirmation_and_becomes_admission(env: RAEnv) -> None:
    env.applicant("a", "Rita", "Anwalt", "1970-07-07")
    order = _order(env, "a", "qes-professional-card", "notary")
    env.identity(order, "Rita", "Anwalt", "1970-07-07")
    r = env.call("POST", f"/api/orders/{order}/approve", "ra1")
    assert r.status_code == 422 and "chamber" in r.get_json()["detail"]
    chamber = {
        "chamber": "Rechtsanwaltskammer Berlin",
        "registration_number": "RAK-12345",
        "profession": "Rechtsanwältin",
        "profession_oid": "1.3.36.8.3.11.1.1",
        "confirmed_on": dt.date.today().isoformat(),
    }
    env.ok("POST", f"/api/orders/{order}/chamber", "ra1", json=chamber)
    env.ok("POST", f"/api/orders/{order}/approve", "ra1")
    env.ok("POST", f"/api/orders/{order}/approve", "ra2")
    env.ok("POST", f"/api/orders/{order}/slots/signature/csr", "caop", json={"csr_pem": csr_pem()})
    with env.service.db.read() as s:
        der = s.scalars(select(CertificateRecord.der).order_by(CertificateRecord.id.desc())).first()
    assert der is not None and b"RAK-12345" in der and "Rechtsanwältin".encode() in der
    # A product without a professional attribute refuses a chamber confirmation.
    other = _order(env, "a")
    assert env.call("POST", f"/api/orders/{other}/chamber", "ra1", json=chamber).status_code == 422


def test_method_matrix_names_method_and_product(env: RAEnv) -> None:
    env.applicant("a", "Anna", "A", "1980-01-01")
    r = env.call(
        "POST",
        "/api/orders",
        "a",
        json={"product": "seal-card", "method": "embassy", "country": "DE", "organisation_id": 1, "common_name": "X"},
    )
    assert r.status_code == 422
    assert "BotschaftsIdent" in r.get_json()["detail"] and "Qualified seal card" in r.get_json()["detail"]
    r = env.call("POST", "/api/orders", "a", json={"product": "qes-card", "method": "existing-qes", "country": "DE"})
    assert r.status_code == 422 and "follow-up and renewal" in r.get_json()["detail"]


def test_a_dn_is_never_reassigned_to_another_person(env: RAEnv) -> None:
    env.applicant("a", "Jan", "Meier", "1980-01-01")
    env.applicant("b", "Jan", "Meier", "1990-01-01")
    first, second = _order(env, "a"), _order(env, "b")
    env.identity(first, "Jan", "Meier", "1980-01-01", document_number="L01X00T47")
    env.identity(second, "Jan", "Meier", "1990-01-01", document_number="L01X00T47")
    env.ok("POST", f"/api/orders/{first}/approve", "ra1")
    r = env.call("POST", f"/api/orders/{second}/approve", "ra1")
    assert r.status_code == 422 and "never reassigned" in r.get_json()["detail"]


def test_a_ca_refusal_leaves_the_slot_ready_for_another_csr(env: RAEnv) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    env.applicant("a", "Anna", "A", "1980-01-01")
    order = _order(env, "a")
    env.identity(order, "Anna", "A", "1980-01-01")
    env.ok("POST", f"/api/orders/{order}/approve", "ra1")
    weak = rsa.generate_private_key(65537, 1024)
    bad = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(weak, hashes.SHA256())
    pem = bad.public_bytes(serialization.Encoding.PEM).decode()
    r = env.call("POST", f"/api/orders/{order}/slots/signature/csr", "caop", json={"csr_pem": pem})
    assert r.status_code == 422 and r.get_json()["type"].endswith("ca_refused")
    assert (
        env.call("POST", f"/api/orders/{order}/slots/signature/csr", "caop", json={"csr_pem": "junk"}).status_code
        == 400
    )
    assert env.ok("GET", f"/api/orders/{order}", "ra1")["slots"][0]["state"] == "awaiting-csr"
    env.ok("POST", f"/api/orders/{order}/slots/signature/csr", "caop", json={"csr_pem": csr_pem()})
    r = env.call("POST", f"/api/orders/{order}/slots/signature/csr", "caop", json={"csr_pem": csr_pem()})
    assert r.status_code == 409  # issued once only


def _shipped_card(env: RAEnv) -> tuple[int, int]:
    env.applicant("a", "Anna", "A", "1980-01-01")
    order = _order(env, "a")
    env.identity(order, "Anna", "A", "1980-01-01")
    env.ok("POST", f"/api/orders/{order}/approve", "ra1")
    env.ok("POST", f"/api/orders/{order}/slots/signature/csr", "caop", json={"csr_pem": csr_pem()})
    return order, int(env.ok("POST", f"/api/orders/{order}/ship", "caop")["card_id"])


def test_a_card_revoked_before_activation_is_never_activated(env: RAEnv) -> None:
    _, card = _shipped_card(env)
    r = env.call("POST", f"/api/cards/{card}/revoke", "revo", json={"reason": "keyCompromise"})
    assert r.status_code == 200
    assert env.ok("GET", f"/api/cards/{card}", "a")["state"] == "revoked"
    assert env.call("POST", f"/api/cards/{card}/confirm-receipt", "a").status_code == 409
    with env.service.db.read() as s:
        assert s.scalars(select(CertificateRecord.status).order_by(CertificateRecord.id.desc())).first() == "revoked"


def test_card_certificates_start_on_hold_and_activation_releases_them(env: RAEnv) -> None:
    _, card = _shipped_card(env)
    with env.service.db.read() as s:
        assert s.scalars(select(CertificateRecord.status).order_by(CertificateRecord.id.desc())).first() == "on-hold"
    env.ok("POST", f"/api/cards/{card}/confirm-receipt", "a")
    with env.service.db.read() as s:
        assert s.scalars(select(CertificateRecord.status).order_by(CertificateRecord.id.desc())).first() == "good"


def test_revocation_reaches_the_ca(env: RAEnv) -> None:
    _, card = _shipped_card(env)
    env.ok("POST", f"/api/cards/{card}/confirm-receipt", "a")
    assert env.ok("POST", f"/api/cards/{card}/revoke", "revo", json={"reason": "keyCompromise"})["state"] == "revoked"
    with env.service.db.read() as s:
        assert s.scalars(select(CertificateRecord.status).order_by(CertificateRecord.id.desc())).first() == "revoked"


def test_racing_wrong_logins_cannot_pass_the_address_limit_together(env: RAEnv) -> None:
    """Eight wrong logins from one address at once, one below its limit: the password check takes a
    while, so all pass the first count; the second count, serialised per address, lets exactly one
    be recorded and refuses the rest (429)."""
    from ra.errors import RAError, RAErrorKind
    from ra.service import LOGIN_FAILURES_PER_ADDRESS
    from ra.store.models import LoginFailure

    address = "198.51.100.33"
    now = dt.datetime.now(dt.UTC)
    with env.service.db.write() as s:
        for i in range(LOGIN_FAILURES_PER_ADDRESS - 1):
            s.add(LoginFailure(email_sha256=f"{i:064x}", client_address=address, at=now))

    def attempt(i: int) -> str:
        try:
            env.service.login(f"racer{i}@example.org", "wrong-password-1234", client_address=address)
        except RAError as exc:
            return str(exc.kind.value)
        return "logged in"

    outcomes = race(8, attempt)
    expected = [RAErrorKind.RATE_LIMITED.value] * 7 + [RAErrorKind.UNAUTHENTICATED.value]
    assert sorted(outcomes) == sorted(expected), outcomes
    with env.service.db.read() as s:
        assert len(s.scalars(select(LoginFailure).where(LoginFailure.client_address == address)).all()) == (
            LOGIN_FAILURES_PER_ADDRESS
        )
