"""Characters: the digital humans end users talk to (seed 000's ``characterName``)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from .look import look_errors


class Character(models.Model):
    """A digital human: how it looks, how it speaks and who it is."""

    slug = models.SlugField(max_length=64, unique=True, help_text="characterName, e.g. girl2.")
    display_name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    default_voice = models.ForeignKey(
        "voice.Voice", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    persona = models.TextField(
        blank=True, help_text="Instructions that give the character its personality."
    )
    look = models.JSONField(default=dict, blank=True, help_text="Renderer look parameters.")
    portrait = models.ImageField(
        upload_to="portraits/",
        blank=True,
        help_text="A frontal photo makes this a portrait character (animated by the renderer).",
    )
    face_points = models.JSONField(
        default=dict,
        blank=True,
        help_text="Eyes and mouth in the portrait's pixels: found at upload or marked by hand.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        """Validate the look parameters and that the default voice is a built-in one."""
        errors = look_errors(self.look)
        if errors:
            raise ValidationError({"look": errors})
        if self.default_voice is not None and not self.default_voice.builtin:
            raise ValidationError(
                {"default_voice": "A character's default voice must be built in."}
            )
