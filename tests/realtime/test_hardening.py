"""The WebSocket edge as an attacker, a careless client and an operator would try it.

Through Channels' WebsocketCommunicator: who a session belongs to, which hosts and key
transports are accepted, admission under load, floods, clients that stop reading, failures
at every step of the connect path, and licenses that stop being usable mid-session.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from apps.conversations.models import Conversation
from apps.licensing.models import License
from apps.licensing.services import client_secret_create, license_create, license_revoke
from apps.realtime import consumers, runtime
from apps.realtime.live import LiveSessions
from apps.realtime.protocol.session_config import session_defaults
from apps.realtime.session.input_audio import InputAudio
from apps.realtime.session.session import RealtimeSession
from apps.realtime.store import DatabaseStore

from .test_consumers import Client, connect, refused

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@database_sync_to_async
def _rows() -> list[Conversation]:
    return list(Conversation.objects.order_by("started_at"))


@database_sync_to_async
def _secret(license: License, *, user_id: str = "") -> str:
    config = session_defaults(instructions="x", voice="alloy")
    issued = client_secret_create(
        license=license, session_config=config, ttl_s=600, dialect="ga", user_id=user_id
    )
    return issued.value


async def _created(client: Client) -> dict[str, Any]:
    created = await client.recv()
    assert created["type"] == "session.created", created
    return created


async def _closed_with(client: Client, timeout_s: float = 8.0) -> tuple[list[dict], dict]:
    """Events up to the close, and the close itself."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        output = await client.comm.receive_output(timeout=max(0.1, deadline - time.monotonic()))
        if output["type"] == "websocket.close":
            return events, output
        events.append(json.loads(output["text"]))


# --- end users kept apart ------------------------------------------------------------------


async def test_a_secret_minted_for_a_user_cannot_open_another_users_session(
    issued: Any, voices: Any
) -> None:
    secret = await _secret(issued.license, user_id="alice")
    client, _, _ = await connect("/v1/realtime?userId=mallory", key=secret)
    error, closed = await refused(client)
    assert error["error"]["code"] == "user_mismatch"
    assert closed["code"] == 4003
    assert await _rows() == []
    # Without userId, or with its own, the secret's user is the session's user.
    for path in ("/v1/realtime", "/v1/realtime?userId=alice"):
        client, _, _ = await connect(path, key=secret)
        created = await _created(client)
        await client.comm.disconnect()
        row = await database_sync_to_async(Conversation.objects.get)(pk=created["session"]["id"])
        assert row.user_id == "alice"


async def test_license_keys_may_act_for_any_user(issued: Any, voices: Any) -> None:
    client, _, _ = await connect("/v1/realtime?userId=bob", key=issued.key)
    created = await _created(client)
    await client.comm.disconnect()
    row = await database_sync_to_async(Conversation.objects.get)(pk=created["session"]["id"])
    assert row.user_id == "bob"


async def test_a_spoofed_host_does_not_pass_the_same_origin_rule(issued: Any, voices: Any) -> None:
    secret = await _secret(issued.license)
    client, _, _ = await connect(
        key=secret, headers=[(b"host", b"evil.example"), (b"origin", b"http://evil.example")]
    )
    error, closed = await refused(client)
    assert error["error"]["code"] == "host_not_allowed"
    assert closed["code"] == 4003
    # The real host with its own origin still works.
    client, _, _ = await connect(
        key=secret, headers=[(b"host", b"testserver"), (b"origin", b"http://testserver")]
    )
    await _created(client)
    await client.comm.disconnect()


async def test_keys_in_urls_can_be_switched_off(issued: Any, voices: Any, settings: Any) -> None:
    settings.REALTIME_ALLOW_KEYS_IN_URL = False
    client, _, _ = await connect(f"/v1/realtime?api_key={issued.key}")
    error, closed = await refused(client)
    assert error["error"]["code"] == "missing_api_key"
    assert "URL" in error["error"]["message"]
    assert closed["code"] == 4001
    client, _, _ = await connect(key=issued.key)
    await _created(client)
    await client.comm.disconnect()


# --- admission ------------------------------------------------------------------------------


async def test_a_full_worker_refuses_with_1013(issued: Any, voices: Any, settings: Any) -> None:
    settings.REALTIME_MAX_SESSIONS_PER_WORKER = 1
    first, _, _ = await connect(key=issued.key)
    await _created(first)
    second, _, _ = await connect(key=issued.key)
    error, closed = await refused(second)
    assert error["error"]["code"] == "server_busy"
    assert closed["code"] == 1013
    await first.comm.disconnect()
    third, _, _ = await connect(key=issued.key)
    await _created(third)
    await third.comm.disconnect()


async def test_connects_arriving_together_cannot_all_pass_the_worker_cap(
    db: Any, voices: Any, settings: Any
) -> None:
    settings.REALTIME_MAX_SESSIONS_PER_WORKER = 2
    issued = await database_sync_to_async(license_create)(name="many", max_concurrent_sessions=9)
    clients = [c for c, _, _ in await asyncio.gather(*(connect(key=issued.key) for _ in range(5)))]
    firsts = [await c.recv() for c in clients]
    kinds = sorted(e["type"] if e["type"] != "error" else e["error"]["code"] for e in firsts)
    assert kinds == ["server_busy"] * 3 + ["session.created"] * 2
    for client in clients:
        await client.comm.disconnect()


async def test_a_lagging_event_loop_refuses_new_sessions(issued: Any, voices: Any) -> None:
    first, _, _ = await connect(key=issued.key)
    await _created(first)
    await asyncio.sleep(0.2)  # the lag sampler is running now
    time.sleep(0.4)  # noqa: ASYNC251 - the point: block the loop as overload would
    await asyncio.sleep(0.2)
    second, _, _ = await connect(key=issued.key)
    error, closed = await refused(second)
    assert error["error"]["code"] == "server_busy"
    assert closed["code"] == 1013
    await first.comm.disconnect()


async def test_a_saturated_event_loop_refuses_new_sessions(
    issued: Any, voices: Any, settings: Any
) -> None:
    # Half a core: the spin below reaches it even when other processes share the CPUs.
    settings.REALTIME_MAX_LOOP_BUSY_PERCENT = 50
    first, _, _ = await connect(key=issued.key)
    await _created(first)
    third, _, _ = await connect(key=issued.key)  # an idle loop admits
    await _created(third)
    await third.comm.disconnect()
    # Keep the loop's thread on the CPU nearly all the time, in slices short enough that
    # the lag stays under its limit: only the busy share can refuse.
    until = time.monotonic() + 2.5
    while time.monotonic() < until:
        spin_until = time.monotonic() + 0.03
        while time.monotonic() < spin_until:
            pass
        await asyncio.sleep(0)
    second, _, _ = await connect(key=issued.key)
    error, closed = await refused(second)
    assert error["error"]["code"] == "server_busy"
    assert closed["code"] == 1013
    await first.comm.disconnect()


@pytest.mark.parametrize(
    "step",
    ["engines", "session_init", "store_start", "register", "session_start"],
)
async def test_a_failure_after_the_row_exists_ends_the_row(
    issued: Any, voices: Any, monkeypatch: Any, step: str
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"injected failure at {step}")

    async def aboom(*args: Any, **kwargs: Any) -> Any:
        boom()

    target = {
        "engines": (runtime, "engines", boom),
        "session_init": (RealtimeSession, "__init__", boom),
        "store_start": (DatabaseStore, "start", boom),
        "register": (LiveSessions, "register", boom),
        "session_start": (RealtimeSession, "start", aboom),
    }[step]
    monkeypatch.setattr(*target)
    client, _, _ = await connect(key=issued.key)
    events, closed = await _closed_with(client)
    assert [e["error"]["code"] for e in events if e["type"] == "error"] == ["server_error"]
    assert closed["code"] in (1011, 4000)
    rows = await _rows()
    assert len(rows) == 1 and rows[0].ended_at is not None, step
    assert rows[0].end_reason == "error"


# --- bounded input, and sessions that never go silent ------------------------------------------


async def test_a_flooding_client_is_told_then_closed(
    issued: Any, voices: Any, settings: Any
) -> None:
    settings.REALTIME_INBOUND_EVENTS_PER_S = 20
    settings.REALTIME_INBOUND_BURST_EVENTS = 20
    settings.REALTIME_INBOUND_GRACE_S = 1
    client, _, _ = await connect(key=issued.key)
    await _created(client)
    frame = json.dumps({"type": "input_audio_buffer.clear"})
    closed = None
    started = time.monotonic()
    while time.monotonic() - started < 5:
        try:
            await client.comm.send_to(text_data=frame)
        except Exception:  # noqa: BLE001 - the server closed the socket
            break
        await asyncio.sleep(0.002)
        if not client.comm.output_queue.empty():
            output = client.comm.output_queue.get_nowait()
            if output["type"] == "websocket.close":
                closed = output
                break
            client.events.append(json.loads(output["text"]))
    if closed is None:
        more, closed = await _closed_with(client)
        client.events.extend(more)
    errors = [e for e in client.events if e["type"] == "error"]
    assert errors and all(e["error"]["code"] == "rate_limit_exceeded" for e in errors)
    # One error when the flood begins, then at most one a second, not one per frame.
    assert len(errors) <= 4
    assert closed["code"] == 1008
    cleared = sum(e["type"] == "input_audio_buffer.cleared" for e in client.events)
    assert 20 <= cleared < 200
    (row,) = await _rows()
    assert row.end_reason == "client_flooding" and row.ended_at is not None


async def test_a_client_that_stops_reading_is_disconnected(
    issued: Any, voices: Any, settings: Any, monkeypatch: Any
) -> None:
    settings.REALTIME_OUTBOX_STALL_S = 1
    settings.REALTIME_INBOUND_BURST_EVENTS = 5000
    sent: list[str] = []
    stalled = asyncio.Event()

    async def stalled_send(self: Any, text_data: str | None = None, **kwargs: Any) -> None:
        # A transport with backpressure whose client stopped reading after session.created.
        sent.append(text_data or "")
        if len(sent) > 1:
            stalled.set()
            await asyncio.Event().wait()

    monkeypatch.setattr(consumers.RealtimeConsumer, "send", stalled_send)
    client, _, _ = await connect(key=issued.key)
    frame = json.dumps({"type": "input_audio_buffer.clear"})
    for _ in range(consumers.OUTBOX_EVENTS + 50):
        await client.comm.send_to(text_data=frame)
    _, closed = await _closed_with(client, timeout_s=15)
    assert closed["code"] == 1008
    assert stalled.is_set()
    (row,) = await _rows()
    assert row.end_reason == "client_not_reading" and row.ended_at is not None


async def test_a_failed_session_task_ends_the_session_visibly(
    issued: Any, voices: Any, monkeypatch: Any
) -> None:
    async def broken(self: Any) -> None:
        raise RuntimeError("injected: the input task died")

    monkeypatch.setattr(InputAudio, "_run", broken)
    client, _, _ = await connect(key=issued.key)
    events, closed = await _closed_with(client)
    assert events[0]["type"] == "session.created"
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "server_error"
    assert closed["code"] == 1011
    (row,) = await _rows()
    assert row.end_reason == "error" and row.ended_at is not None


# --- live revocation and quotas ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["revoked", "disabled", "expired"])
async def test_a_license_that_stops_being_usable_closes_its_sessions(
    voices: Any, settings: Any, how: str
) -> None:
    settings.REALTIME_LICENSE_CHECK_S = 1
    expires_at = timezone.now() + timedelta(seconds=2) if how == "expired" else None
    issued = await database_sync_to_async(license_create)(name="soon gone", expires_at=expires_at)
    secret = await _secret(issued.license)
    by_key, _, _ = await connect(key=issued.key)
    by_secret, _, _ = await connect(key=secret)
    await _created(by_key)
    await _created(by_secret)
    started = time.monotonic()
    if how == "revoked":
        await database_sync_to_async(license_revoke)(license=issued.license)
    elif how == "disabled":
        await database_sync_to_async(License.objects.filter(pk=issued.license.pk).update)(
            active=False
        )
    for client in (by_key, by_secret):
        events, closed = await _closed_with(client, timeout_s=6)
        assert events[-1]["error"]["code"] == "invalid_api_key"
        assert how in events[-1]["error"]["message"]
        assert closed["code"] == 4001
    assert time.monotonic() - started < 5
    rows = await _rows()
    assert all(row.ended_at is not None and row.end_reason == "invalid_api_key" for row in rows)


async def test_the_audio_quota_is_enforced_during_the_session(voices: Any, settings: Any) -> None:
    settings.REALTIME_QUOTA_CHECK_S = 1
    issued = await database_sync_to_async(license_create)(
        name="metered", monthly_audio_minutes_quota=1
    )
    client, _, _ = await connect(key=issued.key)
    created = await _created(client)
    # The session has used up the month's minute (as its usage writes would record).
    await database_sync_to_async(Conversation.objects.filter(pk=created["session"]["id"]).update)(
        input_audio_ms=60_000
    )
    events, closed = await _closed_with(client, timeout_s=5)
    assert events[-1]["error"]["code"] == "insufficient_quota"
    assert closed["code"] == 4029
