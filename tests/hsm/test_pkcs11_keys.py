"""PKCS#11 keys: generated in the token, never extractable, usable by cryptography's builders."""

from __future__ import annotations

import copy
import logging
import pickle
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pkcs11 import Attribute, ObjectClass

from hsm import KeyBackend
from hsm.api import HSMError, KeyAlgorithm, KeyExists, KeyNotExtractable, KeyNotFound, KeyRef
from hsm.keyid import key_identifier
from hsm.pkcs11 import Pkcs11Backend, Pkcs11EllipticCurvePrivateKey, Pkcs11RSAPrivateKey
from tests.hsm.conftest import SoftHsm
from tests.hsm.pki import sign_all, verify_all, verify_signature

pytestmark = pytest.mark.hsm

MESSAGE = b"to be signed"


@pytest.fixture(scope="module")
def keys(backend: Pkcs11Backend) -> dict[KeyAlgorithm, KeyRef]:
    """One key per algorithm, generated once per module (RSA-4096 takes seconds in SoftHSM2)."""
    return {algorithm: backend.generate(f"ca-{algorithm.value}", algorithm) for algorithm in KeyAlgorithm}


@pytest.fixture
def token_session(softhsm: SoftHsm, backend: Pkcs11Backend) -> Any:
    """A session of our own on the main token, to inspect objects as another application would.

    The backend has logged the token in already and login is per token, so no PIN is given.
    """
    backend.info()
    token = pkcs11.lib(softhsm.module).get_token(token_label=softhsm.label)
    session = token.open()
    yield session
    session.close()


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm), ids=lambda a: a.value)
def test_generate_and_sign_cert_crl_ocsp(
    backend: Pkcs11Backend, keys: dict[KeyAlgorithm, KeyRef], algorithm: KeyAlgorithm
) -> None:
    ref = keys[algorithm]
    info = backend.info()
    assert ref.backend == "pkcs11"
    assert ref.algorithm is algorithm
    assert ref.token == info.token_id
    assert len(ref.key_id) == 40
    key = backend.signing_key(ref)
    if algorithm.is_ec:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert isinstance(key, Pkcs11EllipticCurvePrivateKey)
        assert key.curve.name == algorithm.curve.name
    else:
        assert isinstance(key, rsa.RSAPrivateKey)
        assert isinstance(key, Pkcs11RSAPrivateKey)
        assert key.key_size == algorithm.rsa_bits
        assert key.public_key().public_numbers().e == 65537
    assert key_identifier(key.public_key()) == ref.key_id
    verify_all(sign_all(key, algorithm.default_hash()), key.public_key())


def test_key_objects_on_token(token_session: Any, backend: Pkcs11Backend, keys: dict[KeyAlgorithm, KeyRef]) -> None:
    for algorithm, ref in keys.items():
        private = token_session.get_key(ObjectClass.PRIVATE_KEY, label=ref.label)
        public = token_session.get_key(ObjectClass.PUBLIC_KEY, label=ref.label)
        assert private[Attribute.ID] == bytes.fromhex(ref.key_id)
        assert public[Attribute.ID] == bytes.fromhex(ref.key_id)
        assert private[Attribute.TOKEN] is True
        assert private[Attribute.PRIVATE] is True
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.SIGN] is True
        assert private[Attribute.DECRYPT] is False
        assert private[Attribute.DERIVE] is False
        assert public[Attribute.TOKEN] is True
        secret = Attribute.VALUE if algorithm.is_ec else Attribute.PRIVATE_EXPONENT
        with pytest.raises(pkcs11.AttributeSensitive):
            private[secret]
        attributes = backend.key_attributes(ref)
        assert attributes.protected
        assert attributes.sign and not attributes.decrypt and not attributes.unwrap and not attributes.derive


def test_private_material_is_not_available(backend: Pkcs11Backend, keys: dict[KeyAlgorithm, KeyRef]) -> None:
    for ref in keys.values():
        key = backend.signing_key(ref)
        with pytest.raises(KeyNotExtractable, match="cannot be exported"):
            key.private_numbers()
        with pytest.raises(KeyNotExtractable):
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"x"),
            )
        if isinstance(key, ec.EllipticCurvePrivateKey):
            peer = ec.generate_private_key(key.curve).public_key()
            with pytest.raises(HSMError, match="signing-only"):
                key.exchange(ec.ECDH(), peer)
        else:
            with pytest.raises(HSMError, match="signing-only"):
                key.decrypt(b"\0" * (key.key_size // 8), padding.PKCS1v15())
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(key)
        assert copy.copy(key) is key
        assert copy.deepcopy(key) is key


def test_rsa_pss_and_prehashed(backend: Pkcs11Backend, keys: dict[KeyAlgorithm, KeyRef]) -> None:
    key = backend.signing_key(keys[KeyAlgorithm.RSA_3072])
    assert isinstance(key, rsa.RSAPrivateKey)
    public = key.public_key()
    for salt in (padding.PSS.DIGEST_LENGTH, padding.PSS.MAX_LENGTH, 20):
        pss = padding.PSS(padding.MGF1(hashes.SHA256()), salt)
        verify_all(sign_all(key, hashes.SHA256(), rsa_padding=pss), public)
        public.verify(key.sign(MESSAGE, pss, hashes.SHA256()), MESSAGE, pss, hashes.SHA256())
    digest = hashes.Hash(hashes.SHA384())
    digest.update(MESSAGE)
    prehashed = key.sign(digest.finalize(), padding.PKCS1v15(), Prehashed(hashes.SHA384()))
    public.verify(prehashed, MESSAGE, padding.PKCS1v15(), hashes.SHA384())
    with pytest.raises(ValueError, match="not supported"):
        key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA1())


def test_ec_prehashed(backend: Pkcs11Backend, keys: dict[KeyAlgorithm, KeyRef]) -> None:
    key = backend.signing_key(keys[KeyAlgorithm.EC_P384])
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    digest = hashes.Hash(hashes.SHA384())
    digest.update(MESSAGE)
    signature = key.sign(digest.finalize(), ec.ECDSA(Prehashed(hashes.SHA384())))
    verify_signature(key.public_key(), signature, MESSAGE, hashes.SHA384())
    with pytest.raises(ValueError, match="digest must be 48 bytes"):
        key.sign(b"short", ec.ECDSA(Prehashed(hashes.SHA384())))


def test_duplicate_label_is_refused(
    token_session: Any, backend: Pkcs11Backend, keys: dict[KeyAlgorithm, KeyRef]
) -> None:
    ref = keys[KeyAlgorithm.EC_P256]
    with pytest.raises(KeyExists, match=ref.label):
        backend.generate(ref.label, KeyAlgorithm.EC_P256)
    assert len(list(token_session.get_objects({Attribute.LABEL: ref.label}))) == 2  # private + public
    with pytest.raises(ValueError, match="invalid key label"):
        backend.generate("bad label", KeyAlgorithm.EC_P256)


def test_lookup_cache_and_errors(backend: Pkcs11Backend, keys: dict[KeyAlgorithm, KeyRef]) -> None:
    ref = keys[KeyAlgorithm.EC_P256]
    assert backend.signing_key(ref) is backend.signing_key(ref)
    assert backend.has_key(ref)
    unknown = KeyRef("pkcs11", ref.label, "11" * 20, ref.algorithm, ref.token)
    assert not backend.has_key(unknown)
    with pytest.raises(KeyNotFound, match="no private key labelled"):
        backend.signing_key(unknown)
    with pytest.raises(KeyNotFound):
        backend.signing_key(KeyRef("pkcs11", "no-such-key", ref.key_id, ref.algorithm, ref.token))
    with pytest.raises(HSMError, match="does not match its reference"):
        backend.signing_key(KeyRef("pkcs11", ref.label, ref.key_id, KeyAlgorithm.EC_P384, ref.token))
    with pytest.raises(KeyNotFound, match="belongs to backend 'soft'"):
        backend.signing_key(KeyRef("soft", ref.label, ref.key_id, ref.algorithm, ref.token))


def test_info(backend: Pkcs11Backend, softhsm: SoftHsm) -> None:
    info = backend.info()
    assert info.backend == "pkcs11"
    # SoftHSM is a software token: never reported as a qualified key store.
    assert info.qualified is False
    assert info.token_id.startswith(f"{softhsm.label}/")
    assert len(info.token_id) > len(softhsm.label) + 1
    assert info.model == "SoftHSM v2"
    assert info.manufacturer == "SoftHSM project"
    assert isinstance(backend, KeyBackend)


@pytest.mark.parametrize(
    ("model", "manufacturer", "software"),
    [
        ("SoftHSM v2", "SoftHSM project", True),
        ("SoftHSM", "SoftHSM", True),
        ("Luna K7", "SafeNet", False),
        ("CryptoServer", "Utimaco IS GmbH", False),
    ],
)
def test_software_token_detection(model: str, manufacturer: str, software: bool) -> None:
    from hsm.pkcs11.backend import _is_software_token

    assert _is_software_token(model, manufacturer) is software


def test_pin_never_shown(
    softhsm: SoftHsm,
    backend: Pkcs11Backend,
    keys: dict[KeyAlgorithm, KeyRef],
    new_token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pin = softhsm.pin
    ref = keys[KeyAlgorithm.EC_P256]
    shown = [repr(backend), str(backend), repr(ref), repr(backend.info()), repr(backend.signing_key(ref))]
    shown += [repr(value) for value in vars(backend).values()]
    assert all(pin not in text for text in shown)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(backend)
    # A refused login: the message names the reason, never the PIN, and it is not retried.
    with caplog.at_level(logging.DEBUG):
        wrong = Pkcs11Backend(softhsm.module, new_token, pin + "-wrong", lock_dir=softhsm.lock_dir)
        with pytest.raises(HSMError, match="PinIncorrect") as refused:
            wrong.info()
    assert pin not in str(refused.value)
    assert all(pin not in record.getMessage() for record in caplog.records)


def test_constructor_validation(softhsm: SoftHsm) -> None:
    with pytest.raises(ValueError, match="PIN"):
        Pkcs11Backend(softhsm.module, softhsm.label, "")
    with pytest.raises(ValueError, match="pool_size"):
        Pkcs11Backend(softhsm.module, softhsm.label, softhsm.pin, pool_size=0)
    with pytest.raises(ValueError, match="label"):
        Pkcs11Backend(softhsm.module, "", softhsm.pin)


def test_duplicate_key_objects_are_a_clear_error_and_leave_the_backend_usable(softhsm: SoftHsm, new_token: str) -> None:
    """Review finding: get_key left its search open on two hits, breaking the pooled session."""
    backend = softhsm.backend(new_token)
    try:
        ref = backend.generate("twin", KeyAlgorithm.EC_P256)
        other = backend.generate("other", KeyAlgorithm.EC_P256)
        token = pkcs11.lib(softhsm.module).get_token(token_label=new_token)
        with token.open(rw=True) as session:  # the backend is logged in: login is per token
            (original,) = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: "twin"}))
            original.copy({})  # C_CopyObject: a second private key with the same label and CKA_ID
        before = backend.reinitialisations
        kept: list[HSMError] = []  # callers (error handlers, log records) keep errors alive
        for _ in range(6):
            with pytest.raises(HSMError, match="several private keys labelled 'twin'") as info:
                backend.signing_key(ref)
            kept.append(info.value)
            # A new search on every pooled session (C_FindObjectsInit) must not meet one left open.
            assert backend.has_key(other)
        key = backend.signing_key(other)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        key.sign(b"data", ec.ECDSA(hashes.SHA256()))
        assert backend.reinitialisations == before
    finally:
        backend.close()


def test_unusable_lock_directory_is_an_hsm_error(softhsm: SoftHsm, new_token: str, tmp_path: Path) -> None:
    """Review finding: filelock's OSError escaped as a non-HSM error."""
    from hsm import HSMUnavailable

    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")
    backend = Pkcs11Backend(softhsm.module, new_token, softhsm.pin, lock_dir=not_a_directory)
    try:
        with pytest.raises(HSMUnavailable, match="start-up lock"):
            backend.generate("k", KeyAlgorithm.EC_P256)
    finally:
        backend.close()
