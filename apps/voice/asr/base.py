"""The ASR interface: a whole utterance in, its transcript out (blocking; run in an executor)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was said."""

    text: str
    language: str | None
    """ISO-639-1 code detected or forced."""
    duration_ms: int
    """Length of the audio transcribed."""


class AsrEngine(ABC):
    """A loaded recogniser, shared by the process. ``transcribe`` may be called from threads."""

    sample_rate: int = 16_000

    @abstractmethod
    def transcribe(
        self, samples: np.ndarray, *, language: str | None = None, prompt: str | None = None
    ) -> Transcript:
        """Transcribe 16 kHz mono audio (int16 or float32).

        Args:
            samples: The utterance.
            language: Force a language (``en``, ``zh``…); None detects it.
            prompt: Words or style to bias the recogniser with.
        """

    def describe(self) -> dict[str, object]:
        """What /healthz and the benchmarks report."""
        return {"engine": type(self).__name__}


def as_float32(samples: np.ndarray) -> np.ndarray:
    """16-bit or float samples as float32 in [-1, 1)."""
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / 32768.0
    return samples.astype(np.float32, copy=False)
