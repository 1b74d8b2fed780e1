"""A real Daphne (scripted engines) stopped, killed and revoked under live sessions.

SIGTERM ends each session with an ``error`` and close 1001, saving its partial item, usage
and end; SIGKILL leaves rows that the next start ends, so a one-session license connects at
once; a license revoked by the CLI in another process closes the session (in-memory
channel layer); and nothing the server logs carries a key from a URL or a subprotocol.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from apps.realtime import consumers
from tests.helpers import (
    free_port,
    manage,
    project_env,
    scripted_server_env,
    start_daphne,
    wait_http,
)

pytestmark = pytest.mark.asyncio(loop_scope="function")


class Server:
    """One Daphne process on a state directory that outlives it (restart, kill)."""

    def __init__(self, var_dir: Path, **env: str) -> None:
        self.var_dir = var_dir
        self.env = scripted_server_env(var_dir, **env)
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(mode="w+", suffix=".log", delete=False)
        self.proc: subprocess.Popen[str] | None = None

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = start_daphne(self.env, self.port, self.log)
        wait_http(f"http://127.0.0.1:{self.port}/healthz")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def rss_mb(self) -> float:
        """The server process's resident memory."""
        assert self.proc is not None
        pages = int(Path(f"/proc/{self.proc.pid}/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    def output(self) -> str:
        return Path(self.log.name).read_text()

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.var_dir / "db.sqlite3") as db:
            return db.execute(sql, args).fetchall()


@contextmanager
def server(tmp_path: Path, **env: str) -> Iterator[tuple[Server, str]]:
    srv = Server(tmp_path, **env)
    manage(srv.env, "migrate", "--noinput")
    manage(srv.env, "seed_demo")  # the voice catalogue
    key = manage(srv.env, "createlicense", "live", "--max-sessions", "1").stdout.splitlines()[-1]
    srv.start()
    try:
        yield srv, key
    finally:
        srv.stop()
        os.unlink(srv.log.name)


async def _until(ws: Any, kind: str, timeout_s: float = 10.0) -> dict[str, Any]:
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
        if event["type"] == kind:
            return event


async def _rest(ws: Any, timeout_s: float = 12.0) -> tuple[list[dict[str, Any]], int | None]:
    """Events until the server closes, and its close code."""
    events: list[dict[str, Any]] = []
    try:
        while True:
            events.append(json.loads(await asyncio.wait_for(ws.recv(), timeout_s)))
    except ConnectionClosed as closed:
        return events, closed.rcvd.code if closed.rcvd else None


async def _text_turn_started(ws: Any, text: str = "tell me a long story " * 20) -> str:
    """Ask for a (slow) text reply and return once it is streaming."""
    await ws.send(
        json.dumps(
            {
                "type": "session.update",
                "session": {"type": "realtime", "output_modalities": ["text"]},
            }
        )
    )
    await ws.send(
        json.dumps(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
    )
    await ws.send(json.dumps({"type": "response.create"}))
    delta = await _until(ws, "response.output_text.delta", timeout_s=60)
    return str(delta["item_id"])


@pytest.mark.parametrize("mid_response", [False, True])
async def test_sigterm_closes_sessions_cleanly_and_saves_them(
    tmp_path: Path, mid_response: bool
) -> None:
    with server(tmp_path, SCRIPTED_LLM_DELAY_S="0.2") as (srv, key):
        async with ws_connect(
            f"{srv.ws}/v1/realtime", additional_headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            created = await _until(ws, "session.created")
            session_id = created["session"]["id"]
            item_id = await _text_turn_started(ws) if mid_response else None
            assert srv.proc is not None
            stopped_at = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            events, code = await _rest(ws)
            srv.proc.wait(timeout=15)
            exit_s = time.monotonic() - stopped_at
        errors = [e for e in events if e["type"] == "error"]
        assert errors and errors[-1]["error"]["code"] == "server_shutting_down", events
        assert code == 1001
        assert exit_s < 10, exit_s
        ((ended, reason),) = srv.query(
            "SELECT ended_at, end_reason FROM conversations_conversation WHERE id = ?", session_id
        )
        assert ended is not None and reason == "server_shutdown"
        if mid_response:
            done = [e for e in events if e["type"] == "response.done"]
            assert done and done[0]["response"]["status"] == "cancelled"
            ((status, text),) = srv.query(
                "SELECT status, text FROM conversations_conversationitem WHERE item_id = ?",
                item_id,
            )
            assert status == "incomplete" and text.strip()


async def test_after_sigkill_a_restarted_server_frees_the_dead_sessions_slot(
    tmp_path: Path,
) -> None:
    with server(tmp_path) as (srv, key):
        headers = {"Authorization": f"Bearer {key}"}
        ws = await ws_connect(f"{srv.ws}/v1/realtime", additional_headers=headers)
        await _until(ws, "session.created")
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(timeout=10)
        await ws.close()
        (open_rows,) = srv.query(
            "SELECT count(*) FROM conversations_conversation WHERE ended_at IS NULL"
        )
        assert open_rows == (1,)
        srv.start()
        async with ws_connect(f"{srv.ws}/v1/realtime", additional_headers=headers) as again:
            first = json.loads(await asyncio.wait_for(again.recv(), 10))
            assert first["type"] == "session.created", first
        (reason,) = srv.query(
            "SELECT end_reason FROM conversations_conversation ORDER BY started_at LIMIT 1"
        )
        assert reason == ("worker_lost",)


async def test_a_license_revoked_by_the_cli_closes_its_session(tmp_path: Path) -> None:
    with server(tmp_path, REALTIME_LICENSE_CHECK_S="1") as (srv, key):
        async with ws_connect(
            f"{srv.ws}/v1/realtime", additional_headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            await _until(ws, "session.created")
            ((license_id,),) = srv.query("SELECT id FROM licensing_license WHERE name = 'live'")
            revoked_at = time.monotonic()
            manage(srv.env, "revokelicense", str(license_id))
            events, code = await _rest(ws, timeout_s=8)
            closed_after_s = time.monotonic() - revoked_at
        assert events[-1]["error"]["code"] == "invalid_api_key"
        assert "revoked" in events[-1]["error"]["message"]
        assert code == 4001
        assert closed_after_s < 5, closed_after_s


async def test_keys_never_reach_the_logs(tmp_path: Path) -> None:
    with server(tmp_path, LOG_LEVEL="DEBUG") as (srv, key):
        ek_like = "ek_" + "x" * 38
        async with ws_connect(f"{srv.ws}/v1/realtime?api_key={key}&model=scripted-echo") as ws:
            await _until(ws, "session.created")
        async with ws_connect(
            f"{srv.ws}/v1/realtime",
            subprotocols=["realtime", f"openai-insecure-api-key.{ek_like}"],  # type: ignore[list-item]
        ) as ws:
            await _rest(ws, timeout_s=5)
        with pytest.raises(urllib.error.HTTPError):  # 401: a key in the query is not read
            await asyncio.to_thread(
                urllib.request.urlopen, f"http://127.0.0.1:{srv.port}/v1/models?api_key={key}"
            )
        srv.stop()
        log = srv.output()
    assert "WSCONNECT" in log or "realtime session started" in log, log[-2000:]
    assert key not in log
    assert key[:12] not in log
    assert ek_like[:12] not in log
    assert "api_key=" not in log


async def test_sigterm_while_the_embedded_model_generates_exits_promptly(tmp_path: Path) -> None:
    srv = Server(tmp_path)
    srv.env = project_env(tmp_path, VOICE_WARM_UP="true")
    manage(srv.env, "migrate", "--noinput")
    key = manage(srv.env, "seed_demo").stdout.splitlines()[-1]
    srv.start()
    try:
        async with ws_connect(
            f"{srv.ws}/v1/realtime", additional_headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            await _until(ws, "session.created", timeout_s=60)
            await _text_turn_started(ws, "Write a long essay about the history of Rome.")
            assert srv.proc is not None
            stopped_at = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            events, code = await _rest(ws)
            srv.proc.wait(timeout=30)
            exit_s = time.monotonic() - stopped_at
    finally:
        srv.stop()
        os.unlink(srv.log.name)
    assert code == 1001
    assert [e["error"]["code"] for e in events if e["type"] == "error"] == ["server_shutting_down"]
    assert exit_s < 10, exit_s


async def test_a_client_that_stops_reading_is_closed_and_memory_stays_bounded(
    tmp_path: Path,
) -> None:
    # Daphne writes without backpressure; the server watches its socket's backlog instead.
    with server(tmp_path, REALTIME_OUTBOX_STALL_S="2", REALTIME_SEND_BACKLOG_BYTES="1048576") as (
        srv,
        key,
    ):
        assert srv.proc is not None
        ws = await ws_connect(
            f"{srv.ws}/v1/realtime",
            additional_headers={"Authorization": f"Bearer {key}"},
            max_queue=1,
            max_size=None,
        )
        await _until(ws, "session.created")
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
                }
            )
        )
        await _until(ws, "session.updated")
        ten_s = base64.b64encode(b"\x01\x00" * 24_000 * 10).decode()
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": ten_s}))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        item_id = (await _until(ws, "input_audio_buffer.committed"))["item_id"]
        baseline_mb = srv.rss_mb()
        # From here on the client reads nothing while asking for ~640 KB replies.
        retrieve = json.dumps({"type": "conversation.item.retrieve", "item_id": item_id})
        started = time.monotonic()
        peak_mb = baseline_mb
        for _ in range(150):
            try:
                await ws.send(retrieve)
            except ConnectionClosed:
                break
            await asyncio.sleep(0.02)
            peak_mb = max(peak_mb, srv.rss_mb())
        for _ in range(40):
            rows = srv.query("SELECT end_reason FROM conversations_conversation")
            if rows and rows[0][0]:
                break
            await asyncio.sleep(0.25)
            peak_mb = max(peak_mb, srv.rss_mb())
        closed_after_s = time.monotonic() - started
        _, code = await _rest(ws, timeout_s=10)
    assert rows == [("client_not_reading",)], rows
    # The close frame queues behind megabytes the client never reads, so it may instead see
    # the connection dropped when the closing handshake times out.
    assert code in (1008, None)
    assert closed_after_s < 15, closed_after_s
    # 150 replies of ~640 KB (~96 MB) were asked for; only the bounded buffers were held.
    assert peak_mb - baseline_mb < 50, (baseline_mb, peak_mb)


@pytest.mark.parametrize("frame_chars", [54, 64_050])
async def test_a_flooding_client_is_slowed_then_closed_with_bounded_memory(
    tmp_path: Path, frame_chars: int
) -> None:
    with server(tmp_path) as (srv, key):
        assert srv.proc is not None
        ws = await ws_connect(
            f"{srv.ws}/v1/realtime",
            additional_headers={"Authorization": f"Bearer {key}"},
            max_size=None,
        )
        await _until(ws, "session.created")
        audio = base64.b64encode(b"\x00" * ((frame_chars - 50) // 4 * 3)).decode()
        frame = json.dumps({"type": "input_audio_buffer.append", "audio": audio})
        baseline_mb = peak_mb = srv.rss_mb()

        async def read_all() -> None:
            # Reading while flooding, so the server's close frame is seen when it comes.
            async for _ in ws:
                pass

        reader = asyncio.ensure_future(read_all())
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < 15 and not reader.done():
            try:
                await asyncio.wait_for(ws.send(frame), 1)
            except TimeoutError:
                pass  # the server stopped reading: TCP pushes back
            except ConnectionClosed:
                break
            sent += 1
            if sent % 100 == 0:
                peak_mb = max(peak_mb, srv.rss_mb())
                await asyncio.sleep(0)
        await asyncio.wait_for(ws.wait_closed(), 10)
        await asyncio.gather(reader, return_exceptions=True)
        code = ws.close_code
        ((reason,),) = srv.query("SELECT end_reason FROM conversations_conversation")
    assert code == 1008, (code, sent)
    assert reason == "client_flooding"
    assert peak_mb - baseline_mb < 50, (baseline_mb, peak_mb, sent)


async def test_a_long_items_audio_arrives_whole_when_sent_in_fragments(tmp_path: Path) -> None:
    # Over SEND_IN_PIECES_CHARS the server sends an event as a fragmented message; a real
    # client must get it as one text message, identical to what it appended.
    with server(tmp_path) as (srv, key):
        ws = await ws_connect(
            f"{srv.ws}/v1/realtime",
            additional_headers={"Authorization": f"Bearer {key}"},
            max_size=None,
        )
        await _until(ws, "session.created")
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
                }
            )
        )
        await _until(ws, "session.updated")
        pcm = (bytes(range(256)) * 6000)[: 48_000 * 30]  # 30 s at 24 kHz: 1.44 MB
        audio = base64.b64encode(pcm).decode()
        assert len(audio) > consumers.SEND_IN_PIECES_CHARS
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        item_id = (await _until(ws, "input_audio_buffer.committed"))["item_id"]
        for n in range(3):
            await ws.send(
                json.dumps(
                    {"type": "conversation.item.retrieve", "item_id": item_id, "event_id": f"r{n}"}
                )
            )
            await ws.send(json.dumps({"type": "input_audio_buffer.clear", "event_id": f"c{n}"}))
        seen: list[str] = []
        while len(seen) < 6:
            fragments = [f async for f in ws.recv_streaming()]
            event = json.loads("".join(fragments))
            if event["type"] in ("conversation.item.retrieved", "input_audio_buffer.cleared"):
                seen.append(event["type"])
            if event["type"] == "conversation.item.retrieved":
                # Not one frame of megabytes built on the event loop: a piece per loop turn.
                assert len(fragments) > 1
                returned = base64.b64decode(event["item"]["content"][0]["audio"])
                # Resampled 24 -> 16 -> 24 kHz, so the same length (not the same samples).
                assert abs(len(returned) - len(pcm)) <= 4
        await ws.close()
    assert seen == ["conversation.item.retrieved", "input_audio_buffer.cleared"] * 3
