"""Operators manage characters here."""

from django.contrib import admin

from .models import Character


@admin.register(Character)
class CharacterAdmin(admin.ModelAdmin):
    """Characters' personas, voices and looks."""

    list_display = ("slug", "display_name", "default_voice", "active", "updated_at")
    list_filter = ("active",)
    search_fields = ("slug", "display_name", "description")
    prepopulated_fields = {"slug": ("display_name",)}
