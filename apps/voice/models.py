"""The voice catalogue: names clients ask for, mapped onto engine voices."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

# OpenAI's built-in realtime voices; every one of them must resolve to something here.
OPENAI_VOICE_NAMES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)


class Voice(models.Model):
    """A voice a session can ask for by ``slug`` (e.g. ``alloy``, ``龙婉``).

    Built-in voices are shared by every license. Owned voices (e.g. a user's cloned voice)
    belong to one license and optionally one end user of it, and are visible only to them.
    """

    class Gender(models.TextChoices):
        FEMALE = "female", "female"
        MALE = "male", "male"
        NEUTRAL = "neutral", "neutral"

    slug = models.CharField(max_length=64, help_text="The name clients send, e.g. alloy or 龙婉.")
    display_name = models.CharField(max_length=100)
    languages = models.JSONField(default=list, help_text='ISO-639-1 codes, e.g. ["en", "zh"].')
    gender = models.CharField(max_length=8, choices=Gender.choices, default=Gender.NEUTRAL)
    description = models.TextField(blank=True)
    engine = models.CharField(max_length=50, help_text="TTS engine that speaks it, e.g. piper.")
    engine_voice = models.CharField(max_length=200, help_text="The engine's own voice name.")
    speed = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.25), MaxValueValidator(1.5)]
    )
    pitch = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(-12.0), MaxValueValidator(12.0)],
        help_text="Semitones relative to the engine voice.",
    )
    params = models.JSONField(default=dict, blank=True, help_text="Extra engine parameters.")
    license_name = models.CharField(
        "licence",
        max_length=200,
        blank=True,
        help_text="Terms of the voice's model and training data, e.g. "
        '"CC0-1.0" or "non-commercial (Baker CSMSC corpus)"; shown to API clients. '
        "Blank means unknown. See docs/models.md.",
    )
    builtin = models.BooleanField(default=True)
    owner_license = models.ForeignKey(
        "licensing.License", null=True, blank=True, on_delete=models.CASCADE, related_name="voices"
    )
    owner_user_id = models.CharField(max_length=128, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-builtin", "slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["slug"], condition=Q(builtin=True), name="uniq_builtin_voice_slug"
            ),
            models.UniqueConstraint(
                fields=["owner_license", "owner_user_id", "slug"],
                condition=Q(builtin=False),
                name="uniq_owned_voice_slug",
            ),
            models.CheckConstraint(
                condition=Q(builtin=True, owner_license__isnull=True)
                | Q(builtin=False, owner_license__isnull=False),
                name="voice_builtin_xor_owned",
            ),
        ]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        """Check ownership and the language list."""
        if self.builtin and self.owner_license_id is not None:
            raise ValidationError({"owner_license": "A built-in voice has no owner."})
        if not self.builtin and self.owner_license_id is None:
            raise ValidationError({"owner_license": "An owned voice needs an owner license."})
        if not isinstance(self.languages, list) or not all(
            isinstance(code, str) and 2 <= len(code) <= 8 for code in self.languages
        ):
            raise ValidationError({"languages": 'Use a list of language codes, e.g. ["en"].'})
