"""The connection pool of an httpx client civic311 builds gives one idle connection to one
request only (issue 13: httpcore 1.0 handed every request entering at once the same idle
connection, and all but one waited on it a whole round trip)."""

from __future__ import annotations

import asyncio

import httpcore
import httpx

import civic311
from civic311._client._network import _ReservingAsyncPool, _ReservingPool


class FakeConnection:
    """An HTTP/1.1 connection as the pool sees it: idle until a request starts on it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.idle = True

    def can_handle_request(self, origin: httpcore.Origin) -> bool:
        return True

    def is_available(self) -> bool:
        return self.idle

    def is_idle(self) -> bool:
        return self.idle

    def is_closed(self) -> bool:
        return False

    def has_expired(self) -> bool:
        return False


def queued(pool: httpcore.AsyncConnectionPool, count: int) -> list[object]:
    requests = [
        httpcore._async.connection_pool.AsyncPoolRequest(
            httpcore.Request("POST", "http://city.example/requests.json")
        )
        for _ in range(count)
    ]
    pool._requests.extend(requests)
    return requests


def test_requests_entering_at_once_get_distinct_idle_connections() -> None:
    """Two requests queued while two connections are idle get one connection each; httpcore's
    own pool gives both the first."""

    async def assigned(pool: httpcore.AsyncConnectionPool) -> tuple[str, str]:
        first, second = FakeConnection("first"), FakeConnection("second")
        pool._connections = [first, second]  # type: ignore[list-item]
        (a,) = queued(pool, 1)
        pool._assign_requests_to_connections()
        (b,) = queued(pool, 1)
        pool._assign_requests_to_connections()  # a has its connection but has not started
        assert set(pool._connections) == {first, second}  # type: ignore[comparison-overlap]
        return a.connection.name, b.connection.name  # type: ignore[attr-defined]

    assert asyncio.run(assigned(httpcore.AsyncConnectionPool())) == ("first", "first")
    assert asyncio.run(assigned(_ReservingAsyncPool())) == ("first", "second")


def test_clients_civic311_builds_use_the_reserving_pool() -> None:
    """AsyncClient and Client put the reserving pool in the httpx client they build, and leave
    an httpx client the caller passes alone."""

    async def pools() -> tuple[object, object]:
        async with (
            civic311.AsyncClient("https://city.example/v2") as built,
            httpx.AsyncClient() as given,
            civic311.AsyncClient("https://city.example/v2", http_client=given),
        ):
            return built._http._transport._pool, given._transport._pool  # type: ignore[attr-defined]

    ours, theirs = asyncio.run(pools())
    assert type(ours) is _ReservingAsyncPool
    assert type(theirs) is httpcore.AsyncConnectionPool
    with civic311.Client("https://city.example/v2") as client:
        assert type(client._http._transport._pool) is _ReservingPool  # type: ignore[attr-defined]
