"""The VAD interface and the turn segmenter every VAD engine shares.

An engine owns the (shared, read-only) model and hands out a ``FrameScorer`` per stream,
which keeps that stream's recurrent state. ``VadStream`` turns per-frame speech
probabilities into ``speech_started``/``speech_stopped`` events with the Realtime API's
``threshold``, ``prefix_padding_ms`` and ``silence_duration_ms`` semantics.

Everything here is synchronous and cheap (Silero: ~0.1–0.25 ms per 32 ms frame). The
session scores a small append (≤ 100 ms of audio) right on the event loop when the engine
says it is ``inline_ok``, and everything larger in its audio executor.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

SAMPLE_RATE = 16_000
FRAME_SAMPLES = 512  # 32 ms at 16 kHz, Silero's window
FRAME_MS = 1000 * FRAME_SAMPLES // SAMPLE_RATE
# Frames quieter than this (dBFS) are scored 0 without running the model.
ENERGY_GATE_DBFS = -55.0
# Speech ends when the probability falls this far below the start threshold (hysteresis).
STOP_HYSTERESIS = 0.15
# A long push lets other threads run this often (frames; about a second of audio).
YIELD_EVERY_FRAMES = 32

FrameScorer = Callable[[np.ndarray], float]
"""Scores one float32 frame of FRAME_SAMPLES samples: speech probability in [0, 1]."""


@dataclass(frozen=True, slots=True)
class VadParams:
    """Turn detection settings (OpenAI ``server_vad`` names and defaults)."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    min_speech_ms: int = 64
    """Speech must last this long before it counts (filters clicks)."""


@dataclass(frozen=True, slots=True)
class VadEvent:
    """Speech started or stopped, at a position of the stream."""

    kind: Literal["speech_started", "speech_stopped"]
    audio_ms: int
    """Stream position. ``speech_started``: start of speech minus the prefix padding (the
    start of the audio to keep). ``speech_stopped``: the end of the silence that ended it."""
    speech_end_ms: int | None = None
    """``speech_stopped`` only: where the voice stopped (the start of that silence)."""


class VadEngine(ABC):
    """A loaded VAD model, shared by every session of the process."""

    sample_rate: int = SAMPLE_RATE
    #: Frames quieter than this skip the model (scored 0); None scores every frame.
    energy_gate_dbfs: float | None = ENERGY_GATE_DBFS
    #: Scoring a 32 ms frame costs well under a millisecond of CPU, so a small append may be
    #: scored on the event loop (cheaper than an executor hop). A heavier engine says False.
    inline_ok: bool = True

    @abstractmethod
    def scorer(self) -> FrameScorer:
        """A new per-stream scorer (fresh recurrent state)."""

    def describe(self) -> dict[str, object]:
        """What /healthz and the benchmarks report."""
        return {"engine": type(self).__name__}

    def stream(self, params: VadParams | None = None) -> VadStream:
        """A new segmenter for one audio stream."""
        return VadStream(
            self.scorer(), params or VadParams(), energy_gate_dbfs=self.energy_gate_dbfs
        )


class VadStream:
    """Segments one 16 kHz stream into speech turns. Not thread-safe: one caller at a time."""

    def __init__(
        self, scorer: FrameScorer, params: VadParams, *, energy_gate_dbfs: float | None = None
    ) -> None:
        self._score = scorer
        self._gate = energy_gate_dbfs
        self.params = params
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames = 0
        self._speaking = False
        self._run_frames = 0  # consecutive frames above the threshold while silent
        self._silence_frames = 0  # consecutive frames below the stop level while speaking
        self.last_probability = 0.0

    @property
    def position_ms(self) -> int:
        """Milliseconds of audio scored so far."""
        return self._frames * FRAME_MS

    @property
    def speaking(self) -> bool:
        """Whether the stream is inside a speech turn."""
        return self._speaking

    @property
    def silence_ms(self) -> int:
        """Inside a turn: how long the voice has been quiet (0 while it is heard)."""
        return self._silence_frames * FRAME_MS if self._speaking else 0

    @property
    def pause_start_ms(self) -> int:
        """Inside a turn: the stream position where the current quiet stretch began."""
        return self.position_ms - self.silence_ms

    def push(self, samples: np.ndarray) -> list[VadEvent]:
        """Feed 16 kHz samples (int16 or float32, any length); return the events they caused."""
        if samples.dtype == np.int16:
            samples = samples.astype(np.float32) / 32768.0
        buffer = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        events: list[VadEvent] = []
        usable = len(buffer) - len(buffer) % FRAME_SAMPLES
        for index, start in enumerate(range(0, usable, FRAME_SAMPLES)):
            if index and index % YIELD_EVERY_FRAMES == 0:
                # Minutes of audio at once run in a worker thread: give the GIL to the event
                # loop now and then, rather than making it wait for the switch interval.
                time.sleep(0)
            event = self._step(buffer[start : start + FRAME_SAMPLES])
            if event is not None:
                events.append(event)
        self._pending = buffer[usable:]
        return events

    def _below_gate(self, frame: np.ndarray) -> bool:
        if self._gate is None:
            return False
        rms = float(np.sqrt(np.mean(frame * frame))) + 1e-12
        return 20 * np.log10(rms) < self._gate

    def _step(self, frame: np.ndarray) -> VadEvent | None:
        probability = 0.0 if self._below_gate(frame) else self._score(frame)
        self.last_probability = probability
        self._frames += 1
        params = self.params
        if not self._speaking:
            self._run_frames = self._run_frames + 1 if probability >= params.threshold else 0
            if self._run_frames * FRAME_MS >= params.min_speech_ms:
                self._speaking = True
                self._silence_frames = 0
                start_ms = (self._frames - self._run_frames) * FRAME_MS
                return VadEvent("speech_started", max(0, start_ms - params.prefix_padding_ms))
            return None
        stop_level = max(0.0, params.threshold - STOP_HYSTERESIS)
        self._silence_frames = self._silence_frames + 1 if probability < stop_level else 0
        if self._silence_frames * FRAME_MS >= params.silence_duration_ms:
            self._speaking = False
            self._run_frames = 0
            speech_end_ms = self.position_ms - self._silence_frames * FRAME_MS
            return VadEvent("speech_stopped", self.position_ms, speech_end_ms)
        return None
