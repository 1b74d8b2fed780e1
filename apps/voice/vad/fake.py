"""Scripted VAD for tests: speech wherever the script says, whatever the audio is."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import FRAME_MS, FrameScorer, VadEngine


class FakeVad(VadEngine):
    """Scores 1.0 inside the scripted ``(start_ms, end_ms)`` intervals of each stream, else 0.

    With no script it falls back to loudness (above -40 dBFS is speech), which lets tests
    drive it with synthetic tones.
    """

    energy_gate_dbfs = None

    def __init__(self, speech_ms: Sequence[Sequence[int]] = ()) -> None:
        self.speech_ms = [(int(a), int(b)) for a, b in speech_ms]

    def scorer(self) -> FrameScorer:
        """A scorer that tracks the stream position itself."""
        position_ms = 0
        intervals = list(self.speech_ms)

        def score(frame: np.ndarray) -> float:
            nonlocal position_ms
            now = position_ms
            position_ms += FRAME_MS
            if intervals:
                return 1.0 if any(a <= now < b for a, b in intervals) else 0.0
            rms = float(np.sqrt(np.mean(frame * frame))) + 1e-12
            return 1.0 if 20 * np.log10(rms) > -40.0 else 0.0

        return score
