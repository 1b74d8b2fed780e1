"""Read-side queries on characters."""

from __future__ import annotations

from .models import Character


def character_get_active(*, slug: str) -> Character | None:
    """The active character with this slug (NavTalk's ``characterName``), if any."""
    return Character.objects.filter(slug=slug, active=True).select_related("default_voice").first()
