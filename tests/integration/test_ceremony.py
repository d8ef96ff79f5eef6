"""Dual-control key ceremony (issue 5 point 4): with PKCS#11, ``qtsp init`` needs the PIN shares of
two distinct custodians (a PIN in the environment is not enough) and writes a report signed with
the audit key; with the soft backend one operator suffices and the report says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qtsp.cli import cli
from tests.conftest import init_home, make_softhsm_token


def _split(home: Path, env: dict[str, str], out: Path, *operators: str) -> None:
    args = ["--home", str(home), "ceremony", "split-pin", "--out-dir", str(out)]
    for op in operators:
        args += ["--operator", op]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output


def _init(home: Path, env: dict[str, str], *custodians: str) -> object:
    args = ["--home", str(home), "init", "--base-url", "http://qtsp.example.com"]
    for c in custodians:
        args += ["--custodian", c]
    return CliRunner().invoke(cli, args, env=env)


@pytest.mark.hsm
def test_pkcs11_init_needs_two_distinct_custodians(tmp_path: Path) -> None:
    token = make_softhsm_token()
    env = {
        "QTSP_KEY_BACKEND": "pkcs11",
        "QTSP_PKCS11_MODULE": token.module,
        "QTSP_PKCS11_TOKEN_LABEL": token.label,
        "QTSP_PKCS11_PIN": token.pin,
    }
    home = tmp_path / "home"
    shares = tmp_path / "shares"
    _split(home, env, shares, "alice", "bob")
    a, b = f"alice={shares / 'alice.share'}", f"bob={shares / 'bob.share'}"
    refusals = [
        ((), "at least two key custodians"),
        ((a,), "at least two key custodians"),
        ((f"carol={shares / 'alice.share'}", b), "belongs to alice, not carol"),
        ((a, "bob"), "NAME=SHARE_FILE"),
    ]
    for custodians, message in refusals:
        result = _init(home, env, *custodians)
        assert result.exit_code == 1 and message in result.output, (custodians, result.output)  # type: ignore[attr-defined]
    # A tampered share recombines to a wrong PIN: the token refuses the login, nothing is created.
    tampered = tmp_path / "bob-tampered.share"
    body = json.loads((shares / "bob.share").read_text())
    body["share"] = "QUFBQUFBQUFBQUFBQUFBQQ=="
    tampered.write_text(json.dumps(body))
    bad = _init(home, env, a, f"bob={tampered}")
    assert bad.exit_code == 1 and "Traceback" not in bad.output  # type: ignore[attr-defined]
    # The PIN in the environment is wrong, but the custodians' shares are right: the ceremony works.
    ok = _init(home, {**env, "QTSP_PKCS11_PIN": "not-the-pin"}, a, b)
    assert ok.exit_code == 0, ok.output  # type: ignore[attr-defined]
    reports = sorted((home / "ceremonies").glob("*-hierarchy-init.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())["report"]
    assert report["dual_control"] is True
    assert [c["name"] for c in report["custodians"]] == ["alice", "bob"]
    assert report["key_backend"]["backend"] == "pkcs11" and report["key_backend"]["token_id"]
    assert {k["ca"] for k in report["keys"]} == {"root", "qes", "seal", "auth"}
    assert all(len(k["public_key_sha256"]) == 64 for k in report["keys"])
    export = CliRunner().invoke(cli, ["--home", str(home), "ca", "export", "--out", str(tmp_path / "pem")], env=env)
    assert export.exit_code == 0
    verified = CliRunner().invoke(
        cli, ["ceremony", "verify", str(reports[0]), "--root", str(tmp_path / "pem" / "ca" / "root.pem")]
    )
    assert verified.exit_code == 0 and "dual control yes (custodians: alice, bob)" in verified.output


def test_soft_init_report_says_single_operator_and_tampering_is_caught(tmp_path: Path) -> None:
    home = init_home(tmp_path / "home")
    (report_path,) = sorted((home.path / "ceremonies").glob("*-hierarchy-init.json"))
    doc = json.loads(report_path.read_text())
    assert doc["report"]["dual_control"] is False and "NOT QUALIFIED" in doc["report"]["dual_control_note"]
    ok = CliRunner().invoke(cli, ["ceremony", "verify", str(report_path)])
    assert ok.exit_code == 0 and "dual control no" in ok.output
    doc["report"]["settings"]["base_url"] = "http://evil.example"
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(doc))
    bad = CliRunner().invoke(cli, ["ceremony", "verify", str(altered)])
    assert bad.exit_code == 1 and "altered" in bad.output
    split = CliRunner().invoke(
        cli, ["--home", str(home.path), "ceremony", "split-pin", "--operator", "a", "--operator", "b", "--out-dir", "x"]
    )
    assert split.exit_code == 1 and "pkcs11 backend" in split.output
