"""The remote provider against a real local HTTP server that streams scripted SSE."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.agent.base import (
    ChatMessage,
    ChatRequest,
    Finish,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolSpec,
)
from apps.agent.providers.openai_compat import OpenAICompatLlm, request_body


class Script:
    """What the fake server answers, one entry per request: (status, chunks or body, delay)."""

    def __init__(self) -> None:
        self.responses: list[tuple[int, object, float]] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []


def _handler(script: Script):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.requests.append(body)
            script.headers.append(dict(self.headers))
            status, payload, delay = script.responses.pop(0) if script.responses else (500, {}, 0)
            time.sleep(delay)
            if status != 200:
                raw = json.dumps({"error": {"message": f"scripted {status}"}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for chunk in payload:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    httpd.shutdown()
    httpd.server_close()


def _delta(**delta) -> dict:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def _finish(reason: str) -> dict:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}


REQUEST = ChatRequest("qwen-max", [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")])


async def _collect(provider, request=REQUEST) -> list:
    return [item async for item in provider.stream(request)]


async def test_streams_text_and_usage(server) -> None:
    url, script = server
    script.responses.append(
        (
            200,
            [
                _delta(role="assistant"),
                _delta(content="Hel"),
                _delta(content="lo!"),
                _finish("stop"),
                {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2}},
            ],
            0,
        )
    )
    provider = OpenAICompatLlm(
        models=["qwen-max"], base_url=url, api_key="sk-test", name="DashScope"
    )
    items = await _collect(provider)
    assert items == [
        TextDelta("Hel"),
        TextDelta("lo!"),
        Finish("stop", prompt_tokens=12, completion_tokens=2),
    ]
    sent = script.requests[0]
    assert sent["model"] == "qwen-max" and sent["stream"] is True
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert script.headers[0]["Authorization"] == "Bearer sk-test"


async def test_tool_call_deltas_are_joined(server) -> None:
    url, script = server
    script.responses.append(
        (
            200,
            [
                _delta(
                    tool_calls=[
                        {
                            "index": 0,
                            "id": "call_abc",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                ),
                _delta(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}]),
                _delta(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]),
                _finish("tool_calls"),
            ],
            0,
        )
    )
    tool = ToolSpec(
        "get_weather", "", {"type": "object", "properties": {"city": {"type": "string"}}}
    )
    request = ChatRequest(
        "m", [ChatMessage("user", "weather?")], tools=[tool], tool_choice="get_weather"
    )
    items = await _collect(OpenAICompatLlm(models=["m"], base_url=url), request)
    assert items[0] == ToolCall("call_abc", "get_weather", '{"city": "Paris"}')
    assert items[-1].reason == "tool_calls"
    assert script.requests[0]["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_weather"},
    }


async def test_server_errors_are_retried_before_the_first_token(server) -> None:
    url, script = server
    script.responses += [
        (503, {}, 0),
        (429, {}, 0),
        (200, [_delta(content="ok"), _finish("stop")], 0),
    ]
    provider = OpenAICompatLlm(models=["m"], base_url=url, max_retries=2, retry_backoff_s=0.01)
    items = await _collect(provider)
    assert items[0] == TextDelta("ok") and len(script.requests) == 3


async def test_retries_run_out_with_a_clear_error(server) -> None:
    url, script = server
    script.responses += [(500, {}, 0)] * 3
    provider = OpenAICompatLlm(
        models=["m"], base_url=url, max_retries=1, retry_backoff_s=0.01, name="vLLM"
    )
    with pytest.raises(ProviderError, match=r"vLLM: HTTP 500: scripted 500"):
        await _collect(provider)
    assert len(script.requests) == 2


async def test_bad_key_is_not_retried(server) -> None:
    url, script = server
    script.responses.append((401, {}, 0))
    with pytest.raises(ProviderError, match="rejected the API key"):
        await _collect(OpenAICompatLlm(models=["m"], base_url=url, name="OpenAI"))
    assert len(script.requests) == 1


async def test_timeout_and_unreachable_are_provider_errors(server) -> None:
    url, script = server
    script.responses.append((200, [_delta(content="late")], 1.0))
    slow = OpenAICompatLlm(models=["m"], base_url=url, timeout_s=0.2, max_retries=0)
    with pytest.raises(ProviderError, match="timed out"):
        await _collect(slow)
    down = OpenAICompatLlm(
        models=["m"], base_url="http://127.0.0.1:9/v1", max_retries=1, retry_backoff_s=0.01
    )
    with pytest.raises(ProviderError, match="cannot reach"):
        await _collect(down)


def test_request_body_carries_history_and_limits() -> None:
    call = ToolCall("call_1", "f", "{}")
    request = ChatRequest(
        "m",
        [
            ChatMessage("assistant", "", tool_calls=(call,)),
            ChatMessage("tool", "42", tool_call_id="call_1"),
        ],
        temperature=0.7,
        max_tokens=100,
    )
    body = request_body(request)
    assert body["messages"][0]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert body["messages"][1] == {"role": "tool", "content": "42", "tool_call_id": "call_1"}
    assert body["temperature"] == 0.7 and body["max_tokens"] == 100 and "tools" not in body


def test_presets_and_validation() -> None:
    assert OpenAICompatLlm(models=["qwen-max"], preset="DashScope").base_url.startswith(
        "https://dashscope"
    )
    with pytest.raises(ValueError):
        OpenAICompatLlm(models=["m"], preset="nope")
    with pytest.raises(ValueError):
        OpenAICompatLlm(models=[], preset="openai")


def test_providers_from_environment(tmp_path) -> None:
    from tests.helpers import manage, project_env

    env = project_env(
        tmp_path,
        DASHSCOPE_API_KEY="sk-x",
        OLLAMA_BASE_URL="http://127.0.0.1:11434/v1",
        OLLAMA_MODELS="llama3.2",
    )
    code = "from apps.agent.routing import available_routes as a;print([r.qualified for r in a()])"
    out = manage(env, "shell", "-c", code).stdout.strip().splitlines()[-1]
    assert out == str(
        [
            "qwen2.5-coder-0.5b-instruct@local",
            "qwen-max@DashScope",
            "qwen-plus@DashScope",
            "qwen-turbo@DashScope",
            "llama3.2@Ollama",
        ]
    )
