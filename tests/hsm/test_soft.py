"""The software keystore: encrypted PKCS#8 files, never overwritten, never qualified."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hsm import KeyBackend, SoftBackend
from hsm.api import HSMError, KeyAlgorithm, KeyExists, KeyNotFound, KeyRef
from hsm.keyid import key_identifier
from tests.hsm.pki import sign_all, verify_all

PASSPHRASE = b"correct horse battery staple"


@pytest.fixture
def soft(tmp_path: Path) -> SoftBackend:
    return SoftBackend(tmp_path / "keys", PASSPHRASE)


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm), ids=lambda a: a.value)
def test_round_trip_signs_cert_crl_ocsp(tmp_path: Path, algorithm: KeyAlgorithm) -> None:
    backend = SoftBackend(tmp_path / "keys", PASSPHRASE)
    ref = backend.generate("ca-key", algorithm)
    assert ref.backend == "soft"
    assert ref.label == "ca-key"
    assert ref.algorithm is algorithm
    assert ref.token == str(tmp_path / "keys")

    # A second backend object starts with an empty cache and must decrypt the file.
    reopened = SoftBackend(tmp_path / "keys", PASSPHRASE)
    key = reopened.signing_key(ref)
    assert isinstance(key, ec.EllipticCurvePrivateKey if algorithm.is_ec else rsa.RSAPrivateKey)
    assert key_identifier(key.public_key()) == ref.key_id
    signed = sign_all(key, algorithm.default_hash())
    verify_all(signed, key.public_key())
    ski = signed.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski.digest.hex() == ref.key_id


def test_key_file_is_encrypted_pkcs8_mode_0600(soft: SoftBackend) -> None:
    soft.generate("issuing-1", KeyAlgorithm.EC_P256)
    path = soft.directory / "issuing-1.p8"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(soft.directory.stat().st_mode) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    # Nothing but the key file is left behind (no temporary files).
    assert [p.name for p in soft.directory.iterdir()] == ["issuing-1.p8"]


def test_signing_key_is_cached(soft: SoftBackend) -> None:
    ref = soft.generate("cached", KeyAlgorithm.EC_P256)
    first = soft.signing_key(ref)
    assert soft.signing_key(ref) is first
    soft.close()  # forgets the decrypted key: the next use decrypts the file again
    again = soft.signing_key(ref)
    assert again is not first
    assert soft.signing_key(ref) is again


def test_wrong_passphrase_is_a_clear_hsm_error(soft: SoftBackend) -> None:
    ref = soft.generate("locked", KeyAlgorithm.EC_P384)
    wrong = SoftBackend(soft.directory, b"not the passphrase")
    with pytest.raises(HSMError, match="wrong keystore passphrase") as info:
        wrong.signing_key(ref)
    # No chained cryptography traceback, and the passphrase is not in the message.
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert "not the passphrase" not in str(info.value)
    with pytest.raises(HSMError, match="wrong keystore passphrase"):
        wrong.has_key(ref)


def test_existing_key_is_never_overwritten(soft: SoftBackend) -> None:
    soft.generate("root", KeyAlgorithm.EC_P256)
    path = soft.directory / "root.p8"
    before = path.read_bytes()
    with pytest.raises(KeyExists):
        soft.generate("root", KeyAlgorithm.EC_P256)
    assert path.read_bytes() == before


def test_write_refuses_a_file_created_concurrently(soft: SoftBackend) -> None:
    # Another process may create the file between the existence check and the write: the final
    # link must fail rather than replace that file.
    soft.directory.mkdir(mode=0o700)
    path = soft.directory / "race.p8"
    path.write_bytes(b"someone else's key")
    with pytest.raises(KeyExists):
        soft._write_new("race", path, b"our key")
    assert path.read_bytes() == b"someone else's key"
    assert [p.name for p in soft.directory.iterdir()] == ["race.p8"]


@pytest.mark.parametrize("label", ["", "../escape", "a/b", ".hidden", "-opt", "with space", "x" * 65, "ä"])
def test_unsafe_labels_are_refused(soft: SoftBackend, label: str) -> None:
    with pytest.raises(ValueError, match="invalid key label"):
        soft.generate(label, KeyAlgorithm.EC_P256)


def test_has_key_and_key_not_found(soft: SoftBackend) -> None:
    ref = soft.generate("present", KeyAlgorithm.EC_P256)
    assert soft.has_key(ref)
    other = KeyRef("soft", "present", "00" * 20, KeyAlgorithm.EC_P256, ref.token)
    assert not soft.has_key(other)
    with pytest.raises(KeyNotFound, match="has key id"):
        soft.signing_key(other)
    missing = KeyRef("soft", "absent", ref.key_id, KeyAlgorithm.EC_P256, ref.token)
    assert not soft.has_key(missing)
    with pytest.raises(KeyNotFound, match="no key labelled 'absent'"):
        soft.signing_key(missing)
    foreign = KeyRef("pkcs11", "present", ref.key_id, KeyAlgorithm.EC_P256, "tok/1")
    with pytest.raises(KeyNotFound, match="belongs to backend 'pkcs11'"):
        soft.signing_key(foreign)


def test_algorithm_mismatch_is_refused(soft: SoftBackend) -> None:
    ref = soft.generate("p256", KeyAlgorithm.EC_P256)
    wrong = KeyRef("soft", "p256", ref.key_id, KeyAlgorithm.EC_P384, ref.token)
    with pytest.raises(HSMError, match="is ec-p256, not ec-p384"):
        soft.signing_key(wrong)


def test_info_is_not_qualified(soft: SoftBackend) -> None:
    info = soft.info()
    assert info.backend == "soft"
    assert info.qualified is False
    assert info.model == "software keystore (not qualified)"
    assert info.token_id == str(soft.directory)


def test_protocol_and_repr(soft: SoftBackend) -> None:
    assert isinstance(soft, KeyBackend)
    assert soft.name == "soft"
    assert "horse" not in repr(soft)
    # The passphrase is held in a Secret: neither the attributes' names nor their values show it.
    assert "horse" not in repr(vars(soft))
    assert "horse" not in str(list(vars(soft).values()))


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="passphrase"):
        SoftBackend(tmp_path, b"")
