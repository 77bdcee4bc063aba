"""Complete harvesting against FakeCity: any span, capped windows, bursts, each request once."""

from __future__ import annotations

import warnings
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

import civic311
from civic311.harvest import HarvestWarning
from civic311.profiles import Profile
from civic311.testing import FakeCity, VirtualClock

UTC = timezone.utc
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def city_with_history(count: int, years: float, *, burst: int = 0, cap: int = 1000) -> FakeCity:
    clock = VirtualClock(start=NOW)
    city = FakeCity(seed=21, clock=clock, result_cap=cap)
    start = NOW - timedelta(days=365 * years)
    city.generate_requests(
        count,
        start=start,
        end=NOW,
        burst=(NOW - timedelta(days=200), burst, 3600.0) if burst else None,
    )
    return city


def test_harvest_100k_over_three_years_with_a_burst_each_exactly_once() -> None:
    """100,000 requests over 3 years, capped at 1,000, with 2,500 in one hour: all, once each."""
    city = city_with_history(100_000, 3, burst=2_500)
    expected = {r.service_request_id for r in city.requests}
    assert len(expected) == 102_500
    calls = 0

    def count(event: civic311.AttemptEvent) -> None:
        nonlocal calls
        calls += 1

    with civic311.Client(
        city.base_url, transport=city.transport(), clock=city.clock, on_attempt=count
    ) as client:
        seen = Counter(
            r.service_request_id
            for r in client.iter_requests(
                start_date=NOW - timedelta(days=365 * 3 + 1), end_date=NOW
            )
        )
    assert set(seen) == expected
    assert max(seen.values()) == 1
    assert calls < len(expected) / 100  # hundreds of requests per call, not a handful


def test_harvest_matches_list_requests_on_a_small_span(both: object) -> None:
    """Over a span that fits one answer, iter_requests gives what list_requests gives."""
    city = city_with_history(300, 0.2)
    with civic311.Client(city.base_url, transport=city.transport(), clock=city.clock) as client:
        start, end = NOW - timedelta(days=60), NOW
        listed = {
            r.service_request_id for r in client.list_requests(start_date=start, end_date=end)
        }
        harvested = [
            r.service_request_id for r in client.iter_requests(start_date=start, end_date=end)
        ]
    assert set(harvested) == listed
    assert len(harvested) == len(listed)


def test_harvest_filters_are_sent_and_kept() -> None:
    """service_code and status filters narrow the harvest, and every result matches them."""
    city = city_with_history(3_000, 1)
    with civic311.Client(city.base_url, transport=city.transport(), clock=city.clock) as client:
        found = list(
            client.iter_requests(
                start_date=NOW - timedelta(days=366),
                end_date=NOW,
                service_code=["001", "002"],
                status="closed",
            )
        )
    expected = {
        r.service_request_id
        for r in city.requests
        if r.service_code in ("001", "002") and city.status_of(r.service_request_id) == "closed"
    }
    assert {r.service_request_id for r in found} == expected
    assert all(r.service_code in ("001", "002") and r.is_closed for r in found)


def test_a_burst_beyond_the_cap_in_one_minute_warns_naming_the_window() -> None:
    """More than the cap within one minute, and no paging: a HarvestWarning names the window."""
    clock = VirtualClock(start=NOW)
    city = FakeCity(seed=2, clock=clock, result_cap=100)
    city.generate_requests(
        0, start=NOW - timedelta(days=1), end=NOW, burst=(NOW - timedelta(hours=5), 150, 30.0)
    )
    capped = Profile(result_cap=100)
    with (
        civic311.Client(
            city.base_url, transport=city.transport(), clock=clock, profile=capped
        ) as client,
        pytest.warns(HarvestWarning, match="cap of 100 .* may be missing"),
    ):
        found = list(client.iter_requests(start_date=NOW - timedelta(days=1), end_date=NOW))
    assert 100 <= len(found) < 150
    assert len({r.service_request_id for r in found}) == len(found)


@pytest.mark.anyio
async def test_async_harvest_is_an_async_iterator() -> None:
    """AsyncClient.iter_requests yields the same requests, asynchronously (asyncio and trio)."""
    city = city_with_history(5_000, 1)
    async with civic311.AsyncClient(
        city.base_url, transport=city.transport(), clock=city.clock
    ) as client:
        found = {
            r.service_request_id
            async for r in client.iter_requests(start_date=NOW - timedelta(days=366), end_date=NOW)
        }
    assert found == {r.service_request_id for r in city.requests}


def test_harvest_over_loopback_http() -> None:
    """The harvest works over real HTTP too, splitting capped windows on a served city."""
    city = city_with_history(2_500, 0.5, cap=500)
    profile = Profile(result_cap=500)
    with city.serve() as url, civic311.Client(url, clock=city.clock, profile=profile) as client:
        found = [
            r.service_request_id
            for r in client.iter_requests(start_date=NOW - timedelta(days=200), end_date=NOW)
        ]
    assert sorted(found) == sorted(r.service_request_id for r in city.requests)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (datetime(2024, 1, 1), NOW, "start_date"),  # noqa: DTZ001
        (NOW, datetime(2027, 1, 1), "end_date"),  # noqa: DTZ001
        (NOW, NOW - timedelta(days=1), "end_date"),
        ("2024-01-01", NOW, "start_date"),
    ],
)
def test_bad_spans_are_refused_before_any_call(start: object, end: object, field: str) -> None:
    """Naive, reversed or non-datetime bounds raise InvalidRequestError naming the bound."""
    city = FakeCity()
    with (
        civic311.Client(city.base_url, transport=city.transport()) as client,
        pytest.raises(civic311.InvalidRequestError, match=field),
    ):
        next(client.iter_requests(start_date=start, end_date=end))  # type: ignore[arg-type]
    assert city.calls == []


def test_no_warning_when_every_window_fits() -> None:
    """A normal harvest raises no HarvestWarning."""
    city = city_with_history(1_000, 1)
    with (
        warnings.catch_warnings(),
        civic311.Client(city.base_url, transport=city.transport(), clock=city.clock) as client,
    ):
        warnings.simplefilter("error")
        assert len(list(client.iter_requests(start_date=NOW - timedelta(days=366), end_date=NOW)))
