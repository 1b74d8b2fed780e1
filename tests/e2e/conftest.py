"""Browser tests: a real Daphne process and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import daphne, free_port, manage, project_env

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A freshly migrated and seeded server, plus an admin account."""
    var_dir = tmp_path_factory.mktemp("e2e-var")
    env = project_env(var_dir, DJANGO_SUPERUSER_PASSWORD="e2e-admin-password-123")
    manage(env, "migrate", "--noinput", "-v0")
    demo_key = manage(env, "seed_demo").stdout.splitlines()[-1]
    manage(env, "createsuperuser", "--noinput", "--username", "ops", "--email", "ops@example.com")
    with daphne(env, free_port()) as base:
        yield {
            "base": base,
            "demo_key": demo_key,
            "user": "ops",
            "password": "e2e-admin-password-123",
        }


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed (make test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
            # Playwright gives every launch a fresh, empty profile directory.
        )
        yield instance
        instance.close()
