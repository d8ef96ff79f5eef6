"""CA key rollover (issue 5 point 4): a new generation of an issuing CA takes over issuance; the old
one keeps answering for its certificates (CRL and OCSP); with PKCS#11 it is a dual-control ceremony
with a signed report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from sqlalchemy import select

from ca.profiles.subject import SubjectInput
from ca.store import repository as repo
from ca.store.models import AuditEvent
from qtsp.cli import cli
from qtsp.demo import DEMO_SUBJECTS, fresh_csr
from qtsp.wiring import os_actor
from tests.conftest import Home, init_home, make_softhsm_token
from tests.integration.helpers import assert_audit_chain, open_runtime, openssl_verify, pkilint_findings


def _issue(home: Home) -> x509.Certificate:
    with open_runtime(home.path) as rt:
        return (
            rt.issuance()
            .issue(
                profile_name="qes-natural",
                csr=fresh_csr(),
                subject=SubjectInput.from_json_obj(DEMO_SUBJECTS["qes-natural"]),
                actor=os_actor(),
            )
            .certificate
        )


def _status(home: Home, cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    with open_runtime(home.path) as rt:
        answer = rt.ocsp_responder().respond(req.public_bytes(serialization.Encoding.DER))
    resp = ocsp.load_der_ocsp_response(answer.der)
    assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    return resp.certificate_status


def test_rollover_moves_issuance_and_keeps_the_old_generation_answering(db_home: Home, tmp_path: Path) -> None:
    old_cert = _issue(db_home)
    result = CliRunner().invoke(cli, ["--home", str(db_home.path), "ca", "rollover", "--ca", "qes"])
    assert result.exit_code == 0, result.output
    assert "new CA qes-g2" in result.output
    new_cert = _issue(db_home)
    with open_runtime(db_home.path) as rt:
        with rt.db.read() as s:
            cas = {c.name: c for c in repo.list_cas(s)}
            events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        root = x509.load_der_x509_certificate(cas["root"].certificate_der)
        g1 = x509.load_der_x509_certificate(cas["qes"].certificate_der)
        g2 = x509.load_der_x509_certificate(cas["qes-g2"].certificate_der)
        assert cas["qes"].superseded_at is not None and cas["qes-g2"].superseded_at is None
        assert cas["qes-g2"].family == "qes" and cas["qes-g2"].generation == 2
        assert "Qualified Signature CA 2" in g2.subject.rfc4514_string()
        assert new_cert.issuer == g2.subject and old_cert.issuer == g1.subject
        assert g2.public_key().public_numbers() != g1.public_key().public_numbers()  # type: ignore[union-attr]
        assert pkilint_findings(new_cert, "qes-natural") == []
        openssl_verify(tmp_path, new_cert, root, g2)
        openssl_verify(tmp_path, old_cert, root, g1)
        # The old generation still answers for its certificates; revoking one reaches its CRL and OCSP.
        rt.revocation().revoke("qes", format(old_cert.serial_number, "x"), "superseded", actor=os_actor())
        published = rt.crl().publish("qes", os_actor(), force=True)
        assert published is not None
        assert_audit_chain(events)
    assert _status(db_home, old_cert, g1) is ocsp.OCSPCertStatus.REVOKED
    assert _status(db_home, new_cert, g2) is ocsp.OCSPCertStatus.GOOD
    with open_runtime(db_home.path) as rt:
        crl_old = rt.crl().latest("qes")
        crl_new = rt.crl().latest("qes-g2")
    assert crl_old is not None and crl_new is not None
    listed = {e.serial_number for e in x509.load_der_x509_crl(crl_old.der)}
    assert old_cert.serial_number in listed
    assert x509.load_der_x509_crl(crl_new.der).is_signature_valid(g2.public_key())  # type: ignore[arg-type]
    actions = [e.action for e in events]
    rolled = actions.index("ceremony.ca_rollover")
    assert "crl.published" in actions[rolled:] and "ceremony.report" in actions[rolled:]
    reports = sorted((db_home.path / "ceremonies").glob("*-ca-rollover-qes.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())["report"]
    assert report["dual_control"] is False and {"qes", "qes-g2"} <= {k["ca"] for k in report["keys"]}
    # A second rollover makes generation 3.
    again = CliRunner().invoke(cli, ["--home", str(db_home.path), "ca", "rollover", "--ca", "qes"])
    assert again.exit_code == 0 and "qes-g3" in again.output


@pytest.mark.hsm
def test_pkcs11_rollover_needs_two_custodians(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = make_softhsm_token()
    home = init_home(tmp_path / "home", backend="pkcs11", token=token)
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    shares = tmp_path / "home-shares"
    base = ["--home", str(home.path), "ca", "rollover", "--ca", "seal"]
    refused = CliRunner().invoke(cli, base)
    assert refused.exit_code == 1 and "at least two key custodians" in refused.output
    ok = CliRunner().invoke(
        cli,
        [*base, "--custodian", f"alice={shares / 'alice.share'}", "--custodian", f"bob={shares / 'bob.share'}"],
    )
    assert ok.exit_code == 0, ok.output
    (report_path,) = sorted((home.path / "ceremonies").glob("*-ca-rollover-seal.json"))
    report = json.loads(report_path.read_text())["report"]
    assert report["dual_control"] is True and [c["name"] for c in report["custodians"]] == ["alice", "bob"]
