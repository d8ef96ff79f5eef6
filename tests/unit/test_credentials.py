"""The product's Argon2 parameters (tests make cheaper hashes in their own process only)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_production_argon2_parameters_are_rfc9106_strength() -> None:
    code = (
        "import json, ra.credentials as c; h = c._HASHER; "
        "print(json.dumps([h.time_cost, h.memory_cost, h.parallelism, c.hash_password('x' * 12)[:9]]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    time_cost, memory_kib, parallelism, prefix = json.loads(proc.stdout)
    # RFC 9106 §4 second recommended option / OWASP: Argon2id, t >= 2 with m >= 19 MiB.
    assert prefix == "$argon2id"
    assert time_cost >= 2 and memory_kib >= 19 * 1024 and parallelism >= 1
