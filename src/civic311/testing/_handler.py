"""The city as its transports see it: the few things `_transport` and `_server` call on it.

`FakeCity` (``_city``) builds on the transports, so they must not import it back, not even for
annotations: a review that counts ``TYPE_CHECKING`` and lazy imports found
``_city -> _transport/_server -> _city`` (issue 10). They depend on these Protocols instead,
which `FakeCity` and its `Plan` satisfy structurally; mypy checks that where ``_city`` hands
itself to a transport. httpx's `WSGITransport` and `ASGITransport` work the same way: they know
the WSGI or ASGI calling convention, never the application behind it.
"""

from __future__ import annotations

import threading
from typing import Literal, Protocol

from civic311._clock import Clock
from civic311.testing._incoming import Incoming
from civic311.testing._render import Reply

__all__ = ["Action", "CityHandler", "HangRelease", "Planned", "Truncation"]

#: What a transport does with a request once its wait is over.
Action = Literal["respond", "hang", "drop"]
#: ``"full_length"``: advertise the whole length, send half, close (serve() only);
#: ``"honest"``: send half with a matching Content-Length.
Truncation = Literal["full_length", "honest"]


class Planned(Protocol):
    """What a transport must do with one request: wait *delay*, then answer, hang or drop."""

    @property
    def delay(self) -> float:
        """Seconds to wait (on the city's clock, or the server's close event) before running."""
        ...

    @property
    def action(self) -> Action:
        """Answer, hang (hold the connection) or drop (close without an answer)."""
        ...

    @property
    def truncate(self) -> Truncation | None:
        """Whether to cut the answer's body, and how; read after `run()`."""
        ...

    def run(self) -> Reply | None:
        """Process the request as the fault dictates; the reply to send, or None."""
        ...


class HangRelease(Protocol):
    """The city's faults, as far as a server holding a hung connection needs them."""

    def release_event(self) -> threading.Event:
        """An event set when hung requests may end (faults cleared or removed)."""
        ...


class CityHandler(Protocol):
    """A city the transports can serve: `FakeCity`, without importing it."""

    @property
    def clock(self) -> Clock:
        """The clock waits run on (a `VirtualClock` in tests)."""
        ...

    @property
    def is_down(self) -> bool:
        """Whether new connections are refused."""
        ...

    @property
    def faults(self) -> HangRelease:
        """The fault registry; the loopback server waits on its release event."""
        ...

    def plan(self, incoming: Incoming) -> Planned:
        """Route *incoming* and decide its fault; the transport runs the plan."""
        ...
