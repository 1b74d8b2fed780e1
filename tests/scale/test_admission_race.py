"""Two worker processes admitting at once on real PostgreSQL never exceed a license's limit.

Each process runs several threads (each with its own database connection) that fill one
license after another: a thread keeps admitting to a license until it is refused, then moves
to the next. So every racer arrives at each license together and the last free slot is
contended by all of them, from both processes. Without the license lock (count, then insert)
several racers count the same free slot and the limit is exceeded on most licenses.

The auth throttle's budget is checked the same way against Redis.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import psycopg
import pytest

from tests.helpers import ROOT, manage, project_env

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

LICENSES = 12
LIMIT = 2
THREADS_PER_PROCESS = 4

# Start line: each process, once set up, says it is ready and waits for the other, so the
# race starts when both are warm however long their start-up took.
BARRIER = """
import pathlib, time
def wait_for_peers(directory, tag, peers=2):
    path = pathlib.Path(directory)
    (path / ("ready-" + tag)).touch()
    deadline = time.time() + 90
    while len(list(path.glob("ready-*"))) < peers and time.time() < deadline:
        time.sleep(0.005)
"""

SETUP = """
import json
from apps.licensing.services import license_create
ids = [license_create(name="race-%d" % i, max_concurrent_sessions={limit}).license.pk
       for i in range({count})]
print(json.dumps(ids))
"""

ADMIT = """
import json, sys, threading, time
import django
django.setup()
from django.db import connections
from apps.conversations.services import current_worker_id
from apps.licensing.admission import TooManySessions, session_admit
from apps.licensing.models import License
from apps.licensing.services import Credential

ids, barrier, threads, tag = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
licenses = [License.objects.get(pk=pk) for pk in ids]
connections.close_all()
admitted, errors = [], []
go = threading.Event()

def racer(n):
    try:
        go.wait()
        for license in licenses:
            for attempt in range(50):
                try:
                    session_admit(credential=Credential(kind="license", license=license),
                        session_id=f"sess_{tag}_{n}_{license.pk}_{attempt}", user_id="",
                        transport="websocket", dialect="ga", character_id=None, model="",
                        worker_id=current_worker_id())
                    admitted.append(license.pk)
                except TooManySessions:
                    break
    except BaseException as exc:
        errors.append(repr(exc))
    finally:
        connections.close_all()

workers = [threading.Thread(target=racer, args=(n,)) for n in range(threads)]
for w in workers: w.start()
wait_for_peers(barrier, tag)
go.set()
for w in workers: w.join()
print(json.dumps({"admitted": admitted, "errors": errors}))
"""

THROTTLE = """
import json, sys, time
import django
django.setup()
from apps.licensing import throttle
wait_for_peers(sys.argv[1], sys.argv[2])
allowed = sum(throttle.failure_admit("198.51.100.77").allowed for _ in range(40))
print(json.dumps({"allowed": allowed}))
"""


def _run_together(env: dict[str, str], script: str, *args_per_process: list[str]) -> list[dict]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BARRIER + script, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in args_per_process
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_two_processes_admitting_at_once_never_exceed_the_limit(tmp_path, scratch_database) -> None:
    env = project_env(tmp_path, DATABASE_URL=scratch_database)
    manage(env, "migrate", "--noinput", "-v0")
    created = manage(env, "shell", "-c", SETUP.format(limit=LIMIT, count=LICENSES))
    ids = json.loads(created.stdout.strip().splitlines()[-1])
    barrier = tmp_path / "start"
    barrier.mkdir()
    results = _run_together(
        env,
        ADMIT,
        [json.dumps(ids), str(barrier), str(THREADS_PER_PROCESS), "a"],
        [json.dumps(ids), str(barrier), str(THREADS_PER_PROCESS), "b"],
    )
    assert [r["errors"] for r in results] == [[], []]
    admitted = results[0]["admitted"] + results[1]["admitted"]
    # Both processes got sessions in (they really raced), and the limit held for every license.
    assert results[0]["admitted"] and results[1]["admitted"]
    with psycopg.connect(scratch_database) as conn:
        open_rows = dict(
            conn.execute(
                "SELECT license_id, count(*) FROM conversations_conversation "
                "WHERE ended_at IS NULL GROUP BY license_id"
            ).fetchall()
        )
    assert open_rows == {pk: LIMIT for pk in ids}
    assert len(admitted) == LICENSES * LIMIT


def test_two_processes_share_the_auth_failure_budget_through_redis(tmp_path, redis_url) -> None:
    env = project_env(
        tmp_path,
        REDIS_URL=redis_url,
        CACHE_KEY_PREFIX=f"test-{uuid.uuid4().hex[:8]}",
        LICENSING_AUTH_FAILURES_PER_MINUTE="10",
    )
    barrier = tmp_path / "start"
    barrier.mkdir()
    results = _run_together(env, THROTTLE, [str(barrier), "a"], [str(barrier), "b"])
    allowed = [r["allowed"] for r in results]
    # 80 failures within a second or two: both processes together are heard at most 10 times.
    assert 1 <= sum(allowed) <= 10, allowed
