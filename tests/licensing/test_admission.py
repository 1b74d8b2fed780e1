"""Admission: the license's limits and the new row are one atomic step; dead slots free up."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.conversations.models import Conversation
from apps.conversations.services import (
    UsageDelta,
    conversation_add_usage,
    conversation_end,
    conversation_end_dead_workers,
    conversation_end_stale,
    conversation_heartbeat,
    conversation_start,
    current_worker_id,
)
from apps.core.workers import host_name, parse_worker_id, process_start_token, worker_alive
from apps.licensing.admission import QuotaExhausted, TooManySessions, session_admit
from apps.licensing.models import License
from apps.licensing.services import AuthenticationFailed, Credential, license_create

pytestmark = pytest.mark.django_db


def _credential(license: License) -> Credential:
    return Credential(kind="license", license=license)


def _admit(license: License, session_id: str, **overrides) -> None:
    kwargs = {
        "credential": _credential(license),
        "session_id": session_id,
        "user_id": "u1",
        "transport": "websocket",
        "dialect": "ga",
        "character_id": None,
        "model": "scripted-echo",
        "worker_id": current_worker_id(),
    }
    kwargs.update(overrides)
    session_admit(**kwargs)


@pytest.fixture
def one_slot(db) -> License:
    return license_create(name="one", max_concurrent_sessions=1).license


def test_limit_is_respected_and_a_refusal_inserts_nothing(db) -> None:
    license = license_create(name="two", max_concurrent_sessions=2).license
    _admit(license, "sess_a")
    _admit(license, "sess_b")
    with pytest.raises(TooManySessions) as refused:
        _admit(license, "sess_c")
    assert refused.value.limit == 2
    assert refused.value.code == "too_many_sessions"
    assert not Conversation.objects.filter(pk="sess_c").exists()
    row = Conversation.objects.get(pk="sess_a")
    assert row.worker_id == current_worker_id()
    assert row.heartbeat_at == row.started_at
    assert (row.user_id, row.model, row.transport, row.dialect) == (
        "u1",
        "scripted-echo",
        "websocket",
        "ga",
    )
    # Ending one frees its slot.
    conversation_end(conversation_id="sess_a", reason="client_closed")
    _admit(license, "sess_c")


def test_limit_is_read_under_the_lock_not_from_the_credential(one_slot) -> None:
    stale_copy = License.objects.get(pk=one_slot.pk)
    _admit(stale_copy, "sess_a")
    License.objects.filter(pk=one_slot.pk).update(max_concurrent_sessions=2)
    _admit(stale_copy, "sess_b")  # The credential's copy still says 1.
    with pytest.raises(TooManySessions):
        _admit(stale_copy, "sess_c")


def test_license_revoked_since_authentication_is_refused(one_slot) -> None:
    License.objects.filter(pk=one_slot.pk).update(revoked_at=timezone.now(), active=False)
    with pytest.raises(AuthenticationFailed, match="revoked") as refused:
        _admit(one_slot, "sess_a")
    assert refused.value.code == "invalid_api_key"
    assert not Conversation.objects.exists()


def test_stale_heartbeat_frees_the_slot_and_ends_the_row(one_slot, settings) -> None:
    settings.REALTIME_HEARTBEAT_STALE_S = 60
    t0 = timezone.now()
    _admit(one_slot, "sess_old", now=t0)
    with pytest.raises(TooManySessions):
        _admit(one_slot, "sess_new", now=t0 + timedelta(seconds=59))
    # A heartbeat keeps the slot taken past the first minute...
    assert (
        conversation_heartbeat(conversation_ids=["sess_old"], now=t0 + timedelta(seconds=30)) == 1
    )
    with pytest.raises(TooManySessions):
        _admit(one_slot, "sess_new", now=t0 + timedelta(seconds=75))
    # ...and once it is older than a minute the slot is free, and the row is ended.
    _admit(one_slot, "sess_new", now=t0 + timedelta(seconds=91))
    old = Conversation.objects.get(pk="sess_old")
    assert old.end_reason == "stale"
    assert old.ended_at == t0 + timedelta(seconds=30)  # Its last sign of life.
    assert Conversation.objects.get(pk="sess_new").ended_at is None


def test_quota_exhausted_refuses_without_a_row(db) -> None:
    license = license_create(name="q", monthly_audio_minutes_quota=1).license
    used = conversation_start(license_id=license.pk, transport="websocket")
    conversation_add_usage(conversation_id=used.pk, usage=UsageDelta(input_audio_ms=60_000))
    conversation_end(conversation_id=used.pk, reason="client_closed")
    with pytest.raises(QuotaExhausted) as refused:
        _admit(license, "sess_q")
    assert refused.value.code == "insufficient_quota"
    assert not Conversation.objects.filter(pk="sess_q").exists()


def test_heartbeat_is_one_update_for_many_and_skips_ended_rows(db) -> None:
    ids = [conversation_start(license_id=None, transport="websocket").pk for _ in range(3)]
    conversation_end(conversation_id=ids[2], reason="client_closed")
    later = timezone.now() + timedelta(seconds=20)
    with CaptureQueriesContext(connection) as queries:
        assert conversation_heartbeat(conversation_ids=ids, now=later) == 2
    assert len(queries) == 1
    beats = dict(Conversation.objects.values_list("pk", "heartbeat_at"))
    assert beats[ids[0]] == beats[ids[1]] == later
    assert beats[ids[2]] != later


def test_end_stale_ends_only_silent_open_rows(db, settings) -> None:
    settings.REALTIME_HEARTBEAT_STALE_S = 60
    t0 = timezone.now()
    silent = conversation_start(license_id=None, transport="websocket", now=t0)
    beating = conversation_start(license_id=None, transport="websocket", now=t0)
    closed = conversation_start(license_id=None, transport="websocket", now=t0)
    conversation_end(conversation_id=closed.pk, reason="client_closed", now=t0)
    conversation_heartbeat(conversation_ids=[beating.pk], now=t0 + timedelta(seconds=50))
    assert conversation_end_stale(now=t0 + timedelta(seconds=61)) == 1
    rows = {c.pk: c for c in Conversation.objects.all()}
    assert rows[silent.pk].end_reason == "stale"
    assert rows[beating.pk].ended_at is None
    assert rows[closed.pk].end_reason == "client_closed"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def test_current_worker_id_names_this_live_process() -> None:
    worker = parse_worker_id(current_worker_id())
    assert worker is not None
    assert worker.host == host_name()
    assert worker.pid == os.getpid()
    assert worker.token == process_start_token(worker.pid)
    assert worker_alive(worker)


def test_dead_workers_rows_are_ended_at_start_up(db) -> None:
    me = current_worker_id()
    host = host_name()
    own_pid_other_start = f"{host}:{parse_worker_id(me).pid}:bootid0.1"  # pid reused
    rows = {
        "alive": me,
        "dead": f"{host}:{_dead_pid()}:{parse_worker_id(me).token}",
        "reused": own_pid_other_start,
        "other_host": f"not-{host}:{_dead_pid()}:x.1",
        "no_worker": "",
    }
    for name, worker_id in rows.items():
        conversation_start(
            license_id=None,
            transport="websocket",
            conversation_id=f"sess_{name}",
            worker_id=worker_id,
        )
    conversation_end(conversation_id="sess_no_worker", reason="client_closed")
    assert conversation_end_dead_workers(host=host) == 2
    ended = dict(Conversation.objects.values_list("pk", "end_reason"))
    assert ended == {
        "sess_alive": "",
        "sess_dead": "worker_lost",
        "sess_reused": "worker_lost",
        "sess_other_host": "",
        "sess_no_worker": "client_closed",
    }


@pytest.mark.django_db(transaction=True)
def test_threads_admitting_at_once_on_sqlite_never_exceed_the_limit() -> None:
    """Each thread has its own SQLite connection: the write-first lock serialises them."""
    license = license_create(name="race", max_concurrent_sessions=3).license
    start = threading.Barrier(6)
    admitted: list[str] = []
    errors: list[BaseException] = []

    def hammer(n: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(15):
                try:
                    _admit(license, f"sess_{n}_{i}")
                    admitted.append(f"sess_{n}_{i}")
                except TooManySessions:
                    pass
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(admitted) == 3
    assert Conversation.objects.filter(license=license, ended_at__isnull=True).count() == 3
