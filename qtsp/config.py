"""Configuration: one TOML file in the data directory plus environment overrides.

The data directory ("home") is ``--home DIR``, else ``$QTSP_HOME``, else ``./var``.  The file is
``<home>/qtsp.toml``; every key has a default, so a missing file means "all defaults".

Secrets (the PKCS#11 PIN, the soft keystore passphrase) are never read from the TOML file: they
come from an environment variable or from a file named in the configuration.  A secret found in
the TOML file is a configuration error.

Any invalid value stops the program at start with one line naming the key, e.g.
``configuration error: keys.backend: must be one of 'soft', 'pkcs11' (got 'hsm')``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from ca.asn1 import is_oid
from ca.issuance.hierarchy import HierarchySettings
from hsm import KeyAlgorithm

__all__ = [
    "Config",
    "ConfigurationError",
    "DatabaseConfig",
    "IssuanceConfig",
    "KeysConfig",
    "ServeConfig",
    "is_loopback_url",
    "load_config",
    "resolve_home",
]

CONFIG_FILE_NAME: Final = "qtsp.toml"
DEFAULT_HOME: Final = "./var"
DEFAULT_BASE_URL: Final = "http://127.0.0.1:8080"
# RFC 5612 reserves PEN 32473 for documentation: an operator replaces this arc with its own.
DEFAULT_CP_ARC: Final = "1.3.6.1.4.1.32473.1"

_SECRET_KEYS: Final = frozenset({"pin", "passphrase", "password", "secret", "so_pin"})


class ConfigurationError(Exception):
    """An invalid configuration value.  ``str()`` is one line that names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str
    """SQLAlchemy URL.  Default: ``sqlite:///<home>/qtsp.db`` (WAL mode)."""


@dataclass(frozen=True, slots=True)
class KeysConfig:
    backend: str
    """``soft`` (development and demo only, not qualified) or ``pkcs11``."""
    soft_directory: Path
    soft_passphrase_file: Path | None
    soft_passphrase_env: str
    pkcs11_module: str
    pkcs11_token_label: str
    pkcs11_pin_env: str
    pkcs11_pin_file: Path | None

    def read_secret(self) -> bytes:
        """Read the backend's secret (soft passphrase or PKCS#11 PIN) from the environment or its file.

        :raises ConfigurationError: when neither is available.
        """
        if self.backend == "soft":
            env, path, key = self.soft_passphrase_env, self.soft_passphrase_file, "keys.passphrase_file"
        else:
            env, path, key = self.pkcs11_pin_env, self.pkcs11_pin_file, "keys.pin_file"
        value = os.environ.get(env)
        if value:
            return value.encode()
        if path is None:
            raise ConfigurationError(key, f"no secret: set the environment variable {env} or {key}")
        try:
            data = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigurationError(key, f"cannot read {path}: {exc.strerror}") from None
        if not data:
            raise ConfigurationError(key, f"{path} is empty")
        return data


@dataclass(frozen=True, slots=True)
class IssuanceConfig:
    pkilint: bool
    """Run pkilint in the issuance gate (on by default; only benchmarks switch it off)."""
    stale_reservation_seconds: int
    """A reservation older than this, with no certificate, is settled as failed by recovery."""


@dataclass(frozen=True, slots=True)
class ServeConfig:
    host: str
    port: int
    trusted_proxies: int = 0
    """Reverse proxies in front of the application (nginx: 1) whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed: the client address then drives per-address rate limits
    and is recorded with revocation requests.  0 (default): the socket's peer address only, so a
    client can never forge its address with a header."""


@dataclass(frozen=True, slots=True)
class StatusConfig:
    """``[status]``: CRL and OCSP timings (STANDARDS.md §2.3–2.4; EN 319 411-1 CSS-6.3.9-05/-06)."""

    crl_interval_seconds: int
    """Publish every issuing CA's CRL at least this often (default 1 h; EN 319 411-1 requires ≤ 24 h)."""
    crl_after_change_seconds: int
    """Publish within this many seconds after a revocation or activation (default 60)."""
    crl_next_update_days: int
    """nextUpdate = thisUpdate + this (default 7 days)."""
    carl_next_update_days: int
    """The root's CA revocation list: nextUpdate ≤ 1 year (CSS-6.3.9-12); default 30 days."""
    publish_dir: Path
    """CRLs and CA certificates are also written here for static hosting (default ``<home>/publish``)."""
    ocsp_validity_hours: int
    """Pre-signed and live OCSP responses: nextUpdate = thisUpdate + this (default 24 h)."""
    ocsp_max_age_seconds: int
    """Upper bound of HTTP ``max-age`` on OCSP answers (RFC 5019 §6.2), default 60 s."""
    ocsp_max_request_bytes: int
    """Larger requests are refused as malformedRequest before parsing (default 4096)."""
    ocsp_cache_ms: int
    """Each process may repeat its answer to a byte-identical request (no nonce) for this long
    without reading the database (default 500 ms; under 1 s, the revocation visibility promise)."""
    responder_renew_days: int
    """Issue a new delegated responder certificate this many days before the current one expires."""
    scheduler: bool
    """Run the scheduler inside ``qtsp serve`` (default true; false when a separate ``qtsp worker`` runs)."""


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """``[audit]``: signed checkpoints of the audit chain (issue 5)."""

    checkpoint_interval_seconds: int
    """Sign the chain head this often (default 1 h); ``qtsp audit checkpoint`` signs on demand."""


@dataclass(frozen=True, slots=True)
class RAConfig:
    activation_hours: int
    """Cards are activated automatically this long after shipping unless the holder confirms receipt first."""
    data_key_file: Path
    """The RA's data key (evidence copies and TOTP secrets at rest): a secret file, never in this file's values."""
    evidence_retention_days: int = 4018
    """Identity-document copies are deleted this long after upload, their digests kept (default 11
    years; set it to the period your terms and conditions state, TS 119 461 ISS-8.5.2-04)."""
    sms_gateway: str = "spool"
    """Who carries SMS (TANs): ``spool`` (development: files under ``<home>/outbox``) or
    ``package.module:factory`` (see ra/outbox.py).  Carrier credentials come from the gateway's own
    environment, never from this file."""
    post_gateway: str = "spool"
    """Who prints and posts letters (order passwords, registration secrets): as ``sms_gateway``."""
    email_gateway: str = "spool"
    """Who sends email (the links that confirm an order's email address): as ``sms_gateway``."""
    renewal_min_days: int = 3
    """Online renewal is possible until this many days before the certificate expires, and the
    chosen issuance date must lie that early too (DigiSign: "minimum 3 days left")."""
    followups_without_identification: int = 2
    """Follow-up cards in a row that need no new identification; the next one does (EN 319 411-1
    REG-6.3.1-00E: the CPS states how often; D-Trust: two, the third needs ID again)."""
    followup_qc_ident_method: bool = False
    """Certificates of follow-ups authenticated by the current qualified certificate carry the
    QcIdentMethod statement id-etsi-qct-eIDAS2-b (EN 319 412-5 V2.5.1 §4.3.5)."""


@dataclass(frozen=True, slots=True)
class Config:
    home: Path
    database: DatabaseConfig
    keys: KeysConfig
    ca: HierarchySettings
    """The validated CA settings, as the hierarchy ceremony and the issuers take them."""
    issuance: IssuanceConfig
    serve: ServeConfig
    status: StatusConfig
    audit: AuditConfig
    ra: RAConfig
    """The registration authority's settings."""
    source: Path | None = field(default=None)
    """The TOML file read, or None when defaults were used."""

    @property
    def development_base_url(self) -> bool:
        """True when the base URL points at a loopback host (development and interop tests only)."""
        return is_loopback_url(self.ca.base_url)


def resolve_home(home: str | os.PathLike[str] | None) -> Path:
    """``--home`` wins over ``$QTSP_HOME``, which wins over ``./var``."""
    chosen = home if home is not None else os.environ.get("QTSP_HOME") or DEFAULT_HOME
    return Path(chosen).resolve()


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ----------------------------------------------------------------------------------------------
# Parsing helpers: each names the key it complains about.


class _Section:
    def __init__(self, name: str, raw: object) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigurationError(name, "must be a table")
        self.name = name
        self.raw: dict[str, object] = dict(raw)
        self.seen: set[str] = set()

    def key(self, k: str) -> str:
        return f"{self.name}.{k}"

    def get(self, k: str, env: str | None = None) -> object:
        self.seen.add(k)
        if env is not None and env in os.environ:
            return os.environ[env]
        return self.raw.get(k)

    def string(self, k: str, default: str, env: str | None = None) -> str:
        value = self.get(k, env)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(self.key(k), f"must be a non-empty string (got {value!r})")
        return value.strip()

    def integer(self, k: str, default: int, lo: int, hi: int, env: str | None = None) -> int:
        value = self.get(k, env)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ConfigurationError(self.key(k), f"must be an integer (got {value!r})") from None
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ConfigurationError(self.key(k), f"must be an integer between {lo} and {hi} (got {value!r})")
        return value

    def boolean(self, k: str, default: bool, env: str | None = None) -> bool:
        value = self.get(k, env)
        if value is None:
            return default
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        if not isinstance(value, bool):
            raise ConfigurationError(self.key(k), f"must be true or false (got {value!r})")
        return value

    def choice(self, k: str, default: str, choices: tuple[str, ...], env: str | None = None) -> str:
        value = self.string(k, default, env)
        if value not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            raise ConfigurationError(self.key(k), f"must be one of {allowed} (got {value!r})")
        return value

    def algorithm(self, k: str, default: KeyAlgorithm, env: str | None = None) -> KeyAlgorithm:
        value = self.choice(k, default.value, tuple(a.value for a in KeyAlgorithm), env)
        return KeyAlgorithm(value)

    def path(self, k: str, home: Path, env: str | None = None) -> Path | None:
        value = self.get(k, env)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigurationError(self.key(k), f"must be a path (got {value!r})")
        p = Path(value)
        return p if p.is_absolute() else home / p

    def finish(self) -> None:
        for k in self.raw:
            if k in _SECRET_KEYS:
                raise ConfigurationError(
                    self.key(k), "secrets may not be written in the configuration file; use the environment or a file"
                )
        unknown = sorted(set(self.raw) - self.seen)
        if unknown:
            raise ConfigurationError(self.key(unknown[0]), "unknown key")


_LANG_RE = re.compile(r"^[a-z]{2}\Z")


def _gateway(key: str, value: str) -> str:
    module, sep, attr = value.partition(":")
    if value != "spool" and not (sep and module and attr.isidentifier()):
        raise ConfigurationError(key, f"{value!r} is neither 'spool' nor 'package.module:factory'")
    return value


def _url(key: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigurationError(key, f"must be an absolute {'/'.join(schemes)} URL (got {value!r})")
    if parts.query or parts.fragment:
        raise ConfigurationError(key, f"must not carry a query or fragment (got {value!r})")
    return value.rstrip("/")


def load_config(home: str | os.PathLike[str] | None = None, *, base_url: str | None = None) -> Config:
    """Read ``<home>/qtsp.toml`` (if present), apply environment overrides and validate everything.

    :param base_url: an override from the command line (``qtsp init --base-url``).
    :raises ConfigurationError: on the first invalid key.
    """
    home_path = resolve_home(home)
    source = home_path / CONFIG_FILE_NAME
    raw: dict[str, object] = {}
    if source.exists():
        try:
            raw = tomllib.loads(source.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(str(source), f"not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(str(source), f"cannot be read: {exc}") from None
    known_sections = ("database", "keys", "ca", "issuance", "serve", "status", "audit", "ra")
    for name in raw:
        if name not in known_sections:
            raise ConfigurationError(name, "unknown section")

    db = _Section("database", raw.get("database"))
    default_db = f"sqlite:///{home_path / 'qtsp.db'}"
    url = db.string("url", default_db, env="QTSP_DATABASE_URL")
    if not url.startswith(("sqlite", "postgresql")):
        raise ConfigurationError(
            "database.url", f"only sqlite and postgresql URLs are supported (got {_redact(url)!r})"
        )
    file_url = db.raw.get("url")
    if isinstance(file_url, str) and _has_password(file_url):
        raise ConfigurationError(
            "database.url",
            "a password may not be written in the configuration file; use QTSP_DATABASE_URL or PGPASSFILE",
        )
    db.finish()
    database = DatabaseConfig(url=url)

    ks = _Section("keys", raw.get("keys"))
    backend = ks.choice("backend", "soft", ("soft", "pkcs11"), env="QTSP_KEY_BACKEND")
    soft_dir = ks.path("directory", home_path) or home_path / "keys"
    soft_pass_file = ks.path("passphrase_file", home_path, env="QTSP_SOFT_PASSPHRASE_FILE")
    if soft_pass_file is None:
        soft_pass_file = home_path / "secrets" / "soft-keystore.pass"
    keys = KeysConfig(
        backend=backend,
        soft_directory=soft_dir,
        soft_passphrase_file=soft_pass_file,
        soft_passphrase_env=ks.string("passphrase_env", "QTSP_SOFT_PASSPHRASE"),
        pkcs11_module=ks.string("module", "/usr/lib/softhsm/libsofthsm2.so", env="QTSP_PKCS11_MODULE"),
        pkcs11_token_label=ks.string("token_label", "qtsp", env="QTSP_PKCS11_TOKEN_LABEL"),
        pkcs11_pin_env=ks.string("pin_env", "QTSP_PKCS11_PIN"),
        pkcs11_pin_file=ks.path("pin_file", home_path, env="QTSP_PKCS11_PIN_FILE"),
    )
    ks.finish()
    if backend == "pkcs11" and not Path(keys.pkcs11_module).is_file():
        raise ConfigurationError("keys.module", f"PKCS#11 module {keys.pkcs11_module} does not exist")

    cs = _Section("ca", raw.get("ca"))
    chosen_base = base_url if base_url is not None else cs.string("base_url", DEFAULT_BASE_URL, env="QTSP_BASE_URL")
    cs.seen.add("base_url")
    chosen_base = _url("ca.base_url", chosen_base, ("http", "https"))
    country = cs.string("country", "DE")
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise ConfigurationError("ca.country", f"must be an ISO 3166-1 alpha-2 code (got {country!r})")
    cp_arc = cs.string("cp_arc", DEFAULT_CP_ARC)
    if not is_oid(cp_arc):
        raise ConfigurationError("ca.cp_arc", f"must be a dotted OID (got {cp_arc!r})")
    pds_raw = cs.get("pds")
    pds: list[tuple[str, str]] = []
    if pds_raw is None:
        pds = [
            ("https://qtsp.example.com/pds/pds-en.pdf", "en"),
            ("https://qtsp.example.com/pds/pds-de.pdf", "de"),
        ]
    else:
        if not isinstance(pds_raw, Mapping) or not pds_raw:
            raise ConfigurationError("ca.pds", "must be a table of language = https URL")
        for lang, u in pds_raw.items():
            if not isinstance(lang, str) or not _LANG_RE.match(lang):
                raise ConfigurationError(f"ca.pds.{lang}", "language must be an ISO 639-1 code")
            if not isinstance(u, str):
                raise ConfigurationError(f"ca.pds.{lang}", "must be a URL string")
            # EN 319 412-5 QCS-4.3.4-03: the PDS URL scheme is https.
            pds.append((_url(f"ca.pds.{lang}", u, ("https",)), lang))
        # EN 319 412-5 QCS-5-01: at least one PDS in English.
        if "en" not in {lang for _, lang in pds}:
            raise ConfigurationError("ca.pds", "EN 319 412-5 QCS-5-01: an English PDS (en) is required")
    ca = HierarchySettings(
        base_url=chosen_base,
        country=country,
        organization_name=cs.string("organization_name", "QTSP Engine Demo Trust Center GmbH"),
        organization_identifier=cs.string("organization_identifier", "NTRDE-HRB999999"),
        root_algorithm=cs.algorithm("root_algorithm", KeyAlgorithm.EC_P384),
        issuing_algorithm=cs.algorithm("issuing_algorithm", KeyAlgorithm.EC_P256, env="QTSP_CA_ALGORITHM"),
        ocsp_algorithm=cs.algorithm("ocsp_algorithm", KeyAlgorithm.EC_P256),
        cp_arc=cp_arc,
        pds=tuple(pds),
        root_validity_days=cs.integer("root_validity_days", 20 * 365, 365, 30 * 366),
        issuing_validity_days=cs.integer("issuing_validity_days", 10 * 365, 365, 20 * 366),
        ocsp_validity_days=cs.integer("ocsp_validity_days", 30, 1, 366),
    )
    cs.finish()
    if ca.organization_identifier.casefold() == ca.organization_name.casefold():
        raise ConfigurationError(
            "ca.organization_identifier", "EN 319 412-2 GEN-4.2.3.1-8: must differ from organization_name"
        )

    iss = _Section("issuance", raw.get("issuance"))
    issuance = IssuanceConfig(
        pkilint=iss.boolean("pkilint", True),
        stale_reservation_seconds=iss.integer("stale_reservation_seconds", 300, 5, 86400),
    )
    iss.finish()

    sv = _Section("serve", raw.get("serve"))
    serve = ServeConfig(
        host=sv.string("host", "127.0.0.1", env="QTSP_SERVE_HOST"),
        port=sv.integer("port", 8080, 1, 65535, env="QTSP_SERVE_PORT"),
        trusted_proxies=sv.integer("trusted_proxies", 0, 0, 5, env="QTSP_SERVE_TRUSTED_PROXIES"),
    )
    sv.finish()

    st = _Section("status", raw.get("status"))
    status = StatusConfig(
        crl_interval_seconds=st.integer("crl_interval_seconds", 3600, 60, 86400),
        crl_after_change_seconds=st.integer("crl_after_change_seconds", 60, 1, 3600),
        crl_next_update_days=st.integer("crl_next_update_days", 7, 1, 10),
        carl_next_update_days=st.integer("carl_next_update_days", 30, 1, 365),
        publish_dir=st.path("publish_dir", home_path) or home_path / "publish",
        ocsp_validity_hours=st.integer("ocsp_validity_hours", 24, 1, 24 * 7),
        ocsp_max_age_seconds=st.integer("ocsp_max_age_seconds", 60, 0, 86400),
        ocsp_max_request_bytes=st.integer("ocsp_max_request_bytes", 4096, 256, 65536),
        ocsp_cache_ms=st.integer("ocsp_cache_ms", 500, 0, 900),
        responder_renew_days=st.integer("responder_renew_days", 7, 1, 180),
        scheduler=st.boolean("scheduler", True),
    )
    st.finish()
    if status.responder_renew_days >= ca.ocsp_validity_days:
        raise ConfigurationError(
            "status.responder_renew_days", f"must be below ca.ocsp_validity_days ({ca.ocsp_validity_days})"
        )

    au = _Section("audit", raw.get("audit"))
    audit = AuditConfig(checkpoint_interval_seconds=au.integer("checkpoint_interval_seconds", 3600, 60, 7 * 86400))
    au.finish()

    rs = _Section("ra", raw.get("ra"))
    ra = RAConfig(
        activation_hours=rs.integer("activation_hours", 24, 1, 24 * 30),
        data_key_file=rs.path("data_key_file", home_path, env="QTSP_RA_DATA_KEY_FILE")
        or home_path / "secrets" / "ra-data.key",
        evidence_retention_days=rs.integer("evidence_retention_days", 4018, 1, 36500),
        sms_gateway=_gateway("ra.sms_gateway", rs.string("sms_gateway", "spool", env="QTSP_RA_SMS_GATEWAY")),
        post_gateway=_gateway("ra.post_gateway", rs.string("post_gateway", "spool", env="QTSP_RA_POST_GATEWAY")),
        email_gateway=_gateway("ra.email_gateway", rs.string("email_gateway", "spool", env="QTSP_RA_EMAIL_GATEWAY")),
        renewal_min_days=rs.integer("renewal_min_days", 3, 1, 365),
        followups_without_identification=rs.integer("followups_without_identification", 2, 0, 10),
        followup_qc_ident_method=rs.boolean("followup_qc_ident_method", False),
    )
    rs.finish()

    return Config(
        home=home_path,
        database=database,
        keys=keys,
        ca=ca,
        issuance=issuance,
        serve=serve,
        status=status,
        audit=audit,
        source=source if source.exists() else None,
        ra=ra,
    )


def _has_password(url: str) -> bool:
    userinfo = urlsplit(url).netloc.rpartition("@")[0]
    return ":" in userinfo


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if not _has_password(url):
        return url
    user = parts.netloc.rpartition("@")[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{parts.netloc.rpartition('@')[2]}").geturl()


def render_config(config: Config) -> str:
    """The TOML written by ``qtsp init``: every non-secret setting, so an operator sees what is in force."""
    pds = "\n".join(f'{lang} = "{url}"' for url, lang in config.ca.pds)
    # A URL with a password stays in the environment; the file never holds a secret.
    url = config.database.url
    db_line = "" if url.startswith("sqlite") or _has_password(url) else f'url = "{url}"\n'
    k = config.keys
    pkcs11 = (
        f'module = "{k.pkcs11_module}"\ntoken_label = "{k.pkcs11_token_label}"\npin_env = "{k.pkcs11_pin_env}"\n'
        + (f'pin_file = "{k.pkcs11_pin_file}"\n' if k.pkcs11_pin_file else "")
        if k.backend == "pkcs11"
        else ""
    )
    return f"""# QTSP engine configuration (written by `qtsp init`).
# Secrets never go here: the PKCS#11 PIN comes from ${k.pkcs11_pin_env} or keys.pin_file,
# the soft keystore passphrase from ${k.soft_passphrase_env} or keys.passphrase_file.

[database]
{db_line}
[keys]
backend = "{k.backend}"
{pkcs11}
[ca]
base_url = "{config.ca.base_url}"
country = "{config.ca.country}"
organization_name = "{config.ca.organization_name}"
organization_identifier = "{config.ca.organization_identifier}"
root_algorithm = "{config.ca.root_algorithm.value}"
issuing_algorithm = "{config.ca.issuing_algorithm.value}"
ocsp_algorithm = "{config.ca.ocsp_algorithm.value}"
cp_arc = "{config.ca.cp_arc}"

[ca.pds]
{pds}

[issuance]
pkilint = {str(config.issuance.pkilint).lower()}

[serve]
host = "{config.serve.host}"
port = {config.serve.port}
# Reverse proxies whose X-Forwarded-For is believed (1 behind the nginx edge; 0 when clients connect directly).
trusted_proxies = {config.serve.trusted_proxies}

[status]
crl_interval_seconds = {config.status.crl_interval_seconds}
crl_after_change_seconds = {config.status.crl_after_change_seconds}
crl_next_update_days = {config.status.crl_next_update_days}
carl_next_update_days = {config.status.carl_next_update_days}
ocsp_validity_hours = {config.status.ocsp_validity_hours}
ocsp_max_age_seconds = {config.status.ocsp_max_age_seconds}
ocsp_cache_ms = {config.status.ocsp_cache_ms}
responder_renew_days = {config.status.responder_renew_days}
scheduler = {str(config.status.scheduler).lower()}

[audit]
checkpoint_interval_seconds = {config.audit.checkpoint_interval_seconds}

[ra]
activation_hours = {config.ra.activation_hours}
# SMS, letters and email: "spool" writes them under <home>/outbox (development only).
sms_gateway = "{config.ra.sms_gateway}"
post_gateway = "{config.ra.post_gateway}"
email_gateway = "{config.ra.email_gateway}"
renewal_min_days = {config.ra.renewal_min_days}
# Follow-up cards without a new identification before one is needed again; QcIdentMethod on
# certificates of follow-ups authenticated with the current qualified certificate.
followups_without_identification = {config.ra.followups_without_identification}
followup_qc_ident_method = {str(config.ra.followup_qc_ident_method).lower()}
"""
