"""Scripted TTS for tests: a quiet tone per sentence, 60 ms per character, timed per character."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .base import Phoneme, SpeechChunk, TtsEngine, VoiceSpec
from .chunker import split_sentences

MS_PER_CHAR = 60.0


class FakeTts(TtsEngine):
    """Deterministic audio whose length follows the text and the requested speed."""

    languages = ("en", "zh")

    def __init__(self, sample_rate: int = 24_000, frequency_hz: float = 220.0) -> None:
        self.sample_rate = sample_rate
        self.frequency_hz = frequency_hz

    def synthesize(self, text: str, voice: VoiceSpec) -> Iterator[SpeechChunk]:
        """One tone per sentence."""
        per_char = MS_PER_CHAR / max(0.25, min(voice.speed, 1.5))
        for sentence in split_sentences(text):
            n = int(self.sample_rate * per_char * len(sentence) / 1000)
            t = np.arange(n) / self.sample_rate
            samples = (0.2 * 32767 * np.sin(2 * np.pi * self.frequency_hz * t)).astype(np.int16)
            phonemes = tuple(Phoneme(ch, i * per_char, per_char) for i, ch in enumerate(sentence))
            yield SpeechChunk(
                samples=samples, sample_rate=self.sample_rate, text=sentence, phonemes=phonemes
            )
