"""Read-side queries on conversations."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from .models import Conversation, ConversationItem


def month_start(now: datetime) -> datetime:
    """Return the first instant of ``now``'s calendar month, in the current time zone."""
    local = timezone.localtime(now)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def license_audio_ms_this_month(*, license_id: int, now: datetime | None = None) -> int:
    """Input + output audio milliseconds of a license's sessions started this month."""
    now = now or timezone.now()
    totals = Conversation.objects.filter(
        license_id=license_id, started_at__gte=month_start(now)
    ).aggregate(inp=Sum("input_audio_ms"), out=Sum("output_audio_ms"))
    return int(totals["inp"] or 0) + int(totals["out"] or 0)


def license_live_sessions(*, license_id: int, stale_s: int, now: datetime | None = None) -> int:
    """Sessions of a license that hold a slot: not ended, and heartbeating.

    Shared by every worker through the database. A session whose heartbeat is older than
    ``stale_s`` does not count, however it ended (a killed worker, a hung event loop).
    """
    now = now or timezone.now()
    return Conversation.objects.filter(
        license_id=license_id,
        ended_at__isnull=True,
        heartbeat_at__gte=now - timedelta(seconds=stale_s),
    ).count()


def user_recent_messages(*, license_id: int, user_id: str, limit: int) -> list[tuple[str, str]]:
    """The last ``limit`` (role, text) messages of one end user's earlier sessions, oldest first.

    Function calls and empty or system items are left out; truncated assistant items hold
    only what was heard, since that is what is saved.
    """
    if not user_id or limit <= 0:
        return []
    rows = (
        ConversationItem.objects.filter(
            conversation__license_id=license_id,
            conversation__user_id=user_id,
            type=ConversationItem.Type.MESSAGE,
            role__in=[ConversationItem.Role.USER, ConversationItem.Role.ASSISTANT],
        )
        .exclude(text="")
        .order_by("-conversation__started_at", "-position")
        .values_list("role", "text")[:limit]
    )
    return [(role, text) for role, text in reversed(list(rows))]


def user_conversations(*, license_id: int, user_id: str, limit: int) -> list[Conversation]:
    """One end user's latest conversations that said something, newest first.

    Each carries ``message_count`` and ``first_text`` (the first message, for a title).
    """
    if not user_id:
        return []
    messages = ConversationItem.objects.filter(
        type=ConversationItem.Type.MESSAGE,
        role__in=[ConversationItem.Role.USER, ConversationItem.Role.ASSISTANT],
    ).exclude(text="")
    first = messages.filter(conversation=OuterRef("pk")).order_by("position").values("text")[:1]
    return list(
        Conversation.objects.filter(license_id=license_id, user_id=user_id)
        .annotate(
            message_count=Count(
                "items",
                filter=Q(
                    items__type=ConversationItem.Type.MESSAGE,
                    items__role__in=[ConversationItem.Role.USER, ConversationItem.Role.ASSISTANT],
                )
                & ~Q(items__text=""),
            ),
            first_text=Subquery(first),
        )
        .filter(message_count__gt=0)
        .select_related("character")
        .order_by("-started_at")[:limit]
    )


def user_conversation_get(
    *, license_id: int, user_id: str, conversation_id: str
) -> Conversation | None:
    """One of this end user's conversations; None for anyone else's (or none at all)."""
    if not user_id:
        return None
    return (
        Conversation.objects.filter(pk=conversation_id, license_id=license_id, user_id=user_id)
        .select_related("character")
        .first()
    )


def conversation_messages(*, conversation_id: str) -> list[ConversationItem]:
    """A conversation's user and assistant messages, in order (what its transcript shows)."""
    return list(
        ConversationItem.objects.filter(
            conversation_id=conversation_id,
            type=ConversationItem.Type.MESSAGE,
            role__in=[ConversationItem.Role.USER, ConversationItem.Role.ASSISTANT],
        )
        .exclude(text="")
        .order_by("position")
    )
