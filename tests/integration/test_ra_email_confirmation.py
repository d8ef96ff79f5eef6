"""Email confirmation (seed 004; EN 319 411-1 REG-6.2.2-02A) on SQLite and PostgreSQL: an order
whose certificate will carry an email address mails a single-use code there; approval waits for
it; unknown, used, superseded and expired codes get one answer; mails again at most three times
a day; the code never appears in a response or the audit log."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select, update

from ca.store.models import AuditEvent
from ra.email_confirmation import REFUSAL, RESENDS_PER_DAY
from ra.outbox import Channel, SpoolGateway
from ra.store.models import EmailConfirmation, OutboxMessage
from tests.integration.ra_support import RAEnv, csr_pem

EMAIL = "Paula.Patent@Patent.example"


def _order(env: RAEnv, who: str = "pa") -> int:
    if who not in env.tokens:
        env.applicant(who, "Paula", "Patent", "1975-05-05")
    body = {"product": "advanced-personal-id", "method": "on-site", "country": "DE", "email": EMAIL}
    return int(env.ok("POST", "/api/orders", who, json=body, status=201)["id"])


def _confirm(env: RAEnv, token: str) -> object:
    return env.call("POST", "/api/email-confirmations", json={"token": token})


def _refused(r: object) -> None:
    body = r.get_json()  # type: ignore[attr-defined]
    assert r.status_code == 403 and body["detail"] == REFUSAL, body  # type: ignore[attr-defined]


def _audit(env: RAEnv) -> str:
    with env.service.db.read() as s:
        return json.dumps([(e.action, e.details) for e in s.scalars(select(AuditEvent))])


def test_an_order_email_is_confirmed_before_approval(env: RAEnv) -> None:
    order = _order(env)
    # The mail went to the order's address, and carries the code.
    with env.service.db.read() as s:
        [pending] = s.scalars(select(EmailConfirmation).where(EmailConfirmation.order_id == order)).all()
        mail = s.scalars(select(OutboxMessage).where(OutboxMessage.reference == pending.outbox_ref)).one()
    assert (mail.channel, mail.purpose, mail.state, mail.payload) == ("email", "email-confirmation", "sent", None)
    assert mail.recipient_hint == "Pa***@Patent.example"
    gateway = env.service.gateways[Channel.EMAIL]
    assert isinstance(gateway, SpoolGateway)
    spooled = (gateway.directory / "email" / f"{pending.outbox_ref}.txt").read_text(encoding="utf-8")
    assert spooled.startswith(f"To: {EMAIL}\n")
    first = env.email_token(order)
    assert len(first) >= 32 and pending.token_sha256 != first  # only the hash is stored
    view = env.ok("GET", f"/api/orders/{order}", "pa")
    assert view["evidence"]["email_confirmed_at"] is None

    # Approval waits for it, naming the rule.
    env.identity(order, "Paula", "Patent", "1975-05-05")
    r = env.call("POST", f"/api/orders/{order}/approve", "ra1")
    assert r.status_code == 422, r.get_json()
    assert "qtsp.ra.order.email_unconfirmed" in json.dumps(r.get_json()) and "REG-6.2.2-02A" in r.get_json()["detail"]

    # Unknown codes, and a code mailed again (the old one superseded), get one answer.
    _refused(_confirm(env, "not-a-code-we-sent"))
    assert _confirm(env, "").status_code in (400, 422)
    again = env.ok("POST", f"/api/orders/{order}/email-confirmation", "pa", status=202)
    assert again["sent_to"] == "Pa***@Patent.example" and again["order_id"] == order
    _refused(_confirm(env, first))
    second = env.email_token(order)
    done = env.ok("POST", "/api/email-confirmations", json={"token": second})
    assert done["order_id"] == order and done["email"] == "Pa***@Patent.example"
    _refused(_confirm(env, second))  # single use
    assert env.ok("GET", f"/api/orders/{order}", "pa")["evidence"]["email_confirmed_at"] is not None
    r = env.call("POST", f"/api/orders/{order}/email-confirmation", "pa")
    assert r.status_code == 409, r.get_json()

    assert env.ok("POST", f"/api/orders/{order}/approve", "ra1")["state"] == "in-production"
    # The certificate carries the address; the auditor's evidence bundle shows when it was confirmed.
    slot = env.ok("POST", f"/api/orders/{order}/slots/authentication/csr", "caop", json={"csr_pem": csr_pem()})
    bundle = env.ok("GET", f"/api/audit/evidence/{slot['issuer']}/{slot['serial_hex']}", "aud")
    confirmed = dt.datetime.fromisoformat(bundle["registration"]["email_confirmed_at"])
    assert confirmed == dt.datetime.fromisoformat(done["confirmed_at"])
    text = _audit(env)
    assert first not in text and second not in text  # (the address itself is in the approved subject)
    actions = [a for a, _ in json.loads(text)]
    assert actions.count("order.email_confirmation_sent") == 2 and actions.count("order.email_confirmed") == 1
    assert actions.count("order.email_confirmation_refused") == 2  # the superseded and the used one


def test_expiry_who_may_ask_again_and_the_daily_limit(env: RAEnv) -> None:
    order = _order(env)
    token = env.email_token(order)
    with env.service.db.write() as s:
        s.execute(update(EmailConfirmation).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    _refused(_confirm(env, token))
    # Put on hold for a data error (waiting), the order may still have its code sent again.
    env.ok("POST", f"/api/orders/{order}/hold", "ra1", json={"reason": "data-error"})
    assert env.ok("GET", f"/api/orders/{order}", "pa")["state"] == "waiting"
    # Another applicant may not have it sent; an RA officer may, for the applicant.
    env.applicant("x", "Xaver", "Other", "1970-05-05")
    assert env.call("POST", f"/api/orders/{order}/email-confirmation", "x").status_code == 404
    env.ok("POST", f"/api/orders/{order}/email-confirmation", "ra1", status=202)
    for _ in range(RESENDS_PER_DAY - 2):
        env.ok("POST", f"/api/orders/{order}/email-confirmation", "pa", status=202)
    limited = env.call("POST", f"/api/orders/{order}/email-confirmation", "pa")
    assert limited.status_code == 429 and 0 < int(limited.headers["Retry-After"]) <= 86400
    with env.service.db.read() as s:
        states = list(
            s.scalars(
                select(EmailConfirmation.state)
                .where(EmailConfirmation.order_id == order)
                .order_by(EmailConfirmation.id)
            )
        )
    assert states == ["superseded"] * (RESENDS_PER_DAY - 1) + ["pending"]
    env.confirm_email(order)


def test_an_account_is_active_only_once_its_address_is_confirmed(env: RAEnv) -> None:
    """Seed 001: the account is activated by the link mailed to the address it was opened with."""
    from ra.email_confirmation import ACCOUNT_ANSWER
    from ra.store import repository as repo
    from tests.integration.ra_support import PASSWORD

    email = "neu@example.org"
    body = {
        "email": email,
        "password": PASSWORD,
        "given_names": "Nora",
        "surname": "Neu",
        "date_of_birth": "1990-02-02",
    }
    assert env.ok("POST", "/api/accounts", json=body, status=202) == {"detail": ACCOUNT_ANSWER}
    with env.service.db.read() as s:
        account = repo.account_by_email(s, email)
    assert account is not None and account.confirmed_at is None
    # The right password is not enough yet (and says so); a wrong one gets the usual answer.
    r = env.call("POST", "/api/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 401 and "not active yet" in r.get_json()["detail"]
    r = env.call("POST", "/api/auth/login", json={"email": email, "password": PASSWORD + "x"})
    assert r.status_code == 401 and r.get_json()["detail"] == "unknown account or wrong password"

    # A new code supersedes the first; unknown and active addresses get the same answer, no mail.
    first = env.mailed_code(env.service.email_confirmations.pending_mail(account_id=account.id))
    for address in (email, "nobody@example.org", "ra1@qtsp.example"):
        assert env.ok("POST", "/api/accounts/confirmation", json={"email": address}, status=202) == {
            "detail": ACCOUNT_ANSWER
        }
    with env.service.db.read() as s:
        mails = s.scalars(select(OutboxMessage).where(OutboxMessage.channel == "email")).all()
    assert [m.recipient_hint for m in mails if m.purpose == "email-confirmation"].count("ne***@example.org") == 2
    assert not any(m.recipient_hint.startswith(("no***", "ra***")) for m in mails)
    _refused(_confirm(env, first))
    second = env.mailed_code(env.service.email_confirmations.pending_mail(account_id=account.id))
    done = env.ok("POST", "/api/email-confirmations", json={"token": second})
    assert (done["account_id"], done["order_id"], done["email"]) == (account.id, None, "ne***@example.org")
    assert env.ok("POST", "/api/auth/login", json={"email": email, "password": PASSWORD})["token"]
    _refused(_confirm(env, second))
    text = _audit(env)
    assert first not in text and second not in text
    actions = [a for a, _ in json.loads(text)]
    assert actions.count("account.email_confirmation_sent") >= 2 and "account.email_confirmed" in actions


def test_registration_does_not_relay_mail_bombs(env: RAEnv) -> None:
    """Every registration mails the address it names: at most three mails per address and day
    (then nothing more is done, the answer unchanged), twenty registrations per client address
    and hour (then 429)."""
    from ra.email_confirmation import ACCOUNT_ANSWER
    from ra.service import REGISTRATION_MAILS_PER_EMAIL, REGISTRATIONS_PER_ADDRESS
    from tests.integration.ra_support import PASSWORD

    victim = "victim@example.org"

    def register(n: int, email: str, address: str) -> object:
        body = {
            "email": email,
            "password": PASSWORD,
            "given_names": f"P{n}",
            "surname": "X",
            "date_of_birth": "1990-01-01",
        }
        return env.call("POST", "/api/accounts", json=body, environ_base={"REMOTE_ADDR": address})

    for n in range(REGISTRATION_MAILS_PER_EMAIL + 3):
        r = register(n, victim, "198.51.100.20")
        assert r.status_code == 202 and r.get_json() == {"detail": ACCOUNT_ANSWER}  # type: ignore[attr-defined]
    with env.service.db.read() as s:
        to_victim = [
            m
            for m in s.scalars(select(OutboxMessage).where(OutboxMessage.channel == "email"))
            if m.recipient_hint == "vi***@example.org"
        ]
        events = [e.action for e in s.scalars(select(AuditEvent))]
    assert len(to_victim) == REGISTRATION_MAILS_PER_EMAIL  # one activation code, then "exists" notices
    assert events.count("account.registration_throttled") == 3
    # From one client address, whatever addresses it names: 429 past the hourly limit.
    for n in range(REGISTRATIONS_PER_ADDRESS):
        assert register(100 + n, f"u{n}@example.org", "198.51.100.21").status_code == 202  # type: ignore[attr-defined]
    limited = register(999, "late@example.org", "198.51.100.21")
    assert limited.status_code == 429 and 0 < int(limited.headers["Retry-After"]) <= 3600  # type: ignore[attr-defined]
    assert register(999, "late@example.org", "198.51.100.22").status_code == 202  # type: ignore[attr-defined]
    # A day later the attempts are forgotten by the RA job, and the address may register again.
    import dataclasses

    later = dataclasses.replace(env.service, clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=1, seconds=5))
    assert later.purge_login_failures() >= REGISTRATION_MAILS_PER_EMAIL + 3 + REGISTRATIONS_PER_ADDRESS + 1
    with env.service.db.read() as s:
        from ra.store.models import RegistrationAttempt

        assert s.scalars(select(RegistrationAttempt)).first() is None


def test_an_account_never_confirmed_is_deleted_and_frees_the_person(env: RAEnv) -> None:
    """Registering alone holds nothing: once its codes have expired, an account never confirmed is
    deleted by the RA job (audited), and the person and the address may register again."""
    import dataclasses

    from ra.email_confirmation import CONFIRMATION_VALIDITY
    from ra.store import repository as repo
    from ra.store.models import Account
    from tests.integration.ra_support import PASSWORD

    body = {"email": "idle@example.org", "password": PASSWORD, "given_names": "Ida", "surname": "Idle"}
    body["date_of_birth"] = "1985-03-03"
    env.ok("POST", "/api/accounts", json=body, status=202)
    with env.service.db.read() as s:
        idle = repo.account_by_email(s, "idle@example.org")
    assert idle is not None
    assert env.service.purge_unconfirmed_accounts() == []  # its code is still valid
    # A day before the end of its code's validity, a new code keeps it alive for another week.
    soon = dataclasses.replace(
        env.service, clock=lambda: dt.datetime.now(dt.UTC) + CONFIRMATION_VALIDITY - dt.timedelta(days=1)
    )
    soon.email_confirmations.resend_account("idle@example.org")
    later = dataclasses.replace(
        env.service, clock=lambda: dt.datetime.now(dt.UTC) + CONFIRMATION_VALIDITY + dt.timedelta(days=1)
    )
    assert later.purge_unconfirmed_accounts() == []
    much_later = dataclasses.replace(
        env.service, clock=lambda: dt.datetime.now(dt.UTC) + 2 * CONFIRMATION_VALIDITY + dt.timedelta(days=1)
    )
    assert much_later.purge_unconfirmed_accounts() == [idle.id]
    assert much_later.purge_unconfirmed_accounts() == []
    with env.service.db.read() as s:
        assert s.get(Account, idle.id) is None
        assert s.scalars(select(EmailConfirmation).where(EmailConfirmation.account_id == idle.id)).first() is None
        mails = s.scalars(select(OutboxMessage).where(OutboxMessage.recipient_hint == "id***@example.org")).all()
        deleted = [e for e in s.scalars(select(AuditEvent)) if e.action == "account.unconfirmed_deleted"]
    assert len(mails) == 2 and all(m.account_id is None for m in mails)  # kept, without the reference
    assert [e.object_id for e in deleted] == [str(idle.id)]
    # Confirmed accounts stay; the person registers again, this time confirming.
    assert idle.id not in much_later.purge_unconfirmed_accounts()
    env.ok("POST", "/api/accounts", json={**body, "email": "ida@example.org"}, status=202)
    with env.service.db.read() as s:
        again = repo.account_by_email(s, "ida@example.org")
    assert again is not None and again.person_id == idle.person_id
