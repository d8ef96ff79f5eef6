"""The ``qtsp`` command line.  Adapters only: parse input, call one service, map errors.

Every error ends the command with one clear line on stderr and a non-zero exit code, never a
traceback (set ``QTSP_DEBUG=1`` to see one).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from rich.console import Console
from rich.table import Table

from ca.audit.service import ExportError
from ca.audit.verify import VerifyReport
from ca.crl_ocsp.crl import CRLError
from ca.crl_ocsp.revocation import REVOCATION_REASONS, RevocationError
from ca.issuance.errors import IssuanceError
from ca.issuance.hierarchy import CAClosed, HierarchyExists, HierarchyMismatch
from ca.profiles import ProfileError
from ca.profiles.subject import SubjectError, SubjectInput
from ca.store import crl_repo
from ca.store import repository as repo
from hsm import HSMError
from qtsp.ceremony import CeremonyError
from qtsp.config import Config, ConfigurationError, load_config
from qtsp.wiring import initialise, os_actor, runtime

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


class CLIError(click.ClickException):
    """One line to stderr, exit code 1."""

    def show(self, file: Any = None) -> None:
        # One line whatever the message holds (library errors may span several).
        click.echo(f"error: {' '.join(self.message.split())}", err=True)


def _map_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if os.environ.get("QTSP_DEBUG"):
            return fn(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except ConfigurationError as exc:
            raise CLIError(f"configuration error: {exc}") from None
        except (
            IssuanceError,
            ProfileError,
            SubjectError,
            HierarchyExists,
            HierarchyMismatch,
            CAClosed,
            RevocationError,
            ExportError,
            CeremonyError,
            CRLError,
        ) as exc:
            raise CLIError(str(exc)) from None
        except HSMError as exc:
            raise CLIError(f"key backend: {exc}") from None
        except OSError as exc:
            raise CLIError(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None
        except Exception as exc:
            from ca.store.db import StoreError

            if isinstance(exc, StoreError):
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise CLIError(f"database: {first}") from None
            raise CLIError(f"internal error: {type(exc).__name__}: {exc}") from None

    return wrapper  # type: ignore[return-value]


def _config(ctx: click.Context, base_url: str | None = None) -> Config:
    home: str | None = ctx.obj["home"]
    return load_config(home, base_url=base_url)


@click.group()
@click.option(
    "--home", type=click.Path(file_okay=False), default=None, help="Data directory (default $QTSP_HOME or ./var)."
)
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """QTSP engine: qualified signature, seal and UPC certificates with CRL/OCSP and an audit trail."""
    ctx.ensure_object(dict)
    ctx.obj["home"] = home


# ---------------------------------------------------------------------------------------------
# init / status


@cli.command()
@click.option(
    "--base-url", default=None, help="Public base URL for AIA/CDP/OCSP links (default http://127.0.0.1:8080)."
)
@click.option("--backend", type=click.Choice(["soft", "pkcs11"]), default=None, help="Key backend (default soft).")
@click.option(
    "--custodian",
    "custodians",
    multiple=True,
    metavar="NAME=SHARE_FILE",
    help="A key custodian and their PIN share (qtsp ceremony split-pin); PKCS#11 needs two or more.",
)
@click.pass_context
@_map_errors
def init(ctx: click.Context, base_url: str | None, backend: str | None, custodians: tuple[str, ...]) -> None:
    """Create the data directory, the database schema and the CA hierarchy (never overwrites).

    With the PKCS#11 backend this is a dual-control ceremony: the token PIN is recombined from the
    shares of at least two distinct custodians; a PIN in the environment is not used."""
    if backend is not None:
        os.environ["QTSP_KEY_BACKEND"] = backend
    config = _config(ctx, base_url)
    certs = initialise(config, os_actor("security-officer"), custodians=_custodians(custodians))
    console.print(
        f"Initialised {config.home} ({config.keys.backend} keys, base URL {config.ca.base_url})", markup=False
    )
    for name, cert in certs.items():
        console.print(
            f"  {name:5} {cert.subject.rfc4514_string()}  sha256={cert.fingerprint(hashes.SHA256()).hex()}",
            markup=False,
        )
    if config.keys.backend == "soft":
        console.print("[yellow]Software keys: development and demonstration only, not qualified.[/yellow]")


@cli.command()
@click.pass_context
@_map_errors
def status(ctx: click.Context) -> None:
    """Show the hierarchy, the key backend, fingerprints and counts."""
    config = _config(ctx)
    with runtime(config) as rt:
        info = rt.backend.info()
        with rt.db.read() as s:
            cas = repo.list_cas(s)
            counts = repo.certificate_counts(s)
            reservations = repo.reservation_states(s)
            audit_events = repo.audit_count(s)
            crl_states = crl_repo.read_states(s)
    qualified = "qualified" if info.qualified else "NOT QUALIFIED (development and demonstration only)"
    console.print(f"home        {config.home}", markup=False)
    console.print(f"database    {rt.db.dialect}", markup=False)
    console.print(f"key backend {info.backend}: {info.model} [{info.token_id}] — {qualified}", markup=False)
    dev = " (development base URL: loopback, not for production)" if config.development_base_url else ""
    console.print(f"base URL    {config.ca.base_url}{dev}", markup=False)
    if not cas:
        console.print("hierarchy   none (run qtsp init)", markup=False)
        return
    console.print("hierarchy", markup=False)
    for ca in cas:
        console.print(f"  {ca.name} ({ca.role})  {ca.subject}", markup=False)
        console.print(f"      key          {ca.key.algorithm} {ca.key.label} [{ca.key.backend}]", markup=False)
        console.print(f"      valid        {ca.not_before.date()} .. {ca.not_after.date()}", markup=False)
        state = crl_states.get(ca.name)
        if state is not None and state.closed_at is not None:
            console.print(
                f"      closed       since {state.closed_at:%Y-%m-%d %H:%M} UTC: "
                f"last CRL #{state.last_number} is final",
                markup=False,
            )
        elif ca.superseded_at is not None:
            console.print(
                f"      superseded   since {ca.superseded_at:%Y-%m-%d %H:%M} UTC: "
                "issues nothing, keeps publishing status",
                markup=False,
            )
        console.print(f"      cert SHA-256 {ca.fingerprint_sha256}", markup=False)
        console.print(f"      key SHA-256  {ca.key.spki_sha256}", markup=False)
        if ca.responder_certificate_der is not None:
            responder = x509.load_der_x509_certificate(ca.responder_certificate_der)
            until = f"{responder.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
            console.print(f"      OCSP         responder certificate valid until {until}", markup=False)
    ctable = Table(title="Certificates")
    ctable.add_column("issuer")
    ctable.add_column("profile")
    ctable.add_column("count", justify="right")
    for (issuer, profile), n in sorted(counts.items()):
        ctable.add_row(issuer, profile, str(n))
    console.print(ctable)
    console.print(
        "serials     " + ", ".join(f"{k} {v}" for k, v in sorted(reservations.items()))
        if reservations
        else "serials     none"
    )
    console.print(f"audit log   {audit_events} events", markup=False)


# ---------------------------------------------------------------------------------------------
# ca


@cli.group()
def ca() -> None:
    """Certificate authority operations."""


def _read_subject(path: str) -> SubjectInput:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CLIError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except UnicodeDecodeError:
        raise CLIError(f"{path}: not UTF-8 text") from None
    if not isinstance(raw, dict):
        raise CLIError(f"{path}: the subject must be a JSON object")
    return SubjectInput.from_json_obj(raw)


@ca.command("issue")
@click.option("--profile", "profile_name", required=True, help="qes-natural, qseal-legal or upc-auth.")
@click.option("--csr", "csr_path", required=True, type=click.Path(dir_okay=False), help="PKCS#10 request (PEM or DER).")
@click.option("--subject", "subject_path", required=True, type=click.Path(dir_okay=False), help="Subject JSON.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None, help="Write the PEM here.")
@click.option("--validity-days", type=int, default=None, help="Validity (default: the profile's).")
@click.option("--on-hold", is_flag=True, help="Issue it not activated (a card's certificate): certificateHold.")
@click.option(
    "--activate-after-hours",
    type=click.FloatRange(min=0),
    default=None,
    help="With --on-hold: release the hold automatically after this many hours.",
)
@click.pass_context
@_map_errors
def ca_issue(
    ctx: click.Context,
    profile_name: str,
    csr_path: str,
    subject_path: str,
    out_path: str | None,
    validity_days: int | None,
    on_hold: bool,
    activate_after_hours: float | None,
) -> None:
    """Issue one certificate through the linted pipeline."""
    if activate_after_hours is not None and not on_hold:
        raise CLIError("--activate-after-hours needs --on-hold")
    config = _config(ctx)
    csr = Path(csr_path).read_bytes()
    subject = _read_subject(subject_path)
    activate_after = (
        dt.datetime.now(dt.UTC) + dt.timedelta(hours=activate_after_hours) if activate_after_hours is not None else None
    )
    with runtime(config) as rt:
        service = rt.issuance()
        issued = service.issue(
            profile_name=profile_name,
            csr=csr,
            subject=subject,
            actor=os_actor(),
            validity_days=validity_days,
            on_hold=on_hold,
            activate_after=activate_after,
        )
    pem = issued.certificate.public_bytes(serialization.Encoding.PEM)
    if out_path:
        Path(out_path).write_bytes(pem)
        err_console.print(
            f"issued {issued.profile} serial {issued.serial_hex} by {issued.issuer}: {out_path}", markup=False
        )
    else:
        sys.stdout.write(pem.decode())


def _parse_time(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CLIError(f"{option}: {value!r} is not an ISO 8601 time (e.g. 2026-11-20T08:00:00Z)") from None
    if parsed.tzinfo is None:
        raise CLIError(f"{option}: {value!r} needs a time zone (e.g. Z or +01:00)")
    return parsed


@ca.command("revoke")
@click.argument("serial")
@click.option(
    "--reason",
    required=True,
    type=click.Choice(list(REVOCATION_REASONS)),
    help="RFC 5280 CRLReason (certificateHold is placed only at issuance).",
)
@click.option("--issuer", "issuer_name", default=None, help="Issuing CA name (default: the CA that issued SERIAL).")
@click.option("--invalidity-date", default=None, help="ISO 8601 time the key is known or suspected compromised.")
@click.option("--received-at", default=None, help="ISO 8601 time the request was received (default: now).")
@click.option("--requested-by", default=None, help="Who asked for the revocation (default: you).")
@click.pass_context
@_map_errors
def ca_revoke(
    ctx: click.Context,
    serial: str,
    reason: str,
    issuer_name: str | None,
    invalidity_date: str | None,
    received_at: str | None,
    requested_by: str | None,
) -> None:
    """Revoke a certificate.  Final: it is never reinstated."""
    config = _config(ctx)
    with runtime(config) as rt:
        service = rt.revocation()
        issuer = issuer_name or service.find_issuer(serial)
        result = service.revoke(
            issuer,
            serial,
            reason,
            actor=os_actor("revocation-officer"),
            invalidity_date=_parse_time(invalidity_date, "--invalidity-date"),
            received_at=_parse_time(received_at, "--received-at"),
            requested_by=requested_by,
        )
    console.print(
        f"revoked {result.issuer}:{result.serial} ({result.reason}) at {result.effective_at.isoformat()}",
        markup=False,
    )


@ca.command("activate")
@click.argument("serial")
@click.option("--issuer", "issuer_name", default=None, help="Issuing CA name (default: the CA that issued SERIAL).")
@click.pass_context
@_map_errors
def ca_activate(ctx: click.Context, serial: str, issuer_name: str | None) -> None:
    """Activate a not-activated certificate (release its certificateHold)."""
    config = _config(ctx)
    with runtime(config) as rt:
        service = rt.revocation()
        issuer = issuer_name or service.find_issuer(serial)
        result = service.activate(issuer, serial, actor=os_actor())
    console.print(f"activated {result.issuer}:{result.serial}", markup=False)


def _custodians(items: tuple[str, ...]) -> list[Any]:
    from qtsp.ceremony import read_share

    holders = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise CLIError(f"--custodian {item!r}: use NAME=SHARE_FILE")
        holders.append(read_share(Path(path), name))
    return holders


@ca.command("rollover")
@click.option("--ca", "family", required=True, type=click.Choice(["qes", "seal", "auth"]), help="Issuing CA family.")
@click.option(
    "--custodian",
    "custodians",
    multiple=True,
    metavar="NAME=SHARE_FILE",
    help="A key custodian and their PIN share; PKCS#11 needs two or more (dual control).",
)
@click.pass_context
@_map_errors
def ca_rollover(ctx: click.Context, family: str, custodians: tuple[str, ...]) -> None:
    """Key rollover: a new key and CA certificate for an issuing CA family; the old generation
    stops issuing and keeps publishing status for its certificates."""
    from qtsp.wiring import rollover

    config = _config(ctx)
    name, cert, report = rollover(config, os_actor("security-officer"), family, custodians=_custodians(custodians))
    console.print(
        f"new CA {name}: {cert.subject.rfc4514_string()} sha256={cert.fingerprint(hashes.SHA256()).hex()}",
        markup=False,
    )
    console.print(f"ceremony report: {report}", markup=False)


@ca.command("export")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.pass_context
@_map_errors
def ca_export(ctx: click.Context, out_dir: str) -> None:
    """Write every CA certificate and every issued certificate as PEM."""
    config = _config(ctx)
    count = export_all(config, Path(out_dir))
    console.print(f"exported {count} certificates to {out_dir}", markup=False)


def export_all(config: Config, out: Path) -> int:
    from ca.store.db import Database

    db = Database(config.database.url)
    try:
        with db.read() as s:
            cas = repo.list_cas(s)
            certs = repo.list_certificates(s)
    finally:
        db.dispose()
    (out / "ca").mkdir(parents=True, exist_ok=True)
    (out / "certs").mkdir(parents=True, exist_ok=True)
    n = 0
    for c in cas:
        cert = x509.load_der_x509_certificate(c.certificate_der)
        (out / "ca" / f"{c.name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        n += 1
    for cs in certs:
        cert = x509.load_der_x509_certificate(cs.der)
        (out / "certs" / f"{cs.issuer_name}-{cs.profile}-{cs.serial}.pem").write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
        )
        n += 1
    chain = b"".join(
        x509.load_der_x509_certificate(c.certificate_der).public_bytes(serialization.Encoding.PEM) for c in cas
    )
    (out / "ca" / "chain.pem").write_bytes(chain)
    return n


@ca.command("recover")
@click.pass_context
@_map_errors
def ca_recover(ctx: click.Context) -> None:
    """Settle serials left reserved by a crashed process as failed (never 'good')."""
    config = _config(ctx)
    with runtime(config) as rt:
        settled = rt.issuance(pkilint=False).recover(os_actor())
    console.print(f"settled {len(settled)} stale reservations as failed", markup=False)


# ---------------------------------------------------------------------------------------------
# audit


@cli.group()
def audit() -> None:
    """Verify, checkpoint and export the hash-chained audit log."""


def _print_report(report: VerifyReport) -> None:
    for note in report.notes:
        err_console.print(f"note: {note}", markup=False)
    if report.problem is not None:
        raise CLIError(f"audit log NOT intact: {report.problem.message}")
    span = f"entries {report.first_seq}..{report.last_seq}" if report.entries else "no entries"
    console.print(
        f"audit log intact: {report.entries} {span}, {report.checkpoints_verified} signed checkpoints verified, "
        f"head {report.head_hash}",
        markup=False,
    )


@audit.command("verify")
@click.pass_context
@_map_errors
def audit_verify(ctx: click.Context) -> None:
    """Recompute the chain and every checkpoint; name the first bad entry (exit 1)."""
    config = _config(ctx)
    with runtime(config) as rt:
        _print_report(rt.audit().verify())


@audit.command("checkpoint")
@click.pass_context
@_map_errors
def audit_checkpoint(ctx: click.Context) -> None:
    """Sign the current chain head with the audit key (in the key backend)."""
    config = _config(ctx)
    with runtime(config) as rt:
        cp = rt.audit().checkpoint(config.ca, os_actor("auditor"))
    console.print(f"checkpoint: entry {cp.seq}, head {cp.head_hash}, audit key {cp.key_sha256}", markup=False)


@audit.command("export")
@click.option("--since", default=None, help="ISO 8601 time of the first entry to export.")
@click.option("--until", default=None, help="ISO 8601 time of the last entry to export.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False))
@click.pass_context
@_map_errors
def audit_export(ctx: click.Context, since: str | None, until: str | None, out_path: str) -> None:
    """Write entries, checkpoints and audit certificates as JSON Lines for offline verification."""
    config = _config(ctx)
    with runtime(config) as rt:
        summary = rt.audit().export(
            Path(out_path), since=_parse_time(since, "--since"), until=_parse_time(until, "--until")
        )
    console.print(
        f"exported {summary.entries} entries ({summary.first_seq}..{summary.last_seq}) and "
        f"{summary.checkpoints} checkpoints to {summary.path}",
        markup=False,
    )


@audit.command("evidence")
@click.argument("serial")
@click.option("--issuer", "issuer_name", default=None, help="Issuing CA name (default: the CA that issued SERIAL).")
@click.option(
    "--copy-out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also decrypt the identity-document copy into this file (auditor role; the read is audited).",
)
@click.pass_context
@_map_errors
def audit_evidence(ctx: click.Context, serial: str, issuer_name: str | None, copy_out: str | None) -> None:
    """Everything behind one certificate as JSON: CA record, lint findings, journal, order,
    evidence, approvals, card and audit events."""
    import base64

    from ca.crl_ocsp.revocation import normalise_serial
    from qtsp.wiring import ra_service
    from ra.audit_view import AuditView
    from ra.errors import RAError
    from ra.roles import Role
    from ra.service import cli_principal

    config = _config(ctx)
    with runtime(config) as rt:
        shex = normalise_serial(serial)
        issuer = issuer_name or rt.revocation().find_issuer(shex)
        service = ra_service(rt)
        try:
            bundle = AuditView(db=rt.db, ra=service).evidence_bundle(
                cli_principal(os_actor("auditor").name, Role.AUDITOR), issuer, shex, include_copy=copy_out is not None
            )
        except RAError as exc:
            raise CLIError(str(exc)) from None
    content = bundle.pop("evidence_copy_content", None)
    if copy_out is not None:
        if content is None:
            raise CLIError("this certificate's order has no identity-document copy")
        Path(copy_out).write_bytes(base64.b64decode(content["base64"]))
        err_console.print(f"copy ({content['media_type']}) written to {copy_out}", markup=False)
    sys.stdout.write(json.dumps(bundle, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@audit.command("verify-export")
@click.argument("path", type=click.Path(dir_okay=False, exists=True))
@click.option("--root", "root_path", default=None, type=click.Path(dir_okay=False, exists=True), help="Root CA (PEM).")
@_map_errors
def audit_verify_export(path: str, root_path: str | None) -> None:
    """Verify an export with no database (optionally anchoring the audit key to the root CA)."""
    from ca.audit.service import verify_export

    root = x509.load_pem_x509_certificate(Path(root_path).read_bytes()) if root_path else None
    _print_report(verify_export(Path(path), trusted_root=root))


# ---------------------------------------------------------------------------------------------
# key ceremonies


@cli.group()
def ceremony() -> None:
    """Dual-control key ceremonies: PIN shares for custodians, signed ceremony reports."""


@ceremony.command("split-pin")
@click.option("--operator", "operators", multiple=True, required=True, help="A key custodian (two or more).")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="Where the share files go (0600).")
@click.pass_context
@_map_errors
def ceremony_split_pin(ctx: click.Context, operators: tuple[str, ...], out_dir: str) -> None:
    """Split the configured PKCS#11 PIN into one share per custodian; every share is needed."""
    from qtsp.ceremony import write_shares

    config = _config(ctx)
    if config.keys.backend != "pkcs11":
        raise CLIError("split-pin is for the pkcs11 backend (the soft keystore is development only)")
    if len(operators) < 2:
        raise CLIError("dual control needs at least two --operator")
    paths = write_shares(config.keys.read_secret(), operators, config.keys.pkcs11_token_label, Path(out_dir))
    for op, path in zip(operators, paths, strict=True):
        console.print(f"share for {op}: {path} (hand it to {op} only)", markup=False)


@ceremony.command("verify")
@click.argument("path", type=click.Path(dir_okay=False, exists=True))
@click.option("--root", "root_path", default=None, type=click.Path(dir_okay=False, exists=True), help="Root CA (PEM).")
@_map_errors
def ceremony_verify(path: str, root_path: str | None) -> None:
    """Check a signed ceremony report (and that its audit certificate chains to the root)."""
    from qtsp.ceremony import verify_report

    root = x509.load_pem_x509_certificate(Path(root_path).read_bytes()) if root_path else None
    report = verify_report(Path(path), root)
    custodians = ", ".join(c["name"] for c in report["custodians"]) or "-"
    console.print(
        f"ceremony report intact: {report['ceremony']} on {report['date']}, dual control "
        f"{'yes' if report['dual_control'] else 'no'} (custodians: {custodians}), {len(report['keys'])} keys",
        markup=False,
    )
    if root is None:
        err_console.print("note: pass --root to anchor the audit certificate to the root CA", markup=False)


# ---------------------------------------------------------------------------------------------
# serving and the scheduler


@cli.command()
@click.option("--host", default=None, help="Listen address (default [serve] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default [serve] port, 8080).")
@click.option("--scheduler/--no-scheduler", default=None, help="Run the status jobs here (default [status] scheduler).")
@click.pass_context
@_map_errors
def serve(ctx: click.Context, host: str | None, port: int | None, scheduler: bool | None) -> None:
    """Serve OCSP, CRLs, CA certificates and the RA API (development server; see README for gunicorn)."""
    from qtsp.app import create_app
    from qtsp.observability import configure_logging
    from qtsp.scheduler import build_scheduler
    from qtsp.wiring import open_runtime

    config = _config(ctx)
    configure_logging(os.environ.get("QTSP_LOG_LEVEL", "INFO"))
    app = create_app(config=config)
    jobs = None
    job_runtime = None
    if config.status.scheduler if scheduler is None else scheduler:
        job_runtime = open_runtime(config)
        jobs = build_scheduler(job_runtime)
        jobs.start()
    listen_host, listen_port = host or config.serve.host, port or config.serve.port
    err_console.print(f"serving {config.ca.base_url} on http://{listen_host}:{listen_port}", markup=False)
    try:
        app.run(host=listen_host, port=listen_port, threaded=True, use_reloader=False)
    finally:
        if jobs is not None:
            jobs.shutdown(wait=True)
        if job_runtime is not None:
            job_runtime.close()


@cli.command()
@click.option("--once", is_flag=True, help="Run every job once and exit (prints each outcome).")
@click.pass_context
@_map_errors
def worker(ctx: click.Context, once: bool) -> None:
    """Run the status jobs (CRL publishing, OCSP pre-signing, responder renewal, hold release)."""
    from ca.crl_ocsp.jobs import LeasedRunner
    from qtsp.observability import configure_logging
    from qtsp.scheduler import build_scheduler, run_once

    config = _config(ctx)
    configure_logging(os.environ.get("QTSP_LOG_LEVEL", "INFO"))
    with runtime(config) as rt:
        if once:
            for outcome in run_once(rt, LeasedRunner(rt.db)):
                console.print(f"{outcome.name}: {outcome.state} {outcome.detail}".rstrip(), markup=False)
            return
        err_console.print("status jobs running; Ctrl-C stops", markup=False)
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            build_scheduler(rt, blocking=True).start()


# crl


@cli.group()
def crl() -> None:
    """Certificate revocation lists (CRLs of the issuing CAs, the root's CARL)."""


@crl.command("publish")
@click.option("--issuer", "issuer_name", default=None, help="CA name (default: every CA, the root's CARL last).")
@click.option("--force", is_flag=True, help="Publish even when nothing is due (no change, interval not passed).")
@click.pass_context
@_map_errors
def crl_publish(ctx: click.Context, issuer_name: str | None, force: bool) -> None:
    """Publish the CRLs that are due (a pending status change, or the interval passed); --force: now."""
    config = _config(ctx)
    with runtime(config) as rt:
        publisher = rt.crl()
        names = [issuer_name] if issuer_name else publisher.ca_names()
        for name in names:
            closed = publisher.closed_since(name) if not issuer_name else None
            if closed is not None:
                console.print(f"{name}: closed since {closed.isoformat()}; its last CRL is final", markup=False)
                continue
            done = publisher.publish(name, os_actor(), force=force)
            if done is None:
                latest = publisher.latest(name)
                last = f"CRL #{latest.number} of {latest.this_update.isoformat()}" if latest else "no CRL"
                console.print(f"{name}: up to date ({last}); --force publishes anyway", markup=False)
                continue
            console.print(
                f"{name}: published CRL #{done.number}, {done.entries} entries, {done.size} bytes, "
                f"thisUpdate {done.this_update.isoformat()}, nextUpdate {done.next_update.isoformat()}, "
                f"sha256 {done.sha256}",
                markup=False,
            )
            if done.file_error:
                err_console.print(f"warning: {name}: publish directory not written: {done.file_error}", markup=False)


@crl.command("last")
@click.option("--issuer", "issuer_name", required=True, help="The CA at its end of life.")
@click.option(
    "--confirm",
    "confirm",
    required=True,
    metavar="NAME",
    help="The CA's name again: the last CRL closes the CA for good (irreversible).",
)
@click.pass_context
@_map_errors
def crl_last(ctx: click.Context, issuer_name: str, confirm: str) -> None:
    """Publish a CA's last CRL (nextUpdate 99991231235959Z) and close the CA: only once every
    certificate it issued is expired or revoked (EN 319 411-2 CSS-6.3.10-07); afterwards it issues
    nothing and changes no status, and the last CRL stays its CRL."""
    if confirm != issuer_name:
        raise CLIError(f"--confirm must repeat the CA name ({issuer_name!r}): closing a CA cannot be undone")
    config = _config(ctx)
    with runtime(config) as rt:
        done = rt.crl().publish_last(issuer_name, os_actor("security-officer"))
    console.print(
        f"{issuer_name}: last CRL #{done.number} published, {done.entries} entries, thisUpdate "
        f"{done.this_update.isoformat()}, nextUpdate {done.next_update.isoformat()}, sha256 {done.sha256}; "
        "the CA is closed",
        markup=False,
    )
    if done.file_error:
        err_console.print(f"warning: {issuer_name}: publish directory not written: {done.file_error}", markup=False)


@crl.command("show")
@click.option("--issuer", "issuer_name", default=None, help="CA name (default: every CA).")
@click.option("--number", type=click.IntRange(min=1), default=None, help="CRL number (default: the newest).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None, help="Write the DER here.")
@click.option("--limit", type=click.IntRange(min=0), default=1000, show_default=True, help="Entries listed (0: all).")
@click.pass_context
@_map_errors
def crl_show(ctx: click.Context, issuer_name: str | None, number: int | None, out_path: str | None, limit: int) -> None:
    """Show a stored CRL: number, thisUpdate/nextUpdate, entries (serial, date, reason), size, SHA-256."""
    if (number is not None or out_path is not None) and issuer_name is None:
        raise CLIError("--number and --out need --issuer")
    config = _config(ctx)
    with runtime(config) as rt:
        publisher = rt.crl()
        names = [issuer_name] if issuer_name else publisher.ca_names()
        stored = [(name, publisher.latest(name, number)) for name in names]
    for name, found in stored:
        if found is None:
            what = f"CRL #{number}" if number is not None else "CRL"
            raise CLIError(f"CA {name} has no stored {what}")
        parsed = x509.load_der_x509_crl(found.der)
        console.print(f"{name}: CRL #{found.number}", markup=False)
        console.print(f"  thisUpdate  {found.this_update.isoformat()}", markup=False)
        console.print(f"  nextUpdate  {found.next_update.isoformat()}", markup=False)
        console.print(f"  size        {len(found.der)} bytes", markup=False)
        console.print(f"  sha256      {found.sha256}", markup=False)
        console.print(f"  entries     {found.entries}", markup=False)
        for i, entry in enumerate(parsed):
            if limit and i >= limit:
                console.print(f"  ... {found.entries - limit} more (--limit 0 lists all)", markup=False)
                break
            console.print(f"    {_entry_line(entry)}", markup=False)
        if out_path:
            Path(out_path).write_bytes(found.der)
            err_console.print(f"wrote {out_path}", markup=False)


def _entry_line(entry: x509.RevokedCertificate) -> str:
    reason = "unspecified"
    invalidity = ""
    for ext in entry.extensions:
        if isinstance(ext.value, x509.CRLReason):
            reason = _REASON_NAMES.get(ext.value.reason, ext.value.reason.value)
        elif isinstance(ext.value, x509.InvalidityDate):
            invalidity = f"  invalidity {ext.value.invalidity_date_utc.isoformat()}"
    return f"{entry.serial_number:x}  {entry.revocation_date_utc.isoformat()}  {reason}{invalidity}"


_REASON_NAMES = {
    x509.ReasonFlags.key_compromise: "keyCompromise",
    x509.ReasonFlags.ca_compromise: "cACompromise",
    x509.ReasonFlags.affiliation_changed: "affiliationChanged",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessationOfOperation",
    x509.ReasonFlags.certificate_hold: "certificateHold",
    x509.ReasonFlags.privilege_withdrawn: "privilegeWithdrawn",
    x509.ReasonFlags.aa_compromise: "aACompromise",
    x509.ReasonFlags.remove_from_crl: "removeFromCRL",
}


# ---------------------------------------------------------------------------------------------
# registration authority (the OS user is the actor; the CA host's access control is the gate)


@cli.group("ra")
def ra_group() -> None:
    """Registration authority: operator accounts, orders, scheduled card transitions."""


def _ra_error(exc: Exception) -> CLIError:
    return CLIError(str(exc))


@ra_group.command("create-operator")
@click.option("--email", required=True)
@click.option("--role", "roles", multiple=True, required=True, help="ra-officer, revocation-officer, ca-operator, ...")
@click.pass_context
@_map_errors
def ra_create_operator(ctx: click.Context, email: str, roles: tuple[str, ...]) -> None:
    """Create an operator account; the password comes from $QTSP_OPERATOR_PASSWORD or a prompt,
    and the TOTP secret is printed once."""
    from qtsp.wiring import ra_service
    from ra.errors import RAError
    from ra.roles import Role
    from ra.service import cli_principal

    password = os.environ.get("QTSP_OPERATOR_PASSWORD") or click.prompt("password", hide_input=True)
    with runtime(_config(ctx)) as rt:
        try:
            account_id, secret = ra_service(rt).create_operator(
                cli_principal(os_actor().name, Role.SECURITY_OFFICER), email=email, password=password, roles=roles
            )
        except RAError as exc:
            raise _ra_error(exc) from None
    console.print(f"operator account {account_id} created; TOTP secret (shown once): {secret}")


@ra_group.command("orders")
@click.pass_context
@_map_errors
def ra_orders(ctx: click.Context) -> None:
    """List every order with its state."""
    from qtsp.wiring import ra_service
    from ra.roles import Role
    from ra.service import cli_principal

    table = Table(title="orders")
    for col in ("id", "product", "method", "state", "waiting", "card"):
        table.add_column(col)
    with runtime(_config(ctx)) as rt:
        for view in ra_service(rt).list_orders(cli_principal(os_actor().name, Role.AUDITOR)):
            o = view.order
            table.add_row(str(o.id), o.product, o.method, o.state, o.waiting_reason or "", str(view.card_id or ""))
    console.print(table)


@ra_group.command("run-jobs")
@click.pass_context
@_map_errors
def ra_run_jobs(ctx: click.Context) -> None:
    """The scheduler's RA jobs once, without leases (run it where no scheduler runs): reconcile
    slots left issuing, retry accepted revocations, activate and expire cards, delete expired
    evidence copies; issue online renewals whose date has come; send the outbox."""
    from qtsp.scheduler import ra_card_jobs, ra_outbox_job, ra_renewal_job
    from ra.errors import RAError

    with runtime(_config(ctx)) as rt:
        try:
            for line in (ra_card_jobs(rt), ra_renewal_job(rt), ra_outbox_job(rt)):
                console.print(line)
        except RAError as exc:
            raise _ra_error(exc) from None


# ---------------------------------------------------------------------------------------------
# demo and bench


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Export directory.")
@click.pass_context
@_map_errors
def demo(ctx: click.Context, out_dir: str | None) -> None:
    """Issue one certificate of every profile from freshly generated keys and export them."""
    from qtsp.demo import run_demo

    config = _config(ctx)
    run_demo(config, Path(out_dir) if out_dir else config.home / "export", console)


def _wide(base: Console, columns: int = 132) -> Console:
    """``base``, or a console at least ``columns`` wide writing to the same file: a benchmark's
    table keeps one figure and its range on a line each even when the output is piped (where rich
    assumes 80 columns)."""
    if base.width >= columns:
        return base
    return Console(file=base.file, soft_wrap=True, width=columns)


@cli.group()
def bench() -> None:
    """Benchmarks (outside the test suite)."""


@bench.command("issue")
@click.option("--count", default=500, show_default=True, help="Certificates per measurement.")
@click.option("--backend", "backends", multiple=True, type=click.Choice(["soft", "pkcs11"]), default=("soft", "pkcs11"))
@click.option("--algorithm", "algorithms", multiple=True, default=("ec-p256", "rsa-3072"), show_default=True)
@click.option("--workers", default=1, show_default=True, help="Issuing processes running at once.")
@click.option("--database", "database_url", default=None, help="Database URL (default: a fresh SQLite file).")
@click.option(
    "--repeat",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Measure each configuration this many times, alternating; print the median and range.",
)
@_map_errors
def bench_issue(
    count: int,
    backends: tuple[str, ...],
    algorithms: tuple[str, ...],
    workers: int,
    database_url: str | None,
    repeat: int,
) -> None:
    """Certificates/s of the whole pipeline with and without pkilint, and raw sign/s of the same key."""
    from qtsp.bench import run_issue_bench

    if database_url and len(backends) * len(algorithms) > 1:
        # Each configuration runs `qtsp init` on its own home; one database holds one hierarchy.
        raise CLIError(
            "--database holds one CA hierarchy: give one --backend and one --algorithm with it"
            " (without --database each configuration gets a fresh SQLite home)"
        )
    run_issue_bench(
        count=count,
        backends=backends,
        algorithms=algorithms,
        workers=workers,
        database_url=database_url,
        console=_wide(console),
        repeat=repeat,
    )


@bench.command("lint")
@click.option("--count", default=300, show_default=True, help="Certificates per figure.")
@click.option("--rounds", default=3, show_default=True, help="Alternating rounds.")
@_map_errors
def bench_lint(count: int, rounds: int) -> None:
    """pkilint per certificate: its own dispatch against the lint gate's indexed dispatch, same process."""
    from qtsp.bench import run_lint_bench

    if count < 1 or rounds < 1:
        raise CLIError("--count and --rounds must be positive")
    run_lint_bench(count=count, rounds=rounds, console=_wide(console))


@bench.command("crl")
@click.option(
    "--sizes",
    default="10000,100000,1000000",
    show_default=True,
    help="Comma-separated entry counts (at most three; one issuing CA each).",
)
@click.option("--openssl/--no-openssl", default=True, show_default=True, help="Baseline: openssl ca -gencrl.")
@click.option("--builder/--no-builder", default=True, show_default=True, help="Baseline: cryptography's builder.")
@_map_errors
def bench_crl(sizes: str, openssl: bool, builder: bool) -> None:
    """CRL build + sign time, peak memory and size for large CRLs, against the baselines in the same run."""
    from qtsp.bench import run_crl_bench

    try:
        counts = [int(x) for x in sizes.split(",") if x.strip()]
    except ValueError:
        raise CLIError(f"--sizes: {sizes!r} is not a comma-separated list of integers") from None
    if not counts or len(counts) > 3 or any(c < 1 for c in counts):
        raise CLIError("--sizes: one to three positive counts")
    run_crl_bench(sizes=counts, openssl=openssl, builder=builder, console=_wide(console))


@bench.command("ocsp")
@click.option("--requests", "requests_", default=20000, show_default=True, help="Requests per configuration.")
@click.option("--concurrency", default=8, show_default=True, help="Concurrent connections of the load generator.")
@_map_errors
def bench_ocsp(requests_: int, concurrency: int) -> None:
    """OCSP answers/s (pre-signed, live SoftHSM2) under gunicorn vs fixed bytes and openssl ocsp."""
    from qtsp.bench_ocsp import run_ocsp_bench

    if requests_ < 100 or concurrency < 1:
        raise CLIError("--requests must be at least 100 and --concurrency at least 1")
    run_ocsp_bench(requests=requests_, concurrency=concurrency, console=_wide(console))


def main() -> None:
    cli(prog_name="qtsp")


if __name__ == "__main__":
    main()
