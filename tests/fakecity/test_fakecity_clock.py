"""VirtualClock: the Clock protocol, instant sleeps, recorded backoff, guarded advances."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from civic311._clock import Clock
from civic311.testing import VirtualClock

from .conftest import START


def test_implements_the_clock_protocol() -> None:
    """VirtualClock satisfies civic311._clock.Clock and starts at 2026-01-01 UTC by default."""
    clock = VirtualClock()
    assert isinstance(clock, Clock)
    assert clock.now() == START
    assert clock.monotonic() == 0.0
    assert "2026-01-01" in repr(clock)


def test_sleep_advances_instantly_and_is_recorded(clock: VirtualClock) -> None:
    """sleep() moves now() and monotonic() forward and records the duration."""
    clock.sleep(2.5)
    clock.sleep(-1)  # a negative sleep is a zero sleep
    assert clock.monotonic() == 2.5
    assert clock.now() == START + timedelta(seconds=2.5)
    assert clock.sleeps == [2.5, 0.0]
    assert clock.slept == 2.5


@pytest.mark.anyio
async def test_asleep_advances_and_yields(clock: VirtualClock) -> None:
    """asleep() advances the clock like sleep() inside an event loop."""
    await clock.asleep(10)
    assert clock.monotonic() == 10
    assert clock.sleeps == [10]


def test_advance_and_advance_to(clock: VirtualClock) -> None:
    """advance() takes seconds or a timedelta and is not a sleep; advance_to() jumps forward."""
    clock.advance(60)
    clock.advance(timedelta(minutes=1))
    assert clock.now() == START + timedelta(minutes=2)
    clock.advance_to(START + timedelta(days=1))
    assert clock.monotonic() == 86400
    assert clock.sleeps == []


def test_time_never_goes_back(clock: VirtualClock) -> None:
    """Negative advances and naive datetimes are refused."""
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance_to(START - timedelta(seconds=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.advance_to(START.replace(tzinfo=None))
    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualClock(START.replace(tzinfo=None))


def test_start_is_normalised_to_utc() -> None:
    """A start with another offset is stored and reported in UTC."""
    clock = VirtualClock(datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == START
    assert clock.now().tzinfo == timezone.utc
