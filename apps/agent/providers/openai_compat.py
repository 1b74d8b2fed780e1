"""Any OpenAI-compatible chat-completions endpoint (OpenAI, DashScope, DeepSeek, Ollama, vLLM).

Streams Server-Sent Events from ``POST {base_url}/chat/completions``, turns content deltas
into ``TextDelta`` and accumulates tool-call deltas into whole ``ToolCall``s. Connection
failures, 429 and 5xx are retried with backoff until the first token arrives (after that a
retry would repeat speech); every failure ends as a ``ProviderError`` that says which
provider failed and why, never as a raw HTTP exception.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx2 as httpx

from apps.core.ids import call_id

from ..base import (
    ChatRequest,
    Finish,
    LlmProvider,
    ProviderError,
    StreamItem,
    TextDelta,
    ToolCall,
)
from .chat_format import chat_messages, chat_tools

logger = logging.getLogger(__name__)

PRESETS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "dashscope": "https://dashscope.aliyuncs.com/compatible-mode/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "ollama": "http://127.0.0.1:11434/v1",
    "vllm": "http://127.0.0.1:8000/v1",
}
# Context windows assumed when OPTIONS set no ``context_window_tokens``. Too large a figure
# means overflowing requests fail (or, on Ollama, lose their start silently), too small
# only means older turns are dropped sooner, so each is the smallest window of the models
# the preset usually serves: OpenAI's gpt-4o family has 128k; DeepSeek's chat models 64k;
# DashScope's qwen-max 32k (qwen-plus/turbo have more); Ollama runs models with a
# 4,096-token num_ctx unless its server is configured otherwise. A custom base_url (vLLM and
# others) gets 32k, what current open models (Qwen2.5, Llama 3.1 as usually served) accept.
CONTEXT_WINDOW_TOKENS: dict[str, int] = {
    "openai": 128_000,
    "deepseek": 65_536,
    "dashscope": 32_768,
    "ollama": 4_096,
}
DEFAULT_CONTEXT_WINDOW_TOKENS = 32_768
_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


def request_body(request: ChatRequest) -> dict[str, Any]:
    """The chat-completions request for a ``ChatRequest``."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": chat_messages(request.messages),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        body["tools"] = chat_tools(request.tools)
        if request.tool_choice in ("auto", "none", "required"):
            body["tool_choice"] = request.tool_choice
        else:
            body["tool_choice"] = {"type": "function", "function": {"name": request.tool_choice}}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    return body


class OpenAICompatLlm(LlmProvider):
    """A remote provider configured by base URL (or preset), key and model list."""

    package = "httpx2"

    def __init__(
        self,
        models: Sequence[str],
        base_url: str | None = None,
        preset: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 2,
        retry_backoff_s: float = 0.5,
        name: str | None = None,
        context_window_tokens: int | None = None,
    ) -> None:
        if not base_url and not preset:
            raise ValueError("OpenAICompatLlm needs base_url or preset")
        if preset and preset.lower() not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
        if not models:
            raise ValueError("OpenAICompatLlm needs the list of models it serves")
        self.base_url = (base_url or PRESETS[str(preset).lower()]).rstrip("/")
        self._models = list(models)
        self._api_key = api_key or (os.environ.get(api_key_env, "") if api_key_env else "")
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._retries = max_retries
        self._backoff_s = retry_backoff_s
        self.label = name or preset or self.base_url
        if context_window_tokens is None:
            context_window_tokens = CONTEXT_WINDOW_TOKENS.get(
                str(preset).lower(), DEFAULT_CONTEXT_WINDOW_TOKENS
            )
        if context_window_tokens < 256:
            raise ValueError("context_window_tokens must be at least 256")
        self.window_tokens = context_window_tokens

    def models(self) -> list[str]:
        """The configured models."""
        return list(self._models)

    def describe(self) -> dict[str, Any]:
        """Backend, version and endpoint (never the key)."""
        return {**super().describe(), "base_url": self.base_url}

    def context_window_tokens(self, model: str) -> int:
        """The configured window (OPTIONS ``context_window_tokens``), the same for every model.

        Counting uses the base class's estimate: the remote tokenizer is not at hand, and
        bytes / 3 errs on the safe side for both English and CJK.
        """
        return self.window_tokens

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        """Stream one reply, retrying failures that happen before the first token."""
        body = request_body(request)
        attempt = 0
        while True:
            started = False
            try:
                async for item in self._attempt(body):
                    started = True
                    yield item
                return
            except _Retryable as exc:
                if started or attempt >= self._retries:
                    raise ProviderError(f"{self.label}: {exc}") from None
                attempt += 1
                logger.warning(
                    "LLM provider failed, retrying",
                    extra={"provider": self.label, "attempt": attempt},
                )
                await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))

    async def _attempt(self, body: dict[str, Any]) -> AsyncIterator[StreamItem]:
        calls: dict[int, dict[str, str]] = {}
        finish = "stop"
        usage: dict[str, int] = {}
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                async with client.stream(
                    "POST", f"{self.base_url}/chat/completions", json=body, headers=self._headers()
                ) as response:
                    if response.status_code != 200:
                        await self._raise_for(response)
                    async for line in response.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            break
                        chunk = json.loads(data)
                        usage = chunk.get("usage") or usage
                        for choice in chunk.get("choices") or ():
                            delta = choice.get("delta") or {}
                            if delta.get("content"):
                                yield TextDelta(delta["content"])
                            for call in delta.get("tool_calls") or ():
                                slot = calls.setdefault(
                                    int(call.get("index", 0)),
                                    {"id": "", "name": "", "arguments": ""},
                                )
                                function = call.get("function") or {}
                                slot["id"] = call.get("id") or slot["id"]
                                slot["name"] += function.get("name") or ""
                                slot["arguments"] += function.get("arguments") or ""
                            if choice.get("finish_reason"):
                                finish = _FINISH.get(choice["finish_reason"], "stop")
        except httpx.TimeoutException as exc:
            raise _Retryable(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"cannot reach {self.base_url} ({type(exc).__name__})") from None
        except json.JSONDecodeError:
            raise ProviderError(f"{self.label}: the provider sent a malformed stream") from None
        for index in sorted(calls):
            slot = calls[index]
            yield ToolCall(
                call_id=slot["id"] or call_id(),
                name=slot["name"],
                arguments=slot["arguments"] or "{}",
            )
        yield Finish(
            "tool_calls" if calls else finish,  # type: ignore[arg-type]
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )

    async def _raise_for(self, response: httpx.Response) -> None:
        raw = await response.aread()
        try:
            message = json.loads(raw)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = raw.decode("utf-8", "replace")[:200]
        if response.status_code in _RETRY_STATUS:
            raise _Retryable(f"HTTP {response.status_code}: {message}")
        if response.status_code in (401, 403):
            raise ProviderError(f"{self.label} rejected the API key (HTTP {response.status_code}).")
        raise ProviderError(
            f"{self.label} refused the request (HTTP {response.status_code}): {message}"
        )


class _Retryable(Exception):
    """A failure worth another try (network, timeout, 429, 5xx)."""
