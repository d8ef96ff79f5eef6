"""``qtsp bench ocsp``: OCSP answers/s over loopback under gunicorn (2 workers), for pre-signed and
live-signed answers, against two baselines measured in the same run with the same load generator:

* the same gunicorn set-up serving fixed bytes from a Flask view (the ceiling of a Flask origin);
* ``openssl ocsp`` running as a responder (``-index``, ``-rsigner``, ``-nmin``) over a PKI of the
  same shape, with an RSA-3072 and with a P-256 responder key;

and GET through nginx (``deploy/nginx/qtsp-ocsp.conf``, :mod:`qtsp.edge`) in front of the same
gunicorn: cache hits, compared with ``openssl ocsp`` P-256 (target: at least 1.5x).

The load generator is ApacheBench (``ab``, Debian apache2-utils): ``openssl ocsp`` speaks HTTP/1.0
and closes every connection, which ``wrk`` cannot measure (FIELD-NOTES).  ``ab`` counts ECDSA
answers of varying length as "Failed (Length)"; those are not failures and are not reported as
errors.  Every configuration is checked with one real request before it is loaded.
Benchmarks print figures; they are not part of the test suite.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rich.console import Console
from rich.table import Table

__all__ = ["AbResult", "run_ab", "run_ocsp_bench"]


@dataclass(frozen=True)
class AbResult:
    label: str
    per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _ab_binary() -> str:
    path = shutil.which("ab")
    if path is None:
        raise RuntimeError("ApacheBench (ab) is missing: install Debian's apache2-utils (make bench does)")
    return path


def run_ab(
    label: str, url: str, body: bytes | None, *, requests: int, concurrency: int, tmp: Path, warmup: bool = True
) -> AbResult:
    """Run ``ab``; POST ``body`` as application/ocsp-request, or GET when None.  A discarded warm-up
    run first lets every worker open its database, key backend and caches."""
    if warmup:
        run_ab(label, url, body, requests=max(200, requests // 10), concurrency=concurrency, tmp=tmp, warmup=False)
    args = [_ab_binary(), "-q", "-n", str(requests), "-c", str(concurrency), "-s", "30"]
    if body is not None:
        path = tmp / "ab-body.der"
        path.write_bytes(body)
        args += ["-p", str(path), "-T", "application/ocsp-request"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=False)  # noqa: S603
    if out.returncode != 0:
        raise RuntimeError(f"ab failed for {label}: {out.stderr.strip() or out.stdout[-400:]}")
    text = out.stdout

    def number(pattern: str, default: float = 0.0) -> float:
        m = re.search(pattern, text, re.MULTILINE)
        return float(m.group(1)) if m else default

    complete = int(number(r"^Complete requests:\s+(\d+)"))
    failed_exceptions = (
        int(number(r"Exceptions: (\d+)")) + int(number(r"Connect: (\d+)")) + int(number(r"Receive: (\d+)"))
    )
    non2xx = int(number(r"^Non-2xx responses:\s+(\d+)"))
    return AbResult(
        label=label,
        per_s=number(r"^Requests per second:\s+([\d.]+)"),
        p50_ms=number(r"^\s+50%\s+(\d+)"),
        p99_ms=number(r"^\s+99%\s+(\d+)"),
        errors=failed_exceptions + non2xx + (requests - complete),
        requests=requests,
    )


def post_ocsp(url: str, body: bytes, timeout: float = 10) -> ocsp.OCSPResponse:
    headers = {"Content-Type": "application/ocsp-request"}
    req = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - http on loopback only
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        return ocsp.load_der_ocsp_response(resp.read())


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, *, nonce: bool) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303 - RFC 5019 CertID
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


@contextlib.contextmanager
def gunicorn(app: str, port: int, env: dict[str, str], workers: int = 2) -> Iterator[None]:
    exe = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(  # noqa: S603
        [str(exe), "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning", app],
        env={**os.environ, **env},
    )
    try:
        wait_for_port(port, proc=proc)
        yield
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()


@contextlib.contextmanager
def openssl_responder(tmp: Path, key_kind: str, port: int) -> Iterator[tuple[x509.Certificate, x509.Certificate]]:
    """``openssl ocsp`` over its own small PKI: yields (issuer certificate, certificate to query)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openssl bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    responder_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(65537, 3072) if key_kind == "rsa-3072" else ec.generate_private_key(ec.SECP256R1())
    )
    responder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openssl bench responder")]))
        .issuer_name(ca_name)
        .public_key(responder_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openssl bench leaf")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    d = tmp / f"openssl-{key_kind}"
    d.mkdir(exist_ok=True)
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "rsigner.pem").write_bytes(responder.public_bytes(pem))
    (d / "rkey.pem").write_bytes(
        responder_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    expiry = leaf.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
    (d / "index.txt").write_text(f"V\t{expiry}\t\t{leaf.serial_number:X}\tunknown\t/CN=openssl bench leaf\n")
    proc = subprocess.Popen(  # noqa: S603
        [
            shutil.which("openssl") or "openssl",
            "ocsp",
            "-index",
            str(d / "index.txt"),
            "-port",
            str(port),  # OpenSSL 3.0 binds every interface; the benchmark runs for seconds only
            "-rsigner",
            str(d / "rsigner.pem"),
            "-rkey",
            str(d / "rkey.pem"),
            "-CA",
            str(d / "ca.pem"),
            "-nmin",
            "60",
            "-ignore_err",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # No bare connect to probe readiness: the single-process responder would wait on it.
        deadline = time.monotonic() + 15
        probe = ocsp_request(leaf, ca, nonce=False)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"openssl ocsp exited with code {proc.returncode}")
            try:
                post_ocsp(f"http://127.0.0.1:{port}/", probe, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield ca, leaf
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        if proc.poll() is None:
            proc.kill()


EDGE_LABEL = "nginx edge, cached GET (deploy/nginx)"


def _edge_run(
    tmp: Path, origin_port: int, origin_get_url: str, expected: bytes, *, requests: int, concurrency: int
) -> AbResult:
    """``ab`` GET through nginx (deploy/nginx/qtsp-ocsp.conf, 2 workers) in front of the origin:
    the same URL every time, so nearly every request is a cache hit (one fetch per second)."""
    from qtsp.edge import nginx_edge

    edge_port = free_port()
    edge_url = origin_get_url.replace(f"127.0.0.1:{origin_port}", f"127.0.0.1:{edge_port}", 1)
    with nginx_edge(tmp, edge_port, f"127.0.0.1:{origin_port}", worker_processes=2):
        statuses = []
        for _ in range(3):
            with urllib.request.urlopen(edge_url, timeout=10) as resp:  # noqa: S310 - loopback
                if resp.read() != expected:
                    raise RuntimeError("the edge answered other bytes than the origin")
                statuses.append(resp.headers.get("X-Cache-Status"))
        if "HIT" not in statuses:
            raise RuntimeError(f"the edge does not cache the GET answer: {statuses}")
        return run_ab(EDGE_LABEL, edge_url, None, requests=requests, concurrency=concurrency, tmp=tmp)


def _fixed_bytes_app_env(tmp: Path, body: bytes) -> dict[str, str]:
    path = tmp / "fixed.der"
    path.write_bytes(body)
    return {"QTSP_BENCH_FIXED_BODY": str(path)}


def run_ocsp_bench(*, requests: int, concurrency: int, console: Console) -> list[AbResult]:
    """The whole comparison; see the module docstring."""
    from qtsp.bench import _environment, _softhsm_token

    tmp = Path(tempfile.mkdtemp(prefix="qtsp-bench-ocsp-"))
    results: list[AbResult] = []
    try:
        tokendir = tmp / "tokens"
        tokendir.mkdir()
        conf = tmp / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n")
        with _environment({"SOFTHSM2_CONF": str(conf)}):
            env = {"SOFTHSM2_CONF": str(conf), "QTSP_KEY_BACKEND": "pkcs11", **_softhsm_token(tokendir)}
            port = free_port()
            home = tmp / "home"
            env["QTSP_HOME"] = str(home)
            with _environment(env):
                cert, issuer = _prepare_home(home, f"http://127.0.0.1:{port}")
            url = f"http://127.0.0.1:{port}/ocsp"
            presigned_req = ocsp_request(cert, issuer, nonce=False)
            live_req = ocsp_request(cert, issuer, nonce=True)
            with gunicorn("qtsp.app:create_app()", port, env):
                first = post_ocsp(url, presigned_req)
                if first.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
                    raise RuntimeError(f"our responder answered {first.response_status.name}")
                fixed_body = first.public_bytes(serialization.Encoding.DER)
                check = post_ocsp(url, live_req)
                if check.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
                    raise RuntimeError(f"live signing answered {check.response_status.name}")
                get_url = f"{url}/{urllib.parse.quote(base64.b64encode(presigned_req).decode(), safe='')}"
                for label, target, body in (
                    ("qtsp pre-signed (POST)", url, presigned_req),
                    ("qtsp pre-signed (GET)", get_url, None),
                    ("qtsp live-signed P-256 SoftHSM2 (POST, nonce)", url, live_req),
                ):
                    results.append(run_ab(label, target, body, requests=requests, concurrency=concurrency, tmp=tmp))
                    console.print(_line(results[-1]))
                results.append(_edge_run(tmp, port, get_url, fixed_body, requests=requests, concurrency=concurrency))
                console.print(_line(results[-1]))
            fixed_port = free_port()
            with gunicorn("qtsp.bench_apps:fixed_bytes_app()", fixed_port, _fixed_bytes_app_env(tmp, fixed_body)):
                results.append(
                    run_ab(
                        "Flask fixed bytes (same gunicorn set-up)",
                        f"http://127.0.0.1:{fixed_port}/ocsp",
                        presigned_req,
                        requests=requests,
                        concurrency=concurrency,
                        tmp=tmp,
                    )
                )
                console.print(_line(results[-1]))
            for kind in ("rsa-3072", "ec-p256"):
                oport = free_port()
                with openssl_responder(tmp, kind, oport) as (o_ca, o_leaf):
                    body = ocsp_request(o_leaf, o_ca, nonce=False)
                    answer = post_ocsp(f"http://127.0.0.1:{oport}/", body)
                    if answer.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
                        raise RuntimeError(f"openssl ocsp answered {answer.response_status.name}")
                    results.append(
                        run_ab(
                            f"openssl ocsp {kind} (live)",
                            f"http://127.0.0.1:{oport}/",
                            body,
                            requests=requests,
                            concurrency=concurrency,
                            tmp=tmp,
                        )
                    )
                    console.print(_line(results[-1]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _table(results, requests, concurrency, console)
    return results


def _prepare_home(home: Path, base_url: str) -> tuple[x509.Certificate, x509.Certificate]:
    """Initialise a SoftHSM2-backed home, issue one certificate and pre-sign every response."""
    from ca.profiles.subject import SubjectInput
    from qtsp.ceremony import in_memory_custodians
    from qtsp.config import load_config
    from qtsp.demo import DEMO_SUBJECTS, fresh_csr
    from qtsp.wiring import initialise, os_actor, runtime

    config = load_config(home, base_url=base_url)
    # A benchmark home: the PKCS#11 PIN is split and recombined in this process (no real ceremony).
    custodians = (
        in_memory_custodians(config.keys.read_secret(), config.keys.pkcs11_token_label)
        if config.keys.backend == "pkcs11"
        else []
    )
    initialise(config, os_actor("benchmark"), custodians=custodians)
    config = load_config(home)
    with runtime(config) as rt:
        issued = rt.issuance().issue(
            profile_name="qes-natural",
            csr=fresh_csr(),
            subject=SubjectInput.from_json_obj(DEMO_SUBJECTS["qes-natural"]),
            actor=os_actor("benchmark"),
        )
        rt.ocsp_presigner().refresh_due()
        issuer = rt.issuance(pkilint=False).issuers[issued.issuer].view.certificate
    return issued.certificate, issuer


def _line(r: AbResult) -> str:
    return f"{r.label:48} {r.per_s:8.0f}/s  p50 {r.p50_ms:4.0f} ms  p99 {r.p99_ms:4.0f} ms  errors {r.errors}"


def _table(results: list[AbResult], requests: int, concurrency: int, console: Console) -> None:
    by = {r.label: r for r in results}
    fixed = by.get("Flask fixed bytes (same gunicorn set-up)")
    rsa_base = by.get("openssl ocsp rsa-3072 (live)")
    ec_base = by.get("openssl ocsp ec-p256 (live)")
    table = Table(
        title=f"qtsp bench ocsp: ab -n {requests} -c {concurrency} over loopback, gunicorn 2 sync workers, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    for col in (
        "configuration",
        "answers/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "÷ fixed bytes",
        "÷ openssl RSA",
        "÷ openssl P-256",
    ):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            r.label,
            f"{r.per_s:.0f}",
            f"{r.p50_ms:.0f}",
            f"{r.p99_ms:.0f}",
            str(r.errors),
            f"{r.per_s / fixed.per_s:.2f}" if fixed and fixed.per_s else "-",
            f"{r.per_s / rsa_base.per_s:.2f}" if rsa_base and rsa_base.per_s else "-",
            f"{r.per_s / ec_base.per_s:.2f}" if ec_base and ec_base.per_s else "-",
        )
    console.print(table)
    edge = by.get(EDGE_LABEL)
    if edge and ec_base and ec_base.per_s:
        ratio = edge.per_s / ec_base.per_s
        verdict = "met" if ratio >= 1.5 else "NOT met"
        console.print(
            f"nginx edge (cache hits) ÷ openssl ocsp P-256: {ratio:.2f}x "
            f"({edge.per_s:.0f}/s vs {ec_base.per_s:.0f}/s; target >= 1.5x: {verdict})"
        )
