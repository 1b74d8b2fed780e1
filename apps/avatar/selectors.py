"""Read-side queries on characters."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Character


def character_get_active(*, slug: str) -> Character | None:
    """The active character with this slug (NavTalk's ``characterName``), if any."""
    return Character.objects.filter(slug=slug, active=True).select_related("default_voice").first()


def character_list_active() -> QuerySet[Character]:
    """Every active character, with its default voice (NavTalk's list, the home page)."""
    return Character.objects.filter(active=True).select_related("default_voice")
