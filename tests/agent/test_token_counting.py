"""Token counting and context windows of the remote and scripted providers."""

from __future__ import annotations

import pytest

from apps.agent.base import (
    ChatMessage,
    ChatRequest,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolSpec,
    estimate_tokens,
)
from apps.agent.providers.openai_compat import OpenAICompatLlm
from apps.agent.providers.scripted import ScriptedLlm

WEATHER = ToolSpec(
    "get_weather",
    "Get the current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def test_estimate_errs_high_for_english_and_cjk() -> None:
    english = "The quick brown fox jumps over the lazy dog. " * 20
    # English runs about 4 characters a token; bytes / 3 is a third more than that.
    assert estimate_tokens(english) >= len(english) / 4
    chinese = "今天天气很好，我们去公园散步吧。" * 20
    # CJK is 3 bytes a character in UTF-8: one token a character, what tokenizers use at most.
    assert estimate_tokens(chinese) == len(chinese)
    assert estimate_tokens("") == 0
    # Lone surrogates (a client's broken JSON) are counted, not a crash.
    assert estimate_tokens("\ud800") == 1


@pytest.mark.parametrize(
    ("options", "window"),
    [
        ({"preset": "openai"}, 128_000),
        ({"preset": "deepseek"}, 65_536),
        ({"preset": "dashscope"}, 32_768),
        ({"preset": "ollama"}, 4_096),
        ({"base_url": "http://vllm.internal:8000/v1"}, 32_768),
        ({"preset": "openai", "context_window_tokens": 16_000}, 16_000),
    ],
)
def test_remote_windows_come_from_options_or_the_preset(options, window) -> None:
    llm = OpenAICompatLlm(models=["m"], **options)
    assert llm.context_window_tokens("m") == window
    # With no max_tokens, 4,096 tokens stay free for the reply.
    assert llm.input_token_limit("m", None) == window - min(4096, window // 2)
    assert llm.input_token_limit("m", 100) == window - 100


def test_remote_window_must_be_plausible() -> None:
    with pytest.raises(ValueError, match="context_window_tokens"):
        OpenAICompatLlm(models=["m"], preset="openai", context_window_tokens=10)


def test_a_huge_reply_limit_reserves_at_most_half_the_window() -> None:
    llm = OpenAICompatLlm(models=["m"], preset="ollama")
    assert llm.input_token_limit("m", 4096) == 2048


async def test_remote_counts_are_conservative_estimates() -> None:
    llm = OpenAICompatLlm(models=["m"], preset="openai")
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    messages = [
        ChatMessage("user", "What is the weather in Paris?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", '{"temperature_c": 21}', tool_call_id="call_1"),
    ]
    counted = await llm.count_tokens(messages, model="m", tools=[WEATHER])
    assert len(counted.messages) == 3
    assert counted.messages[0] >= estimate_tokens(messages[0].content)
    # The call's name and arguments are what the model reads of that message.
    assert counted.messages[1] >= estimate_tokens('get_weather {"city": "Paris"}')
    # The tool definitions cost their JSON, once per prompt.
    assert counted.fixed >= estimate_tokens(WEATHER.description) + 10
    bare = await llm.count_tokens(messages, model="m")
    assert bare.fixed < counted.fixed


async def test_scripted_counts_words_and_has_no_window_by_default() -> None:
    llm = ScriptedLlm()
    assert llm.context_window_tokens("m") is None
    assert llm.input_token_limit("m", None) is None
    counted = await llm.count_tokens(
        [ChatMessage("user", "one two three"), ChatMessage("assistant", "")], model="m"
    )
    assert counted.messages == (4, 1)
    assert counted.fixed == 0


async def test_scripted_refuses_a_prompt_over_its_window() -> None:
    llm = ScriptedLlm(context_window_tokens=20, script=["fine"])
    assert llm.input_token_limit("m", 4) == 16
    ok = ChatRequest("m", [ChatMessage("user", "a b c d e f g h i j k l m n o")], max_tokens=4)
    items = [item async for item in llm.stream(ok)]
    assert items[0] == TextDelta("fine")
    too_long = ChatRequest("m", [ChatMessage("user", "word " * 16)], max_tokens=4)
    with pytest.raises(ProviderError, match="17 tokens, over the input limit of 16"):
        [item async for item in llm.stream(too_long)]
    # Its own check is not counted as the session's counting.
    assert llm.counted_messages == 0
