"""The ``civic311`` command.

For now it has one sub-command, ``civic311 demo``, the main job that ``make demo`` runs. The
full command line (services, submit, track, bulk…, on click and rich) is the CLI issue's.

Exit codes: 0 ok, 1 the city answered with an error, 2 usage or input error, 3 no endpoint
could be reached.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``civic311`` command; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="civic311", description="An Open311 GeoReport v2 client that survives outages."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="file and track a report against two local FakeCity servers, through an outage",
    )
    demo.add_argument("--seed", type=int, default=311, help="the fake city's seed (default 311)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from civic311.cli.demo import run_demo

        return run_demo(seed=args.seed, out=sys.stdout)
    parser.print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
