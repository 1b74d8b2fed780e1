"""The embedded model's context window: counting with its own tokenizer, and long sessions.

Like ``test_embedded_llm.py``, these load the real GGUF through llama.cpp.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.conf import settings

from apps.agent.base import ChatMessage, ChatRequest, Finish, ToolCall, ToolSpec
from apps.agent.providers.embedded import EmbeddedLlm
from apps.realtime.session.deps import Limits
from tests.realtime.fakes import Harness

WEATHER = ToolSpec(
    "get_weather",
    "Get the current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CALL = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
CONTEXTS = {
    "plain": (
        [
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "What is the capital of France?"),
            ChatMessage("assistant", "Paris."),
            ChatMessage("user", "And of Germany?"),
        ],
        [],
    ),
    "no instructions": ([ChatMessage("user", "hello there")], []),
    "tools": (
        [
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "What is the weather in Paris?"),
        ],
        [WEATHER],
    ),
    "tool result": (
        [
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "What is the weather in Paris?"),
            ChatMessage("assistant", "", tool_calls=(CALL,)),
            ChatMessage("tool", '{"temperature_c": 21, "sky": "sunny"}', tool_call_id="call_1"),
        ],
        # Without tools in the request: with them, a tool result is answered in "answer
        # mode", whose prompt leaves the tool definitions out (far below the estimate).
        [],
    ),
    "chinese": (
        [
            ChatMessage("system", "简短回答。"),
            ChatMessage("user", "中国的首都是哪个城市？请用一句话回答。" * 4),
        ],
        [],
    ),
}
# A small window, so a session overflows it within a few turns and every cut re-reads
# little (llama.cpp reuses only the common prefix of consecutive prompts).
SMALL_N_CTX = 256
TURNS = 300


@pytest.fixture(scope="module")
def small_llm() -> EmbeddedLlm:
    provider = EmbeddedLlm(cache_dir=str(settings.VOICE_MODEL_CACHE), n_ctx=SMALL_N_CTX)
    provider.load()
    yield provider
    provider.close()


def test_window_is_n_ctx_minus_the_reply(small_llm) -> None:
    assert small_llm.context_window_tokens("m") == SMALL_N_CTX
    assert small_llm.input_token_limit("m", 8) == SMALL_N_CTX - 8
    # No reply limit: the provider's own max_tokens (512) is capped at half the window.
    assert small_llm.input_token_limit("m", None) == SMALL_N_CTX // 2
    unloaded = EmbeddedLlm(cache_dir=str(settings.VOICE_MODEL_CACHE), n_ctx=2048, max_tokens=100)
    assert unloaded.input_token_limit("m", None) == 2048 - 100


@pytest.mark.parametrize("name", sorted(CONTEXTS))
async def test_counts_cover_the_prompt_llama_cpp_evaluates(small_llm, name) -> None:
    messages, tools = CONTEXTS[name]
    counted = await small_llm.count_tokens(messages, model="m", tools=tools)
    estimate = sum(counted.messages) + counted.fixed
    request = ChatRequest("m", messages, tools=tools, max_tokens=1)
    items = [item async for item in small_llm.stream(request)]
    assert isinstance(items[-1], Finish)
    actual = items[-1].prompt_tokens
    # Never low (the window would overflow), and high only by the template's default
    # system prompt and the answer-mode rewrite of tool results.
    assert actual <= estimate <= actual + 64, (estimate, actual)


async def test_counting_runs_off_the_event_loop(small_llm, monkeypatch) -> None:
    seen: list[str] = []
    count = small_llm.count_tokens_blocking

    def spy(*args):
        seen.append(threading.current_thread().name)
        return count(*args)

    monkeypatch.setattr(small_llm, "count_tokens_blocking", spy)
    await small_llm.count_tokens([ChatMessage("user", "hi")], model="m")
    assert seen and seen[0].startswith("llm-count")
    assert seen[0] != threading.current_thread().name


@pytest.mark.timeout(900)
async def test_300_turns_on_the_embedded_model_all_complete(small_llm) -> None:
    """The issue's test: a long session never overflows the model's window.

    Costs about 300 x 14 prompt tokens plus re-reading half the window after each cut:
    6-7 minutes on 2 shared cores (llama.cpp evaluates ~25-30 prompt tokens/s there).
    """
    h = await Harness(
        llm=small_llm,  # type: ignore[arg-type]
        limits=Limits(audio_lead_ms=100_000, max_responses_per_minute=100_000),
    ).start()
    await h.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "output_modalities": ["text"], "max_output_tokens": 1},
        }
    )
    started = time.monotonic()
    turns = TURNS
    for turn in range(turns):
        await h.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": f"Hi {turn}."}],
                },
            }
        )
        await h.send({"type": "response.create"})
        done = await h.wait_for("response.done", count=turn + 1, timeout_s=60)
        response = done["response"]
        # max_output_tokens 1 ends every reply "incomplete" (length), never "failed".
        assert response["status"] in ("completed", "incomplete"), response["status_details"]
        assert response["usage"]["input_tokens"] < SMALL_N_CTX
    elapsed_s = time.monotonic() - started
    print(f"\n{turns} embedded turns in {elapsed_s:.1f} s")
    # The conversation is far longer than the window: its oldest turns were dropped.
    assert len(h.session.conversation) == 2 * turns
    await h.close()
