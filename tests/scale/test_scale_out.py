"""Two Daphne workers sharing PostgreSQL and Redis behave as one server."""

from __future__ import annotations

import http.client
import json
import urllib.parse
import urllib.request
import uuid

import pytest
from channels_redis.core import RedisChannelLayer

from tests.helpers import daphne, free_port, manage, project_env

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def _get(url: str, key: str, *, source_ip: str = "127.0.0.1") -> tuple[int, dict]:
    """GET with a Bearer key from a chosen loopback address (the throttle counts per IP)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=10, source_address=(source_ip, 0)
    )
    try:
        conn.request("GET", parts.path, headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_two_workers_share_database_and_throttle(tmp_path, scratch_database, redis_url) -> None:
    env = project_env(
        tmp_path,
        DATABASE_URL=scratch_database,
        REDIS_URL=redis_url,
        CACHE_KEY_PREFIX=f"test-{uuid.uuid4().hex[:8]}",
        LICENSING_AUTH_FAILURES_PER_MINUTE="4",
    )
    manage(env, "migrate", "--noinput", "-v0")
    key = manage(env, "seed_demo").stdout.splitlines()[-1]
    other = manage(env, "createlicense", "second").stdout.splitlines()[-1]
    with daphne(env, free_port()) as worker_a, daphne(env, free_port()) as worker_b:
        for base in (worker_a, worker_b):
            status, health = _get(base + "/healthz", key)
            assert status == 200
            assert health["database"] == {"vendor": "postgresql", "ok": True}
            assert health["channel_layer"] == "RedisChannelLayer"
            status, body = _get(base + "/v1/realtime/voices", key)
            assert status == 200 and "龙婉" in [v["id"] for v in body["data"]]

        # Failures counted on either worker add up in Redis: 2 + 2 reach the limit of 4.
        for base in (worker_a, worker_a, worker_b, worker_b):
            assert _get(base + "/v1/models", "lic_" + "x" * 38)[0] == 401
        for base in (worker_a, worker_b):
            status, body = _get(base + "/v1/models", "lic_" + "y" * 38)
            assert status == 429 and body["error"]["code"] == "rate_limit_exceeded"
            # A valid key from the same address is never refused for others' failures.
            assert _get(base + "/v1/models", other)[0] == 200

        # A revocation written through one process is seen by both at once.
        manage(
            env,
            "shell",
            "-c",
            "from apps.licensing.models import License;"
            "from apps.licensing.services import license_revoke;"
            "license_revoke(license=License.objects.get(name='Demo'))",
        )
        # (From another client address: this one is throttled.)
        status, body = _get(worker_b + "/v1/models", key, source_ip="127.0.0.2")
        assert status == 401 and "revoked" in body["error"]["message"]


async def test_redis_channel_layer_crosses_processes(redis_url) -> None:
    """Two layer instances (as two workers hold) deliver group messages to each other."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    sender = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    receiver = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    channel = await receiver.new_channel()
    await receiver.group_add("session-peers", channel)
    try:
        await sender.group_send("session-peers", {"type": "peer.offer", "sdp": "v=0"})
        message = await receiver.receive(channel)
        assert message == {"type": "peer.offer", "sdp": "v=0"}
    finally:
        await receiver.group_discard("session-peers", channel)
        await sender.close_pools()
        await receiver.close_pools()
