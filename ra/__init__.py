"""Registration authority (later issues)."""
