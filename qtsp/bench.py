"""``qtsp bench issue``: whole-pipeline certificates/s with and without pkilint, and the raw
signatures/s of the same issuer key measured in the same run, for the soft and SoftHSM2 backends.

Each configuration gets a fresh home (SQLite in a temporary directory unless ``--database``) and,
for PKCS#11, a fresh SoftHSM2 token in a temporary token directory.  With ``--workers N`` the
pipeline runs in N spawned processes at once (PKCS#11 needs processes for parallelism: FIELD-NOTES),
each with its own session; the figure is certificates over wall time from the first start to
the last finish.  Benchmarks print figures; they are not part of the test suite.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing as mp
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rich.console import Console
from rich.table import Table

__all__ = ["run_crl_bench", "run_issue_bench"]

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass(frozen=True)
class Row:
    """One configuration's figures, one per repetition (in the order measured)."""

    backend: str
    algorithm: str
    sign_per_s: tuple[float, ...]
    pipeline_no_lint: tuple[float, ...]
    pipeline_lint: tuple[float, ...]

    def ratios(self, pipeline: tuple[float, ...]) -> tuple[float, ...]:
        """Each repetition's pipeline figure divided by the raw sign/s measured just before it."""
        return tuple(p / s for p, s in zip(pipeline, self.sign_per_s, strict=True))


def _spread(values: Sequence[float], spec: str) -> str:
    """The median, and with more than one value the range below it: ``730`` / ``706–749``."""
    mid = statistics.median(values)
    if len(values) == 1:
        return format(mid, spec)
    return f"{mid:{spec}}\n{min(values):{spec}}–{max(values):{spec}}"


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _softhsm_token(tokendir: Path) -> dict[str, str]:
    if not Path(SOFTHSM_MODULE).exists() or shutil.which("softhsm2-util") is None:
        raise RuntimeError("SoftHSM2 is not installed (Debian package softhsm2): run `make test-deps`")
    label = f"bench{secrets.token_hex(4)}"
    pin = secrets.token_hex(8)
    subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [
            shutil.which("softhsm2-util") or "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            secrets.token_hex(8),
        ],
        check=True,
        capture_output=True,
    )
    return {
        "QTSP_PKCS11_MODULE": SOFTHSM_MODULE,
        "QTSP_PKCS11_TOKEN_LABEL": label,
        "QTSP_PKCS11_PIN": pin,
    }


_GIVEN: Final = ("Erika", "Max", "Sabine", "Jürgen", "Aylin", "Piotr", "Ingrid", "Luca", "Mette", "Tomás", "Zoë")
_SURNAMES: Final = ("Mustermann", "Schmidt", "Öztürk", "Kowalski", "Lindqvist", "Rossi", "Dupont", "García", "Nagy")


def bench_subject(i: int) -> dict[str, object]:
    """The benchmark's ``i``-th qes-natural subject: the demo's organisation and Admission, with a
    person of their own (names, identifier, registration number), so that nothing the lint gate
    could remember from one certificate repeats in the next the way it would not in real orders."""
    from qtsp.demo import DEMO_SUBJECTS

    given, surname = _GIVEN[i % len(_GIVEN)], f"{_SURNAMES[(i // len(_GIVEN)) % len(_SURNAMES)]}-{i}"
    subject = dict(DEMO_SUBJECTS["qes-natural"])
    admission = dict(subject["admission"])  # type: ignore[call-overload]
    admission["registrationNumber"] = f"PA-2020-{i:06d}"
    subject.update(
        givenName=given,
        surname=surname,
        commonName=f"{given} {surname}",
        serialNumber=f"IDCDE-T{i:08d}",
        admission=admission,
    )
    return subject


def _worker(home: str, count: int, offset: int, lint: bool, barrier: object, results: object) -> None:
    """Issue ``count`` qes-natural certificates, each for another person; report (start, end) wall-clock times."""
    from ca.profiles.subject import SubjectInput
    from qtsp.config import load_config
    from qtsp.demo import fresh_csr
    from qtsp.wiring import os_actor, prepare_issuing_process, runtime

    with runtime(load_config(home)) as rt:
        service = rt.issuance(pkilint=lint)
        work = [(fresh_csr(), SubjectInput.from_json_obj(bench_subject(offset + i))) for i in range(count + 1)]
        actor = os_actor()
        csr, subject = work.pop()
        service.issue(profile_name="qes-natural", csr=csr, subject=subject, actor=actor)  # warm caches
        prepare_issuing_process(rt)  # as qtsp.gunicorn_conf does in each production worker
        barrier.wait()  # type: ignore[attr-defined]
        start = time.time()
        for csr, subject in work:
            service.issue(profile_name="qes-natural", csr=csr, subject=subject, actor=actor)
        results.put((start, time.time()))  # type: ignore[attr-defined]


def _pipeline(home: Path, count: int, lint: bool, workers: int, repetition: int = 0) -> float:
    ctx = mp.get_context("spawn")  # never fork after C_Initialize (FIELD-NOTES)
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    per = max(1, count // workers)
    # Each worker, and each run, issues for persons of its own (offsets apart).
    base = (2 * repetition + (1 if lint else 0)) * workers * (per + 1)
    procs = [
        ctx.Process(target=_worker, args=(str(home), per, base + w * (per + 1), lint, barrier, results))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    spans = [results.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"benchmark worker failed with exit code {p.exitcode}")
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    return float(per * workers / wall)


def _raw_sign(home: Path, seconds: float = 2.0) -> float:
    """Signatures/s of the qes issuing CA key through the backend, in this process."""
    from hsm.signing import sign
    from qtsp.config import load_config
    from qtsp.wiring import runtime

    with runtime(load_config(home)) as rt:
        issuer = rt.issuance(pkilint=False).issuers["qes"]
        key = issuer.signing_key
        digest_alg = issuer.algorithm.default_hash()
        data = os.urandom(200)  # about the size of a TBS hash input is irrelevant: the digest is signed
        n = 0
        end = time.perf_counter() + seconds
        start = time.perf_counter()
        while time.perf_counter() < end:
            sign(key, data, digest_alg)
            n += 1
        return float(n / (time.perf_counter() - start))


def _init(home: Path) -> None:
    from qtsp.ceremony import in_memory_custodians
    from qtsp.config import load_config
    from qtsp.wiring import initialise, os_actor

    config = load_config(home, base_url="http://qtsp.example.com")
    # A benchmark home: the PKCS#11 PIN is split and recombined in this process (no real ceremony).
    custodians = (
        in_memory_custodians(config.keys.read_secret(), config.keys.pkcs11_token_label)
        if config.keys.backend == "pkcs11"
        else []
    )
    initialise(config, os_actor("benchmark"), custodians=custodians)


def run_issue_bench(
    *,
    count: int,
    backends: Sequence[str],
    algorithms: Sequence[str],
    workers: int,
    database_url: str | None,
    console: Console,
    repeat: int = 1,
) -> list[Row]:
    """Measure each backend × algorithm on a fresh home: raw sign/s, then the pipeline without and
    with pkilint, ``repeat`` times in that order (alternating, so that a host whose speed drifts
    affects all three alike); the table shows the median and, when repeated, the range."""
    if repeat < 1:
        raise ValueError("--repeat must be at least 1")
    tmp = Path(tempfile.mkdtemp(prefix="qtsp-bench-"))
    tokendir = tmp / "tokens"
    tokendir.mkdir()
    conf = tmp / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n")
    rows: list[Row] = []
    try:
        with _environment({"SOFTHSM2_CONF": str(conf)}):
            for backend in backends:
                for algorithm in algorithms:
                    home = tmp / f"{backend}-{algorithm}"
                    env = {"QTSP_KEY_BACKEND": backend, "QTSP_CA_ALGORITHM": algorithm}
                    if database_url:
                        env["QTSP_DATABASE_URL"] = database_url
                    if backend == "pkcs11":
                        env.update(_softhsm_token(tokendir))
                    signs: list[float] = []
                    no_lints: list[float] = []
                    with_lints: list[float] = []
                    with _environment(env):
                        _init(home)
                        for rep in range(repeat):
                            signs.append(_raw_sign(home))
                            no_lints.append(_pipeline(home, count, False, workers, rep))
                            with_lints.append(_pipeline(home, count, True, workers, rep))
                            console.print(
                                f"{backend:7} {algorithm:9} sign/s {signs[-1]:8.0f}  pipeline/s {no_lints[-1]:6.0f}"
                                f" (no pkilint)  {with_lints[-1]:6.0f} (pkilint)"
                            )
                    rows.append(Row(backend, algorithm, tuple(signs), tuple(no_lints), tuple(with_lints)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = Table(
        title=f"qtsp bench issue: {count} certificates per figure, {workers} worker process(es), "
        f"{'SQLite' if not database_url else database_url.split(':')[0]}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}" + (f"; median, range below, of {repeat} runs" if repeat > 1 else "")
    )
    for col in ("backend", "issuer key", "raw sign/s", "pipeline/s no pkilint", "ratio", "pipeline/s pkilint", "ratio"):
        table.add_column(col, justify="right", overflow="fold")
    for r in rows:
        table.add_row(
            r.backend,
            r.algorithm,
            _spread(r.sign_per_s, ".0f"),
            _spread(r.pipeline_no_lint, ".0f"),
            _spread(r.ratios(r.pipeline_no_lint), ".3f"),
            _spread(r.pipeline_lint, ".0f"),
            _spread(r.ratios(r.pipeline_lint), ".3f"),
        )
    console.print(table)
    console.print(
        "ratio = pipeline certificates/s divided by raw signatures/s of the same issuer key, measured just before."
    )
    return rows


# ==============================================================================================
# qtsp bench crl


CRL_BENCH_CAS: Final = ("qes", "seal", "auth")
"""One home holds every size: the issuing CAs get 10k, 100k and 1M entries (one size each)."""

_REASONS: Final = ("keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged")


@dataclass(frozen=True)
class CRLRow:
    size: int
    seconds: float
    peak_mb: float
    base_mb: float
    bytes: int
    builder_seconds: float | None
    builder_peak_mb: float | None
    openssl_seconds: float | None
    openssl_peak_mb: float | None


def _synthetic_serial(i: int, rnd: int) -> int:
    """127-bit serials (16 content octets, so every entry has one length), unique by ``i``."""
    return (1 << 126) | (i << 40) | (rnd & ((1 << 40) - 1))


def _entry_templates(at: dt.datetime) -> list[tuple[bytes, bytes]]:
    """(prefix, suffix) around the 16 serial octets, one per reason: entries without re-encoding."""
    from ca.asn1.crl_entry import crl_entry_der

    probe = _synthetic_serial(0x1234, 0x5678)
    octets = probe.to_bytes(16, "big")
    out = []
    for reason in _REASONS:
        der = crl_entry_der(probe, at, reason)
        assert der.count(octets) == 1
        prefix, suffix = der.split(octets)
        out.append((prefix, suffix))
    return out


def _serials(size: int, seed: int) -> list[int]:
    import random

    rng = random.Random(seed)  # noqa: S311 - benchmark data, not key material
    return [_synthetic_serial(i, rng.getrandbits(40)) for i in range(size)]


def _fill(home: Path, ca_name: str, size: int, at: dt.datetime) -> None:
    """Insert ``size`` revoked status entries for ``ca_name`` in batches (pre-encoded entries)."""
    from ca.store import crl_repo
    from ca.store import repository as repo
    from qtsp.config import load_config
    from qtsp.wiring import runtime

    templates = _entry_templates(at)
    not_after = at + dt.timedelta(days=365)
    with runtime(load_config(home)) as rt:
        with rt.db.read() as s:
            issuer_id = next(c.id for c in repo.list_cas(s) if c.name == ca_name)
        serials = _serials(size, size)
        for start in range(0, size, 50_000):
            rows = []
            for i in range(start, min(size, start + 50_000)):
                serial = serials[i]
                prefix, suffix = templates[i % len(templates)]
                rows.append(
                    {
                        "issuer_id": issuer_id,
                        "serial": format(serial, "x"),
                        "certificate_id": None,
                        "reason": _REASONS[i % len(_REASONS)],
                        "revoked_at": at,
                        "invalidity_date": None,
                        "not_after": not_after,
                        "received_at": at,
                        "requested_by": "bench",
                        "decided_by": "bench",
                        "crl_entry_der": prefix + serial.to_bytes(16, "big") + suffix,
                        "created_at": at,
                    }
                )
            with rt.db.write() as s:
                crl_repo.bulk_add_status_entries(s, rows)


def _hwm_mb(pid: int | str = "self") -> float:
    """Peak resident set size (``VmHWM``) of a process since its last exec, in MiB.

    Not ``ru_maxrss``: on Linux that also counts the image a child had before exec (a copy of a
    large parent), which made every child look as large as the benchmark's parent.
    """
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _child_ours(home: str, ca_name: str) -> dict[str, float]:
    """In a fresh process: warm up (imports, pkilint validators, throwaway key) on an empty CRL,
    then time one publication of ``ca_name``'s CRL (DB read + build + HSM sign + verify + lint + store)."""
    from qtsp.config import load_config
    from qtsp.wiring import os_actor, runtime

    with runtime(load_config(home)) as rt:
        publisher = rt.crl()
        actor = os_actor("benchmark")
        publisher.publish("root", actor, force=True)  # warm-up; the root's CARL is empty here
        base = _hwm_mb()
        start = time.perf_counter()
        done = publisher.publish(ca_name, actor, force=True)
        seconds = time.perf_counter() - start
        assert done is not None
        return {"seconds": seconds, "peak_mb": _hwm_mb(), "base_mb": base, "bytes": float(done.size)}


def _child_builder(size: int, at_iso: str) -> dict[str, float]:
    """Baseline: cryptography's CRL builder fed every entry at once (FIELD-NOTES), same serials,
    reasons and dates, signed with an in-memory P-256 key; entries built from values in memory
    (no database read, which favours the baseline)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    at = dt.datetime.fromisoformat(at_iso)
    key = ec.generate_private_key(ec.SECP256R1())
    flags = {
        "keyCompromise": x509.ReasonFlags.key_compromise,
        "superseded": x509.ReasonFlags.superseded,
        "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
        "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    }
    reasons = [x509.CRLReason(flags[r]) for r in _REASONS]
    serials = _serials(size, size)
    base = _hwm_mb()
    start = time.perf_counter()
    revoked = [
        x509.RevokedCertificateBuilder()
        .serial_number(serial)
        .revocation_date(at)
        .add_extension(reasons[i % len(reasons)], critical=False)
        .build()
        for i, serial in enumerate(serials)
    ]
    name = x509.Name.from_rfc4514_string("CN=Bench CA,O=Bench,C=DE")
    crl = x509.CertificateRevocationListBuilder(
        issuer_name=name, last_update=at, next_update=at + dt.timedelta(days=7), revoked_certificates=revoked
    ).sign(key, hashes.SHA256())
    der = crl.public_bytes(serialization.Encoding.DER)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": _hwm_mb(), "base_mb": base, "bytes": float(len(der))}


def _child_main(argv: Sequence[str]) -> None:
    import json
    import sys

    kind = argv[0]
    result = _child_ours(argv[1], argv[2]) if kind == "ours" else _child_builder(int(argv[1]), argv[2])
    sys.stdout.write(json.dumps(result) + "\n")


def _run_child(*args: str) -> dict[str, float]:
    import json
    import sys

    proc = subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-c", "import sys, qtsp.bench as b; b._child_main(sys.argv[1:])", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {args[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _openssl_gencrl(work: Path, size: int, at: dt.datetime) -> dict[str, float] | None:
    """Baseline: ``openssl ca -gencrl`` over an index of ``size`` revoked entries (P-256, SHA-256).

    Time and peak memory (``VmHWM`` of the openssl process, polled every 10 ms) of the command alone.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    work.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string("CN=Bench CA,O=Bench,C=DE")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(at - dt.timedelta(days=1))
        .not_valid_after(at + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    (work / "ca.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (work / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    revoked = at.strftime("%y%m%d%H%M%SZ")
    expiry = (at + dt.timedelta(days=365)).strftime("%y%m%d%H%M%SZ")
    with (work / "index.txt").open("w") as fh:
        for i, serial in enumerate(_serials(size, size)):
            fh.write(f"R\t{expiry}\t{revoked},{_REASONS[i % len(_REASONS)]}\t{serial:032X}\tunknown\t/CN=c{i}\n")
    (work / "crlnumber").write_text("01\n")
    (work / "openssl.cnf").write_text(
        f"[ca]\ndefault_ca = bench\n[bench]\ndir = {work}\ndatabase = $dir/index.txt\n"
        "crlnumber = $dir/crlnumber\ncertificate = $dir/ca.crt\nprivate_key = $dir/ca.key\n"
        "default_md = sha256\ndefault_crl_days = 7\ncrl_extensions = crl_ext\n"
        "[crl_ext]\nauthorityKeyIdentifier = keyid:always\n"
    )
    start = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 - fixed arguments
        [openssl, "ca", "-gencrl", "-config", str(work / "openssl.cnf"), "-out", str(work / "crl.pem")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0.0
    while proc.poll() is None:  # VmHWM only grows: the last reading before exit is the peak (±10 ms)
        with contextlib.suppress(OSError, ValueError):
            peak = max(peak, _hwm_mb(proc.pid))
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"openssl ca -gencrl failed with exit code {proc.returncode}")
    size_der = len(x509.load_pem_x509_crl((work / "crl.pem").read_bytes()).public_bytes(serialization.Encoding.DER))
    return {"seconds": seconds, "peak_mb": peak, "bytes": float(size_der)}


def run_crl_bench(*, sizes: Sequence[int], openssl: bool, builder: bool, console: Console) -> list[CRLRow]:
    """Fill one throwaway home (SQLite, soft keys) with ``sizes`` entries on separate CAs, then
    measure each publication in a fresh process, with the baselines in the same run."""
    if len(sizes) > len(CRL_BENCH_CAS):
        raise ValueError(f"at most {len(CRL_BENCH_CAS)} sizes per run")
    tmp = Path(tempfile.mkdtemp(prefix="qtsp-crlbench-"))
    rows: list[CRLRow] = []
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        home = tmp / "home"
        with _environment({"QTSP_KEY_BACKEND": "soft", "QTSP_CA_ALGORITHM": "ec-p256"}):
            _init(home)
            for ca_name, size in zip(CRL_BENCH_CAS, sizes, strict=False):
                fill_start = time.perf_counter()
                _fill(home, ca_name, size, at)
                console.print(
                    f"{size:>9,} entries inserted for CA {ca_name} in {time.perf_counter() - fill_start:.1f} s"
                )
            for ca_name, size in zip(CRL_BENCH_CAS, sizes, strict=False):
                ours = _run_child("ours", str(home), ca_name)
                base = _run_child("builder", str(size), at.isoformat()) if builder else None
                ossl = _openssl_gencrl(tmp / f"openssl-{size}", size, at) if openssl else None
                row = CRLRow(
                    size=size,
                    seconds=ours["seconds"],
                    peak_mb=ours["peak_mb"],
                    base_mb=ours["base_mb"],
                    bytes=int(ours["bytes"]),
                    builder_seconds=base["seconds"] if base else None,
                    builder_peak_mb=base["peak_mb"] if base else None,
                    openssl_seconds=ossl["seconds"] if ossl else None,
                    openssl_peak_mb=ossl["peak_mb"] if ossl else None,
                )
                rows.append(row)
                console.print(
                    f"{size:>9,}: ours {row.seconds:.2f} s {row.peak_mb:.0f} MB"
                    + (f" | builder {row.builder_seconds:.2f} s {row.builder_peak_mb:.0f} MB" if base else "")
                    + (f" | openssl {row.openssl_seconds:.2f} s {row.openssl_peak_mb:.0f} MB" if ossl else "")
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()
    table = Table(
        title=f"qtsp bench crl: SQLite, soft P-256 key, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    for col in (
        "entries",
        "publish s",
        "peak RSS MB",
        "RSS before MB",
        "CRL bytes",
        "builder s",
        "builder MB",
        "openssl s",
        "openssl MB",
        "time vs builder",
        "time vs openssl",
    ):
        table.add_column(col, justify="right")

    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for r in rows:
        table.add_row(
            f"{r.size:,}",
            f"{r.seconds:.2f}",
            f"{r.peak_mb:.0f}",
            f"{r.base_mb:.0f}",
            f"{r.bytes:,}",
            fmt(r.builder_seconds, ".2f"),
            fmt(r.builder_peak_mb, ".0f"),
            fmt(r.openssl_seconds, ".2f"),
            fmt(r.openssl_peak_mb, ".0f"),
            fmt(r.builder_seconds / r.seconds if r.builder_seconds else None, ".1f") + "x",
            fmt(r.openssl_seconds / r.seconds if r.openssl_seconds else None, ".1f") + "x",
        )
    console.print(table)
    console.print(
        "publish = one `publish(force)` of a CA's full CRL in a fresh process after a warm-up publication: "
        "locked DB read of the stored entries, header build, signature, parse + verify, pkilint (sample), "
        "history row + audit, commit, publish-directory file. Peak = VmHWM of that process (imports "
        "included); 'RSS before' = VmHWM after the warm-up. Ratios > 1 mean ours is faster."
    )
    return rows


# ----------------------------------------------------------------------------------------------
# pkilint dispatch (``qtsp bench lint``)


def _lint_bench_certificates(count: int) -> list[bytes]:
    """``count`` certificates of the issuance benchmark's kind (qes-natural with organisation and
    Admission, each for another person and key) from one throwaway CA, with the public base URL
    the benchmark home uses."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from ca.issuance.builder import IssuerView, build_end_entity, ca_urls
    from ca.profiles import load_builtin_profiles
    from ca.profiles.subject import SubjectInput

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Benchmark QTSP"),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "NTRDE-HRB1"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Benchmark Qualified CA"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pds = (("https://qtsp.example.com/pds-en.pdf", "en"), ("https://qtsp.example.com/pds-de.pdf", "de"))
    issuer = IssuerView("qes", ca_cert, ca_urls("http://qtsp.example.com", "qes"), "1.3.6.1.4.1.32473.1", pds)
    profile = load_builtin_profiles()["qes-natural"]
    out = []
    for i in range(count):
        builder = build_end_entity(
            profile=profile,
            issuer=issuer,
            subject=SubjectInput.from_json_obj(bench_subject(i)),
            public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
            serial=x509.random_serial_number(),
            not_before=now,
            not_after=now + dt.timedelta(days=365),
        )
        out.append(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    return out


@dataclass(frozen=True, slots=True)
class LintRow:
    round: int
    pkilint_ms: float
    indexed_ms: float
    cached_ms: float
    decode_ms: float

    @property
    def ratio(self) -> float:
        return self.pkilint_ms / self.cached_ms


def run_lint_bench(*, count: int, rounds: int, console: Console) -> list[LintRow]:
    """Milliseconds per certificate for pkilint's ETSI + RFC 5280 validation, over ``count``
    certificates each for another person: pkilint as it comes, with the gate's indexed dispatch,
    and with the indexed dispatch plus the gate's decode cache (what the gate runs), alternating
    in one process, after checking all three give the same results on every certificate."""
    from pkilint import etsi, loader
    from pkilint.etsi import etsi_constants
    from pkilint.pkix import certificate

    from ca.issuance.lint import PROFILE_CERTIFICATE_TYPES, _dismantle, cached_decoding, index_containers

    cert_type = etsi_constants.CertificateType[PROFILE_CERTIFICATE_TYPES["qes-natural"]]

    def build() -> Any:
        return certificate.create_pkix_certificate_validator_container(
            etsi.create_decoding_validators(cert_type), etsi.create_validators(cert_type)
        )

    stock, indexed = build(), index_containers(build())
    ders = _lint_bench_certificates(count)
    load = loader.RFC5280CertificateDocumentLoader().load_der_document

    def stock_run(der: bytes) -> Any:
        return stock.validate(load(der, "tbs").root)

    def indexed_run(der: bytes) -> Any:
        return indexed.validate(load(der, "tbs").root)

    def cached_run(der: bytes) -> Any:
        doc = load(der, "tbs")  # as the gate does: the document's root is never cached ...
        with cached_decoding():
            results = indexed.validate(doc.root)
        _dismantle(doc)  # ... and its node tree is unlinked afterwards (the results keep their paths)
        return results

    def findings(results: Any) -> list[tuple[str, str, list[str]]]:
        return [
            (r.validator.name, str(r.node.path), [str(d.finding.code) for d in r.finding_descriptions]) for r in results
        ]

    for der in ders:
        expected = findings(stock_run(der))
        if findings(indexed_run(der)) != expected or findings(cached_run(der)) != expected:
            raise RuntimeError("the gate's pkilint disagrees with pkilint's own: not benchmarking")

    def per_cert(run: Callable[[bytes], object]) -> float:
        start = time.perf_counter()
        for der in ders:
            run(der)
        return (time.perf_counter() - start) / count * 1000

    rows = []
    for i in range(1, rounds + 1):
        a = per_cert(stock_run)
        b = per_cert(indexed_run)
        c = per_cert(cached_run)
        d = per_cert(lambda der: load(der, "tbs"))
        rows.append(LintRow(i, a, b, c, d))
    table = Table(title=f"qtsp bench lint: pkilint on {count} qes-natural certificates, each for another person")
    for col in (
        "round",
        "pkilint ms",
        "indexed dispatch ms",
        "indexed + decode cache ms (the gate)",
        "ratio",
        "certificate decoding ms",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r.round),
            f"{r.pkilint_ms:.2f}",
            f"{r.indexed_ms:.2f}",
            f"{r.cached_ms:.2f}",
            f"{r.ratio:.2f}",
            f"{r.decode_ms:.2f}",
        )
    console.print(table)
    console.print(
        "ratio = pkilint as it comes divided by the gate, same process, same certificates; decoding = the "
        "certificate's own DER into pkilint's document, part of every column."
    )
    return rows
