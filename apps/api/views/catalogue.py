"""Voices and characters a license can use: /v1/realtime/voices, voiceList, characters."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from apps.avatar.look import full_look
from apps.avatar.models import Character
from apps.avatar.selectors import character_list_active
from apps.voice.models import Voice
from apps.voice.selectors import voice_list_visible

from ..auth import api_endpoint


def _user_id(request: HttpRequest) -> str:
    return (request.GET.get("user_id") or request.GET.get("userId") or "").strip()[:128]


def _voice(voice: Voice) -> dict[str, Any]:
    return {
        "id": voice.slug,
        "object": "realtime.voice",
        "name": voice.display_name,
        "languages": voice.languages,
        "gender": voice.gender,
        "description": voice.description,
        "builtin": voice.builtin,
        "owner_user_id": voice.owner_user_id or None,
        # Not an OpenAI field: the terms of the voice's model and data (null when unknown),
        # so an integrator can tell which voices a commercial product may use.
        "license": voice.license_name or None,
    }


@api_endpoint(["GET"])
def voice_list(request: HttpRequest) -> JsonResponse:
    """OpenAI-style list of the voices this key (and ``?user_id=``) may use."""
    voices = voice_list_visible(license_id=request.license.pk, user_id=_user_id(request))  # type: ignore[attr-defined]
    return JsonResponse({"object": "list", "data": [_voice(v) for v in voices]})


@api_endpoint(["GET"])
def voice_list_xstar(request: HttpRequest) -> JsonResponse:
    """The xStar ``voiceList`` (seed 002): the names ``session.update``'s ``voice`` accepts.

    A JSON array, one object per voice, ``name`` being what to send as ``voice``.
    """
    voices = voice_list_visible(license_id=request.license.pk, user_id=_user_id(request))  # type: ignore[attr-defined]
    data = [
        {
            "name": v.slug,
            "displayName": v.display_name,
            "languages": v.languages,
            "gender": v.gender,
            "description": v.description,
            "custom": not v.builtin,
            "license": v.license_name or None,
        }
        for v in voices
    ]
    return JsonResponse(data, safe=False)


def _character(request: HttpRequest, character: Character) -> dict[str, Any]:
    portrait = request.build_absolute_uri(character.portrait.url) if character.portrait else None
    return {
        "id": character.slug,
        "object": "realtime.character",
        "name": character.display_name,
        "description": character.description,
        "default_voice": character.default_voice.slug if character.default_voice else None,
        "look": full_look(character.look),
        "portrait_url": portrait,
    }


@api_endpoint(["GET"])
def character_list(request: HttpRequest) -> JsonResponse:
    """The active characters (``characterName`` values for ``/api/realtime-api``)."""
    characters = character_list_active()
    return JsonResponse({"object": "list", "data": [_character(request, c) for c in characters]})
