"""Pages for end users: home, the talk page, history, the seed-002 demo, character stills.

Edges only: they read the request, call selectors and ``services.talk_secret_mint``, and
render. The talk page's JavaScript (``static/talk/``) does the talking, straight to the
realtime API with a secret this module's ``talk_secret`` view mints.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from apps.api.errors import error_response
from apps.avatar.look import full_look
from apps.avatar.models import Character
from apps.avatar.preview import preview_png
from apps.avatar.selectors import character_get_active, character_list_active
from apps.conversations.selectors import (
    conversation_messages,
    user_conversation_get,
    user_conversations,
)
from apps.core import safe_json
from apps.core.net import client_address
from apps.licensing.selectors import talk_page_license
from apps.voice.models import Voice
from apps.voice.selectors import voice_list_builtin, voice_list_visible

from .services import LANGUAGES, MODES, TalkRefused, TalkRequest, talk_secret_mint
from .visitor import with_visitor

TRANSPORTS = ("webrtc", "websocket")
MAX_SECRET_BODY_BYTES = 4096
STILL_SIZES = (96, 192, 384)
# A still is re-rendered only when the character changes (the URL carries updated_at).
STILL_MAX_AGE_S = 24 * 3600


def _voices(license_id: int | None, user_id: str) -> list[Voice]:
    if license_id is None:
        return list(voice_list_builtin())
    return list(voice_list_visible(license_id=license_id, user_id=user_id))


def _still_url(character: Character, size: int = 192) -> str:
    version = int(character.updated_at.timestamp()) if character.updated_at else 0
    url = reverse("web-character-still", args=[character.slug])
    return f"{url}?{urlencode({'size': size, 'v': version})}"


def _kind(character: Character) -> str:
    return "portrait" if character.portrait and character.face_points else "drawn"


def _language_of(voice: Voice | None) -> str:
    languages = list(voice.languages) if voice is not None else []
    return languages[0] if len(languages) == 1 and languages[0] in LANGUAGES else "auto"


@require_GET
@with_visitor
def index(request: HttpRequest) -> HttpResponse:
    """Pick a character, a voice, a language, a transport and a mode; then talk."""
    license = talk_page_license()
    characters = [
        {"character": c, "look": full_look(c.look), "still": _still_url(c), "kind": _kind(c)}
        for c in character_list_active()
    ]
    context = {
        "characters": characters,
        "voices": _voices(license.pk if license else None, request.visitor_id),  # type: ignore[attr-defined]
        "has_talk_license": license is not None,
        "api_base": request.build_absolute_uri("/v1"),
    }
    return render(request, "web/index.html", context)


@require_GET
def talk_start(request: HttpRequest) -> HttpResponse:
    """The home page's form (``?character=``): on to that character's talk page."""
    slug = request.GET.get("character", "")
    if character_get_active(slug=slug) is None:
        return redirect("web-index")
    query = {
        k: request.GET[k] for k in ("voice", "lang", "transport", "mode") if request.GET.get(k)
    }
    url = reverse("web-talk", args=[slug])
    return redirect(f"{url}?{urlencode(query)}" if query else url)


def _choice(request: HttpRequest, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.GET.get(name, "")
    return value if value in allowed else default


@require_GET
@with_visitor
def talk(request: HttpRequest, slug: str) -> HttpResponse:
    """The page a visitor talks to one character in (``static/talk/talk.js`` runs it)."""
    character = character_get_active(slug=slug)
    if character is None:
        raise Http404("No such character.")
    license = talk_page_license()
    visitor: str = request.visitor_id  # type: ignore[attr-defined]
    voices = _voices(license.pk if license else None, visitor)
    voice_ids = tuple(v.slug for v in voices)
    default_voice = character.default_voice.slug if character.default_voice else ""
    voice = request.GET.get("voice", "")
    if voice not in voice_ids:
        voice = default_voice if default_voice in voice_ids else (voice_ids[0] if voices else "")
    chosen = next((v for v in voices if v.slug == voice), None)
    config: dict[str, Any] = {
        "character": {
            "slug": character.slug,
            "name": character.display_name,
            "description": character.description,
            "kind": _kind(character),
            "still": _still_url(character, 384),
        },
        "voice": voice,
        "voices": [
            {"id": v.slug, "name": v.display_name, "language": (v.languages or [""])[0]}
            for v in voices
        ],
        "language": _choice(request, "lang", LANGUAGES, _language_of(chosen)),
        "transport": _choice(request, "transport", TRANSPORTS, "webrtc"),
        "mode": _choice(request, "mode", MODES, "vad"),
        "userId": visitor,
        "hasTalkLicense": license is not None,
        "urls": {
            "secret": reverse("web-talk-secret"),
            "calls": "/v1/realtime/calls",
            "realtime": "/v1/realtime",
            "iwebrtc": "/iwebrtc",
            "clientSecrets": "/v1/realtime/client_secrets",
            "history": reverse("web-history"),
            "home": reverse("web-index"),
        },
    }
    return render(request, "web/talk.html", {"character": character, "config": config})


def _same_origin(request: HttpRequest) -> bool:
    """Whether a POST came from this site's own pages.

    Browsers send ``Origin`` with every POST (fetch included); it must name this site, or a
    CSRF-trusted origin. This replaces the CSRF token for this JSON endpoint: a page of
    another site can neither forge ``Origin`` nor send a JSON body without a preflight.
    """
    origin = request.headers.get("Origin")
    if not origin:
        return False
    own = f"{request.scheme}://{request.get_host()}"
    return origin.rstrip("/").lower() in {
        own.lower(),
        *map(str.lower, settings.CSRF_TRUSTED_ORIGINS),
    }


@csrf_exempt
@require_POST
@with_visitor
def talk_secret(request: HttpRequest) -> JsonResponse:
    """Mint a short-lived realtime secret for this visitor (``services.talk_secret_mint``)."""
    if not _same_origin(request):
        return error_response(
            "Ask for a secret from this site's own pages.", status=403, code="origin_not_allowed"
        )
    if request.content_type != "application/json":
        return error_response(
            "Send a JSON body (Content-Type: application/json).", status=400, code="invalid_request"
        )
    if len(request.body) > MAX_SECRET_BODY_BYTES:
        return error_response("The body is too large.", status=400, code="invalid_request")
    try:
        body = safe_json.loads(request.body or b"{}")
    except safe_json.JsonRejected as exc:
        return error_response(
            f"The body is not valid JSON: {exc.detail}", status=400, code="invalid_json"
        )
    if not isinstance(body, dict):
        return error_response("The body must be a JSON object.", status=400, code="invalid_request")
    fields: dict[str, str | None] = {}
    for name in ("character", "voice", "language", "mode"):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > 64):
            return error_response(
                f"'{name}' must be a string of at most 64 characters.",
                status=400,
                code="invalid_value",
                param=name,
            )
        fields[name] = value or None
    request_ = TalkRequest(
        visitor_id=request.visitor_id,  # type: ignore[attr-defined]
        client_ip=client_address(request.META.get("REMOTE_ADDR"), request.headers),
        **fields,
    )
    try:
        payload = talk_secret_mint(request_)
    except TalkRefused as exc:
        return error_response(exc.message, status=exc.status, code=exc.code, param=exc.param)
    response = JsonResponse(payload)
    # The body is a live credential: no cache along the way may keep it.
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@with_visitor
def history(request: HttpRequest) -> HttpResponse:
    """This visitor's past conversations with the talk page (newest first)."""
    license = talk_page_license()
    conversations = (
        user_conversations(
            license_id=license.pk,
            user_id=request.visitor_id,  # type: ignore[attr-defined]
            limit=settings.WEB_HISTORY_CONVERSATIONS,
        )
        if license is not None
        else []
    )
    return render(request, "web/history.html", {"conversations": conversations})


@require_GET
@with_visitor
def history_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """One conversation's transcript: an HTMX partial, or a whole page when visited directly.

    Only the visitor's own conversations are found; any other id is a 404, the same as an
    id that does not exist.
    """
    license = talk_page_license()
    conversation = (
        user_conversation_get(
            license_id=license.pk,
            user_id=request.visitor_id,  # type: ignore[attr-defined]
            conversation_id=conversation_id[:64],
        )
        if license is not None
        else None
    )
    if conversation is None:
        raise Http404("No such conversation.")
    context = {
        "conversation": conversation,
        "messages": conversation_messages(conversation_id=conversation.pk),
    }
    if request.headers.get("HX-Request") == "true":
        return render(request, "web/_transcript.html", context)
    return render(request, "web/history_detail.html", context)


@require_GET
@with_visitor
def demo(request: HttpRequest) -> HttpResponse:
    """The seed-002 example (RealtimeClient + WavRecorder + WavStreamPlayer), run as is."""
    scheme = "wss" if request.is_secure() else "ws"
    config = {
        "userId": request.visitor_id,  # type: ignore[attr-defined]
        "secretUrl": reverse("web-talk-secret"),
        "realtimeUrl": f"{scheme}://{request.get_host()}/v1/realtime",
        "hasTalkLicense": talk_page_license() is not None,
    }
    return render(request, "web/demo.html", {"config": config})


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``: browsers ask for it on pages that name no icon (the admin's)."""
    return redirect(static("favicon.svg"), permanent=True)


@require_GET
def character_still(request: HttpRequest, slug: str) -> HttpResponse:
    """A still PNG of an active character (the home page's cards, the talk page's poster)."""
    character = character_get_active(slug=slug)
    if character is None:
        raise Http404("No such character.")
    try:
        size = int(request.GET.get("size", "192"))
    except ValueError:
        size = 192
    size = min(STILL_SIZES, key=lambda s: abs(s - size))
    buffer = io.BytesIO()
    # A frame between words of the preview loop: mouth at rest, eyes open.
    preview_png(character, t_ms=0.0, size=size, out=buffer)
    response = HttpResponse(buffer.getvalue(), content_type="image/png")
    response["Cache-Control"] = f"public, max-age={STILL_MAX_AGE_S}"
    return response
