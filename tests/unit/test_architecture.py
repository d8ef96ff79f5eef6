"""DESIGN.md layering, checked on the source: qtsp -> ra -> ca -> hsm, never back; only ca/store
(and migrations) import SQLAlchemy, only hsm/pkcs11 imports a PKCS#11 binding, only ca/asn1
imports asn1crypto."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["hsm", "ca", "ra", "qtsp"]  # each may import only itself and layers to its left


def _imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", LAYERS)
def test_dependency_direction(package: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(package) + 1])
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _sources(package)
        for name in _imports(path)
        if name.split(".")[0] in LAYERS and name.split(".")[0] not in allowed
    ]
    assert bad == []


@pytest.mark.parametrize(
    ("library", "allowed_prefixes"),
    [
        ("sqlalchemy", ("ca/store/", "ra/store/", "migrations/")),
        ("pkcs11", ("hsm/pkcs11/",)),
        ("PyKCS11", ()),
        ("asn1crypto", ("ca/asn1/",)),
    ],
)
def test_library_boundaries(library: str, allowed_prefixes: tuple[str, ...]) -> None:
    bad = []
    for package in [*LAYERS, "migrations"]:
        for path in _sources(package):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(allowed_prefixes):
                continue
            if any(name.split(".")[0] == library for name in _imports(path)):
                bad.append(rel)
    assert bad == []
