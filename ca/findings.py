"""Findings: the results of compliance rules, as data (the pkilint model).

A rule never returns a boolean: it returns findings.  Issuance is refused on any finding of
severity ERROR or FATAL.  A finding's ``message`` starts with the clause it enforces, e.g.
``EN 319 412-1 §5.1.3: serialNumber "X123" is not <type><country>-<id>``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Finding", "Severity", "errors_in", "format_findings"]


class Severity(enum.IntEnum):
    INFO = 0
    NOTICE = 1
    WARNING = 2
    ERROR = 3
    FATAL = 4


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of one rule.

    :ivar severity: how bad it is.
    :ivar code: a stable code ``<source>.<clause>.<condition>``, e.g. ``etsi.en_319_412_1.nat-5.1.3.serial_syntax``.
    :ivar message: a human-readable line that names the rule, e.g. ``EN 319 412-2 NAT-4.2.4-1: ...``.
    :ivar source: ``"qtsp"`` for our own rules, ``"pkilint"`` for the oracle.
    """

    severity: Severity
    code: str
    message: str
    source: str = "qtsp"

    def __str__(self) -> str:
        return self.message


def errors_in(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that stop issuance (ERROR and FATAL)."""
    return [f for f in findings if f.severity >= Severity.ERROR]


def format_findings(findings: Iterable[Finding]) -> str:
    return "; ".join(f.message for f in findings)
