"""A scripted provider for tests: replies come from a script, streamed word by word."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from apps.core.ids import call_id

from ..base import (
    ChatMessage,
    ChatRequest,
    Finish,
    LlmProvider,
    ProviderError,
    StreamItem,
    TextDelta,
    TokenCount,
    ToolCall,
    ToolSpec,
    message_text,
    tools_text,
)

# Each message costs one token besides its words, as a chat template's role marker would.
MESSAGE_OVERHEAD_TOKENS = 1


class ScriptedLlm(LlmProvider):
    """Replies from ``script`` in order (the last repeats); with no script, echoes the user.

    A script entry is a string (the reply text) or ``{"tool": name, "arguments": {...}}``.
    A forced ``tool_choice`` always yields a call to that tool with the scripted or empty
    arguments, as a constrained decoder would.

    Tokens are words (whitespace-separated) plus one per message, so tests can size a
    context exactly. With ``context_window_tokens`` set, a prompt over the input limit is
    refused with a ``ProviderError``, as a real model refuses one over its window.
    """

    #: Room kept for the reply when a request sets no ``max_tokens`` (in words).
    default_reply_tokens = 16

    def __init__(
        self,
        models: Sequence[str] = ("scripted",),
        script: Sequence[Any] = (),
        delay_s: float = 0.0,
        context_window_tokens: int | None = None,
    ) -> None:
        if not models:
            raise ValueError("ScriptedLlm needs at least one model name")
        self._models = list(models)
        self.script = list(script)
        self.delay_s = delay_s
        self.window_tokens = context_window_tokens
        self.requests: list[ChatRequest] = []
        self.counted_messages = 0
        """How many messages ``count_tokens`` was asked to count, all calls together."""

    def models(self) -> list[str]:
        """Return the configured model names."""
        return list(self._models)

    def context_window_tokens(self, model: str) -> int | None:
        """The configured window (None: unbounded)."""
        return self.window_tokens

    @staticmethod
    def _words(text: str) -> int:
        return len(text.split())

    def _count(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> TokenCount:
        return TokenCount(
            messages=tuple(
                self._words(message_text(m)) + MESSAGE_OVERHEAD_TOKENS for m in messages
            ),
            fixed=self._words(tools_text(tools)) if tools else 0,
        )

    async def count_tokens(
        self, messages: Sequence[ChatMessage], *, model: str, tools: Sequence[ToolSpec] = ()
    ) -> TokenCount:
        """Words plus one per message; tools cost the words of their JSON."""
        self.counted_messages += len(messages)
        return self._count(messages, tools)

    def _next(self, request: ChatRequest) -> Any:
        if self.script:
            return self.script[min(len(self.requests) - 1, len(self.script) - 1)]
        last_user = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        return f"You said: {last_user}" if last_user else "Hello!"

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        """Stream the next scripted reply."""
        self.requests.append(request)
        limit = self.input_token_limit(request.model, request.max_tokens)
        if limit is not None:
            counted = self._count(request.messages, request.tools)
            prompt = sum(counted.messages) + counted.fixed
            if prompt > limit:
                raise ProviderError(
                    f"scripted: the prompt is {prompt} tokens, over the input limit of {limit}."
                )
        entry = self._next(request)
        forced = request.tool_choice not in ("auto", "none")
        if forced or isinstance(entry, dict):
            name = entry.get("tool") if isinstance(entry, dict) else None
            if request.tool_choice not in ("auto", "none", "required"):
                name = request.tool_choice
            name = name or (request.tools[0].name if request.tools else "tool")
            arguments = entry.get("arguments", {}) if isinstance(entry, dict) else {}
            yield ToolCall(call_id=call_id(), name=name, arguments=json.dumps(arguments))
            yield Finish("tool_calls", prompt_tokens=10, completion_tokens=5)
            return
        words = str(entry).split(" ")
        # One word is one token; a max_tokens cut ends the reply early, as a real model would.
        limit = request.max_tokens if request.max_tokens is not None else len(words)
        for index, word in enumerate(words[:limit]):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            yield TextDelta(word if index == 0 else " " + word)
        reason = "length" if limit < len(words) else "stop"
        yield Finish(reason, prompt_tokens=10, completion_tokens=min(limit, len(words)))
