"""ra.store: the RA's tables (on :class:`ca.store.models.Base`, one metadata) and repository."""
