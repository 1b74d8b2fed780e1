"""Who may open a realtime session, and on what terms: the service behind the edges.

The WebSocket consumer (and later the WebRTC views) parse what the client presented into a
``Handshake``, call ``realtime_admit`` once and answer. Everything between is here: the
credential, the origin and host rules, which end user the session belongs to, the starting
config, the character, and the license's limits. The last step creates the session's row,
in one atomic step with the concurrency check (``licensing.admission``), so a refusal
never leaves a row behind and two workers admitting at once never exceed the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from apps.agent.base import ChatMessage
from apps.avatar.selectors import character_get_active
from apps.conversations.selectors import user_recent_messages
from apps.core.net import client_address
from apps.licensing.admission import AdmissionRefused, session_admit
from apps.licensing.gate import TooManyFailures, authenticate
from apps.licensing.services import AuthenticationFailed, Credential

from .protocol.codec import Dialect
from .protocol.session_config import apply_patch, session_defaults

KEY_SUBPROTOCOL = "openai-insecure-api-key."
BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
MAX_USER_ID_CHARS = 128


class Refused(Exception):
    """The connection cannot become a session; the error event says why."""

    def __init__(self, message: str, code: str, *, error_type: str = "invalid_request_error"):
        super().__init__(message)
        self.message = message
        self.code = code
        self.error_type = error_type


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the client presented when it connected."""

    key: str | None
    key_source: str
    """Where the key came from: ``header``, ``subprotocol``, ``query`` or ``none``."""
    key_from_browser: bool
    origin: str | None
    host: str | None
    dialect: Dialect
    query: dict[str, str]
    offered_realtime: bool
    client_ip: str


def handshake_parse(scope: dict[str, Any], *, navtalk: bool) -> Handshake:
    """Read credentials, dialect and parameters from an ASGI WebSocket scope."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    protocols = list(scope.get("subprotocols") or [])
    key, source, from_browser = None, "none", False
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        key, source = token.strip(), "header"
    for proto in protocols:
        if key is None and proto.startswith(KEY_SUBPROTOCOL):
            key, source, from_browser = proto[len(KEY_SUBPROTOCOL) :], "subprotocol", True
    if key is None and (query.get("api_key") or query.get("license")):
        key, source = query.get("api_key") or query.get("license"), "query"
        from_browser = "origin" in headers
    beta = (
        navtalk
        or "realtime=v1" in headers.get("openai-beta", "").replace(" ", "")
        or BETA_SUBPROTOCOL in protocols
    )
    client = scope.get("client") or [None]
    return Handshake(
        key=key,
        key_source=source,
        key_from_browser=from_browser,
        origin=headers.get("origin"),
        host=headers.get("host"),
        dialect="beta" if beta else "ga",
        query=query,
        offered_realtime="realtime" in protocols,
        client_ip=client_address(client[0], headers),
    )


@dataclass(slots=True)
class Admitted:
    """An authenticated, admitted connection: everything needed to build the session."""

    credential: Credential
    config: dict[str, Any]
    user_id: str
    character_id: int | None
    history: list[ChatMessage]


def _allowed_hosts() -> list[str]:
    # As Django's HttpRequest.get_host(): with DEBUG and no ALLOWED_HOSTS, loopback only.
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]
    return list(settings.ALLOWED_HOSTS)


def host_allowed(host: str | None) -> bool:
    """Whether a ``Host`` header names this server (``ALLOWED_HOSTS``, as for HTTP).

    A missing header is allowed: browsers always send one, so only non-browser clients
    (which the origin rules do not concern) can leave it out, and the same-origin rule
    never matches without it.
    """
    if host is None:
        return True
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, _allowed_hosts())


def _same_origin(origin: str, host: str | None) -> bool:
    if not host:
        return False
    return origin.split("://", 1)[-1].rstrip("/").lower() == host.lower()


def _authenticate(hs: Handshake) -> Credential:
    if not hs.key:
        raise Refused(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>', the "
            "'openai-insecure-api-key.<key>' subprotocol, or ?api_key=.",
            "missing_api_key",
        )
    if hs.key_source == "query" and not settings.REALTIME_ALLOW_KEYS_IN_URL:
        raise Refused(
            "This server does not accept keys in the URL (?api_key=, ?license=). Send the "
            "key as 'Authorization: Bearer <key>' or the 'openai-insecure-api-key.<key>' "
            "subprotocol.",
            "missing_api_key",
        )
    try:
        return authenticate(key=hs.key, client_ip=hs.client_ip)
    except TooManyFailures as exc:
        raise Refused(
            f"Too many failed authentication attempts. Try again in {exc.retry_after_s} s.",
            "rate_limit_exceeded",
            error_type="requests",
        ) from None
    except AuthenticationFailed as exc:
        raise Refused(exc.message, exc.code) from None


def _user_id(hs: Handshake, credential: Credential) -> str:
    """The end user the session belongs to.

    A client secret minted for a user binds its sessions to that user: it usually sits in
    a browser, so a different ``userId`` on connect is refused rather than obeyed (it would
    load someone else's history and voices). License keys are held by servers, which may
    act for any of their users.
    """
    asked = hs.query.get("userId") or hs.query.get("user_id") or ""
    if len(asked) > MAX_USER_ID_CHARS:
        raise Refused(f"userId is longer than {MAX_USER_ID_CHARS} characters.", "invalid_user_id")
    secret = credential.client_secret
    if secret is None or not secret.user_id:
        return asked
    if asked and asked != secret.user_id:
        raise Refused(
            "This client secret was minted for another user; connect without userId or "
            "with the userId it was minted for.",
            "user_mismatch",
        )
    return secret.user_id


def credential_check(hs: Handshake) -> Credential:
    """The host, key and origin rules every realtime edge applies (no session is created).

    Runs in a worker thread (it uses the ORM).

    Raises:
        Refused: Unknown host, missing or invalid key, or a browser origin the key does
            not allow.
    """
    if not host_allowed(hs.host):
        raise Refused(f"Host '{(hs.host or '')[:100]}' is not served here.", "host_not_allowed")
    credential = _authenticate(hs)
    # Browsers send Origin and can be made to connect by any page (CSWSH): a credential a
    # browser carries is honoured only from this site or the license's allowed origins.
    if hs.origin and (hs.key_from_browser or credential.kind == "client_secret"):
        if not (_same_origin(hs.origin, hs.host) or credential.license.origin_allowed(hs.origin)):
            raise Refused(f"Origin {hs.origin} is not allowed for this key.", "origin_not_allowed")
    return credential


def realtime_admit(hs: Handshake, *, session_id: str, transport: str, worker_id: str) -> Admitted:
    """Authenticate a connection, apply the license's limits and create the session's row.

    Runs in a worker thread (it uses the ORM). Nothing is written unless every check
    passes; the row is created last, atomically with the concurrency check.

    Raises:
        Refused: The connection must be refused; the message and code say why.
    """
    credential = credential_check(hs)
    license = credential.license
    user_id = _user_id(hs, credential)
    if credential.client_secret is not None:
        config = dict(credential.client_secret.session_config)
    else:
        config = session_defaults(
            instructions=settings.REALTIME_DEFAULT_INSTRUCTIONS,
            voice=settings.REALTIME_DEFAULT_VOICE,
        )
    if hs.query.get("model"):
        config["model"] = hs.query["model"][:200]
    character_id = None
    name = hs.query.get("characterName")
    if name:
        character = character_get_active(slug=name)
        if character is None:
            raise Refused(f"Unknown characterName '{name[:64]}'.", "character_not_found")
        character_id = character.pk
        patch: dict[str, Any] = {}
        if character.persona:
            patch["instructions"] = character.persona
        if character.default_voice is not None:
            patch["audio"] = {"output": {"voice": character.default_voice.slug}}
        config = apply_patch(config, patch)
    history = [
        ChatMessage(role=role, content=text)  # type: ignore[arg-type]
        for role, text in user_recent_messages(
            license_id=license.pk, user_id=user_id, limit=settings.REALTIME_HISTORY_MESSAGES
        )
    ]
    try:
        session_admit(
            credential=credential,
            session_id=session_id,
            user_id=user_id,
            transport=transport,
            dialect=hs.dialect,
            character_id=character_id,
            model=str(config.get("model") or ""),
            worker_id=worker_id,
        )
    except AdmissionRefused as exc:
        raise Refused(exc.message, exc.code, error_type=exc.error_type) from None
    except AuthenticationFailed as exc:
        # Revoked or disabled between the key check and the admission.
        raise Refused(exc.message, exc.code) from None
    return Admitted(credential, config, user_id, character_id, history)
