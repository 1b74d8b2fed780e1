"""The LLM provider interface. Providers are named in ``settings.AGENT_PROVIDERS``.

A provider streams one reply as domain objects: ``TextDelta`` pieces, then at most one
``ToolCall`` per tool the model calls, then exactly one ``Finish``. The session turns them
into server events; nothing here knows the wire protocol.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call (OpenAI function-tool shape)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model called a function. ``arguments`` is a JSON object in text form."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the context sent to the model."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    """For ``role="tool"``: which call this is the output of."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the reply's text."""

    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    """End of the reply."""

    reason: Literal["stop", "length", "tool_calls"]
    prompt_tokens: int = 0
    completion_tokens: int = 0


StreamItem = TextDelta | ToolCall | Finish


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """Everything one reply depends on."""

    model: str
    messages: Sequence[ChatMessage]
    tools: Sequence[ToolSpec] = ()
    tool_choice: str = "auto"
    """``auto``, ``none``, ``required``, or the name of one tool to force."""
    temperature: float | None = None
    max_tokens: int | None = None


class ProviderError(Exception):
    """The provider could not produce a reply (down, timed out, refused); message is for clients."""


class LlmProvider(ABC):
    """A source of chat models (embedded llama.cpp, an OpenAI-compatible endpoint, a script).

    Subclasses are instantiated with the ``OPTIONS`` of their settings entry and shared by
    every session of the process.
    """

    #: Distribution whose version /healthz reports for this provider, if any.
    package: str | None = None

    @abstractmethod
    def models(self) -> list[str]:
        """Return the model ids this provider serves right now, default model first."""

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        """Stream one reply. Cancelling the iteration stops generation promptly."""

    def warm_up(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Load whatever the first request would otherwise wait for (called in a thread)."""

    def describe(self) -> dict[str, Any]:
        """Return what /healthz shows about this provider (backend class and version)."""
        version = None
        if self.package:
            try:
                version = metadata.version(self.package)
            except metadata.PackageNotFoundError:
                version = None
        cls = type(self)
        return {"backend": f"{cls.__module__}.{cls.__qualname__}", "version": version}
