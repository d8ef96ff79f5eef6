"""The ``qtsp`` command line.  Adapters only: parse input, call one service, map errors.

Every error ends the command with one clear line on stderr and a non-zero exit code, never a
traceback (set ``QTSP_DEBUG=1`` to see one).
"""

from __future__ import annotations

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

from ca.issuance.errors import IssuanceError
from ca.issuance.hierarchy import HierarchyExists, HierarchyMismatch
from ca.profiles import ProfileError
from ca.profiles.subject import SubjectError, SubjectInput
from ca.store import repository as repo
from hsm import HSMError
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
        except (IssuanceError, ProfileError, SubjectError, HierarchyExists, HierarchyMismatch) as exc:
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
@click.pass_context
@_map_errors
def init(ctx: click.Context, base_url: str | None, backend: str | None) -> None:
    """Create the data directory, the database schema and the CA hierarchy (never overwrites)."""
    if backend is not None:
        os.environ["QTSP_KEY_BACKEND"] = backend
    config = _config(ctx, base_url)
    certs = initialise(config, os_actor("security-officer"))
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
@click.pass_context
@_map_errors
def ca_issue(
    ctx: click.Context,
    profile_name: str,
    csr_path: str,
    subject_path: str,
    out_path: str | None,
    validity_days: int | None,
) -> None:
    """Issue one certificate through the linted pipeline."""
    config = _config(ctx)
    csr = Path(csr_path).read_bytes()
    subject = _read_subject(subject_path)
    with runtime(config) as rt:
        service = rt.issuance()
        issued = service.issue(
            profile_name=profile_name, csr=csr, subject=subject, actor=os_actor(), validity_days=validity_days
        )
    pem = issued.certificate.public_bytes(serialization.Encoding.PEM)
    if out_path:
        Path(out_path).write_bytes(pem)
        err_console.print(
            f"issued {issued.profile} serial {issued.serial_hex} by {issued.issuer}: {out_path}", markup=False
        )
    else:
        sys.stdout.write(pem.decode())


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
    """Activate cards shipped longer ago than ra.activation_hours and mark expired cards."""
    from qtsp.wiring import ra_service
    from ra.errors import RAError

    with runtime(_config(ctx)) as rt:
        service = ra_service(rt)
        try:
            activated, expired = service.activate_due(), service.expire_due()
        except RAError as exc:
            raise _ra_error(exc) from None
    console.print(f"activated {len(activated)} cards, expired {len(expired)}")


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


@cli.group()
def bench() -> None:
    """Benchmarks (outside the test suite)."""


@bench.command("issue")
@click.option("--count", default=500, show_default=True, help="Certificates per measurement.")
@click.option("--backend", "backends", multiple=True, type=click.Choice(["soft", "pkcs11"]), default=("soft", "pkcs11"))
@click.option("--algorithm", "algorithms", multiple=True, default=("ec-p256", "rsa-3072"), show_default=True)
@click.option("--workers", default=1, show_default=True, help="Issuing processes running at once.")
@click.option("--database", "database_url", default=None, help="Database URL (default: a fresh SQLite file).")
@_map_errors
def bench_issue(
    count: int, backends: tuple[str, ...], algorithms: tuple[str, ...], workers: int, database_url: str | None
) -> None:
    """Certificates/s of the whole pipeline with and without pkilint, and raw sign/s of the same key."""
    from qtsp.bench import run_issue_bench

    run_issue_bench(
        count=count,
        backends=backends,
        algorithms=algorithms,
        workers=workers,
        database_url=database_url,
        console=console,
    )


def main() -> None:
    cli(prog_name="qtsp")


if __name__ == "__main__":
    main()
