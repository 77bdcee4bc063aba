"""Each Profile option, obeyed by the client, against a FakeCity dialect over loopback HTTP."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import httpx
import pytest

import civic311
from civic311.profiles import Profile
from civic311.testing import Dialect, FakeCity, VirtualClock

UTC = timezone.utc
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=NOW)


def queries(city: FakeCity, path: str = "requests") -> list[dict[str, list[str]]]:
    return [parse_qs(c.query) for c in city.calls if c.path == path and c.method == "GET"]


def test_forced_xml_asks_xml_first_and_never_json(clock: VirtualClock) -> None:
    """force_format: an XML-only city is asked .xml from the first call."""
    city = FakeCity(clock=clock, dialect=Dialect.xml_only())
    profile = Profile(format="xml", force_format=True)
    with city.serve() as url, civic311.Client(url, clock=clock, profile=profile) as client:
        assert client.format == "xml"
        assert client.list_services()
    assert all(c.path == "services" for c in city.calls)
    assert len(city.calls) == 1


def test_forced_format_refuses_the_other(clock: VirtualClock) -> None:
    """Asking JSON of a profile that forces XML is an InvalidRequestError naming format."""
    with pytest.raises(civic311.InvalidRequestError, match="format"):
        civic311.Client(
            "https://x.example/v2", format="json", profile=Profile(format="xml", force_format=True)
        )


def test_preferred_format_is_the_default(clock: VirtualClock) -> None:
    """A profile's preferred format applies when the caller gives none."""
    client = civic311.Client("https://x.example/v2", profile=Profile(format="xml"))
    assert client.format == "xml"
    client.close()


def test_dates_without_a_zone(clock: VirtualClock) -> None:
    """date_style=no_zone sends query datetimes without Z, and the city still answers."""
    city = FakeCity(clock=clock)
    city.generate_requests(50, start=NOW - timedelta(days=10), end=NOW)
    profile = Profile(date_style="no_zone")
    with city.serve() as url, civic311.Client(url, clock=clock, profile=profile) as client:
        found = client.list_requests(start_date=NOW - timedelta(days=10), end_date=NOW)
    assert len(found) == 50
    (query,) = queries(city)
    assert query["start_date"] == ["2025-12-22T00:00:00"]
    assert query["end_date"] == ["2026-01-01T00:00:00"]


@pytest.mark.parametrize("style", ["brackets", "repeat"])
def test_multivalue_encoding_matches_the_city(clock: VirtualClock, style: str) -> None:
    """multivalue: lists go as attribute[c][] or repeated attribute[c], as the city reads them."""
    city = FakeCity(clock=clock, dialect=Dialect(multivalue=style))  # type: ignore[arg-type]
    profile = Profile(multivalue=style)  # type: ignore[arg-type]
    report = civic311.NewRequest(
        service_code="003", address_string="9 Elm St", attributes={"SURFACE": ["wall", "fence"]}
    )
    with city.serve() as url, civic311.Client(url, clock=clock, profile=profile) as client:
        keys = sorted(client.get_service_definition("003").attribute("SURFACE").value_keys())  # type: ignore[union-attr]
        report = civic311.NewRequest(
            service_code="003", address_string="9 Elm St", attributes={"SURFACE": keys[:2]}
        )
        receipt = client.submit(report)
    stored = city.get(receipt.service_request_id or "")
    assert stored is not None
    assert sorted(stored.attributes["SURFACE"]) == keys[:2]


def test_required_fields_are_checked_before_sending(clock: VirtualClock) -> None:
    """required_fields: a report without the city's required email never leaves the client."""
    city = FakeCity(clock=clock)
    profile = Profile(required_fields=("email", "description"))
    with city.serve() as url, civic311.Client(url, clock=clock, profile=profile) as client:
        with pytest.raises(civic311.InvalidRequestError, match="email"):
            client.submit(civic311.NewRequest(service_code="001", address_id="1", description="x"))
        client.submit(
            civic311.NewRequest(
                service_code="001", address_id="1", description="x", email="a@b.example"
            )
        )
    assert [c.method for c in city.calls] == ["POST"]


def test_jurisdiction_required_and_forbidden(clock: VirtualClock) -> None:
    """jurisdiction: required without one, or forbidden with one, is refused at construction."""
    city = FakeCity(clock=clock, jurisdiction_id="city.example")
    with pytest.raises(civic311.InvalidRequestError, match="jurisdiction_id"):
        civic311.Client("https://x.example/v2", profile=Profile(jurisdiction="required"))
    with pytest.raises(civic311.InvalidRequestError, match="jurisdiction_id"):
        civic311.Client(
            "https://x.example/v2",
            jurisdiction_id="x",
            profile=Profile(jurisdiction="forbidden"),
        )
    profile = Profile(jurisdiction="required")
    with (
        city.serve() as url,
        civic311.Client(url, clock=clock, profile=profile, jurisdiction_id="city.example") as c,
    ):
        assert c.list_services()


def test_api_key_on_reads(clock: VirtualClock) -> None:
    """api_key_on_reads: GETs carry the key as a query parameter (and no error shows it)."""
    city = FakeCity(clock=clock)
    profile = Profile(api_key_on_reads=True)
    with (
        city.serve() as url,
        civic311.Client(url, clock=clock, profile=profile, api_key="READ-KEY-9") as client,
    ):
        client.list_services()
        with pytest.raises(civic311.NotFoundError) as caught:
            client.get_service_definition("nope")
    assert parse_qs(city.calls[0].query)["api_key"] == ["READ-KEY-9"]
    assert "READ-KEY-9" not in str(caught.value)


def test_paths_and_accept_encoding_and_extensions() -> None:
    """paths rename resources; accept_encoding replaces httpx's; extensions=true on lists."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    profile = Profile(paths={"requests": "issues"}, accept_encoding="identity", extensions=True)
    with civic311.Client(
        "https://x.example/v2", transport=httpx.MockTransport(handler), profile=profile
    ) as client:
        client.list_requests()
        client.list_services()
    assert seen[0].url.path == "/v2/issues.json"
    assert seen[0].url.params["extensions"] == "true"
    assert seen[0].headers["Accept-Encoding"] == "identity"
    assert seen[1].url.path == "/v2/services.json"
    assert "extensions" not in seen[1].url.params


@pytest.mark.parametrize(
    ("dialect", "profile"),
    [
        (
            Dialect(paging="page", page_size_default=50, page_size_max=100),
            Profile(paging="page", page_size=100, result_cap=100),
        ),
        (
            Dialect(paging="page", page_size_default=50, repeat_last_page=True),
            Profile(paging="page", result_cap=50),
        ),
        (
            Dialect(paging="offset", page_size_default=50, page_size_max=200),
            Profile(paging="offset", page_size=200, result_cap=200),
        ),
        (
            Dialect(paging="offset", page_size_default=50, repeat_last_page=True),
            Profile(paging="offset", page_size=50, result_cap=50),
        ),
    ],
    ids=["page", "page-repeats-last", "offset", "offset-repeats-last"],
)
def test_paging_strategies_harvest_everything_once(
    clock: VirtualClock, dialect: Dialect, profile: Profile
) -> None:
    """paging: page/page_size and limit/offset are followed to the end, repeated pages ignored."""
    city = FakeCity(clock=clock, dialect=dialect)
    city.generate_requests(1_200, start=NOW - timedelta(days=80), end=NOW)
    with city.serve() as url, civic311.Client(url, clock=clock, profile=profile) as client:
        found = [
            r.service_request_id
            for r in client.iter_requests(start_date=NOW - timedelta(days=80), end_date=NOW)
        ]
    assert sorted(found) == sorted(r.service_request_id for r in city.requests)
    assert len(found) == len(set(found))
    assert all(("page" in q) or ("offset" in q) for q in queries(city))


def test_token_404_pending(clock: VirtualClock) -> None:
    """token_404_pending: SF's 404-while-pending is waited out; turned off, the 404 is raised."""
    city = FakeCity(clock=clock, dialect=Dialect.sf(), token_delay=30.0)
    noise = civic311.NewRequest(service_code="004", address_id="7")
    with city.serve() as url, civic311.Client(url, clock=clock) as client:
        assert client.wait_for_id(client.submit(noise), timeout=120)
    profile = Profile(token_404_pending=False)
    with (
        city.serve() as url,
        civic311.Client(url, clock=clock, profile=profile) as client,
        pytest.raises(civic311.NotFoundError),
    ):
        client.wait_for_id(client.submit(noise), timeout=120)


def test_poll_intervals(clock: VirtualClock) -> None:
    """poll_interval and max_poll_interval set the waits between token look-ups."""
    city = FakeCity(clock=clock, token_delay=60.0)
    profile = Profile(poll_interval=5.0, max_poll_interval=12.0)
    with city.serve() as url, civic311.Client(url, clock=clock, profile=profile) as client:
        receipt = client.submit(civic311.NewRequest(service_code="004", address_id="7"))
        before = clock.monotonic()
        client.wait_for_id(receipt, timeout=300)
    looked = [c.at for c in city.calls if c.path.startswith("tokens")]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(looked)]
    assert gaps[:3] == [5.0, 10.0, 12.0]
    assert clock.monotonic() - before >= 60


def test_ignores_filters(clock: VirtualClock) -> None:
    """ignores_filters: a city that ignores filters is re-filtered, and harvests stay exact."""
    city = FakeCity(clock=clock, dialect=Dialect(ignore_filters=True, default_window_days=None))
    city.generate_requests(400, start=NOW - timedelta(days=300), end=NOW)
    profile = Profile(ignores_filters=True)
    start, end = NOW - timedelta(days=200), NOW - timedelta(days=120)
    with city.serve() as url, civic311.Client(url, clock=clock, profile=profile) as client:
        listed = client.list_requests(start_date=start, end_date=end, status="open")
        harvested = list(client.iter_requests(start_date=start, end_date=end))
    assert listed
    assert all(start <= (r.requested_datetime or start) <= end for r in listed)
    assert all(not r.is_closed for r in listed)
    expected = {r.service_request_id for r in city.requests if start <= r.requested_datetime <= end}
    assert {r.service_request_id for r in harvested} == expected


def test_max_window_days(clock: VirtualClock) -> None:
    """max_window_days: harvest windows never span more than the profile allows."""
    city = FakeCity(clock=clock)
    profile = Profile(max_window_days=30)
    with city.serve() as url, civic311.Client(url, clock=clock, profile=profile) as client:
        list(client.iter_requests(start_date=NOW - timedelta(days=100), end_date=NOW))
    spans = [
        datetime.fromisoformat(q["end_date"][0].replace("Z", "+00:00"))
        - datetime.fromisoformat(q["start_date"][0].replace("Z", "+00:00"))
        for q in queries(city)
    ]
    assert len(spans) == 4
    assert max(spans) <= timedelta(days=30)


def test_profile_by_name_and_unknown_name() -> None:
    """A bundled profile can be named; an unknown name lists the known ones."""
    client = civic311.Client("https://x.example/v2", profile="fixmystreet", jurisdiction_id="z")
    assert client.profile.name == "fixmystreet"
    client.close()
    with pytest.raises(civic311.InvalidRequestError, match="known"):
        civic311.Client("https://x.example/v2", profile="atlantis")
