"""Session configuration as clients send it: GA (nested ``audio.input/output``) and beta (flat).

Both models are strict: unknown fields, wrong types and out-of-range values are rejected,
and ``errors.protocol_error_from_validation`` turns the first problem into an OpenAI-shaped
error naming the field (``session.audio.output.speed``). Every field is optional except
``type`` in GA, because the same models validate partial ``session.update`` events: what a
client set is what ``model_fields_set`` holds, and ``config_patch`` turns that into a patch
for the canonical (GA-shaped) session dict.

Extensions over OpenAI, all opt-in: extra PCM sample rates, MP3 output and Opus (xStar's
formats), ``temperature`` in GA, and any voice name from our catalogue.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

# Tag values of the discriminated unions below; error paths drop them (see errors.py).
UNION_TAGS = frozenset(
    {
        "audio/pcm",
        "audio/pcmu",
        "audio/pcma",
        "audio/mpeg",
        "audio/opus",
        "server_vad",
        "semantic_vad",
        "function",
        "truncation-strategy",
        "truncation-retention-ratio",
    }
)
PCM_RATES_HZ = (8000, 16000, 24000, 44100)
MAX_OUTPUT_TOKENS = 4096
_TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class WireModel(BaseModel):
    """Strict wire model: no coercion from strings, no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)
    #: Containers are merged field by field by a partial update; other objects are replaced whole.
    merge: ClassVar[bool] = False


# --- Audio formats ---------------------------------------------------------------------------


class PcmFormat(WireModel):
    """Signed 16-bit little-endian mono PCM. OpenAI serves 24 kHz; other rates are extensions."""

    type: Literal["audio/pcm"]
    rate: Literal[8000, 16000, 24000, 44100] = 24000


class PcmuFormat(WireModel):
    """G.711 μ-law, 8 kHz."""

    type: Literal["audio/pcmu"]


class PcmaFormat(WireModel):
    """G.711 A-law, 8 kHz."""

    type: Literal["audio/pcma"]


class Mp3Format(WireModel):
    """MP3 output (xStar ``MonoMp3``), 24 kHz mono. Output only."""

    type: Literal["audio/mpeg"]


class OpusFormat(WireModel):
    """Raw Opus packets (xStar ``Audio16KHz16BitMonoOpus``)."""

    type: Literal["audio/opus"]
    rate: Literal[16000, 48000] = 16000


AudioFormat = Annotated[
    PcmFormat | PcmuFormat | PcmaFormat | Mp3Format | OpusFormat, Field(discriminator="type")
]


# --- Input audio -----------------------------------------------------------------------------


class ServerVad(WireModel):
    """Voice activity detection on the server, with OpenAI's defaults."""

    type: Literal["server_vad"]
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    prefix_padding_ms: int = Field(default=300, ge=0, le=10_000)
    silence_duration_ms: int = Field(default=500, ge=0, le=10_000)
    create_response: bool = True
    interrupt_response: bool = True
    idle_timeout_ms: int | None = Field(default=None, ge=1_000, le=600_000)


class SemanticVad(WireModel):
    """Turn detection that waits longer when the user sounds unfinished."""

    type: Literal["semantic_vad"]
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    create_response: bool = True
    interrupt_response: bool = True


TurnDetection = Annotated[ServerVad | SemanticVad, Field(discriminator="type")]


class Transcription(WireModel):
    """Input audio transcription. ``model`` names an ASR (OpenAI names map to the default)."""

    model: str = Field(default="whisper-1", min_length=1, max_length=200)
    language: str | None = Field(default=None, min_length=2, max_length=16)
    languages: list[str] | None = None
    prompt: str | None = Field(default=None, max_length=4_000)
    keywords: list[str] | None = None
    delay: Literal["minimal", "low", "medium", "high", "xhigh"] | None = None


class NoiseReduction(WireModel):
    """Input noise reduction."""

    type: Literal["near_field", "far_field"]
    strength: float | None = Field(default=None, ge=0.0, le=1.0)


class AudioInput(WireModel):
    """GA ``session.audio.input``."""

    merge: ClassVar[bool] = True
    format: AudioFormat | None = None
    noise_reduction: NoiseReduction | None = None
    transcription: Transcription | None = None
    turn_detection: TurnDetection | None = None

    @field_validator("format")
    @classmethod
    def _input_format(cls, value: Any) -> Any:
        if isinstance(value, Mp3Format):
            raise PydanticCustomError(
                "invalid_value", "Invalid value: 'audio/mpeg'. MP3 is supported for output only."
            )
        return value


class VoiceId(WireModel):
    """A custom voice referenced by id (GA ``{"id": "voice_…"}``)."""

    id: str = Field(min_length=1, max_length=64)


class AudioOutput(WireModel):
    """GA ``session.audio.output``."""

    merge: ClassVar[bool] = True
    format: AudioFormat | None = None
    voice: str | VoiceId | None = None
    speed: float | None = Field(default=None, ge=0.25, le=1.5)

    @field_validator("voice", mode="before")
    @classmethod
    def _voice(cls, value: Any) -> Any:
        if value is None or isinstance(value, dict):
            return value
        if not isinstance(value, str) or not (1 <= len(value) <= 64):
            raise PydanticCustomError(
                "invalid_type", 'Invalid type for voice: expected a voice name or {"id": ...}.'
            )
        return value


class Audio(WireModel):
    """GA ``session.audio``."""

    merge: ClassVar[bool] = True
    input: AudioInput | None = None
    output: AudioOutput | None = None


# --- Tools -----------------------------------------------------------------------------------


class FunctionTool(WireModel):
    """A client-side function the model may call."""

    type: Literal["function"]
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _TOOL_NAME_RE.match(value):
            raise PydanticCustomError(
                "invalid_value",
                "Invalid function name '{name}': use 1-64 letters, digits, '_' or '-'.",
                {"name": value},
            )
        return value

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value and value.get("type", "object") != "object":
            raise PydanticCustomError(
                "invalid_value", "Function parameters must be a JSON Schema with type 'object'."
            )
        return value


Tool = Annotated[FunctionTool, Field(discriminator="type")]


def _validate_tool_choice(value: Any) -> Any:
    if value in ("auto", "none", "required"):
        return value
    if (
        isinstance(value, dict)
        and value.get("type") == "function"
        and set(value) <= {"type", "name"}
    ):
        name = value.get("name")
        if isinstance(name, str) and _TOOL_NAME_RE.match(name):
            return {"type": "function", "name": name}
    raise PydanticCustomError(
        "invalid_value",
        "Invalid value for tool_choice: use 'auto', 'none', 'required' or "
        '{"type": "function", "name": "<tool name>"}.',
    )


def _validate_max_tokens(value: Any) -> Any:
    if value == "inf":
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_OUTPUT_TOKENS:
        return value
    raise PydanticCustomError(
        "invalid_value",
        "Invalid value: {value}. Expected an integer between 1 and {max} or 'inf'.",
        {"value": value, "max": MAX_OUTPUT_TOKENS},
    )


def _validate_modalities(value: list[str]) -> list[str]:
    if not value:
        raise PydanticCustomError("invalid_value", "At least one output modality is required.")
    if len(set(value)) != len(value):
        raise PydanticCustomError("invalid_value", "Output modalities must not repeat.")
    return value


def _check_forced_tool(session: Any) -> Any:
    choice = session.tool_choice
    if isinstance(choice, dict) and session.tools is not None:
        if choice["name"] not in {tool.name for tool in session.tools}:
            raise PydanticCustomError(
                "invalid_value",
                "tool_choice names function '{name}', which is not in tools.",
                {"name": choice["name"], "field": "tool_choice"},
            )
    return session


# --- Truncation ------------------------------------------------------------------------------


class TruncationTokenLimits(WireModel):
    """``truncation.token_limits``: a lower cap than the model's on the conversation."""

    post_instructions: int | None = Field(default=None, ge=1)
    """Tokens the conversation may take after the instructions and tools."""


class RetentionRatioTruncation(WireModel):
    """GA ``truncation`` object: when over the limit, cut down to this share of it."""

    type: Literal["retention_ratio"]
    retention_ratio: float = Field(ge=0.0, le=1.0)
    token_limits: TruncationTokenLimits | None = None


def _truncation_kind(value: Any) -> str | None:
    # Picks the branch by JSON type, so an error names the field that is wrong
    # (``truncation.retention_ratio``) instead of every branch that did not match.
    if isinstance(value, str):
        return "truncation-strategy"
    if isinstance(value, dict | RetentionRatioTruncation):
        return "truncation-retention-ratio"
    return None


Truncation = Annotated[
    Annotated[Literal["auto", "disabled"], Tag("truncation-strategy")]
    | Annotated[RetentionRatioTruncation, Tag("truncation-retention-ratio")],
    Discriminator(
        _truncation_kind,
        custom_error_type="invalid_type",
        custom_error_message="Invalid type for truncation: expected 'auto', 'disabled' or "
        '{"type": "retention_ratio", "retention_ratio": ...}.',
    ),
]


# --- Sessions --------------------------------------------------------------------------------


ToolChoice = Annotated[Any, AfterValidator(_validate_tool_choice)]
MaxOutputTokens = Annotated[Any, AfterValidator(_validate_max_tokens)]
Modalities = Annotated[list[Literal["text", "audio"]], AfterValidator(_validate_modalities)]


class _SessionBase(WireModel):
    """Fields GA and beta sessions spell the same way."""

    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = None

    @model_validator(mode="after")
    def _forced_tool(self) -> Any:
        return _check_forced_tool(self)


class RealtimeSessionConfig(_SessionBase):
    """GA session config (``session.update``'s ``session``, ``client_secrets``' ``session``)."""

    type: Literal["realtime"]
    model: str | None = Field(default=None, min_length=1, max_length=200)
    instructions: str | None = Field(default=None, max_length=100_000)
    output_modalities: Modalities | None = None
    audio: Audio | None = None
    max_output_tokens: MaxOutputTokens | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    tracing: Literal["auto"] | dict[str, Any] | None = None
    truncation: Truncation | None = None
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None
    reasoning: dict[str, Any] | None = None
    prompt: None = None

    @field_validator("output_modalities")
    @classmethod
    def _one_modality(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(value) > 1:
            raise PydanticCustomError(
                "invalid_value",
                "output_modalities must be ['audio'] or ['text']; both at once are not supported.",
            )
        return value


class BetaTurnDetection(WireModel):
    """Beta ``turn_detection``: one flat object, ``type`` defaulting to ``server_vad``."""

    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    prefix_padding_ms: int | None = Field(default=None, ge=0, le=10_000)
    silence_duration_ms: int | None = Field(default=None, ge=0, le=10_000)
    create_response: bool | None = None
    interrupt_response: bool | None = None
    idle_timeout_ms: int | None = Field(default=None, ge=1_000, le=600_000)
    eagerness: Literal["low", "medium", "high", "auto"] | None = None


class BetaTranscription(WireModel):
    """Beta ``input_audio_transcription``."""

    model: str = Field(default="whisper-1", min_length=1, max_length=200)
    language: str | None = Field(default=None, min_length=2, max_length=16)
    prompt: str | None = Field(default=None, max_length=4_000)


class BetaExpiresAfter(WireModel):
    """Beta ``client_secret.expires_after`` (``/v1/realtime/sessions`` only)."""

    anchor: Literal["created_at"] = "created_at"
    seconds: int | None = Field(default=None, ge=10, le=7200)


class BetaClientSecretConfig(WireModel):
    """Beta ``client_secret`` request block."""

    expires_after: BetaExpiresAfter | None = None


class BetaSessionConfig(_SessionBase):
    """Beta (``OpenAI-Beta: realtime=v1``) flat session config; xStar and NavTalk speak this."""

    model: str | None = Field(default=None, min_length=1, max_length=200)
    modalities: Modalities | None = None
    instructions: str | None = Field(default=None, max_length=100_000)
    voice: str | None = Field(default=None, min_length=1, max_length=64)
    input_audio_format: str | None = None
    output_audio_format: str | None = None
    input_audio_transcription: BetaTranscription | None = None
    input_audio_noise_reduction: NoiseReduction | None = None
    turn_detection: BetaTurnDetection | None = None
    temperature: float | None = Field(default=None, ge=0.6, le=1.2)
    max_response_output_tokens: MaxOutputTokens | None = None
    speed: float | None = Field(default=None, ge=0.25, le=1.5)
    tracing: Literal["auto"] | dict[str, Any] | None = None
    client_secret: BetaClientSecretConfig | None = None


# --- Patches and defaults ----------------------------------------------------------------------


def config_patch(model: BaseModel) -> dict[str, Any]:
    """Turn what a client set into a patch: containers partially, other objects whole.

    ``{"audio": {"output": {"speed": 1.2}}}`` changes only the speed, while
    ``turn_detection: {"type": "server_vad"}`` replaces turn detection with a full
    server_vad object carrying its defaults, as OpenAI does.
    """
    patch: dict[str, Any] = {}
    for name in model.model_fields_set:
        value = getattr(model, name)
        if isinstance(value, WireModel) and value.merge:
            patch[name] = config_patch(value)
        elif isinstance(value, BaseModel):
            patch[name] = value.model_dump()
        elif isinstance(value, list):
            patch[name] = [v.model_dump() if isinstance(v, BaseModel) else v for v in value]
        else:
            patch[name] = value
    return patch


def apply_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Return ``current`` with ``patch`` applied (containers merged, leaves replaced)."""
    merged = dict(current)
    for key, value in patch.items():
        if (
            key in ("audio", "input", "output")
            and isinstance(value, dict)
            and isinstance(merged.get(key), dict)
        ):
            merged[key] = apply_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


def session_defaults(*, instructions: str, voice: str) -> dict[str, Any]:
    """The full canonical (GA-shaped) session config before any client changes."""
    return {
        "type": "realtime",
        "model": None,
        "instructions": instructions,
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": PcmFormat(type="audio/pcm").model_dump(),
                "noise_reduction": None,
                "transcription": None,
                "turn_detection": ServerVad(type="server_vad").model_dump(),
            },
            "output": {
                "format": PcmFormat(type="audio/pcm").model_dump(),
                "voice": voice,
                "speed": 1.0,
            },
        },
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "parallel_tool_calls": None,
        "temperature": None,
        "tracing": None,
        "truncation": "auto",
        "include": None,
        "reasoning": None,
        "prompt": None,
    }
