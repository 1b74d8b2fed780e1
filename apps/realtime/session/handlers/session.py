"""``session.update``: validate and apply a config patch, answer ``session.updated``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...protocol.session_config import apply_patch
from ..deps import UnknownName
from ..errors import ClientError
from .registry import handles

if TYPE_CHECKING:
    from ...protocol.codec import ParsedEvent
    from ..session import RealtimeSession


def _voice_name(config: dict[str, Any]) -> str:
    voice = config["audio"]["output"]["voice"]
    return voice["id"] if isinstance(voice, dict) else voice


@handles("session.update")
async def update(session: RealtimeSession, parsed: ParsedEvent) -> None:
    """Apply the patch if every part of it can be honoured; otherwise change nothing."""
    patch = parsed.session_patch or {}
    config = apply_patch(session.config, patch)
    llm = session.llm
    if "model" in patch and patch["model"] != session.config.get("model"):
        try:
            llm = session.deps.resolve_llm(patch["model"])
        except UnknownName as exc:
            raise ClientError(str(exc), code="model_not_found", param="session.model") from None
        config["model"] = llm.qualified if not patch["model"] else patch["model"]
    voice_param = "session.audio.output.voice" if session.dialect == "ga" else "session.voice"
    voice = session.voice
    if _voice_name(config) != _voice_name(session.config) and session.audio_started:
        raise ClientError(
            "Cannot update a conversation's voice if assistant audio is present.",
            code="cannot_update_voice",
            param=voice_param,
        )
    if (
        _voice_name(config) != _voice_name(session.config)
        or config["audio"]["output"]["speed"] != session.config["audio"]["output"]["speed"]
    ):
        try:
            voice = await session.resolve_voice(config)
        except UnknownName as exc:
            raise ClientError(str(exc), code="invalid_value", param=voice_param) from None
    input_changed = config["audio"]["input"] != session.config["audio"]["input"]
    session.config = config
    session.llm = llm
    session.voice = voice
    if input_changed:
        session.input.reconfigure()
    await session.emit({"type": "session.updated", "session": session.config})
