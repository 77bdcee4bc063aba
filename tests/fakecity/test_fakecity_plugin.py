"""The pytest plugin's fixtures and marker, and the cheap import of civic311.testing."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

import civic311.testing
from civic311.testing import Dialect, FakeCity, VirtualClock


def test_fake_city_fixture(fake_city: FakeCity, fake_city_clock: VirtualClock) -> None:
    """fake_city is a default FakeCity on the fake_city_clock VirtualClock."""
    assert isinstance(fake_city, FakeCity)
    assert fake_city.clock is fake_city_clock
    assert fake_city.dialect == Dialect()
    with httpx.Client(transport=fake_city.transport(), base_url=fake_city.base_url) as http:
        assert http.get("services.json").json()[0]["service_code"] == "001"


def test_fake_city_url_fixture(fake_city: FakeCity, fake_city_url: str) -> None:
    """fake_city_url serves fake_city on 127.0.0.1 for the test."""
    assert fake_city_url.startswith("http://127.0.0.1:")
    assert fake_city_url.endswith("/open311/v2")
    assert httpx.get(f"{fake_city_url}/services.xml").status_code == 200
    assert fake_city.calls[-1].path == "services"


@pytest.mark.fake_city(api_key="k", dialect=Dialect.xml_only(), seed=3)
def test_marker_configures_the_city(fake_city: FakeCity) -> None:
    """The fake_city marker passes its keyword arguments to FakeCity."""
    assert fake_city.api_key == "k"
    assert fake_city.dialect == Dialect.xml_only()
    assert fake_city.store.seed == 3


def test_plugin_import_is_cheap() -> None:
    """Importing the plugin does not import FakeCity's modules (they load on first use)."""
    code = (
        "import sys, civic311.testing.plugin; "
        "print(sorted(m for m in sys.modules if m.startswith('civic311.testing.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.strip() == "['civic311.testing.plugin']"


def test_lazy_names() -> None:
    """civic311.testing exposes its names lazily and refuses unknown ones."""
    assert "FakeCity" in dir(civic311.testing)
    assert set(civic311.testing.__all__) <= set(dir(civic311.testing))
    for name in civic311.testing.__all__:
        assert getattr(civic311.testing, name) is not None
    with pytest.raises(AttributeError, match="nothing"):
        civic311.testing.nothing  # noqa: B018
