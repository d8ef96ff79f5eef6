"""Common PKI (ISIS-MTT) Admission extension, id-isismtt-at-admission 1.3.36.8.3.3 (STANDARDS.md §1.8).

ASN.1 (BouncyCastle ``org.bouncycastle.asn1.isismtt.x509``, OpenSSL ``v3_admis.c``, cryptography
``x509.Admissions`` all agree)::

    AdmissionSyntax ::= SEQUENCE { admissionAuthority GeneralName OPTIONAL,
                                   contentsOfAdmissions SEQUENCE OF Admissions }
    Admissions ::= SEQUENCE { admissionAuthority [0] EXPLICIT GeneralName OPTIONAL,
                              namingAuthority    [1] EXPLICIT NamingAuthority OPTIONAL,
                              professionInfos    SEQUENCE OF ProfessionInfo }
    ProfessionInfo ::= SEQUENCE { namingAuthority [0] EXPLICIT NamingAuthority OPTIONAL,
                                  professionItems SEQUENCE OF DirectoryString (SIZE(1..128)),
                                  professionOIDs SEQUENCE OF OBJECT IDENTIFIER OPTIONAL,
                                  registrationNumber PrintableString (SIZE(1..128)) OPTIONAL,
                                  addProfessionInfo OCTET STRING OPTIONAL }
    NamingAuthority ::= SEQUENCE { namingAuthorityId OBJECT IDENTIFIER OPTIONAL,
                                   namingAuthorityUrl IA5String OPTIONAL,
                                   namingAuthorityText DirectoryString (SIZE(1..128)) OPTIONAL }

Encoding choices made by :func:`admission_der`:

* one ``Admissions`` holding one ``ProfessionInfo``;
* the admitting body (e.g. a chamber) goes into the *outer* ``AdmissionSyntax.admissionAuthority``
  as a ``directoryName`` whose only attribute is ``organizationName`` (UTF8String). Common PKI
  allows any GeneralName there; a directoryName is what BouncyCastle, OpenSSL and cryptography
  print as a name. pkilint 0.13.3 has no ASN.1 spec for this extension and does not decode it;
* ``professionItems`` is a single UTF8String; ``professionOIDs`` holds the profession OID if given;
* ``ProfessionInfo.namingAuthority`` carries ``namingAuthorityId`` = 1.3.36.8.3.11.1
  ("Recht, Wirtschaft, Steuern") when the profession OID is in that arc, or the OID the caller gives.

Put it into a certificate non-critical: ``x509.UnrecognizedExtension(ADMISSION, der)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from asn1crypto import x509 as ax509

from ca.asn1 import _specs
from ca.asn1._specs import ID_ISISMTT_NAMING_AUTHORITY_RWS
from ca.asn1.errors import Asn1DecodeError, Asn1EncodeError

__all__ = ["AdmissionEntry", "AdmissionInfo", "ProfessionEntry", "admission_der", "parse_admission"]

_UB_PROFESSION = 128  # Common PKI: DirectoryString (SIZE(1..128)) / PrintableString (SIZE(1..128))


@dataclass(frozen=True, slots=True)
class ProfessionEntry:
    """One ProfessionInfo.

    :ivar items: professionItems (text).
    :ivar oids: professionOIDs (dotted).
    :ivar registration_number: registrationNumber, or None.
    :ivar naming_authority_oid: namingAuthority.namingAuthorityId, or None.
    :ivar naming_authority_url: namingAuthority.namingAuthorityUrl, or None.
    :ivar naming_authority_text: namingAuthority.namingAuthorityText, or None.
    :ivar add_profession_info: addProfessionInfo octets, or None.
    """

    items: tuple[str, ...]
    oids: tuple[str, ...]
    registration_number: str | None
    naming_authority_oid: str | None
    naming_authority_url: str | None
    naming_authority_text: str | None
    add_profession_info: bytes | None


@dataclass(frozen=True, slots=True)
class AdmissionEntry:
    """One Admissions element.

    :ivar authority: its own ``[0]`` admissionAuthority as text (see :class:`AdmissionInfo`), or None.
    :ivar naming_authority_oid: its ``[1]`` namingAuthority's id, or None.
    :ivar professions: its professionInfos.
    """

    authority: str | None
    naming_authority_oid: str | None
    professions: tuple[ProfessionEntry, ...]


@dataclass(frozen=True, slots=True)
class AdmissionInfo:
    """A decoded AdmissionSyntax.

    :ivar authority: the outer admissionAuthority as text: for a directoryName its organizationName
        (or the whole name if it has none), for URI/DNS/email the string, else
        ``"<choice>:<value>"``; None if absent.
    :ivar admissions: contentsOfAdmissions, in order.
    """

    authority: str | None
    admissions: tuple[AdmissionEntry, ...]

    @property
    def professions(self) -> tuple[ProfessionEntry, ...]:
        """Every ProfessionInfo of every Admissions, in order."""
        return tuple(p for a in self.admissions for p in a.professions)


def admission_der(
    *,
    authority: str | None,
    profession: str,
    profession_oid: str | None,
    registration_number: str | None,
    naming_authority_oid: str | None = None,
) -> bytes:
    """DER of the AdmissionSyntax extension value (see the module docstring for the choices). Cached.

    :param authority: name of the admitting body (e.g. ``"Patentanwaltskammer"``), or None to omit it.
    :param profession: the profession text (professionItems), 1..128 characters.
    :param profession_oid: dotted profession OID (e.g. 1.3.36.8.3.11.1.19 Patentanwalt), or None.
    :param registration_number: registrationNumber (PrintableString, 1..128), or None.
    :param naming_authority_oid: namingAuthorityId; None derives 1.3.36.8.3.11.1 from the profession
        OID's arc.
    :raises Asn1EncodeError: a value cannot be encoded as Common PKI asks.
    """
    return _admission_der(
        authority=authority,
        profession=profession,
        profession_oid=profession_oid,
        registration_number=registration_number,
        naming_authority_oid=naming_authority_oid,
    )


@functools.lru_cache(maxsize=256)
def _admission_der(
    *,
    authority: str | None,
    profession: str,
    profession_oid: str | None,
    registration_number: str | None,
    naming_authority_oid: str | None,
) -> bytes:
    if not isinstance(profession, str) or not 1 <= len(profession) <= _UB_PROFESSION:
        raise Asn1EncodeError(
            f"Common PKI ProfessionInfo: professionItems entry must be 1..{_UB_PROFESSION} characters"
        )
    info: dict[str, Any] = {
        "profession_items": _specs.DirectoryStrings([ax509.DirectoryString(name="utf8_string", value=profession)])
    }
    if profession_oid is not None:
        _specs.check_oid(profession_oid, "Common PKI ProfessionInfo: professionOID")
        info["profession_oids"] = _specs.ObjectIdentifiers([profession_oid])
    if naming_authority_oid is None and (
        profession_oid is not None and profession_oid.startswith(ID_ISISMTT_NAMING_AUTHORITY_RWS + ".")
    ):
        naming_authority_oid = ID_ISISMTT_NAMING_AUTHORITY_RWS
    if naming_authority_oid is not None:
        _specs.check_oid(naming_authority_oid, "Common PKI NamingAuthority: namingAuthorityId")
        info["naming_authority"] = _specs.NamingAuthority({"naming_authority_id": naming_authority_oid})
    if registration_number is not None:
        if not 1 <= len(registration_number) <= _UB_PROFESSION or not _specs.is_printable_string(registration_number):
            raise Asn1EncodeError(
                f'Common PKI ProfessionInfo: registrationNumber "{registration_number}" is not a '
                f"PrintableString of 1..{_UB_PROFESSION} characters"
            )
        info["registration_number"] = registration_number
    syntax: dict[str, Any] = {
        "contents_of_admissions": _specs.AdmissionsSeq(
            [_specs.Admissions({"profession_infos": _specs.ProfessionInfos([_specs.ProfessionInfo(info)])})]
        )
    }
    if authority is not None:
        if not isinstance(authority, str) or not authority:
            raise Asn1EncodeError("Common PKI AdmissionSyntax: admissionAuthority name must not be empty")
        syntax["admission_authority"] = ax509.GeneralName(
            name="directory_name", value=ax509.Name.build({"organization_name": authority})
        )
    der = _specs.AdmissionSyntax(syntax).dump()
    assert isinstance(der, bytes)
    return der


def parse_admission(der: bytes) -> AdmissionInfo:
    """Decode an AdmissionSyntax extension value (strict DER).

    :raises Asn1DecodeError: not the DER encoding of an AdmissionSyntax.
    """
    if not isinstance(der, bytes | bytearray):
        raise Asn1DecodeError("Admission: expected bytes")
    try:
        parsed = _specs.AdmissionSyntax.load(bytes(der), strict=True)
        _ = parsed.native  # force a full parse
        if parsed.dump(force=True) != bytes(der):
            raise Asn1DecodeError("Admission: not DER (re-encoding differs)")
        return AdmissionInfo(
            authority=_general_name_text(parsed["admission_authority"]),
            admissions=tuple(_admission_entry(a) for a in parsed["contents_of_admissions"]),
        )
    except Asn1DecodeError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise Asn1DecodeError(f"Admission: not a DER AdmissionSyntax value: {_specs.one_line(exc)}") from exc


def _admission_entry(adm: Any) -> AdmissionEntry:
    na = adm["naming_authority"]
    return AdmissionEntry(
        authority=_general_name_text(adm["admission_authority"]),
        naming_authority_oid=_opt_oid(na["naming_authority_id"]) if na.native is not None else None,
        professions=tuple(_profession_entry(p) for p in adm["profession_infos"]),
    )


def _profession_entry(info: Any) -> ProfessionEntry:
    na = info["naming_authority"]
    has_na = na.native is not None
    oids = info["profession_oids"]
    reg = info["registration_number"].native
    add = info["add_profession_info"].native
    return ProfessionEntry(
        items=tuple(str(item.native) for item in info["profession_items"]),
        oids=tuple(o.dotted for o in oids) if oids.native is not None else (),
        registration_number=None if reg is None else str(reg),
        naming_authority_oid=_opt_oid(na["naming_authority_id"]) if has_na else None,
        naming_authority_url=_opt_str(na["naming_authority_url"].native) if has_na else None,
        naming_authority_text=_opt_str(na["naming_authority_text"].native) if has_na else None,
        add_profession_info=None if add is None else bytes(add),
    )


def _opt_oid(value: Any) -> str | None:
    return None if value.native is None else str(value.dotted)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _general_name_text(gn: Any) -> str | None:
    if gn.native is None:
        return None
    if gn.name == "directory_name":
        name = gn.chosen
        for rdn in name.chosen:
            for atv in rdn:
                if atv["type"].native == "organization_name":
                    return str(atv["value"].native)
        return str(name.human_friendly)
    if gn.name in ("uniform_resource_identifier", "dns_name", "rfc822_name"):
        return str(gn.native)
    return f"{gn.name}:{gn.native}"
