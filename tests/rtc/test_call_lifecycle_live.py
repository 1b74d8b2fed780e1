"""A live Daphne with calls open: SIGTERM, a crashed client, and a session that expires.

* SIGTERM with a call open: the call's peer is closed from the shutdown hook, the
  conversation is recorded as ``server_shutdown``, and Daphne exits within seconds (an open
  aiortc peer would otherwise keep it running).
* A client that vanishes without a goodbye (a crashed tab: its process is SIGKILLed, so no
  DTLS close or SCTP abort is sent) is noticed by ICE consent checks within 10 s and its
  call ends, freeing the peer.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, free_port, manage, scripted_server_env, start_daphne, wait_http
from tests.rtc.client import ClientPeer, post

pytestmark = pytest.mark.asyncio(loop_scope="function")

CLIENT = """
import asyncio, sys
sys.path.insert(0, {root!r})
from tests.rtc.client import ClientPeer, post

async def main():
    peer = ClientPeer()
    answer = await post({url!r}, await peer.offer(),
                        {{"Authorization": "Bearer {key}", "Content-Type": "application/sdp"}})
    await peer.accept(answer.body)
    await peer.next_event("session.created")
    print(answer.headers["Location"], flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


class Server:
    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.env = scripted_server_env(var_dir)
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(mode="w+", suffix=".log", delete=False)
        self.proc: subprocess.Popen[str] | None = None

    @property
    def calls_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/realtime/calls"

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.var_dir / "db.sqlite3") as db:
            return db.execute(sql, args).fetchall()


@contextmanager
def server(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    srv = Server(tmp_path)
    manage(srv.env, "migrate", "--noinput")
    manage(srv.env, "seed_demo")
    key = manage(srv.env, "createlicense", "calls").stdout.splitlines()[-1]
    srv.proc = start_daphne(srv.env, srv.port, srv.log)
    wait_http(f"http://127.0.0.1:{srv.port}/healthz")
    try:
        yield srv, key
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait(timeout=10)
        os.unlink(srv.log.name)


async def _open(srv: Server, key: str) -> tuple[ClientPeer, str]:
    peer = ClientPeer()
    answer = await post(
        srv.calls_url,
        await peer.offer(),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/sdp"},
    )
    assert answer.status == 201, answer.body
    await peer.accept(answer.body)
    created = await peer.next_event("session.created")
    return peer, created["session"]["id"]


async def test_sigterm_with_a_call_open_closes_it_and_exits_promptly(tmp_path: Path) -> None:
    with server(tmp_path) as (srv, key):
        peer, session_id = await _open(srv, key)
        await asyncio.sleep(1.0)  # media flowing both ways
        closed = asyncio.Event()
        peer.pc.on(
            "connectionstatechange",
            lambda: closed.set() if peer.pc.connectionState in ("closed", "failed") else None,
        )
        assert srv.proc is not None
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(srv.proc.wait, 15)
        exit_s = time.monotonic() - started
        print(f"Daphne exited {exit_s:.2f} s after SIGTERM with a call open")
        await asyncio.wait_for(closed.wait(), 10)  # the server said goodbye to the peer
        await peer.close()
        ((ended, reason),) = srv.query(
            "SELECT ended_at, end_reason FROM conversations_conversation WHERE id = ?", session_id
        )
        assert ended is not None and reason == "server_shutdown"
        assert exit_s < 5.0, f"Daphne took {exit_s:.1f} s to exit with a call open"


async def test_a_client_that_vanishes_is_noticed_within_ten_seconds(tmp_path: Path) -> None:
    with server(tmp_path) as (srv, key):
        script = CLIENT.format(root=str(ROOT), url=srv.calls_url, key=key)
        client = subprocess.Popen(  # noqa: ASYNC220 - starting it is instant
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        try:
            assert client.stdout is not None
            location = await asyncio.wait_for(asyncio.to_thread(client.stdout.readline), 30)
            assert location.startswith("/v1/realtime/calls/rtc_")
            ((session_id,),) = srv.query(
                "SELECT id FROM conversations_conversation WHERE transport = 'webrtc'"
            )
            await asyncio.sleep(1.0)
            client.kill()  # no DTLS close, no SCTP abort: as a crashed tab
            killed = time.monotonic()
        finally:
            if client.poll() is None:
                client.kill()
            client.wait(timeout=10)
        ended = None
        while time.monotonic() - killed < 15:
            ((ended, reason),) = srv.query(
                "SELECT ended_at, end_reason FROM conversations_conversation WHERE id = ?",
                session_id,
            )
            if ended is not None:
                break
            await asyncio.sleep(0.2)
        noticed_s = time.monotonic() - killed
        print(f"vanished client noticed after {noticed_s:.1f} s")
        assert ended is not None, "the call of a vanished client never ended"
        assert reason == "client_closed"
        assert noticed_s <= 10.0, f"noticed after {noticed_s:.1f} s"
