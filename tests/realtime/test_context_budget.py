"""The context budgeter: what is kept, what is dropped, and when it refuses."""

from __future__ import annotations

import pytest

from apps.agent.base import ChatMessage, ToolCall
from apps.agent.providers.scripted import ScriptedLlm
from apps.realtime.session.context_budget import (
    AUTO_RETENTION_RATIO,
    ContextTooLong,
    TokenCounter,
    Truncation,
    WindowState,
    fit_context,
)

SYSTEM = [ChatMessage("system", "Be brief.")]
RATIO_1 = Truncation(mode="retention_ratio", retention_ratio=1.0)


def user(text: str) -> ChatMessage:
    return ChatMessage("user", text)


def assistant(text: str) -> ChatMessage:
    return ChatMessage("assistant", text)


def call(call_id: str) -> ChatMessage:
    return ChatMessage("assistant", tool_calls=(ToolCall(call_id, "f", "{}"),))


def output(call_id: str) -> ChatMessage:
    return ChatMessage("tool", "ok", tool_call_id=call_id)


def fit(messages, tokens, limit, *, system_tokens=(5,), **kwargs):
    return fit_context(
        system=SYSTEM,
        system_tokens=list(system_tokens),
        messages=messages,
        message_tokens=tokens,
        limit_tokens=limit,
        **kwargs,
    )


def turns(n: int) -> list[ChatMessage]:
    return [m for i in range(n) for m in (user(f"q{i}"), assistant(f"a{i}"))]


def test_everything_is_kept_when_it_fits() -> None:
    messages = turns(3)
    fitted = fit(messages, [10] * 6, 65)
    assert fitted.cut == 0
    assert fitted.messages == SYSTEM + messages
    assert fitted.prompt_tokens == 65


def test_oldest_whole_turns_go_first_and_the_system_prompt_stays() -> None:
    messages = turns(5)  # 10 messages of 10 tokens
    fitted = fit(messages, [10] * 10, 5 + 65, truncation=RATIO_1)
    # 65 tokens of room: three whole turns (60), never half a turn.
    assert fitted.messages == SYSTEM + messages[4:]
    assert fitted.messages[1] == user("q2")
    assert fitted.prompt_tokens == 65 <= 70


def test_auto_leaves_headroom_below_the_limit() -> None:
    messages = turns(10)
    fitted = fit(messages, [10] * 20, 5 + 100)
    assert fitted.prompt_tokens - 5 <= 100 * AUTO_RETENTION_RATIO
    assert fitted.messages[1].role == "user"
    # The newest turns are the ones kept.
    assert fitted.messages[-1] == messages[-1]


def test_retention_ratio_cuts_to_its_share_of_the_limit() -> None:
    messages = turns(10)
    ratio = Truncation(mode="retention_ratio", retention_ratio=0.3)
    fitted = fit(messages, [10] * 20, 5 + 100, truncation=ratio)
    assert fitted.messages == SYSTEM + messages[-2:]  # 20 tokens <= 30; 40 would not be
    # A ratio of 0 still keeps the newest turn: there must be something to answer.
    zero = Truncation(mode="retention_ratio", retention_ratio=0.0)
    assert fit(messages, [10] * 20, 105, truncation=zero).messages == SYSTEM + messages[-2:]


def test_post_instructions_limit_caps_the_conversation() -> None:
    messages = turns(10)
    capped = Truncation(mode="retention_ratio", retention_ratio=1.0, post_instructions_tokens=40)
    fitted = fit(messages, [10] * 20, 10_000, truncation=capped)
    assert fitted.messages == SYSTEM + messages[-4:]


def test_history_goes_before_the_conversation() -> None:
    history = [user("old q"), assistant("old a"), user("older q2"), assistant("older a2")]
    conversation = [assistant("Hi there!"), user("q"), assistant("a")]
    messages = history + conversation
    fitted = fit(messages, [10] * 7, 5 + 35, truncation=RATIO_1, history_count=4)
    # The conversation's opening assistant greeting starts a turn of its own.
    assert fitted.messages == SYSTEM + conversation
    assert fitted.cut == 4


def test_a_function_call_is_never_split_from_its_output() -> None:
    messages = [
        user("q0"),
        assistant("a0"),
        user("weather?"),
        call("c1"),
        user("hurry up"),  # spoken while the function ran
        output("c1"),
    ]
    # 35 tokens of room: the last two messages (20) would fit, but would keep c1's output
    # without its call; the call, the user's aside and the output go together.
    fitted = fit(messages, [10] * 6, 5 + 35, truncation=RATIO_1)
    assert fitted.messages == SYSTEM + messages[3:]
    with pytest.raises(ContextTooLong):
        fit(messages, [10] * 6, 5 + 25, truncation=RATIO_1)
    # A user message inside a call's span does not start a turn either.
    later = [*messages, assistant("sunny"), user("thanks")]
    fitted = fit(later, [10] * 8, 5 + 45, truncation=RATIO_1)
    assert fitted.cut == 7


def test_the_kept_window_never_starts_with_a_function_output() -> None:
    # An output whose call is gone already (deleted by the client).
    messages = [user("q0"), assistant("a0"), user("q1"), output("gone"), assistant("done")]
    fitted = fit(messages, [10] * 5, 5 + 25, truncation=RATIO_1)
    assert fitted.messages == SYSTEM + [assistant("done")]


def test_an_oversized_newest_turn_keeps_its_newest_messages() -> None:
    messages = [user("q0"), assistant("a0"), user("long"), call("c1"), output("c1")]
    fitted = fit(messages, [10, 10, 50, 10, 10], 5 + 30)
    assert fitted.messages == SYSTEM + [call("c1"), output("c1")]


def test_a_newest_message_that_cannot_fit_fails_clearly() -> None:
    with pytest.raises(ContextTooLong) as info:
        fit([user("q0"), user("huge")], [10, 500], 5 + 100)
    assert "500 tokens" in str(info.value)
    assert info.value.code == "context_length_exceeded"
    assert info.value.limit_tokens == 105


def test_instructions_over_the_limit_fail_clearly() -> None:
    with pytest.raises(ContextTooLong, match="instructions and tools take 120 tokens"):
        fit([user("q")], [10], 100, system_tokens=(100,), fixed_tokens=20)


def test_disabled_truncation_refuses_instead_of_dropping() -> None:
    disabled = Truncation.from_config("disabled")
    messages = turns(5)
    assert fit(messages, [10] * 10, 105, truncation=disabled).cut == 0
    with pytest.raises(ContextTooLong, match="truncation is disabled") as info:
        fit(messages, [10] * 10, 104, truncation=disabled)
    assert info.value.needed_tokens == 105


def test_truncation_config_parsing() -> None:
    assert Truncation.from_config(None) == Truncation()
    assert Truncation.from_config("auto").mode == "auto"
    assert Truncation.from_config("disabled").mode == "disabled"
    parsed = Truncation.from_config(
        {
            "type": "retention_ratio",
            "retention_ratio": 0.5,
            "token_limits": {"post_instructions": 900},
        }
    )
    assert parsed == Truncation("retention_ratio", 0.5, 900)
    parsed = Truncation.from_config(
        {"type": "retention_ratio", "retention_ratio": 1, "token_limits": None}
    )
    assert parsed == Truncation("retention_ratio", 1.0, None)


def test_count_mismatch_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        fit(turns(1), [10], 100)


async def test_counts_are_cached_per_message_and_reset_per_model() -> None:
    llm = ScriptedLlm()
    counter = TokenCounter()
    first = [user("one two three"), assistant("four five")]
    counts, fixed = await counter.count(llm, "m", first)
    assert (counts, fixed) == ([4, 3], 0)
    assert llm.counted_messages == 2
    # The next response adds a turn: only the new messages are counted.
    second = [*first, user("six"), assistant("seven eight nine")]
    counts, _ = await counter.count(llm, "m", second)
    assert counts == [4, 3, 2, 4]
    assert llm.counted_messages == 4
    counts, _ = await counter.count(llm, "m", second)
    assert llm.counted_messages == 4 and counter.provider_calls == 2
    # Another model may tokenize differently: everything is counted again.
    await counter.count(llm, "other", second)
    assert llm.counted_messages == 8


async def test_count_cache_is_bounded() -> None:
    counter = TokenCounter(max_entries=3)
    llm = ScriptedLlm()
    await counter.count(llm, "m", [user(f"m{i}") for i in range(10)])
    assert len(counter._counts) == 3


def test_window_state_remembers_the_cut() -> None:
    state = WindowState()
    ids = ["i1", "i2", "i3", "i4"]
    assert state.visible(ids) == 0
    # 2 history messages offered, cut 3: both history messages and the first conversation
    # message (from item i1) go; the window now starts at i2's message.
    state.advance(cut=3, history_left=2, message_item_ids=["i1", "i2", "i4"])
    assert state.history_dropped == 2
    assert state.first_item_id == "i2"
    assert state.visible(ids) == 1
    # The marker item was deleted: start over from the beginning (still fitted each time).
    assert state.visible(["i1", "i3"]) == 0
    assert state.first_item_id is None
