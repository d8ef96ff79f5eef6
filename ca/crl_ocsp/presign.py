"""Pre-signed OCSP responses (RFC 5019 §2.1.1 / RFC 9919: pre-produced responses).

* :meth:`OCSPPresigner.presign` is the :class:`~ca.crl_ocsp.revocation.RevocationService`
  ``on_change`` hook: after a revocation or activation commits (which deleted the old response in
  its own transaction), the certificate's response is signed again at once.
* :meth:`OCSPPresigner.refresh_due` is the scheduler job: it (re)signs the responses of every
  certificate of every served CA — good, held, revoked and expired ones (eIDAS Art. 24(4): status
  stays available after expiry) — whose stored response is missing, has passed half its validity
  (so a response is never served close to its nextUpdate; STANDARDS.md §2.4, ≤ 24 h windows) or
  was signed by a responder whose certificate is no longer valid.

Each stored value holds one OCSPResponse per hash algorithm in
:data:`~ca.crl_ocsp.ocsp.PRESIGNED_HASHES`, concatenated: the CertID of a pre-produced response
cannot follow the request, so we keep one for SHA-1 and one for SHA-256 CertIDs.  Other hashes
and requests with a nonce are signed live.

A signature takes place outside any transaction (the HSM may be slow); the write then stores it
only if the certificate's status is still the one signed (:func:`ca.store.ocsp_repo.store_presigned`
locks the certificate row and compares), so a revocation committed while a refresh was signing is
never overwritten by a stale "good".
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Final

from ca.asn1.ocsp_response import cert_id_der
from ca.crl_ocsp.ocsp import (
    PRESIGNED_HASHES,
    InconsistentStatus,
    IssuerEntry,
    OCSPResponder,
    sign_response,
    single_response,
)
from ca.store import ocsp_repo
from ca.store.ocsp_repo import CertificateStatus, PresignedWrite

__all__ = ["OCSPPresigner"]

log = logging.getLogger(__name__)

_WRITE_CHUNK: Final = 200


class OCSPPresigner:
    """Signs and stores pre-produced responses with the responder's directory, keys and settings."""

    def __init__(self, responder: OCSPResponder) -> None:
        self.responder = responder

    def _sign(
        self, issuer: IssuerEntry, serial: str, status: CertificateStatus, now: dt.datetime
    ) -> PresignedWrite | None:
        if issuer.closed:
            return None  # a closed CA signs live, with its own key (ResponderDirectory)
        signer = issuer.signer(now)
        if signer is None:
            log.error("OCSP pre-signing: CA %s has no valid responder certificate", issuer.name)
            return None
        this_update = now.replace(microsecond=0)
        next_update = this_update + self.responder.validity
        value = int(serial, 16)
        variants = []
        for h in PRESIGNED_HASHES:
            cert_id = cert_id_der(h, issuer.name_hashes[h], issuer.key_hashes[h], value)
            single = single_response(cert_id, status, this_update, next_update, issuer.archive_cutoff)
            variants.append(sign_response(signer, [single], this_update))
        return PresignedWrite(
            serial=serial,
            signed_status=status,
            der=b"".join(variants),
            this_update=this_update,
            next_update=next_update,
            responder_id=signer.id,
        )

    def _sign_and_store(self, issuer: IssuerEntry, serials: Sequence[str], now: dt.datetime) -> int:
        db = self.responder.db
        with db.read() as s:
            statuses = ocsp_repo.certificate_statuses(s, issuer.id, serials)
        writes = []
        for serial, status in statuses.items():
            try:
                write = self._sign(issuer, serial, status, now)
            except InconsistentStatus:
                log.exception("OCSP pre-signing: cannot sign %s:%s", issuer.name, serial)
                continue
            if write is not None:
                writes.append(write)
        stored = 0
        for i in range(0, len(writes), _WRITE_CHUNK):
            with db.write() as s:
                stored += ocsp_repo.store_presigned(s, issuer.id, writes[i : i + _WRITE_CHUNK], now)
        return stored

    def presign(self, issuer_name: str, serial: str) -> bool:
        """Sign and store the response of one certificate now (the revocation hook).

        :returns: whether a response was stored (False for a CA without a responder, an unknown
            serial, or a status that changed meanwhile — the change's own hook signs that one).
        """
        issuer = self.responder.directory.get().by_name.get(issuer_name)
        if issuer is None:
            return False
        return self._sign_and_store(issuer, [serial], self.responder.clock()) == 1

    def on_change(self, issuer_name: str, serial: str) -> None:
        """The RevocationService hook: :meth:`presign`, logging failures (the scheduler retries).

        This process's answer cache is emptied first; other processes' caches expire within
        ``cache_seconds`` (under one second)."""
        self.responder.forget_cached_answers()
        try:
            self.presign(issuer_name, serial)
        except Exception:
            log.exception("OCSP pre-signing after a status change of %s:%s failed", issuer_name, serial)

    def refresh_due(self, now: dt.datetime | None = None, batch: int = 500) -> int:
        """Re-sign up to ``batch`` responses that are missing or past half their validity.

        :returns: how many responses were stored (the scheduler calls again while it is ``batch``).
        """
        now = now or self.responder.clock()
        refresh_before = now + self.responder.validity / 2
        done = 0
        for issuer in self.responder.directory.get().by_name.values():
            if done >= batch:
                break
            if issuer.closed:
                continue
            with self.responder.db.read() as s:
                serials = ocsp_repo.due_for_refresh(
                    s,
                    issuer_id=issuer.id,
                    responder_ids=sorted(issuer.valid_responder_ids(now)),
                    refresh_before=refresh_before,
                    limit=batch - done,
                )
            if serials:
                done += self._sign_and_store(issuer, serials, now)
        return done
