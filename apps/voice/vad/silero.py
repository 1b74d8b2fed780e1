"""Silero VAD v6 on onnxruntime (the ONNX file ships in the ``silero-vad`` wheel; no torch).

The file is checked against its pinned SHA-256 (docs/models.md) before it is loaded.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from apps.core.model_files import verify_configured_file, verify_model_file

from .base import FRAME_SAMPLES, SAMPLE_RATE, FrameScorer, VadEngine

try:
    import onnxruntime as ort
except ImportError as exc:  # pragma: no cover - exercised by the voice checks
    raise ImportError("SileroVad needs onnxruntime: pip install -r requirements.txt") from exc

CONTEXT_SAMPLES = 64
# silero_vad/data/silero_vad.onnx of silero-vad==6.2.3 (requirements-models.txt).
SILERO_VAD_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"


def bundled_model_path() -> Path:
    """The ONNX file in the silero-vad package (found without importing it: it imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("silero-vad is not installed: pip install --no-deps silero-vad==6.2.3")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"


class SileroVad(VadEngine):
    """One ONNX session for the process; each stream keeps its own RNN state and context."""

    def __init__(self, model_path: str | None = None, model_sha256: str | None = None) -> None:
        """Load the bundled model, or ``model_path`` whose SHA-256 must be ``model_sha256``.

        Raises:
            ImproperlyConfigured: ``model_path`` is given without ``model_sha256``.
            ModelFileMismatch: The file is not the pinned one.
        """
        if model_path:
            path = verify_configured_file(
                model_path, model_sha256, owner="SileroVad", digest_option="model_sha256"
            )
        else:
            path = verify_model_file(bundled_model_path(), SILERO_VAD_SHA256)
        options = ort.SessionOptions()
        # One thread per call: many sessions score frames concurrently on few cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        # onnxruntime sessions are thread-safe for run(); the lock only guards per-call arrays.
        self._lock = threading.Lock()
        self.model_path = path

    def describe(self) -> dict[str, object]:
        """Engine name, model file and onnxruntime version."""
        return {
            "engine": "silero-vad",
            "model": self.model_path.name,
            "onnxruntime": ort.__version__,
        }

    def scorer(self) -> FrameScorer:
        """A scorer with fresh state (2×1×128 RNN state + 64-sample context)."""
        state = np.zeros((2, 1, 128), dtype=np.float32)
        context = np.zeros((1, CONTEXT_SAMPLES), dtype=np.float32)
        session = self._session
        sr = self._sr

        def score(frame: np.ndarray) -> float:
            nonlocal state, context
            x = np.concatenate([context, frame.reshape(1, FRAME_SAMPLES)], axis=1)
            out, state = session.run(None, {"input": x, "state": state, "sr": sr})
            context = x[:, -CONTEXT_SAMPLES:]
            return float(out[0, 0])

        return score
