"""Conversation, ConversationItem and MemoryFact.

Items are saved one by one as they complete (see services.py), so a crash or disconnect
loses at most the item in flight.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from apps.core.ids import session_id


class Conversation(models.Model):
    """One realtime session: who, with which character and model, over what, and usage."""

    class Transport(models.TextChoices):
        WEBSOCKET = "websocket", "WebSocket"
        WEBRTC = "webrtc", "WebRTC"

    class Dialect(models.TextChoices):
        GA = "ga", "GA"
        BETA = "beta", "beta"

    class EndReason(models.TextChoices):
        CLIENT_CLOSED = "client_closed", "client closed"
        SERVER_SHUTDOWN = "server_shutdown", "server shut down"
        SESSION_EXPIRED = "session_expired", "session expired"
        LICENSE_REVOKED = "license_revoked", "license revoked"
        ERROR = "error", "error"
        # Nobody heard from the session for REALTIME_HEARTBEAT_STALE_S (its worker hung or
        # was killed without cleaning up).
        STALE = "stale", "heartbeat stale"
        # Found open at start-up, belonging to a worker process that no longer exists.
        WORKER_LOST = "worker_lost", "worker lost"

    id = models.CharField(primary_key=True, max_length=40, default=session_id, editable=False)
    license = models.ForeignKey(
        "licensing.License", null=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    user_id = models.CharField(max_length=128, blank=True, db_index=True)
    character = models.ForeignKey(
        "avatar.Character", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=100, blank=True)
    transport = models.CharField(max_length=16, choices=Transport.choices)
    dialect = models.CharField(max_length=8, choices=Dialect.choices, default=Dialect.GA)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The serving worker refreshes this while the session is live; a row whose heartbeat is
    # older than REALTIME_HEARTBEAT_STALE_S no longer holds a license slot.
    heartbeat_at = models.DateTimeField(default=timezone.now, db_index=True)
    # "<host>:<pid>:<start token>" of the serving process (apps.core.workers), so a restarted
    # host can end what its dead workers left open.
    worker_id = models.CharField(max_length=128, blank=True, default="")
    end_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)
    input_audio_ms = models.PositiveBigIntegerField(default=0)
    output_audio_ms = models.PositiveBigIntegerField(default=0)
    text_tokens_in = models.PositiveBigIntegerField(default=0)
    text_tokens_out = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["license", "user_id", "-started_at"])]

    def __str__(self) -> str:
        return self.id


class ConversationItem(models.Model):
    """One item of a conversation: a message, a function call or a function call's output."""

    class Type(models.TextChoices):
        MESSAGE = "message", "message"
        FUNCTION_CALL = "function_call", "function call"
        FUNCTION_CALL_OUTPUT = "function_call_output", "function call output"

    class Role(models.TextChoices):
        USER = "user", "user"
        ASSISTANT = "assistant", "assistant"
        SYSTEM = "system", "system"

    class Status(models.TextChoices):
        COMPLETED = "completed", "completed"
        INCOMPLETE = "incomplete", "incomplete"
        IN_PROGRESS = "in_progress", "in progress"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="items")
    item_id = models.CharField(max_length=64)
    position = models.PositiveIntegerField()
    type = models.CharField(max_length=24, choices=Type.choices)
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETED)
    text = models.TextField(blank=True, help_text="Message text, or the audio's transcript.")
    audio_ms = models.PositiveIntegerField(default=0)
    truncated_at_ms = models.PositiveIntegerField(null=True, blank=True)
    call_id = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=128, blank=True)
    arguments = models.TextField(blank=True)
    output = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["conversation", "position"]
        constraints = [
            # The item id is the idempotency key: saving the same item twice updates it.
            models.UniqueConstraint(
                fields=["conversation", "item_id"], name="uniq_item_per_conversation"
            )
        ]

    def __str__(self) -> str:
        return self.item_id


class MemoryFact(models.Model):
    """Something the assistant should remember about one end user of one license."""

    class Category(models.TextChoices):
        PREFERENCES = "preferences", "preferences"
        PERSONAL_DETAILS = "personal_details", "personal details"
        PLANS = "plans", "plans and intentions"
        HABITS = "habits", "activity and service habits"
        HEALTH = "health", "health"
        WORK = "work", "work"
        INTERESTS = "interests", "interests"

    license = models.ForeignKey(
        "licensing.License", on_delete=models.CASCADE, related_name="memory_facts"
    )
    user_id = models.CharField(max_length=128, db_index=True)
    category = models.CharField(max_length=32, choices=Category.choices)
    text = models.TextField()
    source_item = models.ForeignKey(
        ConversationItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["license", "user_id", "category", "-updated_at"]
        indexes = [models.Index(fields=["license", "user_id"])]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.text[:60]}"
