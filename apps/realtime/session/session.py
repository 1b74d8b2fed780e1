"""``RealtimeSession``: one client's realtime session, independent of the transport.

The transport (WebSocket consumer, WebRTC data channel, a test) feeds it frames with
``receive_text``/``receive_audio`` and gets GA-shaped server events through the ``send``
callable it provides. The session dispatches each client event to the handler registered
for its type (``handlers/``, one module per protocol area) and owns the long-running
pieces: the input audio processor, the response runners and the session timer.

Nothing here blocks the event loop: engine calls run in the executors of ``deps.engines``,
and every queue is bounded (see ``input_audio`` and ``response``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from apps.core import metrics
from apps.core.ids import event_id as new_event_id
from apps.core.tasks import fire_and_forget

from ..protocol.codec import CodecError, Dialect, parse_client_event
from ..protocol.errors import ProtocolError
from .conversation import Conversation, Item
from .deps import SessionDeps, StoredItem
from .errors import ClientError
from .handlers import HANDLERS
from .input_audio import InputAudio
from .response import ResponseRunner
from .sink import AudioSink

logger = logging.getLogger(__name__)

# Frames larger than this are parsed (JSON and base64) in the audio executor: an 8 MiB
# append takes tens of milliseconds to decode, which every other session would feel.
PARSE_OFF_LOOP_BYTES = 64 * 1024

Send = Callable[[dict[str, Any]], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]


class RealtimeSession:
    """The state and tasks of one realtime session."""

    def __init__(
        self,
        *,
        session_id: str,
        config: dict[str, Any],
        deps: SessionDeps,
        send: Send,
        close: Close,
        sink_factory: Callable[[RealtimeSession], AudioSink],
        dialect: Dialect = "ga",
    ) -> None:
        self.id = session_id
        self.config = config
        self.deps = deps
        self.dialect = dialect
        self._send = send
        self._close = close
        self.conversation = Conversation(max_items=deps.limits.max_items)
        self.input = InputAudio(self)
        self.sink = sink_factory(self)
        self.responses: dict[str, ResponseRunner] = {}
        self.default_response: ResponseRunner | None = None
        self.audio_started = False
        """Whether any assistant audio was produced (the voice is fixed from then on)."""
        self.started_monotonic = time.monotonic()
        self.created_at = int(time.time())
        self._response_times: list[float] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.end_reason: str | None = None
        self.llm = deps.resolve_llm(config.get("model"))
        self.voice = None
        self.turn = metrics.TurnClock()
        """Times the stages of the current turn from the end of the user's speech."""

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def expires_at(self) -> int:
        """Unix time at which the session hits its maximum duration."""
        return self.created_at + int(self.deps.limits.max_session_s)

    async def start(self) -> None:
        """Announce the session and start its background tasks."""
        self.config["model"] = self.config.get("model") or self.llm.qualified
        self.voice = await self.resolve_voice(self.config)
        await self.emit({"type": "session.created", "session": self.config})
        self.input.start()
        self.spawn(self._expire(), name="session-expiry")

    async def _expire(self) -> None:
        await asyncio.sleep(self.deps.limits.max_session_s)
        minutes = round(self.deps.limits.max_session_s / 60)
        await self.error(
            ProtocolError(
                f"Your session hit the maximum duration of {minutes} minutes.",
                None,
                "session_expired",
            )
        )
        await self.shutdown(reason="session_expired")
        await self._close(4000, "session_expired")

    async def shutdown(self, *, reason: str = "client_closed") -> None:
        """Stop everything; a response in flight ends cancelled and its partial item is saved."""
        if self._closed:
            return
        self._closed = True
        self.end_reason = reason
        for runner in list(self.responses.values()):
            runner.cancel("client_cancelled")
        for runner in list(self.responses.values()):
            await runner.wait()
        await self.input.stop()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in self._tasks if t is not current), return_exceptions=True)
        logger.info("realtime session ended", extra={"session_id": self.id, "reason": reason})

    @property
    def closed(self) -> bool:
        """Whether the session has shut down."""
        return self._closed

    def spawn(self, coro: Awaitable[Any], *, name: str) -> asyncio.Task[Any]:
        """Run a background task owned by the session; its failure is logged, never lost."""
        task = asyncio.ensure_future(coro)
        task.set_name(f"{name}:{self.id}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "realtime session task failed",
                exc_info=task.exception(),
                extra={"session_id": self.id, "task": task.get_name()},
            )
            if not self._closed:
                # A session missing one of its tasks would go silent: end it visibly.
                fire_and_forget(self._fail(), name=f"fail:{self.id}")

    async def _fail(self) -> None:
        await self.error(
            ProtocolError(
                "The server hit an internal error and closed the session.",
                None,
                "server_error",
                type="server_error",
            )
        )
        await self.shutdown(reason="error")
        await self._close(1011, "server_error")

    # --- events in -------------------------------------------------------------------------

    async def receive_text(self, text: str | bytes) -> None:
        """Handle one client frame (JSON text). Bad input gets one ``error`` event."""
        if self._closed:
            return
        try:
            if len(text) > PARSE_OFF_LOOP_BYTES:
                engines = self.deps.engines
                parse = functools.partial(parse_client_event, dialect=self.dialect)
                parsed = await engines.run(engines.audio_executor, parse, text)
            else:
                parsed = parse_client_event(text, dialect=self.dialect)
        except CodecError as exc:
            metrics.event_in("invalid")
            await self.error(exc.error, event_id=exc.event_id)
            return
        metrics.event_in(parsed.event.type)
        handler = HANDLERS[parsed.event.type]
        try:
            await handler(self, parsed)
        except ClientError as exc:
            await self.error(exc.error, event_id=parsed.event.event_id)

    async def receive_audio(self, data: bytes) -> None:
        """A binary frame: raw input audio in the session's input format (NavTalk clients)."""
        if self._closed:
            return
        metrics.event_in("input_audio_buffer.append")
        try:
            self.input.append(data, event_id=None)
        except ClientError as exc:
            await self.error(exc.error)

    # --- events out ------------------------------------------------------------------------

    async def emit(self, event: dict[str, Any]) -> None:
        """Send one GA-shaped server event (the transport renders it for the dialect)."""
        if "event_id" not in event:
            event = {"event_id": new_event_id(), **event}
        metrics.event_out(event["type"])
        if event["type"] == "error":
            metrics.error_sent(event["error"].get("code"))
        await self._send(event)

    async def error(self, error: ProtocolError, *, event_id: str | None = None) -> None:
        """Send an ``error`` event, echoing the client's ``event_id``."""
        await self.emit({"type": "error", "error": {**error.as_dict(), "event_id": event_id}})

    # --- shared helpers for handlers -------------------------------------------------------

    async def resolve_voice(self, config: dict[str, Any]) -> Any:
        """The engine voice for a config's voice name and speed."""
        output = config["audio"]["output"]
        voice = output["voice"]
        name = voice["id"] if isinstance(voice, dict) else voice
        return await self.deps.resolve_voice(name, float(output.get("speed") or 1.0))

    def save_item(self, item: Item) -> None:
        """Persist one item's current state (queued; never waits for the database)."""
        if item.type == "message":
            audio_ms = int(item.audio_ms) if item.role == "assistant" else 0
            stored = StoredItem(
                item_id=item.id,
                type="message",
                role=item.role or "",
                status=item.status,
                text=item.text,
                audio_ms=audio_ms,
                truncated_at_ms=item.truncated_at_ms,
            )
        elif item.type == "function_call":
            stored = StoredItem(
                item_id=item.id,
                type="function_call",
                status=item.status,
                call_id=item.call_id or "",
                name=item.name or "",
                arguments=item.arguments or "",
            )
        else:
            stored = StoredItem(
                item_id=item.id,
                type="function_call_output",
                call_id=item.call_id or "",
                output=item.output or "",
            )
        self.deps.store.item_saved(stored)

    def take_response_slot(self) -> bool:
        """Count a response against the per-minute budget; False when it is used up."""
        now = time.monotonic()
        self._response_times = [t for t in self._response_times if now - t < 60.0]
        if len(self._response_times) >= self.deps.limits.max_responses_per_minute:
            return False
        self._response_times.append(now)
        return True

    def responses_left(self) -> int:
        """Responses still allowed in the current minute (for ``rate_limits.updated``)."""
        return max(0, self.deps.limits.max_responses_per_minute - len(self._response_times))
