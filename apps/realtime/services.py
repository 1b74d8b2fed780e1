"""Minting ephemeral client secrets: validate a session config, then store it with a secret.

Both the GA (``POST /v1/realtime/client_secrets``) and beta (``POST /v1/realtime/sessions``)
endpoints land here; only ``protocol.codec`` knows how their bodies differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from apps.agent.routing import UnknownModel, resolve_model
from apps.core.ids import session_id
from apps.licensing.models import License
from apps.licensing.selectors import license_quota_exhausted
from apps.licensing.services import client_secret_create
from apps.voice.selectors import voice_get_visible

from .protocol.codec import (
    CodecError,
    Dialect,
    parse_session_config,
    session_to_beta,
    session_to_ga,
)
from .protocol.errors import ProtocolError, protocol_error_from_validation
from .protocol.session_config import apply_patch, session_defaults


class MintRefused(Exception):
    """The request is understood but refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, error: ProtocolError, *, status: int = 400) -> None:
        super().__init__(error.message)
        self.error = error
        self.status = status


class _ExpiresAfter(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    anchor: Literal["created_at"] = "created_at"
    # OpenAI's documented bounds; the default (when omitted) comes from settings.
    seconds: int | None = Field(default=None, ge=10, le=7200)


class _ClientSecretRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    expires_after: _ExpiresAfter | None = None
    session: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class MintRequest:
    """What an edge hands over after authentication."""

    license: License
    body: dict[str, Any]
    dialect: Dialect
    user_id: str = ""


def _param(dialect: Dialect, ga: str, beta: str) -> str:
    return ga if dialect == "ga" else beta


def _validated_session(request: MintRequest) -> tuple[dict[str, Any], int]:
    """Return the full canonical session config and the secret's lifetime in seconds."""
    body = request.body
    if request.dialect == "ga":
        try:
            envelope = _ClientSecretRequest.model_validate(body)
        except ValidationError as exc:
            raise MintRefused(protocol_error_from_validation(exc)) from None
        seconds = envelope.expires_after.seconds if envelope.expires_after else None
        ttl_s = seconds or settings.REALTIME_GA_SECRET_TTL_S
        raw_session = envelope.session if envelope.session is not None else {"type": "realtime"}
        patch = parse_session_config(raw_session, dialect="ga", prefix="session")
    else:
        patch = parse_session_config(body, dialect="beta", prefix=None)
        expires = (body.get("client_secret") or {}).get("expires_after") or {}
        ttl_s = expires.get("seconds") or settings.REALTIME_BETA_SECRET_TTL_S
    defaults = session_defaults(
        instructions=settings.REALTIME_DEFAULT_INSTRUCTIONS, voice=settings.REALTIME_DEFAULT_VOICE
    )
    return apply_patch(defaults, patch), ttl_s


def _check_model(session: dict[str, Any], dialect: Dialect) -> None:
    try:
        route = resolve_model(session["model"])
    except UnknownModel as exc:
        raise MintRefused(
            ProtocolError(exc.message, _param(dialect, "session.model", "model"), "model_not_found")
        ) from None
    if not session["model"]:
        session["model"] = route.qualified


def _check_voice(session: dict[str, Any], request: MintRequest) -> None:
    voice = session["audio"]["output"]["voice"]
    name = voice["id"] if isinstance(voice, dict) else voice
    found = voice_get_visible(name=name, license_id=request.license.pk, user_id=request.user_id)
    if found is None:
        raise MintRefused(
            ProtocolError(
                f"Unknown voice '{name}'. "
                "GET /v1/realtime/voices lists the voices this key can use.",
                _param(request.dialect, "session.audio.output.voice", "voice"),
                "invalid_value",
            )
        )


def realtime_client_secret_mint(request: MintRequest) -> dict[str, Any]:
    """Validate the request and mint a secret; return the response body for the dialect.

    Raises:
        MintRefused: Invalid config (400, naming the field) or quota used up (429).
    """
    try:
        session, ttl_s = _validated_session(request)
    except CodecError as exc:
        raise MintRefused(exc.error) from None
    _check_model(session, request.dialect)
    _check_voice(session, request)
    if license_quota_exhausted(license=request.license):
        raise MintRefused(
            ProtocolError(
                "You exceeded your monthly audio quota for this license.",
                None,
                "insufficient_quota",
            ),
            status=429,
        )
    issued = client_secret_create(
        license=request.license,
        session_config=session,
        ttl_s=ttl_s,
        dialect=request.dialect,
        user_id=request.user_id,
        now=timezone.now(),
    )
    expires_at = int(issued.client_secret.expires_at.timestamp())
    sid = session_id()
    if request.dialect == "ga":
        return {
            "value": issued.value,
            "expires_at": expires_at,
            "session": session_to_ga(session, session_id=sid),
        }
    return {
        **session_to_beta(session, session_id=sid),
        "client_secret": {"value": issued.value, "expires_at": expires_at},
    }
