"""Application shell: configuration, CLI, app factory."""
