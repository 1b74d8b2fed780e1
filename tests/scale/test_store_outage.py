"""A database that refuses connections mid-conversation loses no transcript item.

A live Daphne (scripted engines) on a real PostgreSQL database; the database stops
accepting connections for 3 s (``ALLOW_CONNECTIONS false`` and its backends terminated)
while the client keeps talking. Afterwards every item is stored, exactly once.
"""

from __future__ import annotations

import asyncio
import json
import time

import psycopg
import pytest
from psycopg import sql
from websockets.asyncio.client import connect as ws_connect

from tests.helpers import daphne, free_port, manage, scripted_server_env

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio]


def _set_connections(admin_url: str, database: str, *, allowed: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(database), sql.SQL("true" if allowed else "false")
            )
        )
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )


async def _turn(ws: object, text: str) -> None:
    send = ws.send  # type: ignore[attr-defined]
    await send(
        json.dumps(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
    )
    await send(json.dumps({"type": "response.create"}))
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 20))  # type: ignore[attr-defined]
        assert event["type"] != "error", event
        if event["type"] == "response.done":
            return


async def test_items_survive_a_database_outage(tmp_path, scratch_database, postgres_url) -> None:
    env = scripted_server_env(tmp_path, TEST_SERVER_DATABASE_URL=scratch_database)
    database = scratch_database.rsplit("/", 1)[-1]
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_demo")
    key = manage(env, "createlicense", "outage").stdout.splitlines()[-1]
    turns = [f"turn number {i}" for i in range(6)]
    with daphne(env, free_port()) as base:
        async with ws_connect(
            base.replace("http", "ws") + "/v1/realtime",
            additional_headers={"Authorization": f"Bearer {key}"},
        ) as ws:
            created = json.loads(await asyncio.wait_for(ws.recv(), 20))
            session_id = created["session"]["id"]
            await ws.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {"type": "realtime", "output_modalities": ["text"]},
                    }
                )
            )
            await _turn(ws, turns[0])
            await asyncio.to_thread(_set_connections, postgres_url, database, allowed=False)
            refused_at = time.monotonic()
            try:
                # The conversation goes on while nothing can be written.
                for text in turns[1:4]:
                    await _turn(ws, text)
                await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - refused_at)))
            finally:
                await asyncio.to_thread(_set_connections, postgres_url, database, allowed=True)
            for text in turns[4:]:
                await _turn(ws, text)
        # Give the retries (backoff up to 5 s) time to drain before looking.
        deadline = time.monotonic() + 20
        with psycopg.connect(scratch_database) as conn:
            while True:
                rows = conn.execute(
                    "SELECT item_id, role, text FROM conversations_conversationitem "
                    "WHERE conversation_id = %s ORDER BY position",
                    (session_id,),
                ).fetchall()
                ended = conn.execute(
                    "SELECT ended_at FROM conversations_conversation WHERE id = %s",
                    (session_id,),
                ).fetchone()
                if (len(rows) >= 12 and ended[0] is not None) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
    assert [text for _, role, text in rows if role == "user"] == turns
    assert [text for _, role, text in rows if role == "assistant"] == [
        f"You said: {t}" for t in turns
    ]
    assert len({item_id for item_id, _, _ in rows}) == len(rows) == 12
    assert ended[0] is not None
