"""Inbound audio: decode, resample to 16 kHz, detect turns, commit user audio items.

Appends, commits, clears and format changes go through one bounded queue in arrival
order and are handled by one task per session, so a commit always sees every append sent
before it. The CPU work of each append (decode, resample, VAD) runs in the audio executor.

Overflow policies:

* Queue: at most ``limits.max_pending_input_ms`` of audio (and 512 operations) may wait;
  a client sending faster than that gets an error for the refused append, nothing else.
* Buffer: with turn detection off, the buffer holds at most ``limits.max_input_buffer_ms``;
  appends beyond it are refused with ``input_audio_buffer_full`` (a media track's frames
  with one error until the buffer takes audio again). With turn detection on,
  silence is trimmed to the prefix padding, and a turn longer than the cap is ended there.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from apps.core.audio import StreamResampler
from apps.core.audio_codecs import (
    AudioDecoder,
    UnsupportedFormat,
    bytes_per_ms,
    format_rate,
    make_decoder,
)
from apps.core.ids import item_id as new_item_id
from apps.voice.vad.base import VadParams, VadStream

from ..protocol.errors import ProtocolError
from .conversation import Item
from .deps import Usage
from .errors import ClientError
from .handlers.response import interrupt, start_response

if TYPE_CHECKING:
    from .session import RealtimeSession

logger = logging.getLogger(__name__)

RATE = 16_000
SAMPLES_PER_MS = RATE // 1000
MAX_QUEUED_OPS = 512
MIN_COMMIT_MS = 100
# A speculative decode starts once the voice has dropped for this long inside a turn.
SPECULATE_AFTER_MS = 96
# semantic_vad: the longest wait for the end of a turn, and how soon a finished-sounding
# sentence ends it (OpenAI documents 8/4/2 s maxima for low/medium/high).
SEMANTIC_MAX_WAIT_MS = {"low": 8_000, "medium": 4_000, "high": 2_000, "auto": 4_000}
SEMANTIC_DONE_MS = 500
_FINISHED = re.compile(r"[.?!。？！…]['\"”’)]*\s*$")
OPUS_PACKET_MS = 20
MAX_APPEND_BATCH = 32
# Appends holding at most this much audio are decoded, resampled and VAD-scored on the event
# loop (about 0.05–0.3 ms of CPU); larger batches go to the audio executor. An executor hop
# per 20 ms append cost more than the work itself: thread wake-ups, GIL hand-offs and a
# self-pipe wake of the loop, which at 20 streaming sessions held every session's events
# for half a second (bench/load.py --scenario capacity: probe p99 662 -> 79 ms).
INLINE_DECODE_MAX_MS = 100.0
_EMPTY = np.zeros(0, np.int16)


@dataclass(slots=True)
class _Op:
    kind: Literal["append", "commit", "clear", "configure", "idle", "recheck"]
    data: bytes = b""
    event_id: str | None = None
    ms: float = 0.0
    pcm: np.ndarray | None = None
    """Samples already at ``RATE`` (a media track's audio), bypassing the wire format."""


@dataclass(slots=True)
class _Decoded:
    samples: np.ndarray
    events: list[Any]
    silence_ms: int
    pause_ms: int
    failed: list[tuple[_Op, str]]


@dataclass(slots=True)
class _Speculation:
    speech_end: int
    """Absolute 16 kHz sample where the pause it covers began."""
    task: asyncio.Task[str]


class InputAudio:
    """The input audio buffer and turn detection of one session."""

    def __init__(self, session: RealtimeSession) -> None:
        self.session = session
        self._queue: asyncio.Queue[_Op] = asyncio.Queue(maxsize=MAX_QUEUED_OPS)
        self._pending_ms = 0.0
        self._task: asyncio.Task[None] | None = None
        self._format: dict[str, Any] | None = None
        self._decoder: AudioDecoder | None = None
        self._resampler: StreamResampler | None = None
        self._turn_detection: dict[str, Any] | None = None
        self._vad: VadStream | None = None
        self._vad_origin = 0  # absolute sample where the current VAD stream started
        self._chunks: list[np.ndarray] = []
        self._start = 0  # absolute sample of the first buffered sample
        self._end = 0  # absolute sample after the last one (= samples received so far)
        self._speech_item: str | None = None
        self._speech_start = 0
        self._speculation: _Speculation | None = None
        # A media track refused by a full buffer is told once, not once per 40 ms batch.
        self._track_refusal_told = False
        self._idle_handle: asyncio.TimerHandle | None = None

    # --- called by handlers (never block) ---------------------------------------------------

    def start(self) -> None:
        """Start processing (after ``session.created``)."""
        self._configure()
        self._task = self.session.spawn(self._run(), name="input-audio")

    async def stop(self) -> None:
        """Stop processing; queued operations are dropped."""
        self.cancel_idle()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def append(self, data: bytes, *, event_id: str | None) -> None:
        """Queue audio in the session's input format.

        Raises:
            ClientError: Odd-length 16-bit PCM, or the client is too far ahead.
        """
        fmt = self.session.config["audio"]["input"]["format"]
        per_ms = bytes_per_ms(fmt)
        if fmt["type"] == "audio/pcm" and len(data) % 2:
            raise ClientError(
                f"Invalid audio: 16-bit PCM needs an even number of bytes, got {len(data)}.",
                code="invalid_value",
                param="audio",
            )
        ms = len(data) / per_ms if per_ms else OPUS_PACKET_MS
        # One large append is fine when nothing waits; a stream running ahead is not.
        if (
            self._pending_ms
            and self._pending_ms + ms > self.session.deps.limits.max_pending_input_ms
        ):
            raise ClientError(
                "Audio is arriving faster than real time allows; this append was dropped. "
                "Send audio at most a few seconds ahead of real time.",
                code="input_audio_buffer_overflow",
            )
        self._put(_Op("append", data, event_id, ms))
        self._pending_ms += ms

    def append_pcm(self, samples: np.ndarray) -> None:
        """Queue int16 mono samples at 16 kHz from a media track (WebRTC's microphone).

        The session's input format does not apply: the transport decoded them. Audio that
        arrives while the queue is far behind is dropped (a media track is real time; the
        next frame follows regardless), so this never raises.
        """
        ms = len(samples) / SAMPLES_PER_MS
        if self._pending_ms + ms > self.session.deps.limits.max_pending_input_ms:
            return
        try:
            self._queue.put_nowait(_Op("append", pcm=samples, ms=ms))
        except asyncio.QueueFull:
            return
        self._pending_ms += ms

    def commit(self, *, event_id: str | None) -> None:
        """Queue a commit (after the appends already queued)."""
        self._put(_Op("commit", event_id=event_id))

    def clear(self, *, event_id: str | None) -> None:
        """Queue a clear."""
        self._put(_Op("clear", event_id=event_id))

    def reconfigure(self) -> None:
        """Apply a changed input format or turn detection after the queued audio."""
        self._put(_Op("configure"))

    def _put(self, op: _Op) -> None:
        try:
            self._queue.put_nowait(op)
        except asyncio.QueueFull:
            raise ClientError(
                "Too many audio operations are waiting; slow down.",
                code="input_audio_buffer_overflow",
            ) from None

    # --- idle timeout -----------------------------------------------------------------------

    def arm_idle(self) -> None:
        """Start the idle timer (server_vad ``idle_timeout_ms``) after a response ends."""
        self.cancel_idle()
        td = self._turn_detection
        if not td or td.get("type") != "server_vad" or not td.get("idle_timeout_ms"):
            return
        loop = asyncio.get_running_loop()
        self._idle_handle = loop.call_later(
            td["idle_timeout_ms"] / 1000, lambda: self._put_quiet(_Op("idle"))
        )

    def cancel_idle(self) -> None:
        """Stop the idle timer (speech started or a response began)."""
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None

    def _put_quiet(self, op: _Op) -> None:
        if op.kind == "idle":
            self._idle_handle = None
        try:
            self._queue.put_nowait(op)
        except asyncio.QueueFull:
            logger.warning("input queue full; idle timeout dropped", extra=self._log)

    @property
    def _log(self) -> dict[str, str]:
        return {"session_id": self.session.id}

    # --- the processing task ----------------------------------------------------------------

    async def _run(self) -> None:
        held: _Op | None = None
        while True:
            op = held or await self._queue.get()
            held = None
            if op.kind == "append":
                # Appends waiting back to back are decoded and scored in one executor call:
                # under load the per-call overhead, not the audio, is what costs.
                batch = [op]
                while len(batch) < MAX_APPEND_BATCH and not self._queue.empty():
                    following = self._queue.get_nowait()
                    if following.kind != "append":
                        held = following
                        break
                    batch.append(following)
                try:
                    await self._append(batch)
                finally:
                    self._pending_ms = max(0.0, self._pending_ms - sum(o.ms for o in batch))
                continue
            try:
                await self._handle(op)
            except ClientError as exc:
                await self.session.error(exc.error, event_id=op.event_id)

    async def _handle(self, op: _Op) -> None:
        if op.kind == "commit":
            await self._manual_commit(op.event_id)
        elif op.kind == "clear":
            self._reset_buffer()
            self._speech_item = None
            await self.session.emit({"type": "input_audio_buffer.cleared"})
        elif op.kind == "configure":
            self._configure()
        elif op.kind == "recheck":
            if self._speech_item is not None and self._vad is not None:
                limit = self.session.deps.limits.max_input_buffer_ms * SAMPLES_PER_MS
                await self._during_turn(self._vad.silence_ms, self._vad.pause_start_ms, limit)
        else:
            await self._idle_timeout()

    def _configure(self) -> None:
        audio_in = self.session.config["audio"]["input"]
        fmt = audio_in["format"]
        if fmt != self._format:
            try:
                self._decoder = make_decoder(fmt)
            except UnsupportedFormat:
                self._decoder = None
            self._resampler = StreamResampler(format_rate(fmt), RATE)
            self._format = dict(fmt)
        td = audio_in["turn_detection"]
        if td != self._turn_detection:
            self._turn_detection = None if td is None else dict(td)
            self._vad = None
            self._speech_item = None
            if td is not None:
                self._vad = self.session.deps.engines.vad.stream(self._vad_params(td))
                self._vad_origin = self._end

    @staticmethod
    def _vad_params(td: dict[str, Any]) -> VadParams:
        if td["type"] == "semantic_vad":
            return VadParams(
                silence_duration_ms=SEMANTIC_MAX_WAIT_MS[td.get("eagerness") or "auto"]
            )
        return VadParams(
            threshold=td["threshold"],
            prefix_padding_ms=td["prefix_padding_ms"],
            silence_duration_ms=td["silence_duration_ms"],
        )

    # --- audio ------------------------------------------------------------------------------

    def _decode(self, batch: list[_Op]) -> _Decoded:
        """Wire bytes to 16 kHz samples, then VAD (small batches inline, else the executor)."""
        assert self._decoder is not None and self._resampler is not None
        pieces: list[np.ndarray] = []
        failed: list[tuple[_Op, str]] = []
        for op in batch:
            if op.pcm is not None:
                continue
            try:
                pieces.append(self._decoder.decode(op.data))
            except ValueError as exc:
                failed.append((op, str(exc)))
        if pieces:
            native = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
            samples = self._resampler.push(native)
        else:
            samples = _EMPTY
        tracked = [op.pcm for op in batch if op.pcm is not None]
        if tracked:
            # A call's track and client appends do not interleave in practice (OpenAI's
            # WebRTC clients send audio on the track only); if they do, each keeps its order.
            samples = (
                np.concatenate([samples, *tracked])
                if len(samples)
                else (tracked[0] if len(tracked) == 1 else np.concatenate(tracked))
            )
        if self._vad is None:
            return _Decoded(samples, [], 0, 0, failed)
        events = self._vad.push(samples)
        return _Decoded(samples, events, self._vad.silence_ms, self._vad.pause_start_ms, failed)

    async def _append(self, batch: list[_Op]) -> None:
        session = self.session
        limit_samples = session.deps.limits.max_input_buffer_ms * SAMPLES_PER_MS
        refusal = None
        if self._decoder is None:
            refusal = ClientError("The input audio format cannot be decoded.", code="invalid_value")
        elif self._vad is None and self._end - self._start >= limit_samples:
            refusal = ClientError(
                "The input audio buffer is full; commit or clear it first.",
                code="input_audio_buffer_full",
            )
        if refusal is not None:
            # Each client append is answered (it has an event_id to echo); a media track's
            # frames keep coming 25 times a second, so it gets one error until the buffer
            # takes audio again (after a commit or clear).
            for op in batch:
                if op.pcm is None:
                    await session.error(refusal.error, event_id=op.event_id)
            if any(op.pcm is not None for op in batch) and not self._track_refusal_told:
                self._track_refusal_told = True
                await session.error(refusal.error, event_id=None)
            return
        self._track_refusal_told = False
        engines = session.deps.engines
        if sum(op.ms for op in batch) <= INLINE_DECODE_MAX_MS and engines.vad.inline_ok:
            decoded = self._decode(batch)
        else:
            decoded = await engines.run(engines.audio_executor, self._decode, batch)
        for op, message in decoded.failed:
            await session.error(
                ProtocolError(f"Invalid audio: {message}", "audio", "invalid_value"),
                event_id=op.event_id,
            )
        samples, events = decoded.samples, decoded.events
        silence_ms, pause_ms = decoded.silence_ms, decoded.pause_ms
        if len(samples):
            self._chunks.append(samples)
            self._end += len(samples)
            self.session.deps.store.usage_added(
                Usage(input_audio_ms=round(len(samples) / SAMPLES_PER_MS))
            )
        if self._vad is None:
            return
        for event in events:
            position = self._vad_origin + event.audio_ms * SAMPLES_PER_MS
            if event.kind == "speech_started":
                await self._speech_started(position)
            elif self._speech_item is not None:
                speech_end = self._vad_origin + (event.speech_end_ms or 0) * SAMPLES_PER_MS
                await self._speech_stopped(position, speech_end=speech_end)
        if self._speech_item is None:
            self._trim_silence()
        else:
            await self._during_turn(silence_ms, pause_ms, limit_samples)

    async def _during_turn(self, silence_ms: int, pause_ms: int, limit_samples: int) -> None:
        if self._end - self._speech_start >= limit_samples:
            await self._speech_stopped(self._end, speech_end=self._end, forced=True)
            return
        if silence_ms < SPECULATE_AFTER_MS:
            return
        pause_start = self._vad_origin + pause_ms * SAMPLES_PER_MS
        spec = self._speculation
        if spec is not None and spec.speech_end != pause_start and not spec.task.done():
            # One guess at a time: the ASR worker is shared, and a queue of stale guesses
            # would delay the decode that counts. The next append tries again.
            return
        if spec is None or spec.speech_end != pause_start:
            audio = self._buffer(self._speech_start, pause_start)
            task = self.session.spawn(self._transcribe_samples(audio), name="asr-speculative")
            self._speculation = _Speculation(pause_start, task)
            if (self._turn_detection or {}).get("type") == "semantic_vad":
                # Decide as soon as the guess is in, not only when the next audio arrives.
                task.add_done_callback(lambda _: self._put_quiet(_Op("recheck")))
            return
        td = self._turn_detection or {}
        if (
            td.get("type") == "semantic_vad"
            and silence_ms >= SEMANTIC_DONE_MS
            and spec.task.done()
            and not spec.task.cancelled()
            and spec.task.exception() is None
            and _FINISHED.search(spec.task.result())
        ):
            # It sounds finished: end the turn now instead of waiting the full maximum.
            await self._speech_stopped(self._end, speech_end=pause_start, forced=True)

    def _buffer(self, start: int, end: int) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        whole = self._chunks[0] if self._chunks else np.zeros(0, np.int16)
        lo = max(0, start - self._start)
        hi = max(lo, min(len(whole), end - self._start))
        return whole[lo:hi]

    def _drop_before(self, position: int) -> None:
        keep = self._buffer(position, self._end)
        self._chunks = [keep] if len(keep) else []
        self._start = self._end - len(keep)

    def _reset_buffer(self) -> None:
        self._chunks = []
        self._start = self._end
        self._speculation = None

    def _trim_silence(self) -> None:
        td = self._turn_detection or {}
        keep = (td.get("prefix_padding_ms") or 300) * SAMPLES_PER_MS + RATE // 2
        if self._end - self._start > 2 * keep:
            self._drop_before(self._end - keep)

    # --- turns ------------------------------------------------------------------------------

    def _ms(self, position: int) -> int:
        return position // SAMPLES_PER_MS

    async def _speech_started(self, position: int) -> None:
        self.cancel_idle()
        self._drop_before(position)
        self._speech_start = max(position, self._start)
        self._speech_item = new_item_id()
        self._speculation = None
        await self.session.emit(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": self._ms(self._speech_start),
                "item_id": self._speech_item,
            }
        )
        td = self._turn_detection or {}
        if td.get("interrupt_response", True):
            await interrupt(self.session)

    async def _speech_stopped(
        self, position: int, *, speech_end: int, forced: bool = False
    ) -> None:
        self.session.turn.start()
        td = self._turn_detection or {}
        item_id = self._speech_item or new_item_id()
        self._speech_item = None
        await self.session.emit(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": self._ms(position),
                "item_id": item_id,
            }
        )
        audio = self._buffer(self._speech_start, position)
        spec = self._speculation
        reuse = spec.task if spec is not None and spec.speech_end == speech_end else None
        if spec is not None and reuse is None:
            spec.task.cancel()
        self._speculation = None
        self._drop_before(position)
        if forced and self._vad is not None:
            # Restart the segmenter so it does not end this (already ended) turn again.
            self._vad = self.session.deps.engines.vad.stream(self._vad.params)
            self._vad_origin = self._end
        await self._commit(audio, item_id=item_id, speculative=reuse)
        if td.get("create_response", True):
            await start_response(self.session, params=None, event_id=None)

    async def _manual_commit(self, event_id: str | None) -> None:
        audio = self._buffer(self._start, self._end)
        if len(audio) < MIN_COMMIT_MS * SAMPLES_PER_MS:
            raise ClientError(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has "
                f"{len(audio) / SAMPLES_PER_MS:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        item_id = self._speech_item or new_item_id()
        self._speech_item = None
        if self._speculation is not None:
            self._speculation.task.cancel()
            self._speculation = None
        # The resampler holds back its filter delay (~16 ms); a commit ends the stream there.
        assert self._resampler is not None
        tail = self._resampler.push(np.zeros(0, np.int16), last=True)
        self._resampler = StreamResampler(self._resampler.from_rate, RATE)
        audio = np.concatenate([audio, tail.astype(np.int16)]) if len(tail) else audio
        self._end += len(tail)
        self._reset_buffer()
        await self._commit(audio, item_id=item_id, speculative=None)

    async def _idle_timeout(self) -> None:
        if self._speech_item is not None or self.session.default_response is not None:
            return
        start = self._start
        item_id = new_item_id()
        await self.session.emit(
            {
                "type": "input_audio_buffer.timeout_triggered",
                "audio_start_ms": self._ms(start),
                "audio_end_ms": self._ms(self._end),
                "item_id": item_id,
            }
        )
        audio = self._buffer(start, self._end)
        self._reset_buffer()
        await self._commit(audio, item_id=item_id, speculative=None)
        await start_response(self.session, params=None, event_id=None)

    async def _commit(
        self, audio: np.ndarray, *, item_id: str, speculative: asyncio.Task[str] | None
    ) -> None:
        session = self.session
        item = Item(
            type="message",
            id=item_id,
            role="user",
            content=[{"type": "input_audio", "transcript": None}],
            audio=audio,
        )
        item.transcribed = asyncio.get_running_loop().create_future()
        previous = session.conversation.add(item)
        await session.emit(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item.id,
                "previous_item_id": previous,
            }
        )
        await session.emit(
            {"type": "conversation.item.added", "item": item.wire(), "previous_item_id": previous}
        )
        await session.emit(
            {"type": "conversation.item.done", "item": item.wire(), "previous_item_id": previous}
        )
        session.save_item(item)
        session.spawn(self._transcribe_item(item, audio, speculative), name="asr")

    # --- transcription ----------------------------------------------------------------------

    async def _transcribe_samples(self, audio: np.ndarray) -> str:
        engines = self.session.deps.engines
        transcription = self.session.config["audio"]["input"]["transcription"] or {}
        result = await engines.run(
            engines.asr_executor,
            lambda: engines.asr.transcribe(
                audio, language=transcription.get("language"), prompt=transcription.get("prompt")
            ),
        )
        return result.text.strip()

    async def _transcribe_item(
        self, item: Item, audio: np.ndarray, speculative: asyncio.Task[str] | None
    ) -> None:
        session = self.session
        configured = session.config["audio"]["input"]["transcription"] is not None
        future = item.transcribed
        try:
            text = None
            if speculative is not None:
                try:
                    text = await speculative
                except Exception:  # noqa: BLE001 - a failed guess just means decoding again
                    text = None
            if text is None:
                text = await self._transcribe_samples(audio)
        except Exception as exc:
            logger.exception("transcription failed", extra=self._log)
            if configured:
                await session.emit(
                    {
                        "type": "conversation.item.input_audio_transcription.failed",
                        "item_id": item.id,
                        "content_index": 0,
                        "error": {
                            "type": "server_error",
                            "code": "transcription_failed",
                            "message": f"Transcription failed: {type(exc).__name__}.",
                            "param": None,
                        },
                    }
                )
            if future is not None and not future.done():
                future.set_result("")
            return
        item.content[0]["transcript"] = text
        session.turn.mark("transcript")
        if future is not None and not future.done():
            future.set_result(text)
        if configured:
            if text:
                await session.emit(
                    {
                        "type": "conversation.item.input_audio_transcription.delta",
                        "item_id": item.id,
                        "content_index": 0,
                        "delta": text,
                    }
                )
            await session.emit(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item.id,
                    "content_index": 0,
                    "transcript": text,
                    "usage": {"type": "duration", "seconds": round(len(audio) / RATE, 3)},
                }
            )
        if item.id in session.conversation:
            session.save_item(item)
