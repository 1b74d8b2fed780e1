"""Transcript exports (JSON and plain text) for operators."""

from __future__ import annotations

from typing import Any

from .models import Conversation, ConversationItem


def _item_dict(item: ConversationItem) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": item.item_id,
        "position": item.position,
        "type": item.type,
        "status": item.status,
        "created_at": item.created_at.isoformat(),
    }
    if item.type == ConversationItem.Type.MESSAGE:
        data.update(role=item.role, text=item.text, audio_ms=item.audio_ms)
        if item.truncated_at_ms is not None:
            data["truncated_at_ms"] = item.truncated_at_ms
    elif item.type == ConversationItem.Type.FUNCTION_CALL:
        data.update(call_id=item.call_id, name=item.name, arguments=item.arguments)
    else:
        data.update(call_id=item.call_id, output=item.output)
    return data


def transcript_as_dict(conversation: Conversation) -> dict[str, Any]:
    """The conversation's metadata, usage and items as a JSON-ready dict."""
    return {
        "id": conversation.id,
        "license": conversation.license.name if conversation.license else None,
        "user_id": conversation.user_id,
        "character": conversation.character.slug if conversation.character else None,
        "model": conversation.model,
        "provider": conversation.provider,
        "transport": conversation.transport,
        "dialect": conversation.dialect,
        "started_at": conversation.started_at.isoformat(),
        "ended_at": conversation.ended_at.isoformat() if conversation.ended_at else None,
        "end_reason": conversation.end_reason,
        "usage": {
            "input_audio_ms": conversation.input_audio_ms,
            "output_audio_ms": conversation.output_audio_ms,
            "text_tokens_in": conversation.text_tokens_in,
            "text_tokens_out": conversation.text_tokens_out,
        },
        "items": [_item_dict(item) for item in conversation.items.all()],
    }


def transcript_as_text(conversation: Conversation) -> str:
    """A readable transcript: one line per item, speaker first."""
    lines = [
        f"Conversation {conversation.id}",
        f"User: {conversation.user_id or '-'}  Character: "
        f"{conversation.character.slug if conversation.character else '-'}  "
        f"Model: {conversation.model or '-'}",
        f"Started: {conversation.started_at.isoformat()}",
        "",
    ]
    for item in conversation.items.all():
        if item.type == ConversationItem.Type.MESSAGE:
            suffix = " [interrupted]" if item.truncated_at_ms is not None else ""
            lines.append(f"{item.role}: {item.text}{suffix}")
        elif item.type == ConversationItem.Type.FUNCTION_CALL:
            lines.append(f"function call {item.name}({item.arguments})")
        else:
            lines.append(f"function output: {item.output}")
    return "\n".join(lines) + "\n"
