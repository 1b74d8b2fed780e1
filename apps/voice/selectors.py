"""Which voices a license (and one of its end users) may use."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import Voice


def voice_list_builtin() -> QuerySet[Voice]:
    """The active built-in voices (what any license may use)."""
    return Voice.objects.filter(builtin=True, active=True).order_by("slug")


def voice_list_visible(*, license_id: int, user_id: str = "") -> QuerySet[Voice]:
    """Active built-in voices plus the license's own (license-wide, or this user's)."""
    owned = Q(builtin=False, owner_license_id=license_id, owner_user_id="")
    if user_id:
        owned |= Q(builtin=False, owner_license_id=license_id, owner_user_id=user_id)
    return Voice.objects.filter(Q(builtin=True) | owned, active=True).order_by("-builtin", "slug")


def voice_get_visible(*, name: str, license_id: int, user_id: str = "") -> Voice | None:
    """Resolve a voice name (slug) for a license/user; an owned voice shadows a built-in one."""
    matches = list(voice_list_visible(license_id=license_id, user_id=user_id).filter(slug=name))
    if not matches:
        return None
    # Prefer the most specific owner: the user's voice, then the license's, then built-in.
    matches.sort(key=lambda v: (v.builtin, v.owner_user_id == ""))
    return matches[0]
