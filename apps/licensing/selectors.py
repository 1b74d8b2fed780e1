"""Read-side checks on licenses."""

from __future__ import annotations

from datetime import datetime

from apps.conversations.selectors import license_audio_ms_this_month

from .models import License


def license_quota_exhausted(*, license: License, now: datetime | None = None) -> bool:
    """Whether the license has used up its monthly audio minutes (False when unlimited)."""
    if license.monthly_audio_minutes_quota is None:
        return False
    used_ms = license_audio_ms_this_month(license_id=license.pk, now=now)
    return used_ms >= license.monthly_audio_minutes_quota * 60_000
