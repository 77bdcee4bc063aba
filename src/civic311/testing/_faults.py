"""Faults: make a FakeCity misbehave the way real 311 servers do, on demand.

Inject a fault, run the client, look at what happened::

    city.inject(Fault.status(503, retry_after="2"), times=2)          # the next 2 requests
    city.inject(Fault.hang(), method="GET", path="requests")           # only GET requests.*
    city.inject(Fault.drop_after_create(), times=1)                    # the ambiguous POST
    city.inject(Fault.flaky(0.2, seed=7))                              # 20% of requests
    city.clear_faults()                                                # back to normal
    city.down(); ...; city.up()                                        # refuse connections

An injected fault applies to every request that matches its `method` and `path` until it has
been applied `times` times (None: until cleared). `path` is the resource without base URL or
extension - ``services``, ``services/001``, ``requests``, ``requests/600001``,
``tokens/abc`` - and may be a glob: ``requests/*``, ``tokens/*``. When several faults match, the
one injected first wins.

How each fault looks from a client, over `FakeCity.serve()` (real sockets on 127.0.0.1) and
over `FakeCity.transport()` (in process):

* ``status(code)`` - that status with an HTML, empty, text or error body and an optional
  ``Retry-After``; the same over both.
* ``maintenance()`` - HTTP 200 with a ``text/html`` maintenance page; the same over both.
* ``hang()`` - serve(): the request is read and never answered; the connection is closed when
  the fault is cleared (`clear_faults`, `Faults.remove`) or the server stops.
  transport(): the city's clock sleeps for the request's read timeout, then
  ``httpx.ReadTimeout`` is raised (a process cannot block forever on itself).
* ``latency(s)`` - serve(): a real ``time.sleep(s)``, then the answer (keep it tiny in tests).
  transport(): the city's clock sleeps *s* (instant with a `VirtualClock`), then the answer.
* ``truncated()`` - serve(): the full Content-Length, half the body, then the connection
  closes: the client sees a protocol error. ``truncated(advertise_full_length=False)``: half
  the body with a matching length: the client sees a cut JSON/XML document. transport():
  always the second kind.
* ``reset()`` - the connection closes without an answer and nothing is processed;
  transport(): ``httpx.RemoteProtocolError``.
* ``drop_after_create()`` - POST only: the request is created and stored, then the
  connection closes without an answer; transport(): ``httpx.RemoteProtocolError`` after
  storing. The client cannot know whether its report was filed.
* ``flaky(fraction, faults, seed=)`` - a seeded fraction of matching requests gets one of
  *faults*.
* ``city.down()`` / ``city.up()`` - serve(): the listening socket is closed (connection
  refused) and reopened on the same port; transport(): ``httpx.ConnectError``.

`hang`, `status`, `maintenance` and `reset` do not process the request (a POST is not stored);
`latency` processes it after the delay; `truncated` and `drop_after_create` process it first.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Literal

import attrs

__all__ = ["Fault", "FaultKind", "Faults", "InjectedFault"]

FaultKind = Literal[
    "status",
    "maintenance",
    "hang",
    "latency",
    "truncated",
    "reset",
    "drop_after_create",
    "flaky",
]
StatusBody = Literal["html", "empty", "text", "error"]


def _retry_after(value: str | float | datetime | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a Retry-After datetime must be timezone-aware")
        # An HTTP-date (RFC 9110 §5.6.7): "Thu, 01 Jan 2026 00:00:02 GMT".
        return format_datetime(value.astimezone(timezone.utc), usegmt=True)
    return str(int(value)) if float(value).is_integer() else str(value)


@attrs.frozen
class Fault:
    """One kind of misbehaviour. Build it with the class methods, e.g. ``Fault.status(503)``."""

    kind: FaultKind
    status_code: int = 503
    retry_after: str | None = None
    body: StatusBody = "html"
    seconds: float = 0.0
    advertise_full_length: bool = True
    fraction: float = 0.0
    choices: tuple[Fault, ...] = ()
    seed: int = 0

    @classmethod
    def status(
        cls,
        status_code: int = 503,
        *,
        retry_after: str | float | datetime | None = None,
        body: StatusBody = "html",
    ) -> Fault:
        """Answer *status_code* (500, 502, 503, 429…) instead of processing the request.

        * **retry_after** - a ``Retry-After`` header: seconds (``"2"`` or ``2``) or a datetime
          (sent as an HTTP date). None: no header.
        * **body** - ``"html"`` (a proxy's error page), ``"empty"``, ``"text"`` (text/plain), or
          ``"error"`` (a spec error body in the requested format, in the city's error shape).
        """
        if not 100 <= status_code <= 599:
            raise ValueError(f"not an HTTP status: {status_code}")
        return cls(
            "status", status_code=status_code, retry_after=_retry_after(retry_after), body=body
        )

    @classmethod
    def maintenance(cls) -> Fault:
        """Answer HTTP 200 with an HTML maintenance page (``text/html``), a classic proxy trap."""
        return cls("maintenance", status_code=200)

    @classmethod
    def hang(cls) -> Fault:
        """Accept the request and never answer (see the module table for each transport)."""
        return cls("hang")

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        """Answer normally after *seconds* (real seconds with serve(), clock seconds in process)."""
        if seconds < 0:
            raise ValueError("latency needs seconds >= 0")
        return cls("latency", seconds=float(seconds))

    @classmethod
    def truncated(cls, advertise_full_length: bool = True) -> Fault:
        """Process the request, then send only the first half of the 200 body.

        With *advertise_full_length* (serve() only) the Content-Length is the full body's and
        the connection closes early, so the client sees a protocol error; without it the
        length matches the cut body, so the client sees a truncated JSON/XML document.
        """
        return cls("truncated", advertise_full_length=advertise_full_length)

    @classmethod
    def reset(cls) -> Fault:
        """Close the connection without answering and without processing the request."""
        return cls("reset")

    @classmethod
    def drop_after_create(cls) -> Fault:
        """POST only: create and store the request, then close without answering.

        The client cannot tell whether the report was filed: the ambiguous POST. Other
        methods pass through untouched and do not count against `times`.
        """
        return cls("drop_after_create")

    @classmethod
    def flaky(
        cls, fraction: float, faults: Sequence[Fault] | None = None, *, seed: int = 0
    ) -> Fault:
        """Apply one of *faults* (drawn at random) to a *fraction* of matching requests.

        The draws come from ``random.Random(seed)``, so a run is reproducible. The default
        list is ``[status(503), status(502), reset(), truncated()]``. `times` counts the
        requests that actually got a fault. A ``drop_after_create`` drawn for a GET processes
        the GET, then drops the answer.
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("flaky needs 0 <= fraction <= 1")
        choices = (
            tuple(faults)
            if faults is not None
            else (cls.status(503), cls.status(502), cls.reset(), cls.truncated())
        )
        if not choices or any(f.kind == "flaky" for f in choices):
            raise ValueError("flaky needs a non-empty list of non-flaky faults")
        return cls("flaky", fraction=float(fraction), choices=choices, seed=seed)


@attrs.define(eq=False)
class InjectedFault:
    """A fault as injected: what, where (`method`, `path`), how many times left, how often hit."""

    fault: Fault
    times: int | None = None
    method: str | None = None
    path: str | None = None
    hits: int = 0
    _rng: random.Random = attrs.field(factory=random.Random, repr=False)

    @property
    def remaining(self) -> int | None:
        """How many more times it applies (None: unlimited)."""
        return None if self.times is None else max(self.times - self.hits, 0)

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with this method and resource path is in scope."""
        if self.method is not None and self.method != method:
            return False
        if self.fault.kind == "drop_after_create" and method != "POST":
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


class Faults:
    """The thread-safe board of injected faults (`FakeCity.faults`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[InjectedFault] = []
        self._release = threading.Event()

    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> InjectedFault:
        """Add *fault* for up to *times* matching requests (None: until cleared)."""
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for unlimited)")
        entry = InjectedFault(
            fault,
            times=times,
            method=method.upper() if method else None,
            path=path.strip("/") if path else None,
            rng=random.Random(fault.seed),  # noqa: S311 - seeded on purpose
        )
        with self._lock:
            self._entries.append(entry)
        return entry

    def remove(self, entry: InjectedFault) -> None:
        """Take one injected fault off the board (and release connections it holds)."""
        with self._lock:
            if entry in self._entries:
                self._entries.remove(entry)
            self._release_hung()

    def clear(self) -> None:
        """Remove every fault and release hung connections."""
        with self._lock:
            self._entries.clear()
            self._release_hung()

    def _release_hung(self) -> None:
        self._release.set()
        self._release = threading.Event()

    @property
    def active(self) -> list[InjectedFault]:
        """The faults still on the board, in injection order."""
        with self._lock:
            return list(self._entries)

    def release_event(self) -> threading.Event:
        """An event set the next time faults are cleared or removed (hung requests wait on it)."""
        with self._lock:
            return self._release

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if any, counting it against its `times`."""
        with self._lock:
            for entry in self._entries:
                if not entry.matches(method, path):
                    continue
                fault = entry.fault
                if fault.kind == "flaky":
                    if entry._rng.random() >= fault.fraction:
                        continue
                    fault = entry._rng.choice(fault.choices)
                entry.hits += 1
                if entry.times is not None and entry.hits >= entry.times:
                    self._entries.remove(entry)
                return fault
        return None

    def __repr__(self) -> str:
        return f"Faults({self.active!r})"
