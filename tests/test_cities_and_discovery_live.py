"""Client.for_city and Client.from_discovery build working clients (loopback FakeCity)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import civic311
from civic311 import cities
from civic311._resilience import RetryPolicy
from civic311.cities import City, CityStatusWarning, RetiredCityError, UnknownCityError
from civic311.testing import Dialect, DiscoveryEndpointSpec, FakeCity, VirtualClock


@pytest.fixture
def registered() -> object:
    """A city registered at run time, served by FakeCity; removed afterwards."""
    city = FakeCity(seed=4)
    with city.serve() as url:
        entry = City(
            key="testville",
            name="Testville",
            country="XX",
            production=(url, "http://127.0.0.1:9/open311/v2"),
            jurisdiction_id=None,
            profile=civic311.Profile(name="testville", result_cap=1000),
            status="active",
            source=("tests",),
            channels={"web": "https://testville.example/311", "phone": "311"},
        )
        cities.register(entry)
        try:
            yield city, url
        finally:
            cities.unregister("testville")


def test_for_city_uses_the_registry_entry(registered: tuple[FakeCity, str]) -> None:
    """for_city takes endpoints, profile and channels from the registry and works."""
    _, url = registered
    with civic311.Client.for_city("Testville", api_key="k") as client:
        assert client.endpoints[0] == url
        assert client.profile.name == "testville"
        assert client.list_services()


def test_every_endpoint_down_names_the_other_channels(registered: tuple[FakeCity, str]) -> None:
    """When every endpoint fails, the error tells where else a resident can report."""
    city, _ = registered
    city.down()
    try:
        with (
            civic311.Client.for_city("testville", retry=RetryPolicy.no_wait(2), timeout=1) as c,
            pytest.raises(civic311.AllEndpointsFailedError) as caught,
        ):
            c.list_services()
    finally:
        city.up()
    assert caught.value.other_channels == ["web: https://testville.example/311", "phone: 311"]
    assert "other ways to reach the city: web: https://testville.example/311" in str(caught.value)


def test_questioned_warns_retired_refuses_unknown_suggests() -> None:
    """A questioned city warns, a retired one is refused unless allowed, a typo suggests."""
    with pytest.warns(CityStatusWarning, match="Listed"):
        civic311.Client.for_city("boston").close()
    with pytest.raises(RetiredCityError):
        civic311.Client.for_city("philadelphia")
    with pytest.warns(CityStatusWarning):
        civic311.Client.for_city("philadelphia", allow_retired=True).close()
    with pytest.raises(UnknownCityError, match="chicago"):
        civic311.Client.for_city("chicgo")


def test_from_discovery_orders_endpoints_and_their_formats() -> None:
    """from_discovery keeps the v2 production endpoints in order, each in its best format."""
    clock = VirtualClock()
    primary = FakeCity(seed=5, clock=clock, dialect=Dialect.xml_only())
    mirror = FakeCity(store=primary.store, clock=clock)
    with primary.serve() as primary_url, mirror.serve() as mirror_url:
        primary.discovery_endpoints[:] = [
            DiscoveryEndpointSpec(url=primary_url, formats=("text/xml",)),
            DiscoveryEndpointSpec(url="http://127.0.0.1:9/v2", type="test"),
            DiscoveryEndpointSpec(url=mirror_url, formats=("text/xml", "application/json")),
            DiscoveryEndpointSpec(
                url="http://127.0.0.1:9/v3", specification="http://wiki.open311.org/GeoReport_v3"
            ),
        ]
        discovery = FakeCity.discovery_url_for(primary_url)
        with civic311.Client.from_discovery(discovery, clock=clock) as client:
            assert client.endpoints == (primary_url, mirror_url)
            assert [h.format for h in client.health()] == ["xml", "json"]
            assert client.list_services()
            primary.down()
            assert client.list_services()  # the mirror, in JSON
            primary.up()
        with civic311.Client.from_discovery(discovery, environment="test") as test_client:
            assert test_client.endpoints == ("http://127.0.0.1:9/v2",)


def test_async_from_discovery() -> None:
    """AsyncClient.from_discovery is awaited and gives a working client."""
    city = FakeCity(seed=6)

    async def run() -> int:
        client = await civic311.AsyncClient.from_discovery(
            city.discovery_url, transport=city.transport()
        )
        async with client:
            return len(await client.list_services())

    assert asyncio.run(run()) == 5


def test_from_discovery_of_a_broken_document_is_a_decode_error() -> None:
    """A discovery URL that answers HTML raises DecodeError naming the URL."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>not discovery</html>")

    with pytest.raises(civic311.DecodeError):
        civic311.Client.from_discovery(
            "https://dc.example/discovery.json", transport=httpx.MockTransport(handler)
        )
