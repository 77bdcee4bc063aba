"""Quickstart: list services, file a report, wait for its id, check its status.

Run it against your city's GeoReport v2 endpoint::

    python examples/quickstart.py https://your.city/open311/v2 [API_KEY]

With no URL it starts a local FakeCity on 127.0.0.1, so it runs anywhere.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack

import civic311
from civic311.testing import FakeCity


def main(base_url: str, api_key: str | None = None) -> str:
    """File one pothole report and return its service_request_id."""
    with civic311.Client(base_url, api_key=api_key) as client:
        services = client.list_services()
        for service in services:
            print(f"{service.service_code:>6}  {service.service_name}  ({service.type})")
        pothole = next(s for s in services if "pothole" in (s.service_name or "").lower())
        receipt = client.submit(
            civic311.NewRequest(
                service_code=pothole.service_code,
                lat=38.8895,
                long=-77.0353,
                description="Deep pothole in the right lane, by the bus stop.",
            )
        )
        request_id = client.wait_for_id(receipt, timeout=60)
        request = client.get_request(request_id)
        print(f"filed {request_id}: {request.status}")
        return request_id


if __name__ == "__main__":
    with ExitStack() as stack:
        if len(sys.argv) > 1:
            url, key = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
        else:
            url, key = stack.enter_context(FakeCity().serve()), None
        main(url, key)
