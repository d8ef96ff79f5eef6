"""`qtsp bench issue` runs end to end (a handful of certificates: a smoke test, not a timing)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import require, softhsm_available


def test_bench_issue_runs_and_prints_figures() -> None:
    require(softhsm_available(), "SoftHSM2")
    proc = subprocess.run(
        [sys.executable, "-m", "qtsp.cli", "bench", "issue", "--count", "4", "--algorithm", "ec-p256", "--repeat", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        # Piped, with no COLUMNS: rich would assume 80 columns; the bench widens its table itself.
        env={k: v for k, v in os.environ.items() if not k.startswith("QTSP_") and k != "COLUMNS"},
    )
    assert proc.returncode == 0, proc.stderr
    for word in ("raw sign/s", "pipeline/s", "soft", "pkcs11", "ratio", "range below, of 2 runs"):
        assert word in proc.stdout
    # Each range ("low–high") stays whole on its line: folded, its high end would lose digits.
    ranges = [cell.strip().split("–") for line in proc.stdout.splitlines() for cell in line.split("│") if "–" in cell]
    assert ranges and all(float(low) <= float(high) for low, high in ranges), proc.stdout
    # Each repetition prints its own line before the table: two per backend.
    assert sum(1 for line in proc.stdout.splitlines() if "sign/s" in line and "(no pkilint)" in line) == 4


def test_bench_spread_shows_median_and_range() -> None:
    from qtsp.bench import Row, _spread

    assert _spread([730.4], ".0f") == "730"
    assert _spread([749.0, 706.0, 730.0], ".0f") == "730\n706–749"
    row = Row("soft", "ec-p256", (1000.0, 2000.0), (500.0, 800.0), (100.0, 300.0))
    assert row.ratios(row.pipeline_no_lint) == (0.5, 0.4)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(("--repeat", "0"), "--repeat", id="zero-repetitions"),
        # `qtsp init` runs once per configuration and a database holds one hierarchy: refused up
        # front, before any work, instead of failing at the second configuration.
        pytest.param(("--database", "sqlite:////nonexistent/x.db"), "--database holds one CA hierarchy", id="database"),
    ],
)
def test_bench_issue_refuses_bad_arguments_in_one_line(args: tuple[str, ...], words: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "qtsp.cli", "bench", "issue", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0 and words in proc.stderr and "Traceback" not in proc.stderr


def test_bench_lint_runs_and_checks_agreement_first() -> None:
    from io import StringIO

    from rich.console import Console

    from qtsp.bench import run_lint_bench

    out = StringIO()
    [row] = run_lint_bench(count=3, rounds=1, console=Console(file=out, width=200))
    assert row.pkilint_ms > 0 and row.indexed_ms > 0 and row.decode_ms > 0
    assert "indexed dispatch" in out.getvalue()
