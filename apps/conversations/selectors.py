"""Read-side queries on conversations."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Sum
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
