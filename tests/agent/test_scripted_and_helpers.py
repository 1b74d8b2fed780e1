import json

import pytest

from apps.agent.base import ChatMessage, ChatRequest, Finish, TextDelta, ToolCall, ToolSpec
from apps.agent.checks import check_providers
from apps.agent.providers.embedded import _answer_messages, call_schema
from apps.agent.providers.scripted import ScriptedLlm

WEATHER = ToolSpec(
    "get_weather", "Weather now", {"type": "object", "properties": {"city": {"type": "string"}}}
)


async def _collect(provider, request):
    return [item async for item in provider.stream(request)]


async def test_scripted_echo_streams_words() -> None:
    items = await _collect(ScriptedLlm(), ChatRequest("m", [ChatMessage("user", "hi there")]))
    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == "You said: hi there"
    assert items[-1] == Finish("stop", prompt_tokens=10, completion_tokens=4)


async def test_scripted_tool_calls() -> None:
    llm = ScriptedLlm(
        script=[{"tool": "get_weather", "arguments": {"city": "Paris"}}, "It is sunny."]
    )
    first = await _collect(
        llm, ChatRequest("m", [ChatMessage("user", "weather?")], tools=[WEATHER])
    )
    assert isinstance(first[0], ToolCall) and json.loads(first[0].arguments) == {"city": "Paris"}
    assert first[-1].reason == "tool_calls"
    second = await _collect(
        llm, ChatRequest("m", [ChatMessage("user", "weather?")], tools=[WEATHER])
    )
    assert second[0] == TextDelta("It")
    forced = await _collect(
        ScriptedLlm(), ChatRequest("m", [], tools=[WEATHER], tool_choice="get_weather")
    )
    assert forced[0].name == "get_weather"


def test_call_schema() -> None:
    one = call_schema([WEATHER])
    assert one["properties"]["name"] == {"type": "string", "enum": ["get_weather"]}
    two = call_schema([WEATHER, ToolSpec("set_light")])
    assert [v["properties"]["name"]["enum"] for v in two["anyOf"]] == [
        ["get_weather"],
        ["set_light"],
    ]


def test_tool_history_as_plain_conversation() -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    messages = [
        ChatMessage("user", "Weather in Paris?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", '{"temp_c": 21}', tool_call_id="call_1"),
    ]
    out = _answer_messages(messages)
    assert out[1] == {"role": "assistant", "content": '[calling get_weather({"city": "Paris"})]'}
    assert out[2]["role"] == "user" and out[2]["content"].startswith(
        '[get_weather returned: {"temp_c": 21}]'
    )


def test_provider_checks(settings) -> None:
    assert check_providers() == []
    settings.AGENT_PROVIDERS = {"x": {"BACKEND": "apps.agent.providers.nowhere.Llm"}}
    assert [m.id for m in check_providers()] == ["agent.E001"]


@pytest.mark.django_db
def test_chat_command_streams(capsys) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("chat", "hello model", stdout=out)
    assert out.getvalue().strip() == "You said: hello model"
