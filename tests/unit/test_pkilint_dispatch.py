"""The lint gate's indexed pkilint dispatch (ca.issuance.lint.index_containers) and its decode
cache (ca.issuance.lint.cached_decoding) are optimisations only: on faithful and on broken
certificates of every profile, linted as every certificate type, one after another through the
same process-wide cache (cold and warm), the gate returns exactly what pkilint as it comes returns
(same validators, nodes, findings, messages, order).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pkilint import loader
from pkilint.validation import ValidationFindingEncountered, Validator

from ca.issuance.lint import (
    PROFILE_CERTIFICATE_TYPES,
    _conjunctive_match,
    _DecodeCache,
    _may_match,
    cached_decoding,
    decode_cache,
    index_containers,
)
from ca.profiles import oids
from tests.unit.test_certificate_rules import NOW, _add, _cert, _ku, _qc, _replace, _without

DROPPABLE = (
    ExtensionOID.KEY_USAGE,
    ExtensionOID.CERTIFICATE_POLICIES,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    ExtensionOID.CRL_DISTRIBUTION_POINTS,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.EXTENDED_KEY_USAGE,
    oids.QC_STATEMENTS,
)


def _set(value: x509.ExtensionType, critical: bool = False) -> Any:
    """Replace (or add) the extension of ``value``'s type."""
    return lambda exts: _add(value, critical)(_without(value.oid)(exts))


MUTATIONS = {
    "none": lambda e: e,
    **{f"drop-{oid.dotted_string}": _without(oid) for oid in DROPPABLE},
    "ku-signature": _replace(ExtensionOID.KEY_USAGE, _ku(digital_signature=True)),
    "ku-both": _replace(ExtensionOID.KEY_USAGE, _ku(digital_signature=True, content_commitment=True)),
    "ku-not-critical": _replace(ExtensionOID.KEY_USAGE, _ku(content_commitment=True), critical=False),
    "ca-true": _set(x509.BasicConstraints(ca=True, path_length=None), critical=True),
    "san-email": _set(x509.SubjectAlternativeName([x509.RFC822Name("erika@example.com")])),
    "san-internal": _set(x509.SubjectAlternativeName([x509.DNSName("host.internal")])),
    "qc-eseal": _qc(qc_type="eseal"),
    "qc-no-sscd": _qc(sscd=False),
    "qc-no-pds": _qc(pds=()),
    "qc-legal-semantics": _qc(semantics_id=oids.SEMANTICS_ID_LEGAL.dotted_string),
    "policy-mapping": _set(x509.PolicyConstraints(require_explicit_policy=0, inhibit_policy_mapping=None), True),
    "eku-server": _set(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH])),
}
TYPES = sorted(set(PROFILE_CERTIFICATE_TYPES.values()))


@functools.cache
def _containers(type_name: str) -> tuple[Any, Any]:
    """pkilint's container as pkilint builds it, and one with the gate's indexed dispatch."""
    from pkilint import etsi
    from pkilint.etsi import etsi_constants
    from pkilint.pkix import certificate

    cert_type = etsi_constants.CertificateType[type_name]

    def build() -> Any:
        return certificate.create_pkix_certificate_validator_container(
            etsi.create_decoding_validators(cert_type), etsi.create_validators(cert_type)
        )

    return build(), index_containers(build())


def _results(
    container: Any, der: bytes, *, cached: bool = False
) -> list[tuple[str, str, list[tuple[str, str | None]]]]:
    doc = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "tbs")
    with cached_decoding() if cached else contextlib.nullcontext():
        results = container.validate(doc.root)
    return [
        (r.validator.name, str(r.node.path), [(str(d.finding.code), d.message) for d in r.finding_descriptions])
        for r in results
    ]


def _assert_same(der: bytes) -> int:
    """pkilint as it comes against the indexed dispatch alone and the gate (indexed + decode cache)
    twice: the first run may fill the cache, the second takes every value it can from it."""
    total = 0
    for type_name in TYPES:
        stock, indexed = _containers(type_name)
        expected = _results(stock, der)
        assert _results(indexed, der) == expected, type_name
        assert _results(indexed, der, cached=True) == expected, type_name
        assert _results(indexed, der, cached=True) == expected, type_name
        total += sum(len(f) for _, _, f in expected)
    return total


@pytest.mark.parametrize("profile", sorted(PROFILE_CERTIFICATE_TYPES))
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_same_findings_as_pkilint_dispatch(profile: str, mutation: str) -> None:
    der = _cert(profile, MUTATIONS[mutation]).public_bytes(serialization.Encoding.DER)
    _assert_same(der)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profile=st.sampled_from(sorted(PROFILE_CERTIFICATE_TYPES)),
    mutations=st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=4, unique=True),
    serial=st.integers(min_value=1, max_value=(1 << 159) - 1),
    days=st.integers(min_value=-5, max_value=4000),
)
def test_same_findings_for_combined_mutations(profile: str, mutations: list[str], serial: int, days: int) -> None:
    def mutate(exts: list[x509.Extension[x509.ExtensionType]]) -> list[x509.Extension[x509.ExtensionType]]:
        for name in mutations:
            exts = MUTATIONS[name](exts)
        return exts

    # The same extension twice (two mutations adding one) is refused by cryptography, not pkilint.
    try:
        cert = _cert(profile, mutate, serial=serial, not_after=NOW + dt.timedelta(days=days))
    except ValueError:
        return
    _assert_same(cert.public_bytes(serialization.Encoding.DER))


def test_findings_are_really_compared() -> None:
    """The corpus is not trivially clean: broken certificates raise findings in both dispatches."""
    broken = _cert("qes-natural", MUTATIONS["drop-" + oids.QC_STATEMENTS.dotted_string])
    assert _assert_same(broken.public_bytes(serialization.Encoding.DER)) > 0


def test_most_validators_are_prunable_and_odd_ones_are_not() -> None:
    stock, _ = _containers("QCP_N_QSCD_EIDAS_FINAL_CERTIFICATE")
    classes = set()

    def walk(container: Any) -> None:
        for v in container.validators:
            classes.add(type(v))
            if hasattr(v, "validators"):
                walk(v)

    walk(stock)
    assert sum(_conjunctive_match(c) for c in classes) >= 0.9 * len(classes)

    class Greedy(Validator):  # an override that ignores the visitor's conditions
        def __init__(self) -> None:
            super().__init__(pdu_class=x509.Certificate)

        def match(self, node: Any) -> bool:
            return True

        def validate(self, node: Any) -> None:
            raise ValidationFindingEncountered(Validator.VALIDATION_FINDING_UNHANDLED_EXCEPTION)

    assert _conjunctive_match(Greedy) is False
    assert _may_match(Greedy(), int, "x") is True  # never pruned

    namespace: dict[str, Any] = {"Validator": Validator}
    exec(  # a class whose source inspect cannot find is never pruned either
        "class NoSource(Validator):\n    def match(self, node):\n        return super().match(node) and True\n",
        namespace,
    )
    assert _conjunctive_match(namespace["NoSource"]) is False


# ----------------------------------------------------------------------------------------------
# The decode cache


def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> _DecodeCache:
    """A new, empty cache in front of pkilint's real decoder, for this test only."""
    from pkilint import document

    real = decode_cache().decode
    cache = _DecodeCache(real)
    monkeypatch.setattr(document, "decode_der", cache)
    return cache


def test_recurring_values_are_decoded_once_and_the_certificate_never(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _fresh_cache(monkeypatch)
    stock, indexed = _containers(PROFILE_CERTIFICATE_TYPES["qes-natural"])
    first = _cert("qes-natural", MUTATIONS["none"]).public_bytes(serialization.Encoding.DER)
    second = _cert("qes-natural", MUTATIONS["none"], serial=12345).public_bytes(serialization.Encoding.DER)
    assert first != second
    assert _results(indexed, first, cached=True) == _results(stock, first)
    assert cache.misses > 5
    misses, hits = cache.misses, cache.hits  # (a value the issuer and subject names share may hit already)
    assert len(cache) <= 1  # everything on probation after one certificate
    assert _results(indexed, second, cached=True) == _results(stock, second)
    assert cache.hits - hits >= 10  # the extension and name values the two share
    assert cache.misses - misses <= 2  # only what differs (here: nothing but the whole certificate's parts)
    from pyasn1_alt_modules import rfc5280

    assert len(cache) >= 10  # asked for a second time: kept
    held = [*cache._entries.values(), *cache._probation.values()]
    assert not any(isinstance(spec, rfc5280.Certificate) for spec, _ in held)


def test_nothing_is_cached_outside_the_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _fresh_cache(monkeypatch)
    stock, _ = _containers(PROFILE_CERTIFICATE_TYPES["upc-auth"])
    _results(stock, _cert("upc-auth", MUTATIONS["none"]).public_bytes(serialization.Encoding.DER))
    assert len(cache) == 0 and cache.hits == 0


def test_a_failed_decoding_is_never_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyasn1.error import PyAsn1Error
    from pyasn1_alt_modules import rfc5280

    cache = _fresh_cache(monkeypatch)
    spec = rfc5280.KeyUsage()
    with cached_decoding():
        for _ in range(2):
            with pytest.raises((PyAsn1Error, ValueError)):
                cache(b"\x04\x02\x05\x80", asn1Spec=spec)  # an OCTET STRING where a BIT STRING belongs
    assert len(cache) == 0 and cache.misses == 0


def test_another_schema_object_never_gets_a_cached_value(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyasn1.type import char

    cache = _fresh_cache(monkeypatch)
    der = b"\x13\x02DE"  # PrintableString "DE"
    first, second = char.PrintableString(), char.PrintableString()
    with cached_decoding():
        a, _ = cache(der, asn1Spec=first)
        b, _ = cache(der, asn1Spec=second)
        c, _ = cache(der, asn1Spec=first)
    assert (cache.misses, cache.hits) == (2, 1)
    assert a is c and b is not a and str(b) == "DE"


def test_a_value_is_kept_once_asked_for_twice_and_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyasn1.type import univ

    cache = _fresh_cache(monkeypatch)
    monkeypatch.setattr(_DecodeCache, "MAX_ENTRIES", 4)
    monkeypatch.setattr(_DecodeCache, "PROBATION", 4)
    spec = univ.Integer()
    with cached_decoding():
        once, _ = cache(b"\x02\x01\x07", asn1Spec=spec)
        assert len(cache) == 0  # on probation only: a value of one certificate is not kept
        again, _ = cache(b"\x02\x01\x07", asn1Spec=spec)
        assert again is once and len(cache) == 1 and (cache.misses, cache.hits) == (1, 1)
        for i in range(10):
            for _ in range(2):
                value, _ = cache(bytes([2, 1, i]), asn1Spec=spec)
                assert int(value) == i
        big = b"\x04\x82\x10\x00" + bytes(4096)  # above MAX_SUBSTRATE: decoded, never held
        cache(big, asn1Spec=univ.OctetString())
        cache(big, asn1Spec=univ.OctetString())
    assert 0 < len(cache) <= 4 and len(cache._probation) <= 4
    assert all(len(der) <= _DecodeCache.MAX_SUBSTRATE for _, der in [*cache._entries, *cache._probation])


def test_a_linted_document_is_freed_without_the_garbage_collector() -> None:
    """The gate unlinks each document's node tree (ca.issuance.lint._dismantle): reference counting
    frees it at once, where pkilint's parent <-> children cycles would wait for a collection."""
    import gc
    import weakref

    from ca.issuance.lint import _dismantle

    _, indexed = _containers(PROFILE_CERTIFICATE_TYPES["qes-natural"])
    der = _cert("qes-natural", MUTATIONS["none"]).public_bytes(serialization.Encoding.DER)

    def linted() -> tuple[Any, list[weakref.ref[Any]]]:
        doc = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "tbs")
        with cached_decoding():
            indexed.validate(doc.root)
        nodes, stack = [], [doc.root]
        while stack:
            node = stack.pop()
            nodes.append(weakref.ref(node))
            stack.extend(node.children.values())
        return doc, nodes

    gc.disable()
    try:
        doc, kept = linted()
        del doc
        assert all(ref() is not None for ref in kept)  # control: pkilint's cycles outlive the document
        doc, nodes = linted()
        assert len(nodes) > 100
        _dismantle(doc)
        del doc
        assert all(ref() is None for ref in nodes)
    finally:
        gc.enable()
        gc.collect()
