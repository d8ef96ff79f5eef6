"""Shared fixtures: real components only (SQLite, PostgreSQL, SoftHSM2, pkilint, openssl).

SoftHSM2 reads ``SOFTHSM2_CONF`` when the PKCS#11 library is initialised, so one configuration
(with one token directory) is set for the whole session before any test loads the library;
tests create tokens with their own labels inside it.

Tests that need SoftHSM2 or PostgreSQL never skip silently in CI: when ``CI`` is set (``make
test`` sets it) a missing component is a failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PG_ADMIN_URL = os.environ.get("QTSP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="qtsp-tests-"))
_SOFTHSM_TOKENS = _SESSION_DIR / "softhsm-tokens"
_SOFTHSM_TOKENS.mkdir()
_SOFTHSM_CONF = _SESSION_DIR / "softhsm2.conf"
_SOFTHSM_CONF.write_text(f"directories.tokendir = {_SOFTHSM_TOKENS}\nobjectstore.backend = file\nlog.level = ERROR\n")
os.environ["SOFTHSM2_CONF"] = str(_SOFTHSM_CONF)


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


# CI runs the same Hypothesis examples every time (a red build is reproducible); locally they vary.
settings.register_profile("ci", derandomize=True, print_blob=True)
if in_ci():
    settings.load_profile("ci")


def require(condition: bool, what: str) -> None:
    """Skip outside CI, fail inside CI: required components never skip silently there."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{what} is required under `make test` / CI but is not available")
    pytest.skip(f"{what} not available")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# SoftHSM2


@dataclass(frozen=True)
class SoftHSMToken:
    module: str
    label: str
    pin: str
    so_pin: str
    token_dir: Path
    conf: Path


def softhsm_available() -> bool:
    return Path(SOFTHSM_MODULE).exists() and shutil.which("softhsm2-util") is not None


def make_softhsm_token(label: str | None = None) -> SoftHSMToken:
    """Initialise a fresh token in the session's SoftHSM2 token directory."""
    require(softhsm_available(), "SoftHSM2 (Debian package softhsm2)")
    label = label or f"t{uuid.uuid4().hex[:12]}"
    pin, so_pin = secrets.token_hex(8), secrets.token_hex(8)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(_SOFTHSM_CONF)},
    )
    return SoftHSMToken(SOFTHSM_MODULE, label, pin, so_pin, _SOFTHSM_TOKENS, _SOFTHSM_CONF)


@pytest.fixture(autouse=True, scope="session")
def _cheap_argon2_in_this_process() -> Iterator[None]:
    """Argon2 with minimal cost for hashes made inside the test process (every RA test registers
    and logs in several accounts).  Hashes carry their own parameters, so verification follows;
    the product's parameters are unchanged (tests/unit/test_credentials.py checks them in a fresh
    interpreter) and ``qtsp`` subprocesses use them."""
    from argon2 import PasswordHasher

    import ra.credentials

    production = ra.credentials._HASHER
    ra.credentials._HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # type: ignore[misc]
    yield
    ra.credentials._HASHER = production  # type: ignore[misc]


@pytest.fixture
def softhsm_token() -> SoftHSMToken:
    return make_softhsm_token()


# ----------------------------------------------------------------------------------------------
# PostgreSQL: a fresh database per test, dropped afterwards.


def _pg_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture
def pg_url() -> Iterator[str]:
    require(_pg_reachable(), f"PostgreSQL at {PG_ADMIN_URL}")
    import psycopg

    admin = PG_ADMIN_URL.replace("postgresql+psycopg", "postgresql")
    name = f"qtsp_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ----------------------------------------------------------------------------------------------
# Initialised homes


PUBLIC_BASE_URL = "http://qtsp.example.com"


@dataclass(frozen=True)
class Home:
    path: Path
    env: dict[str, str]
    backend: str
    database: str


def init_home(
    path: Path,
    *,
    backend: str = "soft",
    database_url: str | None = None,
    base_url: str = PUBLIC_BASE_URL,
    token: SoftHSMToken | None = None,
    issuing_algorithm: str = "ec-p256",
) -> Home:
    """Run `qtsp init` in-process (through the CLI entry point) and return the home."""
    from click.testing import CliRunner

    from qtsp.cli import cli

    env: dict[str, str] = {"QTSP_KEY_BACKEND": backend, "QTSP_CA_ALGORITHM": issuing_algorithm}
    if database_url:
        env["QTSP_DATABASE_URL"] = database_url
    if backend == "pkcs11":
        assert token is not None
        env.update(QTSP_PKCS11_MODULE=token.module, QTSP_PKCS11_TOKEN_LABEL=token.label, QTSP_PKCS11_PIN=token.pin)
    args = ["--home", str(path), "init", "--base-url", base_url]
    if backend == "pkcs11":
        # Dual control: the PIN is split between two custodians, and init recombines their shares.
        shares = path.parent / f"{path.name}-shares"
        split = CliRunner().invoke(
            cli,
            [
                "--home",
                str(path),
                "ceremony",
                "split-pin",
                "--operator",
                "alice",
                "--operator",
                "bob",
                "--out-dir",
                str(shares),
            ],
            env=env,
        )
        assert split.exit_code == 0, split.output
        args += ["--custodian", f"alice={shares / 'alice.share'}", "--custodian", f"bob={shares / 'bob.share'}"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    return Home(path=path, env=env, backend=backend, database=database_url or "sqlite")


@pytest.fixture
def soft_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    home = init_home(tmp_path / "home")
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    return home


@pytest.fixture(params=["sqlite", "postgres"])
def db_home(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """A soft-key home on SQLite and on PostgreSQL."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    home = init_home(tmp_path / "home", database_url=url)
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    return home


@pytest.fixture(params=["sqlite-soft", "sqlite-pkcs11", "postgres-soft", "postgres-pkcs11"])
def any_home(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """A home on every combination of database and key backend."""
    db, backend = request.param.split("-")
    url = request.getfixturevalue("pg_url") if db == "postgres" else None
    token = make_softhsm_token() if backend == "pkcs11" else None
    home = init_home(tmp_path / "home", backend=backend, database_url=url, token=token)
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    return home
