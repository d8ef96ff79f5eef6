"""`qtsp bench issue` runs end to end (a handful of certificates: a smoke test, not a timing)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import require, softhsm_available


def test_bench_issue_runs_and_prints_figures() -> None:
    require(softhsm_available(), "SoftHSM2")
    proc = subprocess.run(
        [sys.executable, "-m", "qtsp.cli", "bench", "issue", "--count", "4", "--algorithm", "ec-p256"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("QTSP_")},
    )
    assert proc.returncode == 0, proc.stderr
    for word in ("raw sign/s", "pipeline/s", "soft", "pkcs11", "ratio"):
        assert word in proc.stdout


def test_bench_lint_runs_and_checks_agreement_first() -> None:
    from io import StringIO

    from rich.console import Console

    from qtsp.bench import run_lint_bench

    out = StringIO()
    [row] = run_lint_bench(count=3, rounds=1, console=Console(file=out, width=200))
    assert row.pkilint_ms > 0 and row.indexed_ms > 0 and row.decode_ms > 0
    assert "indexed dispatch" in out.getvalue()
