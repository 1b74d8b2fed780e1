"""A scripted provider for tests: replies come from a script, streamed word by word."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from apps.core.ids import call_id

from ..base import ChatRequest, Finish, LlmProvider, StreamItem, TextDelta, ToolCall


class ScriptedLlm(LlmProvider):
    """Replies from ``script`` in order (the last repeats); with no script, echoes the user.

    A script entry is a string (the reply text) or ``{"tool": name, "arguments": {...}}``.
    A forced ``tool_choice`` always yields a call to that tool with the scripted or empty
    arguments, as a constrained decoder would.
    """

    def __init__(
        self,
        models: Sequence[str] = ("scripted",),
        script: Sequence[Any] = (),
        delay_s: float = 0.0,
    ) -> None:
        if not models:
            raise ValueError("ScriptedLlm needs at least one model name")
        self._models = list(models)
        self.script = list(script)
        self.delay_s = delay_s
        self.requests: list[ChatRequest] = []

    def models(self) -> list[str]:
        """Return the configured model names."""
        return list(self._models)

    def _next(self, request: ChatRequest) -> Any:
        if self.script:
            return self.script[min(len(self.requests) - 1, len(self.script) - 1)]
        last_user = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        return f"You said: {last_user}" if last_user else "Hello!"

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        """Stream the next scripted reply."""
        self.requests.append(request)
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
