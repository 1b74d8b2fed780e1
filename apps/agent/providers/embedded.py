"""The embedded LLM: a GGUF model on llama.cpp (llama-cpp-python), fully offline.

* One ``Llama`` per process, driven by one dedicated thread (llama.cpp contexts are not
  thread-safe); sessions queue for it. Tokens travel to the event loop through a bounded
  queue, so a slow consumer pauses generation instead of buffering without limit.
* Prompts are rendered by the GGUF's own chat template. Instructions and tools come first
  and stay byte-identical across turns, so llama.cpp reuses their KV cache (it keeps the
  longest common token prefix of consecutive prompts).
* Tool calls are made by grammar-constrained decoding: when a call is forced, or when the
  model starts one on its own, the call is (re)generated under a JSON schema built from the
  tools, so the name is one of the tools and the arguments always parse.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from apps.core.ids import call_id
from apps.core.model_files import require_pin, verify_configured_file

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
from .chat_format import chat_messages, chat_tools
from .gguf import MODELS, assemble

logger = logging.getLogger(__name__)

QUEUE_ITEMS = 256
# How many characters of a reply to hold back while deciding whether it is a tool call.
TOOL_SNIFF_CHARS = 12
_TOOL_STARTS = ("{", "<tool_call>", "```json", "[{")
# Token counting runs on its own thread: on the llm thread it would wait behind other
# sessions' replies. llama.cpp's tokenizer reads only the (immutable) vocabulary, so it is
# safe beside decoding, as llama-server tokenizes in its HTTP threads while it decodes.
_COUNT_EXECUTOR = concurrent.futures.ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="llm-count"
)
# A tool result the answer-mode prompt rewrites as "[<name> returned: …] Answer my question…":
# the rewrite (with a name of up to this many tokens) is counted when it is the longer one.
_ANSWER_NAME_TOKENS = 16
# Without a chat template: template wrapping assumed per message, and per prompt.
_FALLBACK_MESSAGE_TOKENS = 8
_FALLBACK_PROMPT_TOKENS = 64


@functools.lru_cache(maxsize=4)
def _chat_formatter(template: str, eos_token: str, bos_token: str) -> Any:
    """The chat template compiled as llama-cpp-python compiles it for generation."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    return Jinja2ChatFormatter(template=template, eos_token=eos_token, bos_token=bos_token)


def _answer_messages(messages: Any) -> list[dict[str, Any]]:
    """The context with tool calls and results written out as plain conversation."""
    names = {c.call_id: c.name for m in messages for c in m.tool_calls}
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            name = names.get(message.tool_call_id or "", "the function")
            out.append(
                {
                    "role": "user",
                    "content": f"[{name} returned: {message.content}] "
                    "Answer my question using this result, in plain words.",
                }
            )
        elif message.tool_calls:
            calls = "; ".join(f"{c.name}({c.arguments})" for c in message.tool_calls)
            text = (message.content + " " if message.content else "") + f"[calling {calls}]"
            out.append({"role": "assistant", "content": text})
        else:
            out.append({"role": message.role, "content": message.content})
    return out


def call_schema(tools: list[ToolSpec] | tuple[ToolSpec, ...]) -> dict[str, Any]:
    """JSON schema of one call to any of ``tools``: ``{"name": …, "arguments": {…}}``."""
    variants = [
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": [tool.name]},
                "arguments": tool.parameters or {"type": "object"},
            },
            "required": ["name", "arguments"],
        }
        for tool in tools
    ]
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


class EmbeddedLlm(LlmProvider):
    """llama.cpp with a model from ``gguf.MODELS`` (or any local GGUF via ``model_path``)."""

    package = "llama-cpp-python"

    def __init__(
        self,
        cache_dir: str,
        model: str = "qwen2.5-coder-0.5b-instruct",
        model_path: str | None = None,
        n_ctx: int = 4096,
        n_threads: int = 2,
        n_batch: int = 256,
        max_tokens: int = 512,
        model_sha256: str | None = None,
    ) -> None:
        """Configure the model; it is loaded on first use or by ``warm_up``.

        Args:
            cache_dir: Where packaged models are assembled.
            model: A key of ``gguf.MODELS`` (pinned digest), or a label for ``model_path``.
            model_path: Any local GGUF file instead of a packaged one.
            n_ctx: Context window in tokens.
            n_threads: llama.cpp threads.
            n_batch: Prompt batch size.
            max_tokens: Default reply limit.
            model_sha256: With ``model_path``: the file's SHA-256 (required); the file is
                checked against it before it is loaded.

        Raises:
            ValueError: ``model`` is unknown and no ``model_path`` is given.
            ImproperlyConfigured: ``model_path`` is given without ``model_sha256``.
        """
        if model_path is None and model not in MODELS:
            raise ValueError(f"unknown embedded model {model!r}; known: {sorted(MODELS)}")
        if model_path:
            # Refused when configured rather than on the first request.
            require_pin(model_path, model_sha256, owner="EmbeddedLlm", digest_option="model_sha256")
        self.model = model
        self._path = Path(model_path) if model_path else None
        self._sha256 = model_sha256
        self._cache_dir = Path(cache_dir)
        self._settings = {"n_ctx": n_ctx, "n_threads": n_threads, "n_batch": n_batch}
        self.max_tokens = max_tokens
        self._llm: Any = None
        self._load_lock = threading.Lock()
        # All llama.cpp calls happen on this one thread.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="llm"
        )

    def models(self) -> list[str]:
        """The one model this provider serves."""
        return [self.model]

    def describe(self) -> dict[str, Any]:
        """Backend, version, model and whether it is loaded."""
        return {**super().describe(), "model": self.model, "loaded": self._llm is not None}

    # --- loading ---------------------------------------------------------------------------

    def load(self) -> Any:
        """Load the model (once), after checking its SHA-256; safe to call from any thread.

        Raises:
            ModelFileMismatch: The file is not the pinned model (nothing is loaded).
        """
        with self._load_lock:
            if self._llm is None:
                from llama_cpp import Llama

                if self._path is not None:
                    path = verify_configured_file(
                        self._path, self._sha256, owner="EmbeddedLlm", digest_option="model_sha256"
                    )
                else:
                    path = assemble(self.model, self._cache_dir)  # verified against MODELS
                self._llm = Llama(model_path=str(path), verbose=False, **self._settings)
                # Free llama.cpp before interpreter teardown, when its library may be gone.
                atexit.register(self.close)
            return self._llm

    def close(self) -> None:
        """Free the model (it is loaded again on the next request)."""
        with self._load_lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    def warm_up(self) -> None:
        """Load the model now rather than on the first request."""
        self.load()

    def metadata(self) -> dict[str, str]:
        """GGUF metadata of the loaded model (name, architecture, licence…)."""
        return dict(self.load().metadata)

    # --- generation (runs on the llm thread) -------------------------------------------------

    def _complete(
        self, request: ChatRequest, *, answer_mode: bool = False, **extra: Any
    ) -> Iterator[dict[str, Any]]:
        llm = self.load()
        messages = (
            _answer_messages(request.messages)
            if answer_mode
            # Qwen-style templates apply `tojson` to tool arguments: give them objects.
            else chat_messages(request.messages, arguments_as_object=True)
        )
        kwargs: dict[str, Any] = {
            "messages": messages,
            "max_tokens": request.max_tokens or self.max_tokens,
            "temperature": 0.0 if request.temperature is None else request.temperature,
            "stream": True,
        }
        if request.tools and not answer_mode:
            # Passed even when not forced, so the prompt prefix stays the same every turn.
            kwargs["tools"] = chat_tools(request.tools)
        kwargs.update(extra)
        return llm.create_chat_completion(**kwargs)

    def _constrained_call(
        self, request: ChatRequest, stop: threading.Event
    ) -> Iterator[StreamItem]:
        tools = tuple(request.tools)
        if request.tool_choice not in ("auto", "required", "none"):
            tools = tuple(t for t in tools if t.name == request.tool_choice) or tools
        schema = call_schema(tools)
        text = ""
        count = 0
        for chunk in self._complete(
            request, response_format={"type": "json_object", "schema": schema}
        ):
            if stop.is_set():
                return
            text += chunk["choices"][0]["delta"].get("content") or ""
            count += 1
        try:
            call = json.loads(text)
        except json.JSONDecodeError as exc:
            # Only when max_tokens cut the JSON short: the grammar allows nothing else.
            raise ProviderError("The model's tool call did not fit in max_output_tokens.") from exc
        yield ToolCall(
            call_id=call_id(),
            name=call["name"],
            arguments=json.dumps(call["arguments"], ensure_ascii=False),
        )
        yield Finish(
            "tool_calls", prompt_tokens=max(0, self._llm.n_tokens - count), completion_tokens=count
        )

    def generate(self, request: ChatRequest, stop: threading.Event) -> Iterator[StreamItem]:
        """The reply as a blocking stream of items (call from the llm thread)."""
        forced = bool(request.tools) and request.tool_choice not in ("auto", "none")
        if forced:
            yield from self._constrained_call(request, stop)
            return
        # Small models answer a tool result by repeating the call, and speak tool JSON when
        # calls are disallowed; with the tools left out of the prompt and the results given
        # as text, they answer in words. (This turn's prompt then misses the tools' KV cache.)
        answer_mode = bool(request.tools) and (
            request.tool_choice == "none"
            or (bool(request.messages) and request.messages[-1].role == "tool")
        )
        sniffing = bool(request.tools) and request.tool_choice == "auto" and not answer_mode
        held = ""
        count = 0
        reason = "stop"
        for chunk in self._complete(request, answer_mode=answer_mode):
            if stop.is_set():
                return
            choice = chunk["choices"][0]
            piece = choice["delta"].get("content") or ""
            if choice.get("finish_reason") == "length":
                reason = "length"
            if not piece:
                continue
            count += 1
            if sniffing:
                held += piece
                stripped = held.lstrip()
                if any(stripped.startswith(s) or s.startswith(stripped) for s in _TOOL_STARTS) and (
                    len(stripped) < TOOL_SNIFF_CHARS
                ):
                    continue
                if any(stripped.startswith(s) for s in _TOOL_STARTS):
                    # The model is calling a tool: regenerate the call under the schema. The
                    # prompt is unchanged, so its KV cache is reused.
                    yield from self._constrained_call(request, stop)
                    return
                sniffing = False
                piece, held = held, ""
            yield TextDelta(piece)
        if held.strip():
            yield TextDelta(held)
        yield Finish(
            reason, prompt_tokens=max(0, self._llm.n_tokens - count), completion_tokens=count
        )

    # --- token counting (runs on the counting thread) ---------------------------------------

    @property
    def default_reply_tokens(self) -> int:  # type: ignore[override]
        """The reply room kept when a request sets no limit: the provider's ``max_tokens``."""
        return self.max_tokens

    def context_window_tokens(self, model: str) -> int:
        """llama.cpp's ``n_ctx`` (the loaded context's, else the configured one)."""
        if self._llm is not None:
            return int(self._llm.n_ctx())
        # n_ctx 0 means the model's trained window, known only once loaded: assume the
        # default until then (smaller, so safe).
        return int(self._settings["n_ctx"]) or 4096

    async def count_tokens(
        self, messages: Sequence[ChatMessage], *, model: str, tools: Sequence[ToolSpec] = ()
    ) -> TokenCount:
        """Count with the model's own tokenizer and chat template, off the event loop.

        Raises:
            ProviderError: The model could not be loaded or could not count.
        """
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                _COUNT_EXECUTOR, self.count_tokens_blocking, list(messages), list(tools)
            )
        except Exception as exc:  # as in ``stream``: one clear provider error
            logger.exception("embedded LLM token counting failed")
            raise ProviderError(f"The embedded model failed: {type(exc).__name__}") from exc

    def count_tokens_blocking(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> TokenCount:
        """``count_tokens`` for a worker thread (loads the model if needed).

        Each message is rendered by the GGUF's chat template after a one-token probe system
        message, and costs the tokens it adds to the probe's prompt: exactly what it adds to
        a real prompt for concatenating templates (ChatML, Llama 3). ``fixed`` is what a
        prompt adds besides its messages: the template's default system prompt (counted
        even when instructions replace it, to stay on the safe side), the reply priming and
        the tool definitions.
        """
        while True:
            llm = self.load()
            with self._load_lock:  # not closed while its tokenizer is in use
                if self._llm is llm:
                    return self._count_with(llm, messages, tools)

    def _count_with(
        self, llm: Any, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> TokenCount:
        template = llm.metadata.get("tokenizer.chat_template")

        def tokens(text: str) -> int:
            data = text.encode("utf-8", "replace")
            return len(llm.tokenize(data, add_bos=False, special=True)) if data else 0

        if not template:
            fixed = _FALLBACK_PROMPT_TOKENS + (tokens(tools_text(tools)) if tools else 0)
            return TokenCount(
                messages=tuple(
                    tokens(message_text(m)) + _FALLBACK_MESSAGE_TOKENS for m in messages
                ),
                fixed=fixed,
            )
        eos_id, bos_id = llm.token_eos(), llm.token_bos()
        formatter = _chat_formatter(
            template,
            llm._model.token_get_text(eos_id) if eos_id != -1 else "",
            llm._model.token_get_text(bos_id) if bos_id != -1 else "",
        )

        def rendered(chat: list[dict[str, Any]], with_tools: bool = False) -> int:
            return tokens(
                formatter(messages=chat, tools=chat_tools(tools) if with_tools else None).prompt
            )

        probe = {"role": "system", "content": "x"}
        base = rendered([probe])

        def cost(message: ChatMessage) -> int:
            as_chat = chat_messages([message], arguments_as_object=True)[0]
            counted = rendered([probe, as_chat]) - base
            if message.role == "tool" or message.tool_calls:
                # The answer-mode prompt writes calls and results out as plain text.
                plain = _answer_messages([message])[0]
                counted = max(counted, rendered([probe, plain]) - base + _ANSWER_NAME_TOKENS)
            return counted

        empty_user = ChatMessage(role="user", content="")
        fixed = rendered([chat_messages([empty_user])[0]]) - cost(empty_user)
        if tools:
            fixed += rendered([probe], with_tools=True) - base
        return TokenCount(messages=tuple(cost(m) for m in messages), fixed=fixed)

    # --- async bridge ----------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        """Run ``generate`` on the llm thread and hand its items to the event loop."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[StreamItem | BaseException | None] = asyncio.Queue(maxsize=QUEUE_ITEMS)
        stop = threading.Event()

        def put(item: StreamItem | BaseException | None) -> bool:
            # Blocks the llm thread while the queue is full (backpressure), but gives up
            # as soon as the consumer has gone away.
            future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            while True:
                try:
                    future.result(timeout=0.1)
                    return True
                except concurrent.futures.TimeoutError:
                    # The consumer went away, or the loop stopped (server shutdown) and will
                    # never run the put: either way stop generating, or this thread would
                    # keep the process from exiting.
                    if stop.is_set() or loop.is_closed() or not loop.is_running():
                        future.cancel()
                        return False

        def work() -> None:
            try:
                for item in self.generate(request, stop):
                    if not put(item):
                        return
            except ProviderError as exc:
                put(exc)
            except Exception as exc:  # llama.cpp failures become one clear provider error
                logger.exception("embedded LLM failed")
                put(ProviderError(f"The embedded model failed: {type(exc).__name__}"))
            finally:
                put(None)

        worker = loop.run_in_executor(self._executor, work)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            await asyncio.shield(worker)
