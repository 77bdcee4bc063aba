"""GET requests and GET requests/{id}: filters, the 90-day window, caps, order, lazy closing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from civic311.testing import FakeCity, VirtualClock

from .conftest import START
from .fakecity_helpers import body, spec_errors, text, xml

DAY = timedelta(days=1)


def _ids(response: httpx.Response) -> list[str]:
    return [item["service_request_id"] for item in body(response)]


def test_list_json_shape(http: httpx.Client, city: FakeCity) -> None:
    """GET requests.json is an array of §3.4 objects in the spec's field order."""
    city.add_request("001", requested_datetime=START - DAY, description="x", lat=1.0, long=2.0)
    [item] = body(http.get("requests.json"))
    assert list(item) == [
        "service_request_id",
        "status",
        "status_notes",
        "service_name",
        "service_code",
        "description",
        "agency_responsible",
        "service_notice",
        "requested_datetime",
        "updated_datetime",
        "expected_datetime",
        "address",
        "address_id",
        "zipcode",
        "lat",
        "long",
        "media_url",
    ]
    assert item["requested_datetime"] == "2025-12-31T00:00:00Z"
    assert item["address"] is None


def test_list_xml_shape(http: httpx.Client, city: FakeCity) -> None:
    """GET requests.xml is <service_requests> with <request> children, empty ones as <x/>."""
    city.add_request("002", requested_datetime=START - DAY, zipcode="06510")
    root = xml(http.get("requests.xml"))
    assert root.tag == "service_requests"
    [request] = root.findall("request")
    assert text(request, "service_code") == "002"
    assert text(request, "zipcode") == "06510"
    assert request.find("media_url") is not None
    assert text(request, "media_url") is None


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_empty_list(http: httpx.Client, fmt: str) -> None:
    """No match gives [] or an empty <service_requests/> root."""
    response = http.get(f"requests.{fmt}")
    if fmt == "json":
        assert body(response) == []
    else:
        assert list(xml(response)) == []


def test_default_window_is_the_last_90_days(http: httpx.Client, city: FakeCity) -> None:
    """With no dates, only requests of the last 90 days on the clock are returned (§2.5)."""
    inside = city.add_request("001", requested_datetime=START - 90 * DAY)
    city.add_request("001", requested_datetime=START - 90 * DAY - timedelta(seconds=1))
    assert _ids(http.get("requests.json")) == [inside.service_request_id]


def test_start_and_end_are_inclusive(http: httpx.Client, city: FakeCity) -> None:
    """start_date <= requested_datetime <= end_date, both ends included."""
    times = [START - timedelta(hours=h) for h in (1, 2, 3, 4)]
    records = [city.add_request("001", requested_datetime=t) for t in times]
    response = http.get(
        "requests.json",
        params={"start_date": "2025-12-31T21:00:00Z", "end_date": "2025-12-31T22:00:00Z"},
    )
    assert _ids(response) == [records[1].service_request_id, records[2].service_request_id]


@pytest.mark.parametrize(
    "start_date",
    [
        "2025-12-31T21:00:00Z",
        "2025-12-31T23:00:00+02:00",
        "2025-12-31T16:00:00-05:00",
        "2025-12-31T21:00:00",
    ],
)
def test_date_zones(http: httpx.Client, city: FakeCity, start_date: str) -> None:
    """Z, ±HH:MM and a missing zone (read as UTC) name the same instant."""
    early = city.add_request("001", requested_datetime=START - timedelta(hours=4))
    late = city.add_request("001", requested_datetime=START - timedelta(hours=3))
    assert _ids(http.get("requests.json", params={"start_date": start_date})) == [
        late.service_request_id
    ]
    assert early.service_request_id not in _ids(
        http.get("requests.json", params={"start_date": start_date})
    )


def test_only_start_date_opens_a_90_day_window(http: httpx.Client, city: FakeCity) -> None:
    """With only start_date the window is start..start+90 days."""
    old = START - 200 * DAY
    first = city.add_request("001", requested_datetime=old + 90 * DAY)
    city.add_request("001", requested_datetime=old + 91 * DAY)
    response = http.get("requests.json", params={"start_date": "2025-06-15T00:00:00Z"})
    assert _ids(response) == [first.service_request_id]


def test_only_end_date_looks_90_days_back(http: httpx.Client, city: FakeCity) -> None:
    """With only end_date the window is end-90 days..end."""
    end = START - 100 * DAY
    inside = city.add_request("001", requested_datetime=end - 90 * DAY)
    city.add_request("001", requested_datetime=end - 91 * DAY)
    city.add_request("001", requested_datetime=end + timedelta(seconds=1))
    response = http.get("requests.json", params={"end_date": "2025-09-23T00:00:00Z"})
    assert _ids(response) == [inside.service_request_id]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-04-02T00:00:01Z"}, "90 days"),
        ({"start_date": "2025-02-01T00:00:00Z", "end_date": "2025-01-01T00:00:00Z"}, "before"),
        ({"start_date": "yesterday"}, "start_date yesterday is not a w3 datetime"),
        ({"end_date": "2025-01-01"}, "end_date"),
        ({"start_date": "2025-01-01T00:00:00.123Z"}, "start_date"),
        ({"start_date": "2025-01-01T00:00:00+0100"}, "start_date"),
        ({"start_date": "2025-13-01T00:00:00Z"}, "start_date"),
        ({"status": "open,pending"}, "pending"),
    ],
)
@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_bad_queries_are_400(
    http: httpx.Client, params: dict[str, str], message: str, fmt: str
) -> None:
    """Spans over 90 days, reversed ranges, bad dates and unknown statuses answer 400."""
    response = http.get(f"requests.{fmt}", params=params)
    assert response.status_code == 400
    [(code, description)] = spec_errors(response, fmt)
    assert code == 400
    assert message in description


def test_exactly_90_days_is_allowed(http: httpx.Client) -> None:
    """A span of exactly 90 days is within the limit."""
    params = {"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-04-01T00:00:00Z"}
    assert http.get("requests.json", params=params).status_code == 200


def test_service_code_and_status_filters(
    http: httpx.Client, city: FakeCity, clock: VirtualClock
) -> None:
    """service_code and status take comma lists (or repeats) and combine with AND."""
    a = city.add_request("001", requested_datetime=START - DAY, close_after=3600)
    b = city.add_request("002", requested_datetime=START - DAY)
    c = city.add_request("003", requested_datetime=START - DAY)
    codes = {"service_code": "001,002"}
    assert sorted(_ids(http.get("requests.json", params=codes))) == sorted(
        [a.service_request_id, b.service_request_id]
    )
    repeated = http.get("requests.json?service_code=002&service_code=003")
    assert sorted(_ids(repeated)) == sorted([b.service_request_id, c.service_request_id])
    closed = http.get("requests.json", params={"status": "closed"})
    assert _ids(closed) == [a.service_request_id]
    both = http.get("requests.json", params={"status": "open,closed", "service_code": "001"})
    assert _ids(both) == [a.service_request_id]
    assert _ids(http.get("requests.json", params={"service_code": "999"})) == []


def test_service_request_id_overrides_other_arguments(http: httpx.Client, city: FakeCity) -> None:
    """service_request_id lists ids in the order asked and ignores dates, status and codes."""
    old = city.add_request("001", requested_datetime=START - 400 * DAY)
    new = city.add_request("002", requested_datetime=START - DAY)
    params = {
        "service_request_id": f"{new.service_request_id},999999,{old.service_request_id}",
        "status": "closed",
        "service_code": "005",
        "start_date": "2025-12-01T00:00:00Z",
    }
    assert _ids(http.get("requests.json", params=params)) == [
        new.service_request_id,
        old.service_request_id,
    ]


def test_result_cap_and_newest_first(http: httpx.Client, city: FakeCity) -> None:
    """At most result_cap requests are returned, newest first by default."""
    city.result_cap = 5
    records = [city.add_request("001", requested_datetime=START - i * DAY) for i in range(1, 9)]
    assert _ids(http.get("requests.json")) == [r.service_request_id for r in records[:5]]


def test_ascending_sort(http: httpx.Client, city: FakeCity) -> None:
    """With sort='asc' the oldest requests come first (and the cap keeps the oldest)."""
    city.sort = "asc"
    city.result_cap = 3
    records = [city.add_request("001", requested_datetime=START - i * DAY) for i in range(1, 6)]
    assert _ids(http.get("requests.json")) == [r.service_request_id for r in records[::-1][:3]]


def test_default_cap_is_1000(http: httpx.Client, city: FakeCity) -> None:
    """The spec's default limit: 1000 requests even when more match (§2.5)."""
    city.generate_requests(1500, start=START - 10 * DAY, end=START)
    assert len(body(http.get("requests.json"))) == 1000


def test_unknown_parameters_are_ignored(http: httpx.Client, city: FakeCity) -> None:
    """Parameters the spec does not define (extensions, callback…) change nothing."""
    city.add_request("001", requested_datetime=START - DAY)
    plain = http.get("requests.json").json()
    extra = http.get("requests.json", params={"extensions": "true", "page_size": "1", "q": "x"})
    assert extra.json() == plain


def test_requests_close_on_the_clock(
    http: httpx.Client, city: FakeCity, clock: VirtualClock
) -> None:
    """A new request shows progress notes halfway, then closed with notes and updated time."""
    [item] = body(
        http.post("requests.json", data={"service_code": "001", "address_string": "1 Elm St"})
    )
    request_id = item["service_request_id"]
    clock.advance(86400)  # pothole closes after two days; halfway it is assigned
    [one] = body(http.get(f"requests/{request_id}.json"))
    assert (one["status"], one["status_notes"]) == ("open", "Assigned to a crew.")
    assert one["updated_datetime"] == "2026-01-02T00:00:00Z"
    clock.advance(86400)
    [one] = body(http.get(f"requests/{request_id}.json"))
    assert (one["status"], one["status_notes"]) == ("closed", "Request resolved.")
    assert one["updated_datetime"] == "2026-01-03T00:00:00Z"
    assert city.status_of(request_id) == "closed"


def test_close_request_closes_now(http: httpx.Client, city: FakeCity, clock: VirtualClock) -> None:
    """close_request() closes a request at the current clock time with the notes given."""
    record = city.add_request("001", requested_datetime=START - DAY)
    clock.advance(60)
    city.close_request(record.service_request_id, notes="Filled.")
    [one] = body(http.get(f"requests/{record.service_request_id}.json"))
    assert (one["status"], one["status_notes"]) == ("closed", "Filled.")
    assert one["updated_datetime"] == "2026-01-01T00:01:00Z"


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_one_request_is_an_array_of_one(http: httpx.Client, city: FakeCity, fmt: str) -> None:
    """GET requests/{id} uses the list wrapper with exactly one item (§2.6)."""
    record = city.add_request("003", requested_datetime=START - DAY)
    response = http.get(f"requests/{record.service_request_id}.{fmt}")
    if fmt == "json":
        [item] = body(response)
        assert item["service_code"] == "003"
    else:
        assert len(xml(response).findall("request")) == 1


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_unknown_request_id_is_404(http: httpx.Client, fmt: str) -> None:
    """A request id the city does not know answers 404."""
    response = http.get(f"requests/123.{fmt}")
    assert response.status_code == 404
    assert "123" in spec_errors(response, fmt)[0][1]


def test_generated_history_is_mostly_closed_in_the_past(http: httpx.Client, city: FakeCity) -> None:
    """Generated requests close on their own schedule: old ones mostly closed, some open."""
    city.generate_requests(600, start=START - 80 * DAY, end=START)
    items = body(http.get("requests.json"))
    statuses = {item["status"] for item in items}
    assert statuses == {"open", "closed"}
    for item in items:
        if item["status"] == "closed":
            assert item["updated_datetime"] >= item["requested_datetime"]
            assert item["status_notes"]


def test_window_query_uses_bisect_bounds(city: FakeCity) -> None:
    """The store finds a window by bisection: bounds are indexes into the time-sorted list."""
    city.generate_requests(1000, start=START - 10 * DAY, end=START)
    start, end = START - 5 * DAY, START - 4 * DAY
    lo, hi = city.store.window(start, end)
    records = city.requests
    inside = [r for r in records if start <= r.requested_datetime <= end]
    assert records[lo:hi] == inside
    assert datetime(2025, 1, 1, tzinfo=timezone.utc) < records[0].requested_datetime


def test_raw_plus_in_query_is_a_space(http: httpx.Client, city: FakeCity) -> None:
    """An unencoded '+' offset reads as a space (400); %2B works; bad UTF-8 is a 400 too."""
    assert http.get("requests.json?start_date=2025-12-31T23:00:00+02:00").status_code == 400
    assert http.get("requests.json?start_date=2025-12-31T23:00:00%2B02:00").status_code == 200
    assert http.get("requests.json?status=%FF").status_code == 400
