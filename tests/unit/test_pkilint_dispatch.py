"""The lint gate's indexed pkilint dispatch (ca.issuance.lint.index_containers) is an optimisation
only: on faithful and on broken certificates of every profile, linted as every certificate type,
it returns exactly what pkilint's own dispatch returns (same validators, nodes, findings, order).
"""

from __future__ import annotations

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

from ca.issuance.lint import PROFILE_CERTIFICATE_TYPES, _conjunctive_match, _may_match, index_containers
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


def _results(container: Any, der: bytes) -> list[tuple[str, str, list[tuple[str, str | None]]]]:
    doc = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "tbs")
    return [
        (r.validator.name, str(r.node.path), [(str(d.finding.code), d.message) for d in r.finding_descriptions])
        for r in container.validate(doc.root)
    ]


def _assert_same(der: bytes) -> int:
    total = 0
    for type_name in TYPES:
        stock, indexed = _containers(type_name)
        expected = _results(stock, der)
        assert _results(indexed, der) == expected, type_name
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
