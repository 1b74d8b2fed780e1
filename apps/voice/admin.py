"""Operators manage the voice catalogue here."""

from django.contrib import admin

from .models import Voice


@admin.register(Voice)
class VoiceAdmin(admin.ModelAdmin):
    """Built-in and owned (cloned) voices."""

    list_display = (
        "slug",
        "display_name",
        "languages",
        "gender",
        "engine",
        "engine_voice",
        "license_name",
        "builtin",
        "owner_license",
        "active",
    )
    list_filter = ("builtin", "engine", "gender", "active")
    search_fields = ("slug", "display_name", "engine_voice", "owner_user_id", "license_name")
