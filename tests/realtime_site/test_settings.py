"""Settings come from the environment; production refuses to start half-configured."""

import json
import secrets
import stat

import pytest

from tests.helpers import manage, project_env

PRINT = (
    "from django.conf import settings as s; import json;"
    "d = s.DATABASES['default'];"
    "print(json.dumps({'db': d['ENGINE'], 'name': str(d['NAME']),"
    "'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'cache': s.CACHES['default']['BACKEND'],"
    "'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, 'csrf': s.CSRF_TRUSTED_ORIGINS}))"
)


def _settings(env) -> dict:
    return json.loads(manage(env, "shell", "-c", PRINT).stdout.strip().splitlines()[-1])


def _prod_env(tmp_path, **extra):
    return project_env(
        tmp_path,
        DJANGO_SETTINGS_MODULE="realtime_site.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="voice.example.com",
        **extra,
    )


def test_dev_defaults(tmp_path) -> None:
    env = project_env(tmp_path)
    env.pop("DATABASE_URL")
    env.pop("DEBUG")
    got = _settings(env)
    assert got["db"] == "django.db.backends.sqlite3" and got["name"] == str(tmp_path / "db.sqlite3")
    assert got["layer"] == "channels.layers.InMemoryChannelLayer"
    assert got["debug"] is True
    assert "127.0.0.1" in got["hosts"]


def test_dev_secret_key_is_generated_once_and_private(tmp_path) -> None:
    env = project_env(tmp_path)
    read = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = manage(env, "shell", "-c", read).stdout.strip()
    second = manage(env, "shell", "-c", read).stdout.strip()
    assert first == second and len(first) >= 50
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_env_selects_postgres_redis_hosts_and_origins(tmp_path) -> None:
    env = project_env(
        tmp_path,
        DATABASE_URL="postgres://u:p@db.internal:5432/voice",
        REDIS_URL="redis://cache.internal:6379/0",
        ALLOWED_HOSTS="a.example,b.example",
        CSRF_TRUSTED_ORIGINS="https://a.example",
        DEBUG="false",
    )
    got = _settings(env)
    assert got["db"] == "django.db.backends.postgresql" and got["name"] == "voice"
    assert got["layer"] == "channels_redis.core.RedisChannelLayer"
    assert got["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert got["hosts"] == ["a.example", "b.example"]
    assert got["csrf"] == ["https://a.example"]
    assert got["debug"] is False


def test_bad_boolean_is_refused(tmp_path) -> None:
    result = manage(project_env(tmp_path, DEBUG="maybe"), "check", check=False)
    assert result.returncode != 0 and "DEBUG must be a boolean" in result.stderr


@pytest.mark.parametrize("secret", [None, "short", "django-insecure-" + "x" * 60])
def test_production_refuses_to_start_without_a_real_secret_key(tmp_path, secret) -> None:
    env = _prod_env(tmp_path)
    if secret is None:
        env.pop("SECRET_KEY")
    else:
        env["SECRET_KEY"] = secret
    result = manage(env, "check", check=False)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts(tmp_path) -> None:
    env = _prod_env(tmp_path)
    env.pop("ALLOWED_HOSTS")
    result = manage(env, "check", check=False)
    assert result.returncode != 0 and "ALLOWED_HOSTS" in result.stderr


def test_check_deploy_is_clean_for_production(tmp_path) -> None:
    result = manage(
        _prod_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING", check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_asgi_defaults_to_production_settings(tmp_path) -> None:
    env = project_env(tmp_path)
    env.pop("DJANGO_SETTINGS_MODULE")
    probe = "import realtime_site.asgi as a, os; print(os.environ['DJANGO_SETTINGS_MODULE'])"
    import subprocess
    import sys

    from tests.helpers import ROOT

    failed = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert failed.returncode != 0 and "SECRET_KEY must be set" in failed.stderr
    env.update(SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="x.example")
    ok = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert ok.stdout.strip() == "realtime_site.settings.production", ok.stderr
