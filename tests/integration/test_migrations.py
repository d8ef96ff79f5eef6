"""Alembic creates every table, and the models and the migrations agree (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from ca.store.db import Database
from ca.store.models import Base
from migrations import downgrade, upgrade
from ra.store import models as _ra_models  # noqa: F401  (the RA's tables on the same metadata)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'm.db'}"


def _diff(url: str) -> list[object]:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata))
    finally:
        db.dispose()


def test_models_and_migrations_agree(db_url: str) -> None:
    upgrade(db_url)
    assert _diff(db_url) == []


def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    upgrade(db_url)
    downgrade(db_url, "base")
    db = Database(db_url)
    try:
        tables = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    finally:
        db.dispose()
    assert tables == set()
    upgrade(db_url)
    assert _diff(db_url) == []


def test_every_model_table_is_created_by_migrations(db_url: str) -> None:
    upgrade(db_url)
    db = Database(db_url)
    try:
        tables = set(inspect(db.engine).get_table_names())
        with db.engine.connect() as conn:
            head = conn.execute(text("SELECT seq, hash FROM audit_head")).all()
    finally:
        db.dispose()
    assert set(Base.metadata.tables) <= tables
    assert head == [(0, "0" * 64)]  # the audit chain starts with the schema


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.dispose()
