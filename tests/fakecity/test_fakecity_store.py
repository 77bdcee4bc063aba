"""The store and generated history: determinism, scale, bursts, records and the catalogue."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from civic311.testing import (
    AttributeSpec,
    CityStore,
    FakeCity,
    ServiceSpec,
    StoredRequest,
    ValueSpec,
    VirtualClock,
    default_services,
)

from .conftest import START

DAY = timedelta(days=1)


def _fingerprint(records: list[StoredRequest]) -> list[tuple[object, ...]]:
    return [
        (
            r.service_request_id,
            r.service_code,
            r.requested_datetime,
            r.description,
            r.lat,
            r.long,
            r.address,
            r.zipcode,
            r.close_at,
        )
        for r in records
    ]


def test_same_seed_same_city(clock: VirtualClock) -> None:
    """Two cities with the same seed generate identical requests; another seed differs."""
    a = FakeCity(seed=4, clock=clock)
    b = FakeCity(seed=4, clock=clock)
    c = FakeCity(seed=5, clock=clock)
    for city in (a, b, c):
        city.generate_requests(500)
        city.generate_requests(50, burst=(START - DAY, 20, 600))
    assert _fingerprint(a.requests) == _fingerprint(b.requests)
    assert _fingerprint(a.requests) != _fingerprint(c.requests)


def test_same_seed_same_answers_over_http(clock: VirtualClock) -> None:
    """Same seed: byte-identical GET requests answers in both formats."""
    bodies = []
    for _ in range(2):
        city = FakeCity(seed=9, clock=clock)
        city.generate_requests(200)
        with httpx.Client(transport=city.transport(), base_url=city.base_url) as http:
            bodies.append((http.get("requests.json").content, http.get("requests.xml").content))
    assert bodies[0] == bodies[1]


def test_filing_does_not_shift_generation(clock: VirtualClock) -> None:
    """Tokens and generated requests come from separate seeded streams."""
    a = FakeCity(seed=1, clock=clock)
    b = FakeCity(seed=1, clock=clock)
    a.store.new_token()
    a.generate_requests(20)
    b.generate_requests(20)
    assert [r.description for r in a.requests] == [r.description for r in b.requests]


def test_generates_100k_requests(city: FakeCity) -> None:
    """100,000 requests generate (quickly) and are all stored, time-sorted, with unique ids."""
    made = city.generate_requests(100_000)
    assert len(made) == 100_000
    assert len(city.store) == 100_000
    records = city.requests
    assert all(a.requested_datetime <= b.requested_datetime for a, b in itertools.pairwise(records))
    assert len({r.service_request_id for r in records}) == 100_000
    with httpx.Client(transport=city.transport(), base_url=city.base_url) as http:
        assert len(http.get("requests.json").json()) == 1000


def test_generated_requests_span_the_window(city: FakeCity) -> None:
    """Generated requests fall in [start, end) with whole seconds."""
    start, end = START - 30 * DAY, START - 10 * DAY
    made = city.generate_requests(2000, start=start, end=end)
    assert all(start <= r.requested_datetime < end for r in made)
    assert all(r.requested_datetime.microsecond == 0 for r in made)
    assert {r.service_code for r in made} == {"001", "002", "003", "004", "005"}
    assert {r.origin for r in made} == {"generated"}


def test_burst_concentrates_requests(city: FakeCity) -> None:
    """burst=(at, 2500, 3600) puts 2,500 extra requests in that hour."""
    at = START - 5 * DAY
    city.generate_requests(1000, start=START - 30 * DAY, end=START, burst=(at, 2500, 3600))
    lo, hi = city.store.window(at, at + timedelta(seconds=3599))
    assert hi - lo >= 2500
    assert len(city.requests) == 3500


def test_generated_data_is_realistic(city: FakeCity) -> None:
    """Generated requests mix open and closed, keep zip leading zeros and fill required lists."""
    made = city.generate_requests(3000, start=START - 60 * DAY, end=START)
    now = START
    statuses = [r.status_at(now) for r in made]
    assert 0.5 < statuses.count("closed") / len(statuses) < 0.9
    assert all(r.zipcode and r.zipcode.startswith("0") for r in made)
    assert any("&" in (r.description or "") or "ü" in (r.description or "") for r in made)
    graffiti = [r for r in made if r.service_code == "003"]
    assert all(isinstance(r.attributes["SURFACE"], tuple) for r in graffiti)
    assert any(r.media_url for r in made)


def test_generation_arguments_are_checked(city: FakeCity) -> None:
    """Bad generation arguments raise ValueError."""
    with pytest.raises(ValueError, match="after"):
        city.generate_requests(1, start=START, end=START)
    naive = START.replace(tzinfo=None)
    with pytest.raises(ValueError, match="aware"):
        city.generate_requests(1, start=naive - DAY, end=naive)
    with pytest.raises(ValueError, match="burst"):
        city.generate_requests(1, burst=(START, 5, 0))
    with pytest.raises(ValueError, match="services"):
        FakeCity(services=[]).generate_requests(1)


def test_stored_request_status_is_lazy() -> None:
    """status_at, status_notes_at and updated_at follow the close and progress times."""
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    record = StoredRequest(
        "1",
        "001",
        "Pothole",
        t0,
        close_at=t0 + 2 * DAY,
        progress_at=t0 + DAY,
        close_notes="Fixed.",
    )
    assert (record.status_at(t0), record.status_notes_at(t0), record.updated_at(t0)) == (
        "open",
        None,
        t0,
    )
    assert record.status_notes_at(t0 + DAY) == "Assigned to a crew."
    assert record.updated_at(t0 + DAY) == t0 + DAY
    later = t0 + 3 * DAY
    assert (record.status_at(later), record.status_notes_at(later)) == ("closed", "Fixed.")
    assert record.updated_at(later) == t0 + 2 * DAY
    assert record.expected_datetime == t0 + 2 * DAY
    assert "001" in repr(record)


def test_accessors(city: FakeCity) -> None:
    """get, status_of, created and count_created read the store."""
    record = city.add_request("002", requested_datetime=START - DAY, closed=True)
    assert city.get(record.service_request_id) == record
    assert city.get("nope") is None
    assert city.status_of(record.service_request_id) == "closed"
    with pytest.raises(KeyError):
        city.status_of("nope")
    assert city.created == []
    assert city.count_created() == 0
    with pytest.raises(KeyError):
        city.add_request("999")
    with pytest.raises(KeyError):
        city.close_request("nope")


def test_duplicate_ids_are_refused(city: FakeCity) -> None:
    """The store never holds two requests with the same id."""
    city.add_request("001", service_request_id="A-1")
    with pytest.raises(ValueError, match="duplicate"):
        city.add_request("001", service_request_id="A-1")


def test_add_service_is_shared_and_replaces(clock: VirtualClock) -> None:
    """add_service reaches every city on the store; the same code replaces the old one."""
    store = CityStore()
    a, b = FakeCity(store=store, clock=clock), FakeCity(store=store, clock=clock)
    a.add_service(ServiceSpec("001", "Renamed pothole"))
    assert b.services[0].service_name == "Renamed pothole"
    b.remove_service("005")
    assert [s.service_code for s in a.services] == ["001", "002", "003", "004"]


def test_custom_catalogue_and_validation() -> None:
    """A city can start from its own services; specs validate their datatypes and values."""
    city = FakeCity(services=[ServiceSpec("A", "Only one", type="batch")])
    assert [s.service_code for s in city.services] == ["A"]
    assert len(default_services()) == 5
    with pytest.raises(ValueError, match="needs values"):
        AttributeSpec("X", "singlevaluelist", "Pick")
    with pytest.raises(ValueError, match="datatype"):
        AttributeSpec("X", "colour", "Pick")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ValueSpec"):
        AttributeSpec("X", "singlevaluelist", "Pick", values=("a",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="type"):
        ServiceSpec("X", "Bad", type="sometimes")  # type: ignore[arg-type]
    spec = AttributeSpec("X", "multivaluelist", "Pick", values=[ValueSpec("1", "One")])
    assert spec.keys == frozenset({"1"})
    assert ServiceSpec("X", "x", attributes=[spec]).attribute("X") == spec


def test_city_arguments_are_checked() -> None:
    """FakeCity refuses a bad sort or cap."""
    with pytest.raises(ValueError, match="sort"):
        FakeCity(sort="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="result_cap"):
        FakeCity(result_cap=0)
    assert "FakeCity(" in repr(FakeCity())
