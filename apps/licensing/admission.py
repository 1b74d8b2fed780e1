"""Admitting a realtime session against its license's limits, atomically.

Counting a license's live sessions and inserting the new session's row are one transaction
that holds the license's lock (``conversations.services.license_slots_lock``): two workers
admitting for the same license at the same moment take turns, so the second one counts the
first one's row and the limit holds across processes. A refused admission inserts nothing.

"Live" means not ended *and* heartbeating within ``REALTIME_HEARTBEAT_STALE_S``: the slot of
a session whose worker was killed frees itself about a minute later, and admission also
marks such rows of the license ended (reason ``stale``) while it holds the lock.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.conversations.selectors import license_live_sessions
from apps.conversations.services import (
    conversation_end_stale,
    conversation_start,
    heartbeat_stale_s,
    license_slots_lock,
)

from .selectors import license_get, license_quota_exhausted
from .services import AuthenticationFailed, Credential

STATUS_MESSAGES = {
    "revoked": "This license key has been revoked.",
    "disabled": "This license key is disabled.",
    "expired": "This license key has expired.",
}


class AdmissionRefused(Exception):
    """The license's limits do not allow another session now.

    Attributes:
        message: What to tell the client.
        code: The OpenAI error code.
        error_type: The OpenAI error type.
    """

    code = "admission_refused"
    error_type = "requests"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TooManySessions(AdmissionRefused):
    """The license already has ``limit`` live sessions."""

    code = "too_many_sessions"
    error_type = "requests"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This license already has {limit} open sessions, its limit. Close one first."
        )
        self.limit = limit


class QuotaExhausted(AdmissionRefused):
    """The license used up its monthly audio minutes."""

    code = "insufficient_quota"
    error_type = "insufficient_quota"

    def __init__(self) -> None:
        super().__init__("You exceeded your monthly audio quota for this license.")


def session_admit(
    *,
    credential: Credential,
    session_id: str,
    user_id: str,
    transport: str,
    dialect: str,
    character_id: int | None,
    model: str,
    worker_id: str,
    now: datetime | None = None,
) -> None:
    """Check the license's limits and create the session's row, in one atomic step.

    Runs the ORM: call it from a worker thread (``sync_to_async``), never on the event loop.
    Blocks while another admission for the same license (on SQLite: any admission) holds
    the lock, which lasts a few queries.

    Args:
        credential: What ``gate.authenticate`` returned.
        session_id: The new session's id, which becomes the row's primary key.
        user_id: The end user the session belongs to ("" for none).
        transport: ``"websocket"`` or ``"webrtc"``.
        dialect: ``"ga"`` or ``"beta"``.
        character_id: The character the session plays, if any.
        model: The model the session starts with.
        worker_id: ``current_worker_id()`` of the serving process, so that a restart can
            end the rows of a worker that died (``conversation_end_dead_workers``).
        now: The current time; injectable for tests. By default it is read once the lock
            is held, so the row never starts before a session whose end it relied on.

    Raises:
        TooManySessions: The license is at ``max_concurrent_sessions`` live sessions.
        QuotaExhausted: The license's monthly audio quota is used up.
        AuthenticationFailed: The license was revoked, disabled, expired or deleted since
            the key was checked (``code`` ``invalid_api_key``).
    """
    license_id = credential.license.pk
    refusal: Exception | None = None
    with transaction.atomic():
        # First statement of the transaction: see license_slots_lock for why.
        if not license_slots_lock(license_id=license_id, now=now):
            refusal = AuthenticationFailed("This license key no longer exists.")
        # Re-read under the lock: an admin may have changed the limit or revoked the key.
        license = license_get(license_id=license_id) if refusal is None else None
        at = now or timezone.now()
        if refusal is None and license is not None:
            status = license.status(at)
            if status != "active":
                refusal = AuthenticationFailed(STATUS_MESSAGES[status])
        if refusal is None and license is not None:
            stale_s = heartbeat_stale_s()
            # Committed even when refusing below: those rows are dead either way.
            conversation_end_stale(now=at, license_id=license_id, stale_s=stale_s)
            live = license_live_sessions(license_id=license_id, stale_s=stale_s, now=at)
            if live >= license.max_concurrent_sessions:
                refusal = TooManySessions(license.max_concurrent_sessions)
            elif license_quota_exhausted(license=license, now=at):
                refusal = QuotaExhausted()
            else:
                conversation_start(
                    license_id=license_id,
                    transport=transport,
                    dialect=dialect,
                    user_id=user_id,
                    character_id=character_id,
                    model=model,
                    conversation_id=session_id,
                    worker_id=worker_id,
                    now=at,
                )
    if refusal is not None:
        raise refusal
