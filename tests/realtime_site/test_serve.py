"""`make run`'s steps on a fresh state directory, served by a real Daphne process."""

import json
import urllib.request

from tests.helpers import daphne, free_port, manage, project_env


def _get(url, key=None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


def test_fresh_state_migrates_seeds_and_serves(tmp_path) -> None:
    env = project_env(tmp_path)
    manage(env, "migrate", "--noinput", "-v0")
    key = manage(env, "seed_demo").stdout.splitlines()[-1]
    with daphne(env, free_port()) as base:
        status, html = _get(base + "/")
        assert status == 200 and 'data-slug="girl2"' in html
        assert _get(base + "/admin/login/")[0] == 200
        assert _get(base + "/static/css/site.css")[0] == 200
        status, body = _get(base + "/healthz")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        status, body = _get(base + "/healthz", key)
        assert json.loads(body)["database"]["ok"] is True
        status, body = _get(base + "/v1/realtime/characters", key)
        assert {c["id"] for c in json.loads(body)["data"]} >= {"girl2", "ava", "leo", "wang-laoshi"}
