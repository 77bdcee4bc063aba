"""pytest fixtures for testing your app against a FakeCity.

The plugin is registered automatically when civic311 is installed (entry point ``pytest11``,
name ``civic311``); there is nothing to add to ``conftest.py``. It gives you:

* ``fake_city_clock`` - a fresh `VirtualClock` at 2026-01-01T00:00:00Z.
* ``fake_city`` - a `FakeCity` (seed 0, the default catalogue) on that clock. Use its
  `transport()` for in-process tests, `inject()` for faults, `generate_requests()` for
  history.
* ``fake_city_url`` - the same city served on 127.0.0.1; the value is its base URL
  (``http://127.0.0.1:PORT/open311/v2``). The server stops when the test ends.

::

    import httpx

    def test_lists_services(fake_city):
        with httpx.Client(transport=fake_city.transport(), base_url=fake_city.base_url) as http:
            assert http.get("services.json").json()[0]["service_code"] == "001"

    def test_retries_a_503(fake_city, fake_city_url):
        fake_city.inject(Fault.status(503), times=1)
        my_app.sync(base_url=fake_city_url)       # your code, over real sockets
        assert fake_city.calls[-1].status == 200

Configure the city of one test with the ``fake_city`` marker; its keyword arguments go to
`FakeCity` (a ``clock`` argument replaces ``fake_city_clock``)::

    @pytest.mark.fake_city(api_key="secret", dialect=Dialect.chicago(), seed=7)
    def test_chicago(fake_city): ...

The plugin module imports nothing heavy: FakeCity is loaded the first time a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from civic311.testing import FakeCity, VirtualClock

__all__ = ["fake_city", "fake_city_clock", "fake_city_url", "pytest_configure"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``fake_city`` marker (so ``--strict-markers`` suites accept it)."""
    config.addinivalue_line(
        "markers", "fake_city(**kwargs): keyword arguments for the fake_city fixture's FakeCity"
    )


@pytest.fixture
def fake_city_clock() -> VirtualClock:
    """A VirtualClock at 2026-01-01T00:00:00Z."""
    from civic311.testing import VirtualClock

    return VirtualClock()


@pytest.fixture
def fake_city(request: pytest.FixtureRequest, fake_city_clock: VirtualClock) -> FakeCity:
    """A FakeCity with the default catalogue on `fake_city_clock` (configurable by marker)."""
    from civic311.testing import FakeCity

    marker = request.node.get_closest_marker("fake_city")
    options = dict(marker.kwargs) if marker is not None else {}
    options.setdefault("clock", fake_city_clock)
    return FakeCity(**options)


@pytest.fixture
def fake_city_url(fake_city: FakeCity) -> Iterator[str]:
    """`fake_city` served on 127.0.0.1 for the test; yields its base URL."""
    with fake_city.serve() as base_url:
        yield base_url
