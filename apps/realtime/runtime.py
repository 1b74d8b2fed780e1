"""Process-wide things sessions share: the engines, their executors, and name lookups.

This is the edge side of ``session.deps``: it knows Django settings, the ORM and the
concrete engines, and hands the session plain callables.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from channels.db import database_sync_to_async
from django.conf import settings

from apps.agent.routing import UnknownModel, resolve_model
from apps.agent.routing import providers as llm_providers
from apps.voice import engines as voice_engines
from apps.voice.catalogue import voice_spec
from apps.voice.selectors import voice_get_visible
from apps.voice.tts.base import VoiceSpec

from .session.deps import Engines, Limits, LlmRoute, UnknownName


@functools.cache
def _executors() -> tuple[ThreadPoolExecutor, ThreadPoolExecutor, ThreadPoolExecutor]:
    return (
        ThreadPoolExecutor(settings.REALTIME_AUDIO_WORKERS, thread_name_prefix="rt-audio"),
        ThreadPoolExecutor(settings.REALTIME_ASR_WORKERS, thread_name_prefix="rt-asr"),
        ThreadPoolExecutor(settings.REALTIME_TTS_WORKERS, thread_name_prefix="rt-tts"),
    )


def engines() -> Engines:
    """The engines named in ``VOICE_ENGINES`` with the shared executors (loaded on first use)."""
    audio, asr, tts = _executors()
    return Engines(
        vad=voice_engines.get_vad(),
        asr=voice_engines.get_asr(),
        tts=voice_engines.get_tts(),
        audio_executor=audio,
        asr_executor=asr,
        tts_executor=tts,
    )


def limits() -> Limits:
    """Session limits from settings."""
    return Limits(
        max_session_s=float(settings.REALTIME_MAX_SESSION_S),
        max_input_buffer_ms=settings.REALTIME_MAX_INPUT_BUFFER_MS,
        max_pending_input_ms=settings.REALTIME_MAX_PENDING_INPUT_MS,
        max_responses_per_minute=settings.REALTIME_MAX_RESPONSES_PER_MINUTE,
        audio_lead_ms=settings.REALTIME_AUDIO_LEAD_MS,
    )


def resolve_llm(name: str | None) -> LlmRoute:
    """Route ``model`` / ``modelId@provider`` to a provider.

    Raises:
        UnknownName: No provider serves it.
    """
    try:
        route = resolve_model(name)
    except UnknownModel as exc:
        raise UnknownName(exc.message) from None
    return LlmRoute(
        provider=llm_providers()[route.provider], model=route.model, qualified=route.qualified
    )


def voice_resolver(
    *, license_id: int, user_id: str
) -> Callable[[str, float], Awaitable[VoiceSpec]]:
    """A lookup of catalogue voices visible to this license and end user."""

    @database_sync_to_async
    def lookup(name: str, speed: float) -> VoiceSpec:
        voice = voice_get_visible(name=name, license_id=license_id, user_id=user_id)
        if voice is None:
            raise UnknownName(
                f"Unknown voice '{name}'. GET /v1/realtime/voices lists the voices this key "
                "can use."
            )
        return voice_spec(voice, speed=speed)

    return lookup
