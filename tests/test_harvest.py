"""Complete harvesting against FakeCity: any span, capped windows, bursts, each request once."""

from __future__ import annotations

import warnings
from collections import Counter
from datetime import datetime, timedelta, timezone

import anyio
import pytest

import civic311
from civic311.harvest import HarvestWarning
from civic311.profiles import Profile
from civic311.testing import Dialect, FakeCity, VirtualClock

UTC = timezone.utc
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sync", "async"])
def client_kind(request: pytest.FixtureRequest) -> str:
    """Each test with this fixture runs with Client and with AsyncClient."""
    return str(request.param)


def harvest(
    city: FakeCity,
    kind: str,
    profile: Profile | str | None,
    start: datetime,
    end: datetime,
    **options: object,
) -> list[str | None]:
    """The ids `iter_requests` yields over loopback HTTP, with the sync or the async client."""
    with city.serve() as url:
        if kind == "sync":
            with civic311.Client(url, clock=city.clock, profile=profile, **options) as client:  # type: ignore[arg-type]
                return [
                    r.service_request_id
                    for r in client.iter_requests(start_date=start, end_date=end)
                ]

        async def run() -> list[str | None]:
            async with civic311.AsyncClient(
                url,
                clock=city.clock,
                profile=profile,
                **options,  # type: ignore[arg-type]
            ) as client:
                return [
                    r.service_request_id
                    async for r in client.iter_requests(start_date=start, end_date=end)
                ]

        return anyio.run(run)


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


def _burst_city(sort: str = "desc") -> FakeCity:
    city = FakeCity(seed=2, clock=VirtualClock(start=NOW), result_cap=100, sort=sort)  # type: ignore[arg-type]
    city.generate_requests(
        0, start=NOW - timedelta(days=1), end=NOW, burst=(NOW - timedelta(hours=5), 150, 30.0)
    )
    return city


def test_a_burst_beyond_the_cap_comes_back_whole_by_sliding(client_kind: str) -> None:
    """150 requests in 30 s behind a cap of 100, sorted newest first: all of them in 2 calls."""
    city = _burst_city()
    calls: list[civic311.AttemptEvent] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = harvest(
            city,
            client_kind,
            Profile(result_cap=100),
            NOW - timedelta(days=1),
            NOW,
            on_attempt=calls.append,
        )
    assert sorted(found) == sorted(r.service_request_id for r in city.requests)
    assert len(found) == 150
    assert len(calls) == 2


def test_a_burst_on_a_server_sorting_oldest_first_warns_naming_the_window() -> None:
    """The same burst from a server sorting oldest first: halving, then a HarvestWarning."""
    city = _burst_city("asc")
    with pytest.warns(HarvestWarning, match="cap of 100 .* may be missing"):
        found = harvest(city, "sync", Profile(result_cap=100), NOW - timedelta(days=1), NOW)
    assert 100 <= len(found) < 150
    assert len(set(found)) == len(found)


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


def test_a_server_ignoring_dates_is_noticed_and_the_harvest_stays_bounded(
    client_kind: str,
) -> None:
    """A server answering the same 1,000 rows whatever the dates: the harvest warns that it
    ignores them, stops splitting, and stays within a few calls per 90-day window."""
    clock = VirtualClock(start=NOW)
    city = FakeCity(seed=8, clock=clock, dialect=Dialect(ignore_filters=True))
    city.generate_requests(3_000, start=NOW - timedelta(days=365), end=NOW)
    calls: list[civic311.AttemptEvent] = []
    with pytest.warns(HarvestWarning, match="ignores start_date and end_date"):
        found = harvest(
            city, client_kind, None, NOW - timedelta(days=365), NOW, on_attempt=calls.append
        )
    assert len(found) == len(set(found))
    assert len(calls) <= 5 * 2  # five 90-day windows; a few calls each, not thousands
    newest = sorted(city.requests, key=lambda r: r.requested_datetime)[-1000:]
    assert {r.service_request_id for r in newest} <= set(found)


def test_harvest_slides_at_about_the_floor_of_calls() -> None:
    """100,000 requests over 3 years behind a cap of 1,000: close to N/cap + 1 calls."""
    city = city_with_history(100_000, 3)
    calls: list[civic311.AttemptEvent] = []
    with civic311.Client(
        city.base_url, transport=city.transport(), clock=city.clock, on_attempt=calls.append
    ) as client:
        found = sum(
            1
            for _ in client.iter_requests(
                start_date=NOW - timedelta(days=365 * 3 + 1), end_date=NOW
            )
        )
    assert found == 100_000
    assert found / len(calls) >= 950


def test_a_server_sorting_oldest_first_is_harvested_whole_by_halving() -> None:
    """Capped answers sorted oldest first cannot be slid: halving still gets every request,
    each once, with no warning."""
    clock = VirtualClock(start=NOW)
    city = FakeCity(seed=4, clock=clock, result_cap=500, sort="asc")
    city.generate_requests(2_500, start=NOW - timedelta(days=180), end=NOW)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = harvest(city, "sync", Profile(result_cap=500), NOW - timedelta(days=200), NOW)
    assert sorted(i or "" for i in found) == sorted(r.service_request_id for r in city.requests)


def test_every_harvest_keeps_a_budget_of_calls() -> None:
    """A server that always has older rows at the cap, however far back the harvest slides,
    stops the harvest at its budget of calls with a HarvestWarning, never loops for ever."""
    from civic311.harvest import Harvest

    start, end = NOW - timedelta(days=1), NOW
    walk = Harvest(start=start, end=end, result_cap=10, max_calls_per_window=3)

    def drive() -> int:
        calls = 0
        while True:
            flow = walk.next_batch()
            reply: object = None
            while True:
                try:
                    step = flow.send(reply)
                except StopIteration as done:
                    batch = done.value
                    break
                calls += 1
                hi = datetime.fromisoformat(dict(step.params)["end_date"].replace("Z", "+00:00"))
                reply = [
                    civic311.ServiceRequest(
                        service_request_id=f"{calls}-{i}",
                        requested_datetime=hi - timedelta(seconds=2 * i + 1),
                    )
                    for i in range(10)
                ]
            if batch is None:
                return calls

    with pytest.warns(HarvestWarning, match="gave up after 3 calls"):
        calls = drive()
    assert calls == 3
