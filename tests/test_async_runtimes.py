"""AsyncClient on any event loop anyio supports: asyncio and trio (issue 10, case 5).

Every ``@pytest.mark.anyio`` test and every `both` scenario already runs on both loops
(tests/conftest.py). These tests pin what used to break: the real clock's sleeps, under trio,
outside anyio's test runner.
"""

from __future__ import annotations

import time

import httpx
import pytest
import trio

import civic311
from civic311._clock import SystemClock
from civic311.profiles import Profile
from civic311.testing import VirtualClock

BASE = "https://city.example/open311/v2"
SERVICES = [{"service_code": "001", "service_name": "Pothole"}]


def _busy_then_ok(failures: int) -> httpx.MockTransport:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= failures:
            return httpx.Response(503)
        return httpx.Response(200, json=SERVICES)

    return httpx.MockTransport(handler)


def test_case_5_trio_survives_the_first_backoff_on_the_real_clock() -> None:
    """Under trio.run, a 503 then a success: the client sleeps (for real, SystemClock) and
    returns the services — it used to die on asyncio.sleep with "no running event loop"."""
    policy = civic311.RetryPolicy(attempts=3, initial_wait=0.02, max_wait=0.02, jitter=False)

    async def main() -> list[civic311.Service]:
        async with civic311.AsyncClient(BASE, transport=_busy_then_ok(2), retry=policy) as client:
            assert isinstance(client.clock, SystemClock)
            return await client.list_services()

    started = time.monotonic()
    services = trio.run(main)
    assert [s.service_code for s in services] == ["001"]
    assert time.monotonic() - started >= 0.04  # two real backoffs were slept


def test_trio_wait_for_id_polls_on_the_real_clock() -> None:
    """wait_for_id's sleeps between token polls run on trio's clock too."""
    answers = iter([[{"token": "T"}], [{"token": "T", "service_request_id": "42"}]])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=next(answers))

    async def main() -> str:
        async with civic311.AsyncClient(
            BASE,
            transport=httpx.MockTransport(handler),
            profile=Profile(poll_interval=0.01, max_poll_interval=0.01),
        ) as client:
            return await client.wait_for_id("T", timeout=5)

    assert trio.run(main) == "42"


@pytest.mark.anyio
async def test_system_clock_sleeps_on_either_loop(anyio_backend: str) -> None:
    """SystemClock.asleep waits on the running loop (asyncio or trio), a negative wait as 0."""
    clock = SystemClock()
    started = time.monotonic()
    await clock.asleep(0.01)
    await clock.asleep(-1)
    assert time.monotonic() - started >= 0.01


@pytest.mark.anyio
async def test_virtual_clock_yields_on_either_loop(anyio_backend: str) -> None:
    """VirtualClock.asleep advances at once and yields to whichever loop runs it."""
    clock = VirtualClock()
    await clock.asleep(30)
    assert clock.sleeps == [30]
    assert clock.monotonic() == 30
