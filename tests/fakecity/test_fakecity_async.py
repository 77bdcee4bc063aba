"""httpx.AsyncClient against FakeCity: the same transport object, and a served city."""

from __future__ import annotations

import httpx
import pytest

from civic311.testing import FakeCity, Fault, VirtualClock

from .fakecity_helpers import POTHOLE

pytestmark = pytest.mark.anyio


def _sync_services(transport: httpx.BaseTransport, base_url: str) -> object:
    # In process, so not blocking; kept out of the coroutine for the ASYNC lint rules.
    with httpx.Client(transport=transport, base_url=base_url) as http:
        return http.get("services.json").json()


async def test_one_transport_serves_sync_and_async(city: FakeCity) -> None:
    """The object transport() returns works for httpx.Client and httpx.AsyncClient alike."""
    transport = city.transport()
    assert isinstance(transport, httpx.BaseTransport)
    assert isinstance(transport, httpx.AsyncBaseTransport)
    async with httpx.AsyncClient(transport=transport, base_url=city.base_url) as http:
        services = (await http.get("services.json")).json()
        response = await http.post("requests.json", data=POTHOLE)
    assert _sync_services(transport, city.base_url) == services
    assert response.status_code == 200
    assert city.count_created() == 1


async def test_async_latency_and_hang_use_the_virtual_clock(
    city: FakeCity, clock: VirtualClock
) -> None:
    """Async latency sleeps the clock; an async hang waits out the read timeout virtually."""
    city.inject(Fault.latency(12), times=1)
    city.inject(Fault.hang(), times=1, path="requests")
    async with httpx.AsyncClient(transport=city.transport(), base_url=city.base_url) as http:
        assert (await http.get("services.json")).status_code == 200
        assert clock.sleeps == [12.0]
        with pytest.raises(httpx.ReadTimeout):
            await http.get("requests.json", timeout=7)
    assert clock.sleeps == [12.0, 7.0]


async def test_async_transport_faults_raise_httpx_errors(city: FakeCity) -> None:
    """Over the async transport, down, reset and drop_after_create raise httpx errors."""
    async with httpx.AsyncClient(transport=city.transport(), base_url=city.base_url) as http:
        city.down()
        with pytest.raises(httpx.ConnectError):
            await http.get("services.json")
        city.up()
        city.inject(Fault.drop_after_create(), times=1)
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await http.post("requests.json", data=POTHOLE)
    assert city.count_created() == 1


async def test_async_client_against_served_city(city: FakeCity) -> None:
    """An AsyncClient over real loopback sockets gets the same answers."""
    with city.serve() as url:
        async with httpx.AsyncClient(base_url=url, timeout=2.0) as http:
            response = await http.post("requests.json", data=POTHOLE)
            [item] = response.json()
            one = await http.get(f"requests/{item['service_request_id']}.json")
    assert one.json()[0]["description"] == "Big hole"
