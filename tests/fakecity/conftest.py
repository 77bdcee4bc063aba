"""Fixtures for the FakeCity suite: a virtual clock, a city, and plain httpx clients over both
the in-process transport and a real loopback server."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import datetime, timezone

import httpx
import pytest

from civic311.testing import FakeCity, VirtualClock

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock at 2026-01-01T00:00:00Z."""
    return VirtualClock(START)


@pytest.fixture
def city(clock: VirtualClock) -> FakeCity:
    """A default FakeCity (seed 0) on the virtual clock."""
    return FakeCity(seed=0, clock=clock)


@pytest.fixture(params=["transport", "serve"])
def mode(request: pytest.FixtureRequest) -> str:
    """Which way the city is reached: in process, or over 127.0.0.1."""
    return str(request.param)


@pytest.fixture(scope="session")
def tls() -> ssl.SSLContext:
    """One default TLS context for every client (building one per client costs ~20 ms)."""
    return ssl.create_default_context()


@pytest.fixture
def http(mode: str, city: FakeCity, tls: ssl.SSLContext) -> Iterator[httpx.Client]:
    """A plain httpx.Client whose base URL is the city, over `mode`."""
    if mode == "transport":
        with httpx.Client(transport=city.transport(), base_url=city.base_url) as client:
            yield client
    else:
        with city.serve() as url, httpx.Client(base_url=url, timeout=2.0, verify=tls) as client:
            yield client
