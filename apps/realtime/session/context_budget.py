"""Fit a response's context into the model's input window (GA ``session.truncation``).

The model sees: the instructions (always), the end user's earlier turns (``history``), then
the conversation, newest last. When that does not fit the provider's input limit (its
context window minus room for the reply), whole turns are dropped from the oldest end:
history first, then conversation turns, each starting at a user message. A kept window
never separates a function call from its output and never starts with a function output;
if even the newest turn is too long, its oldest parts go, and if its newest message alone
cannot fit, the response fails with ``context_length_exceeded``.

Truncation is sticky, as in OpenAI's Realtime API: what was dropped stays dropped for the
rest of the session (``WindowState``), so the start of the kept window, and with it the
prompt prefix a provider can cache (llama.cpp reuses the longest common token prefix of
consecutive prompts), moves only when the window overflows again. ``retention_ratio``
makes those moves rarer by cutting down to a fraction of the limit.

This module is pure: counting comes from the provider (``LlmProvider.count_tokens``), which
runs any tokenizer off the event loop; here counts are only cached and added up.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from apps.agent.base import ChatMessage, LlmProvider, ToolSpec

# "auto" cuts to this share of the limit when it has to cut at all (OpenAI leaves "auto" to
# the server). Cutting just enough would move the window's start on every turn once it is
# full, and a local model would re-read the whole window (seconds of CPU) for each reply;
# cutting to half, as llama.cpp's own context shift discards half, re-reads half a window
# once every several turns, and keeps a remote provider's prompt cache warm in between.
AUTO_RETENTION_RATIO = 0.5
# Per-session count cache bound: enough for a full conversation (``Limits.max_items``) plus
# history, past it the least recently used counts are forgotten (and recounted if needed).
COUNT_CACHE_ENTRIES = 4096


class ContextTooLong(Exception):
    """The context does not fit the model's input limit and may not be truncated further.

    The message is for clients; ``code`` is the OpenAI error code.
    """

    code = "context_length_exceeded"

    def __init__(self, message: str, *, needed_tokens: int, limit_tokens: int) -> None:
        super().__init__(message)
        self.needed_tokens = needed_tokens
        self.limit_tokens = limit_tokens


@dataclass(frozen=True, slots=True)
class Truncation:
    """The session's ``truncation`` setting, parsed.

    Attributes:
        mode: ``auto``, ``disabled`` or ``retention_ratio``.
        retention_ratio: Share of the conversation limit kept when a cut is needed.
        post_instructions_tokens: A client's own cap on the conversation after the
            instructions (``token_limits.post_instructions``), or None for the model's.
    """

    mode: Literal["auto", "disabled", "retention_ratio"] = "auto"
    retention_ratio: float = AUTO_RETENTION_RATIO
    post_instructions_tokens: int | None = None

    @classmethod
    def from_config(cls, value: Any) -> Truncation:
        """Parse the (already validated) session field; None means the default, ``auto``."""
        if value is None or value == "auto":
            return cls()
        if value == "disabled":
            return cls(mode="disabled", retention_ratio=1.0)
        limits = value.get("token_limits") or {}
        return cls(
            mode="retention_ratio",
            retention_ratio=float(value["retention_ratio"]),
            post_instructions_tokens=limits.get("post_instructions"),
        )


@dataclass(frozen=True, slots=True)
class Fitted:
    """What goes to the model.

    Attributes:
        messages: The instructions, then the kept window.
        cut: How many of the given history + conversation messages were dropped from the
            oldest end (0: nothing).
        prompt_tokens: The counted size of ``messages`` plus the fixed overhead.
        limit_tokens: The input limit it was fitted to.
    """

    messages: list[ChatMessage]
    cut: int
    prompt_tokens: int
    limit_tokens: int


def _call_spans(messages: Sequence[ChatMessage]) -> list[tuple[int, int]]:
    """(call index, last output index) for every function call answered later in the list."""
    calls: dict[str, int] = {}
    last_output: dict[int, int] = {}
    for index, message in enumerate(messages):
        for call in message.tool_calls:
            calls[call.call_id] = index
        if message.role == "tool" and message.tool_call_id in calls:
            last_output[calls[message.tool_call_id]] = index
    return sorted(last_output.items())


def _cut_points(messages: Sequence[ChatMessage], section_starts: set[int]) -> tuple[list, list]:
    """Where the kept window may start: (turn starts, finer block starts), ascending.

    A cut may not fall after a function call and at or before its last output, and may not
    land on a function output. Turns start at user messages and at section starts (the
    conversation after the history); blocks at any other message.
    """
    inside = [False] * len(messages)
    for call_index, output_index in _call_spans(messages):
        for index in range(call_index + 1, output_index + 1):
            inside[index] = True
    turns: list[int] = []
    blocks: list[int] = []
    for index, message in enumerate(messages):
        if index == 0 or inside[index] or message.role == "tool":
            continue
        if message.role == "user" or index in section_starts:
            turns.append(index)
        blocks.append(index)
    return turns, blocks


def fit_context(
    *,
    system: Sequence[ChatMessage],
    system_tokens: Sequence[int],
    messages: Sequence[ChatMessage],
    message_tokens: Sequence[int],
    limit_tokens: int,
    fixed_tokens: int = 0,
    truncation: Truncation | None = None,
    history_count: int = 0,
) -> Fitted:
    """Keep the instructions and the newest turns of ``messages`` that fit ``limit_tokens``.

    Args:
        system: The instruction messages (always kept, never counted as droppable).
        system_tokens: Their token counts.
        messages: History then conversation, oldest first.
        message_tokens: Their token counts (same length as ``messages``).
        limit_tokens: The provider's input limit (window minus room for the reply).
        fixed_tokens: Tokens every prompt carries besides the messages (tool definitions,
            template preamble).
        truncation: The session's ``truncation`` setting (default ``auto``).
        history_count: How many of ``messages`` are history: the conversation's first
            message then starts a turn of its own, so a cut never keeps half a history turn
            glued to the conversation.

    Returns:
        The messages to send and where the window was cut.

    Raises:
        ContextTooLong: Truncation is disabled and the context is over the limit, or the
            instructions or the newest message alone do not fit.
    """
    if len(messages) != len(message_tokens) or len(system) != len(system_tokens):
        raise ValueError("every message needs exactly one token count")
    truncation = truncation or Truncation()
    instructions = fixed_tokens + sum(system_tokens)
    limit = limit_tokens - instructions
    if truncation.post_instructions_tokens is not None:
        limit = min(limit, truncation.post_instructions_tokens)
    total = sum(message_tokens)
    if limit < 0 or (limit == 0 and total > 0):
        raise ContextTooLong(
            f"The instructions and tools take {instructions} tokens, more than the model's "
            f"input limit of {limit_tokens} tokens leaves for the conversation. Shorten them.",
            needed_tokens=instructions + total,
            limit_tokens=limit_tokens,
        )
    # suffix[i]: tokens of messages[i:]; the window messages[cut:] costs suffix[cut].
    suffix = [0] * (len(messages) + 1)
    for index in range(len(messages) - 1, -1, -1):
        suffix[index] = suffix[index + 1] + message_tokens[index]
    cut = 0
    if total > limit:
        if truncation.mode == "disabled":
            raise ContextTooLong(
                f"The conversation is {instructions + total} tokens, over the model's input "
                f"limit of {limit_tokens} tokens, and truncation is disabled. Delete items "
                "or enable truncation.",
                needed_tokens=instructions + total,
                limit_tokens=limit_tokens,
            )
        target = math.floor(limit * truncation.retention_ratio)
        turns, blocks = _cut_points(messages, {history_count} if history_count else set())
        # Whole turns down to the retention target; else the newest turn alone if it fits
        # the full limit; else as much of the newest turn's end as fits.
        cut = next((c for c in turns if suffix[c] <= target), -1)
        if cut < 0 and turns and suffix[turns[-1]] <= limit:
            cut = turns[-1]
        if cut < 0:
            cut = next((c for c in blocks if suffix[c] <= limit), -1)
        if cut < 0:
            newest = message_tokens[-1] if message_tokens else 0
            raise ContextTooLong(
                f"The newest message is {newest} tokens; with the instructions "
                f"({instructions} tokens) it does not fit the model's input limit of "
                f"{limit_tokens} tokens. Send a shorter message.",
                needed_tokens=instructions + newest,
                limit_tokens=limit_tokens,
            )
    return Fitted(
        messages=[*system, *messages[cut:]],
        cut=cut,
        prompt_tokens=instructions + suffix[cut],
        limit_tokens=limit_tokens,
    )


# --- counting, cached ------------------------------------------------------------------------


def _tools_key(tools: Sequence[ToolSpec]) -> str:
    return json.dumps(
        [[t.name, t.description, t.parameters] for t in tools], sort_keys=True, default=str
    )


@dataclass(slots=True)
class TokenCounter:
    """Counts messages with a provider, remembering each message's count.

    Keys are the messages themselves (role, text, calls): an item's message is recounted
    only when its text changes, and history messages are counted once per session. Bounded
    (``max_entries``, least recently used forgotten first); the cache is emptied when the
    session switches provider or model, since counts are per tokenizer.
    """

    max_entries: int = COUNT_CACHE_ENTRIES
    _counts: OrderedDict[ChatMessage, int] = field(default_factory=OrderedDict)
    _fixed: dict[str, int] = field(default_factory=dict)
    _owner: tuple[int, str] | None = None
    provider_calls: int = 0
    """How many times the provider was asked to count (for tests and metrics)."""

    async def count(
        self,
        provider: LlmProvider,
        model: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
    ) -> tuple[list[int], int]:
        """Token counts of ``messages``, and the fixed per-prompt overhead with ``tools``.

        Only messages not counted before go to the provider, in one call.
        """
        owner = (id(provider), model)
        if owner != self._owner:
            self._counts.clear()
            self._fixed.clear()
            self._owner = owner
        key = _tools_key(tools)
        # Look up before awaiting: a concurrent response may evict entries meanwhile.
        known: dict[ChatMessage, int] = {}
        for message in messages:
            tokens = self._counts.get(message)
            if tokens is not None:
                self._counts.move_to_end(message)
                known[message] = tokens
        missing = list(dict.fromkeys(m for m in messages if m not in known))
        fixed = self._fixed.get(key)
        if missing or fixed is None:
            self.provider_calls += 1
            counted = await provider.count_tokens(missing, model=model, tools=tools)
            for message, tokens in zip(missing, counted.messages, strict=True):
                known[message] = tokens
                self._counts[message] = tokens
            if len(self._fixed) >= 16:  # tool sets rarely change; keep only a few
                self._fixed.clear()
            fixed = self._fixed[key] = counted.fixed
            while len(self._counts) > self.max_entries:
                self._counts.popitem(last=False)
        return [known[message] for message in messages], fixed


@dataclass(slots=True)
class WindowState:
    """A session's sticky truncation point and its count cache.

    Attributes:
        history_dropped: Leading history messages no longer sent.
        first_item_id: The oldest conversation item still sent (None: from the start).
            Items before it were truncated away; if it is deleted, the marker is lost and
            the next response fits from the start again (still within the limit).
        counter: The session's token-count cache.
    """

    history_dropped: int = 0
    first_item_id: str | None = None
    counter: TokenCounter = field(default_factory=TokenCounter)

    def visible(self, item_ids: Sequence[str]) -> int:
        """Index of the first item the model may still see among ``item_ids``."""
        if self.first_item_id is None:
            return 0
        try:
            return item_ids.index(self.first_item_id)
        except ValueError:
            self.first_item_id = None
            return 0

    def advance(self, *, cut: int, history_left: int, message_item_ids: Sequence[str]) -> None:
        """Record a cut of ``cut`` messages (history first, then conversation messages).

        Args:
            cut: ``Fitted.cut``.
            history_left: How many history messages were offered to ``fit_context``.
            message_item_ids: For each conversation message offered, its first item's id.
        """
        if cut <= 0:
            return
        self.history_dropped += min(cut, history_left)
        into_conversation = cut - history_left
        if into_conversation > 0:
            self.first_item_id = message_item_ids[into_conversation]
