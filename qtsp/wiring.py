"""The only place that wires configuration, storage, key backend and CA services together."""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import importlib
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from ca.issuance.hierarchy import create_hierarchy, load_issuers
from ca.issuance.lint import PkilintGate
from ca.issuance.service import Actor, IssuanceService, system_clock
from ca.profiles import Profile, load_builtin_profiles
from ca.store.db import Database
from hsm import KeyAlgorithm, KeyBackend
from qtsp.config import CONFIG_FILE_NAME, Config, render_config
from ra.ca_port import RevocationPort
from ra.service import RAService

__all__ = [
    "Runtime",
    "ensure_soft_passphrase",
    "initialise",
    "open_backend",
    "os_actor",
    "ra_service",
    "runtime",
]


def os_actor(role: str = "ca-operator") -> Actor:
    """CLI commands on the CA host act as the operating-system user (the host's access control gates them)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return Actor(name=f"os:{user}@{socket.gethostname()}", role=role)


def ensure_soft_passphrase(config: Config) -> None:
    """For the soft keystore only: create a random passphrase file (0600) if no secret is configured."""
    keys = config.keys
    if keys.backend != "soft" or os.environ.get(keys.soft_passphrase_env):
        return
    path = keys.soft_passphrase_file
    if path is None or path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")


def open_backend(config: Config) -> KeyBackend:
    """The configured key backend (secrets read from the environment or their files)."""
    keys = config.keys
    secret = keys.read_secret()
    if keys.backend == "soft":
        from hsm.soft import SoftBackend

        keys.soft_directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return SoftBackend(Path(keys.soft_directory), secret)
    from hsm.pkcs11 import Pkcs11Backend

    return Pkcs11Backend(keys.pkcs11_module, keys.pkcs11_token_label, secret.decode())


def lint_gate(config: Config, *, pkilint: bool | None = None) -> PkilintGate | None:
    use = config.issuance.pkilint if pkilint is None else pkilint
    if not use:
        return None
    dev_host = urlsplit(config.ca.base_url).hostname if config.development_base_url else None
    return PkilintGate(dev_host=dev_host)


@dataclass
class Runtime:
    config: Config
    db: Database
    backend: KeyBackend
    profiles: dict[str, Profile]

    def issuance(self, *, pkilint: bool | None = None) -> IssuanceService:
        import datetime as dt

        issuers = load_issuers(
            self.db, self.backend, self.config.ca.base_url, self.config.ca.cp_arc, self.config.ca.pds
        )
        return IssuanceService(
            db=self.db,
            profiles=self.profiles,
            issuers=issuers,
            gate=lint_gate(self.config, pkilint=pkilint),
            stale_after=dt.timedelta(seconds=self.config.issuance.stale_reservation_seconds),
        )


def _remote_key_csr(backend: KeyBackend, algorithm: KeyAlgorithm) -> Callable[[str], bytes]:
    """Remote seals: the key pair is generated inside the key backend and never leaves it; the
    CSR is signed there (its proof of possession)."""

    def make(label: str) -> bytes:
        from cryptography.hazmat.primitives import serialization

        ref = backend.generate(label, algorithm)
        key = backend.signing_key(ref)
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, algorithm.default_hash())
        return csr.public_bytes(serialization.Encoding.DER)

    return make


def _revocation_service(rt: Runtime) -> RevocationPort | None:
    """The CA's revocation service where it exists (``ca.crl_ocsp.revocation``), else None."""
    try:
        module = importlib.import_module("ca.crl_ocsp.revocation")
    except ImportError:
        return None
    factory = getattr(module, "RevocationService", None)
    if factory is None:
        return None
    try:
        service: RevocationPort = factory(db=rt.db)
    except TypeError:
        return None
    return service


def ra_service(rt: Runtime, *, pkilint: bool | None = None) -> RAService:
    """The registration authority on this runtime's database, with the CA behind its port."""
    from ra.ca_port import CAAdapter
    from ra.credentials import DataKey
    from ra.products import load_products

    ra_config = rt.config.ra
    key_file = ra_config.data_key_file if ra_config else rt.config.home / "secrets" / "ra-data.key"
    adapter = CAAdapter(
        rt.issuance(pkilint=pkilint),
        revocation=_revocation_service(rt),
        remote_keys=_remote_key_csr(rt.backend, rt.config.ca.issuing_algorithm),
    )
    return RAService(
        db=rt.db,
        products=load_products({name: p.subject_kind for name, p in rt.profiles.items()}),
        ca=adapter,
        data_key=DataKey.from_file(key_file, create=True),
        activation_delay=dt.timedelta(hours=ra_config.activation_hours if ra_config else 24),
    )


@contextlib.contextmanager
def runtime(config: Config) -> Iterator[Runtime]:
    db = Database(config.database.url)
    backend = open_backend(config)
    try:
        yield Runtime(config=config, db=db, backend=backend, profiles=load_builtin_profiles())
    finally:
        backend.close()
        db.dispose()


def initialise(config: Config, actor: Actor) -> dict[str, x509.Certificate]:
    """What ``qtsp init`` does: data directory (0700), ``qtsp.toml`` if absent (no secrets), the soft
    keystore passphrase file if needed, ``alembic upgrade head``, then the hierarchy ceremony.

    :raises HierarchyExists: when the database already holds a hierarchy.
    """
    from migrations import upgrade

    config.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    config_path = config.home / CONFIG_FILE_NAME
    if not config_path.exists():
        config_path.write_text(render_config(config), encoding="utf-8")
    ensure_soft_passphrase(config)
    upgrade(config.database.url)
    with runtime(config) as rt:
        return create_hierarchy(rt.db, rt.backend, config.ca, actor, system_clock)
