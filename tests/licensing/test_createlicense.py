from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.licensing.models import License
from apps.licensing.services import credential_authenticate
from tests.helpers import manage, project_env


@pytest.mark.django_db
def test_prints_the_key_alone_on_the_last_line() -> None:
    out = StringIO()
    call_command(
        "createlicense",
        "Acme",
        "--max-sessions",
        "3",
        "--expires-in-days",
        "30",
        "--origin",
        "https://app.acme.test",
        "--origin",
        "http://localhost:5173",
        stdout=out,
    )
    lines = out.getvalue().rstrip("\n").split("\n")
    key = lines[-1]
    assert key.startswith("lic_") and key.strip() == key and " " not in key
    license = credential_authenticate(key=key).license
    assert license.name == "Acme"
    assert license.max_concurrent_sessions == 3
    assert license.allowed_origins == ["https://app.acme.test", "http://localhost:5173"]
    assert (
        timezone.now() + timedelta(days=29)
        < license.expires_at
        < timezone.now() + timedelta(days=31)
    )
    # Shown once: nothing but the key's line holds it.
    assert sum(key in line for line in lines) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ["X", "--origin", "not-an-origin"],
        ["X", "--max-sessions", "0"],
        ["X", "--expires-in-days", "0"],
    ],
)
def test_bad_options_fail_without_creating_anything(args) -> None:
    with pytest.raises(CommandError):
        call_command("createlicense", *args, stdout=StringIO())
    assert not License.objects.exists()


def test_real_process_stdout_last_line_is_the_key(tmp_path) -> None:
    """The contract scripts rely on, through a real process (logging goes to stderr)."""
    env = project_env(tmp_path)
    manage(env, "migrate", "--noinput", "-v0")
    result = manage(env, "createlicense", "Scripted", "--max-sessions", "2")
    key = result.stdout.splitlines()[-1]
    assert key.startswith("lic_") and len(key) == 42
    assert key not in result.stderr
    check = manage(
        env,
        "shell",
        "-c",
        "from apps.licensing.services import credential_authenticate as a;"
        f"print(a(key='{key}').license.max_concurrent_sessions)",
    )
    assert check.stdout.strip().splitlines()[-1] == "2"
