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


def test_last_crl_closes_a_ca(soft_home: Home) -> None:
    """`qtsp crl last`: refused (one line) while certificates live or without the name confirmed;
    once the seal CA's only certificate (its OCSP responder's) is revoked, the last CRL closes it,
    and `crl publish` and `status` say so."""
    from sqlalchemy import select

    from ca.store.models import CertificateAuthority, CertificateRecord

    code, _, err = _run(soft_home, "crl", "last", "--issuer", "seal", "--confirm", "qes")
    assert code == 1 and err.strip().startswith("error: --confirm must repeat the CA name")
    code, _, err = _run(soft_home, "crl", "last", "--issuer", "seal", "--confirm", "seal")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "neither expired nor revoked" in err, err

    with open_runtime(soft_home.path) as rt:
        with rt.db.read() as s:
            seal = s.scalars(select(CertificateAuthority.id).where(CertificateAuthority.name == "seal")).one()
            serials = list(s.scalars(select(CertificateRecord.serial).where(CertificateRecord.issuer_id == seal)))
        assert len(serials) == 1  # the OCSP responder's certificate
        rt.revocation().revoke("seal", serials[0], "cessationOfOperation", actor=ACTOR)
    code, out, err = _run(soft_home, "crl", "last", "--issuer", "seal", "--confirm", "seal")
    assert code == 0, err
    assert "seal: last CRL #2 published, 1 entries" in out and "nextUpdate 9999-12-31T23:59:59+00:00" in out
    crl = x509.load_der_x509_crl((soft_home.path / "publish" / "crl" / "seal.crl").read_bytes())
    assert crl.next_update_utc is not None and crl.next_update_utc.year == 9999

    code, out, _ = _run(soft_home, "crl", "publish", "--force")
    assert code == 0 and "seal: closed since" in out and "qes: published CRL #2" in out
    code, _, err = _run(soft_home, "crl", "publish", "--issuer", "seal", "--force")
    assert code == 1 and "its last CRL #2 is final" in err
    code, out, _ = _run(soft_home, "status")
    assert code == 0 and "last CRL #2 is final" in out
