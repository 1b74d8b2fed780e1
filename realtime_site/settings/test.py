"""Test settings: fast hashing, isolated state, scripted fakes instead of real engines."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .base import *  # noqa: F403

SECRET_KEY = "test-only-secret-key-" + "x" * 40
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A server process started by a test (live Daphne with scripted engines) is given its state
# directory in TEST_SERVER_VAR_DIR; pytest itself gets a fresh one.
VAR_DIR = Path(os.environ.get("TEST_SERVER_VAR_DIR") or tempfile.mkdtemp(prefix="rt-test-var-"))
MEDIA_ROOT = VAR_DIR / "media"

# The suite runs on in-memory SQLite whatever DATABASE_URL says; the scale-out tests start
# their own server processes against DATABASE_URL/REDIS_URL (tests/scale/).
# A file rather than :memory: so live-server threads each open their own connection instead of
# sharing one across threads.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / "db.sqlite3"),
        "TEST": {"NAME": str(VAR_DIR / "test-db.sqlite3")},
        # As in base.py: writers wait for the lock rather than fail on an upgrade, readers
        # do not block writers (WAL), and connections are kept between writes.
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        },
        "CONN_MAX_AGE": 300,
        "CONN_HEALTH_CHECKS": True,
    }
}

if os.environ.get("TEST_SERVER_DATABASE_URL"):
    # A server process of a scale-out test: scripted engines on a real PostgreSQL.
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["TEST_SERVER_DATABASE_URL"])}

if not (os.environ.get("TEST_SERVER_VAR_DIR") and REDIS_URL):  # noqa: F405
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 100}}
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# else: server processes of a scale-out test given REDIS_URL share Redis (base.py's layer
# and cache), as several workers of one deployment do.

AGENT_PROVIDERS = {
    "scripted": {
        "BACKEND": "apps.agent.providers.scripted.ScriptedLlm",
        "OPTIONS": {
            "models": ["scripted-echo", "scripted-tools"],
            # Live-server tests slow the scripted replies down so cancel/barge-in can land.
            "delay_s": float(os.environ.get("SCRIPTED_LLM_DELAY_S", "0")),
        },
    },
}
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True

VOICE_ENGINES = {
    "vad": {"BACKEND": "apps.voice.vad.fake.FakeVad"},
    "asr": {"BACKEND": "apps.voice.asr.fake.FakeAsr", "OPTIONS": {"transcripts": ["hello"]}},
    "tts": {"BACKEND": "apps.voice.tts.fake.FakeTts"},
}
VOICE_WARM_UP = False
# Real-engine tests share assembled models across runs (var/ is git-ignored runtime state).
VOICE_MODEL_CACHE = BASE_DIR / "var" / "models"  # noqa: F405
