"""Revoking a license closes its live sessions on every worker (PostgreSQL + Redis)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import daphne, free_port, manage, project_env, scripted_server_env

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.asyncio]


async def _closed(ws: object, timeout_s: float) -> tuple[dict, int | None]:
    last: dict = {}
    try:
        while True:
            last = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))  # type: ignore[attr-defined]
    except ConnectionClosed as closed:
        return last, closed.rcvd.code if closed.rcvd else None


async def test_revocation_closes_sessions_on_both_workers(
    tmp_path, scratch_database, redis_url
) -> None:
    env = project_env(
        tmp_path,
        DATABASE_URL=scratch_database,
        REDIS_URL=redis_url,
        CACHE_KEY_PREFIX=f"test-{uuid.uuid4().hex[:8]}",
        REALTIME_LICENSE_CHECK_S="1",
        VOICE_WARM_UP="false",
    )
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_demo")
    key = manage(env, "createlicense", "two-workers").stdout.splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    with daphne(env, free_port()) as worker_a, daphne(env, free_port()) as worker_b:
        sockets = []
        for base in (worker_a, worker_b, worker_b):
            ws = await ws_connect(
                base.replace("http", "ws") + "/v1/realtime", additional_headers=headers
            )
            created = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert created["type"] == "session.created", created
            sockets.append(ws)
        revoked_at = time.monotonic()
        await asyncio.to_thread(manage, env, "revokelicense", key[:12])
        results = await asyncio.gather(*(_closed(ws, 10) for ws in sockets))
        elapsed_s = time.monotonic() - revoked_at
    for last, code in results:
        assert last.get("type") == "error", results
        assert last["type"] == "error" and last["error"]["code"] == "invalid_api_key"
        assert code == 4001
    assert elapsed_s < 5, elapsed_s


async def _open(url: str, key: str) -> str:
    """Connect and return the first event's type (session.created or error)."""
    async with ws_connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if first["type"] == "error":
            return first["error"]["code"]
        # Hold the slot until every connect has been decided.
        await asyncio.sleep(3)
        return first["type"]


async def test_two_workers_admitting_at_once_never_exceed_the_limit(
    tmp_path, scratch_database
) -> None:
    env = scripted_server_env(tmp_path, TEST_SERVER_DATABASE_URL=scratch_database)
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_demo")
    key = manage(env, "createlicense", "two", "--max-sessions", "2").stdout.splitlines()[-1]
    with daphne(env, free_port()) as worker_a, daphne(env, free_port()) as worker_b:
        urls = [base.replace("http", "ws") + "/v1/realtime" for base in (worker_a, worker_b)]
        outcomes = await asyncio.gather(*(_open(urls[i % 2], key) for i in range(10)))
    assert sorted(outcomes) == ["session.created"] * 2 + ["too_many_sessions"] * 8, outcomes
