"""The embedded llama.cpp model itself: both languages, valid tool calls, answers after tools."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from apps.agent.base import ChatMessage, ChatRequest, Finish, TextDelta, ToolCall, ToolSpec
from apps.agent.providers.embedded import EmbeddedLlm

SYSTEM = ChatMessage("system", "You are a helpful voice assistant. Answer in one short sentence.")
WEATHER = ToolSpec(
    "get_weather",
    "Get the current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
LIGHT = ToolSpec(
    "set_light",
    "Turn the light in a room on or off.",
    {
        "type": "object",
        "properties": {"room": {"type": "string"}, "on": {"type": "boolean"}},
        "required": ["room", "on"],
    },
)


@pytest.fixture(scope="module")
def llm() -> EmbeddedLlm:
    provider = EmbeddedLlm(cache_dir=str(settings.VOICE_MODEL_CACHE))
    provider.load()
    yield provider
    provider.close()


async def _reply(llm: EmbeddedLlm, request: ChatRequest) -> tuple[str, list]:
    items = [item async for item in llm.stream(request)]
    assert isinstance(items[-1], Finish)
    return "".join(i.text for i in items if isinstance(i, TextDelta)), items


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What is the capital city of France?", "Paris"),
        ("中国的首都是哪个城市？请用一句话回答。", "北京"),
    ],
)
async def test_answers_simple_questions_in_each_language(llm, question, expected) -> None:
    text, items = await _reply(
        llm, ChatRequest("m", [SYSTEM, ChatMessage("user", question)], max_tokens=48)
    )
    assert expected in text
    assert items[-1].completion_tokens > 0


@pytest.mark.parametrize("choice", ["required", "get_weather"])
async def test_forced_tool_call_is_valid_json(llm, choice) -> None:
    request = ChatRequest(
        "m",
        [SYSTEM, ChatMessage("user", "What is the weather like in Paris right now?")],
        tools=[WEATHER, LIGHT],
        tool_choice=choice,
    )
    _, items = await _reply(llm, request)
    calls = [i for i in items if isinstance(i, ToolCall)]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert calls[0].call_id.startswith("call_")
    assert json.loads(calls[0].arguments)["city"].lower() == "paris"
    assert items[-1].reason == "tool_calls"


async def test_forced_call_fills_every_required_argument(llm) -> None:
    request = ChatRequest(
        "m",
        [SYSTEM, ChatMessage("user", "Please turn off the light in the kitchen.")],
        tools=[WEATHER, LIGHT],
        tool_choice="set_light",
    )
    _, items = await _reply(llm, request)
    arguments = json.loads(next(i for i in items if isinstance(i, ToolCall)).arguments)
    assert set(arguments) >= {"room", "on"} and isinstance(arguments["on"], bool)
    assert "kitchen" in arguments["room"].lower()


async def test_answers_in_words_after_a_tool_result(llm) -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    request = ChatRequest(
        "m",
        [
            SYSTEM,
            ChatMessage("user", "What is the weather like in Paris right now?"),
            ChatMessage("assistant", "", tool_calls=(call,)),
            ChatMessage("tool", '{"temperature_c": 21, "sky": "sunny"}', tool_call_id="call_1"),
        ],
        tools=[WEATHER],
    )
    text, items = await _reply(llm, request)
    assert not any(isinstance(i, ToolCall) for i in items)
    assert "21" in text and "{" not in text


async def test_stopping_early_leaves_the_model_usable(llm) -> None:
    request = ChatRequest(
        "m", [SYSTEM, ChatMessage("user", "Count from one to fifty in words.")], max_tokens=200
    )
    seen = 0
    async for item in llm.stream(request):
        seen += isinstance(item, TextDelta)
        if seen == 3:
            break
    text, _ = await _reply(
        llm, ChatRequest("m", [SYSTEM, ChatMessage("user", "What is 2 plus 2?")], max_tokens=24)
    )
    assert "4" in text or "four" in text.lower()


async def test_max_tokens_ends_with_length(llm) -> None:
    request = ChatRequest(
        "m", [SYSTEM, ChatMessage("user", "Tell me a long story about a dragon.")], max_tokens=5
    )
    _, items = await _reply(llm, request)
    assert items[-1].reason == "length" and items[-1].completion_tokens <= 5
