"""``manage.py revokelicense ID|PREFIX``: revoke a license; its live sessions end within seconds."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.licensing.selectors import licenses_by_ref
from apps.licensing.services import license_revoke


class Command(BaseCommand):
    """Revoke a license for good, by id or key prefix.

    Every server worker re-checks the licenses of its live sessions every few seconds
    (``REALTIME_LICENSE_CHECK_S``), so sessions using the key, or secrets minted from it,
    are closed with ``invalid_api_key`` (4001) wherever they run.
    """

    help = "Revoke a license by id or key prefix (e.g. lic_AbCd1234); its sessions are closed."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the argument."""
        parser.add_argument("license", help="The license id, or its key prefix as admin shows it.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Find the license and revoke it."""
        ref = str(options["license"]).strip()
        found = licenses_by_ref(ref=ref)
        if not found:
            raise CommandError(f"No license with id or key prefix {ref!r}.")
        if len(found) > 1:
            raise CommandError(f"Several licenses have the prefix {ref!r}; use the id.")
        license = license_revoke(license=found[0])
        self.stdout.write(f"Revoked license {license.name!r} (id {license.pk}).")
