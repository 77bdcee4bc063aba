"""A FakeCity from the shell: what ``python -m civic311.testing`` and ``civic311 fake-city`` run.

Both build the city with `build_city` (seed, dialect, uploads, faults, a history of requests)
and serve it with `serve_forever` on 127.0.0.1: the base URL is the first line on stdout (so a
script can read it), a note goes to stderr, and Ctrl-C (or SIGTERM) stops it with exit code 0.
``python -m civic311.testing`` needs no extra (argparse); ``civic311 fake-city`` is the same
with click (issue 14.2).

Faults are written ``KIND[:ARG][,times=N][,method=M][,path=GLOB]``, e.g. ``status:503,times=2``,
``latency:0.5``, ``flaky:0.2``, ``drop-after-create,times=1``, ``hang,path=requests``; the kinds
are `Fault`'s class methods (see `civic311.testing.Fault`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO

from civic311.testing._city import FakeCity
from civic311.testing._dialect import Dialect
from civic311.testing._faults import Fault

__all__ = [
    "DIALECTS",
    "FAULT_KINDS",
    "FAULT_SYNTAX",
    "MEDIA",
    "FaultSpec",
    "build_city",
    "parse_fault",
    "serve_forever",
]

#: The dialect presets by the name the command takes (`Dialect`'s class methods).
DIALECTS: dict[str, Callable[[], Dialect]] = {
    "spec": Dialect.spec,
    "xml-only": Dialect.xml_only,
    "chicago": Dialect.chicago,
    "sf": Dialect.sf,
    "sixaika": Dialect.sixaika,
    "fixmystreet": Dialect.fixmystreet,
    "open311-adapter": Dialect.open311_adapter,
    "markaspot": Dialect.markaspot,
    "ureport": Dialect.ureport,
}

#: What ``--uploads`` takes: `Dialect.media` (none: the spec; single: Bloomington; array).
MEDIA = ("none", "single", "array")

FAULT_SYNTAX = "KIND[:ARG][,times=N][,method=GET|POST][,path=GLOB]"

#: The fault kinds and what their ARG is.
FAULT_KINDS: dict[str, str] = {
    "status": "an HTTP status, default 503",
    "maintenance": "no ARG: HTTP 200 with an HTML maintenance page",
    "hang": "no ARG: never answer",
    "latency": "seconds before answering",
    "truncated": "no ARG: half the body",
    "reset": "no ARG: close the connection, nothing processed",
    "drop-after-create": "no ARG: a POST is filed, then the connection closes unanswered",
    "flaky": "the fraction of requests that fail (0..1)",
}

#: How often the serving loop looks up from its wait (seconds): Ctrl-C is noticed at once
#: anyway (a signal interrupts the wait), this only bounds each wait.
_TICK = 0.5


class FaultSpec:
    """A parsed ``--fault``: the `Fault` and where and how often it applies."""

    def __init__(
        self, fault: Fault, *, times: int | None, method: str | None, path: str | None
    ) -> None:
        self.fault = fault
        self.times = times
        self.method = method
        self.path = path


def _number(kind: str, arg: str, convert: Callable[[str], float]) -> float:
    try:
        return convert(arg)
    except ValueError:
        raise ValueError(f"fault {kind!r}: {arg!r} is not a number") from None


def _fault(kind: str, arg: str | None) -> Fault:
    name = kind.strip().lower().replace("_", "-")
    if name not in FAULT_KINDS:
        raise ValueError(f"no fault kind {kind!r}; the kinds are {', '.join(FAULT_KINDS)}")
    if name in ("status", "latency", "flaky"):
        if name == "status":
            return Fault.status(int(_number(name, arg or "503", int)))
        if arg is None:
            raise ValueError(f"fault {name!r} needs an ARG: {FAULT_KINDS[name]} ({name}:ARG)")
        if name == "latency":
            return Fault.latency(_number(name, arg, float))
        return Fault.flaky(_number(name, arg, float))
    if arg is not None:
        raise ValueError(f"fault {name!r} takes no ARG, got {arg!r}")
    if name == "maintenance":
        return Fault.maintenance()
    if name == "hang":
        return Fault.hang()
    if name == "truncated":
        return Fault.truncated()
    if name == "reset":
        return Fault.reset()
    return Fault.drop_after_create()


def parse_fault(text: str) -> FaultSpec:
    """A ``--fault`` value (`FAULT_SYNTAX`) as a `FaultSpec`.

    Raises:
        ValueError: naming what is wrong (an unknown kind or option, a bad number).
    """
    head, *options = [part.strip() for part in text.split(",")]
    kind, sep, arg = head.partition(":")
    try:
        fault = _fault(kind, arg if sep else None)
    except ValueError as exc:
        if "fault" in str(exc):
            raise
        raise ValueError(f"fault {text!r}: {exc}") from None
    found: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("times", "method", "path") or not value.strip():
            raise ValueError(
                f"fault {text!r}: {option!r} is not times=N, method=GET|POST or path=GLOB"
            )
        found[key] = value.strip()
    times: int | None = None
    if "times" in found:
        if not found["times"].isdigit() or int(found["times"]) < 1:
            raise ValueError(f"fault {text!r}: times must be a whole number >= 1")
        times = int(found["times"])
    method = found.get("method")
    if method is not None and method.upper() not in ("GET", "POST"):
        raise ValueError(f"fault {text!r}: method must be GET or POST, not {method!r}")
    return FaultSpec(
        fault, times=times, method=method.upper() if method else None, path=found.get("path")
    )


def build_city(
    *,
    seed: int = 0,
    dialect: str = "spec",
    uploads: str | None = None,
    faults: Sequence[FaultSpec] = (),
    requests: int = 0,
    token_delay: float = 0.0,
) -> FakeCity:
    """A FakeCity as the command line describes it.

    Args:
        seed: Seeds ids, tokens and the generated history.
        dialect: A name of `DIALECTS` (case and ``_``/``-`` do not matter).
        uploads: `Dialect.media` (``none``, ``single``, ``array``); None: the dialect's own.
        faults: Parsed ``--fault`` values, injected in order.
        requests: How many historical requests to generate (spread over the last 90 days).
        token_delay: Seconds before a batch service's token becomes a request id.

    Raises:
        ValueError: an unknown dialect or uploads value, a negative count or delay.
    """
    name = dialect.strip().lower().replace("_", "-")
    if name not in DIALECTS:
        raise ValueError(f"no dialect {dialect!r}; the dialects are {', '.join(DIALECTS)}")
    chosen = DIALECTS[name]()
    if uploads is not None:
        if uploads.lower() not in MEDIA:
            raise ValueError(f"uploads must be one of {', '.join(MEDIA)}, not {uploads!r}")
        chosen = chosen.replace(media=uploads.lower())
    if requests < 0:
        raise ValueError(f"requests must be >= 0, not {requests}")
    if token_delay < 0:
        raise ValueError(f"token delay must be >= 0 seconds, not {token_delay}")
    city = FakeCity(seed=seed, dialect=chosen, token_delay=token_delay)
    for spec in faults:
        city.inject(spec.fault, times=spec.times, method=spec.method, path=spec.path)
    if requests:
        city.generate_requests(requests)
    return city


@contextlib.contextmanager
def _stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """SIGTERM ends the loop like Ctrl-C does (main thread only: signals cannot be set
    elsewhere, and a test running this in a thread needs no handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_forever(
    city: FakeCity,
    *,
    port: int = 0,
    out: TextIO,
    err: TextIO,
    stop_after: float | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Serve *city* on 127.0.0.1 until Ctrl-C, SIGTERM, *stop* is set, or *stop_after* seconds.

    The base URL is written to *out* as the first line, the rest (services, dialect, how to
    stop) to *err*. Returns 0.

    Raises:
        OSError: the port cannot be bound (in use, or not allowed).
    """
    stop = stop if stop is not None else threading.Event()
    with city.serve(port=port) as url, _stop_on_sigterm(stop):
        try:
            out.write(url + "\n")
            out.flush()
            codes = ", ".join(s.service_code for s in city.services)
            err.write(
                f"FakeCity on {url} (services {codes}; {len(city.requests)} requests; "
                f"uploads: {city.dialect.media}). Try: civic311 --endpoint {url} services\n"
                "Ctrl-C stops it.\n"
            )
            err.flush()
            deadline = None if stop_after is None else time.monotonic() + stop_after
            while not stop.is_set():
                left = _TICK if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    break
                stop.wait(min(left, _TICK))
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a served city is meant to stop: exit 0
        err.write("FakeCity stopped.\n")
        err.flush()
    return 0
