"""Revocation and activation in the CA (issue 3 point 1): final revocation, holds of not-activated
certificates released once, each change audited, CRL marked pending, stale OCSP answers dropped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from sqlalchemy import select

from ca.crl_ocsp.revocation import RevocationError, StatusErrorKind
from ca.profiles.subject import SubjectInput
from ca.store.models import AuditEvent, CertificateRecord, CRLState, StatusEntry
from qtsp.cli import cli
from qtsp.demo import DEMO_SUBJECTS, fresh_csr
from qtsp.wiring import Runtime, os_actor
from tests.conftest import Home
from tests.integration.helpers import assert_audit_chain, open_runtime

ACTOR = os_actor("revocation-officer")


def _issue(rt: Runtime, profile: str = "qes-natural", **kw: object) -> tuple[str, str]:
    issued = rt.issuance(pkilint=False).issue(
        profile_name=profile,
        csr=fresh_csr(),
        subject=SubjectInput.from_json_obj(DEMO_SUBJECTS[profile]),
        actor=os_actor(),
        **kw,  # type: ignore[arg-type]
    )
    return issued.issuer, issued.serial_hex


@pytest.fixture
def home(db_home: Home) -> Home:
    return db_home


def test_revocation_is_recorded_final_and_audited(home: Home) -> None:
    with open_runtime(home.path) as rt:
        issuer, serial = _issue(rt)
        service = rt.revocation()
        received = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        compromised = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
        result = service.revoke(
            issuer,
            serial,
            "keyCompromise",
            actor=ACTOR,
            received_at=received,
            invalidity_date=compromised,
            requested_by="holder",
        )
        assert result.action == "revoked" and result.reason == "keyCompromise"
        with pytest.raises(RevocationError, match="revocation is final") as again:
            service.revoke(issuer, serial, "superseded", actor=ACTOR)
        assert again.value.kind is StatusErrorKind.CONFLICT
        with pytest.raises(RevocationError, match="never reinstated"):
            service.activate(issuer, serial, actor=ACTOR)
        with rt.db.read() as s:
            cert = s.scalars(select(CertificateRecord).where(CertificateRecord.serial == serial)).one()
            assert cert.status == "revoked"
            entry = s.scalars(select(StatusEntry)).one()
            assert entry.reason == "keyCompromise"
            assert entry.requested_by == "holder" and entry.decided_by == ACTOR.name
            assert abs((entry.received_at - received).total_seconds()) < 1e-3
            assert entry.invalidity_date == compromised.replace(microsecond=0)
            state = s.get_one(CRLState, cert.issuer_id)
            assert state.pending_since is not None
            events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
            assert_audit_chain(events)
            revoked = [e for e in events if e.action == "certificate.revoked"]
            assert len(revoked) == 1 and '"reason":"keyCompromise"' in revoked[0].details


def test_crl_entry_encoding_parses_with_cryptography(home: Home) -> None:
    """The entry encoded at revocation time is what cryptography reads back (serial, date, reason, invalidity)."""
    with open_runtime(home.path) as rt:
        issuer, serial = _issue(rt)
        compromised = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        rt.revocation().revoke(issuer, serial, "affiliationChanged", actor=ACTOR, invalidity_date=compromised)
        with rt.db.read() as s:
            entry = s.scalars(select(StatusEntry)).one()
            der = entry.crl_entry_der
            revoked_at = entry.revoked_at
    parsed = _parse_entries([der])[0]
    assert parsed.serial_number == int(serial, 16)
    assert parsed.revocation_date_utc == revoked_at
    assert (
        parsed.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.affiliation_changed
    )
    assert parsed.extensions.get_extension_for_class(x509.InvalidityDate).value.invalidity_date_utc == compromised


def _parse_entries(entries: list[bytes]) -> list[x509.RevokedCertificate]:
    """Wrap entries in a throwaway-signed CRL shell and parse with cryptography."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from ca.asn1.crl_entry import assemble_signed, signature_algorithm_der, splice_entries

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string("CN=t")
    now = dt.datetime.now(dt.UTC)
    shell = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    tbs = splice_entries(shell.tbs_certlist_bytes, entries)
    sig = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    der = assemble_signed(tbs, signature_algorithm_der(shell.public_bytes(serialization.Encoding.DER)), sig)
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(key.public_key())
    return list(crl)


def test_unspecified_reason_has_no_reason_extension(home: Home) -> None:
    with open_runtime(home.path) as rt:
        issuer, serial = _issue(rt)
        rt.revocation().revoke(issuer, serial, "unspecified", actor=ACTOR)
        with rt.db.read() as s:
            der = s.scalars(select(StatusEntry.crl_entry_der)).one()
    parsed = _parse_entries([der])[0]
    assert len(parsed.extensions) == 0  # RFC 5280 §5.3.1: unspecified SHOULD be absent


def test_bad_revocation_requests_are_refused_with_a_clear_error(home: Home) -> None:
    with open_runtime(home.path) as rt:
        issuer, serial = _issue(rt)
        service = rt.revocation()
        cases: list[tuple[dict[str, object], str]] = [
            ({"issuer_name": "nope", "serial": serial, "reason": "superseded"}, "no CA named 'nope'"),
            ({"issuer_name": issuer, "serial": "abc123", "reason": "superseded"}, "issued no certificate"),
            ({"issuer_name": issuer, "serial": "xyz", "reason": "superseded"}, "not hexadecimal"),
            ({"issuer_name": issuer, "serial": serial, "reason": "certificateHold"}, "only at issuance"),
            ({"issuer_name": issuer, "serial": serial, "reason": "removeFromCRL"}, "RFC 5280"),
            (
                {
                    "issuer_name": issuer,
                    "serial": serial,
                    "reason": "keyCompromise",
                    "invalidity_date": dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
                },
                "lies in the future",
            ),
        ]
        for kwargs, message in cases:
            with pytest.raises(RevocationError, match=message):
                service.revoke(actor=ACTOR, **kwargs)  # type: ignore[arg-type]
        with rt.db.read() as s:
            assert s.scalars(select(StatusEntry)).all() == []
            assert s.scalars(select(CertificateRecord.status).where(CertificateRecord.serial == serial)).one() == "good"


def test_not_activated_certificate_is_held_until_activation_once(home: Home) -> None:
    with open_runtime(home.path) as rt:
        issuer, serial = _issue(rt, on_hold=True)
        with rt.db.read() as s:
            assert (
                s.scalars(select(CertificateRecord.status).where(CertificateRecord.serial == serial)).one() == "on-hold"
            )
            entry = s.scalars(select(StatusEntry)).one()
            assert entry.reason == "certificateHold"
            assert (
                _parse_entries([entry.crl_entry_der])[0].extensions.get_extension_for_class(x509.CRLReason).value.reason
                is x509.ReasonFlags.certificate_hold
            )
        service = rt.revocation()
        service.activate(issuer, serial, actor=ACTOR)
        with pytest.raises(RevocationError, match="already activated"):
            service.activate(issuer, serial, actor=ACTOR)
        with rt.db.read() as s:
            cert = s.scalars(select(CertificateRecord).where(CertificateRecord.serial == serial)).one()
            assert cert.status == "good" and cert.activated_at is not None
            assert s.scalars(select(StatusEntry)).all() == []
            assert [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))][-1] == (
                "certificate.activated"
            )


def test_held_certificate_can_be_revoked_and_then_never_activated(home: Home) -> None:
    with open_runtime(home.path) as rt:
        issuer, serial = _issue(rt, on_hold=True)
        service = rt.revocation()
        service.revoke(issuer, serial, "cessationOfOperation", actor=ACTOR)
        with pytest.raises(RevocationError, match="never reinstated"):
            service.activate(issuer, serial, actor=ACTOR)
        with rt.db.read() as s:
            assert s.scalars(select(StatusEntry.reason)).one() == "cessationOfOperation"


def test_holds_are_released_when_the_activation_period_passes(home: Home) -> None:
    with open_runtime(home.path) as rt:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        _, due = _issue(rt, on_hold=True, activate_after=past)
        _, later = _issue(rt, on_hold=True, activate_after=past + dt.timedelta(days=1))
        _, manual = _issue(rt, on_hold=True)
        released = rt.revocation().release_due_holds(actor=os_actor("system"))
        assert [r.serial for r in released] == [due]
        with rt.db.read() as s:
            status = dict(s.execute(select(CertificateRecord.serial, CertificateRecord.status)).all())
        assert status[due] == "good" and status[later] == "on-hold" and status[manual] == "on-hold"


def test_issuing_ca_certificate_can_be_revoked_under_the_root(home: Home) -> None:
    with open_runtime(home.path) as rt:
        from ca.store import repository as repo

        with rt.db.read() as s:
            seal = next(c for c in repo.list_cas(s) if c.name == "seal")
        serial = format(x509.load_der_x509_certificate(seal.certificate_der).serial_number, "x")
        result = rt.revocation().revoke("root", serial, "cessationOfOperation", actor=ACTOR)
        assert result.issuer == "root"
        assert rt.revocation().find_issuer(serial) == "root"


def test_cli_revoke_and_activate(home: Home, tmp_path: Path) -> None:
    with open_runtime(home.path) as rt:
        _, held = _issue(rt, on_hold=True)
        _, live = _issue(rt)
    runner = CliRunner()
    base = ["--home", str(home.path), "ca"]
    ok = runner.invoke(cli, [*base, "activate", held])
    assert ok.exit_code == 0, ok.output
    assert "activated" in ok.output
    ok = runner.invoke(
        cli, [*base, "revoke", live, "--reason", "keyCompromise", "--invalidity-date", "2026-01-01T00:00:00Z"]
    )
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(cli, [*base, "revoke", live, "--reason", "keyCompromise"])
    assert again.exit_code == 1 and "revocation is final" in again.output and "Traceback" not in again.output
    bad = runner.invoke(cli, [*base, "revoke", live, "--reason", "keyCompromise", "--invalidity-date", "yesterday"])
    assert bad.exit_code == 1 and "ISO 8601" in bad.output
    naive = runner.invoke(cli, [*base, "revoke", live, "--reason", "superseded", "--received-at", "2026-01-01T00:00"])
    assert naive.exit_code == 1 and "time zone" in naive.output
