"""Operators manage characters here, with a live preview of each."""

from __future__ import annotations

import io
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from PIL import Image, ImageOps, UnidentifiedImageError

from .models import Character
from .portrait import face_points_from_eyes, locate_face
from .preview import preview_png
from .services import face_points_data

POINT_FIELDS = ("left_eye_x", "left_eye_y", "right_eye_x", "right_eye_y", "mouth_x", "mouth_y")
NO_FACE = (
    "No face was found in this portrait. Mark the eyes (and the mouth, if you like) in pixels "
    "of the image (x from the left, y from the top) in the fields below, then save again."
)


class CharacterForm(forms.ModelForm):
    """The character, plus eye and mouth marks for portraits whose face is not found."""

    left_eye_x = forms.FloatField(required=False, label="Left eye x (px)")
    left_eye_y = forms.FloatField(required=False, label="Left eye y (px)")
    right_eye_x = forms.FloatField(required=False, label="Right eye x (px)")
    right_eye_y = forms.FloatField(required=False, label="Right eye y (px)")
    mouth_x = forms.FloatField(required=False, label="Mouth x (px)")
    mouth_y = forms.FloatField(required=False, label="Mouth y (px)")

    class Meta:
        model = Character
        exclude = ("face_points",)

    def clean(self) -> dict[str, Any]:
        """Find the face in a new portrait, or take the operator's marks."""
        cleaned = super().clean()
        portrait = cleaned.get("portrait")
        marks = [cleaned.get(name) for name in POINT_FIELDS]
        if not portrait:
            self.instance.face_points = {}
            return cleaned
        if any(value is not None for value in marks[:4]):
            if any(value is None for value in marks[:4]):
                raise ValidationError("Mark both eyes: x and y of each.")
            mouth = None
            if marks[4] is not None and marks[5] is not None:
                mouth = (marks[4], marks[5])
            points = face_points_from_eyes((marks[0], marks[1]), (marks[2], marks[3]), mouth)
            self.instance.face_points = face_points_data(points)
            return cleaned
        if "portrait" not in self.changed_data and self.instance.face_points:
            return cleaned
        try:
            portrait.seek(0)
            with Image.open(portrait) as opened:
                image = ImageOps.exif_transpose(opened).convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise ValidationError({"portrait": f"The portrait could not be read: {exc}"}) from None
        found = locate_face(image)
        if found is None:
            raise ValidationError(NO_FACE)
        self.instance.face_points = face_points_data(found)
        return cleaned


@admin.register(Character)
class CharacterAdmin(admin.ModelAdmin):
    """Characters' personas, voices, looks and portraits."""

    form = CharacterForm
    change_form_template = "admin/avatar/character/change_form.html"
    list_display = (
        "preview",
        "slug",
        "display_name",
        "kind",
        "default_voice",
        "active",
        "updated_at",
    )
    list_filter = ("active",)
    search_fields = ("slug", "display_name", "description")
    prepopulated_fields = {"slug": ("display_name",)}
    readonly_fields = ("face_points",)

    @admin.display(description="")
    def preview(self, character: Character) -> str:
        """A still of the character (the change page shows it talking)."""
        url = reverse("admin:avatar_character_preview", args=[character.pk])
        return format_html(
            '<img src="{}?t=1200&amp;size=96&amp;v={}" width="64" height="64" alt="{}">',
            url,
            int(character.updated_at.timestamp()) if character.updated_at else 0,
            character.slug,
        )

    @admin.display(description="kind")
    def kind(self, character: Character) -> str:
        """Portrait (a photo with a face) or drawn."""
        return "portrait" if character.portrait and character.face_points else "drawn"

    def get_urls(self) -> list[Any]:
        """Add the preview frames."""
        urls = [
            path(
                "<int:pk>/preview.png",
                self.admin_site.admin_view(self.preview_view),
                name="avatar_character_preview",
            )
        ]
        return urls + super().get_urls()

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """One PNG frame of the character at ``?t=`` ms of a looping demo utterance."""
        character = get_object_or_404(Character, pk=pk)
        try:
            t_ms = max(0.0, float(request.GET.get("t", "0")))
            size = int(request.GET.get("size", "256"))
        except ValueError:
            return HttpResponse("t and size must be numbers", status=400)
        size = max(64, min(512, size - size % 2))
        buffer = io.BytesIO()
        preview_png(character, t_ms=t_ms, size=size, out=buffer)
        response = HttpResponse(buffer.getvalue(), content_type="image/png")
        response["Cache-Control"] = "no-store"
        return response
