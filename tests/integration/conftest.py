"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Home
from tests.integration.ra_support import RAEnv, ra_env


@pytest.fixture
def env(db_home: Home) -> Iterator[RAEnv]:
    """The registration authority on a home of each database (SQLite, PostgreSQL)."""
    with ra_env(db_home.path) as e:
        yield e
