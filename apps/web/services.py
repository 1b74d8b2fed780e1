"""The talk page's secrets: a short-lived realtime secret for a visitor, minted server-side.

The browser never sees a license key: it asks this service (same origin) for an ephemeral
secret of the license the operator ticked for the talk page, bound to the visitor's id and
carrying the session the visitor picked (voice, transcription language, turn detection).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.avatar.selectors import character_get_active
from apps.licensing import throttle
from apps.licensing.selectors import talk_page_license
from apps.realtime.services import MintRefused, MintRequest, realtime_client_secret_mint

LANGUAGES = ("auto", "en", "zh")
MODES = ("vad", "ptt")


class TalkRefused(Exception):
    """The secret cannot be minted; an OpenAI-shaped error says why."""

    def __init__(self, message: str, code: str, *, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.param = param


@dataclass(frozen=True, slots=True)
class TalkRequest:
    """What the talk page asks for (already type-checked by the view)."""

    visitor_id: str
    client_ip: str
    character: str | None = None
    voice: str | None = None
    language: str | None = None
    mode: str | None = None


def _throttle(who: str, limit: int) -> None:
    """At most ``limit`` secrets in any minute for ``who`` (a visitor, or an address)."""
    decision = throttle.admit("talkmint", who, limit)
    if not decision.allowed:
        raise TalkRefused(
            f"Too many connection attempts. Try again in {decision.retry_after_s} s.",
            "rate_limit_exceeded",
            status=429,
        )


def talk_session(request: TalkRequest) -> dict[str, Any]:
    """The GA session config a talk-page secret carries."""
    audio_input: dict[str, Any] = {
        "transcription": {"model": "whisper-1"},
        "turn_detection": None if request.mode == "ptt" else {"type": "server_vad"},
    }
    if request.language and request.language != "auto":
        audio_input["transcription"]["language"] = request.language
    session: dict[str, Any] = {"type": "realtime", "audio": {"input": audio_input}}
    if request.voice:
        session["audio"]["output"] = {"voice": request.voice}
    return session


def talk_secret_mint(request: TalkRequest) -> dict[str, Any]:
    """Mint a secret of the talk page's license for one visitor.

    Runs in a worker thread (ORM).

    Returns:
        ``{"value", "expires_at", "user_id", "session"}``.

    Raises:
        TalkRefused: Bad choice (400), unknown character (404), too many attempts (429),
            or no license configured for the talk page (503).
    """
    if request.language is not None and request.language not in LANGUAGES:
        raise TalkRefused(
            f"'language' must be one of {', '.join(LANGUAGES)}.", "invalid_value", param="language"
        )
    if request.mode is not None and request.mode not in MODES:
        raise TalkRefused(
            f"'mode' must be one of {', '.join(MODES)}.", "invalid_value", param="mode"
        )
    license = talk_page_license()
    if license is None:
        raise TalkRefused(
            "This server has no license set up for its talk page. Paste a license key, or ask "
            "the operator to tick 'Serves talk page' on a license in the admin.",
            "talk_page_not_configured",
            status=503,
        )
    if request.character and character_get_active(slug=request.character) is None:
        raise TalkRefused(
            f"Unknown character '{request.character[:64]}'.",
            "character_not_found",
            status=404,
            param="character",
        )
    _throttle(f"v:{request.visitor_id}", settings.WEB_TALK_SECRETS_PER_MINUTE)
    # Per address too (new visitors are free to make), with room for a household or an
    # office behind one NAT address.
    _throttle(
        f"ip:{throttle.subject(request.client_ip)}",
        settings.WEB_TALK_SECRETS_PER_ADDRESS_PER_MINUTE,
    )
    body = {
        "expires_after": {"anchor": "created_at", "seconds": settings.WEB_TALK_SECRET_TTL_S},
        "session": talk_session(request),
    }
    try:
        payload = realtime_client_secret_mint(
            MintRequest(license=license, body=body, dialect="ga", user_id=request.visitor_id)
        )
    except MintRefused as exc:
        raise TalkRefused(
            exc.error.message,
            exc.error.code or "invalid_value",
            status=exc.status,
            param=exc.error.param,
        ) from None
    return {
        "value": payload["value"],
        "expires_at": payload["expires_at"],
        "user_id": request.visitor_id,
        "session": payload["session"],
    }
