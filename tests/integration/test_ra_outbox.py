"""The RA outbox (SMS and letters) on SQLite and PostgreSQL: queued in the business transaction,
stored encrypted, wiped once sent, retried with back-off, failed after the last attempt, re-sent
after a dispatcher died mid-send (at least once), and every outcome audited without the text."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select, update

from ca.store.models import AuditEvent
from qtsp.config import ConfigurationError, load_config
from ra.errors import RAError
from ra.outbox import MAX_ATTEMPTS, Channel, GatewayError, Message, Outbox, SpoolGateway, load_gateway, mask_recipient
from ra.store.models import OutboxMessage
from tests.conftest import Home
from tests.integration.ra_support import RAEnv

TEXT = "Ihre TAN lautet 493817"
PHONE = "+4915112345678"


@dataclass
class FlakyGateway:
    """Refuses the first ``failures`` messages, then takes everything."""

    failures: int
    taken: list[Message] = field(default_factory=list)

    def send(self, message: Message) -> str:
        if self.failures > 0:
            self.failures -= 1
            raise GatewayError("carrier answered 503")
        self.taken.append(message)
        return f"carrier-{len(self.taken)}"


def _rows(env: RAEnv) -> list[OutboxMessage]:
    with env.service.db.read() as s:
        rows = list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        s.expunge_all()
    return rows


def _audit(env: RAEnv, prefix: str) -> list[tuple[str, str]]:
    with env.service.db.read() as s:
        return [
            (e.action, json.dumps(e.details))
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.seq))
        ]


def _enqueue(outbox: Outbox, env: RAEnv, channel: Channel = Channel.SMS, recipient: str = PHONE) -> str:
    with env.service.db.write() as s:
        return outbox.enqueue(s, channel=channel, purpose="sms-tan", recipient=recipient, text=TEXT)


def test_spooled_message_is_sent_wiped_and_audited_without_text(env: RAEnv, tmp_path: Path) -> None:
    spool = SpoolGateway(tmp_path / "spool")
    service = env.service
    service.gateways = {Channel.SMS: spool, Channel.POST: spool}
    ref = _enqueue(service.outbox, env)
    [row] = _rows(env)
    assert row.state == "pending" and row.payload is not None
    assert TEXT.encode() not in row.payload and PHONE.encode() not in row.payload  # encrypted at rest
    assert row.recipient_hint == "+49*********78"

    result = service.dispatch_outbox()
    assert result.sent == [ref] and not result.retried and not result.failed
    assert spool.read(Channel.SMS, ref) == TEXT
    assert (tmp_path / "spool" / "sms" / f"{ref}.txt").stat().st_mode & 0o777 == 0o600
    [row] = _rows(env)
    assert (row.state, row.payload, row.attempts) == ("sent", None, 1)
    assert row.sent_at is not None and row.gateway_ref == f"spool:{ref}.txt"
    [(action, details)] = _audit(env, "outbox.")
    assert action == "outbox.sent" and TEXT not in details and PHONE not in details and "493817" not in details
    assert service.dispatch_outbox().sent == []  # nothing sent twice


def test_message_rolls_back_with_its_transaction(env: RAEnv) -> None:
    with pytest.raises(RuntimeError), env.service.db.write() as s:
        env.service.outbox.enqueue(s, channel=Channel.POST, purpose="order-password", recipient="A\nB", text=TEXT)
        raise RuntimeError("the business change failed")
    assert _rows(env) == []


def test_refused_messages_are_retried_with_back_off_then_fail(env: RAEnv) -> None:
    now = [dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)]
    gateway = FlakyGateway(failures=MAX_ATTEMPTS)
    outbox = Outbox(env.service.db, env.service.data_key, lambda: now[0])
    ref = _enqueue(outbox, env)
    gateways = {Channel.SMS: gateway}

    assert outbox.dispatch(gateways).retried == [ref]
    [row] = _rows(env)
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "carrier answered 503")
    assert row.next_attempt_at == now[0] + dt.timedelta(seconds=30)
    assert outbox.dispatch(gateways).retried == []  # not before its time
    for _ in range(MAX_ATTEMPTS - 2):
        now[0] = _rows(env)[0].next_attempt_at
        assert outbox.dispatch(gateways).retried == [ref]
    now[0] = _rows(env)[0].next_attempt_at
    assert outbox.dispatch(gateways).failed == [ref]
    [row] = _rows(env)
    assert (row.state, row.payload, row.attempts) == ("failed", None, MAX_ATTEMPTS)
    actions = [a for a, _ in _audit(env, "outbox.")]
    assert actions == ["outbox.retry"] * (MAX_ATTEMPTS - 1) + ["outbox.failed"]
    assert gateway.taken == []


def test_recovers_after_one_refusal(env: RAEnv) -> None:
    now = [dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)]
    gateway = FlakyGateway(failures=1)
    outbox = Outbox(env.service.db, env.service.data_key, lambda: now[0])
    ref = _enqueue(outbox, env, Channel.POST, "Anna A\nHauptstr. 1\n10115 Berlin")
    outbox.dispatch({Channel.POST: gateway})
    now[0] += dt.timedelta(seconds=31)
    assert outbox.dispatch({Channel.POST: gateway}).sent == [ref]
    assert [m.recipient.splitlines()[0] for m in gateway.taken] == ["Anna A"]
    assert _rows(env)[0].recipient_hint == "Ann***"


def test_dispatcher_dying_mid_send_is_resent_after_stale_period(env: RAEnv) -> None:
    now = [dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)]
    outbox = Outbox(env.service.db, env.service.data_key, lambda: now[0])
    ref = _enqueue(outbox, env)
    with env.service.db.write() as s:  # a claim whose process then ended
        s.execute(update(OutboxMessage).values(state="sending", claimed_at=now[0], attempts=1))
    gateway = FlakyGateway(failures=0)
    assert outbox.dispatch({Channel.SMS: gateway}).sent == []
    now[0] += outbox.stale_after + dt.timedelta(seconds=1)
    assert outbox.dispatch({Channel.SMS: gateway}).sent == [ref]
    assert _rows(env)[0].attempts == 2


def test_no_gateway_for_channel_is_a_retry_not_a_loss(env: RAEnv) -> None:
    outbox = env.service.outbox
    ref = _enqueue(outbox, env, Channel.POST, "Anna A\nBerlin")
    assert outbox.dispatch({}).retried == [ref]
    [row] = _rows(env)
    assert row.state == "pending" and row.payload is not None
    assert row.last_error == "no gateway configured for post"


def test_cancel_withdraws_an_unsent_message(env: RAEnv) -> None:
    outbox = env.service.outbox
    ref = _enqueue(outbox, env)
    with env.service.db.write() as s:
        assert outbox.cancel(s, ref) is True
        assert outbox.cancel(s, ref) is False
    [row] = _rows(env)
    assert (row.state, row.payload) == ("cancelled", None)
    assert outbox.dispatch({Channel.SMS: FlakyGateway(0)}).sent == []


def test_empty_recipient_is_refused(env: RAEnv) -> None:
    with pytest.raises(RAError, match="no recipient"), env.service.db.write() as s:
        env.service.outbox.enqueue(s, channel=Channel.SMS, purpose="sms-tan", recipient=" ", text=TEXT)


def factory(channel: Channel) -> FlakyGateway:
    return FlakyGateway(failures=0)


def test_gateways_from_configuration(tmp_path: Path) -> None:
    assert isinstance(load_gateway("spool", Channel.SMS, tmp_path), SpoolGateway)
    assert isinstance(load_gateway(f"{__name__}:factory", Channel.SMS, tmp_path), FlakyGateway)
    with pytest.raises(RAError, match="ModuleNotFoundError"):
        load_gateway("no_such_module_xyz:make", Channel.SMS, tmp_path)
    with pytest.raises(RAError, match="expected 'spool'"):
        load_gateway("nonsense", Channel.SMS, tmp_path)
    (tmp_path / "qtsp.toml").write_text('[ra]\nsms_gateway = "not a gateway"\n')
    with pytest.raises(ConfigurationError, match=r"^ra.sms_gateway: "):
        load_config(tmp_path)


def test_masking() -> None:
    assert mask_recipient(PHONE) == "+49*********78"
    assert mask_recipient("Max Mustermann\nBerlin") == "Max***"
    assert mask_recipient("") == "***"


def test_order_keeps_a_normalised_postal_address(env: RAEnv) -> None:
    env.applicant("a", "Anna", "A", "1980-01-01")
    body = {"product": "qes-card", "method": "on-site", "country": "DE"}
    for bad in ("only one line", "a\n" * 7, "Anna A\n" + "x" * 81, "Anna A\nBerlin\x00"):
        r = env.call("POST", "/api/orders", "a", json={**body, "postal_address": bad})
        assert r.status_code == 400 and "postal_address" in r.get_json()["detail"], bad
    order = env.ok(
        "POST",
        "/api/orders",
        "a",
        json={**body, "postal_address": " Anna A \r\n\nHauptstr. 1\n10115 Berlin "},
        status=201,
    )["id"]
    assert env.ok("GET", f"/api/orders/{order}", "a")["postal_address"] == "Anna A\nHauptstr. 1\n10115 Berlin"


def test_scheduled_job_sends_through_the_configured_gateway(db_home: Home) -> None:
    from qtsp.scheduler import ra_outbox_job
    from qtsp.wiring import ra_service, runtime

    with runtime(load_config(db_home.path)) as rt:
        service = ra_service(rt)
        with service.db.write() as s:
            ref = service.outbox.enqueue(s, channel=Channel.SMS, purpose="sms-tan", recipient=PHONE, text=TEXT)
        assert ra_outbox_job(rt) == "sent 1, retry 0, failed 0"
        assert SpoolGateway(db_home.path / "outbox").read(Channel.SMS, ref) == TEXT
        assert ra_outbox_job(rt) == "sent 0, retry 0, failed 0"
