"""Package boundaries: lazy PKCS#11 import, no upward imports, one place that imports the binding."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

HSM_DIR = Path(__file__).resolve().parents[2] / "hsm"
REPO_ROOT = HSM_DIR.parent


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_importing_hsm_does_not_load_a_pkcs11_binding() -> None:
    code = (
        "import sys, hsm\n"
        "assert 'pkcs11' not in sys.modules and 'PyKCS11' not in sys.modules, 'binding imported'\n"
        "assert hsm.Pkcs11Backend.__name__ == 'Pkcs11Backend'\n"
        "assert 'pkcs11' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_hsm_never_imports_ca_ra_or_qtsp() -> None:
    for path in HSM_DIR.rglob("*.py"):
        for name in _imported_modules(path):
            assert name.split(".")[0] not in {"ca", "ra", "qtsp"}, f"{path} imports {name}"


def test_only_hsm_pkcs11_imports_the_binding() -> None:
    for path in HSM_DIR.rglob("*.py"):
        if "pkcs11" in path.relative_to(HSM_DIR).parts[:-1]:
            continue
        for name in _imported_modules(path):
            assert name.split(".")[0] not in {"pkcs11", "PyKCS11"}, f"{path} imports {name}"
