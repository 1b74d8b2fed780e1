"""``python -m realtime_site.serve [daphne options]``: Daphne with this project's defaults.

Daphne's own command works too, but this one adds what the server relies on unless the
options are given explicitly:

* ``--websocket-max-message-size`` and ``--websocket-max-frame-size`` of 16 MiB, so events
  up to that size reach the application, which answers oversized ones with an ``error``
  event (Daphne's 1 MiB defaults reset larger frames with no close frame and no error);
* the application ``realtime_site.asgi:application``;
* an access log without query strings: NavTalk clients put license keys in the URL
  (``?license=``), and a key must never reach a log file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from daphne import cli
from daphne.access import AccessLogGenerator

MAX_WEBSOCKET_BYTES = 16 * 1024 * 1024
APPLICATION = "realtime_site.asgi:application"
DEFAULT_OPTIONS = (
    ("--websocket-max-message-size", str(MAX_WEBSOCKET_BYTES)),
    ("--websocket-max-frame-size", str(MAX_WEBSOCKET_BYTES)),
)
_APPLICATION_ARG = re.compile(r"^[\w.]+:[\w.]+$")


class RedactingAccessLog(AccessLogGenerator):
    """Daphne's access log with the query string of every request cut off."""

    def write_entry(self, host, date, request, status=None, length=None, ident=None, user=None):  # type: ignore[no-untyped-def]  # noqa: ANN001, D102, PLR0913
        method, _, target = str(request).partition(" ")
        request = f"{method} {target.split('?', 1)[0]}" if target else method
        super().write_entry(host, date, request, status, length, ident, user)


def daphne_arguments(argv: Sequence[str]) -> list[str]:
    """The Daphne command line for ``argv``: given options, plus the defaults not given."""
    args = list(argv)
    given = {arg.split("=", 1)[0] for arg in args}
    for option, value in DEFAULT_OPTIONS:
        if option not in given:
            args[:0] = [option, value]
    if not any(_APPLICATION_ARG.match(arg) for arg in args):
        args.append(APPLICATION)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run Daphne with the project's defaults."""
    cli.AccessLogGenerator = RedactingAccessLog  # type: ignore[misc]
    cli.CommandLineInterface().run(daphne_arguments(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
