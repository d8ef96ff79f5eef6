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
import multiprocessing as mp
import os
import platform
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

__all__ = ["run_issue_bench"]

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass(frozen=True)
class Row:
    backend: str
    algorithm: str
    sign_per_s: float
    pipeline_no_lint: float
    pipeline_lint: float


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


def _worker(home: str, count: int, lint: bool, barrier: object, results: object) -> None:
    """Issue ``count`` qes-natural certificates; report (start, end) wall-clock times."""
    from ca.profiles.subject import SubjectInput
    from qtsp.config import load_config
    from qtsp.demo import DEMO_SUBJECTS, fresh_csr
    from qtsp.wiring import os_actor, runtime

    with runtime(load_config(home)) as rt:
        service = rt.issuance(pkilint=lint)
        if service.gate is not None:
            service.gate.warm(["qes-natural"])
        subject = SubjectInput.from_json_obj(DEMO_SUBJECTS["qes-natural"])
        actor = os_actor()
        csrs = [fresh_csr() for _ in range(count)]
        service.issue(profile_name="qes-natural", csr=fresh_csr(), subject=subject, actor=actor)  # warm caches
        barrier.wait()  # type: ignore[attr-defined]
        start = time.time()
        for csr in csrs:
            service.issue(profile_name="qes-natural", csr=csr, subject=subject, actor=actor)
        results.put((start, time.time()))  # type: ignore[attr-defined]


def _pipeline(home: Path, count: int, lint: bool, workers: int) -> float:
    ctx = mp.get_context("spawn")  # never fork after C_Initialize (FIELD-NOTES)
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    per = max(1, count // workers)
    procs = [ctx.Process(target=_worker, args=(str(home), per, lint, barrier, results)) for _ in range(workers)]
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
    from cryptography.hazmat.primitives.asymmetric import ec, padding

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
            if isinstance(key, ec.EllipticCurvePrivateKey):
                key.sign(data, ec.ECDSA(digest_alg))
            else:
                key.sign(data, padding.PKCS1v15(), digest_alg)
            n += 1
        return float(n / (time.perf_counter() - start))


def _init(home: Path) -> None:
    from qtsp.config import load_config
    from qtsp.wiring import initialise, os_actor

    initialise(load_config(home, base_url="http://qtsp.example.com"), os_actor("benchmark"))


def run_issue_bench(
    *,
    count: int,
    backends: Sequence[str],
    algorithms: Sequence[str],
    workers: int,
    database_url: str | None,
    console: Console,
) -> list[Row]:
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
                    with _environment(env):
                        _init(home)
                        sign = _raw_sign(home)
                        no_lint = _pipeline(home, count, False, workers)
                        with_lint = _pipeline(home, count, True, workers)
                    row = Row(backend, algorithm, sign, no_lint, with_lint)
                    rows.append(row)
                    console.print(
                        f"{backend:7} {algorithm:9} sign/s {sign:8.0f}  pipeline/s {no_lint:6.0f} (no pkilint)"
                        f"  {with_lint:6.0f} (pkilint)"
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = Table(
        title=f"qtsp bench issue: {count} certificates per figure, {workers} worker process(es), "
        f"{'SQLite' if not database_url else database_url.split(':')[0]}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    for col in ("backend", "issuer key", "raw sign/s", "pipeline/s no pkilint", "ratio", "pipeline/s pkilint", "ratio"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r.backend,
            r.algorithm,
            f"{r.sign_per_s:.0f}",
            f"{r.pipeline_no_lint:.0f}",
            f"{r.pipeline_no_lint / r.sign_per_s:.3f}",
            f"{r.pipeline_lint:.0f}",
            f"{r.pipeline_lint / r.sign_per_s:.3f}",
        )
    console.print(table)
    console.print("ratio = pipeline certificates/s divided by raw signatures/s of the same issuer key, same run.")
    return rows
