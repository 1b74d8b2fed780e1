"""Client events of the Realtime API as wire models, GA-shaped (beta is mapped in ``codec``).

Every event the protocol defines has a model here; ``codec.parse_client_event`` turns raw
frames into them, or into one OpenAI-shaped error naming the bad field. Audio arrives as
base64 and is decoded (strictly) during parsing, so handlers get bytes.
"""

from __future__ import annotations

import binascii
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from apps.core.b64 import b64decode_strict

from .session_config import (
    AudioFormat,
    MaxOutputTokens,
    Modalities,
    Tool,
    ToolChoice,
    VoiceId,
    WireModel,
)

MAX_ID_CHARS = 64
ItemStatus = Literal["completed", "incomplete", "in_progress"]


def decode_base64(value: Any) -> bytes:
    """Strict base64 (standard alphabet, padding required) to bytes."""
    if not isinstance(value, str):
        raise PydanticCustomError(
            "invalid_type", "Invalid type for audio: expected a base64 string."
        )
    try:
        return b64decode_strict(value)
    except binascii.Error:
        raise PydanticCustomError(
            "invalid_value", "Invalid value for audio: not valid base64."
        ) from None


class ContentPart(WireModel):
    """One part of a message's content (GA names; beta ``text``/``audio`` are mapped on entry)."""

    type: Literal[
        "input_text",
        "input_audio",
        "input_image",
        "item_reference",
        "output_text",
        "output_audio",
        "tts_text",
    ]
    text: str | None = Field(default=None, max_length=100_000)
    audio: str | None = None
    transcript: str | None = Field(default=None, max_length=100_000)
    image_url: str | None = None
    detail: Literal["auto", "low", "high"] | None = None
    id: str | None = Field(default=None, max_length=MAX_ID_CHARS)

    @model_validator(mode="after")
    def _fields_for_type(self) -> Any:
        if self.type in ("input_text", "output_text", "tts_text") and self.text is None:
            raise PydanticCustomError(
                "missing_required_parameter",
                "Missing required parameter: 'text'.",
                {"field": "text"},
            )
        if self.type == "input_audio" and self.audio is None:
            raise PydanticCustomError(
                "missing_required_parameter",
                "Missing required parameter: 'audio'.",
                {"field": "audio"},
            )
        if self.type == "item_reference" and not self.id:
            raise PydanticCustomError(
                "missing_required_parameter", "Missing required parameter: 'id'.", {"field": "id"}
            )
        if self.audio is not None:
            decode_base64(self.audio)
        return self


_CONTENT_FOR_ROLE = {
    "user": {"input_text", "input_audio", "input_image", "item_reference", "tts_text"},
    "system": {"input_text"},
    "assistant": {"output_text", "output_audio"},
}


class Item(WireModel):
    """A conversation item a client sends (message, function call, or its output)."""

    type: Literal["message", "function_call", "function_call_output", "item_reference"]
    id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    object: Literal["realtime.item"] | None = None
    status: ItemStatus | None = None
    role: Literal["user", "assistant", "system"] | None = None
    content: list[ContentPart] | None = Field(default=None, max_length=64)
    call_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    name: str | None = Field(default=None, max_length=64)
    arguments: str | None = Field(default=None, max_length=100_000)
    output: str | None = Field(default=None, max_length=100_000)

    @model_validator(mode="after")
    def _fields_for_type(self) -> Any:
        def missing(field: str) -> PydanticCustomError:
            return PydanticCustomError(
                "missing_required_parameter",
                f"Missing required parameter: '{field}'.",
                {"field": field},
            )

        if self.type == "message":
            if self.role is None:
                raise missing("role")
            if self.content is None:
                raise missing("content")
            allowed = _CONTENT_FOR_ROLE[self.role]
            for part in self.content:
                if part.type not in allowed:
                    raise PydanticCustomError(
                        "invalid_value",
                        "Invalid content type '{kind}' for a {role} message; use: {allowed}.",
                        {
                            "kind": part.type,
                            "role": self.role,
                            "allowed": ", ".join(sorted(allowed)),
                            "field": "content",
                        },
                    )
        elif self.type == "function_call":
            if not self.name:
                raise missing("name")
            if self.arguments is None:
                raise missing("arguments")
        elif self.type == "function_call_output":
            if not self.call_id:
                raise missing("call_id")
            if self.output is None:
                raise missing("output")
        elif not self.id:
            raise missing("id")
        return self


class ResponseAudioOutput(WireModel):
    """Per-response audio output settings."""

    format: AudioFormat | None = None
    voice: str | VoiceId | None = None


class ResponseAudio(WireModel):
    """Per-response ``audio`` block."""

    output: ResponseAudioOutput | None = None


class ResponseParams(WireModel):
    """``response.create``'s ``response``: overrides for one response."""

    conversation: Literal["auto", "none"] | None = None
    input: list[Item] | None = Field(default=None, max_length=256)
    instructions: str | None = Field(default=None, max_length=100_000)
    output_modalities: Modalities | None = None
    audio: ResponseAudio | None = None
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = None
    max_output_tokens: MaxOutputTokens | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] | None = None
    prompt: None = None
    reasoning: dict[str, Any] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and (
            len(value) > 16 or any(len(k) > 64 or len(v) > 512 for k, v in value.items())
        ):
            raise PydanticCustomError(
                "invalid_value",
                "metadata allows at most 16 pairs, keys ≤ 64 and values ≤ 512 characters.",
            )
        return value


class _Event(WireModel):
    event_id: str | None = Field(default=None, max_length=512)


class SessionUpdateEvent(_Event):
    """Change the session config; ``session`` is validated by the codec for the dialect."""

    type: Literal["session.update"]
    session: dict[str, Any]


class InputAudioBufferAppendEvent(_Event):
    """Append audio (base64) to the input buffer; no confirmation is sent."""

    type: Literal["input_audio_buffer.append"]
    audio: str
    _audio_bytes: bytes | None = PrivateAttr(default=None)

    @property
    def audio_bytes(self) -> bytes:
        """The decoded audio: decoded once, while parsing (which may run off the loop)."""
        if self._audio_bytes is None:
            self._audio_bytes = decode_base64(self.audio)
        return self._audio_bytes

    @field_validator("audio", mode="before")
    @classmethod
    def _audio(cls, value: Any, info: ValidationInfo) -> Any:
        decoded = decode_base64(value)
        if isinstance(info.context, dict):
            # Handed to the event by the parser, so that the handler, on the event loop,
            # does not decode megabytes a second time.
            info.context["audio_bytes"] = decoded
        return value


class InputAudioBufferCommitEvent(_Event):
    """Commit the input buffer as a user message item."""

    type: Literal["input_audio_buffer.commit"]


class InputAudioBufferClearEvent(_Event):
    """Drop the input buffer."""

    type: Literal["input_audio_buffer.clear"]


class OutputAudioBufferClearEvent(_Event):
    """Stop and drop the audio being played (WebRTC)."""

    type: Literal["output_audio_buffer.clear"]


class ConversationItemCreateEvent(_Event):
    """Add an item, optionally after ``previous_item_id`` (``root`` for the start)."""

    type: Literal["conversation.item.create"]
    item: Item
    previous_item_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)


class ConversationItemRetrieveEvent(_Event):
    """Ask for an item."""

    type: Literal["conversation.item.retrieve"]
    item_id: str = Field(max_length=MAX_ID_CHARS)


class ConversationItemTruncateEvent(_Event):
    """Cut an assistant item's audio (and its transcript) at what the user heard."""

    type: Literal["conversation.item.truncate"]
    item_id: str = Field(max_length=MAX_ID_CHARS)
    content_index: int = Field(ge=0)
    audio_end_ms: int = Field(ge=0)


class ConversationItemDeleteEvent(_Event):
    """Remove an item."""

    type: Literal["conversation.item.delete"]
    item_id: str = Field(max_length=MAX_ID_CHARS)


class ResponseCreateEvent(_Event):
    """Start a response (with optional per-response overrides)."""

    type: Literal["response.create"]
    response: ResponseParams | None = None


class ResponseCancelEvent(_Event):
    """Cancel the active (or the named) response."""

    type: Literal["response.cancel"]
    response_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)


ClientEvent = Annotated[
    SessionUpdateEvent
    | InputAudioBufferAppendEvent
    | InputAudioBufferCommitEvent
    | InputAudioBufferClearEvent
    | OutputAudioBufferClearEvent
    | ConversationItemCreateEvent
    | ConversationItemRetrieveEvent
    | ConversationItemTruncateEvent
    | ConversationItemDeleteEvent
    | ResponseCreateEvent
    | ResponseCancelEvent,
    Field(discriminator="type"),
]
EVENT_MODELS: dict[str, type[_Event]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (
        SessionUpdateEvent,
        InputAudioBufferAppendEvent,
        InputAudioBufferCommitEvent,
        InputAudioBufferClearEvent,
        OutputAudioBufferClearEvent,
        ConversationItemCreateEvent,
        ConversationItemRetrieveEvent,
        ConversationItemTruncateEvent,
        ConversationItemDeleteEvent,
        ResponseCreateEvent,
        ResponseCancelEvent,
    )
}
