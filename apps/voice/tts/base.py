"""The TTS interface: text in, one chunk of audio per sentence out, with phoneme timings.

``synthesize`` is a blocking generator: the session runs it in an executor and forwards each
chunk as soon as it exists, so the first sentence plays while later ones are synthesised.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Phoneme:
    """One phoneme (or word, for engines that only time words) and when it is spoken."""

    symbol: str
    start_ms: float
    """From the start of its chunk."""
    duration_ms: float


@dataclass(frozen=True, slots=True)
class SpeechChunk:
    """Audio for one sentence or clause."""

    samples: np.ndarray
    """int16 mono."""
    sample_rate: int
    text: str
    phonemes: tuple[Phoneme, ...] = field(default=())

    @property
    def duration_ms(self) -> float:
        """Length in milliseconds."""
        return 1000.0 * len(self.samples) / self.sample_rate


@dataclass(frozen=True, slots=True)
class VoiceSpec:
    """Which engine voice to use, and how (from the Voice catalogue and the session)."""

    engine_voice: str
    speed: float = 1.0
    """0.25–1.5; 1.0 is the voice's natural rate."""
    pitch: float = 0.0
    """Semitones up (+) or down (−)."""


class TtsEngine(ABC):
    """A loaded synthesiser, shared by the process."""

    #: ISO-639-1 codes this engine speaks.
    languages: tuple[str, ...] = ()

    @abstractmethod
    def synthesize(self, text: str, voice: VoiceSpec) -> Iterator[SpeechChunk]:
        """Yield audio for ``text``, a chunk per sentence, as each is ready."""

    def describe(self) -> dict[str, object]:
        """What /healthz and the benchmarks report."""
        return {"engine": type(self).__name__}

    @classmethod
    def missing_files(cls, **options: object) -> list[str]:
        """Files the engine would need with these OPTIONS but cannot find (no model is loaded)."""
        return []


def pitch_ratio(semitones: float) -> float:
    """Frequency ratio of a pitch shift."""
    return float(2.0 ** (semitones / 12.0))
