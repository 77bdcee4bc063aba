"""A clock whose time only moves when you say so.

`VirtualClock` implements `civic311._clock.Clock`. Give the same instance to a `civic311.Client`
and to a `FakeCity`, and hours of polling, backoff and city work (tokens resolving, requests
closing) pass in microseconds::

    clock = VirtualClock(start=datetime(2026, 1, 1, tzinfo=timezone.utc))
    clock.advance(3600)          # an hour later, instantly
    clock.sleep(2.5)             # what a Client does while backing off: also instant
    assert clock.sleeps == [2.5] # every sleep is recorded, so tests can assert the backoff

`sleep` and `asleep` advance the clock by the requested amount and return at once; `asleep`
then yields to the event loop once (asyncio or trio), so other tasks still get a turn.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from civic311._clock import checkpoint

__all__ = ["VirtualClock"]

#: Where a VirtualClock starts when you give it no start: a fixed, timezone-aware instant, so that
#: tests are reproducible from one run to the next.
DEFAULT_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


class VirtualClock:
    """A deterministic `Clock`: `now()` and `monotonic()` move only by `advance()` and sleeps.

    **Parameters:**

    * **start** - the wall-clock time the clock starts at (timezone-aware; stored in UTC).
      Defaults to 2026-01-01T00:00:00Z.

    Thread-safe: a client in one thread and a served FakeCity in another may share it.
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = DEFAULT_START if start is None else start
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("VirtualClock start must be timezone-aware (e.g. tzinfo=timezone.utc)")
        self._start = start.astimezone(timezone.utc)
        self._elapsed = 0.0
        self._sleeps: list[float] = []
        self._lock = threading.Lock()

    # -- the Clock protocol ------------------------------------------------------------------

    def monotonic(self) -> float:
        """Seconds elapsed since the clock was made (starts at 0.0, never goes back)."""
        with self._lock:
            return self._elapsed

    def now(self) -> datetime:
        """The current virtual time, timezone-aware, in UTC."""
        with self._lock:
            return self._start + timedelta(seconds=self._elapsed)

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance the clock by *seconds* (negative counts as 0); no wait."""
        seconds = max(float(seconds), 0.0)
        with self._lock:
            self._sleeps.append(seconds)
            self._elapsed += seconds

    async def asleep(self, seconds: float) -> None:
        """Like `sleep`, then yield to the event loop once (asyncio or trio)."""
        self.sleep(seconds)
        await checkpoint()

    # -- test controls -----------------------------------------------------------------------

    def advance(self, seconds: float | timedelta) -> None:
        """Move time forward by *seconds* (a number or a `timedelta`). Not recorded as a sleep."""
        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        if seconds < 0:
            raise ValueError("a VirtualClock never goes back: advance() needs seconds >= 0")
        with self._lock:
            self._elapsed += float(seconds)

    def advance_to(self, when: datetime) -> None:
        """Move time forward to *when* (timezone-aware, not in the past)."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("advance_to() needs a timezone-aware datetime")
        self.advance((when - self.now()).total_seconds())

    @property
    def sleeps(self) -> list[float]:
        """Every duration passed to `sleep`/`asleep`, in order (a copy)."""
        with self._lock:
            return list(self._sleeps)

    @property
    def slept(self) -> float:
        """The total of all sleeps, in seconds."""
        with self._lock:
            return sum(self._sleeps)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now().isoformat()})"
