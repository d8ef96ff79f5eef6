"""The only place that wires configuration, storage, key backend and CA services together."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import getpass
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from ca.audit.service import AuditService
from ca.crl_ocsp.crl import CRLPublisher, CRLSettings
from ca.crl_ocsp.ocsp import OCSPResponder
from ca.crl_ocsp.presign import OCSPPresigner
from ca.crl_ocsp.responders import ResponderRenewal
from ca.crl_ocsp.revocation import RevocationService
from ca.issuance.hierarchy import create_hierarchy, load_issuers
from ca.issuance.lint import PkilintGate
from ca.issuance.service import Actor, IssuanceService, system_clock
from ca.profiles import Profile, load_builtin_profiles
from ca.store.db import Database
from hsm import KeyAlgorithm, KeyBackend
from qtsp.ceremony import (
    REPORT_FORMAT,
    CeremonyError,
    Custodian,
    combine_shares,
    report_bytes,
    report_sha256,
)
from qtsp.config import CONFIG_FILE_NAME, Config, render_config
from ra.credentials import DataKey
from ra.outbox import Channel, Gateway
from ra.service import RAService

__all__ = [
    "Runtime",
    "ensure_soft_passphrase",
    "initialise",
    "open_backend",
    "open_runtime",
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


def open_backend(config: Config, *, secret: bytes | None = None) -> KeyBackend:
    """The configured key backend (secrets read from the environment or their files, unless a
    ceremony passes the secret it recombined from the custodians' shares)."""
    keys = config.keys
    secret = keys.read_secret() if secret is None else secret
    if keys.backend == "soft":
        from hsm.soft import SoftBackend

        keys.soft_directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return SoftBackend(Path(keys.soft_directory), secret)
    from hsm.pkcs11 import Pkcs11Backend

    return Pkcs11Backend(keys.pkcs11_module, keys.pkcs11_token_label, secret.decode())


def prepare_issuing_process(rt: Runtime) -> None:
    """For a long-running process that issues (a gunicorn worker through
    :mod:`qtsp.gunicorn_conf`, the issuance benchmark's workers), right after start-up: build now
    what the first issuance would otherwise build (pkilint's validators for every profile's
    certificate type, about 0.25 s each), then move everything alive into the garbage collector's
    permanent generation (``gc.freeze``).  Full collections then stop walking those validators,
    schemas and tables again and again: on a busy CA that was about 2 % of each issuance, in
    stalls of about 100 ms."""
    gate = lint_gate(rt.config)
    if gate is not None:
        gate.warm(sorted(rt.profiles))
    gc.collect()
    gc.freeze()
    logging.getLogger("qtsp").info(
        "issuing process %d prepared: pkilint validators built, %d objects frozen", os.getpid(), gc.get_freeze_count()
    )


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
    issuance_observer: Callable[[str, str, float], None] | None = None
    """Metrics hook for the issuance service (set by the web application)."""
    _ocsp: OCSPResponder | None = field(default=None, init=False, repr=False)

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
            observer=self.issuance_observer,
        )

    def close(self) -> None:
        self.backend.close()
        self.db.dispose()

    def ocsp_responder(self) -> OCSPResponder:
        """This process's OCSP responder (created once; it caches issuer hashes and responder keys)."""
        if self._ocsp is None:
            import datetime as dt

            status = self.config.status
            self._ocsp = OCSPResponder(
                self.db,
                self.backend,
                validity=dt.timedelta(hours=status.ocsp_validity_hours),
                max_request_bytes=status.ocsp_max_request_bytes,
                clock=system_clock,
                cache_seconds=status.ocsp_cache_ms / 1000,
            )
        return self._ocsp

    def ocsp_presigner(self) -> OCSPPresigner:
        return OCSPPresigner(self.ocsp_responder())

    def revocation(self) -> RevocationService:
        """Revocation and activation; each committed change re-signs the certificate's OCSP response."""
        return RevocationService(db=self.db, clock=system_clock, on_change=self.ocsp_presigner().on_change)

    def audit(self) -> AuditService:
        return AuditService(db=self.db, backend=self.backend, clock=system_clock)

    def responder_renewal(self) -> ResponderRenewal:
        return ResponderRenewal(db=self.db, backend=self.backend, settings=self.config.ca, clock=system_clock)

    def crl(self) -> CRLPublisher:
        st = self.config.status
        settings = CRLSettings(
            next_update_days=st.crl_next_update_days,
            carl_next_update_days=st.carl_next_update_days,
            interval_seconds=st.crl_interval_seconds,
            publish_dir=st.publish_dir,
        )
        return CRLPublisher(db=self.db, backend=self.backend, settings=settings, clock=system_clock)


def open_runtime(config: Config, *, secret: bytes | None = None) -> Runtime:
    """A runtime the caller closes (long-lived processes: web workers, the scheduler)."""
    db = Database(config.database.url)
    try:
        backend = open_backend(config, secret=secret)
    except BaseException:
        db.dispose()
        raise
    return Runtime(config=config, db=db, backend=backend, profiles=load_builtin_profiles())


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


def ra_service(rt: Runtime, *, pkilint: bool | None = None) -> RAService:
    """The registration authority on this runtime's database, with the CA behind its port."""
    from ca.issuance.signed_request import SignedRequestVerifier
    from ra.ca_port import CAAdapter
    from ra.followup_rules import FollowUpSettings
    from ra.products import load_products

    ra_config = rt.config.ra
    adapter = CAAdapter(
        rt.issuance(pkilint=pkilint),
        revocation=rt.revocation(),
        remote_keys=_remote_key_csr(rt.backend, rt.config.ca.issuing_algorithm),
        # Follow-up requests signed with the current card: status from this process's OCSP responder.
        signed_requests=SignedRequestVerifier(rt.db, lambda der: rt.ocsp_responder().respond(der).der),
    )
    return RAService(
        db=rt.db,
        products=load_products({name: p.subject_kind for name, p in rt.profiles.items()}),
        ca=adapter,
        data_key=ra_data_key(rt.config),
        activation_delay=dt.timedelta(hours=ra_config.activation_hours),
        gateways=outbox_gateways(rt.config),
        renewal_min_days=ra_config.renewal_min_days,
        followup_settings=FollowUpSettings(
            without_identification=ra_config.followups_without_identification,
            qc_ident_method=ra_config.followup_qc_ident_method,
        ),
        public_base_url=rt.config.ca.base_url,
    )


def ra_data_key(config: Config) -> DataKey:
    """The RA data key from its secret file (created 0600 when absent)."""
    return DataKey.from_file(config.ra.data_key_file, create=True)


def outbox_gateways(config: Config) -> dict[Channel, Gateway]:
    """The SMS, letter and email gateways of ``[ra] sms_gateway`` / ``post_gateway`` / ``email_gateway``."""
    from ra.outbox import load_gateway

    return {
        Channel.SMS: load_gateway(config.ra.sms_gateway, Channel.SMS, config.home),
        Channel.POST: load_gateway(config.ra.post_gateway, Channel.POST, config.home),
        Channel.EMAIL: load_gateway(config.ra.email_gateway, Channel.EMAIL, config.home),
    }


@contextlib.contextmanager
def runtime(config: Config, *, secret: bytes | None = None) -> Iterator[Runtime]:
    rt = open_runtime(config, secret=secret)
    try:
        yield rt
    finally:
        rt.close()


def initialise(config: Config, actor: Actor, *, custodians: Sequence[Custodian] = ()) -> dict[str, x509.Certificate]:
    """What ``qtsp init`` does: data directory (0700), ``qtsp.toml`` if absent (no secrets), the soft
    keystore passphrase file if needed, ``alembic upgrade head``, the hierarchy ceremony, the audit
    key, the first CRL (CARL for the root) of every CA, and the signed ceremony report.

    With the PKCS#11 backend the token PIN comes only from ``custodians``' shares (dual control,
    :mod:`qtsp.ceremony`); with the soft backend one operator suffices.

    :raises HierarchyExists: when the database already holds a hierarchy.
    :raises CeremonyError: dual control is not satisfied.
    """
    from migrations import upgrade

    secret = _ceremony_secret(config, custodians)
    config.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    config_path = config.home / CONFIG_FILE_NAME
    if not config_path.exists():
        config_path.write_text(render_config(config), encoding="utf-8")
    ensure_soft_passphrase(config)
    upgrade(config.database.url)
    with runtime(config, secret=secret) as rt:
        certs = create_hierarchy(rt.db, rt.backend, config.ca, actor, system_clock)
        rt.audit().ensure_signer(config.ca, actor)
        # The first CRL of every CA right after the ceremony, so the CDP URLs resolve from the start.
        rt.crl().publish_all(actor, force=True)
        write_ceremony_report(rt, actor, "hierarchy-init", custodians)
        return certs


def _ceremony_secret(config: Config, custodians: Sequence[Custodian]) -> bytes | None:
    """The PKCS#11 PIN recombined from the custodians' shares (dual control), or None for soft keys."""
    if config.keys.backend != "pkcs11":
        return None
    secret = combine_shares(custodians)  # refuses fewer than two distinct custodians
    labels = {c.token_label for c in custodians}
    if labels != {config.keys.pkcs11_token_label}:
        raise CeremonyError(
            f"the shares are for token {', '.join(sorted(labels))}, not {config.keys.pkcs11_token_label}"
        )
    return secret


def rollover(
    config: Config, actor: Actor, family: str, *, custodians: Sequence[Custodian] = ()
) -> tuple[str, x509.Certificate, Path]:
    """CA key rollover as a ceremony (dual control with PKCS#11, like ``init``): the new generation,
    its first CRL, and the signed ceremony report.  Returns (new CA name, certificate, report path)."""
    from ca.issuance.hierarchy import rollover_issuing_ca

    secret = _ceremony_secret(config, custodians)
    with runtime(config, secret=secret) as rt:
        name, cert = rollover_issuing_ca(rt.db, rt.backend, config.ca, family, actor, system_clock)
        rt.crl().publish(name, actor, force=True)
        report = write_ceremony_report(rt, actor, f"ca-rollover-{family}", custodians)
    return name, cert, report


def write_ceremony_report(rt: Runtime, actor: Actor, ceremony: str, custodians: Sequence[Custodian]) -> Path:
    """The signed report of a ceremony: roles, date, key inventory with SHA-256 fingerprints,
    token identity, settings; written under ``<home>/ceremonies`` and referenced in the audit log."""
    import base64
    import json

    from ca.store import repository as repo

    info = rt.backend.info()
    dual = rt.backend.name == "pkcs11"
    with rt.db.read() as s:
        cas = repo.list_cas(s)
    inventory = []
    for ca in cas:
        cert = x509.load_der_x509_certificate(ca.certificate_der)
        inventory.append(
            {
                "ca": ca.name,
                "family": ca.family,
                "generation": ca.generation,
                "superseded_at": ca.superseded_at.isoformat() if ca.superseded_at else None,
                "role": ca.role,
                "subject": ca.subject,
                "key_label": ca.key.label,
                "key_id": ca.key.key_id,
                "algorithm": ca.key.algorithm,
                "public_key_sha256": ca.key.spki_sha256,
                "certificate_sha256": ca.fingerprint_sha256,
                "not_after": cert.not_valid_after_utc.isoformat(),
                "ocsp_responder_key_sha256": ca.responder_key.spki_sha256 if ca.responder_key else None,
            }
        )
    now = system_clock()
    settings = rt.config.ca
    report = {
        "format": REPORT_FORMAT,
        "ceremony": ceremony,
        "date": now.isoformat(),
        "operator": {"name": actor.name, "role": actor.role},
        "custodians": [{"name": c.name, "role": "key custodian", "share": f"{c.index}/{c.of}"} for c in custodians],
        "dual_control": dual,
        "dual_control_note": (
            "token PIN recombined from the custodians' shares; no single person could log in"
            if dual
            else "soft backend: development and demonstration only, one operator suffices, NOT QUALIFIED"
        ),
        "key_backend": {
            "backend": info.backend,
            "token_id": info.token_id,
            "model": info.model,
            "manufacturer": info.manufacturer,
            "qualified": info.qualified,
        },
        "keys": inventory,
        "settings": {
            "base_url": settings.base_url,
            "country": settings.country,
            "organization_name": settings.organization_name,
            "organization_identifier": settings.organization_identifier,
            "root_algorithm": settings.root_algorithm.value,
            "issuing_algorithm": settings.issuing_algorithm.value,
            "ocsp_algorithm": settings.ocsp_algorithm.value,
            "root_validity_days": settings.root_validity_days,
            "issuing_validity_days": settings.issuing_validity_days,
            "ocsp_validity_days": settings.ocsp_validity_days,
            "cp_arc": settings.cp_arc,
        },
    }
    signature, cert_der = rt.audit().sign(settings, actor, report_bytes(report))
    folder = rt.config.home / "ceremonies"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{now.strftime('%Y%m%dT%H%M%SZ')}-{ceremony}.json"
    path.write_text(
        json.dumps(
            {
                "report": report,
                "signature": base64.b64encode(signature).decode(),
                "audit_certificate": base64.b64encode(cert_der).decode(),
            },
            indent=2,
            sort_keys=True,
        ),
        encoding="utf-8",
    )
    with rt.db.write() as s:
        repo.append_audit(
            s,
            at=system_clock(),
            actor=actor.name,
            role=actor.role,
            action="ceremony.report",
            object_type="ceremony",
            object_id=ceremony,
            details={
                "report_sha256": report_sha256(report),
                "file": path.name,
                "dual_control": dual,
                "custodians": [c.name for c in custodians],
            },
        )
    return path
