"""Scripted ASR for tests: returns the next scripted transcript for each utterance."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import AsrEngine, Transcript


class FakeAsr(AsrEngine):
    """Hands out ``transcripts`` in order (the last one repeats); language from the call or "en"."""

    def __init__(self, transcripts: Sequence[str] = ("hello",)) -> None:
        self.transcripts = list(transcripts) or [""]
        self.calls = 0

    def transcribe(
        self, samples: np.ndarray, *, language: str | None = None, prompt: str | None = None
    ) -> Transcript:
        """The next scripted transcript."""
        text = self.transcripts[min(self.calls, len(self.transcripts) - 1)]
        self.calls += 1
        return Transcript(
            text=text,
            language=language or "en",
            duration_ms=int(1000 * len(samples) / self.sample_rate),
        )
