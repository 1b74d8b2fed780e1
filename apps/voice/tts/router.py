"""One TTS that speaks mixed Chinese/English: each run of text goes to its language's engine.

Sentences stay the unit of streaming: a sentence such as "我们用 Python 写代码。" is cut into
script runs, each run is synthesised by the engine for its language, and the pieces are
joined (at one output rate) into a single chunk with continuous phoneme timings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from apps.core.audio import resample
from apps.core.backends import load_backend

from .base import Phoneme, SpeechChunk, TtsEngine, VoiceSpec
from .chunker import split_sentences
from .normalize import split_by_script


class ScriptRouterTts(TtsEngine):
    """Routes ``zh`` runs (Han characters) and ``en`` runs (everything else) to their engines."""

    def __init__(self, engines: Mapping[str, Mapping[str, Any]], sample_rate: int = 24_000) -> None:
        if not engines:
            raise ValueError("ScriptRouterTts needs at least one engine")
        self._engines: dict[str, TtsEngine] = {
            language: load_backend(entry, TtsEngine, name=f"tts engines[{language!r}]")
            for language, entry in engines.items()
        }
        self.sample_rate = sample_rate
        self.languages = tuple(self._engines)

    def describe(self) -> dict[str, object]:
        """Each language's engine."""
        return {
            "engine": "script-router",
            "engines": {k: v.describe() for k, v in self._engines.items()},
        }

    def engine_for(self, language: str) -> TtsEngine:
        """The engine that speaks ``language`` (the first one when none does)."""
        return self._engines.get(language) or next(iter(self._engines.values()))

    def synthesize(self, text: str, voice: VoiceSpec) -> Iterator[SpeechChunk]:
        """One chunk per sentence, whatever mix of languages it holds."""
        for sentence in split_sentences(text):
            pieces: list[np.ndarray] = []
            phonemes: list[Phoneme] = []
            offset_ms = 0.0
            for language, run in split_by_script(sentence):
                for chunk in self.engine_for(language).synthesize(run, voice):
                    samples = resample(chunk.samples, chunk.sample_rate, self.sample_rate)
                    phonemes.extend(
                        Phoneme(p.symbol, p.start_ms + offset_ms, p.duration_ms)
                        for p in chunk.phonemes
                    )
                    pieces.append(samples)
                    offset_ms += 1000.0 * len(samples) / self.sample_rate
            if pieces:
                yield SpeechChunk(
                    samples=np.concatenate(pieces).astype(np.int16),
                    sample_rate=self.sample_rate,
                    text=sentence,
                    phonemes=tuple(phonemes),
                )
