"""A sliding-window limit on failed attempts (logins, revocation and order passwords, TANs and
registration secrets, shop codes, transport-PIN reveal passwords), counted from failure rows in
the database so the limit holds across processes and restarts."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence

__all__ = ["retry_after"]


def retry_after(
    now: dt.datetime, window: dt.timedelta, groups: Iterable[tuple[Sequence[dt.datetime], int]]
) -> int | None:
    """Seconds until the caller may try again, or None when no limit is reached.

    :param groups: per limited key (account, card, client address) the failure times inside the
        window, oldest first, and the number of failures the key may have in the window.  A key at
        its limit frees up when the oldest of its last ``limit`` failures leaves the window.
    """
    until: list[dt.datetime] = []
    for times, limit in groups:
        if limit > 0 and len(times) >= limit:
            until.append(times[-limit] + window)
    if not until:
        return None
    return max(1, math.ceil((max(until) - now).total_seconds()))
