"""What a session is handed when it is built: engines, executors, persistence, lookups.

The session never imports a concrete engine, Django's ORM or a transport. The edge that
builds it (the WebSocket consumer, the WebRTC peer, a test) fills these in, so tests hand
it scripted fakes and production hands it the process's shared engines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from apps.agent.base import ChatMessage, LlmProvider
from apps.core import metrics
from apps.voice.asr.base import AsrEngine
from apps.voice.tts.base import TtsEngine, VoiceSpec
from apps.voice.vad.base import VadEngine

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Engines:
    """The process's shared engines and the executors their blocking calls run in.

    Each kind has its own executor, so a long Whisper decode never delays VAD frames or the
    next sentence of speech.
    """

    vad: VadEngine
    asr: AsrEngine
    tts: TtsEngine
    audio_executor: Executor
    """Decoding, resampling and VAD of inbound audio; encoding of outbound audio."""
    asr_executor: Executor
    tts_executor: Executor

    async def run(self, executor: Executor, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call off the event loop (its wait in the queue is measured)."""
        name = (
            "asr"
            if executor is self.asr_executor
            else "tts"
            if executor is self.tts_executor
            else "audio"
        )
        return await asyncio.get_running_loop().run_in_executor(
            executor, metrics.timed_submit(name, fn), *args
        )


@dataclass(frozen=True, slots=True)
class LlmRoute:
    """A resolved ``model`` / ``modelId@provider``: the provider object and its model name."""

    provider: LlmProvider
    model: str
    qualified: str


class UnknownName(LookupError):
    """A model or voice the session cannot use; the message is for the client."""


@dataclass(frozen=True, slots=True)
class StoredItem:
    """One conversation item as it is persisted (see ``conversations.services``)."""

    item_id: str
    type: str
    role: str = ""
    status: str = "completed"
    text: str = ""
    audio_ms: int = 0
    truncated_at_ms: int | None = None
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    output: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    """Usage to add to the session's counters."""

    input_audio_ms: int = 0
    output_audio_ms: int = 0
    text_tokens_in: int = 0
    text_tokens_out: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_audio_ms=self.input_audio_ms + other.input_audio_ms,
            output_audio_ms=self.output_audio_ms + other.output_audio_ms,
            text_tokens_in=self.text_tokens_in + other.text_tokens_in,
            text_tokens_out=self.text_tokens_out + other.text_tokens_out,
        )


class SessionStore(Protocol):
    """Where the session's transcript goes. Calls must return quickly (queue, don't wait)."""

    def item_saved(self, item: StoredItem) -> None:
        """Insert or update one item (idempotent by ``item_id``)."""

    def usage_added(self, usage: Usage) -> None:
        """Add to the usage counters."""


class NullStore:
    """A store that keeps nothing (tests, benchmarks)."""

    def __init__(self) -> None:
        self.items: dict[str, StoredItem] = {}
        self.usage: list[Usage] = []

    def item_saved(self, item: StoredItem) -> None:
        """Remember the latest version of the item in memory."""
        self.items[item.item_id] = item

    def usage_added(self, usage: Usage) -> None:
        """Remember the usage delta in memory."""
        self.usage.append(usage)


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-session limits (from settings at the edge)."""

    max_session_s: float = 3600.0
    max_input_buffer_ms: int = 120_000
    """Audio a manual-mode buffer may hold before appends are refused."""
    max_pending_input_ms: int = 10_000
    """Audio appended but not yet processed; beyond it, appends are refused (client too fast)."""
    max_items: int = 1_000
    max_responses_per_minute: int = 60
    audio_lead_ms: int = 1_000
    """How far ahead of real time output audio may be sent."""


@dataclass(slots=True)
class SessionDeps:
    """Everything a ``RealtimeSession`` needs from outside."""

    engines: Engines
    resolve_llm: Callable[[str | None], LlmRoute]
    """Route a model name; raises ``UnknownName``."""
    resolve_voice: Callable[[str, float], Awaitable[VoiceSpec]]
    """Catalogue voice name and session speed to an engine voice; raises ``UnknownName``."""
    store: SessionStore = field(default_factory=NullStore)
    limits: Limits = field(default_factory=Limits)
    history: Sequence[ChatMessage] = ()
    """Earlier turns of this end user (per ``userId``), put before the conversation."""
