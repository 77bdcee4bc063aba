"""Quickstart, async: the same job with `civic311.AsyncClient`, three reports at once.

    python examples/quickstart_async.py https://your.city/open311/v2 [API_KEY]

With no URL it starts a local FakeCity on 127.0.0.1, so it runs anywhere.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import ExitStack

import civic311
from civic311.testing import FakeCity

STREETLIGHTS = [(38.8895, -77.0353), (38.8977, -77.0365), (38.8899, -77.0091)]


async def main(base_url: str, api_key: str | None = None) -> list[str]:
    """File three streetlight reports concurrently and return their ids."""
    async with civic311.AsyncClient(base_url, api_key=api_key) as client:
        services = await client.list_services()
        light = next(s for s in services if "light" in (s.service_name or "").lower())

        async def report(lat: float, long: float) -> str:
            receipt = await client.submit(
                civic311.NewRequest(
                    service_code=light.service_code,
                    lat=lat,
                    long=long,
                    description="Streetlight dark all night.",
                )
            )
            return await client.wait_for_id(receipt, timeout=60)

        ids = await asyncio.gather(*(report(lat, long) for lat, long in STREETLIGHTS))
        for request in await client.get_requests(ids):
            print(f"{request.service_request_id}: {request.status}")
        return list(ids)


if __name__ == "__main__":
    with ExitStack() as stack:
        if len(sys.argv) > 1:
            url, key = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
        else:
            url, key = stack.enter_context(FakeCity().serve()), None
        asyncio.run(main(url, key))
