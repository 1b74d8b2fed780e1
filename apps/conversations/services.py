"""Persist conversations item by item. Called by session edges, never on the audio path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from apps.core.workers import current_worker_id, parse_worker_id, worker_alive
from apps.licensing.models import License

from .models import Conversation, ConversationItem

__all__ = [
    "DEFAULT_HEARTBEAT_STALE_S",
    "UsageDelta",
    "conversation_add_usage",
    "conversation_end",
    "conversation_end_dead_workers",
    "conversation_end_stale",
    "conversation_heartbeat",
    "conversation_item_save",
    "conversation_start",
    "current_worker_id",  # Re-exported: the edges tag the rows they create with it.
    "heartbeat_stale_s",
    "license_slots_lock",
]
# A session heartbeats far more often than this (the consumer: every ~15 s); a row not
# refreshed for this long belongs to a worker that hung or died.
DEFAULT_HEARTBEAT_STALE_S = 60
# Ids per UPDATE: well under SQLite's bound-parameter limit (999 on old builds).
HEARTBEAT_BATCH = 500

ITEM_FIELDS = (
    "type",
    "role",
    "status",
    "text",
    "audio_ms",
    "truncated_at_ms",
    "call_id",
    "name",
    "arguments",
    "output",
)


@dataclass(frozen=True, slots=True)
class UsageDelta:
    """Usage to add to a conversation's counters."""

    input_audio_ms: int = 0
    output_audio_ms: int = 0
    text_tokens_in: int = 0
    text_tokens_out: int = 0


def conversation_start(
    *,
    license_id: int | None,
    transport: str,
    dialect: str = Conversation.Dialect.GA,
    user_id: str = "",
    character_id: int | None = None,
    model: str = "",
    provider: str = "",
    conversation_id: str | None = None,
    worker_id: str = "",
    now: datetime | None = None,
) -> Conversation:
    """Create the row for a new session (started and heartbeating as of ``now``).

    This does not check the license's limits; ``apps.licensing.admission.session_admit``
    does, atomically with calling this.
    """
    now = now or timezone.now()
    conversation = Conversation(
        license_id=license_id,
        transport=transport,
        dialect=dialect,
        user_id=user_id,
        character_id=character_id,
        model=model,
        provider=provider,
        worker_id=worker_id,
        started_at=now,
        heartbeat_at=now,
    )
    if conversation_id:
        conversation.id = conversation_id
    conversation.save(force_insert=True)
    return conversation


def conversation_item_save(
    *, conversation_id: str, item_id: str, **fields: Any
) -> ConversationItem:
    """Insert or update one item, keyed by its item id (idempotent).

    A new item goes after the last one; saving the same ``item_id`` again (e.g. an assistant
    item first saved in progress, then truncated and completed) updates it in place.
    """
    unknown = set(fields) - set(ITEM_FIELDS)
    if unknown:
        raise TypeError(f"unknown item fields: {sorted(unknown)}")
    now = timezone.now()
    with transaction.atomic():
        existing = (
            ConversationItem.objects.select_for_update()
            .filter(conversation_id=conversation_id, item_id=item_id)
            .first()
        )
        if existing is not None:
            for name, value in fields.items():
                setattr(existing, name, value)
            existing.updated_at = now
            existing.save()
            return existing
        last = ConversationItem.objects.filter(conversation_id=conversation_id).aggregate(
            last=Max("position")
        )["last"]
        return ConversationItem.objects.create(
            conversation_id=conversation_id,
            item_id=item_id,
            position=0 if last is None else last + 1,
            created_at=now,
            updated_at=now,
            **fields,
        )


def conversation_add_usage(*, conversation_id: str, usage: UsageDelta) -> None:
    """Add to the usage counters atomically (safe with several writers)."""
    Conversation.objects.filter(pk=conversation_id).update(
        input_audio_ms=F("input_audio_ms") + usage.input_audio_ms,
        output_audio_ms=F("output_audio_ms") + usage.output_audio_ms,
        text_tokens_in=F("text_tokens_in") + usage.text_tokens_in,
        text_tokens_out=F("text_tokens_out") + usage.text_tokens_out,
    )


def conversation_end(*, conversation_id: str, reason: str, now: datetime | None = None) -> None:
    """Mark a session ended (first call wins; later calls keep the original reason)."""
    Conversation.objects.filter(pk=conversation_id, ended_at__isnull=True).update(
        ended_at=now or timezone.now(), end_reason=reason
    )


def heartbeat_stale_s() -> int:
    """Seconds without a heartbeat after which a session no longer counts as live."""
    return int(getattr(settings, "REALTIME_HEARTBEAT_STALE_S", DEFAULT_HEARTBEAT_STALE_S))


def license_slots_lock(*, license_id: int, now: datetime | None = None) -> bool:
    """Lock a license's session slots until the current transaction ends.

    Must be the first statement of the transaction (``transaction.atomic``) that counts the
    license's sessions and inserts a new one. It is an UPDATE of the license row (stamping
    ``last_used_at``, since admitting a session is a use) because a write is what both
    databases serialise:

    * PostgreSQL: the UPDATE row-locks the license until commit, so a second admission for
      the same license waits here; under READ COMMITTED its later statements then see the
      first one's committed row. Other licenses are not blocked.
    * SQLite: a write as the first statement takes the database's write lock, waiting on the
      busy timeout like ``BEGIN IMMEDIATE`` (a transaction that read first and wrote later
      would instead fail with "database is locked" when another writer got in between).
      Every admission is serialised, which on SQLite's one writer costs nothing extra.

    Returns:
        False when the license no longer exists.
    """
    updated = License.objects.filter(pk=license_id).update(last_used_at=now or timezone.now())
    return updated > 0


def conversation_heartbeat(*, conversation_ids: Iterable[str], now: datetime | None = None) -> int:
    """Mark sessions as alive: one UPDATE for many ids (per batch of 500).

    Ended rows are left alone, so the result counts the rows still open; fewer than asked
    means some were ended elsewhere (e.g. as stale after a long stall) and the caller
    should close those sessions.
    """
    now = now or timezone.now()
    ids = list(dict.fromkeys(conversation_ids))
    updated = 0
    for start in range(0, len(ids), HEARTBEAT_BATCH):
        updated += Conversation.objects.filter(
            pk__in=ids[start : start + HEARTBEAT_BATCH], ended_at__isnull=True
        ).update(heartbeat_at=now)
    return updated


def conversation_end_stale(
    *, now: datetime | None = None, license_id: int | None = None, stale_s: int | None = None
) -> int:
    """End open sessions whose heartbeat is older than ``REALTIME_HEARTBEAT_STALE_S``.

    The end time recorded is the last heartbeat, the last moment the session was known to
    be alive. Returns how many rows were ended (reason ``stale``).

    Args:
        now: The current time; injectable for tests.
        license_id: Only this license's sessions (admission sweeps the license it admits to).
        stale_s: Override ``REALTIME_HEARTBEAT_STALE_S``.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=heartbeat_stale_s() if stale_s is None else stale_s)
    rows = Conversation.objects.filter(ended_at__isnull=True, heartbeat_at__lt=cutoff)
    if license_id is not None:
        rows = rows.filter(license_id=license_id)
    return rows.update(ended_at=F("heartbeat_at"), end_reason=Conversation.EndReason.STALE)


def conversation_end_dead_workers(*, host: str, now: datetime | None = None) -> int:
    """At start-up: end the open sessions of this host's worker processes that are gone.

    A row belongs to a dead worker when its ``worker_id`` names this host and a pid that no
    longer exists, or one now held by a different process (another start time or boot).
    Rows of other hosts, and rows without a worker id, are left to the heartbeat sweep.
    Returns how many rows were ended (reason ``worker_lost``).
    """
    now = now or timezone.now()
    worker_ids = (
        Conversation.objects.filter(ended_at__isnull=True, worker_id__startswith=f"{host}:")
        .order_by()  # Without it, Meta.ordering's column would join the DISTINCT.
        .values_list("worker_id", flat=True)
        .distinct()
    )
    dead: list[str] = []
    for value in worker_ids:
        worker = parse_worker_id(value)
        if worker is not None and worker.host == host and not worker_alive(worker):
            dead.append(value)
    if not dead:
        return 0
    return Conversation.objects.filter(ended_at__isnull=True, worker_id__in=dead).update(
        ended_at=now, end_reason=Conversation.EndReason.WORKER_LOST
    )
