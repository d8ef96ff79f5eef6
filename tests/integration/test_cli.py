"""The `qtsp` CLI: one clear line on errors, never a traceback; status, issue, export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from qtsp.demo import DEMO_SUBJECTS, fresh_csr
from tests.conftest import Home, init_home


def qtsp(home: Path | None, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "qtsp.cli", *(["--home", str(home)] if home else []), *args]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("QTSP_DEBUG", None)
    return subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=120, check=False)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_status_says_not_qualified_for_soft_keys(soft_home: Home) -> None:
    proc = qtsp(soft_home.path, "status", env=soft_home.env)
    assert proc.returncode == 0, proc.stderr
    assert "NOT QUALIFIED" in proc.stdout
    for name in ("root (root)", "qes (issuing)", "seal (issuing)", "auth (issuing)"):
        assert name in proc.stdout
    assert "ocsp-responder" in proc.stdout
    # Full fingerprints, as in the ceremony record, so an operator can compare them.
    import re

    assert len(re.findall(r"cert SHA-256 [0-9a-f]{64}$", proc.stdout, re.M)) == 4
    assert len(re.findall(r"key SHA-256  [0-9a-f]{64}$", proc.stdout, re.M)) == 4


def test_status_pkcs11_on_softhsm(tmp_path: Path) -> None:
    from tests.conftest import make_softhsm_token

    token = make_softhsm_token()
    home = init_home(tmp_path / "h", backend="pkcs11", token=token)
    proc = qtsp(home.path, "status", env=home.env)
    assert proc.returncode == 0, proc.stderr
    # SoftHSM2 is a software token: status says so (a certified HSM would be reported qualified).
    assert "pkcs11: SoftHSM v2" in proc.stdout and "NOT QUALIFIED" in proc.stdout
    assert token.pin not in proc.stdout + proc.stderr


def test_init_refuses_to_overwrite(soft_home: Home) -> None:
    proc = qtsp(soft_home.path, "init", env=soft_home.env)
    assert_one_line_error(proc, "already exists")


def test_issue_through_cli(soft_home: Home, tmp_path: Path) -> None:
    csr = tmp_path / "req.der"
    csr.write_bytes(fresh_csr())
    subject = tmp_path / "subject.json"
    subject.write_text(json.dumps(DEMO_SUBJECTS["qseal-legal"]))
    out = tmp_path / "cert.pem"
    proc = qtsp(
        soft_home.path,
        "ca", "issue", "--profile", "qseal-legal", "--csr", str(csr), "--subject", str(subject), "--out", str(out),
        env=soft_home.env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cert = x509.load_pem_x509_certificate(out.read_bytes())
    assert "Musterfirma" in cert.subject.rfc4514_string()
    # Without --out the PEM goes to stdout.
    proc = qtsp(
        soft_home.path, "ca", "issue", "--profile", "qseal-legal", "--csr", str(csr), "--subject", str(subject),
        env=soft_home.env,
    )  # fmt: skip
    assert proc.stdout.startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize(
    ("subject", "csr", "profile", "fragments"),
    [
        (dict(DEMO_SUBJECTS["qes-natural"], serialNumber="X123"), "ok", "qes-natural",
         ['EN 319 412-1 §5.1.3: serialNumber "X123" is not <type><country>-<id>']),
        ({"countryName": "DE"}, "ok", "qseal-legal", ["LEG-4.2.1"]),
        (dict(DEMO_SUBJECTS["qes-natural"], colour="red"), "ok", "qes-natural", ["colour"]),
        (DEMO_SUBJECTS["qes-natural"], "garbage", "qes-natural", ["CSR"]),
        (DEMO_SUBJECTS["qes-natural"], "ok", "web-server", ["unknown profile"]),
        (DEMO_SUBJECTS["upc-auth"], "ok", "qes-natural", ["no email allowed"]),
        ("[1, 2]", "ok", "qes-natural", ["JSON object"]),
        ("{not json", "ok", "qes-natural", ["not valid JSON"]),
    ],
    ids=[
        "bad-serial", "legal-missing", "unknown-key", "bad-csr", "unknown-profile", "email-on-qes", "array", "bad-json",
    ],
)  # fmt: skip
def test_issue_errors_are_one_line(
    soft_home: Home, tmp_path: Path, subject: object, csr: str, profile: str, fragments: list[str]
) -> None:
    csr_path = tmp_path / "req.der"
    csr_path.write_bytes(fresh_csr() if csr == "ok" else b"garbage")
    subject_path = tmp_path / "s.json"
    subject_path.write_text(subject if isinstance(subject, str) else json.dumps(subject))
    proc = qtsp(
        soft_home.path, "ca", "issue", "--profile", profile, "--csr", str(csr_path), "--subject", str(subject_path),
        env=soft_home.env,
    )  # fmt: skip
    assert_one_line_error(proc, *fragments)


def test_missing_files_and_bad_config_are_one_line(soft_home: Home, tmp_path: Path) -> None:
    proc = qtsp(
        soft_home.path, "ca", "issue", "--profile", "qes-natural", "--csr", str(tmp_path / "nope"), "--subject",
        str(tmp_path / "nope.json"), env=soft_home.env,
    )  # fmt: skip
    assert_one_line_error(proc, "nope")
    proc = qtsp(soft_home.path, "status", env={**soft_home.env, "QTSP_KEY_BACKEND": "quantum"})
    assert_one_line_error(proc, "keys.backend")


def test_export_writes_every_certificate(soft_home: Home, tmp_path: Path) -> None:
    assert qtsp(soft_home.path, "demo", "--out", str(tmp_path / "demo"), env=soft_home.env).returncode == 0
    proc = qtsp(soft_home.path, "ca", "export", "--out", str(tmp_path / "out"), env=soft_home.env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "ca").glob("*.pem")) == [
        "auth.pem", "chain.pem", "qes.pem", "root.pem", "seal.pem",
    ]  # fmt: skip
    # Every stored certificate (demo, OCSP responders, the RA demo's cards), each exactly once.
    import sqlite3

    with sqlite3.connect(soft_home.path / "qtsp.db") as db:
        serials = {f"{p}-{s}" for p, s in db.execute("SELECT profile, serial FROM certificate")}
    assert len(serials) >= 10
    exported = list((tmp_path / "out" / "certs").glob("*.pem"))
    assert len(exported) == len(serials)
    assert all(any(p.name.endswith(f"{s.split('-', 1)[1]}.pem") for p in exported) for s in serials)


def test_soft_passphrase_file_is_private(soft_home: Home) -> None:
    secret = soft_home.path / "secrets" / "soft-keystore.pass"
    assert secret.stat().st_mode & 0o077 == 0
    assert secret.read_text().strip() not in (soft_home.path / "qtsp.toml").read_text()


def test_backend_mismatch_is_one_clear_line(soft_home: Home, tmp_path: Path) -> None:
    from tests.conftest import make_softhsm_token

    token = make_softhsm_token()
    env = {
        **soft_home.env,
        "QTSP_KEY_BACKEND": "pkcs11",
        "QTSP_PKCS11_MODULE": token.module,
        "QTSP_PKCS11_TOKEN_LABEL": token.label,
        "QTSP_PKCS11_PIN": token.pin,
    }
    csr = tmp_path / "req.der"
    csr.write_bytes(fresh_csr())
    subject = tmp_path / "s.json"
    subject.write_text(json.dumps(DEMO_SUBJECTS["qseal-legal"]))
    proc = qtsp(
        soft_home.path, "ca", "issue", "--profile", "qseal-legal", "--csr", str(csr), "--subject", str(subject), env=env
    )
    assert_one_line_error(proc, "keys.backend", "soft backend")


def test_ra_run_jobs_runs_every_ra_job_once(soft_home: Home) -> None:
    proc = qtsp(soft_home.path, "ra", "run-jobs", env=soft_home.env)
    assert proc.returncode == 0, proc.stderr
    for words in ("reconciled 0 recorded", "revocations carried out 0", "renewals issued 0", "sent 0"):
        assert words in proc.stdout, proc.stdout
