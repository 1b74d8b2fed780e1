"""The official ``openai`` SDK against a live Daphne: GA ``client.realtime.connect`` and beta
``client.beta.realtime.connect``, changing only the base URL.

Every event received is validated against the SDK's own union for the dialect
(``conformance.validate_event``) before the SDK parses it. Most tests run a server on the
scripted engines; the spoken turn runs one on the embedded engines (Silero, Whisper,
Piper, llama.cpp), with speech synthesized offline by Piper.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from tests.helpers import daphne, free_port, manage, project_env, scripted_server_env
from tests.voice.speech import piper_pcm16

from .audio import b64, silence, tone
from .conformance import validate_event

pytestmark = pytest.mark.asyncio(loop_scope="function")


def _serve(env: dict[str, str]) -> Iterator[tuple[str, str]]:
    manage(env, "migrate", "--noinput")
    key = manage(env, "seed_demo").stdout.strip().splitlines()[-1]
    with daphne(env, free_port()) as base:
        yield base, key


@pytest.fixture(scope="module")
def scripted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    var_dir = tmp_path_factory.mktemp("scripted-server")
    # Slow replies a little so a cancel lands mid-response.
    yield from _serve(scripted_server_env(var_dir, SCRIPTED_LLM_DELAY_S="0.02"))


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    var_dir = tmp_path_factory.mktemp("embedded-server")
    yield from _serve(project_env(var_dir, VOICE_WARM_UP="true"))


def client_for(server: tuple[str, str]) -> AsyncOpenAI:
    base, key = server
    return AsyncOpenAI(
        api_key=key, base_url=f"{base}/v1", websocket_base_url=base.replace("http", "ws") + "/v1"
    )


class Events:
    """Reads a connection, validating every raw event before the SDK parses it."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.seen: list[Any] = []

    async def next(self, timeout_s: float = 30.0) -> Any:
        raw = await asyncio.wait_for(self.conn.recv_bytes(), timeout_s)
        validate_event(json.loads(raw), self.dialect)
        event = self.conn.parse_event(raw)
        self.seen.append(event)
        return event

    async def until(self, kind: str, timeout_s: float = 60.0) -> Any:
        while True:
            event = await self.next(timeout_s)
            assert event.type != "error", event
            if event.type == kind:
                return event

    def types(self) -> list[str]:
        return [e.type for e in self.seen]


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


async def ask_with_forced_weather_tool(conn: Any, events: Events, text: str) -> tuple[Any, Any]:
    """Send a user message and a response forced to call get_weather: (arguments done, done)."""
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
    await conn.response.create(
        response={"tool_choice": {"type": "function", "name": "get_weather"}}
    )
    call = await events.until("response.function_call_arguments.done")
    return call, await events.until("response.done")


async def test_ga_text_turn_and_function_call(scripted_server: tuple[str, str]) -> None:
    client = client_for(scripted_server)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        events = Events(conn, "ga")
        created = await events.until("session.created")
        assert created.session.type == "realtime"
        await conn.session.update(
            session={"type": "realtime", "output_modalities": ["text"], "tools": [WEATHER_TOOL]}
        )
        await events.until("session.updated")
        call, done = await ask_with_forced_weather_tool(conn, events, "Weather in Paris?")
        assert call.name == "get_weather"
        assert done.response.output[0].type == "function_call"
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
        )
        await conn.response.create()
        text = await events.until("response.output_text.done")
        await events.until("response.done")
        assert text.text == "You said: Weather in Paris?"


async def test_ga_cancel_and_truncate_audio(scripted_server: tuple[str, str]) -> None:
    client = client_for(scripted_server)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        events = Events(conn, "ga")
        await events.until("session.created")
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Tell me a long story about a brave cat"}
                ],
            }
        )
        await conn.response.create()
        first = await events.until("response.output_audio.delta")
        # The client played 300 ms, then the user interrupted.
        await conn.response.cancel()
        done = await events.until("response.done")
        assert done.response.status == "cancelled"
        assert done.response.status_details.reason == "client_cancelled"
        await conn.conversation.item.truncate(
            item_id=first.item_id, content_index=0, audio_end_ms=300
        )
        truncated = await events.until("conversation.item.truncated")
        assert truncated.audio_end_ms == 300
        await conn.conversation.item.retrieve(item_id=first.item_id)
        item = (await events.until("conversation.item.retrieved")).item
        heard = item.content[0].transcript
        full = done.response.output[0].content[0].transcript
        assert len(heard) < len(full)


async def test_beta_text_turn_function_call_and_audio(scripted_server: tuple[str, str]) -> None:
    client = client_for(scripted_server)
    async with client.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
        events = Events(conn, "beta")
        created = await events.until("session.created")
        assert created.session.input_audio_format == "pcm16"
        await conn.session.update(
            session={"modalities": ["text", "audio"], "tools": [WEATHER_TOOL], "voice": "echo"}
        )
        updated = await events.until("session.updated")
        assert updated.session.voice == "echo"
        call, _ = await ask_with_forced_weather_tool(conn, events, "hi")
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call.call_id, "output": "rain"}
        )
        await conn.response.create()
        transcript = await events.until("response.audio_transcript.done")
        done = await events.until("response.done")
        assert transcript.transcript == "You said: hi"
        audio = b"".join(
            base64.b64decode(e.delta) for e in events.seen if e.type == "response.audio.delta"
        )
        assert len(audio) > 24_000  # over half a second of 24 kHz PCM16
        assert done.response.status == "completed"
        await conn.response.cancel()
        error = await events.next()
        assert error.type == "error" and error.error.code == "response_cancel_not_active"


async def test_beta_spoken_turn_with_server_vad(scripted_server: tuple[str, str]) -> None:
    # The scripted server's VAD keys on loudness and its ASR always hears "hello".
    client = client_for(scripted_server)
    async with client.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
        events = Events(conn, "beta")
        await events.until("session.created")
        await conn.session.update(session={"input_audio_transcription": {"model": "whisper-1"}})
        await events.until("session.updated")
        for chunk in (tone(600), silence(1000)):
            await conn.input_audio_buffer.append(audio=b64(chunk))
        await events.until("input_audio_buffer.speech_started")
        await events.until("input_audio_buffer.speech_stopped")
        heard = await events.until("conversation.item.input_audio_transcription.completed")
        assert heard.transcript == "hello"
        await events.until("response.done")


async def test_ga_spoken_turn_on_the_embedded_engines(embedded_server: tuple[str, str]) -> None:
    speech = piper_pcm16("What is the capital city of France?")
    client = client_for(embedded_server)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        events = Events(conn, "ga")
        await events.until("session.created", timeout_s=120)
        await conn.session.update(
            session={
                "type": "realtime",
                "instructions": "Answer in one short sentence.",
                "audio": {"input": {"transcription": {"model": "whisper-1", "language": "en"}}},
            }
        )
        await events.until("session.updated")
        chunk = 2 * 2400  # 100 ms
        audio = bytes(2 * 7200) + speech + bytes(2 * 24_000)
        for start in range(0, len(audio), chunk):
            await conn.input_audio_buffer.append(
                audio=base64.b64encode(audio[start : start + chunk]).decode()
            )
            await asyncio.sleep(0.02)
        heard = await events.until(
            "conversation.item.input_audio_transcription.completed", timeout_s=120
        )
        assert "capital" in heard.transcript.lower() and "france" in heard.transcript.lower()
        done = await events.until("response.done", timeout_s=120)
        assert done.response.status == "completed"
        assert "input_audio_buffer.speech_stopped" in events.types()
        assert any(e.type == "response.output_audio.delta" for e in events.seen)
        assert done.response.output[0].content[0].transcript


@pytest.fixture(autouse=True)
def _models_present() -> None:
    from django.conf import settings

    if not Path(settings.VOICE_MODEL_CACHE).exists():
        pytest.fail("var/models is missing: run `make test-deps` first")
