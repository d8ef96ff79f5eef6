"""Auditor views (issue 5 points 2–3): audit events by certificate, order, actor and time range
through the API, and the evidence bundle behind one certificate — the ID copy only for the
auditor role, and that read audited — through the API and ``qtsp audit evidence``."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from pathlib import Path

from click.testing import CliRunner

from qtsp.cli import cli
from tests.conftest import Home
from tests.integration.ra_support import RAEnv, csr_pem

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


def _issued_card_with_copy(env: RAEnv) -> tuple[int, str]:
    env.applicant("a", "Anna", "Applicant", "1985-03-03")
    order = int(
        env.ok(
            "POST", "/api/orders", "a", json={"product": "qes-card", "method": "on-site", "country": "DE"}, status=201
        )["id"]
    )
    env.identity(order, "Anna", "Applicant", "1985-03-03")
    r = env.call(
        "POST",
        f"/api/orders/{order}/copy",
        "a",
        data={"file": (io.BytesIO(PNG), "id.png"), "redacted": "eye-colour"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.get_json()
    env.ok("POST", f"/api/orders/{order}/approve", "ra1")
    env.ok("POST", f"/api/orders/{order}/slots/signature/csr", "caop", json={"csr_pem": csr_pem()})
    env.ok("POST", f"/api/orders/{order}/ship", "caop")
    return order, env.slot_serial(order)


def test_evidence_bundle_joins_ca_and_ra_and_guards_the_copy(env: RAEnv) -> None:
    order, serial = _issued_card_with_copy(env)
    bundle = env.ok("GET", f"/api/audit/evidence/qes/{serial}", "aud")
    cert = bundle["certificate"]
    assert cert["serial"] == serial and cert["status"] == "on-hold" and cert["profile"] == "qes-natural"
    assert cert["journal"]["state"] == "stored" and isinstance(cert["journal"]["lint_report"], list)
    assert cert["reservation"]["state"] == "issued"
    assert cert["status_entry"]["reason"] == "certificateHold"
    reg = bundle["registration"]
    assert reg["order"]["id"] == order and reg["slot"]["serial_hex"] == serial
    assert reg["approvals"] and reg["identity_evidence"]["surname"] == "Applicant"
    assert reg["evidence_copy"]["redacted"] is True and reg["card"]["state"] == "not-activated"
    actions = {e["action"] for e in bundle["audit_events"]}
    assert {"certificate.issued"} <= actions and any(a.startswith("order.") for a in actions)
    assert "evidence_copy_content" not in bundle
    # The copy: auditor only, and the read itself is audited.
    with_copy = env.ok("GET", f"/api/audit/evidence/qes/{serial}?include_copy=true", "aud")
    assert base64.b64decode(with_copy["evidence_copy_content"]["base64"]) == PNG
    denied = env.call("GET", f"/api/audit/evidence/qes/{serial}?include_copy=true", "sec")
    assert denied.status_code == 403 and denied.mimetype == "application/problem+json"
    reads = env.ok("GET", f"/api/audit?order={order}", "aud")
    assert any(e["action"] == "order.copy_read" for e in reads)
    missing = env.call("GET", "/api/audit/evidence/qes/abc123", "aud")
    assert missing.status_code == 404


def test_audit_events_by_certificate_order_actor_and_time(env: RAEnv) -> None:
    order, serial = _issued_card_with_copy(env)
    by_cert = env.ok("GET", f"/api/audit?certificate=qes:{serial}", "aud")
    assert by_cert and all(e["object_id"] == f"qes:{serial}" for e in by_cert)
    by_order = env.ok("GET", f"/api/audit?order={order}", "aud")
    assert by_order and all(e["object_type"] in ("order", "card") for e in by_order)
    actor = by_order[0]["actor"]
    by_actor = env.ok("GET", f"/api/audit?actor={actor}&limit=5", "aud")
    assert 0 < len(by_actor) <= 5 and {e["actor"] for e in by_actor} == {actor}
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert env.ok("GET", f"/api/audit?since={future}", "aud") == []
    assert env.call("GET", "/api/audit?limit=0", "aud").status_code == 422
    assert env.call("GET", "/api/audit", "a").status_code == 403


def test_cli_evidence_writes_json_and_the_copy(env: RAEnv, db_home: Home, tmp_path: Path) -> None:
    _, serial = _issued_card_with_copy(env)
    out = tmp_path / "copy.png"
    result = CliRunner().invoke(cli, ["--home", str(db_home.path), "audit", "evidence", serial, "--copy-out", str(out)])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    assert bundle["certificate"]["serial"] == serial and bundle["registration"]["order"]["product"] == "qes-card"
    assert out.read_bytes() == PNG
    bad = CliRunner().invoke(cli, ["--home", str(db_home.path), "audit", "evidence", "ffff"])
    assert bad.exit_code == 1 and "no certificate" in bad.output


def test_retention_deletes_copies_but_keeps_digests_and_audit(env: RAEnv) -> None:
    import dataclasses

    from sqlalchemy import select

    from ra.store.models import EvidenceCopy

    order, serial = _issued_card_with_copy(env)
    assert env.service.purge_expired_copies(dt.timedelta(days=30)) == []  # not yet due
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    service = dataclasses.replace(env.service, clock=lambda: later)
    assert service.purge_expired_copies(dt.timedelta(days=30)) == [order]
    assert service.purge_expired_copies(dt.timedelta(days=30)) == []  # once
    with env.service.db.read() as s:
        row = s.scalars(select(EvidenceCopy).where(EvidenceCopy.order_id == order)).one()
    assert row.ciphertext is None and row.purged_at is not None and len(row.sha256) == 64
    r = env.call("GET", f"/api/orders/{order}/copy", "aud")
    assert (
        r.status_code == 404 and "retention policy" in r.get_json()["detail"] and row.sha256 in r.get_json()["detail"]
    )
    bundle = env.ok("GET", f"/api/audit/evidence/qes/{serial}", "aud")
    assert bundle["registration"]["evidence_copy"]["sha256"] == row.sha256
    assert bundle["registration"]["evidence_copy"]["purged_at"]
    events = env.ok("GET", f"/api/audit?order={order}", "aud")
    assert any(e["action"] == "order.copy_purged" and row.sha256 in e["details"] for e in events)
    from ca.audit.service import AuditService

    assert AuditService(db=env.service.db, backend=None).verify().ok  # type: ignore[arg-type]
