"""The LLM provider interface. Providers are named in ``settings.AGENT_PROVIDERS``.

A provider streams one reply as domain objects: ``TextDelta`` pieces, then at most one
``ToolCall`` per tool the model calls, then exactly one ``Finish``. The session turns them
into server events; nothing here knows the wire protocol.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]

# Estimates for providers whose tokenizer is not at hand: one token per 3 bytes of UTF-8
# over-counts English (about 4 characters a token) and matches CJK (3 bytes a character,
# at most about one token each in current tokenizers), so estimates err on the safe side.
ESTIMATE_BYTES_PER_TOKEN = 3
# Chat-template wrapping of one message (role markers, separators), and of a whole prompt
# (the reply's priming): OpenAI documents 3-4 and 3; rounded up.
ESTIMATE_MESSAGE_OVERHEAD_TOKENS = 4
ESTIMATE_PROMPT_OVERHEAD_TOKENS = 4


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


@dataclass(frozen=True, slots=True)
class TokenCount:
    """How much of the context window a prompt takes, as one provider counts it."""

    messages: tuple[int, ...]
    """Tokens of each message as the model sees it, its chat-template wrapping included."""
    fixed: int
    """Tokens every prompt carries once: tool definitions, template preamble, reply priming."""


def estimate_tokens(text: str) -> int:
    """A conservative token estimate for ``text`` without a tokenizer (bytes / 3, rounded up)."""
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / ESTIMATE_BYTES_PER_TOKEN)


def message_text(message: ChatMessage) -> str:
    """Everything of ``message`` the model reads: its text and its tool calls, as JSON."""
    if not message.tool_calls:
        return message.content
    calls = json.dumps(
        [{"name": c.name, "arguments": c.arguments} for c in message.tool_calls],
        ensure_ascii=False,
    )
    return f"{message.content} {calls}" if message.content else calls


def tools_text(tools: Sequence[ToolSpec]) -> str:
    """The tool definitions as the JSON a chat template embeds in the prompt."""
    return json.dumps(
        [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools],
        ensure_ascii=False,
    )


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

    #: Tokens kept free for the reply when a request sets no ``max_tokens``.
    default_reply_tokens: int = 4096

    def context_window_tokens(self, model: str) -> int | None:
        """The model's whole context window (prompt and reply), or None if unbounded."""
        return None

    def input_token_limit(self, model: str, max_tokens: int | None) -> int | None:
        """How many tokens the prompt may take: the window minus room for the reply.

        Args:
            model: The model the request goes to.
            max_tokens: The request's reply limit (None: the provider's default).

        Returns:
            The limit, or None when the provider has no window to respect. A reply limit
            larger than half the window reserves only half, so a client asking for a huge
            reply does not leave no room for the conversation (the model then stops at the
            window's end with ``length``).
        """
        window = self.context_window_tokens(model)
        if window is None:
            return None
        reply = self.default_reply_tokens if max_tokens is None else max_tokens
        return window - min(reply, window // 2)

    async def count_tokens(
        self, messages: Sequence[ChatMessage], *, model: str, tools: Sequence[ToolSpec] = ()
    ) -> TokenCount:
        """Count ``messages`` (each on its own) and the fixed overhead of a prompt with ``tools``.

        The default is an estimate (``estimate_tokens`` plus template overhead), cheap
        enough for the event loop. Providers with a real tokenizer override this and run it
        off the loop; counts may err high but should not err low.
        """
        fixed = ESTIMATE_PROMPT_OVERHEAD_TOKENS
        if tools:
            fixed += estimate_tokens(tools_text(tools))
        return TokenCount(
            messages=tuple(
                estimate_tokens(message_text(m)) + ESTIMATE_MESSAGE_OVERHEAD_TOKENS
                for m in messages
            ),
            fixed=fixed,
        )

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
