"""Ordinary user code, checked by mypy --strict (never run): the public API types as promised."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import civic311
from civic311 import (
    AsyncClient,
    Client,
    NewRequest,
    Receipt,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenStatus,
)


def sync_user() -> None:
    with Client(
        ["https://city.example/open311/v2", "https://mirror.example/open311/v2"],
        jurisdiction_id="city.example",
        api_key="key",
        format="xml",
        timeout=5.0,
        headers={"X-App": "fixit"},
    ) as client:
        services: list[Service] = client.list_services()
        codes: list[str] = [s.service_code for s in services if s.metadata]
        definition: ServiceDefinition = client.get_service_definition(codes[0])
        required = [a.code for a in definition.attributes if a.required and a.variable]
        receipt: Receipt = client.submit(
            NewRequest(
                service_code=codes[0],
                lat=37.76,
                long=-122.42,
                description="Pothole",
                attributes={required[0]: "1", "MULTI": ["a", "b"]},
            )
        )
        request_id: str = client.wait_for_id(receipt, timeout=30)
        token: TokenStatus = client.get_token("abc")
        pending: bool = token.pending
        one: ServiceRequest = client.get_request(request_id)
        closed: bool = one.is_closed or (one.status is not None and one.status.is_closed)
        now = datetime.now(timezone.utc)
        recent: list[ServiceRequest] = client.list_requests(
            service_code=["001", "002"], status="open", start_date=now - timedelta(days=7)
        )
        tracked: list[ServiceRequest] = client.get_requests(
            [r.service_request_id or "" for r in recent]
        )
        as_json: dict[str, object] = civic311.to_dict(one)
        again: ServiceRequest = civic311.from_dict(ServiceRequest, as_json)
        print(pending, closed, tracked, again)


async def async_user() -> None:
    async with AsyncClient("https://city.example/open311/v2") as client:
        services: list[Service] = await client.list_services()
        receipt: Receipt = await client.submit(
            NewRequest(service_code=services[0].service_code, address_string="1 Main St")
        )
        request_id: str = await client.wait_for_id(receipt)
        one: ServiceRequest = await client.get_request(request_id)
        print(one.status)


def errors() -> None:
    try:
        sync_user()
    except civic311.APIError as exc:
        status: int = exc.status_code
        details: list[civic311.ErrorDetail] = exc.errors
        raw: bytes = exc.body
        print(status, details, raw)
    except civic311.TransportError as exc:
        may_have_arrived: bool = exc.sent
        print(may_have_arrived)
    except civic311.WaitTimeoutError as exc:
        still_valid: str = exc.token
        print(still_valid)
    except civic311.Civic311Error:
        raise
