"""Configuration: defaults, environment overrides, and one-line errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from qtsp.config import ConfigurationError, load_config


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in (
        "QTSP_HOME",
        "QTSP_DATABASE_URL",
        "QTSP_KEY_BACKEND",
        "QTSP_BASE_URL",
        "QTSP_CA_ALGORITHM",
        "QTSP_PKCS11_MODULE",
        "QTSP_PKCS11_TOKEN_LABEL",
        "QTSP_PKCS11_PIN",
        "QTSP_PKCS11_PIN_FILE",
        "QTSP_SOFT_PASSPHRASE",
        "QTSP_SOFT_PASSPHRASE_FILE",
        "QTSP_SERVE_HOST",
        "QTSP_SERVE_PORT",
    ):
        monkeypatch.delenv(k, raising=False)


def _write(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "qtsp.toml").write_text(text)


def test_defaults(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    assert cfg.database.url == f"sqlite:///{tmp_path / 'qtsp.db'}"
    assert cfg.keys.backend == "soft"
    assert cfg.ca.base_url == "http://127.0.0.1:8080"
    assert cfg.serve.host == "127.0.0.1" and cfg.serve.port == 8080
    assert cfg.development_base_url
    assert cfg.source is None


def test_home_from_environment_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QTSP_HOME", str(tmp_path / "h"))
    assert load_config().home == (tmp_path / "h").resolve()
    monkeypatch.delenv("QTSP_HOME")
    monkeypatch.chdir(tmp_path)
    assert load_config().home == (tmp_path / "var").resolve()


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, '[ca]\nbase_url = "https://a.example.eu"\n[keys]\nbackend = "soft"\n')
    assert load_config(tmp_path).ca.base_url == "https://a.example.eu"
    assert not load_config(tmp_path).development_base_url
    monkeypatch.setenv("QTSP_BASE_URL", "https://b.example.eu/")
    monkeypatch.setenv("QTSP_DATABASE_URL", "postgresql://u@h/db")
    cfg = load_config(tmp_path)
    assert cfg.ca.base_url == "https://b.example.eu"
    assert cfg.database.url == "postgresql://u@h/db"
    # The command line (qtsp init --base-url) wins over both.
    assert load_config(tmp_path, base_url="http://c.example.eu").ca.base_url == "http://c.example.eu"


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[keys]\nbackend = "hsm"\n', "keys.backend"),
        ('[keys]\npin = "1234"\n', "keys.pin"),
        ('[keys]\npassphrase = "x"\n', "keys.passphrase"),
        ('[ca]\nbase_url = "ftp://x"\n', "ca.base_url"),
        ('[ca]\nbase_url = "http://x.example/?q=1"\n', "ca.base_url"),
        ('[ca]\ncountry = "Germany"\n', "ca.country"),
        ('[ca]\nissuing_algorithm = "ec-p192"\n', "ca.issuing_algorithm"),
        ('[ca]\ncp_arc = "1.2.x"\n', "ca.cp_arc"),
        ('[ca.pds]\nen = "http://insecure.example/pds"\n', "ca.pds.en"),
        ('[ca.pds]\nde = "https://x.example/pds"\n', "ca.pds"),
        ('[ca]\norganization_identifier = "Same"\norganization_name = "same"\n', "ca.organization_identifier"),
        ('[database]\nurl = "mysql://x"\n', "database.url"),
        ("[serve]\nport = 70000\n", "serve.port"),
        ('[serve]\nport = "eighty"\n', "serve.port"),
        ('[issuance]\npkilint = "maybe"\n', "issuance.pkilint"),
        ("[ra]\nfollowups_without_identification = 11\n", "ra.followups_without_identification"),
        ("[ra]\nfollowups_without_identification = -1\n", "ra.followups_without_identification"),
        ('[ra]\nfollowup_qc_ident_method = "sometimes"\n', "ra.followup_qc_ident_method"),
        ('[ca]\nbase_urll = "http://typo.example"\n', "ca.base_urll"),
        ("[nonsense]\nx = 1\n", "nonsense"),
        ("[ca\n", "qtsp.toml"),
    ],
)
def test_invalid_configuration_names_the_key(tmp_path: Path, toml: str, key: str) -> None:
    _write(tmp_path, toml)
    with pytest.raises(ConfigurationError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert key in message
    assert "\n" not in message


def test_invalid_environment_value_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QTSP_KEY_BACKEND", "nope")
    with pytest.raises(ConfigurationError, match=r"^keys\.backend: "):
        load_config(tmp_path)


def test_pkcs11_module_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QTSP_KEY_BACKEND", "pkcs11")
    monkeypatch.setenv("QTSP_PKCS11_MODULE", str(tmp_path / "missing.so"))
    with pytest.raises(ConfigurationError, match=r"^keys\.module: "):
        load_config(tmp_path)


def test_secret_from_environment_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, '[keys]\nbackend = "soft"\npassphrase_file = "pass.txt"\n')
    cfg = load_config(tmp_path)
    with pytest.raises(ConfigurationError, match=r"keys\.passphrase_file"):
        cfg.keys.read_secret()
    (tmp_path / "pass.txt").write_text("from-file\n")
    assert cfg.keys.read_secret() == b"from-file"
    monkeypatch.setenv("QTSP_SOFT_PASSPHRASE", "from-env")
    assert cfg.keys.read_secret() == b"from-env"


def test_rendered_config_round_trips(tmp_path: Path) -> None:
    from qtsp.config import render_config

    cfg = load_config(tmp_path, base_url="https://qtsp.example.eu")
    _write(tmp_path, render_config(cfg))
    again = load_config(tmp_path)
    assert again.ca == cfg.ca and again.keys == cfg.keys and again.serve == cfg.serve
    assert again.ra is not None and cfg.ra is not None
    assert (again.ra.followups_without_identification, again.ra.followup_qc_ident_method) == (2, False)
    _write(tmp_path, "[ra]\nfollowups_without_identification = 0\nfollowup_qc_ident_method = true\n")
    changed = load_config(tmp_path).ra
    assert changed is not None and (changed.followups_without_identification, changed.followup_qc_ident_method) == (
        0,
        True,
    )
    import re

    assert not re.search(r"^\s*(pin|passphrase|so_pin)\s*=", (tmp_path / "qtsp.toml").read_text(), re.M)


def test_database_password_never_in_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qtsp.config import render_config

    _write(tmp_path, '[database]\nurl = "postgresql://qtsp:hunter2@db.example/qtsp"\n')
    with pytest.raises(ConfigurationError) as info:
        load_config(tmp_path)
    assert "database.url" in str(info.value) and "hunter2" not in str(info.value)
    # From the environment it is accepted, and `qtsp init` does not copy it into the file.
    (tmp_path / "qtsp.toml").unlink()
    monkeypatch.setenv("QTSP_DATABASE_URL", "postgresql://qtsp:hunter2@db.example/qtsp")
    cfg = load_config(tmp_path)
    assert cfg.database.url.endswith("@db.example/qtsp")
    assert "hunter2" not in render_config(cfg)
    monkeypatch.setenv("QTSP_DATABASE_URL", "mysql://qtsp:hunter2@db.example/qtsp")
    with pytest.raises(ConfigurationError) as info:
        load_config(tmp_path)
    assert "hunter2" not in str(info.value)
