"""`qtsp crl publish` and `qtsp crl show`: output, files, and one-line errors without tracebacks."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from cryptography import x509

from qtsp.cli import cli
from tests.conftest import Home
from tests.integration.helpers import open_runtime
from tests.integration.test_crl import ACTOR, _issue


def _run(home: Home, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--home", str(home.path), *args], env=home.env)
    return result.exit_code, result.stdout, result.stderr


def test_publish_and_show(soft_home: Home, tmp_path: Path) -> None:
    code, out, _ = _run(soft_home, "crl", "publish")
    assert code == 0
    assert out.count("up to date (CRL #1") == 4  # qtsp init published them a moment ago

    with open_runtime(soft_home.path) as rt:
        _, serial, _ = _issue(rt)
        rt.revocation().revoke("qes", serial, "keyCompromise", actor=ACTOR)
    code, out, _ = _run(soft_home, "crl", "publish")
    assert code == 0
    assert "qes: published CRL #2, 1 entries" in out  # pending change: due without --force
    assert "seal: up to date" in out

    code, out, _ = _run(soft_home, "crl", "publish", "--issuer", "root", "--force")
    assert code == 0 and "root: published CRL #2, 0 entries" in out

    der_path = tmp_path / "qes.crl"
    code, out, err = _run(soft_home, "crl", "show", "--issuer", "qes", "--out", str(der_path))
    assert code == 0, err
    assert "qes: CRL #2" in out and "thisUpdate" in out and "nextUpdate" in out and "sha256" in out
    assert f"{serial}  " in out and "keyCompromise" in out
    assert "entries     1" in out
    crl = x509.load_der_x509_crl(der_path.read_bytes())
    assert [format(e.serial_number, "x") for e in crl] == [serial]
    assert der_path.read_bytes() == (soft_home.path / "publish" / "crl" / "qes.crl").read_bytes()

    code, out, _ = _run(soft_home, "crl", "show", "--issuer", "qes", "--number", "1")
    assert code == 0 and "qes: CRL #1" in out and "entries     0" in out
    code, out, _ = _run(soft_home, "crl", "show")
    assert code == 0 and all(f"{n}: CRL #" in out for n in ("root", "qes", "seal", "auth"))


def test_errors_are_one_line(soft_home: Home) -> None:
    cases = [
        (("crl", "publish", "--issuer", "nope"), "no CA named 'nope'"),
        (("crl", "show", "--issuer", "nope"), "no CA named 'nope'"),
        (("crl", "show", "--issuer", "qes", "--number", "99"), "CA qes has no stored CRL #99"),
        (("crl", "show", "--number", "1"), "--number and --out need --issuer"),
    ]
    for args, message in cases:
        code, out, err = _run(soft_home, *args)
        assert code == 1, (args, out, err)
        assert err.strip() == f"error: {message}", (args, err)
        assert "Traceback" not in out + err


def test_uninitialised_home_fails_cleanly(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--home", str(tmp_path / "empty"), "crl", "publish", "--issuer", "qes"], env={"QTSP_KEY_BACKEND": "soft"}
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
