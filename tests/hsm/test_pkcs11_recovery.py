"""Recovery without restarting the process: lost sessions, a re-initialised or vanished token."""

from __future__ import annotations

import ctypes
import shutil
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import exceptions as p11

from hsm.api import HSMUnavailable, KeyAlgorithm, KeyNotFound, KeyRef
from hsm.pkcs11 import Pkcs11Backend
from tests.hsm.conftest import SoftHsm
from tests.hsm.pki import sign_all, verify_all, verify_signature

pytestmark = pytest.mark.hsm

MESSAGE = b"recovery"


@pytest.fixture
def own(softhsm: SoftHsm, new_token: str) -> Iterator[tuple[Pkcs11Backend, KeyRef]]:
    """A backend on a token of its own, with one P-256 key, used once already."""
    with softhsm.backend(new_token, pool_size=2) as backend:
        ref = backend.generate("recovery-key", KeyAlgorithm.EC_P256)
        _sign_and_verify(backend, ref)
        yield backend, ref


def _sign_and_verify(backend: Pkcs11Backend, ref: KeyRef) -> None:
    key = backend.signing_key(ref)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    verify_signature(key.public_key(), key.sign(MESSAGE, ec.ECDSA(hashes.SHA256())), MESSAGE, hashes.SHA256())


def _open_sessions(backend: Pkcs11Backend) -> list[Any]:
    """The pool's idle sessions, and the process's session that holds the login (the last)."""
    conn = backend._conn
    assert conn is not None
    assert conn.login is not None
    return [*(lease.session for lease in conn.idle), conn.login.session]


def test_sessions_closed_behind_its_back(softhsm: SoftHsm, own: tuple[Pkcs11Backend, KeyRef]) -> None:
    backend, ref = own
    before = backend.reinitialisations
    # Close the pool's sessions and the login session directly; closing the logged-in one also
    # logs the token out.
    for session in _open_sessions(backend):
        session.close()
    _sign_and_verify(backend, ref)
    assert backend.reinitialisations == before + 1


def test_close_all_sessions_through_a_second_handle(softhsm: SoftHsm, own: tuple[Pkcs11Backend, KeyRef]) -> None:
    backend, ref = own
    conn = backend._conn
    assert conn is not None
    slot_id = conn.token.slot.slot_id
    # A second handle to the same module (as another component of the process would have)
    # calls C_CloseAllSessions on the token's slot.
    module = ctypes.CDLL(softhsm.module)
    before = backend.reinitialisations
    assert module.C_CloseAllSessions(ctypes.c_ulong(slot_id)) == 0
    _sign_and_verify(backend, ref)
    assert backend.reinitialisations == before + 1


def test_library_finalised_behind_its_back(softhsm: SoftHsm, own: tuple[Pkcs11Backend, KeyRef]) -> None:
    backend, ref = own
    pkcs11.lib(softhsm.module).reinitialize()
    _sign_and_verify(backend, ref)
    assert backend.has_key(ref)


def _copy_token(softhsm: SoftHsm, label: str, tmp_path: Path) -> tuple[Path, Path]:
    token_dir = softhsm.token_dirs[label]
    saved = tmp_path / "saved-token"
    shutil.copytree(token_dir, saved)
    return token_dir, saved


@pytest.mark.parametrize("noticed", [False, True], ids=["unnoticed", "noticed"])
def test_token_deleted_and_restored(
    softhsm: SoftHsm, new_token: str, own: tuple[Pkcs11Backend, KeyRef], tmp_path: Path, noticed: bool
) -> None:
    backend, ref = own
    key = backend.signing_key(ref)
    token_dir, saved = _copy_token(softhsm, new_token, tmp_path)
    softhsm.delete_token(new_token)
    assert not token_dir.exists()
    if noticed:
        # Another user of the module in this process looks at the tokens while the token is
        # gone: SoftHSM2 then drops its in-memory objects, and the backend's handles are dead.
        with suppress(p11.PKCS11Error):
            list(pkcs11.lib(softhsm.module).get_tokens())
    shutil.copytree(saved, token_dir)
    before = backend.reinitialisations
    # The same backend object and the same key object keep working.
    assert backend.signing_key(ref) is key
    verify_all(sign_all(key, hashes.SHA256()), key.public_key())
    assert backend.info().token_id == ref.token
    if noticed:
        assert backend.reinitialisations == before + 1


def test_token_gone_then_back(
    softhsm: SoftHsm, new_token: str, own: tuple[Pkcs11Backend, KeyRef], tmp_path: Path
) -> None:
    backend, ref = own
    key = backend.signing_key(ref)
    token_dir, saved = _copy_token(softhsm, new_token, tmp_path)
    softhsm.delete_token(new_token)
    with pytest.raises((HSMUnavailable, KeyNotFound)) as lost:
        key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    message = str(lost.value)
    print(message)
    assert new_token in message
    assert "not available" in message or "not usable" in message
    with pytest.raises(HSMUnavailable, match="not available"):
        backend.info()
    with pytest.raises(HSMUnavailable):
        backend.has_key(ref)
    shutil.copytree(saved, token_dir)
    _sign_and_verify(backend, ref)
    assert backend.info().token_id == ref.token


def test_key_deleted_is_key_not_found(softhsm: SoftHsm, own: tuple[Pkcs11Backend, KeyRef]) -> None:
    backend, ref = own
    token = pkcs11.lib(softhsm.module).get_token(token_label=backend.token_label)
    with token.open(rw=True) as session:
        for obj in list(session.get_objects({pkcs11.Attribute.LABEL: ref.label})):
            obj.destroy()
    with pytest.raises(KeyNotFound, match="no private key labelled 'recovery-key'"):
        backend.signing_key(ref).sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert not backend.has_key(ref)


def test_enumeration_failures_at_start_up_are_retried(
    softhsm: SoftHsm, new_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = softhsm.backend(new_token)
    real = Pkcs11Backend._find_token
    failures = [p11.GeneralError(), p11.NoSuchToken("No token matching")]

    def flaky(self: Pkcs11Backend, lib: Any) -> Any:
        if failures:
            raise failures.pop(0)
        return real(self, lib)

    monkeypatch.setattr(Pkcs11Backend, "_find_token", flaky)
    before = backend.reinitialisations
    assert backend.info().model == "SoftHSM v2"  # the call succeeds after two retried failures
    assert backend.reinitialisations == before + 2
    backend.close()


def test_start_up_gives_up_with_a_clear_message(softhsm: SoftHsm) -> None:
    backend = softhsm.backend("no-such-token", connect_attempts=2)
    with pytest.raises(HSMUnavailable, match=r"'no-such-token' is not available .* after 2 attempts"):
        backend.info()
    missing = Pkcs11Backend("/nonexistent/libpkcs11.so", "x", "1234", connect_attempts=1)
    with pytest.raises(HSMUnavailable, match="nonexistent"):
        missing.info()


def test_generation_is_not_repeated_after_a_lost_connection(
    softhsm: SoftHsm, own: tuple[Pkcs11Backend, KeyRef], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, ref = own
    calls = []

    def lost(self: Pkcs11Backend, lease: Any, label: str, algorithm: KeyAlgorithm) -> KeyRef:
        calls.append(label)
        raise p11.SessionHandleInvalid()

    with monkeypatch.context() as patch:
        patch.setattr(Pkcs11Backend, "_generate_in", lost)
        with pytest.raises(HSMUnavailable, match="not repeated automatically"):
            backend.generate("second-key", KeyAlgorithm.EC_P256)
    assert calls == ["second-key"]  # Tried once, never repeated behind the caller's back.
    second = backend.generate("second-key", KeyAlgorithm.EC_P256)
    assert backend.has_key(second)
    _sign_and_verify(backend, ref)
