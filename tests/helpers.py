"""Test helpers importable from any test module (`from helpers import …`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import httpx

import civic311
from civic311 import bulk
from civic311.ledger import Ledger

FIXTURES = Path(__file__).parent / "fixtures"
BASE = "https://city.example/open311/v2"

Handler = Callable[[httpx.Request], httpx.Response]

T = TypeVar("T")


def fixture_bytes(name: str) -> bytes:
    """The bytes of a file under tests/fixtures."""
    return (FIXTURES / name).read_bytes()


#: The event loops every AsyncClient test runs on (anyio's names): the client promises both.
ASYNC_BACKENDS = ("asyncio", "trio")


def run_async(function: Callable[[], Awaitable[T]], backend: str) -> T:
    """Run *function* to completion on a fresh event loop of *backend* ("asyncio" or "trio")."""
    return anyio.run(function, backend=backend)


class AsyncCaller:
    """Drives one AsyncClient across several calls on one event loop of *backend*, from sync test
    code (an anyio blocking portal: the loop runs in a thread until `close`)."""

    def __init__(self, backend: str, *args: Any, **options: Any) -> None:
        self._portal_cm = anyio.from_thread.start_blocking_portal(backend)
        self._portal = self._portal_cm.__enter__()
        self.client = civic311.AsyncClient(*args, **options)

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        bound = getattr(self.client, method)

        async def call() -> Any:
            return await bound(*args, **kwargs)

        return self._portal.call(call)

    def run(self, function: Callable[[], Awaitable[T]]) -> T:
        """Run *function* on this caller's event loop."""
        return self._portal.call(function)

    def close(self) -> None:
        try:
            self._portal.call(self.client.aclose)
        finally:
            self._portal_cm.__exit__(None, None, None)


class Both:
    """Runs a client method through `Client` or `AsyncClient`, whichever the test is for.

    *flavor* is "sync" or "async"; an async Both runs on *backend* ("asyncio" or "trio").
    """

    def __init__(self, flavor: str, backend: str = "asyncio") -> None:
        self.flavor = flavor
        self.backend = backend

    def run(self, function: Callable[[], Awaitable[T]]) -> T:
        """Run *function* on this Both's async backend."""
        return run_async(function, self.backend)

    def __call__(
        self,
        handler: Handler,
        method: str,
        *args: Any,
        client: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        transport = httpx.MockTransport(handler)
        options = {"transport": transport, **(client or {})}
        endpoints = options.pop("endpoints", BASE)
        if self.flavor == "sync":
            with civic311.Client(endpoints, **options) as sync_client:
                return getattr(sync_client, method)(*args, **kwargs)

        async def run() -> Any:
            async with civic311.AsyncClient(endpoints, **options) as async_client:
                return await getattr(async_client, method)(*args, **kwargs)

        return self.run(run)


def respond(
    body: bytes | str = b"",
    status: int = 200,
    content_type: str = "application/json; charset=utf-8",
    headers: dict[str, str] | None = None,
) -> Handler:
    """A handler that answers every request the same way, recording the requests it saw."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        data = body.encode() if isinstance(body, str) else body
        return httpx.Response(
            status, content=data, headers={"Content-Type": content_type, **(headers or {})}
        )

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


def write_csv(path: Path, count: int, *, bad: bool = False) -> Path:
    """A bulk CSV of *count* good pothole rows at *path* (and, with *bad*, three rows that are
    not requests: a missing required attribute, a bad latitude, an unknown service)."""
    lines = ["service_code,lat,long,address_string,description,attribute.SURFACE"]
    for n in range(count):
        lines.append(f"001,39.{n:05d},-86.5,,Bulk pothole {n},")
    if bad:
        lines.append("003,,,1 Elm St,Graffiti without its required surface,")
        lines.append("001,north,-86.5,,bad latitude,")
        lines.append("999,39.1,-86.5,,unknown service,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def submit_csv(
    url: str,
    journal: str | Path,
    rows: Path,
    *,
    client_options: dict[str, Any] | None = None,
    **options: Any,
) -> bulk.BulkSummary:
    """`bulk.submit_all` of the CSV *rows* to the city at *url*, on the journal *journal*
    (a file or a PostgreSQL URL), unvalidated, in a fresh event loop."""

    async def go() -> bulk.BulkSummary:
        async with civic311.AsyncClient(url, **(client_options or {})) as client:
            with Ledger(journal) as ledger:
                return await bulk.submit_all(
                    client, bulk.read_rows(rows), ledger=ledger, validate=False, **options
                )

    return asyncio.run(go())
