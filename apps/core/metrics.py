"""The server's Prometheus metrics, defined once, and the one-line helpers call sites use.

Every metric name lives here; code elsewhere calls ``event_in(type)``, ``session_opened(...)``
and the like, so names, units and label sets are reviewed in one place. ``GET /metrics``
(``apps.api.views.metrics``) serves them in the Prometheus text format through ``render``.

Label values are bounded, because each distinct value is a time series kept for the life
of the process (and of the multiprocess directory): a client that could choose a label
value could exhaust the server's memory and the monitoring system's. So:

* event types: the known client and server event types; anything else a client sends
  (unknown, misspelled, not a string) is counted as ``invalid``, and a server event type
  missing from the list as ``other``;
* error codes and refusal reasons: the codes this server uses; anything else is ``other``
  (``none`` for an error without a code);
* transports, end reasons, turn stages and executors: fixed lists; anything else ``other``.

The helpers never raise for an unexpected value (a metric must never break a session) and
are cheap enough for the per-frame path: the labelled children are created once at import,
so a call is a dict lookup and an increment (see ``tests/core/test_metrics.py`` for the cost
per call).

Several worker processes: set ``PROMETHEUS_MULTIPROC_DIR`` to a directory shared by every
worker of one host, *in the environment of the process before it starts* (prometheus_client
chooses its storage when it is imported; a Django setting would come too late). Each
process then keeps its values in memory-mapped files there and ``render`` merges them with
``MultiProcessCollector``. The deployment must empty the directory when it starts (before
any worker runs): files of old processes would otherwise add to the counters forever, and a
new process given an old one's pid would inherit its figures. Open-session gauges use the
``livesum`` mode, so a process's share disappears when it is marked dead; this module marks
dead every process of the directory that no longer runs, when it is imported (a worker
starting) and at each scrape, so a killed worker's sessions stop counting without a
restart. Pids are only meaningful within one pid namespace: one directory per host (or
container), never one shared across machines.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ParamSpec, TypeVar

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics import MetricWrapperBase

P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M", bound=MetricWrapperBase)

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client picked its value storage from the environment when it was imported;
# follow its choice rather than re-reading the variable, so the two can never disagree.
MULTIPROCESS: bool = values.ValueClass is not values.MutexValue
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The Prometheus text format (0.0.4), which every Prometheus version scrapes."""

INVALID = "invalid"
OTHER = "other"
NO_CODE = "none"

TRANSPORTS = ("websocket", "webrtc")
# The GA names; beta clients use the same spelling for client events (the codec translates
# only payloads). Kept in step with apps.realtime.protocol.client_events.EVENT_MODELS (a test
# checks), spelled out here so this module does not depend on the realtime app.
CLIENT_EVENT_TYPES = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "output_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
)
# Counted GA-shaped, as the session emits them (the transport renders beta names later).
SERVER_EVENT_TYPES = (
    "error",
    "session.created",
    "session.updated",
    "conversation.item.added",
    "conversation.item.done",
    "conversation.item.retrieved",
    "conversation.item.truncated",
    "conversation.item.deleted",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
    "conversation.item.input_audio_transcription.failed",
    "conversation.item.input_audio_transcription.segment",
    "input_audio_buffer.committed",
    "input_audio_buffer.cleared",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.timeout_triggered",
    "output_audio_buffer.started",
    "output_audio_buffer.stopped",
    "output_audio_buffer.cleared",
    "response.created",
    "response.done",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.delta",
    "response.output_text.done",
    "response.output_audio_transcript.delta",
    "response.output_audio_transcript.done",
    "response.output_audio.delta",
    "response.output_audio.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "rate_limits.updated",
)
# The codes this server puts in ``error`` events and refusals (validation codes included).
ERROR_CODES = (
    # Bad input (protocol.errors, codec, handlers).
    "invalid_json",
    "invalid_type",
    "invalid_value",
    "unknown_parameter",
    "missing_required_parameter",
    "integer_below_min_value",
    "integer_above_max_value",
    "decimal_below_min_value",
    "decimal_above_max_value",
    "string_above_max_length",
    "string_below_min_length",
    "array_above_max_length",
    "array_below_min_length",
    "event_too_large",
    "request_too_large",
    "cannot_update_voice",
    "conversation_already_has_active_response",
    "input_audio_buffer_commit_empty",
    "input_audio_buffer_full",
    "input_audio_buffer_overflow",
    "item_already_exists",
    "item_delete_invalid_item_id",
    "item_retrieve_invalid_item_id",
    "item_truncate_invalid_item_id",
    "response_cancel_not_active",
    "context_length_exceeded",
    "insufficient_permissions",
    # Admission, credentials and limits.
    "admission_refused",
    "missing_api_key",
    "invalid_api_key",
    "invalid_user_id",
    "user_mismatch",
    "origin_not_allowed",
    "host_not_allowed",
    "model_not_found",
    "character_not_found",
    "rate_limit_exceeded",
    "too_many_sessions",
    "insufficient_quota",
    "session_expired",
    # The server's side.
    "server_error",
    "server_busy",
    "server_shutting_down",
)
# Why a session ended: Conversation.EndReason plus the consumer's own reasons.
CLOSE_REASONS = (
    "client_closed",
    "client_flooding",
    "client_not_reading",
    "server_shutdown",
    "server_error",
    "session_expired",
    "license_revoked",
    "invalid_api_key",
    "insufficient_quota",
    "error",
)
TURN_STAGES = ("transcript", "first_token", "first_audio")
EXECUTORS = ("audio", "asr", "tts")

# A voice turn should answer in well under a second; 5 s is already a failure to a user.
TURN_BUCKETS_S = (0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
# Executor jobs are milliseconds long; a wait of tens of milliseconds means a backlog.
EXECUTOR_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Saves normally take milliseconds; during a database outage items wait through retries.
STORE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# Live-gauge files are ``gauge_live<mode>_<pid>.db``; any metric file ends in ``_<pid>.db``.
_PID_FILE = re.compile(r"_(\d+)\.db$")


def _multiproc_dir() -> Path | None:
    if not MULTIPROCESS:
        return None
    path = os.environ.get(MULTIPROC_DIR_ENV) or os.environ.get(MULTIPROC_DIR_ENV.lower())
    if not path:
        raise RuntimeError(
            f"{MULTIPROC_DIR_ENV} is set but empty: name the directory the worker processes "
            "share for their metrics, or unset it for a single process."
        )
    return Path(path)


def _pid_running(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # It exists, under another user.
    return True


def prune_dead_processes() -> list[int]:
    """Mark dead every process whose metric files are in the multiprocess directory.

    Removes their live-gauge files (open sessions), so what they had open stops counting;
    their counters and histograms stay, so totals never go backwards. Safe to call from
    any worker at any time, and a no-op in single-process mode.

    Returns:
        The pids marked dead.
    """
    directory = _multiproc_dir()
    if directory is None:
        return []
    dead: set[int] = set()
    for path in directory.glob("gauge_live*.db"):
        match = _PID_FILE.search(path.name)
        if match is not None and not _pid_running(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in sorted(dead):
        try:
            multiprocess.mark_process_dead(pid, str(directory))
        except FileNotFoundError:
            pass  # Another worker or scrape removed it first.
    return sorted(dead)


def _prepare_multiprocess_dir() -> None:
    directory = _multiproc_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    prune_dead_processes()
    # Live-gauge files under our own pid were left by a dead process that had the same pid
    # (pids are reused, often the very same one after a restart): this process has not
    # written any yet (its metrics are created below), so they cannot be its own. Without
    # this it would open them and carry on from the dead process's open-session counts.
    try:
        multiprocess.mark_process_dead(os.getpid(), str(directory))
    except FileNotFoundError:
        pass  # A scrape pruned it meanwhile.


_prepare_multiprocess_dir()
# ``*_created`` series (a timestamp per labelled child) would double the output and exist
# only in single-process mode; nothing here needs them.
disable_created_metrics()


# --- the metrics ----------------------------------------------------------------------------

OPEN_SESSIONS = Gauge(
    "realtime_open_sessions",
    "Realtime sessions open now, by transport.",
    ["transport"],
    multiprocess_mode="livesum",
)
SESSIONS_CLOSED = Counter(
    "realtime_sessions_closed",
    "Realtime sessions ended, by transport and reason.",
    ["transport", "reason"],
)
CLIENT_EVENTS = Counter(
    "realtime_client_events",
    "Client events received, by type ('invalid': unparseable or unknown).",
    ["type"],
)
SERVER_EVENTS = Counter(
    "realtime_server_events",
    "Server events sent, by GA type.",
    ["type"],
)
ERRORS_SENT = Counter(
    "realtime_errors_sent",
    "Error events sent to clients, by error code.",
    ["code"],
)
CONNECTS_REFUSED = Counter(
    "realtime_connects_refused",
    "Connections refused before a session started, by error code.",
    ["reason"],
)
INBOUND_DROPPED = Counter(
    "realtime_inbound_dropped_frames",
    "Client frames dropped because the connection was over its inbound budget.",
)
TURN_LATENCY = Histogram(
    "realtime_turn_latency_seconds",
    "Time from the end of the user's speech (speech_stopped) to each stage of the answer.",
    ["stage"],
    buckets=TURN_BUCKETS_S,
)
EXECUTOR_WAIT = Histogram(
    "realtime_executor_wait_seconds",
    "Time a job waited in an executor's queue before a thread started it.",
    ["executor"],
    buckets=EXECUTOR_BUCKETS_S,
)
STORE_LAG = Histogram(
    "realtime_store_lag_seconds",
    "Time from a transcript item being queued to its being saved.",
    buckets=STORE_BUCKETS_S,
)
STORE_RETRIES = Counter(
    "realtime_store_retries",
    "Failed transcript/usage writes, each retried with backoff.",
)


def _children(metric: M, labels: Iterable[str]) -> dict[str, M]:
    return {label: metric.labels(label) for label in labels}


# Every labelled child exists from the start: the hot path only looks one up, and a
# dashboard sees zeros rather than missing series.
_OPEN = _children(OPEN_SESSIONS, (*TRANSPORTS, OTHER))
_CLOSED = {
    (transport, reason): SESSIONS_CLOSED.labels(transport, reason)
    for transport in (*TRANSPORTS, OTHER)
    for reason in (*CLOSE_REASONS, OTHER)
}
_CLOSE_REASONS = dict.fromkeys(CLOSE_REASONS)
_IN = _children(CLIENT_EVENTS, (*CLIENT_EVENT_TYPES, INVALID))
_IN_INVALID = _IN[INVALID]
_OUT = _children(SERVER_EVENTS, (*SERVER_EVENT_TYPES, OTHER))
_OUT_OTHER = _OUT[OTHER]
_ERRORS = _children(ERRORS_SENT, (*ERROR_CODES, NO_CODE, OTHER))
_REFUSED = _children(CONNECTS_REFUSED, (*ERROR_CODES, OTHER))
_TURN = _children(TURN_LATENCY, (*TURN_STAGES, OTHER))
_EXECUTOR = _children(EXECUTOR_WAIT, (*EXECUTORS, OTHER))


def _bounded(allowed: dict[str, object], value: object, fallback: str) -> str:
    """``value`` if it is one of ``allowed``'s labels, else ``fallback``."""
    try:
        return value if value in allowed else fallback  # type: ignore[return-value]
    except TypeError:  # an unhashable value from a careless caller
        return fallback


# --- helpers for call sites -----------------------------------------------------------------


def session_opened(transport: str) -> None:
    """A session started (admitted and accepted) on ``transport`` (websocket/webrtc)."""
    _OPEN[_bounded(_OPEN, transport, OTHER)].inc()


def session_closed(transport: str, reason: str) -> None:
    """A session opened with ``session_opened`` ended; call exactly once per session."""
    transport = _bounded(_OPEN, transport, OTHER)
    _OPEN[transport].dec()
    _CLOSED[transport, _bounded(_CLOSE_REASONS, reason, OTHER)].inc()


def event_in(event_type: str) -> None:
    """One client event received; pass ``"invalid"`` (or the raw type) when it did not parse."""
    try:
        child = _IN[event_type]
    except (KeyError, TypeError):
        child = _IN_INVALID
    child.inc()


def event_out(event_type: str) -> None:
    """One server event sent (its GA type)."""
    try:
        child = _OUT[event_type]
    except (KeyError, TypeError):
        child = _OUT_OTHER
    child.inc()


def error_sent(code: str | None) -> None:
    """One ``error`` event sent, with its ``error.code``."""
    _ERRORS[_bounded(_ERRORS, NO_CODE if code is None else code, OTHER)].inc()


def connect_refused(reason: str) -> None:
    """A connection refused before its session started; ``reason`` is the error code sent."""
    _REFUSED[_bounded(_REFUSED, reason, OTHER)].inc()


def inbound_dropped(frames: int = 1) -> None:
    """Client frames dropped over the connection's inbound budget."""
    INBOUND_DROPPED.inc(frames)


def turn_stage(stage: str, seconds: float) -> None:
    """Record how long after speech stopped a turn reached ``stage`` (see ``TurnClock``)."""
    _TURN[_bounded(_TURN, stage, OTHER)].observe(seconds)


def executor_wait(executor: str, seconds: float) -> None:
    """Record how long a job waited in ``executor``'s queue (audio/asr/tts)."""
    _EXECUTOR[_bounded(_EXECUTOR, executor, OTHER)].observe(seconds)


def timed_submit(executor: str, fn: Callable[P, T]) -> Callable[P, T]:
    """Wrap ``fn`` so that calling it records the time since the wrap as a queue wait.

    Wrap at the moment of submitting, e.g.
    ``loop.run_in_executor(pool, timed_submit("asr", fn), *args)``: the wait recorded is
    the time the job sat in the pool's queue before a thread picked it up.
    """
    child = _EXECUTOR[_bounded(_EXECUTOR, executor, OTHER)]
    submitted_s = time.perf_counter()

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        child.observe(time.perf_counter() - submitted_s)
        return fn(*args, **kwargs)

    return run


def store_saved(lag_s: float) -> None:
    """A transcript item was saved ``lag_s`` seconds after it was queued."""
    STORE_LAG.observe(lag_s)


def store_retry() -> None:
    """A transcript/usage write failed and will be retried."""
    STORE_RETRIES.inc()


class TurnClock:
    """Times one session's turns: each stage once per turn, from the end of speech.

    ``start`` at ``input_audio_buffer.speech_stopped``; ``mark("transcript")``,
    ``mark("first_token")`` and ``mark("first_audio")`` where those happen. A stage reached
    again in the same turn (a second sentence, a second response) is not recorded again,
    and nothing is recorded before the first ``start`` (a turn committed by the client has
    no end of speech to measure from). Event-loop only; not thread-safe.
    """

    __slots__ = ("_started_s", "_marked")

    def __init__(self) -> None:
        self._started_s: float | None = None
        self._marked: set[str] = set()

    def start(self) -> None:
        """The user stopped speaking: a new turn begins."""
        self._started_s = time.monotonic()
        self._marked.clear()

    def mark(self, stage: str) -> None:
        """The current turn reached ``stage``; recorded the first time only."""
        if self._started_s is None or stage in self._marked:
            return
        self._marked.add(stage)
        turn_stage(stage, time.monotonic() - self._started_s)


# --- exposition -----------------------------------------------------------------------------


def render() -> tuple[bytes, str]:
    """The current metrics in the Prometheus text format, and their content type.

    In multiprocess mode, the files of every worker merged into a fresh registry (after
    marking dead the workers that are gone); otherwise this process's default registry,
    which also holds prometheus_client's process and Python collectors.
    """
    if not MULTIPROCESS:
        return generate_latest(REGISTRY), CONTENT_TYPE
    prune_dead_processes()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE
