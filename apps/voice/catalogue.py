"""From a catalogue ``Voice`` to what an engine needs (``VoiceSpec``)."""

from __future__ import annotations

from .models import Voice
from .tts.base import VoiceSpec


def voice_spec(voice: Voice, *, speed: float = 1.0) -> VoiceSpec:
    """The engine voice with the voice's own pace and pitch, times the session's ``speed``.

    The product is clamped to the Realtime API's 0.25–1.5 range.
    """
    return VoiceSpec(
        engine_voice=voice.engine_voice,
        speed=max(0.25, min(1.5, voice.speed * speed)),
        pitch=voice.pitch,
    )
