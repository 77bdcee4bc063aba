"""``python -m civic311.testing``: serve a FakeCity on 127.0.0.1 until Ctrl-C.

The same as ``civic311 fake-city`` without the ``[cli]`` extra (argparse, no click)::

    python -m civic311.testing --port 8311 --seed 7 --dialect chicago --fault status:503,times=2

The base URL is the first line on stdout; give it to a client or to ``civic311 --endpoint``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from civic311.testing._command import (
    DIALECTS,
    FAULT_KINDS,
    FAULT_SYNTAX,
    MEDIA,
    FaultSpec,
    build_city,
    parse_fault,
    serve_forever,
)

__all__ = ["main"]


def _fault(text: str) -> FaultSpec:
    try:
        return parse_fault(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    kinds = "; ".join(f"{kind}: {what}" for kind, what in FAULT_KINDS.items())
    parser = argparse.ArgumentParser(
        prog="python -m civic311.testing",
        description="Serve a FakeCity (a GeoReport v2 city for tests) on 127.0.0.1 until "
        "Ctrl-C. The base URL is the first line on stdout.",
    )
    parser.add_argument("--port", type=int, default=0, help="the port (default: a free one)")
    parser.add_argument("--seed", type=int, default=0, help="seeds ids, tokens and history")
    parser.add_argument(
        "--dialect",
        default="spec",
        type=str.lower,
        choices=sorted(DIALECTS),
        help="speak like a real server (default: spec)",
    )
    parser.add_argument(
        "--uploads",
        type=str.lower,
        choices=MEDIA,
        help="file uploads the city takes (default: the dialect's; spec: none)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=_fault,
        metavar=FAULT_SYNTAX,
        help=f"misbehave (repeatable). Kinds: {kinds}",
    )
    parser.add_argument(
        "--requests", type=int, default=0, metavar="N", help="generate N past requests"
    )
    parser.add_argument(
        "--token-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds before a batch token becomes an id",
    )
    parser.add_argument(
        "--stop-after", type=float, metavar="S", help="stop after S seconds (default: Ctrl-C)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with *argv* (default ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        city = build_city(
            seed=args.seed,
            dialect=args.dialect,
            uploads=args.uploads,
            faults=args.fault,
            requests=args.requests,
            token_delay=args.token_delay,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        return serve_forever(
            city, port=args.port, out=sys.stdout, err=sys.stderr, stop_after=args.stop_after
        )
    except OSError as exc:
        sys.stderr.write(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
