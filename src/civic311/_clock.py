"""Time as a dependency.

Everything in civic311 that waits or reads the time goes through a `Clock`, so tests (ours and
users') can swap in `civic311.testing.VirtualClock` and let hours of polling, backoff and city
work pass in microseconds. Nothing below the clients sleeps; the clients sleep through here.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "checkpoint"]


@runtime_checkable
class Clock(Protocol):
    """What civic311 needs of time: a monotonic reading, a wall clock in UTC, and sleeping."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (deadlines, latencies)."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""

    def sleep(self, seconds: float) -> None:
        """Block for *seconds* (used by `Client`)."""

    async def asleep(self, seconds: float) -> None:
        """Wait for *seconds* without blocking the event loop, on any runtime anyio supports
        (asyncio, trio): used by `AsyncClient`."""


class SystemClock:
    """The real clock: `time.monotonic`, `datetime.now(UTC)`, `time.sleep`, `anyio.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        # anyio, not asyncio: AsyncClient runs on whichever event loop calls it, asyncio or
        # trio (issue 10, case 5: asyncio.sleep failed under trio on the first backoff). Loaded
        # here, on the first async wait, so `import civic311` stays light (bench/imports.py).
        import anyio

        await anyio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "SystemClock()"


async def checkpoint() -> None:
    """Let the running event loop, asyncio or trio, run its other tasks once (anyio's
    checkpoint: a virtual clock's sleeps take no time but must still yield)."""
    import anyio.lowlevel

    await anyio.lowlevel.checkpoint()
