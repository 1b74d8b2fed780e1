"""Write-side operations on licenses and client secrets (HackSoft style: ``<entity>_<action>``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.utils import timezone

from . import keys
from .models import ClientSecret, License

logger = logging.getLogger(__name__)

# last_used_at is a hint for operators, not an audit log: write it at most once a minute per
# license so a busy key does not turn every request into a database write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class AuthenticationFailed(Exception):
    """A presented key cannot be used. ``code`` is the OpenAI error code to report."""

    def __init__(self, message: str, *, code: str = "invalid_api_key") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class IssuedLicense:
    """A new license and its key, which exists only here and is shown once."""

    license: License
    key: str


@dataclass(frozen=True, slots=True)
class IssuedClientSecret:
    """A new client secret and its value, which exists only here and is returned once."""

    client_secret: ClientSecret
    value: str


@dataclass(frozen=True, slots=True)
class Credential:
    """What an authenticated key turned out to be."""

    kind: Literal["license", "client_secret"]
    license: License
    client_secret: ClientSecret | None = None


def normalise_origins(origins: Iterable[str]) -> list[str]:
    """Validate and normalise browser origins to ``scheme://host[:port]`` (lower case).

    Raises:
        ValidationError: An entry is not an http(s) origin.
    """
    cleaned: list[str] = []
    for raw in origins:
        origin = raw.strip().rstrip("/").lower()
        if not origin:
            continue
        scheme, sep, rest = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest or "?" in rest:
            raise ValidationError(
                f"{raw!r} is not an origin; use scheme://host[:port], e.g. https://app.example.com"
            )
        if origin not in cleaned:
            cleaned.append(origin)
    return cleaned


def license_create(
    *,
    name: str,
    owner: str = "",
    notes: str = "",
    max_concurrent_sessions: int = 4,
    expires_at: datetime | None = None,
    allowed_origins: Iterable[str] = (),
    monthly_audio_minutes_quota: int | None = None,
    active: bool = True,
    serves_talk_page: bool = False,
) -> IssuedLicense:
    """Create a license with a new key. The returned key is the only copy in existence."""
    generated = keys.generate_key(keys.LICENSE_PREFIX)
    license = License(
        name=name,
        owner=owner,
        notes=notes,
        key_prefix=generated.lookup_prefix,
        key_hash=generated.digest,
        active=active,
        expires_at=expires_at,
        max_concurrent_sessions=max_concurrent_sessions,
        allowed_origins=normalise_origins(allowed_origins),
        monthly_audio_minutes_quota=monthly_audio_minutes_quota,
        serves_talk_page=serves_talk_page,
    )
    license.full_clean()
    license.save()
    logger.info(
        "license created", extra={"license_id": license.pk, "key_prefix": license.key_prefix}
    )
    return IssuedLicense(license=license, key=generated.value)


def license_assign_new_key(*, license: License) -> str:
    """Give an unsaved (or existing) license a fresh key; returns the key, shown once.

    Used by the admin's add form, which builds the License from its fields first. For an
    existing license this rotates the key: the old one stops working at once.
    """
    generated = keys.generate_key(keys.LICENSE_PREFIX)
    license.key_prefix = generated.lookup_prefix
    license.key_hash = generated.digest
    return generated.value


def license_revoke(*, license: License, now: datetime | None = None) -> License:
    """Revoke a license for good: its key and every ephemeral secret minted from it stop working."""
    if license.revoked_at is None:
        license.revoked_at = now or timezone.now()
    license.active = False
    license.save(update_fields=["active", "revoked_at"])
    ClientSecret.objects.filter(license=license).delete()
    logger.info("license revoked", extra={"license_id": license.pk})
    return license


def _find(model: type[License] | type[ClientSecret], value: str) -> Any:
    """Look a key up by prefix and compare digests in constant time.

    Every path, including "no row has this prefix", performs exactly one digest comparison
    per candidate and at least one overall, so response time does not reveal which
    prefixes exist.
    """
    presented = keys.key_digest(value)
    found = None
    candidates = list(model.objects.filter(key_prefix=keys.lookup_prefix(value)))
    for candidate in candidates:
        if keys.digests_match(candidate.key_hash, presented) and found is None:
            found = candidate
    if not candidates:
        keys.digests_match(keys.DUMMY_DIGEST, presented)
    return found


def credential_authenticate(*, key: str, now: datetime | None = None) -> Credential:
    """Authenticate a license key or an ephemeral client secret.

    Raises:
        AuthenticationFailed: Unknown, malformed, revoked, disabled or expired key, or an
            expired client secret, or one whose license can no longer be used.
    """
    now = now or timezone.now()
    kind = keys.key_kind(key)
    if kind is None:
        # Still hash and compare once so malformed keys cost the same as unknown ones.
        keys.digests_match(keys.DUMMY_DIGEST, keys.key_digest(key))
        raise AuthenticationFailed(_incorrect_key_message(key))
    if kind == "client_secret":
        secret: ClientSecret | None = _find(ClientSecret, key)
        if secret is None:
            raise AuthenticationFailed(_incorrect_key_message(key))
        if secret.is_expired(now):
            raise AuthenticationFailed("This ephemeral client secret has expired.")
        license = secret.license
        _check_license_usable(license, now)
        return Credential(kind="client_secret", license=license, client_secret=secret)
    found: License | None = _find(License, key)
    if found is None:
        raise AuthenticationFailed(_incorrect_key_message(key))
    _check_license_usable(found, now)
    license_touch(license=found, now=now)
    return Credential(kind="license", license=found)


def _check_license_usable(license: License, now: datetime) -> None:
    status = license.status(now)
    if status == "revoked":
        raise AuthenticationFailed("This license key has been revoked.")
    if status == "disabled":
        raise AuthenticationFailed("This license key is disabled.")
    if status == "expired":
        raise AuthenticationFailed("This license key has expired.")


def _incorrect_key_message(key: str) -> str:
    # Echo only a short, harmless stub of what was sent, as OpenAI does.
    stub = key[:6] + "*" * 4 if len(key) > 10 else "****"
    return f"Incorrect API key provided: {stub}."


def license_touch(*, license: License, now: datetime | None = None) -> None:
    """Record that a license was just used (at most one write per minute)."""
    now = now or timezone.now()
    if license.last_used_at is None or now - license.last_used_at >= LAST_USED_RESOLUTION:
        License.objects.filter(pk=license.pk).update(last_used_at=now)
        license.last_used_at = now


def client_secret_create(
    *,
    license: License,
    session_config: Mapping[str, Any],
    ttl_s: int,
    dialect: str = ClientSecret.Dialect.GA,
    user_id: str = "",
    now: datetime | None = None,
) -> IssuedClientSecret:
    """Mint an ephemeral client secret for a license; the value is returned once."""
    now = now or timezone.now()
    generated = keys.generate_key(keys.CLIENT_SECRET_PREFIX)
    secret = ClientSecret.objects.create(
        key_prefix=generated.lookup_prefix,
        key_hash=generated.digest,
        license=license,
        user_id=user_id,
        session_config=dict(session_config),
        dialect=dialect,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
    )
    client_secret_purge_expired(now=now)
    return IssuedClientSecret(client_secret=secret, value=generated.value)


def client_secret_purge_expired(
    *, now: datetime | None = None, grace: timedelta = timedelta(hours=1)
) -> int:
    """Delete secrets that expired more than ``grace`` ago; returns how many were deleted."""
    cutoff = (now or timezone.now()) - grace
    deleted, _ = ClientSecret.objects.filter(expires_at__lt=cutoff).delete()
    return deleted
