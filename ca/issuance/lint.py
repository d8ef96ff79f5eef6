"""The pre-sign lint gate: our own profile rules plus pkilint, run on a certificate signed with a
throwaway key.  Any ERROR or FATAL finding stops issuance before the HSM is touched.

pkilint's validators are built once per process per certificate type (about 0.25 s each) and
reused; linting one certificate then costs a few milliseconds (FIELD-NOTES).  Most of that went
into asking every validator of a container whether it matches every node of the document (about
9,700 ``match`` calls per certificate); :class:`_IndexedDispatch` asks only the validators that
*can* match a node of that ASN.1 type at that path, and asks them exactly as pkilint would, so the
findings are the same, in the same order (proved against pkilint's own dispatch in
``tests/unit/test_pkilint_dispatch.py``).  The rest went mostly into decoding extension and
attribute values that are the same in every certificate of an issuer (AKI, policies, CRL DP, AIA,
QC statements, ...): :class:`_DecodeCache` decodes each such value once (see there).

**Development base URLs.**  pkilint reports a host outside the public suffix list in AIA, CRL DP
or QcPDS URLs as an ERROR (``etsi.internal_domain_name`` / ``etsi.internal_ip_address``), and
``127.0.0.1`` or ``localhost`` are such hosts.  When, and only when, the configured base URL is a
loopback URL (development and relying-party tests on this machine), those two findings are
downgraded to NOTICE *for URLs on exactly that loopback host*; any other internal host still
fails, and with a public base URL nothing is ever downgraded.  ``qtsp status`` marks such a
hierarchy "development base URL".
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from ca.asn1 import QCStatementsInfo, parse_qc_statements
from ca.findings import Finding, Severity
from ca.profiles import oids
from ca.profiles.profile import Profile

__all__ = ["PkilintGate", "certificate_rules"]

_FORBIDDEN_EXTENSIONS: Final = {
    # EN 319 412-2 GEN-4.3.4-1, GEN-4.3.8-1, GEN-4.3.9-1, GEN-4.3.12-1.
    ExtensionOID.POLICY_MAPPINGS: "GEN-4.3.4-1",
    ExtensionOID.NAME_CONSTRAINTS: "GEN-4.3.8-1",
    ExtensionOID.POLICY_CONSTRAINTS: "GEN-4.3.9-1",
    ExtensionOID.INHIBIT_ANY_POLICY: "GEN-4.3.12-1",
}
_CRITICAL_ALLOWED: Final = {ExtensionOID.KEY_USAGE, ExtensionOID.BASIC_CONSTRAINTS}
_ETSI_POLICY_ARCS: Final = ("0.4.0.194112.", "0.4.0.2042.")

_DEV_DOWNGRADABLE: Final = frozenset({"etsi.internal_domain_name", "etsi.internal_ip_address"})


@dataclass(frozen=True, slots=True)
class KnownGap:
    """A pkilint finding that contradicts the standard version we implement, for named values only."""

    node: str
    """The last path component of the node the finding must be on."""
    pattern: re.Pattern[str]
    """Extracts the offending value from pkilint's message."""
    allowed: frozenset[str]
    """The values the standard allows and pkilint does not know."""
    reason: str


_SCHEME: Final = re.compile(r'scheme:? "([A-Z]{2}[A-Z:])"')

# pkilint 0.13.3 predates EN 319 412-1 V1.6.1 (STANDARDS.md §1.2) in these places.  Only these
# exact findings, on these exact nodes, for these exact values, are recorded as NOTICE; the
# identifiers' syntax is checked by our own subject rules (ca.profiles.subject), which also admit
# the EL country only for TIN.
KNOWN_PKILINT_GAPS: Final = {
    "etsi.en_319_412_1.leg-5.1.4-03.invalid_scheme": KnownGap(
        "x520OrganizationIdentifier",
        _SCHEME,
        frozenset({"EOR", "EXC"}),
        "EN 319 412-1 V1.6.1 §5.1.4 allows EOR and EXC organisation identifiers",
    ),
    "etsi.en_319_412_1.nat-5.1.3.invalid_identifier_scheme": KnownGap(
        "x520SerialNumber",
        _SCHEME,
        frozenset({"EID"}),
        "EN 319 412-1 V1.6.1 §5.1.3 allows EID natural-person identifiers",
    ),
    "etsi.en_319_412_1.nat-5.1.3.invalid_identifier_country": KnownGap(
        "x520SerialNumber",
        re.compile(r'country code: "([A-Z]{2})"'),
        frozenset({"EL"}),
        "EN 319 412-1 §5.1.3 lets Greece use EL in a TIN identifier",
    ),
}


def _err(code: str, message: str) -> Finding:
    return Finding(Severity.ERROR, f"qtsp.{code}", message)


def certificate_rules(
    cert: x509.Certificate,
    profile: Profile,
    issuer: x509.Certificate,
    semantics_expected: str | None,
    ident_method_expected: str | None = None,
) -> list[Finding]:
    """Our own rules on the built certificate (STANDARDS.md §5), independent of pkilint."""
    out: list[Finding] = []
    serial = cert.serial_number
    # RFC 5280 §4.1.2.2: positive, at most 20 octets; CA/B BR §7.1: at least 64 random bits.
    if serial <= 0 or serial.bit_length() > 159 or serial < 1 << 64:
        out.append(_err("serial", f"RFC 5280 §4.1.2.2: serial {serial:x} is not a positive 64..159-bit integer"))
    # EN 319 411-1 GEN-6.3.3-05: validity within the issuer's.
    if cert.not_valid_after_utc > issuer.not_valid_after_utc:
        out.append(_err("validity", "EN 319 411-1 GEN-6.3.3-05: notAfter is after the issuing CA's notAfter"))
    if cert.not_valid_before_utc < issuer.not_valid_before_utc:
        out.append(_err("validity", "EN 319 411-1 GEN-6.3.3-05: notBefore is before the issuing CA's notBefore"))
    if cert.issuer != issuer.subject:
        out.append(_err("issuer", "RFC 5280 §4.1.2.4: issuer name differs from the CA's subject"))

    exts = {e.oid: e for e in cert.extensions}
    for oid, clause in _FORBIDDEN_EXTENSIONS.items():
        if oid in exts:
            out.append(_err("forbidden_extension", f"EN 319 412-2 {clause}: {oid.dotted_string} must not be present"))
    for oid, ext in exts.items():
        if ext.critical and oid not in _CRITICAL_ALLOWED:
            out.append(_err("criticality", f"EN 319 412-2: extension {oid.dotted_string} must not be critical"))
    if ExtensionOID.AUTHORITY_KEY_IDENTIFIER not in exts:
        out.append(_err("aki", "EN 319 412-2 GEN-4.3.1-1: authorityKeyIdentifier missing"))
    if ExtensionOID.SUBJECT_KEY_IDENTIFIER not in exts:
        out.append(_err("ski", "RFC 5280 §4.2.1.2: subjectKeyIdentifier missing"))

    ku_ext = exts.get(ExtensionOID.KEY_USAGE)
    if ku_ext is None or not ku_ext.critical:
        out.append(_err("key_usage", "EN 319 412-2 NAT-4.3.2-1: keyUsage missing or not critical"))
    else:
        ku = ku_ext.value
        assert isinstance(ku, x509.KeyUsage)
        have = {
            name
            for name, on in (
                ("digitalSignature", ku.digital_signature),
                ("contentCommitment", ku.content_commitment),
                ("keyEncipherment", ku.key_encipherment),
                ("dataEncipherment", ku.data_encipherment),
                ("keyAgreement", ku.key_agreement),
                ("keyCertSign", ku.key_cert_sign),
                ("cRLSign", ku.crl_sign),
            )
            if on
        }
        if have != set(profile.key_usage):
            out.append(
                _err("key_usage", f"EN 319 412-2 Table 1: keyUsage {sorted(have)} is not {sorted(profile.key_usage)}")
            )

    cp = exts.get(ExtensionOID.CERTIFICATE_POLICIES)
    if cp is None:
        out.append(_err("policies", "EN 319 412-2 GEN-4.3.3-2: certificatePolicies missing"))
    else:
        assert isinstance(cp.value, x509.CertificatePolicies)
        etsi = [
            p.policy_identifier for p in cp.value if p.policy_identifier.dotted_string.startswith(_ETSI_POLICY_ARCS)
        ]
        if etsi != [profile.etsi_policy]:
            out.append(
                _err(
                    "policies",
                    f"EN 319 411-2 QCS-5.2-1: ETSI policies {[o.dotted_string for o in etsi]} "
                    f"must be exactly [{profile.etsi_policy.dotted_string}]",
                )
            )

    aia = exts.get(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    methods: set[x509.ObjectIdentifier] = set()
    if aia is not None:
        assert isinstance(aia.value, x509.AuthorityInformationAccess)
        for desc in aia.value:
            loc = desc.access_location
            if not isinstance(loc, x509.UniformResourceIdentifier) or urlsplit(loc.value).scheme not in (
                "http",
                "https",
            ):
                out.append(_err("aia", "EN 319 412-2 GEN-4.4.1-4/-6: AIA locations must be http(s) URLs"))
            methods.add(desc.access_method)
    if AuthorityInformationAccessOID.CA_ISSUERS not in methods or AuthorityInformationAccessOID.OCSP not in methods:
        out.append(_err("aia", "EN 319 412-2 GEN-4.4.1-2..6: AIA needs caIssuers and OCSP"))
    cdp = exts.get(ExtensionOID.CRL_DISTRIBUTION_POINTS)
    if cdp is None:
        out.append(_err("crl_dp", "EN 319 412-2 GEN-4.3.11-1: CRL distribution point missing"))
    else:
        assert isinstance(cdp.value, x509.CRLDistributionPoints)
        uris = [
            n.value for dp in cdp.value for n in (dp.full_name or []) if isinstance(n, x509.UniformResourceIdentifier)
        ]
        if not any(urlsplit(u).scheme == "http" for u in uris):
            out.append(_err("crl_dp", "EN 319 412-2 GEN-4.3.11-3/-4: at least one http CRL URL"))

    qc_ext = exts.get(oids.QC_STATEMENTS)
    if profile.qc is None:
        if qc_ext is not None:
            out.append(_err("qc_statements", f"STANDARDS.md §1.5: profile {profile.name} carries no QC statements"))
    elif qc_ext is None:
        out.append(_err("qc_statements", "EN 319 412-5 QCS-5.1-1: qcStatements missing in a qualified certificate"))
    else:
        assert isinstance(qc_ext.value, x509.UnrecognizedExtension)
        out.extend(_qc_rules(qc_ext.value.value, profile, semantics_expected, ident_method_expected))
    return out


@functools.lru_cache(maxsize=256, typed=True)
def _parse_qc_cached(der: bytes) -> QCStatementsInfo:
    """Profiles produce few distinct qcStatements encodings: parse each once."""
    return parse_qc_statements(der)


def _qc_rules(
    der: bytes, profile: Profile, semantics_expected: str | None, ident_method_expected: str | None = None
) -> list[Finding]:
    out: list[Finding] = []
    qc = profile.qc
    assert qc is not None
    try:
        info = _parse_qc_cached(der)
    except ValueError as exc:
        return [_err("qc_statements", f"EN 319 412-5 Annex B: qcStatements do not decode: {exc}")]
    if not info.compliance:
        out.append(_err("qc_compliance", "EN 319 412-5 QCS-5-01: QcCompliance missing"))
    if info.cc_legislation_present:
        out.append(_err("qc_cc_legislation", "EN 319 412-5 QCS-4.2.1-01: QcCClegislation forbidden in EU QCs"))
    if info.sscd != qc.sscd:
        out.append(_err("qc_sscd", "EN 319 411-2 GEN-6.6.1-03/-04: QcSSCD iff a -qscd policy"))
    want_type = (oids.QCT_ESIGN if qc.qc_type == "esign" else oids.QCT_ESEAL).dotted_string
    if info.qc_types != (want_type,):
        out.append(_err("qc_type", f"EN 319 412-5 QCS-5.2-2: QcType must be exactly {want_type}"))
    langs = [lang for _, lang in info.pds]
    if qc.pds:
        if "en" not in langs:
            out.append(_err("qc_pds", "EN 319 412-5 QCS-4.3.4-03: an English PDS is required"))
        if len(langs) != len(set(langs)):
            out.append(_err("qc_pds", "EN 319 412-5 QCS-4.3.4-03: at most one PDS per language"))
        if any(urlsplit(url).scheme != "https" for url, _ in info.pds):
            out.append(_err("qc_pds", "EN 319 412-5 QCS-4.3.4-01: PDS URLs must be https"))
    expected = (semantics_expected,) if semantics_expected else ()
    if info.semantics_ids != expected:
        out.append(
            _err("semantics", f"EN 319 412-1 §5.1: semantics identifiers {info.semantics_ids} expected {expected}")
        )
    want_ident = (ident_method_expected,) if ident_method_expected else ()
    if info.ident_methods != want_ident:
        # EN 319 412-5 QCS-4.3.5-02: QcIdentMethod holds the method actually used, so only the one the
        # issuance request states (e.g. a follow-up authenticated by an existing QES), exactly once.
        out.append(
            _err(
                "qc_ident_method",
                f"EN 319 412-5 QCS-4.3.5-02: QcIdentMethod {info.ident_methods} where {want_ident} was requested",
            )
        )
    if info.retention_years is not None:
        # EN 319 411-2 GEN-6.6.1-02: only the statements the profile configures, so no
        # QcRetentionPeriod that nobody decided on.
        out.append(_err("qc_unexpected", f"EN 319 412-5: profile {profile.name} configures no QcRetentionPeriod"))
    if info.unknown_statement_oids:
        out.append(_err("qc_unknown", f"EN 319 412-5: unexpected statements {info.unknown_statement_oids}"))
    return out


# ----------------------------------------------------------------------------------------------
# pkilint


# pkilint 0.13 has no QCP-l(-qscd) seal type: seals are linted with its legal-person (NCP) and
# RFC 5280 validators, which accept the QC statements without judging them; the QC rules for
# seals (QcCompliance, QcSSCD, QcType eseal, PDS, semantics identifier) are checked by
# :func:`certificate_rules` above.  No pkilint finding is ever set aside.
PROFILE_CERTIFICATE_TYPES: Final = {
    "qes-natural": "QCP_N_QSCD_EIDAS_FINAL_CERTIFICATE",
    "qseal-legal": "NCP_LEGAL_PERSON_CERTIFICATE",
    "upc-auth": "NCP_NATURAL_PERSON_CERTIFICATE",
}


def _known_gap(code: str, message: str | None, path: str) -> KnownGap | None:
    gap = KNOWN_PKILINT_GAPS.get(code)
    if gap is None or not path.endswith(gap.node):
        return None
    match = gap.pattern.search(message or "")
    return gap if match is not None and match.group(1) in gap.allowed else None


_SUPER_FIRST: Final = re.compile(
    r"^\s*def match\(self, node[^)]*\)[^:]*:\s*(?:#[^\n]*\s*)*"
    r"(?:if not super\(\)\.match\(node\):|return super\(\)\.match\(node\) and )"
)


_CONJUNCTIVE: dict[type, bool] = {}


def _conjunctive_match(cls: type) -> bool:
    known = _CONJUNCTIVE.get(cls)
    if known is None:
        known = _CONJUNCTIVE[cls] = _check_conjunctive(cls)
    return known


def _check_conjunctive(cls: type) -> bool:
    """True when ``cls.match`` is pkilint's ``NodeVisitor.match`` or every override on the way there
    first requires ``super().match(node)``: then a node that fails the visitor's path and type
    conditions can never match, and skipping the call changes nothing."""
    from pkilint.document import NodeVisitor

    for klass in cls.__mro__:
        if klass is NodeVisitor:
            return True
        if "match" in vars(klass):
            try:
                source = inspect.getsource(vars(klass)["match"])
            except (OSError, TypeError):
                return False
            if not _SUPER_FIRST.match(source):
                return False
    return False


def _may_match(validator: Any, pdu_class: type, path: str) -> bool:
    """False only when pkilint's ``NodeVisitor.match`` would refuse a node of this type at this path."""
    if not _conjunctive_match(type(validator)):
        return True
    if validator._path is not None and validator._path != path:
        return False
    if validator._path_re is not None and validator._path_re.match(path) is None:
        return False
    return not (validator._pdu_class is not None and not issubclass(pdu_class, validator._pdu_class))


class _IndexedDispatch:
    """A replacement for ``ValidatorContainer._validate_rec``: the same walk, the same validators in
    the same order, but each node only meets the validators that can match its (type, path)."""

    _LIMIT: Final = 100_000

    def __init__(self, validators: list[Any]) -> None:
        self._validators = validators
        self._candidates: dict[tuple[type, str], list[Any]] = {}

    def __call__(self, node: Any, results: list[Any]) -> None:
        key = (type(node.pdu), node.path)
        candidates = self._candidates.get(key)
        if candidates is None:
            if len(self._candidates) >= self._LIMIT:
                self._candidates.clear()
            candidates = [v for v in self._validators if _may_match(v, key[0], key[1])]
            self._candidates[key] = candidates
        for validator in candidates:
            if validator.match(node):
                result = validator.validate_wrapper(node)
                if isinstance(result, list):
                    results += result
                else:
                    results.append(result)
        for child in node.children.values():
            self(child, results)


def index_containers(container: Any) -> Any:
    """Give ``container`` and every container inside it the indexed dispatch; returns ``container``."""
    from pkilint.validation import ValidatorContainer

    if isinstance(container, ValidatorContainer):
        container._validate_rec = _IndexedDispatch(list(container.validators))
        for inner in container.validators:
            index_containers(inner)
    return container


_CACHING: Final = contextvars.ContextVar("qtsp_pkilint_decode_cache", default=False)


class _DecodeCache:
    """Memoises pkilint's DER decoding of the values *inside* a document being validated.

    pkilint's decoding validators decode every extension value and name attribute value of a
    certificate into pyasn1 objects (``pkilint.document.decode_substrate``), and building those
    objects costs more than anything else pkilint does.  Most of these values are the same DER in
    every certificate of one issuer and profile, so this decodes each (schema object, DER) pair
    once and hands the same decoded value to later documents.  That is safe because decoding is a
    pure function of the two, pkilint builds a fresh node tree around the value for each document,
    and failures are never cached (each call raises again).  The one write to a decoded value is
    pyasn1's own: reading an absent component fills it in (a DEFAULT with its default value, an
    OPTIONAL one as an empty schema object), the same for the first reader as for every later one.
    The proof is in ``tests/unit/test_pkilint_dispatch.py``: the same findings as pkilint's own
    decoding and dispatch, for certificate after certificate through one cache.

    A value is kept for good only once it has been asked for a second time (while it waits in a
    small probation table): what every certificate carries stays, while names and key identifiers
    of one certificate each pass through without piling up as long-lived objects, which would make
    the garbage collector's full collections both more frequent and slower.

    It caches only while :func:`cached_decoding` is active, so every other pkilint use in the
    process (and the tests' reference runs) decodes as pkilint does.  The document's own root
    (the whole certificate, unique every time) is decoded before that, so it is never held; the
    schema object is kept with its entry, so a recycled ``id()`` can never match.
    """

    MAX_SUBSTRATE: Final = 4096
    MAX_ENTRIES: Final = 4096
    PROBATION: Final = 512

    def __init__(self, decode: Callable[..., Any]) -> None:
        self.decode = decode
        self._entries: dict[tuple[int, bytes], tuple[object, Any]] = {}
        self._probation: dict[tuple[int, bytes], tuple[object, Any]] = {}
        self.hits = 0
        self.misses = 0

    def __call__(self, substrate: Any, asn1Spec: Any = None, **options: Any) -> Any:
        if not _CACHING.get() or options or asn1Spec is None:
            return self.decode(substrate, asn1Spec=asn1Spec, **options)
        der = bytes(substrate)
        if len(der) > self.MAX_SUBSTRATE:
            return self.decode(substrate, asn1Spec=asn1Spec)
        key = (id(asn1Spec), der)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is asn1Spec:
            self.hits += 1
            return entry[1]
        entry = self._probation.pop(key, None)
        if entry is not None and entry[0] is asn1Spec:
            self.hits += 1
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()  # the recurring values come back after two decodings each
            self._entries[key] = entry
            return entry[1]
        result = self.decode(substrate, asn1Spec=asn1Spec)
        self.misses += 1
        if len(self._probation) >= self.PROBATION:
            self._probation.clear()
        self._probation[key] = (asn1Spec, result)
        return result

    def __len__(self) -> int:
        """Entries kept for good (not those on probation)."""
        return len(self._entries)


_INSTALL_LOCK: Final = threading.Lock()


def decode_cache() -> _DecodeCache:
    """The process's decode cache, put in front of pkilint's ``decode_der`` on first use."""
    from pkilint import document

    with _INSTALL_LOCK:
        current = document.decode_der
        if not isinstance(current, _DecodeCache):
            current = _DecodeCache(current)
            document.decode_der = current
        return current


@contextlib.contextmanager
def cached_decoding() -> Iterator[_DecodeCache]:
    """Within the block (this thread or task only), pkilint's value decoding goes through the cache."""
    cache = decode_cache()
    token = _CACHING.set(True)
    try:
        yield cache
    finally:
        _CACHING.reset(token)


def _dismantle(doc: Any) -> None:
    """Unlink a linted document's node tree (parent <-> children, document <-> root are cycles).

    Reference counting then frees each certificate's few hundred nodes at once; left as cycles,
    they wait for the cyclic garbage collector, which also walks the process's long-lived heap
    (pkilint's validators and schemas) and cost about 10 % of an issuance (measured: 0.7 ms of
    7.5 ms per certificate)."""
    root, doc.root = doc.root, None
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        stack.extend(node.children.values())
        node.children = {}
        node.parent = None
        node.document = None


_CONTAINERS: Final[dict[str, object]] = {}
_CONTAINERS_LOCK: Final = threading.Lock()


class PkilintGate:
    """pkilint's ETSI + RFC 5280 validators, built once per process and certificate type and reused.

    :param dev_host: the loopback host of a development base URL, or None (see module docstring).
    """

    def __init__(self, dev_host: str | None = None) -> None:
        self._dev_host = dev_host

    @staticmethod
    def _container(type_name: str) -> object:
        """pkilint's validators for ``type_name``, built once per process and shared by every gate
        (they hold no state of one certificate; the development host matters only afterwards)."""
        with _CONTAINERS_LOCK:
            found = _CONTAINERS.get(type_name)
            if found is None:
                from pkilint import etsi
                from pkilint.etsi import etsi_constants
                from pkilint.pkix import certificate

                cert_type = etsi_constants.CertificateType[type_name]
                found = index_containers(
                    certificate.create_pkix_certificate_validator_container(
                        etsi.create_decoding_validators(cert_type),
                        etsi.create_validators(cert_type),
                    )
                )
                _CONTAINERS[type_name] = found
            return found

    def warm(self, profiles: list[str]) -> None:
        for name in profiles:
            type_name = PROFILE_CERTIFICATE_TYPES.get(name)
            if type_name is not None:
                self._container(type_name)

    def lint(self, der: bytes, profile_name: str) -> list[Finding]:
        from pkilint import finding_filter, loader
        from pkilint.etsi import create_etsi_finding_filters, etsi_constants

        type_name = PROFILE_CERTIFICATE_TYPES.get(profile_name)
        if type_name is None:
            return [Finding(Severity.FATAL, "qtsp.pkilint.no_type", f"pkilint: no certificate type for {profile_name}")]
        container = self._container(type_name)
        doc = None
        try:
            doc = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "tbs")
            with cached_decoding():
                results = container.validate(doc.root)  # type: ignore[attr-defined]
            cert_type = etsi_constants.CertificateType[type_name]
            results, _ = finding_filter.filter_results(create_etsi_finding_filters(cert_type), results)
            return self._findings(results)
        except Exception as exc:
            return [Finding(Severity.FATAL, "pkilint.exception", f"pkilint could not lint the certificate: {exc}")]
        finally:
            if doc is not None:
                _dismantle(doc)

    def _findings(self, results: list[Any]) -> list[Finding]:
        out: list[Finding] = []
        for result in results:
            for desc in result.finding_descriptions:
                code = str(desc.finding.code)
                severity = Severity[desc.finding.severity.name]
                message = f"pkilint {code} at {result.node.path}" + (f": {desc.message}" if desc.message else "")
                if code in _DEV_DOWNGRADABLE and self._is_dev_host_finding(desc.message, result):
                    severity = Severity.NOTICE
                    message += " (development base URL on loopback: allowed only there)"
                gap = _known_gap(code, desc.message, str(result.node.path))
                if gap is not None:
                    severity = Severity.NOTICE
                    message += f" (known pkilint 0.13 gap: {gap.reason})"
                out.append(Finding(severity, code, message, source="pkilint"))
        return out

    def _is_dev_host_finding(self, message: str | None, result: object) -> bool:
        """True only for a URI in AIA or a CRL distribution point whose host *is* the development host."""
        if self._dev_host is None:
            return False
        node = getattr(result, "node", None)
        path = str(getattr(node, "path", ""))
        if not path.endswith("uniformResourceIdentifier") or not (
            "authorityInfoAccessSyntax" in path or "cRLDistributionPoints" in path
        ):
            return False
        return urlsplit(str(getattr(node, "pdu", ""))).hostname == self._dev_host
