"""The process-wide engines named in ``settings.VOICE_ENGINES``, loaded once and shared.

``VOICE_ENGINES = {"vad": {...}, "asr": {...}, "tts": {...}}``; each entry is a
``BACKEND`` dotted path plus ``OPTIONS``. Loading is lazy and thread-safe; ``warm_up`` loads
everything in a background thread at start-up so the first request does not pay for it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, TypeVar

from django.conf import settings

from apps.core.backends import load_backend

from .asr.base import AsrEngine
from .tts.base import TtsEngine
from .vad.base import VadEngine

logger = logging.getLogger(__name__)
T = TypeVar("T")

KINDS: dict[str, type[Any]] = {"vad": VadEngine, "asr": AsrEngine, "tts": TtsEngine}
_engines: dict[str, Any] = {}
_lock = threading.Lock()


class EngineNotConfigured(LookupError):
    """``settings.VOICE_ENGINES`` has no entry for this kind."""


def _get(kind: str) -> Any:
    engine = _engines.get(kind)
    if engine is not None:
        return engine
    with _lock:
        if kind not in _engines:
            entry = settings.VOICE_ENGINES.get(kind)
            if entry is None:
                raise EngineNotConfigured(f"VOICE_ENGINES has no {kind!r} engine")
            _engines[kind] = load_backend(entry, KINDS[kind], name=f"VOICE_ENGINES[{kind!r}]")
        return _engines[kind]


def get_vad() -> VadEngine:
    """The shared VAD engine."""
    return _get("vad")


def get_asr() -> AsrEngine:
    """The shared ASR engine."""
    return _get("asr")


def get_tts() -> TtsEngine:
    """The shared TTS engine."""
    return _get("tts")


def loaded() -> dict[str, dict[str, object]]:
    """Descriptions of the engines loaded so far (for /healthz)."""
    return {kind: engine.describe() for kind, engine in list(_engines.items())}


def reset() -> None:
    """Forget loaded engines (tests that change VOICE_ENGINES)."""
    with _lock:
        _engines.clear()


def warm_up() -> threading.Thread:
    """Load every configured engine in a daemon thread; failures are logged, not raised."""

    def load_all() -> None:
        for kind in settings.VOICE_ENGINES:
            if kind in KINDS:
                try:
                    _get(kind)
                except Exception:
                    logger.exception("voice engine failed to load", extra={"kind": kind})

    thread = threading.Thread(target=load_all, name="voice-warm-up", daemon=True)
    thread.start()
    return thread
