"""The WebSocket edges through Channels' WebsocketCommunicator: auth, dialects, persistence."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from apps.avatar.models import Character
from apps.conversations.models import Conversation, ConversationItem
from apps.licensing.services import client_secret_create, license_create, license_revoke
from apps.realtime.protocol.session_config import apply_patch, session_defaults
from realtime_site.asgi import application

from .audio import tone
from .conformance import validate_all

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


class Client:
    """A communicator plus the events it received."""

    def __init__(self, comm: WebsocketCommunicator) -> None:
        self.comm = comm
        self.events: list[dict[str, Any]] = []

    async def recv(self, timeout_s: float = 5.0) -> dict[str, Any]:
        event = json.loads(await self.comm.receive_from(timeout=timeout_s))
        self.events.append(event)
        return event

    async def until(self, kind: str, timeout_s: float = 10.0) -> dict[str, Any]:
        while True:
            event = await self.recv(timeout_s)
            if event["type"] == kind:
                return event

    async def send(self, event: dict[str, Any]) -> None:
        await self.comm.send_to(text_data=json.dumps(event))

    async def text_turn(self, text: str | None) -> dict[str, Any]:
        """Switch to text output, add a user message (if any), answer it; the response.done."""
        await self.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "output_modalities": ["text"]},
            }
        )
        if text is not None:
            await self.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": text}],
                    },
                }
            )
        await self.send({"type": "response.create"})
        return await self.until("response.done")


async def connect(
    path: str = "/v1/realtime",
    *,
    key: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    subprotocols: list[str] | None = None,
) -> tuple[Client, bool, Any]:
    all_headers = list(headers or [])
    if key is not None:
        all_headers.append((b"authorization", f"Bearer {key}".encode()))
    comm = WebsocketCommunicator(application, path, headers=all_headers, subprotocols=subprotocols)
    connected, subprotocol = await comm.connect(timeout=10)
    return Client(comm), connected, subprotocol


async def refused(client: Client) -> tuple[dict[str, Any], dict[str, Any]]:
    error = await client.recv()
    closed = await client.comm.receive_output(timeout=5)
    return error, closed


async def test_text_turn_over_websocket_is_persisted(issued: Any, voices: Any) -> None:
    client, connected, _ = await connect(key=issued.key)
    assert connected
    created = await client.recv()
    assert created["type"] == "session.created"
    session_id = created["session"]["id"]
    done = await client.text_turn("hello")
    assert done["response"]["output"][0]["content"][0]["text"] == "You said: hello"
    validate_all(client.events, "ga")
    await client.comm.disconnect()
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=session_id)
    assert conversation.ended_at is not None and conversation.end_reason == "client_closed"
    texts = await database_sync_to_async(
        lambda: list(
            ConversationItem.objects.filter(conversation_id=session_id)
            .order_by("position")
            .values_list("role", "text")
        )
    )()
    assert texts == [("user", "hello"), ("assistant", "You said: hello")]


@pytest.mark.parametrize(
    "how",
    ["header", "subprotocol"],
)
async def test_beta_dialect_is_detected(issued: Any, voices: Any, how: str) -> None:
    if how == "header":
        client, connected, subprotocol = await connect(
            key=issued.key, headers=[(b"openai-beta", b"realtime=v1")]
        )
        assert subprotocol is None
    else:
        client, connected, subprotocol = await connect(
            subprotocols=[
                "realtime",
                f"openai-insecure-api-key.{issued.key}",
                "openai-beta.realtime-v1",
            ],
            headers=[(b"origin", b"https://app.example.com")],
        )
        # Only "realtime" is answered: the key must never be echoed back.
        assert subprotocol == "realtime"
    assert connected
    created = await client.recv()
    assert created["session"]["modalities"] == ["audio", "text"]
    assert created["session"]["input_audio_format"] == "pcm16"
    validate_all(client.events, "beta")
    await client.comm.disconnect()


async def test_navtalk_endpoint_speaks_beta_with_the_character(issued: Any, voices: Any) -> None:
    await database_sync_to_async(Character.objects.create)(
        slug="girl2", display_name="Girl 2", persona="You are Lily.", default_voice=voices["coral"]
    )
    client, connected, _ = await connect(
        f"/api/realtime-api?license={issued.key}&characterName=girl2"
    )
    assert connected
    created = await client.recv()
    assert created["session"]["instructions"] == "You are Lily."
    assert created["session"]["voice"] == "coral"
    # NavTalk clients send raw PCM as binary frames.
    await client.send({"type": "session.update", "session": {"turn_detection": None}})
    await client.until("session.updated")
    await client.comm.send_to(bytes_data=tone(300))
    await client.send({"type": "input_audio_buffer.commit"})
    committed = await client.until("input_audio_buffer.committed")
    await client.until("conversation.item.created")
    assert committed["item_id"]
    await client.comm.disconnect()


async def test_unknown_character_is_refused(issued: Any, voices: Any) -> None:
    client, _, _ = await connect(f"/api/realtime-api?license={issued.key}&characterName=ghost")
    error, closed = await refused(client)
    assert error["error"]["code"] == "character_not_found"
    assert closed == {"type": "websocket.close", "code": 4004, "reason": "character_not_found"}


@pytest.mark.parametrize("key", [None, "lic_wrong", "sk-nonsense"])
async def test_bad_keys_get_an_error_then_a_close(db: Any, key: str | None) -> None:
    client, connected, _ = await connect(key=key)
    error, closed = await refused(client)
    assert error["type"] == "error"
    assert error["error"]["code"] in ("invalid_api_key", "missing_api_key")
    assert closed["code"] == 4001
    validate_all([error], "ga")


async def test_revoked_and_expired_credentials_are_refused(issued: Any, voices: Any) -> None:
    config = session_defaults(instructions="x", voice="alloy")
    issued_secret = await database_sync_to_async(client_secret_create)(
        license=issued.license,
        session_config=config,
        ttl_s=10,
        dialect="ga",
        now=timezone.now() - timedelta(seconds=60),
    )
    client, _, _ = await connect(key=issued_secret.value)
    error, closed = await refused(client)
    assert "expired" in error["error"]["message"]
    await database_sync_to_async(license_revoke)(license=issued.license)
    client, _, _ = await connect(key=issued.key)
    error, closed = await refused(client)
    assert "revoked" in error["error"]["message"]
    assert closed["code"] == 4001


async def test_ephemeral_secret_starts_with_its_minted_config(issued: Any, voices: Any) -> None:
    config = apply_patch(
        session_defaults(instructions="Minted.", voice="alloy"),
        {"audio": {"output": {"voice": "coral"}}, "output_modalities": ["text"]},
    )
    secret = await database_sync_to_async(client_secret_create)(
        license=issued.license, session_config=config, ttl_s=600, dialect="ga"
    )
    client, connected, subprotocol = await connect(
        subprotocols=["realtime", f"openai-insecure-api-key.{secret.value}"],
        headers=[(b"origin", b"https://app.example.com")],
    )
    assert connected and subprotocol == "realtime"
    created = await client.recv()
    assert created["session"]["instructions"] == "Minted."
    assert created["session"]["audio"]["output"]["voice"] == "coral"
    await client.comm.disconnect()


async def test_browser_credentials_need_an_allowed_origin(issued: Any, voices: Any) -> None:
    client, _, _ = await connect(
        subprotocols=["realtime", f"openai-insecure-api-key.{issued.key}"],
        headers=[(b"origin", b"https://evil.example.net")],
    )
    error, closed = await refused(client)
    assert error["error"]["code"] == "origin_not_allowed"
    assert closed["code"] == 4003
    # A server client (Bearer, no Origin) is fine.
    client, connected, _ = await connect(key=issued.key)
    assert (await client.recv())["type"] == "session.created"
    await client.comm.disconnect()


async def test_concurrent_sessions_are_limited_per_license(db: Any, voices: Any) -> None:
    limited = await database_sync_to_async(license_create)(name="one", max_concurrent_sessions=1)
    first, _, _ = await connect(key=limited.key)
    assert (await first.recv())["type"] == "session.created"
    second, _, _ = await connect(key=limited.key)
    error, closed = await refused(second)
    assert error["error"]["code"] == "too_many_sessions"
    assert closed["code"] == 4029
    await first.comm.disconnect()
    third, _, _ = await connect(key=limited.key)
    assert (await third.recv())["type"] == "session.created"
    await third.comm.disconnect()


async def test_unknown_model_is_refused(issued: Any, voices: Any) -> None:
    client, _, _ = await connect("/v1/realtime?model=no-such-model", key=issued.key)
    error, closed = await refused(client)
    assert error["error"]["code"] == "model_not_found"
    assert closed["code"] == 4004


async def test_model_routing_and_user_history(issued: Any, voices: Any) -> None:
    path = "/v1/realtime?model=scripted-echo@scripted&userId=u42"
    client, _, _ = await connect(path, key=issued.key)
    created = await client.recv()
    assert created["session"]["model"] == "scripted-echo@scripted"
    await client.text_turn("my name is Ann")
    await client.comm.disconnect()
    # The same end user reconnects: earlier turns are in the model's context, others' are not.
    from apps.agent.routing import providers

    llm = providers()["scripted"]
    seen = len(llm.requests)
    for user, expected in (("u42", True), ("someone-else", False)):
        client, _, _ = await connect(f"/v1/realtime?userId={user}", key=issued.key)
        await client.recv()
        await client.text_turn(None)
        await client.comm.disconnect()
        contents = [m.content for m in llm.requests[seen].messages]
        assert ("my name is Ann" in contents) is expected
        seen += 1


async def test_malformed_frames_keep_the_session(issued: Any, voices: Any) -> None:
    client, _, _ = await connect(key=issued.key)
    await client.recv()
    for frame in ["{not json", "[1,2]", '{"type": 5}', '{"type":"nope","event_id":"e1"}']:
        await client.comm.send_to(text_data=frame)
        error = await client.recv()
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert error["error"]["event_id"] == "e1"
    await client.send({"type": "session.update", "session": {"type": "realtime"}})
    assert (await client.recv())["type"] == "session.updated"
    await client.comm.disconnect()


async def test_oversized_event_gets_an_error_not_a_close(
    issued: Any, voices: Any, settings: Any
) -> None:
    settings.REALTIME_MAX_EVENT_BYTES = 1000
    client, _, _ = await connect(key=issued.key)
    await client.recv()
    await client.comm.send_to(
        text_data=json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 2000})
    )
    error = await client.recv()
    assert error["error"]["code"] == "event_too_large"
    await client.send({"type": "input_audio_buffer.clear"})
    assert (await client.recv())["type"] == "input_audio_buffer.cleared"
    await client.comm.disconnect()


async def test_session_expiry_closes_with_session_expired(
    issued: Any, voices: Any, settings: Any
) -> None:
    settings.REALTIME_MAX_SESSION_S = 1
    client, _, _ = await connect(key=issued.key)
    created = await client.recv()
    error = await client.recv(timeout_s=5)
    assert error["error"]["code"] == "session_expired"
    closed = await client.comm.receive_output(timeout=5)
    assert closed["code"] == 4008
    await asyncio.sleep(0.2)
    conversation = await database_sync_to_async(Conversation.objects.get)(
        pk=created["session"]["id"]
    )
    assert conversation.end_reason == "session_expired"
