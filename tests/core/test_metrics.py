"""apps.core.metrics: helpers move the right series, labels stay bounded, workers merge."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from apps.core import metrics
from apps.realtime.consumers import CLOSE_CODES
from apps.realtime.protocol.client_events import EVENT_MODELS

ROOT = Path(__file__).resolve().parents[2]
# Every metric the server exports (also checked by the /metrics view tests).
METRIC_NAMES = {
    "realtime_open_sessions",
    "realtime_sessions_closed",
    "realtime_client_events",
    "realtime_server_events",
    "realtime_errors_sent",
    "realtime_connects_refused",
    "realtime_inbound_dropped_frames",
    "realtime_turn_latency_seconds",
    "realtime_executor_wait_seconds",
    "realtime_store_lag_seconds",
    "realtime_store_retries",
}


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def label_values(family: str, label: str) -> set[str]:
    found = set()
    for metric in REGISTRY.collect():
        if metric.name == family:
            found |= {sample.labels[label] for sample in metric.samples if label in sample.labels}
    return found


def test_each_helper_moves_its_own_series() -> None:
    checks = [
        (
            lambda: metrics.event_in("response.create"),
            "realtime_client_events_total",
            {"type": "response.create"},
        ),
        (
            lambda: metrics.event_out("response.done"),
            "realtime_server_events_total",
            {"type": "response.done"},
        ),
        (
            lambda: metrics.error_sent("invalid_value"),
            "realtime_errors_sent_total",
            {"code": "invalid_value"},
        ),
        (
            lambda: metrics.connect_refused("too_many_sessions"),
            "realtime_connects_refused_total",
            {"reason": "too_many_sessions"},
        ),
        (metrics.inbound_dropped, "realtime_inbound_dropped_frames_total", {}),
        (metrics.store_retry, "realtime_store_retries_total", {}),
        (lambda: metrics.store_saved(0.02), "realtime_store_lag_seconds_count", {}),
        (
            lambda: metrics.turn_stage("first_audio", 0.4),
            "realtime_turn_latency_seconds_count",
            {"stage": "first_audio"},
        ),
        (
            lambda: metrics.executor_wait("tts", 0.001),
            "realtime_executor_wait_seconds_count",
            {"executor": "tts"},
        ),
    ]
    for call, name, labels in checks:
        before = value(name, **labels)
        call()
        assert value(name, **labels) == before + 1, name


def test_sessions_open_and_close_by_transport_and_reason() -> None:
    open_ws = value("realtime_open_sessions", transport="websocket")
    open_rtc = value("realtime_open_sessions", transport="webrtc")
    closed = value("realtime_sessions_closed_total", transport="websocket", reason="client_closed")
    metrics.session_opened("websocket")
    metrics.session_opened("webrtc")
    assert value("realtime_open_sessions", transport="websocket") == open_ws + 1
    assert value("realtime_open_sessions", transport="webrtc") == open_rtc + 1
    metrics.session_closed("websocket", "client_closed")
    metrics.session_closed("webrtc", "session_expired")
    assert value("realtime_open_sessions", transport="websocket") == open_ws
    assert value("realtime_open_sessions", transport="webrtc") == open_rtc
    assert (
        value("realtime_sessions_closed_total", transport="websocket", reason="client_closed")
        == closed + 1
    )


@pytest.mark.parametrize(
    "bad", ["no.such.event", "x" * 10_000, "\ud800", "", "Response.Create", None, 7, ["list"]]
)
def test_client_chosen_event_types_all_count_as_invalid(bad: object) -> None:
    known = label_values("realtime_client_events", "type")
    before = value("realtime_client_events_total", type="invalid")
    metrics.event_in(bad)  # type: ignore[arg-type]
    assert value("realtime_client_events_total", type="invalid") == before + 1
    assert label_values("realtime_client_events", "type") == known


def test_every_label_set_is_closed() -> None:
    """Nothing a caller passes adds a series: unknowns land in invalid/other/none."""
    families = {
        "realtime_client_events": "type",
        "realtime_server_events": "type",
        "realtime_errors_sent": "code",
        "realtime_connects_refused": "reason",
        "realtime_sessions_closed": "reason",
        "realtime_open_sessions": "transport",
        "realtime_turn_latency_seconds": "stage",
        "realtime_executor_wait_seconds": "executor",
    }
    before = {family: label_values(family, label) for family, label in families.items()}
    for junk in ("made_up", "\ud800", "a" * 500, None, ("t",), {"d": 1}):
        metrics.event_in(junk)  # type: ignore[arg-type]
        metrics.event_out(junk)  # type: ignore[arg-type]
        metrics.error_sent(junk)  # type: ignore[arg-type]
        metrics.connect_refused(junk)  # type: ignore[arg-type]
        metrics.session_opened(junk)  # type: ignore[arg-type]
        metrics.session_closed(junk, junk)  # type: ignore[arg-type]
        metrics.turn_stage(junk, 0.1)  # type: ignore[arg-type]
        metrics.executor_wait(junk, 0.1)  # type: ignore[arg-type]
    after = {family: label_values(family, label) for family, label in families.items()}
    assert after == before
    assert value("realtime_server_events_total", type="other") >= 6
    assert value("realtime_errors_sent_total", code="other") >= 5
    assert value("realtime_errors_sent_total", code="none") >= 1
    assert value("realtime_connects_refused_total", reason="other") >= 6
    assert value("realtime_sessions_closed_total", transport="other", reason="other") >= 6


def test_client_event_types_are_the_protocols() -> None:
    assert set(metrics.CLIENT_EVENT_TYPES) == set(EVENT_MODELS)


def test_every_server_event_the_session_emits_has_its_own_label() -> None:
    # Dotted "type" literals in the realtime app are server events (client events are
    # parsed, never written); one missing from the list would be counted as "other".
    emitted = set()
    for path in (ROOT / "apps" / "realtime").rglob("*.py"):
        emitted |= set(re.findall(r'"type": "([a-z_]+(?:\.[a-z_]+)+)"', path.read_text()))
    assert emitted, "the scan found nothing: the pattern no longer matches the code"
    assert emitted - {"realtime.item"} <= set(metrics.SERVER_EVENT_TYPES)
    assert "error" in metrics.SERVER_EVENT_TYPES


def test_every_error_code_the_server_uses_has_its_own_label() -> None:
    used = set(CLOSE_CODES)
    for app in ("realtime", "licensing", "api"):
        for path in (ROOT / "apps" / app).rglob("*.py"):
            used |= set(re.findall(r'\bcode\s*=\s*"([a-z_]+)"', path.read_text()))
    assert "input_audio_buffer_full" in used, "the scan found nothing"
    assert used <= set(metrics.ERROR_CODES)


def test_timed_submit_records_the_wait_in_the_executor_queue() -> None:
    count = value("realtime_executor_wait_seconds_count", executor="asr")
    total_s = value("realtime_executor_wait_seconds_sum", executor="asr")
    release = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(release.wait)  # the only thread is busy: the next job queues
        queued = pool.submit(metrics.timed_submit("asr", lambda a, b=0: a + b), 2, b=3)
        time.sleep(0.1)
        assert value("realtime_executor_wait_seconds_count", executor="asr") == count
        release.set()
        assert queued.result(timeout=5) == 5
    assert value("realtime_executor_wait_seconds_count", executor="asr") == count + 1
    waited_s = value("realtime_executor_wait_seconds_sum", executor="asr") - total_s
    assert 0.09 <= waited_s < 5


def test_turn_clock_records_each_stage_once_per_turn() -> None:
    def counts() -> dict[str, float]:
        return {
            stage: value("realtime_turn_latency_seconds_count", stage=stage)
            for stage in metrics.TURN_STAGES
        }

    start = counts()
    fast = value("realtime_turn_latency_seconds_bucket", stage="transcript", le="0.05")
    clock = metrics.TurnClock()
    clock.mark("first_token")  # no speech has stopped yet: nothing to measure from
    assert counts() == start
    clock.start()
    time.sleep(0.06)
    clock.mark("transcript")
    clock.mark("first_audio")
    clock.mark("first_audio")  # the second sentence of the same answer
    assert counts() == {
        **start,
        "transcript": start["transcript"] + 1,
        "first_audio": start["first_audio"] + 1,
    }
    # Measured from start(): the 60 ms wait puts it above the 50 ms bucket.
    assert value("realtime_turn_latency_seconds_bucket", stage="transcript", le="0.05") == fast
    clock.start()
    clock.mark("first_audio")
    assert counts()["first_audio"] == start["first_audio"] + 2


def test_render_is_the_prometheus_text_format() -> None:
    metrics.event_in("session.update")
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    for name in METRIC_NAMES:
        assert name in families, name
    assert families["realtime_open_sessions"].type == "gauge"
    assert families["realtime_turn_latency_seconds"].type == "histogram"
    # Buckets span 50 ms to 5 s.
    bounds = {
        s.labels["le"]
        for s in families["realtime_turn_latency_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert {"0.05", "5.0", "+Inf"} <= bounds


# --- several worker processes ----------------------------------------------------------------

# Run as a separate interpreter: prometheus_client picks its storage from the environment
# when it is imported, so multiprocess mode cannot be switched on inside this process.
WORKER = textwrap.dedent(
    """
    import json, os, shutil, sys
    from pathlib import Path

    args = json.loads(sys.argv[1])
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if args.get("plant_as_own"):
        # What a dead process with this very pid left behind (pids get reused).
        shutil.copy(args["plant_as_own"], directory / f"gauge_livesum_{os.getpid()}.db")

    from apps.core import metrics

    assert metrics.MULTIPROCESS
    for transport in args.get("open", []):
        metrics.session_opened(transport)
    for kind in args.get("events", []):
        metrics.event_in(kind)
    if args.get("save_gauge_to"):
        shutil.copy(directory / f"gauge_livesum_{os.getpid()}.db", args["save_gauge_to"])
    if args.get("render"):
        sys.stdout.write(metrics.render()[0].decode())
    if args.get("wait"):
        print("ready", flush=True)
        sys.stdin.readline()
    """
)


def _worker_cmd(**args: object) -> list[str]:
    return [sys.executable, "-c", WORKER, json.dumps(args)]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_workers_are_merged_and_dead_ones_stop_counting_open_sessions(tmp_path: Path) -> None:
    shared = tmp_path / "prom"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared), "PYTHONPATH": str(ROOT)}

    def run(**args: object) -> str:
        done = subprocess.run(
            _worker_cmd(**args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    # Worker A opens two sessions and dies without closing them (as a SIGKILLed worker).
    stale = tmp_path / "stale-gauge.db"
    run(
        open=["websocket", "websocket"],
        events=["session.update", "no.such.type"],
        save_gauge_to=str(stale),
    )
    # Worker B stays alive with one WebRTC session open.
    worker_b = subprocess.Popen(
        _worker_cmd(open=["webrtc"], events=["session.update"], wait=True),
        env=env,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker_b.stdout is not None and worker_b.stdout.readline().strip() == "ready"
        merged = _samples(run(render=True))
        # Counters add up across workers, the dead one's included.
        assert merged["realtime_client_events_total", (("type", "session.update"),)] == 2
        assert merged["realtime_client_events_total", (("type", "invalid"),)] == 1
        # Open sessions: only the live worker's.
        assert merged["realtime_open_sessions", (("transport", "webrtc"),)] == 1
        assert merged["realtime_open_sessions", (("transport", "websocket"),)] == 0
        assert not any("pid" in dict(labels) for _, labels in merged), "livesum: no pid label"

        # A new worker that was given the dead worker's pid must not inherit its sessions.
        merged = _samples(run(plant_as_own=str(stale), open=["websocket"], render=True))
        assert merged["realtime_open_sessions", (("transport", "websocket"),)] == 1
        assert merged["realtime_open_sessions", (("transport", "webrtc"),)] == 1
    finally:
        worker_b.communicate("\n", timeout=30)
    assert worker_b.returncode == 0
    # Worker B is gone too: nobody has a session open any more.
    merged = _samples(run(render=True))
    assert merged["realtime_open_sessions", (("transport", "webrtc"),)] == 0
    assert merged["realtime_open_sessions", (("transport", "websocket"),)] == 0
    assert merged["realtime_client_events_total", (("type", "session.update"),)] == 2
