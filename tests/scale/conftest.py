"""Real PostgreSQL and Redis, from DATABASE_URL / REDIS_URL (``.ci/run`` starts both)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

REASON = "set {var} to a throwaway server to run the scale-out tests (.ci/run provides one)"


def _required(var: str, scheme: tuple[str, ...]) -> str:
    value = os.environ.get(var, "")
    if not value.startswith(scheme):
        if os.environ.get("CI"):
            pytest.fail(f"{var} must point at a real server in CI")
        pytest.skip(REASON.format(var=var))
    return value


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _required("REDIS_URL", ("redis://", "rediss://"))


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return _required("DATABASE_URL", ("postgres://", "postgresql://"))


@pytest.fixture
def scratch_database(postgres_url: str) -> Iterator[str]:
    """A brand-new database on the PostgreSQL server, dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"rt_scale_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = postgres_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
