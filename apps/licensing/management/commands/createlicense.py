"""``manage.py createlicense NAME``: create a license and print its key alone on the last line."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.licensing.services import license_create


class Command(BaseCommand):
    """Create a license. Scripts read the key from the last line of stdout."""

    help = "Create a license and print its key (shown once) alone on the last line of stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the options."""
        parser.add_argument("name", help="Who or what the key is for.")
        parser.add_argument("--owner", default="", help="Contact or organisation.")
        parser.add_argument(
            "--max-sessions", type=int, default=4, help="Concurrent realtime sessions."
        )
        parser.add_argument(
            "--expires-in-days", type=int, default=None, help="Days until the key expires."
        )
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            help="Browser origin allowed to use the key (repeatable), e.g. https://app.example.com.",
        )
        parser.add_argument(
            "--audio-minutes", type=int, default=None, help="Monthly audio quota in minutes."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Create the license and print the key last."""
        if options["max_sessions"] < 1:
            raise CommandError("--max-sessions must be at least 1")
        days = options["expires_in_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-in-days must be at least 1")
        expires_at = timezone.now() + timedelta(days=days) if days is not None else None
        try:
            issued = license_create(
                name=options["name"],
                owner=options["owner"],
                max_concurrent_sessions=options["max_sessions"],
                expires_at=expires_at,
                allowed_origins=options["origin"],
                monthly_audio_minutes_quota=options["audio_minutes"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        license = issued.license
        self.stdout.write(
            f"Created license {license.name!r} (id {license.pk}, prefix {license.key_prefix}). "
            "The key is shown once; store it now:"
        )
        self.stdout.write(issued.key)
