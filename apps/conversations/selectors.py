"""Read-side queries on conversations."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Sum
from django.utils import timezone

from .models import Conversation


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
