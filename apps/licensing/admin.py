"""Operators manage licenses here. A new key is shown exactly once, on the page after "Save"."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from . import keys
from .forms import LicenseForm
from .models import ClientSecret, License
from .services import license_assign_new_key, license_revoke


class StatusFilter(admin.SimpleListFilter):
    """Filter by effective status (active / revoked / disabled / expired)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """The four statuses."""
        return [(s, s) for s in ("active", "revoked", "disabled", "expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[License]) -> QuerySet[License]:
        """Translate a status into field conditions."""
        now = timezone.now()
        value = self.value()
        if value == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if value == "disabled":
            return queryset.filter(active=False, revoked_at__isnull=True)
        if value == "expired":
            return queryset.filter(active=True, expires_at__lte=now)
        if value == "active":
            return queryset.filter(active=True, revoked_at__isnull=True).exclude(
                expires_at__lte=now
            )
        return queryset


@admin.register(License)
class LicenseAdmin(admin.ModelAdmin):
    """Create, inspect, filter and revoke licenses."""

    form = LicenseForm
    list_display = (
        "name",
        "owner",
        "key_display",
        "status_display",
        "expires_at",
        "max_concurrent_sessions",
        "monthly_audio_minutes_quota",
        "serves_talk_page",
        "created_at",
        "last_used_at",
    )
    list_filter = (
        StatusFilter,
        "active",
        "serves_talk_page",
        ("expires_at", admin.EmptyFieldListFilter),
        "created_at",
    )
    search_fields = ("name", "owner", "key_prefix", "notes")
    readonly_fields = ("key_display", "status_display", "revoked_at", "created_at", "last_used_at")
    date_hierarchy = "created_at"
    actions = ("revoke_selected",)

    @admin.display(description="key")
    def key_display(self, obj: License) -> str:
        """The lookup prefix only; the full key is never stored."""
        return keys.masked(obj.key_prefix) if obj.key_prefix else "—"

    @admin.display(description="status")
    def status_display(self, obj: License) -> str:
        """Effective status now."""
        return obj.status()

    def get_fieldsets(self, request: HttpRequest, obj: License | None = None) -> Any:
        """Key details appear once the license exists."""
        main = (None, {"fields": LicenseForm.Meta.fields})
        if obj is None:
            return (main,)
        return (main, ("Key", {"fields": self.readonly_fields}))

    def save_model(self, request: HttpRequest, obj: License, form: Any, change: bool) -> None:
        """Generate the key for a new license and keep it only for the response page."""
        if not change:
            request._new_license_key = license_assign_new_key(license=obj)  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def response_add(
        self, request: HttpRequest, obj: License, post_url_continue: Any = None
    ) -> HttpResponse:
        """Show the new key once, on its own page, instead of redirecting.

        The key is rendered straight into this response: it never goes into the messages
        framework (which would keep it in a cookie or the session table).
        """
        key = getattr(request, "_new_license_key", None)
        if key is None:  # pragma: no cover - save_model always sets it for additions
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "license": obj,
            "key": key,
            "title": "Copy the new license key",
        }
        response = TemplateResponse(request, "admin/licensing/license/key_created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(
        description="Revoke selected licenses (keys and their ephemeral secrets stop working)"
    )
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[License]) -> None:
        """Revoke every selected license."""
        count = 0
        for license in queryset:
            license_revoke(license=license)
            count += 1
        self.message_user(request, f"Revoked {count} license(s).", messages.SUCCESS)


@admin.register(ClientSecret)
class ClientSecretAdmin(admin.ModelAdmin):
    """Read-only view of minted ephemeral secrets; deleting one invalidates it."""

    list_display = (
        "__str__",
        "license",
        "user_id",
        "dialect",
        "created_at",
        "expires_at",
        "expired",
    )
    list_filter = ("dialect", "created_at")
    search_fields = ("key_prefix", "user_id", "license__name")
    readonly_fields = (
        "key_prefix",
        "license",
        "user_id",
        "dialect",
        "session_config",
        "created_at",
        "expires_at",
    )
    exclude = ("key_hash",)

    @admin.display(boolean=True)
    def expired(self, obj: ClientSecret) -> bool:
        """Whether it can no longer open sessions."""
        return obj.is_expired()

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Secrets are minted through the API only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Secrets are immutable."""
        return False
