"""Private-key classes whose ``sign()`` runs inside a PKCS#11 token.

They subclass cryptography's ``EllipticCurvePrivateKey`` and ``RSAPrivateKey`` so that the
certificate, CRL and OCSP builders accept them as ``private_key`` (FIELD-NOTES #6, first route):
the builder hands the to-be-signed bytes to :meth:`sign`, which asks the token for the signature.
The private key material never leaves the token (EN 319 411-1 clause 6.5.1, GEN-6.5.1-02), so
``private_numbers()`` and ``private_bytes()`` raise :class:`~hsm.api.KeyNotExtractable`.

ECDSA: SoftHSM2 has no ``CKM_ECDSA_SHA256``/``CKM_ECDSA_SHA384`` (FIELD-NOTES #1), so the message
is hashed here and the digest is signed with raw ``CKM_ECDSA``; the token returns ``r || s``, which is
DER-encoded with ``encode_dss_signature`` as X.509 requires.

RSA: PKCS #1 v1.5 uses ``CKM_SHA{224,256,384,512}_RSA_PKCS`` (the token hashes); RSASSA-PSS uses
``CKM_SHA*_RSA_PKCS_PSS``.  Pre-hashed input uses ``CKM_RSA_PKCS`` over a DigestInfo, or
``CKM_RSA_PKCS_PSS``.
"""

from __future__ import annotations

from typing import Any, NoReturn, Protocol, Self

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, PSS, AsymmetricPadding, PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import (
    NoDigestInfo,
    Prehashed,
    encode_dss_signature,
)
from cryptography.utils import Buffer
from pkcs11 import MGF, Mechanism

from hsm.api import HSMError, KeyNotExtractable, KeyRef

__all__ = ["Pkcs11EllipticCurvePrivateKey", "Pkcs11RSAPrivateKey", "TokenSigner"]


class TokenSigner(Protocol):
    """What a token key needs from its backend: one signature, computed inside the token."""

    def sign_with_token(self, ref: KeyRef, mechanism: Mechanism, param: Any, data: bytes) -> bytes:
        """Sign ``data`` with the private key ``ref`` using ``mechanism`` (and its parameter)."""
        ...


# Per hash algorithm name: (PKCS #1 v1.5 mechanism, PSS mechanism, digest mechanism, MGF1 id).
_RSA_MECHANISMS: dict[str, tuple[Mechanism, Mechanism, Mechanism, MGF]] = {
    "sha224": (Mechanism.SHA224_RSA_PKCS, Mechanism.SHA224_RSA_PKCS_PSS, Mechanism.SHA224, MGF.SHA224),
    "sha256": (Mechanism.SHA256_RSA_PKCS, Mechanism.SHA256_RSA_PKCS_PSS, Mechanism.SHA256, MGF.SHA256),
    "sha384": (Mechanism.SHA384_RSA_PKCS, Mechanism.SHA384_RSA_PKCS_PSS, Mechanism.SHA384, MGF.SHA384),
    "sha512": (Mechanism.SHA512_RSA_PKCS, Mechanism.SHA512_RSA_PKCS_PSS, Mechanism.SHA512, MGF.SHA512),
}

# DER prefix of DigestInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING } (RFC 8017 section 9.2,
# note 1); the digest follows.  Needed only when the caller passes a pre-computed digest.
_DIGEST_INFO_PREFIX: dict[str, bytes] = {
    "sha224": bytes.fromhex("302d300d06096086480165030402040500041c"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def _not_extractable(ref: KeyRef) -> NoReturn:
    raise KeyNotExtractable(
        f"the private key {ref.label!r} (id {ref.key_id}) is held in token {ref.token!r} with "
        "CKA_EXTRACTABLE=False and CKA_SENSITIVE=True; it cannot be exported"
    )


def _refuse_pickle(name: str) -> NoReturn:
    raise TypeError(f"a {name} is bound to a live PKCS#11 session pool and cannot be pickled")


def _rsa_mechanisms(algorithm: hashes.HashAlgorithm) -> tuple[Mechanism, Mechanism, Mechanism, MGF]:
    try:
        return _RSA_MECHANISMS[algorithm.name]
    except KeyError:
        raise ValueError(f"hash {algorithm.name} is not supported for RSA signatures in the token") from None


class _TokenKeyHandle:
    """What both token key classes share: a handle to a key in the token, never its material."""

    _ref: KeyRef

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        """Refuse: the private key never leaves the token."""
        _not_extractable(self._ref)

    def __copy__(self) -> Self:
        # A token key is a handle, not material: copies share it.
        return self

    def __deepcopy__(self, memo: dict[Any, Any]) -> Self:
        return self

    def __reduce__(self) -> NoReturn:
        _refuse_pickle(type(self).__name__)


class Pkcs11EllipticCurvePrivateKey(_TokenKeyHandle, ec.EllipticCurvePrivateKey):
    """An EC private key in a PKCS#11 token, usable wherever cryptography expects one for signing.

    Instances are created by :meth:`hsm.pkcs11.Pkcs11Backend.signing_key`; the public key is read
    from the token once and kept here.

    :param signer: the backend that performs the signature in the token.
    :param ref: the key reference (label and CKA_ID on the token).
    :param public_key: the public key read from the token.
    """

    def __init__(self, signer: TokenSigner, ref: KeyRef, public_key: ec.EllipticCurvePublicKey) -> None:
        self._signer = signer
        self._ref = ref
        self._public_key = public_key
        # The token returns r and s as fixed-length big-endian integers of the group order size.
        self._scalar_len = (public_key.curve.key_size + 7) // 8

    def __repr__(self) -> str:
        ref = self._ref
        return f"<{type(self).__name__} label={ref.label!r} key_id={ref.key_id} token={ref.token!r}>"

    @property
    def ref(self) -> KeyRef:
        """The reference of this key."""
        return self._ref

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        """Sign ``data`` with ECDSA inside the token and return the DER-encoded signature.

        :param data: the message, or its digest when the hash is wrapped in ``Prehashed``.
        :param signature_algorithm: ``ec.ECDSA(hash)``; deterministic ECDSA is not supported.
        :raises HSMUnavailable: if the token cannot be reached even after re-initialisation.
        """
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise ValueError("only ECDSA signatures are supported with an EC token key")
        if signature_algorithm.deterministic_signing:
            raise ValueError("deterministic ECDSA (RFC 6979) is not available through PKCS#11")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, Prehashed):
            digest = bytes(data)
            if len(digest) != algorithm.digest_size:
                raise ValueError(f"the pre-hashed digest must be {algorithm.digest_size} bytes long")
        else:
            hasher = hashes.Hash(algorithm)
            hasher.update(bytes(data))
            digest = hasher.finalize()
        raw = self._signer.sign_with_token(self._ref, Mechanism.ECDSA, None, digest)
        if len(raw) != 2 * self._scalar_len:
            raise HSMError(
                f"token returned a {len(raw)}-byte ECDSA signature for key {self._ref.label!r}; "
                f"expected r||s of {2 * self._scalar_len} bytes"
            )
        r = int.from_bytes(raw[: self._scalar_len], "big")
        s = int.from_bytes(raw[self._scalar_len :], "big")
        return encode_dss_signature(r, s)

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """Refuse: CA keys are generated with CKA_DERIVE=False and are for signing only."""
        raise HSMError(f"key {self._ref.label!r} is a signing-only token key; ECDH is not permitted")

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public key, as read from the token."""
        return self._public_key

    @property
    def curve(self) -> ec.EllipticCurve:
        """The key's curve."""
        return self._public_key.curve

    @property
    def key_size(self) -> int:
        """Bit size of the curve order."""
        return self._public_key.key_size

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        """Refuse: the private value never leaves the token."""
        _not_extractable(self._ref)


class Pkcs11RSAPrivateKey(_TokenKeyHandle, rsa.RSAPrivateKey):
    """An RSA private key in a PKCS#11 token, usable wherever cryptography expects one for signing.

    :param signer: the backend that performs the signature in the token.
    :param ref: the key reference (label and CKA_ID on the token).
    :param public_key: the public key read from the token.
    """

    def __init__(self, signer: TokenSigner, ref: KeyRef, public_key: rsa.RSAPublicKey) -> None:
        self._signer = signer
        self._ref = ref
        self._public_key = public_key

    def __repr__(self) -> str:
        ref = self._ref
        return f"<{type(self).__name__} label={ref.label!r} key_id={ref.key_id} token={ref.token!r}>"

    @property
    def ref(self) -> KeyRef:
        """The reference of this key."""
        return self._ref

    def sign(
        self,
        data: bytes,
        padding: AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm | NoDigestInfo,
    ) -> bytes:
        """Sign ``data`` inside the token with RSASSA-PKCS1-v1_5 or RSASSA-PSS.

        :param data: the message, its digest (``Prehashed``) or a ready DigestInfo (``NoDigestInfo``).
        :param padding: ``PKCS1v15()`` or ``PSS(MGF1(hash), salt_length)``.
        :param algorithm: the hash (SHA-224/256/384/512), ``Prehashed(hash)`` or ``NoDigestInfo()``.
        :raises ValueError: for an unsupported padding, hash or salt length.
        :raises HSMUnavailable: if the token cannot be reached even after re-initialisation.
        """
        data = bytes(data)
        if isinstance(padding, PKCS1v15):
            if isinstance(algorithm, NoDigestInfo):
                return self._signer.sign_with_token(self._ref, Mechanism.RSA_PKCS, None, data)
            if isinstance(algorithm, Prehashed):
                name = _prehashed_name(algorithm, data)
                if name not in _DIGEST_INFO_PREFIX:
                    raise ValueError(f"hash {name} is not supported for RSA signatures in the token")
                digest_info = _DIGEST_INFO_PREFIX[name] + data
                return self._signer.sign_with_token(self._ref, Mechanism.RSA_PKCS, None, digest_info)
            pkcs1_mechanism, _pss, _digest, _mgf = _rsa_mechanisms(algorithm)
            return self._signer.sign_with_token(self._ref, pkcs1_mechanism, None, data)
        if isinstance(padding, PSS):
            if isinstance(algorithm, NoDigestInfo):
                raise ValueError("NoDigestInfo applies to PKCS #1 v1.5 only")
            hash_algorithm = algorithm._algorithm if isinstance(algorithm, Prehashed) else algorithm
            _pkcs1, pss_mechanism, digest_mechanism, _mgf = _rsa_mechanisms(hash_algorithm)
            param = (digest_mechanism, self._mgf(padding), self._salt_length(padding, hash_algorithm))
            if isinstance(algorithm, Prehashed):
                _prehashed_name(algorithm, data)
                return self._signer.sign_with_token(self._ref, Mechanism.RSA_PKCS_PSS, param, data)
            return self._signer.sign_with_token(self._ref, pss_mechanism, param, data)
        raise ValueError(f"padding {padding.name} is not supported for signing with a token key")

    def _mgf(self, pss: PSS) -> MGF:
        mgf = pss.mgf
        if not isinstance(mgf, MGF1):
            raise ValueError("only MGF1 is supported for RSASSA-PSS")
        return _rsa_mechanisms(mgf._algorithm)[3]

    def _salt_length(self, pss: PSS, algorithm: hashes.HashAlgorithm) -> int:
        salt = pss._salt_length
        if isinstance(salt, int):
            return salt
        if salt is PSS.DIGEST_LENGTH:
            return algorithm.digest_size
        if salt is PSS.MAX_LENGTH:
            # RFC 8017 section 9.1.1: emLen - hLen - 2, with emLen = ceil((modBits - 1) / 8).
            return (self.key_size - 1 + 7) // 8 - algorithm.digest_size - 2
        raise ValueError("PSS.AUTO is only valid when verifying")

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> bytes:
        """Refuse: CA keys are generated with CKA_DECRYPT=False and are for signing only."""
        raise HSMError(f"key {self._ref.label!r} is a signing-only token key; decryption is not permitted")

    def public_key(self) -> rsa.RSAPublicKey:
        """The public key, as read from the token."""
        return self._public_key

    @property
    def key_size(self) -> int:
        """Bit length of the modulus."""
        return self._public_key.key_size

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        """Refuse: the private exponent and primes never leave the token."""
        _not_extractable(self._ref)


def _prehashed_name(algorithm: Prehashed, digest: bytes) -> str:
    """Return the hash name of a ``Prehashed`` wrapper after checking the digest length."""
    if len(digest) != algorithm.digest_size:
        raise ValueError(f"the pre-hashed digest must be {algorithm.digest_size} bytes long")
    # cryptography keeps the wrapped hash in a private attribute; there is no public accessor.
    return algorithm._algorithm.name
