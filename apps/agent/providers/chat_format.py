"""Messages and tools in the OpenAI chat-completions shape, shared by the providers.

Remote endpoints take exactly this; llama.cpp's chat templates take it too, except that
Qwen-style templates apply ``tojson`` to tool-call arguments and so want them as an object.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..base import ChatMessage, ToolSpec


def _arguments_object(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments


def chat_messages(
    messages: Iterable[ChatMessage], *, arguments_as_object: bool = False
) -> list[dict[str, Any]]:
    """Messages as chat-completions dicts (tool calls and tool results included)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            entry["tool_calls"] = [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": _arguments_object(call.arguments)
                        if arguments_as_object
                        else call.arguments,
                    },
                }
                for call in message.tool_calls
            ]
        if message.tool_call_id:
            entry["tool_call_id"] = message.tool_call_id
        out.append(entry)
    return out


def chat_tools(tools: Iterable[ToolSpec]) -> list[dict[str, Any]]:
    """Tools as chat-completions function tools."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]
