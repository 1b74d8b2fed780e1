"""Scripted engines and a capturing transport for driving a ``RealtimeSession`` directly."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from apps.agent.providers.scripted import ScriptedLlm
from apps.realtime.protocol.codec import render_server_event
from apps.realtime.protocol.session_config import session_defaults
from apps.realtime.session.deps import (
    Engines,
    Limits,
    LlmRoute,
    NullStore,
    SessionDeps,
    UnknownName,
)
from apps.realtime.session.session import RealtimeSession
from apps.realtime.session.sink import WebSocketAudioSink
from apps.voice.asr.fake import FakeAsr
from apps.voice.tts.base import VoiceSpec
from apps.voice.tts.fake import FakeTts
from apps.voice.vad.fake import FakeVad

POOL = ThreadPoolExecutor(4, thread_name_prefix="test-engines")
VOICES = {"alloy", "echo", "marin", "龙婉"}


def engines(*, transcripts: tuple[str, ...] = ("hello",), vad: FakeVad | None = None) -> Engines:
    return Engines(
        vad=vad or FakeVad(),
        asr=FakeAsr(transcripts),
        tts=FakeTts(),
        audio_executor=POOL,
        asr_executor=POOL,
        tts_executor=POOL,
    )


class Harness:
    """A session plus everything it sent, rendered for its dialect as a client would see it."""

    def __init__(
        self,
        *,
        llm: ScriptedLlm | None = None,
        dialect: str = "ga",
        config: dict[str, Any] | None = None,
        limits: Limits | None = None,
        transcripts: tuple[str, ...] = ("hello",),
        vad: FakeVad | None = None,
    ) -> None:
        self.llm = llm or ScriptedLlm(models=["scripted-echo"])
        self.store = NullStore()
        self.events: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self._new = asyncio.Event()

        def resolve_llm(name: str | None) -> LlmRoute:
            if name not in (None, "", "scripted-echo", "gpt-realtime"):
                raise UnknownName(f"The model `{name}` does not exist.")
            return LlmRoute(self.llm, "scripted-echo", "scripted-echo@scripted")

        async def resolve_voice(name: str, speed: float) -> VoiceSpec:
            if name not in VOICES:
                raise UnknownName(f"Unknown voice '{name}'.")
            return VoiceSpec(engine_voice=name, speed=speed)

        deps = SessionDeps(
            engines=engines(transcripts=transcripts, vad=vad),
            resolve_llm=resolve_llm,
            resolve_voice=resolve_voice,
            store=self.store,
            limits=limits or Limits(audio_lead_ms=100_000),
        )
        self.session = RealtimeSession(
            session_id="sess_test",
            config=config or session_defaults(instructions="Be brief.", voice="alloy"),
            deps=deps,
            send=self._send,
            close=self._close,
            sink_factory=WebSocketAudioSink,
            dialect=dialect,  # type: ignore[arg-type]
        )

    async def _send(self, event: dict[str, Any]) -> None:
        rendered = render_server_event(
            event, dialect=self.session.dialect, session_id=self.session.id
        )
        if rendered is not None:
            self.events.append(json.loads(json.dumps(rendered)))
            self._new.set()

    async def _close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    async def start(self) -> Harness:
        await self.session.start()
        return self

    async def send(self, event: dict[str, Any] | str) -> None:
        await self.session.receive_text(event if isinstance(event, str) else json.dumps(event))

    async def wait_for(
        self, kind: str, *, count: int = 1, timeout_s: float = 10.0
    ) -> dict[str, Any]:
        """The ``count``-th event of type ``kind`` (waiting for it)."""

        async def seen() -> dict[str, Any]:
            while True:
                found = [e for e in self.events if e["type"] == kind]
                if len(found) >= count:
                    return found[count - 1]
                self._new.clear()
                await self._new.wait()

        return await asyncio.wait_for(seen(), timeout_s)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    async def close(self) -> None:
        await self.session.shutdown()
