"""The ``civic311`` command: a GeoReport v2 client for the terminal and for scripts.

Install it with the ``cli`` extra (``pip install 'civic311[cli]'``: click and rich); without
it the console script says so in one line and exits 2. Global options come before the
sub-command::

    civic311 cities bloom                           # the bundled registry
    civic311 --city bloomington services            # what the city takes reports for
    civic311 --city bloomington definition 003      # the questions a service asks
    civic311 --endpoint https://city.example/open311/v2 --api-key-file ~/.311key \\
        submit --service-code 001 --lat 39.16 --long -86.52 \\
        --description "Deep pothole in the right lane" --attribute DEPTH=12 --wait
    civic311 --json --city chicago request 20-01234567

Commands:

=============================  ==========================================================
``cities [QUERY]``             the registry's cities (key, name, status, endpoint)
``services``                   the city's services
``definition CODE``            a service's attributes (questions), with their values
``submit``                     file one report (``--service-code``, a location, answers
                               as ``--attribute CODE=VALUE``, ``--photo``, ``--wait``,
                               ``--outbox``); recorded in the ledger
``token T``                    a batch token's request id, or "pending"
``request ID``                 one request as the city has it now
``requests``                   requests by ``--service-code``, ``--status``, ``--start``,
                               ``--end`` (the city answers at most ~1,000)
``harvest``                    every request of ``--start``..``--end``, as JSON Lines
``discover URL``               a Service Discovery document's GeoReport v2 endpoints
``health``                     probe the city, then each endpoint's health
``bulk submit FILE``           file every row of a CSV / JSON Lines file once (resumable)
``bulk track``                 refresh everything the ledger filed; record the changes
``watch ID…``                  follow requests until closed, printing each change
``ledger list`` / ``export``   your record of submissions and statuses
``stats``                      time to close per service, from a harvest or a file
``demo``                       the whole job against two local fake cities, offline
``fake-city``                  serve a FakeCity on 127.0.0.1 until Ctrl-C (``--port``,
                               ``--seed``, ``--dialect``, ``--uploads``, ``--fault``…); its
                               URL is the first line on stdout
=============================  ==========================================================

Global options: ``--city NAME`` (the registry picks endpoints, jurisdiction and quirk
profile) or ``--endpoint URL`` (repeat it for fallbacks, primary first; with ``--city`` it
replaces the registry's URLs); ``--jurisdiction ID``; ``--format json|xml``; ``--profile
NAME``; ``--json`` (machine-readable results on stdout; JSON Lines for ``harvest`` and
``watch``); ``--ledger PATH``; ``--api-key-file PATH``; ``--timeout S``; ``--debug``
(tracebacks instead of one-line errors). A command that talks to a city, given neither
``--city`` nor ``--endpoint``, exits 2 and says so.

Output. Results go to stdout: rich tables for people, JSON with ``--json`` (models as
`civic311.to_dict` makes them). Warnings (a "questioned" registry entry, a capped harvest
window) and errors go to stderr, one line each, never a traceback (``--debug`` shows it); so
with ``--json`` stdout holds only JSON, and nothing at all when the command failed. The
``bulk submit`` progress bar is drawn on stderr, and only when it is a terminal and
``--json`` is off.

Datetimes (``--start``, ``--end``, ``--changed-since``) are ISO 8601 *with* a zone:
``2026-01-01T00:00:00Z`` or ``2026-01-01T00:00:00-05:00``. A naive one is refused (exit 2)
rather than guessed: servers disagree about what a zone-less time means.

The api key comes from ``--api-key-file PATH`` (its first non-blank line; the command warns
when the file is readable by others) or the ``CIVIC311_API_KEY`` environment variable. It is
never printed: not in results, errors, ``--json`` or ``--help``; everything written to
stdout and stderr has it masked as ``***``, even if a city echoes it back.

The ledger. ``submit``, ``bulk``, ``watch`` and ``ledger`` use a SQLite ledger of every
submission and every status seen (`civic311.ledger.Ledger`). It is ``--ledger PATH``, else
``$CIVIC311_LEDGER``, else ``$XDG_DATA_HOME/civic311/ledger.sqlite``, else
``~/.local/share/civic311/ledger.sqlite``; the file (0600) and its directory (0700) are
created on first use. The other commands never touch it.

Emergencies. ``submit`` reads the description for wording that sounds like an emergency
(fire, a gas smell, someone hurt…; `civic311.triage`). It is a heuristic — a list of English
phrases that misses some emergencies and flags some reports that are not — so it never blocks
silently: at a terminal it asks "Still file a 311 report?"; ``--yes`` files without asking; a
script without ``--yes`` is refused with exit 2 and the advice to call 911. ``bulk submit``
names such rows in a warning and files them.

Exit codes:

=====  ========================================================================================
0      done
1      the city answered with an error (HTTP 4xx/5xx: `APIError`), an answer that cannot be
       read (`DecodeError`), a submission whose outcome is uncertain, a token that did not
       become an id within ``--wait-timeout`` (and unexpected internal errors)
2      usage or input error, caught before anything was sent: click usage errors, naive
       datetimes, `InvalidRequestError` — including `ValidationFailedError` when the
       service's definition rejects the answers (the city's own 400/422 is 1) — an unreadable
       file, an unknown or retired city, an emergency-sounding description without ``--yes``
3      no endpoint could be reached (`AllEndpointsFailedError`, `TransportError`); the city's
       other channels (``error.other_channels`` or the registry's) are printed, so a resident
       knows where else to report
130    interrupted (Ctrl-C)
=====  ========================================================================================

``bulk submit`` exits 2 when a row is invalid, else 1 when the city refused a row or its
outcome is uncertain, else 3 when rows are queued because the city was unreachable, else 0.

Run it as ``civic311`` (the console script) or ``python -m civic311.cli``; `main` is the entry
point and returns the exit code.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

__all__ = ["NEEDS_CLI_EXTRA", "main"]

#: What the console script says, on stderr with exit code 2, when click or rich is missing:
#: ``pip install civic311`` installs the script but not the ``[cli]`` extra (issue 14.1).
NEEDS_CLI_EXTRA = "the civic311 command needs the cli extra: pip install 'civic311[cli]'"


def _cli_extra_missing() -> bool:
    """Whether click or rich cannot be imported. Only click is imported here (the command
    needs it at once); rich is looked up, not imported, so ``civic311 --help`` stays fast."""
    try:
        import click  # noqa: F401
    except ImportError:
        return True
    try:
        return importlib.util.find_spec("rich") is None
    except (ImportError, ValueError):
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``civic311`` command with *argv* (default: ``sys.argv[1:]``); return the exit
    code. Without the ``[cli]`` extra it prints `NEEDS_CLI_EXTRA` on stderr and returns 2."""
    if _cli_extra_missing():
        sys.stderr.write(NEEDS_CLI_EXTRA + "\n")
        return 2
    from civic311.cli._app import cli

    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="civic311")
    except SystemExit as done:
        code = done.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
