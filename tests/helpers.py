"""Test helpers importable from any test module (`from helpers import …`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

import civic311

FIXTURES = Path(__file__).parent / "fixtures"
BASE = "https://city.example/open311/v2"

Handler = Callable[[httpx.Request], httpx.Response]


def fixture_bytes(name: str) -> bytes:
    """The bytes of a file under tests/fixtures."""
    return (FIXTURES / name).read_bytes()


class Both:
    """Runs a client method through `Client` or `AsyncClient`, whichever the test is for."""

    def __init__(self, flavor: str) -> None:
        self.flavor = flavor

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

        return asyncio.run(run())


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
