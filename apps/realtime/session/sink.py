"""Where a response's audio goes.

``AudioSink`` is the seam between the session and a transport. The WebSocket sink below
encodes audio to the response's output format and sends it as ``output_audio.delta``
events, paced so it never runs more than ``limits.audio_lead_ms`` ahead of real time
(Daphne gives no backpressure, and a client that is sent a whole reply at once cannot be
interrupted cleanly). The WebRTC transport plugs in a sink that feeds a media track.
"""

from __future__ import annotations

import asyncio
import base64
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from apps.core.audio import resample
from apps.core.audio_codecs import AudioEncoder, format_rate, make_encoder

if TYPE_CHECKING:
    from apps.voice.tts.base import Phoneme

    from .conversation import Item
    from .session import RealtimeSession

# Audio per delta event: small enough to interrupt promptly, large enough to keep the event
# rate low (Opus sends one 20 ms packet per event instead).
SLICE_MS = 100


@dataclass(slots=True)
class AudioTarget:
    """One audio content part being played."""

    response_id: str
    item: Item
    output_index: int
    content_index: int
    format: dict[str, Any]
    encoder: AudioEncoder | None = field(default=None)


class AudioSink(ABC):
    """Plays assistant audio for a session."""

    reports_playback = False
    """Whether the sink itself knows what the client heard (a WebRTC track): it then sends
    ``output_audio_buffer.started/stopped/cleared`` and truncates an interrupted item to
    what was played. Over WebSocket the client plays the audio and truncates."""

    @abstractmethod
    async def play(
        self,
        samples: np.ndarray,
        sample_rate: int,
        target: AudioTarget,
        phonemes: Sequence[Phoneme] = (),
    ) -> None:
        """Play int16 mono samples; returns once they are handed on (paced).

        ``phonemes`` are the TTS's timings for these samples (ms from their first sample;
        empty when the engine gives none): a sink that shows an avatar places them on its
        own clock when the samples actually start playing, so the lips follow what is heard.
        """

    @abstractmethod
    async def finish(self, target: AudioTarget) -> None:
        """The part is complete: flush what the encoder still holds."""

    @abstractmethod
    async def clear(self) -> None:
        """Drop anything not yet played (barge-in, ``output_audio_buffer.clear``)."""


def encode_slices(
    samples: np.ndarray, sample_rate: int, target: AudioTarget
) -> list[tuple[float, bytes]]:
    """In the audio executor: resample and encode into (duration_ms, bytes) slices."""
    rate = format_rate(target.format)
    native = resample(samples, sample_rate, rate)
    assert target.encoder is not None
    step = rate * SLICE_MS // 1000
    slices: list[tuple[float, bytes]] = []
    opus = target.format["type"] == "audio/opus"
    for start in range(0, len(native), step):
        piece = native[start : start + step]
        chunks = target.encoder.encode(piece)
        ms = 1000.0 * len(piece) / rate
        if opus and chunks:
            # One packet per event, each carrying its share of the slice's time.
            slices.extend((ms / len(chunks), chunk) for chunk in chunks)
        else:
            slices.append((ms, b"".join(chunks)))
    return slices


class PlaybackObserver(Protocol):
    """Follows what a sink plays (an avatar's video shown next to the client's audio)."""

    def played(
        self, samples: np.ndarray, sample_rate: int, phonemes: Sequence[Phoneme], at_s: float
    ) -> None:
        """``samples`` start playing at ``at_s`` (``time.monotonic()``)."""

    def cleared(self) -> None:
        """Playback was cut off (barge-in, ``output_audio_buffer.clear``)."""


class WebSocketAudioSink(AudioSink):
    """Sends audio as ``response.output_audio.delta`` events, paced against a clock.

    The client plays each part's deltas back to back from the first one, so a part's audio
    starts playing at the pace clock's time for its first sample (plus the network's and
    the player's constant delay): that is what ``observers`` are told, with the part's
    phoneme timings.
    """

    def __init__(self, session: RealtimeSession) -> None:
        self.session = session
        self._t0: float | None = None
        self._sent_ms = 0.0
        self._generation = 0
        self.observers: list[PlaybackObserver] = []

    async def _pace(self) -> None:
        lead_ms = self.session.deps.limits.audio_lead_ms
        now = time.monotonic()
        if self._t0 is None or (now - self._t0) * 1000 > self._sent_ms:
            # Nothing is playing (first audio, or the stream ran dry): restart the clock.
            self._t0 = now - self._sent_ms / 1000
        ahead_ms = self._sent_ms - (now - self._t0) * 1000
        if ahead_ms > lead_ms:
            await asyncio.sleep((ahead_ms - lead_ms) / 1000)

    async def play(
        self,
        samples: np.ndarray,
        sample_rate: int,
        target: AudioTarget,
        phonemes: Sequence[Phoneme] = (),
    ) -> None:
        """Encode off the loop, then send slice by slice within the lead (no avatar here)."""
        if target.encoder is None:
            target.encoder = make_encoder(target.format)
        engines = self.session.deps.engines
        generation = self._generation
        slices = await engines.run(
            engines.audio_executor, encode_slices, samples, sample_rate, target
        )
        first = True
        for ms, data in slices:
            if generation != self._generation:
                return
            await self._pace()
            if first:
                first = False
                assert self._t0 is not None
                at_s = self._t0 + self._sent_ms / 1000.0
                for observer in self.observers:
                    observer.played(samples, sample_rate, phonemes, at_s)
            if data:
                await self._delta(target, data)
            self._sent_ms += ms
            target.item.audio_ms += ms

    async def _delta(self, target: AudioTarget, data: bytes) -> None:
        self.session.audio_started = True
        await self.session.emit(
            {
                "type": "response.output_audio.delta",
                "response_id": target.response_id,
                "item_id": target.item.id,
                "output_index": target.output_index,
                "content_index": target.content_index,
                "delta": base64.b64encode(data).decode("ascii"),
            }
        )

    async def finish(self, target: AudioTarget) -> None:
        """Send the encoder's tail (MP3 keeps a frame back; Opus a partial packet)."""
        if target.encoder is None:
            return
        chunks = target.encoder.flush()
        if target.format["type"] == "audio/opus":
            for packet in chunks:
                await self._delta(target, packet)
        elif chunks:
            await self._delta(target, b"".join(chunks))

    async def clear(self) -> None:
        """Forget the clock; slices of the interrupted part that are not sent yet are dropped."""
        self._generation += 1
        self._t0 = None
        self._sent_ms = 0.0
        for observer in self.observers:
            observer.cleared()
