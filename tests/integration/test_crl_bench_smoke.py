"""`qtsp bench crl` runs end to end with tiny counts (a smoke test, not a timing)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_bench_crl_runs_and_prints_ratios() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "qtsp.cli", "bench", "crl", "--sizes", "50,1200"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("QTSP_")}, "COLUMNS": "250"},
    )
    assert proc.returncode == 0, proc.stderr
    for word in ("publish s", "peak RSS MB", "builder s", "openssl s", "1,200", "VmHWM"):
        assert word in proc.stdout, word
