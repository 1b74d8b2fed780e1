"""Persist conversations item by item. Called by session edges, never on the audio path."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from .models import Conversation, ConversationItem

ITEM_FIELDS = (
    "type",
    "role",
    "status",
    "text",
    "audio_ms",
    "truncated_at_ms",
    "call_id",
    "name",
    "arguments",
    "output",
)


@dataclass(frozen=True, slots=True)
class UsageDelta:
    """Usage to add to a conversation's counters."""

    input_audio_ms: int = 0
    output_audio_ms: int = 0
    text_tokens_in: int = 0
    text_tokens_out: int = 0


def conversation_start(
    *,
    license_id: int | None,
    transport: str,
    dialect: str = Conversation.Dialect.GA,
    user_id: str = "",
    character_id: int | None = None,
    model: str = "",
    provider: str = "",
    conversation_id: str | None = None,
) -> Conversation:
    """Create the row for a new session."""
    conversation = Conversation(
        license_id=license_id,
        transport=transport,
        dialect=dialect,
        user_id=user_id,
        character_id=character_id,
        model=model,
        provider=provider,
    )
    if conversation_id:
        conversation.id = conversation_id
    conversation.save(force_insert=True)
    return conversation


def conversation_item_save(
    *, conversation_id: str, item_id: str, **fields: Any
) -> ConversationItem:
    """Insert or update one item, keyed by its item id (idempotent).

    A new item goes after the last one; saving the same ``item_id`` again (e.g. an assistant
    item first saved in progress, then truncated and completed) updates it in place.
    """
    unknown = set(fields) - set(ITEM_FIELDS)
    if unknown:
        raise TypeError(f"unknown item fields: {sorted(unknown)}")
    now = timezone.now()
    with transaction.atomic():
        existing = (
            ConversationItem.objects.select_for_update()
            .filter(conversation_id=conversation_id, item_id=item_id)
            .first()
        )
        if existing is not None:
            for name, value in fields.items():
                setattr(existing, name, value)
            existing.updated_at = now
            existing.save()
            return existing
        last = ConversationItem.objects.filter(conversation_id=conversation_id).aggregate(
            last=Max("position")
        )["last"]
        return ConversationItem.objects.create(
            conversation_id=conversation_id,
            item_id=item_id,
            position=0 if last is None else last + 1,
            created_at=now,
            updated_at=now,
            **fields,
        )


def conversation_add_usage(*, conversation_id: str, usage: UsageDelta) -> None:
    """Add to the usage counters atomically (safe with several writers)."""
    Conversation.objects.filter(pk=conversation_id).update(
        input_audio_ms=F("input_audio_ms") + usage.input_audio_ms,
        output_audio_ms=F("output_audio_ms") + usage.output_audio_ms,
        text_tokens_in=F("text_tokens_in") + usage.text_tokens_in,
        text_tokens_out=F("text_tokens_out") + usage.text_tokens_out,
    )


def conversation_end(*, conversation_id: str, reason: str, now: datetime | None = None) -> None:
    """Mark a session ended (first call wins; later calls keep the original reason)."""
    Conversation.objects.filter(pk=conversation_id, ended_at__isnull=True).update(
        ended_at=now or timezone.now(), end_reason=reason
    )
