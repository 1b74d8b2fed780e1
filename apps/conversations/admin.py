"""Operators read transcripts here: items inline, search by user id or text, export JSON/text."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from . import services
from .exports import transcript_as_dict, transcript_as_text
from .models import Conversation, ConversationItem, MemoryFact

ITEM_FIELDS = ("position", "item_id", *services.ITEM_FIELDS, "created_at")


class ConversationItemInline(admin.TabularInline):
    """The transcript, read-only: items are written by sessions, never edited by hand."""

    model = ConversationItem
    fields = ITEM_FIELDS
    readonly_fields = ITEM_FIELDS
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Transcripts are append-only from sessions."""
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Browse sessions and their transcripts."""

    list_display = (
        "id",
        "license",
        "user_id",
        "character",
        "model",
        "transport",
        "dialect",
        "started_at",
        "ended_at",
        "end_reason",
        "exports",
    )
    list_filter = ("transport", "dialect", "end_reason", "license", "started_at")
    search_fields = ("id", "user_id", "items__text")
    date_hierarchy = "started_at"
    inlines = [ConversationItemInline]
    actions = ("export_json", "export_text")
    readonly_fields = (
        "id",
        "license",
        "user_id",
        "character",
        "model",
        "provider",
        "transport",
        "dialect",
        "started_at",
        "ended_at",
        "end_reason",
        "input_audio_ms",
        "output_audio_ms",
        "text_tokens_in",
        "text_tokens_out",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Conversations are created by sessions."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Read-only, but viewable by users with the view permission."""
        return False

    def get_urls(self) -> list[Any]:
        """Add per-conversation transcript downloads."""
        custom = [
            path(
                "<str:conversation_id>/transcript.<str:fmt>",
                self.admin_site.admin_view(self.transcript_view),
                name="conversations_conversation_transcript",
            )
        ]
        return custom + super().get_urls()

    @admin.display(description="transcript")
    def exports(self, obj: Conversation) -> str:
        """Download links for one conversation."""
        url = "admin:conversations_conversation_transcript"
        return format_html(
            '<a href="{}">JSON</a> · <a href="{}">text</a>',
            reverse(url, args=[obj.pk, "json"]),
            reverse(url, args=[obj.pk, "txt"]),
        )

    def transcript_view(self, request: HttpRequest, conversation_id: str, fmt: str) -> HttpResponse:
        """Serve one transcript as JSON or plain text."""
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        conversation = get_object_or_404(
            Conversation.objects.select_related("license", "character"), pk=conversation_id
        )
        if fmt == "json":
            response: HttpResponse = JsonResponse(
                transcript_as_dict(conversation),
                json_dumps_params={"ensure_ascii": False, "indent": 2},
            )
        elif fmt == "txt":
            response = HttpResponse(
                transcript_as_text(conversation), content_type="text/plain; charset=utf-8"
            )
        else:
            return HttpResponse(status=404)
        response["Content-Disposition"] = f'attachment; filename="{conversation.pk}.{fmt}"'
        return response

    @admin.action(description="Export selected transcripts as JSON")
    def export_json(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> HttpResponse:
        """One JSON document holding every selected conversation."""
        data = [transcript_as_dict(c) for c in queryset.select_related("license", "character")]
        response = HttpResponse(
            json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json"
        )
        response["Content-Disposition"] = 'attachment; filename="transcripts.json"'
        return response

    @admin.action(description="Export selected transcripts as plain text")
    def export_text(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> HttpResponse:
        """The selected transcripts, one after another."""
        body = "\n".join(
            transcript_as_text(c) for c in queryset.select_related("license", "character")
        )
        response = HttpResponse(body, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="transcripts.txt"'
        return response


@admin.register(MemoryFact)
class MemoryFactAdmin(admin.ModelAdmin):
    """What the assistant remembers per end user; operators may correct or delete facts."""

    list_display = ("user_id", "license", "category", "text", "updated_at")
    list_filter = ("category", "license")
    search_fields = ("user_id", "text")
    raw_id_fields = ("source_item",)
