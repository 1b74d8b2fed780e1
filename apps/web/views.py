"""Pages for end users."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.avatar.look import full_look
from apps.avatar.models import Character


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The landing page: what this server is, its characters, and where to go next."""
    characters = [
        {"character": c, "look": full_look(c.look)}
        for c in Character.objects.filter(active=True).select_related("default_voice")
    ]
    return render(request, "web/index.html", {"characters": characters})
