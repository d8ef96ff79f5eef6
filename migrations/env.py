"""Alembic environment: runs migrations against the URL given by :func:`migrations.alembic_config`."""

from __future__ import annotations

from typing import Any

from alembic import context

from ca.store.db import Database
from ca.store.models import Base, UTCDateTime
from ra.store import models as _ra_models  # noqa: F401  (the RA's tables share Base's metadata)

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render our UTCDateTime as a plain timezone-aware DateTime in migration scripts."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    db = Database(url)
    try:
        with db.engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=True,
                render_item=render_item,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        db.dispose()


run_migrations_online()
