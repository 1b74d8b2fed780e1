"""Read-side checks on licenses."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import F, Q, Sum
from django.utils import timezone

from apps.conversations.selectors import license_audio_ms_this_month, month_start

from .models import License


def license_get(*, license_id: int) -> License | None:
    """The license as the database holds it now (None if it was deleted)."""
    return License.objects.filter(pk=license_id).first()


def license_quota_exhausted(*, license: License, now: datetime | None = None) -> bool:
    """Whether the license has used up its monthly audio minutes (False when unlimited)."""
    if license.monthly_audio_minutes_quota is None:
        return False
    used_ms = license_audio_ms_this_month(license_id=license.pk, now=now)
    return used_ms >= license.monthly_audio_minutes_quota * 60_000


def license_quota_exhausted_ids(
    *, license_ids: Iterable[int], now: datetime | None = None
) -> set[int]:
    """Which of these licenses have used up their monthly audio minutes (one query).

    For checking quotas while sessions run: one aggregate over all the licenses a worker
    serves rather than one query per license.
    """
    ids = sorted(set(license_ids))
    if not ids:
        return set()
    now = now or timezone.now()
    since = month_start(now)
    used = Sum(
        F("conversations__input_audio_ms") + F("conversations__output_audio_ms"),
        filter=Q(conversations__started_at__gte=since),
    )
    rows = (
        License.objects.filter(pk__in=ids, monthly_audio_minutes_quota__isnull=False)
        .order_by()
        .annotate(used_ms=used)
        .values_list("pk", "monthly_audio_minutes_quota", "used_ms")
    )
    return {pk for pk, quota, used_ms in rows if int(used_ms or 0) >= quota * 60_000}


def license_unusable_reasons(
    *, license_ids: Iterable[int], now: datetime | None = None
) -> dict[int, str]:
    """Why each of these licenses can no longer be used, for those that cannot (one query).

    Returns:
        ``{license id: "revoked" | "disabled" | "expired" | "deleted"}``; usable licenses
        are left out.
    """
    ids = set(license_ids)
    if not ids:
        return {}
    now = now or timezone.now()
    reasons: dict[int, str] = {}
    found: set[int] = set()
    for license in License.objects.filter(pk__in=ids).order_by():
        found.add(license.pk)
        status = license.status(now)
        if status != "active":
            reasons[license.pk] = status
    for missing in ids - found:
        reasons[missing] = "deleted"
    return reasons


def licenses_by_ref(*, ref: str, limit: int = 2) -> list[License]:
    """Licenses matching an operator's reference: a numeric id or a key prefix (``lic_…``)."""
    ref = ref.strip()
    found = (
        License.objects.filter(pk=int(ref))
        if ref.isdigit()
        else License.objects.filter(key_prefix=ref)
    )
    return list(found[:limit])


def talk_page_license(*, now: datetime | None = None) -> License | None:
    """The license the public talk page mints its visitors' secrets from, if any.

    The operator ticks ``serves_talk_page`` in the admin; of several ticked, the newest
    one that is usable now wins.
    """
    now = now or timezone.now()
    return (
        License.objects.filter(serves_talk_page=True, active=True, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("-created_at")
        .first()
    )
