"""Bad input gets a clear error, never another exception: CSRs and subject JSON (bounded fuzzing)."""

from __future__ import annotations

import contextlib
import random

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ca.issuance.csr import parse_csr
from ca.issuance.errors import IssuanceError
from ca.profiles.subject import SubjectError, SubjectInput, legal_person_rules, natural_person_rules

_KEY = ec.generate_private_key(ec.SECP256R1())
_VALID = (
    x509.CertificateSigningRequestBuilder()
    .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "fuzz")]))
    .sign(_KEY, hashes.SHA256())
    .public_bytes(serialization.Encoding.DER)
)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        i = rng.randrange(len(b)) if b else 0
        if op == 0 and b:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            del b[i : i + rng.randint(1, 8)]
        elif op == 2:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif b:
            b[i] = rng.choice([0x00, 0x30, 0x80, 0x81, 0x82, 0xFF])
    return bytes(b)


def test_mutated_csrs_give_issuance_errors_only() -> None:
    rng = random.Random(20261121)  # fixed seed: the same 3000 cases every run
    accepted = 0
    for _ in range(3000):
        data = _mutate(_VALID, rng)
        try:
            parse_csr(data)
            accepted += 1
        except IssuanceError as exc:
            assert len(str(exc).splitlines()) == 1
    # A mutation of unused bits may still verify; most must be refused.
    assert accepted < 300


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_give_issuance_errors_only(data: bytes) -> None:
    with contextlib.suppress(IssuanceError):
        parse_csr(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    [
        "countryName", "commonName", "givenName", "surname", "pseudonym", "serialNumber",
        "organizationName", "organizationIdentifier", "email", "admission", "colour",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_KEYS, _json | st.text(max_size=80), max_size=9))
def test_subject_json_gives_subject_errors_or_findings(obj: dict[str, object]) -> None:
    try:
        subject = SubjectInput.from_json_obj(obj)
    except SubjectError as exc:
        assert len(str(exc).splitlines()) == 1
        return
    for finding in [*natural_person_rules(subject), *legal_person_rules(subject)]:
        assert len(finding.message.splitlines()) == 1
