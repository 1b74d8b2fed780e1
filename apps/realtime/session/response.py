"""One response: context -> LLM (or verbatim ``tts_text``) -> text, speech, function calls.

A ``ResponseRunner`` is one task. Its server events come in the documented order, paired
``*.added``/``*.done`` events always close, and ``response.done`` always ends it, whether
it completed, ran out of tokens, was cancelled (``response.cancel``, barge-in, disconnect)
or failed. Text is turned into speech sentence by sentence while the model is still
writing: a bounded queue between them (``MAX_PENDING_SENTENCES``) makes the LLM wait when
speech falls behind, and the sink paces the audio itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from apps.agent.base import (
    ChatMessage,
    ChatRequest,
    Finish,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolSpec,
)
from apps.core.ids import item_id as new_item_id
from apps.core.ids import response_id as new_response_id
from apps.voice.tts.base import VoiceSpec
from apps.voice.tts.chunker import SentenceChunker, split_sentences

from .context_budget import ContextTooLong, Truncation, WindowState, fit_context
from .conversation import Item, Spoken, context_message_items
from .deps import LlmRoute, Usage
from .sink import AudioTarget

if TYPE_CHECKING:
    from .session import RealtimeSession

logger = logging.getLogger(__name__)

MAX_PENDING_SENTENCES = 8
# Speech starts after this many words of the reply even without punctuation (the first
# sentence of a 20 token/s model takes about half a second).
FIRST_PIECE_WORDS = 4
Status = Literal["in_progress", "completed", "cancelled", "incomplete", "failed"]
_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
# Each session's truncation point and token-count cache, alive as long as the session.
_WINDOWS: weakref.WeakKeyDictionary[RealtimeSession, WindowState] = weakref.WeakKeyDictionary()


@dataclass(slots=True)
class ResponseSpec:
    """A response's effective settings: the session's, with per-response overrides."""

    instructions: str
    modalities: list[str]
    voice_name: Any
    voice: VoiceSpec
    format: dict[str, Any]
    tools: list[dict[str, Any]]
    tool_choice: Any
    max_output_tokens: Any
    temperature: float | None
    metadata: dict[str, str] | None
    in_conversation: bool
    input_items: list[Item] | None
    """None: the conversation is the context; a list: exactly these items."""
    llm: LlmRoute
    speak_verbatim: str | None = field(default=None)


def _join(existing: str, piece: str) -> str:
    if not existing:
        return piece
    if _CJK.search(existing[-1:]) or _CJK.search(piece[:1]):
        return existing + piece
    return existing + " " + piece


class ResponseRunner:
    """Runs one response as a task of the session."""

    def __init__(self, session: RealtimeSession, spec: ResponseSpec) -> None:
        self.session = session
        self.spec = spec
        self.id = new_response_id()
        self.status: Status = "in_progress"
        self.status_details: dict[str, Any] | None = None
        self.output: list[Item] = []
        self._cancel_reason = "client_cancelled"
        self._usage = Finish("stop")
        self._open: list[tuple[Item, str]] = []  # (item, "audio"|"text") not yet done
        self._task: asyncio.Task[None] | None = None
        self._targets: dict[str, AudioTarget] = {}

    # --- control ----------------------------------------------------------------------------

    def start(self) -> None:
        """Run the response in the background."""
        self._task = self.session.spawn(self._run(), name="response")

    def cancel(self, reason: str) -> None:
        """Stop generating; ``response.done`` will say ``cancelled`` with ``reason``."""
        if self._task is not None and not self._task.done():
            self._cancel_reason = reason
            self._task.cancel()

    async def wait(self) -> None:
        """Until ``response.done`` was sent."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def owns(self, item_id: str) -> bool:
        """Whether this (unfinished) response is producing ``item_id``."""
        return any(item.id == item_id for item, _ in self._open)

    # --- events -----------------------------------------------------------------------------

    def wire(self) -> dict[str, Any]:
        """The ``realtime.response`` object."""
        spec = self.spec
        usage = None
        if self.status != "in_progress":
            usage = {
                "total_tokens": self._usage.prompt_tokens + self._usage.completion_tokens,
                "input_tokens": self._usage.prompt_tokens,
                "output_tokens": self._usage.completion_tokens,
                "input_token_details": {
                    "text_tokens": self._usage.prompt_tokens,
                    "audio_tokens": 0,
                    "cached_tokens": 0,
                },
                "output_token_details": {
                    "text_tokens": self._usage.completion_tokens,
                    "audio_tokens": 0,
                },
            }
        return {
            "object": "realtime.response",
            "id": self.id,
            "status": self.status,
            "status_details": self.status_details,
            "output": [item.wire() for item in self.output],
            "conversation_id": (
                "conv_" + self.session.id.removeprefix("sess_") if spec.in_conversation else None
            ),
            "output_modalities": spec.modalities,
            "max_output_tokens": spec.max_output_tokens,
            "audio": {"output": {"format": spec.format, "voice": spec.voice_name}},
            "usage": usage,
            "metadata": spec.metadata,
        }

    async def _emit(self, event: dict[str, Any]) -> None:
        await self.session.emit(event)

    def _ids(self, item: Item) -> dict[str, Any]:
        return {
            "response_id": self.id,
            "item_id": item.id,
            "output_index": self.output.index(item),
            "content_index": 0,
        }

    async def _add_item(self, item: Item) -> None:
        self.output.append(item)
        previous = None
        if self.spec.in_conversation:
            previous = self.session.conversation.add(item)
        await self._emit(
            {
                "type": "response.output_item.added",
                "response_id": self.id,
                "output_index": len(self.output) - 1,
                "item": item.wire(),
            }
        )
        if self.spec.in_conversation:
            await self._emit(
                {
                    "type": "conversation.item.added",
                    "item": item.wire(),
                    "previous_item_id": previous,
                }
            )

    async def _done_item(self, item: Item) -> None:
        await self._emit(
            {
                "type": "response.output_item.done",
                "response_id": self.id,
                "output_index": self.output.index(item),
                "item": item.wire(),
            }
        )
        if self.spec.in_conversation and item.id in self.session.conversation:
            await self._emit({"type": "conversation.item.done", "item": item.wire()})
            self.session.save_item(item)

    # --- message items ----------------------------------------------------------------------

    @property
    def _audio(self) -> bool:
        return "audio" in self.spec.modalities

    async def _open_message(self) -> Item:
        for item, _ in self._open:
            if item.type == "message":
                return item
        part = (
            {"type": "output_audio", "transcript": ""}
            if self._audio
            else {"type": "output_text", "text": ""}
        )
        item = Item(
            type="message", id=new_item_id(), role="assistant", status="in_progress", content=[part]
        )
        await self._add_item(item)
        self._open.append((item, "audio" if self._audio else "text"))
        await self._emit(
            {
                "type": "response.content_part.added",
                **self._ids(item),
                "part": {"type": "audio", "transcript": ""}
                if self._audio
                else {"type": "text", "text": ""},
            }
        )
        return item

    async def _close_message(self, item: Item, kind: str, status: str) -> None:
        self._open = [(i, k) for i, k in self._open if i is not item]
        part = item.content[0]
        ids = self._ids(item)
        if kind == "audio":
            target = self._targets.pop(item.id, None)
            if target is not None and status == "completed":
                await self.session.sink.finish(target)
            await self._emit({"type": "response.output_audio.done", **ids})
            await self._emit(
                {
                    "type": "response.output_audio_transcript.done",
                    **ids,
                    "transcript": part["transcript"],
                }
            )
            done_part = {"type": "audio", "transcript": part["transcript"]}
        else:
            await self._emit({"type": "response.output_text.done", **ids, "text": part["text"]})
            done_part = {"type": "text", "text": part["text"]}
        await self._emit({"type": "response.content_part.done", **ids, "part": done_part})
        item.status = "completed" if status == "completed" else "incomplete"
        await self._done_item(item)
        self.session.deps.store.usage_added(Usage(output_audio_ms=round(item.audio_ms)))

    async def _text_delta(self, text: str) -> None:
        item = await self._open_message()
        item.content[0]["text"] = item.content[0]["text"] + text
        await self._emit({"type": "response.output_text.delta", **self._ids(item), "delta": text})

    async def _speak(self, sentence: str) -> None:
        """Synthesise one sentence and play it; its transcript is sent as its audio starts."""
        item = await self._open_message()
        target = self._targets.get(item.id)
        if target is None:
            target = AudioTarget(self.id, item, self.output.index(item), 0, self.spec.format)
            self._targets[item.id] = target
        engines = self.session.deps.engines
        chunks = engines.tts.synthesize(sentence, self.spec.voice)
        first = True
        start_ms = item.audio_ms
        spoken = Spoken(start_ms, start_ms, sentence)
        try:
            while True:
                chunk = await engines.run(engines.tts_executor, next, chunks, None)
                if chunk is None:
                    break
                if first:
                    first = False
                    self.session.turn.mark("first_audio")
                    part = item.content[0]
                    before = part["transcript"]
                    part["transcript"] = _join(before, sentence)
                    delta = part["transcript"][len(before) :]
                    item.spoken.append(spoken)
                    await self._emit(
                        {
                            "type": "response.output_audio_transcript.delta",
                            **self._ids(item),
                            "delta": delta,
                        }
                    )
                # The sentence's words span all of its audio, sent or not (for truncation).
                spoken.end_ms = item.audio_ms + chunk.duration_ms
                await self.session.sink.play(
                    chunk.samples, chunk.sample_rate, target, chunk.phonemes
                )
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                # A generator still running in the executor cannot be closed; it is then
                # dropped and collected when that step returns.
                with contextlib.suppress(ValueError):
                    await engines.run(engines.tts_executor, close)

    async def _speaker(self, sentences: asyncio.Queue[str | None]) -> None:
        while (sentence := await sentences.get()) is not None:
            await self._speak(sentence)

    # --- function calls ---------------------------------------------------------------------

    async def _function_call(self, call: ToolCall) -> None:
        item = Item(
            type="function_call",
            id=new_item_id(),
            status="in_progress",
            call_id=call.call_id,
            name=call.name,
            arguments="",
        )
        await self._add_item(item)
        self._open.append((item, "call"))
        item.arguments = call.arguments
        ids = {k: v for k, v in self._ids(item).items() if k != "content_index"}
        await self._emit(
            {
                "type": "response.function_call_arguments.delta",
                **ids,
                "call_id": call.call_id,
                "delta": call.arguments,
            }
        )
        await self._emit(
            {
                "type": "response.function_call_arguments.done",
                **ids,
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            }
        )
        self._open = [(i, k) for i, k in self._open if i is not item]
        item.status = "completed"
        await self._done_item(item)

    # --- the run ----------------------------------------------------------------------------

    def _items(self) -> list[Item]:
        """The response's context: its own ``input``, or the conversation."""
        if self.spec.input_items is not None:
            return self.spec.input_items
        return self.session.conversation.items()

    async def _context(self) -> list[ChatMessage]:
        """The messages for the model: instructions, then the newest turns that fit its window.

        Raises:
            ContextTooLong: Over the provider's input limit with truncation disabled, or the
                newest message alone does not fit.
        """
        spec = self.spec
        session = self.session
        items = self._items()
        # Out-of-band responses (``input``) fit their own items without moving the
        # conversation's truncation point; they share the session's count cache.
        in_conversation = spec.input_items is None
        window = _WINDOWS.get(session)
        if window is None:
            window = _WINDOWS[session] = WindowState()
        if in_conversation:
            items = items[window.visible([item.id for item in items]) :]
        pending = [i.transcribed for i in items if i.transcribed is not None]
        if pending:
            # asyncio.wait, not gather: cancelling this response (barge-in, response.cancel)
            # must not cancel the items' futures, which every later response waits on too.
            await asyncio.wait(pending)
        system = (
            [ChatMessage(role="system", content=spec.instructions)] if spec.instructions else []
        )
        history = list(session.deps.history)[window.history_dropped :] if in_conversation else []
        pairs = context_message_items(items)
        messages = history + [message for message, _ in pairs]
        provider, model = spec.llm.provider, spec.llm.model
        limit = provider.input_token_limit(model, self._max_tokens())
        if limit is None:
            return system + messages
        counts, fixed = await window.counter.count(
            provider, model, system + messages, self._tool_specs()
        )
        fitted = fit_context(
            system=system,
            system_tokens=counts[: len(system)],
            messages=messages,
            message_tokens=counts[len(system) :],
            limit_tokens=limit,
            fixed_tokens=fixed,
            truncation=Truncation.from_config(session.config.get("truncation")),
            history_count=len(history),
        )
        if fitted.cut and in_conversation:
            window.advance(
                cut=fitted.cut,
                history_left=len(history),
                message_item_ids=[item_id for _, item_id in pairs],
            )
            logger.info(
                "context truncated",
                extra={
                    "session_id": session.id,
                    "dropped_messages": fitted.cut,
                    "prompt_tokens": fitted.prompt_tokens,
                    "limit_tokens": limit,
                },
            )
        return fitted.messages

    def _verbatim(self) -> str | None:
        """``tts_text`` in the newest user item: speak it as is, without the model (xStar)."""
        for item in reversed(self._items()):
            if item.role == "user":
                texts = [p["text"] for p in item.content if p.get("type") == "tts_text"]
                return " ".join(texts) if texts else None
            if item.role == "assistant":
                return None
        return None

    def _max_tokens(self) -> int | None:
        limit = self.spec.max_output_tokens
        return None if limit == "inf" else limit

    def _tool_specs(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                name=t["name"],
                description=t.get("description") or "",
                parameters=t.get("parameters") or {"type": "object", "properties": {}},
            )
            for t in self.spec.tools
        ]

    def _request(self, messages: list[ChatMessage]) -> ChatRequest:
        spec = self.spec
        choice = spec.tool_choice
        if isinstance(choice, dict):
            choice = choice["name"]
        return ChatRequest(
            model=spec.llm.model,
            messages=messages,
            tools=self._tool_specs(),
            tool_choice=choice,
            temperature=spec.temperature,
            max_tokens=self._max_tokens(),
        )

    async def _generate(self) -> Finish:
        verbatim = self._verbatim()
        sentences: asyncio.Queue[str | None] = asyncio.Queue(maxsize=MAX_PENDING_SENTENCES)
        speaker = (
            self.session.spawn(self._speaker(sentences), name="speaker") if self._audio else None
        )
        finish = Finish("stop")
        calls: list[ToolCall] = []
        try:
            if verbatim is not None:
                if self._audio:
                    for sentence in split_sentences(verbatim) or [verbatim]:
                        await sentences.put(sentence)
                else:
                    await self._text_delta(verbatim)
            else:
                chunker = SentenceChunker(first_words=FIRST_PIECE_WORDS)
                stream = self.spec.llm.provider.stream(self._request(await self._context()))
                async with contextlib.aclosing(stream):  # type: ignore[type-var]
                    async for piece in stream:
                        if isinstance(piece, TextDelta):
                            self.session.turn.mark("first_token")
                            if not self._audio:
                                await self._text_delta(piece.text)
                                continue
                            for sentence in chunker.push(piece.text):
                                await self._put(sentences, speaker, sentence)
                        elif isinstance(piece, ToolCall):
                            calls.append(piece)
                        else:
                            finish = piece
                if self._audio:
                    for sentence in chunker.flush():
                        await self._put(sentences, speaker, sentence)
            if speaker is not None:
                await self._put(sentences, speaker, None)
                await speaker
        finally:
            if speaker is not None and not speaker.done():
                speaker.cancel()
                await asyncio.gather(speaker, return_exceptions=True)
        for call in calls:
            await self._function_call(call)
        return finish

    @staticmethod
    async def _put(
        queue: asyncio.Queue[str | None], speaker: asyncio.Task[None] | None, item: str | None
    ) -> None:
        """Queue a sentence for the speaker; if speech failed, surface its error instead.

        ``asyncio.wait`` rather than ``wait_for``: on Python 3.11 ``wait_for`` can swallow a
        cancellation that arrives as the put completes, and the response would not stop.
        """
        assert speaker is not None
        put = asyncio.ensure_future(queue.put(item))
        try:
            await asyncio.wait({put, speaker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not put.done():
                put.cancel()
        if not put.done() or put.cancelled():
            speaker.result()

    async def _run(self) -> None:
        session = self.session
        await self._emit({"type": "response.created", "response": self.wire()})
        await self._emit(
            {
                "type": "rate_limits.updated",
                "rate_limits": [
                    {
                        "name": "requests",
                        "limit": session.deps.limits.max_responses_per_minute,
                        "remaining": session.responses_left(),
                        "reset_seconds": 60.0,
                    }
                ],
            }
        )
        try:
            finish = await self._generate()
            self._usage = finish
            if finish.reason == "length":
                self.status = "incomplete"
                self.status_details = {"type": "incomplete", "reason": "max_output_tokens"}
            else:
                self.status = "completed"
        except asyncio.CancelledError:
            self.status = "cancelled"
            self.status_details = {"type": "cancelled", "reason": self._cancel_reason}
        except ProviderError as exc:
            self._failed("provider_error", str(exc))
        except ContextTooLong as exc:
            # The client's to fix (shorter input, truncation back on): OpenAI's code and type.
            self._failed(exc.code, str(exc), error_type="invalid_request_error")
        except Exception as exc:
            logger.exception("response failed", extra={"session_id": session.id})
            self._failed("server_error", f"The response failed: {type(exc).__name__}.")
        await self._finish()

    def _failed(self, code: str, message: str, *, error_type: str = "server_error") -> None:
        self.status = "failed"
        self.status_details = {
            "type": "failed",
            "error": {"type": error_type, "code": code, "message": message},
        }

    async def _finish(self) -> None:
        session = self.session
        for item, kind in list(self._open):
            if kind == "call":
                self._open.remove((item, kind))
                item.status = "incomplete"
                await self._done_item(item)
            else:
                await self._close_message(item, kind, self.status)
        usage = self._usage
        session.deps.store.usage_added(
            Usage(text_tokens_in=usage.prompt_tokens, text_tokens_out=usage.completion_tokens)
        )
        await self._emit({"type": "response.done", "response": self.wire()})
        session.responses.pop(self.id, None)
        if session.default_response is self:
            session.default_response = None
            session.input.arm_idle()
