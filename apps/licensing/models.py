"""License and ClientSecret models. Neither stores a usable key: only prefix + SHA-256."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from . import keys

LicenseStatus = Literal["active", "revoked", "disabled", "expired"]


class License(models.Model):
    """A customer's long-lived API key with its limits.

    The key itself is shown once when the license is created; afterwards only
    ``key_prefix`` (for lookup and display) and ``key_hash`` (SHA-256) remain.
    """

    name = models.CharField(max_length=120, help_text="Who or what this key is for.")
    owner = models.CharField(max_length=200, blank=True, help_text="Contact or organisation.")
    notes = models.TextField(blank=True)
    key_prefix = models.CharField(max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    active = models.BooleanField(default=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Leave empty for a key that does not expire."
    )
    max_concurrent_sessions = models.PositiveIntegerField(
        default=4, validators=[MinValueValidator(1)], help_text="Realtime sessions open at once."
    )
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text="Browser origins (scheme://host[:port]) allowed to use this key or its "
        "ephemeral secrets. Empty: no browser use.",
    )
    monthly_audio_minutes_quota = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Input + output audio minutes per calendar month; empty = unlimited.",
    )
    serves_talk_page = models.BooleanField(
        default=False,
        help_text="The public talk page mints short-lived secrets from this license for its "
        "visitors, so they can talk without a key. Sessions, limits and quota count here. "
        "If several licenses are ticked, the newest active one is used.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({keys.masked(self.key_prefix)})"

    def status(self, now: datetime | None = None) -> LicenseStatus:
        """Return why the license can or cannot be used right now."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        if not self.active:
            return "disabled"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def origin_allowed(self, origin: str) -> bool:
        """Whether a browser ``Origin`` header value is on this license's allow-list.

        Exact match only (no wildcards or substrings), after normalising case and a
        trailing slash, as the OWASP WebSocket cheat sheet advises.
        """
        wanted = origin.strip().rstrip("/").lower()
        return any(
            wanted == str(allowed).strip().rstrip("/").lower() for allowed in self.allowed_origins
        )


class ClientSecret(models.Model):
    """An ephemeral secret (``ek_…``) that opens realtime connections until it expires.

    It is minted from a license, carries the session config it was minted with, and may be
    used for several connections until ``expires_at`` (as OpenAI documents). It never
    authenticates the management API.
    """

    class Dialect(models.TextChoices):
        GA = "ga", "GA"
        BETA = "beta", "beta"

    key_prefix = models.CharField(max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="client_secrets")
    user_id = models.CharField(
        max_length=128, blank=True, help_text="End user the secret is bound to, if any."
    )
    session_config = models.JSONField(help_text="Session config (GA shape) it was minted with.")
    dialect = models.CharField(max_length=8, choices=Dialect.choices, default=Dialect.GA)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return keys.masked(self.key_prefix)

    def is_expired(self, now: datetime | None = None) -> bool:
        """Whether the secret can no longer open sessions."""
        return self.expires_at <= (now or timezone.now())
