"""The one place that knows both dialects: GA vs beta names and audio-format spellings.

Everything inside the server is GA-shaped (``session.audio.output.voice``, format objects);
beta clients (``OpenAI-Beta: realtime=v1``, xStar, NavTalk) are translated here on the way
in and on the way out.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from apps.core import safe_json

from .client_events import EVENT_MODELS, InputAudioBufferAppendEvent
from .errors import ProtocolError, protocol_error_from_validation
from .session_config import (
    AudioFormat,
    BetaSessionConfig,
    RealtimeSessionConfig,
    SemanticVad,
    ServerVad,
    config_patch,
)

logger = logging.getLogger(__name__)

Dialect = Literal["ga", "beta"]

# Beta and xStar format names → GA format objects.
BETA_AUDIO_FORMATS: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
    "Raw8KHz16BitMonoPcm": {"type": "audio/pcm", "rate": 8000},
    "Raw16KHz16BitMonoPcm": {"type": "audio/pcm", "rate": 16000},
    "Raw24KHz16BitMonoPcm": {"type": "audio/pcm", "rate": 24000},
    "Raw44100Hz16BitMonoPcm": {"type": "audio/pcm", "rate": 44100},
    "MonoMp3": {"type": "audio/mpeg"},
    "Audio16KHz16BitMonoOpus": {"type": "audio/opus", "rate": 16000},
    # Not an xStar name but spelled like its others: every format GA accepts needs a beta
    # name, or a beta client's session.created/updated could not be rendered at all.
    "Audio48KHz16BitMonoOpus": {"type": "audio/opus", "rate": 48000},
}
_OUTPUT_ONLY_FORMATS = {"MonoMp3"}
_AUDIO_FORMAT = TypeAdapter(AudioFormat)


class CodecError(Exception):
    """Client input that cannot be decoded; carries the OpenAI-shaped description.

    ``event_id`` is the client's id of the event that failed, echoed in the ``error`` event.
    """

    def __init__(self, error: ProtocolError, *, event_id: str | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.event_id = event_id


def _join(prefix: str | None, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def beta_format_name(fmt: dict[str, Any]) -> str:
    """Return the beta spelling of a GA format object (``pcm16`` for 24 kHz PCM).

    Omitted fields take their GA defaults (``{"type": "audio/opus"}`` is 16 kHz Opus).

    Raises:
        ValueError: No beta name spells this format (never for a format GA accepts).
    """
    given = {k: v for k, v in fmt.items() if v is not None}
    try:
        canonical = _AUDIO_FORMAT.validate_python(given).model_dump()
    except ValidationError:
        canonical = given
    for name, value in BETA_AUDIO_FORMATS.items():
        if value == canonical:
            return name
    raise ValueError(f"no beta name for format {fmt!r}")


def _beta_format_out(fmt: dict[str, Any]) -> str | dict[str, Any]:
    """The beta spelling of a format for a server event; never raises.

    A failure here would kill the connection's send task mid-session, so a format without
    a beta name (none today: a test checks every GA format has one) goes out as its GA
    object, which tells a beta client more than silence does.
    """
    try:
        return beta_format_name(fmt)
    except ValueError:
        logger.warning(
            "no beta name for audio format; sending the GA object", extra={"audio_format": fmt}
        )
        return fmt


def _beta_format(name: str, *, field: str, prefix: str | None) -> dict[str, Any]:
    param = _join(prefix, field)
    if name not in BETA_AUDIO_FORMATS:
        supported = ", ".join(f"'{n}'" for n in BETA_AUDIO_FORMATS)
        raise CodecError(
            ProtocolError(
                f"Invalid value: '{name}'. Supported values are: {supported}.",
                param,
                "invalid_value",
            )
        )
    if field == "input_audio_format" and name in _OUTPUT_ONLY_FORMATS:
        raise CodecError(
            ProtocolError(
                f"Invalid value: '{name}'. It is an output format.", param, "invalid_value"
            )
        )
    return dict(BETA_AUDIO_FORMATS[name])


def _beta_turn_detection(td: dict[str, Any] | None) -> dict[str, Any] | None:
    if td is None:
        return None
    given = {k: v for k, v in td.items() if v is not None}
    if given.get("type") == "semantic_vad":
        keys = SemanticVad.model_fields.keys()
        return SemanticVad(**{k: v for k, v in given.items() if k in keys}).model_dump()
    keys = ServerVad.model_fields.keys()
    return ServerVad(**{k: v for k, v in given.items() if k in keys}).model_dump()


def _beta_to_patch(beta: BetaSessionConfig, *, prefix: str | None) -> dict[str, Any]:
    raw = config_patch(beta)
    patch: dict[str, Any] = {}
    audio_in: dict[str, Any] = {}
    audio_out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("model", "instructions", "tools", "tool_choice", "temperature", "tracing"):
            patch[key] = value
        elif key == "modalities":
            # Beta ["audio", "text"] = audio with a transcript = GA ["audio"].
            patch["output_modalities"] = ["audio"] if "audio" in value else ["text"]
        elif key == "max_response_output_tokens":
            patch["max_output_tokens"] = value
        elif key == "voice":
            audio_out["voice"] = value
        elif key == "speed":
            audio_out["speed"] = value
        elif key == "output_audio_format":
            audio_out["format"] = _beta_format(value, field=key, prefix=prefix)
        elif key == "input_audio_format":
            audio_in["format"] = _beta_format(value, field=key, prefix=prefix)
        elif key == "input_audio_transcription":
            audio_in["transcription"] = (
                None
                if value is None
                else {
                    "model": value["model"],
                    "language": value["language"],
                    "languages": None,
                    "prompt": value["prompt"],
                    "keywords": None,
                    "delay": None,
                }
            )
        elif key == "input_audio_noise_reduction":
            audio_in["noise_reduction"] = value
        elif key == "turn_detection":
            audio_in["turn_detection"] = _beta_turn_detection(value)
        # client_secret is request metadata for /v1/realtime/sessions, not session state.
    if audio_in or audio_out:
        patch["audio"] = {}
        if audio_in:
            patch["audio"]["input"] = audio_in
        if audio_out:
            patch["audio"]["output"] = audio_out
    return patch


def parse_session_config(
    data: Any, *, dialect: Dialect, prefix: str | None = "session"
) -> dict[str, Any]:
    """Validate a client's session config and return it as a GA-shaped patch.

    Args:
        data: The decoded JSON object the client sent.
        dialect: ``"ga"`` (nested, ``type`` required) or ``"beta"`` (flat).
        prefix: Path of the object in the request, for error ``param`` values.

    Raises:
        CodecError: The config is invalid; ``error.param`` names the offending field.
    """
    model_cls = RealtimeSessionConfig if dialect == "ga" else BetaSessionConfig
    if not isinstance(data, dict):
        raise CodecError(
            ProtocolError(
                f"Invalid type for '{prefix or 'session'}': expected an object.",
                prefix,
                "invalid_type",
            )
        )
    try:
        parsed = model_cls.model_validate(data)
    except ValidationError as exc:
        raise CodecError(protocol_error_from_validation(exc, prefix=prefix)) from None
    if dialect == "ga":
        return config_patch(parsed)
    return _beta_to_patch(parsed, prefix=prefix)  # type: ignore[arg-type]


def _public_ga(session: dict[str, Any]) -> dict[str, Any]:
    # Extension fields are shown only when in use, so stock clients see stock objects.
    return {
        k: v
        for k, v in session.items()
        if not (k in ("temperature", "parallel_tool_calls", "reasoning") and v is None)
    }


def session_to_ga(
    session: dict[str, Any], *, session_id: str, expires_at: int = 0
) -> dict[str, Any]:
    """Render a canonical session as GA's ``realtime.session`` object."""
    return {
        "id": session_id,
        "object": "realtime.session",
        **_public_ga(session),
        "expires_at": expires_at,
    }


def _beta_turn_detection_out(td: dict[str, Any] | None) -> dict[str, Any] | None:
    if td is None:
        return None
    return {k: v for k, v in td.items() if v is not None}


def session_to_beta(
    session: dict[str, Any], *, session_id: str, expires_at: int = 0
) -> dict[str, Any]:
    """Render a canonical session as the beta ``realtime.session`` object (flat fields)."""
    audio_in = session["audio"]["input"]
    audio_out = session["audio"]["output"]
    voice = audio_out["voice"]
    transcription = audio_in["transcription"]
    return {
        "id": session_id,
        "object": "realtime.session",
        "model": session["model"],
        "expires_at": expires_at,
        "modalities": ["text"] if session["output_modalities"] == ["text"] else ["audio", "text"],
        "instructions": session["instructions"],
        "voice": voice["id"] if isinstance(voice, dict) else voice,
        "input_audio_format": _beta_format_out(audio_in["format"]),
        "output_audio_format": _beta_format_out(audio_out["format"]),
        "input_audio_transcription": None
        if transcription is None
        else {k: transcription.get(k) for k in ("model", "language", "prompt")},
        "input_audio_noise_reduction": audio_in["noise_reduction"],
        "turn_detection": _beta_turn_detection_out(audio_in["turn_detection"]),
        "tools": session["tools"],
        "tool_choice": session["tool_choice"],
        "temperature": 0.8 if session.get("temperature") is None else session["temperature"],
        "max_response_output_tokens": session["max_output_tokens"],
        "speed": audio_out["speed"],
        "tracing": session["tracing"],
    }


# --- client events ---------------------------------------------------------------------------

# Beta spells assistant content "text"/"audio"; GA says "output_text"/"output_audio".
_BETA_CONTENT = {"text": "output_text", "audio": "output_audio"}


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """A valid client event; for ``session.update``, also its GA-shaped config patch."""

    event: Any
    session_patch: dict[str, Any] | None = None


def _beta_item(item: Any) -> Any:
    if isinstance(item, dict) and isinstance(item.get("content"), list):
        item = dict(item)
        item["content"] = [
            {**part, "type": _BETA_CONTENT[part["type"]]}
            if isinstance(part, dict)
            and isinstance(part.get("type"), str)
            and part["type"] in _BETA_CONTENT
            else part
            for part in item["content"]
        ]
    return item


def _beta_response(response: Any) -> Any:
    """Beta ``response.create`` overrides in GA shape (unknown keys are left for validation)."""
    if not isinstance(response, dict):
        return response
    out = dict(response)
    if "modalities" in out:
        modalities = out.pop("modalities")
        out["output_modalities"] = (
            (["audio"] if "audio" in modalities else ["text"])
            if isinstance(modalities, list) and modalities
            else modalities
        )
    if "max_response_output_tokens" in out:
        out["max_output_tokens"] = out.pop("max_response_output_tokens")
    audio: dict[str, Any] = {}
    if "voice" in out:
        audio["voice"] = out.pop("voice")
    if "output_audio_format" in out:
        name = out.pop("output_audio_format")
        if not isinstance(name, str):
            raise CodecError(
                ProtocolError(
                    "Invalid type for 'response.output_audio_format': expected a string.",
                    "response.output_audio_format",
                    "invalid_type",
                )
            )
        audio["format"] = _beta_format(name, field="output_audio_format", prefix="response")
    if audio:
        out["audio"] = {"output": audio}
    if isinstance(out.get("input"), list):
        out["input"] = [_beta_item(item) for item in out["input"]]
    return out


# Longest client event_id (the event models' bound) echoed back in an error event.
MAX_EVENT_ID_CHARS = 512


def usable_event_id(document: Any) -> str | None:
    """The client's ``event_id`` if it can be echoed back safely, else None.

    Usable means a string of at most ``MAX_EVENT_ID_CHARS`` characters that encodes as
    UTF-8: echoing anything else would make the error event itself unsendable or huge.
    """
    if not isinstance(document, dict):
        return None
    event_id = document.get("event_id")
    if not isinstance(event_id, str) or len(event_id) > MAX_EVENT_ID_CHARS:
        return None
    if safe_json.has_lone_surrogate(event_id):
        return None
    return event_id


def parse_client_event(raw: str | bytes, *, dialect: Dialect) -> ParsedEvent:
    """Decode one frame into a validated client event.

    The JSON is read with ``apps.core.safe_json.loads``: nesting deeper than 64 levels,
    ``NaN``/``Infinity`` and lone surrogates are refused before anything else looks at them,
    so every string in an accepted event (and in any error echoing it) encodes as UTF-8.

    Raises:
        CodecError: Bad JSON, not an object, unknown ``type``, or an invalid field. The error
            names the field (``param``) and carries the client's ``event_id`` when it is
            usable (see ``usable_event_id``).
    """
    try:
        data = safe_json.loads(raw)
    except safe_json.JsonRejected as exc:
        raise CodecError(
            ProtocolError(f"The event is not valid JSON: {exc.detail}.", None, "invalid_json"),
            event_id=usable_event_id(exc.document),
        ) from None
    if not isinstance(data, dict):
        raise CodecError(ProtocolError("The event must be a JSON object.", None, "invalid_type"))
    event_id = usable_event_id(data)
    kind = data.get("type")
    if not isinstance(kind, str):
        raise CodecError(
            ProtocolError(
                "Missing required parameter: 'type'.", "type", "missing_required_parameter"
            ),
            event_id=event_id,
        )
    model = EVENT_MODELS.get(kind)
    if model is None:
        supported = ", ".join(f"'{name}'" for name in sorted(EVENT_MODELS))
        raise CodecError(
            ProtocolError(
                f"Invalid value: '{kind[:64]}'. Supported values are: {supported}.",
                "type",
                "invalid_value",
            ),
            event_id=event_id,
        )
    if dialect == "beta":
        if kind == "conversation.item.create":
            data = {**data, "item": _beta_item(data.get("item"))}
        elif kind == "response.create" and "response" in data:
            try:
                data = {**data, "response": _beta_response(data["response"])}
            except CodecError as exc:
                raise CodecError(exc.error, event_id=event_id) from None
    context: dict[str, Any] = {}
    try:
        event = model.model_validate(data, context=context)
    except ValidationError as exc:
        raise CodecError(protocol_error_from_validation(exc), event_id=event_id) from None
    if "audio_bytes" in context and isinstance(event, InputAudioBufferAppendEvent):
        event._audio_bytes = context["audio_bytes"]
    patch = None
    if kind == "session.update":
        try:
            patch = parse_session_config(event.session, dialect=dialect, prefix="session")
        except CodecError as exc:
            raise CodecError(exc.error, event_id=event_id) from None
    return ParsedEvent(event=event, session_patch=patch)


# --- server events -----------------------------------------------------------------------------

# GA event name -> beta name, for the events beta spells differently.
_BETA_EVENT_NAMES = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    # Beta announces a new item once, as "created"; GA has "added" (and "done" when final).
    "conversation.item.added": "conversation.item.created",
}
# GA events beta clients have no model for; they are not sent on a beta session.
_GA_ONLY_EVENTS = frozenset({"conversation.item.done", "input_audio_buffer.timeout_triggered"})
_GA_TO_BETA_CONTENT = {"output_text": "text", "output_audio": "audio"}


def _beta_item_out(item: dict[str, Any]) -> dict[str, Any]:
    content = item.get("content")
    if not content:
        return item
    return {
        **item,
        "content": [
            {**part, "type": _GA_TO_BETA_CONTENT.get(part.get("type"), part.get("type"))}
            for part in content
        ],
    }


def _beta_response_out(response: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in response.items() if k not in ("output_modalities", "audio")}
    modalities = response.get("output_modalities") or ["audio"]
    out["modalities"] = ["text"] if modalities == ["text"] else ["audio", "text"]
    output = (response.get("audio") or {}).get("output") or {}
    if "voice" in output:
        voice = output["voice"]
        out["voice"] = voice["id"] if isinstance(voice, dict) else voice
    if "format" in output:
        out["output_audio_format"] = _beta_format_out(output["format"])
    out["output"] = [_beta_item_out(item) for item in response.get("output") or []]
    return out


def render_server_event(
    event: dict[str, Any], *, dialect: Dialect, session_id: str, expires_at: int = 0
) -> dict[str, Any] | None:
    """Spell one GA-shaped server event for the client's dialect.

    The session builds every event GA-shaped, with ``session.created``/``session.updated``
    carrying the canonical config; this renders that config as a ``realtime.session`` object.

    Returns:
        The event to send, or None when the dialect has no such event.
    """
    kind = event["type"]
    if kind in ("session.created", "session.updated"):
        render = session_to_ga if dialect == "ga" else session_to_beta
        return {
            **event,
            "session": render(event["session"], session_id=session_id, expires_at=expires_at),
        }
    if dialect == "ga":
        return event
    if kind in _GA_ONLY_EVENTS:
        return None
    out = dict(event)
    out["type"] = _BETA_EVENT_NAMES.get(kind, kind)
    if kind == "response.function_call_arguments.done":
        # Beta has no name here; its clients take it from the function_call item.
        out.pop("name", None)
    if isinstance(out.get("item"), dict):
        out["item"] = _beta_item_out(out["item"])
    if isinstance(out.get("response"), dict):
        out["response"] = _beta_response_out(out["response"])
    return out


class Base64Text(str):
    """Base64 this server encoded (``apps.core.b64``): ASCII that JSON needs not escape.

    An item's audio is sent as such a string; ``dump_server_event`` splices it into the JSON
    text instead of letting the encoder scan it character by character (40–50 ms, GIL held,
    for the 7.68 M characters of a two-minute item).
    """

    __slots__ = ()


# Audio strings shorter than this are left to the JSON encoder.
SPLICE_MIN_CHARS = 64 * 1024


def _pull_blobs(event: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The event with large ``Base64Text`` audio of its item replaced by unique tokens."""
    item = event.get("item")
    content = item.get("content") if isinstance(item, dict) else None
    if not isinstance(content, list):
        return event, []
    blobs: list[tuple[str, str]] = []
    parts = []
    for part in content:
        audio = part.get("audio") if isinstance(part, dict) else None
        if isinstance(audio, Base64Text) and len(audio) >= SPLICE_MIN_CHARS:
            token = f"blob-{secrets.token_hex(16)}-{len(blobs)}"
            blobs.append((token, audio))
            part = {**part, "audio": token}
        parts.append(part)
    if not blobs:
        return event, []
    return {**event, "item": {**item, "content": parts}}, blobs


def dump_server_event(event: dict[str, Any]) -> str:
    """Serialise a rendered server event for the wire.

    Always valid JSON (no ``NaN``/``Infinity``) and always encodable as UTF-8 (no lone
    surrogates), so a send can fail only because the client went away, never because of
    what the event holds. Large audio the server encoded is spliced in verbatim.
    """
    event, blobs = _pull_blobs(event)
    text = safe_json.dumps(event)
    for token, blob in blobs:
        before, after = text.split(f'"{token}"', 1)
        text = "".join((before, '"', blob, '"', after))
    return text


def render_server_text(
    event: dict[str, Any], *, dialect: Dialect, session_id: str, expires_at: int = 0
) -> str | None:
    """``render_server_event`` then ``dump_server_event``: the JSON text a client gets."""
    rendered = render_server_event(
        event, dialect=dialect, session_id=session_id, expires_at=expires_at
    )
    return None if rendered is None else dump_server_event(rendered)
