"""Fixtures for the hsm tests: a temporary SoftHSM2 installation for the whole test session.

SoftHSM2 reads ``SOFTHSM2_CONF`` when the module is initialised (FIELD-NOTES #5) and the module is
initialised once per process, so there must be exactly one configuration per test session.  The
suite's ``tests/conftest.py`` sets one up at import time; these fixtures reuse it (its token
directory) and write their own only when ``SOFTHSM2_CONF`` is not set, e.g. when this directory is
used on its own.  Every token the tests create lives in that one temporary token directory.

If SoftHSM2 is missing the PKCS#11 tests are skipped, but only when the ``CI`` variable is unset:
in CI they fail, so that they can never be skipped silently there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
SO_PIN = "10203040"
USER_PIN = "pin-4711-secret"
MAIN_TOKEN = f"hsm-{uuid.uuid4().hex[:8]}"


@dataclass
class SoftHsm:
    """A private SoftHSM2 configuration with helpers to create, delete and restore tokens."""

    module: str
    util: str
    conf: Path
    tokendir: Path
    lock_dir: Path
    pin: str = USER_PIN
    so_pin: str = SO_PIN
    label: str = MAIN_TOKEN
    token_dirs: dict[str, Path] = field(default_factory=dict)

    def _util(self, *args: str) -> None:
        subprocess.run([self.util, *args], check=True, capture_output=True, env=os.environ.copy())

    def init_token(self, label: str) -> Path:
        """Initialise a new token in a free slot and return its directory."""
        before = set(self.tokendir.iterdir())
        self._util("--init-token", "--free", "--label", label, "--so-pin", self.so_pin, "--pin", self.pin)
        created = set(self.tokendir.iterdir()) - before
        assert len(created) == 1, created
        self.token_dirs[label] = created.pop()
        return self.token_dirs[label]

    def delete_token(self, label: str) -> None:
        """Delete a token the way an operator would (``softhsm2-util --delete-token``)."""
        self._util("--delete-token", "--token", label)

    def backend(self, label: str | None = None, **kwargs: Any) -> Any:
        """A Pkcs11Backend on ``label`` (default: the main token) using the test lock directory."""
        from hsm.pkcs11 import Pkcs11Backend

        kwargs.setdefault("lock_dir", self.lock_dir)
        return Pkcs11Backend(self.module, label or self.label, self.pin, **kwargs)


def _in_ci() -> bool:
    return bool(os.environ.get("CI"))


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """The SoftHSM2 installation with one initialised token (label ``hsm-…``, see :data:`MAIN_TOKEN`)."""
    module = os.environ.get("SOFTHSM2_MODULE") or next(
        (path for path in MODULE_CANDIDATES if Path(path).exists()), None
    )
    util = shutil.which("softhsm2-util")
    if module is None or not Path(module).exists() or util is None:
        message = "SoftHSM2 is not installed (libsofthsm2.so and softhsm2-util are needed)"
        if _in_ci():
            pytest.fail(f"{message}; PKCS#11 tests must not be skipped in CI", pytrace=False)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("softhsm")
    lock_dir = root / "locks"
    lock_dir.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        existing = _tokendir_of(os.environ.get("SOFTHSM2_CONF"))
        if existing is not None:
            conf, tokendir = Path(os.environ["SOFTHSM2_CONF"]), existing
        else:
            tokendir = root / "tokens"
            tokendir.mkdir()
            conf = root / "softhsm2.conf"
            conf.write_text(
                f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n",
                encoding="utf-8",
            )
            patch.setenv("SOFTHSM2_CONF", str(conf))
        hsm = SoftHsm(module=module, util=util, conf=conf, tokendir=tokendir, lock_dir=lock_dir)
        hsm.init_token(MAIN_TOKEN)
        yield hsm


def _tokendir_of(conf: str | None) -> Path | None:
    """The token directory of an existing SoftHSM2 configuration, if it is a temporary one.

    A configuration pointing anywhere else (for example the system's ``/var/lib/softhsm/tokens``)
    is never reused: these tests create and delete tokens.
    """
    if not conf or not Path(conf).is_file():
        return None
    temp_root = Path(tempfile.gettempdir()).resolve()
    for line in Path(conf).read_text(encoding="utf-8").splitlines():
        key, _sep, value = line.partition("=")
        if key.strip() == "directories.tokendir" and value.strip():
            tokendir = Path(value.strip()).resolve()
            return tokendir if tokendir.is_relative_to(temp_root) and tokendir.is_dir() else None
    return None


@pytest.fixture
def new_token(softhsm: SoftHsm) -> str:
    """A fresh token of its own, for tests that delete or damage their token."""
    label = f"t-{uuid.uuid4().hex[:12]}"
    softhsm.init_token(label)
    return label


@pytest.fixture(scope="module")
def backend(softhsm: SoftHsm) -> Iterator[Any]:
    """A Pkcs11Backend on the main token, shared by the tests of one module."""
    with softhsm.backend() as pkcs11_backend:
        yield pkcs11_backend
