"""Developer settings: `manage.py` and `make run` use these.

DEBUG defaults on, hosts default to loopback, and a SECRET_KEY is generated once into
var/secret_key (mode 0600) so sessions survive restarts without any setup.
"""

from __future__ import annotations

import os
import secrets

from .base import *  # noqa: F403
from .base import VAR_DIR
from .env import env_bool, env_list, env_str


def _dev_secret_key() -> str:
    explicit = env_str("SECRET_KEY")
    if explicit:
        return explicit
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting together must not overwrite each other's key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _dev_secret_key()
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
# Serve static files straight from the source folders while developing (no collectstatic needed).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
