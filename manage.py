#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    # manage.py is the developer's entry point: default to the dev settings.
    # Servers started through realtime_site.asgi default to production instead.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_site.settings.dev")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
