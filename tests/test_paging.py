"""Complete answers from servers that page (issue 11 points 1-3): header paging from any answer,
id look-ups that respect the page size, and re-filtering by id. Over loopback HTTP, both
formats, both clients."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx
import pytest

import civic311
from civic311._protocol import list_requests_call, next_link, next_params, page_of
from civic311.testing import Dialect, FakeCity, VirtualClock

UTC = timezone.utc
NOW = datetime(2026, 12, 5, tzinfo=UTC)
T = TypeVar("T")


@pytest.fixture(params=["json", "xml"])
def fmt(request: pytest.FixtureRequest) -> str:
    """Each test with this fixture runs in both formats."""
    return str(request.param)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Each test with this fixture runs with Client and with AsyncClient."""
    return str(request.param)


def run(
    url: str,
    kind: str,
    fmt: str,
    job: Callable[[Any], Any],
    **options: Any,
) -> Any:
    """Run *job* (a function of a client, returning a value or an awaitable) on a sync or an
    async client of *url*."""
    if kind == "sync":
        with civic311.Client(url, format=fmt, **options) as client:  # type: ignore[arg-type]
            return job(client)

    async def main() -> Any:
        async with civic311.AsyncClient(url, format=fmt, **options) as client:  # type: ignore[arg-type]
            return await job(client)

    return asyncio.run(main())


def sixaika_city(count: int = 260, dialect: Dialect | None = None) -> FakeCity:
    """A FakeCity speaking 6aika's dialect: pages of 100 (max 500) announced in X- headers."""
    city = FakeCity(seed=11, clock=VirtualClock(start=NOW), dialect=dialect or Dialect.sixaika())
    city.generate_requests(count, start=NOW - timedelta(days=30), end=NOW)
    return city


def _list(client: Any) -> Any:
    return client.list_requests()


def _ids_of(city: FakeCity) -> list[str]:
    return [r.service_request_id for r in city.requests]


# --- the done-when of issue 11: 260 requests, the default profile ----------------------------


def test_list_requests_follows_6aika_pages_with_the_default_profile(kind: str, fmt: str) -> None:
    """list_requests follows X-Next-Page-URL: all 260 of a 6aika-like city, no warning."""
    city = sixaika_city()
    with city.serve() as url, warnings.catch_warnings():
        warnings.simplefilter("error")
        found = run(url, kind, fmt, _list, clock=city.clock)
    assert sorted(r.service_request_id for r in found) == sorted(_ids_of(city))
    pages = [c for c in city.calls if c.path == "requests"]
    assert len(pages) == 3  # 100 + 100 + 60


def test_get_requests_of_250_ids_returns_all_250(kind: str, fmt: str) -> None:
    """get_requests with 250 ids against a 6aika-like city returns every one, in order."""
    city = sixaika_city()
    wanted = _ids_of(city)[:250]

    def job(client: Any) -> Any:
        return client.get_requests(wanted)

    with city.serve() as url:
        found = run(url, kind, fmt, job, clock=city.clock)
    assert [r.service_request_id for r in found] == wanted


def test_iter_requests_of_a_6aika_city_is_complete(kind: str, fmt: str) -> None:
    """iter_requests over a 6aika-like city yields all 260, each once."""
    city = sixaika_city()

    def job(client: Any) -> Any:
        flow = client.iter_requests(start_date=NOW - timedelta(days=60), end_date=NOW)
        if kind == "sync":
            return [r.service_request_id for r in flow]

        async def collect() -> list[str | None]:
            return [r.service_request_id async for r in flow]

        return collect()

    with city.serve() as url:
        found = run(url, kind, fmt, job, clock=city.clock)
    assert sorted(found) == sorted(_ids_of(city))


def test_the_sixaika_profile_asks_for_the_largest_page(kind: str) -> None:
    """With profile="sixaika" one page of 500 holds the 260: one call, page_size=500 asked."""
    city = sixaika_city()
    with city.serve() as url:
        found = run(url, kind, "json", _list, clock=city.clock, profile="sixaika")
    assert len(found) == 260
    (call,) = [c for c in city.calls if c.path == "requests"]
    assert parse_qs(call.query)["page_size"] == ["500"]


def test_250_ids_with_the_sixaika_profile_fit_one_page(kind: str) -> None:
    """With profile="sixaika" 250 ids are asked in chunks of at most 500 (its page size)."""
    city = sixaika_city()
    wanted = _ids_of(city)[:250]

    def job(client: Any) -> Any:
        return client.get_requests(wanted)

    with city.serve() as url:
        found = run(url, kind, "xml", job, clock=city.clock, profile="sixaika")
    assert [r.service_request_id for r in found] == wanted


def test_rfc_8288_link_paging_is_followed(kind: str, fmt: str) -> None:
    """A server paging with Link: <…>; rel="next" and X-Total-Count is followed to the end."""
    dialect = Dialect.sixaika().replace(paging_headers="link")
    city = sixaika_city(dialect=dialect)
    with city.serve() as url, warnings.catch_warnings():
        warnings.simplefilter("error")
        found = run(url, kind, fmt, _list, clock=city.clock)
    assert len({r.service_request_id for r in found}) == 260


def test_offset_paging_with_headers_is_followed(kind: str) -> None:
    """limit/offset paging named by Link headers is followed too, any profile."""
    dialect = Dialect.markaspot().replace(paging_headers="link")
    city = sixaika_city(120, dialect=dialect)
    with city.serve() as url:
        found = run(url, kind, "json", _list, clock=city.clock)
    assert len({r.service_request_id for r in found}) == 120


def _rows(fmt: str, ids: range) -> bytes:
    if fmt == "json":
        return ("[" + ",".join(f'{{"service_request_id":"{i}"}}' for i in ids) + "]").encode()
    items = "".join(f"<request><service_request_id>{i}</service_request_id></request>" for i in ids)
    return f"<requests>{items}</requests>".encode()


def test_a_result_count_above_what_came_back_warns(kind: str, fmt: str) -> None:
    """X-Result-Count above the rows served, and no next page: a Civic311Warning says so."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = _rows(fmt, range(100))
        return httpx.Response(200, content=body, headers={"X-Result-Count": "260"})

    with pytest.warns(civic311.Civic311Warning, match="counts 260 and 100 came back"):
        found = run(
            "https://city.example/v2", kind, fmt, _list, transport=httpx.MockTransport(handler)
        )
    assert len(found) == 100


def test_a_page_budget_stops_a_runaway_server_with_a_warning(kind: str) -> None:
    """A server naming next pages for ever is followed for 100 pages, then a warning."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        number = int(request.url.params.get("page", "1"))
        return httpx.Response(
            200,
            json=[{"service_request_id": str(number), "status": "open"}],
            headers={"X-Next-Page-URL": f"https://city.example/v2/requests.json?page={number + 1}"},
        )

    transport_cls: Any = httpx.MockTransport
    with pytest.warns(civic311.Civic311Warning, match="more pages than the 100 followed"):
        found = run(
            "https://city.example/v2",
            kind,
            "json",
            _list,
            transport=transport_cls(handler),
        )
    assert len(found) == 100
    assert len(asked) == 100


def test_a_next_page_on_another_host_is_never_followed(kind: str) -> None:
    """A next page on another host is not asked (the api_key stays home); a warning says so."""
    seen_hosts: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        seen_hosts.add(request.url.host)
        return httpx.Response(
            200,
            json=[{"service_request_id": "1", "status": "open"}],
            headers={"X-Next-Page-URL": "https://evil.example/v2/requests.json?page=2"},
        )

    with pytest.warns(civic311.Civic311Warning, match="elsewhere"):
        found = run(
            "https://city.example/v2",
            kind,
            "json",
            _list,
            transport=httpx.MockTransport(handler),
            api_key="secret-key-123",
        )
    assert len(found) == 1
    assert seen_hosts == {"city.example"}


# --- the pure pieces -------------------------------------------------------------------------


def _response(headers: dict[str, str], url: str = "https://city.example/v2/requests.json") -> Any:
    return httpx.Response(200, headers=headers, request=httpx.Request("GET", url))


def test_next_link_reads_x_next_page_url_and_rfc_8288() -> None:
    """next_link reads X-Next-Page-URL, and a Link whose rel lists "next" among others."""
    assert next_link(httpx.Headers({"X-Next-Page-URL": " /a?page=2 "})) == "/a?page=2"
    link = '<https://x/a?page=1>; rel="prev", <https://x/a?page=3>; rel="next last"'
    assert next_link(httpx.Headers({"Link": link})) == "https://x/a?page=3"
    assert next_link(httpx.Headers({"Link": "<https://x/a?page=3>; rel=next"})) == (
        "https://x/a?page=3"
    )
    assert next_link(httpx.Headers({"Link": '<https://x/a>; rel="prev"'})) is None


def test_next_params_take_the_query_of_this_endpoint_only() -> None:
    """next_params keeps a same-endpoint next page's query, minus credentials; refuses others."""
    here = httpx.URL("https://city.example/v2/requests.json?page=1")
    assert next_params(here, "/v2/requests.json?page=2&api_key=k&jurisdiction_id=j") == (
        ("page", "2"),
    )
    # A TLS proxy in front of Django: http:// links for an https:// endpoint.
    assert next_params(here, "http://city.example/v2/requests.xml?page=2") == (("page", "2"),)
    assert next_params(here, "https://evil.example/v2/requests.json?page=2") is None
    assert next_params(here, "https://city.example/v2/services.json?page=2") is None
    assert next_params(here, "https://city.example:8443/v2/requests.json?page=2") is None


def test_page_of_reads_counts_and_foreign_links_redacted() -> None:
    """page_of reads X-Result-Count / X-Total-Count and redacts a foreign link's api_key."""
    page = page_of([1, 2], _response({"X-Total-Count": "7"}))
    assert (page.total, page.received, page.next_params) == (7, 2, None)
    page = page_of([], _response({"X-Next-Page-URL": "https://evil.example/r?api_key=s3cret"}))
    assert page.foreign_next is not None
    assert "s3cret" not in page.foreign_next


# --- 11.3: ids re-filtered -------------------------------------------------------------------


def test_list_requests_by_id_is_refiltered_when_the_server_ignores_ids(kind: str, fmt: str) -> None:
    """list_requests(service_request_id=[…]) keeps only the ids asked (open311-adapter)."""
    city = FakeCity(seed=3, clock=VirtualClock(start=NOW), dialect=Dialect(ignore_ids=True))
    city.generate_requests(40, start=NOW - timedelta(days=10), end=NOW)
    wanted = _ids_of(city)[:2]

    def job(client: Any) -> Any:
        return client.list_requests(service_request_id=wanted)

    with city.serve() as url:
        found = run(url, kind, fmt, job, clock=city.clock)
    assert sorted(r.service_request_id for r in found) == sorted(wanted)


def test_get_requests_drops_rows_not_asked_for(kind: str) -> None:
    """get_requests against a server that ignores ids returns just the ids asked, in order."""
    city = FakeCity(seed=3, clock=VirtualClock(start=NOW), dialect=Dialect(ignore_ids=True))
    city.generate_requests(40, start=NOW - timedelta(days=10), end=NOW)
    wanted = [*_ids_of(city)[5:8], "999999"]

    def job(client: Any) -> Any:
        return client.get_requests(wanted)

    with city.serve() as url:
        found = run(url, kind, "json", job, clock=city.clock)
    assert [r.service_request_id for r in found] == wanted[:3]


def test_ids_a_capped_answer_left_out_are_asked_again(kind: str) -> None:
    """Ids missing from an answer at the cap are asked again, down to one at a time: an id is
    missing only when the city lacks it."""
    city = FakeCity(seed=5, clock=VirtualClock(start=NOW), result_cap=10)
    city.generate_requests(30, start=NOW - timedelta(days=10), end=NOW)
    wanted = [*_ids_of(city), "999999"]

    def job(client: Any) -> Any:
        return client.get_requests(wanted)

    with city.serve() as url:
        found = run(url, kind, "xml", job, clock=city.clock, profile=civic311.Profile())
    assert [r.service_request_id for r in found] == wanted[:30]


def test_id_chunks_hold_no_more_than_one_page() -> None:
    """Id chunks hold at most the profile's page size (or cap), whatever the URL allows."""
    client = civic311.Client("https://city.example/v2", profile="sixaika")
    _, chunks = client._id_chunks([str(i) for i in range(1200)])
    assert [len(c) for c in chunks][:2] == [len(chunks[0]), len(chunks[1])]
    assert max(len(c) for c in chunks) <= 500
    assert sum(len(c) for c in chunks) == 1200
    call = list_requests_call(service_request_id=chunks[0])
    assert call.paged


# --- replayed captures from the real servers (tests/fixtures/real-servers) -------------------

_SIXAIKA_PAGE = {"json": "A_requests_page2_size2.json.txt", "xml": "A_requests_size2.xml.txt"}


def _sixaika_router(fmt: str) -> Any:
    from real_server_replay import Captured, load

    def route(method: str, path: str, query: list[tuple[str, str]]) -> Captured | None:
        if path != f"/api/georeport/v2/requests.{fmt}":
            return None
        page = dict(query).get("page")
        if page is None:
            return load(_SIXAIKA_PAGE[fmt])
        # Past the captured page: an empty last page, as DRF would not send (it would send
        # more rows); the count header still says 254.
        body = b"[]" if fmt == "json" else b"<requests></requests>"
        return Captured(200, (("Content-Type", "text/plain"), ("X-Result-Count", "254")), body)

    return route


def test_replayed_6aika_pages_are_followed_and_the_count_warns(kind: str, fmt: str) -> None:
    """6aika's captured X-Next-Page-URL is followed on the same endpoint, and its
    X-Result-Count of 254 above the rows fetched warns."""
    from real_server_replay import replay

    with (
        replay(_sixaika_router(fmt)) as (url, seen),
        pytest.warns(civic311.Civic311Warning, match="counts 254"),
    ):
        found = run(url + "/api/georeport/v2", kind, fmt, _list)
    assert len(found) == 2
    assert [dict(s.query).get("page") for s in seen] == [None, "3" if fmt == "json" else "2"]
    assert all(dict(s.query).get("page_size") in (None, "2") for s in seen)


def test_replayed_6aika_services_with_paging_headers_are_one_page(kind: str, fmt: str) -> None:
    """6aika's services answer carries X-Page-* headers with a count of 3: one call, no
    warning."""
    from real_server_replay import Captured, load, replay

    def route(method: str, path: str, query: list[tuple[str, str]]) -> Captured | None:
        return load(f"A_services.{fmt}.txt") if path.endswith(f"services.{fmt}") else None

    with replay(route) as (url, seen), warnings.catch_warnings():
        warnings.simplefilter("error")
        services = run(url + "/api/georeport/v2", kind, fmt, lambda c: c.list_services())
    assert [s.service_code for s in services] == ["001", "002", "003"]
    assert len(seen) == 1


def test_replayed_open311_adapter_ignoring_ids_is_refiltered(kind: str) -> None:
    """open311-adapter answers every request to service_request_id=0,2 (captured): list_requests
    and get_requests keep just 0 and 2."""
    from real_server_replay import Captured, load, replay

    def route(method: str, path: str, query: list[tuple[str, str]]) -> Captured | None:
        return load("B_requests_filter_ids_ignored.json.txt") if path == "/requests.json" else None

    def job(client: Any) -> Any:
        listed = client.list_requests(service_request_id=["0", "2"])
        got = client.get_requests(["2", "0"])
        if kind == "sync":
            return listed, got

        async def both() -> Any:
            return await listed, await got

        return both()

    with replay(route) as (url, _seen):
        listed, got = run(url, kind, "json", job)
    assert sorted(r.service_request_id for r in listed) == ["0", "2"]
    assert [r.service_request_id for r in got] == ["2", "0"]


# --- 11.12: (0, 0) echoed back is an unknown place -------------------------------------------


_ADAPTER_LIST = {"json": "B_requests_filter_ids_ignored.json.txt", "xml": "B_request_0.xml.txt"}
_ADAPTER_DESCRIPTION = {"json": "with attrs json", "xml": "interop pothole"}


def test_find_submitted_takes_lat_long_0_as_unknown(kind: str, fmt: str) -> None:
    """open311-adapter echoes lat/long 0 (captured): find_submitted still finds the request by
    its description, and reconciliation's matches() neither confirms nor refutes on (0, 0)."""
    from real_server_replay import Captured, load, replay

    def route(method: str, path: str, query: list[tuple[str, str]]) -> Captured | None:
        return load(_ADAPTER_LIST[fmt]) if path == f"/requests.{fmt}" else None

    request = civic311.NewRequest(
        service_code="POT", lat=51.5, long=-0.1, description=_ADAPTER_DESCRIPTION[fmt]
    )
    sent_at = datetime(2026, 12, 5, 7, 32, tzinfo=UTC)

    def job(client: Any) -> Any:
        return client.find_submitted(request, sent_at=sent_at)

    with replay(route) as (url, _seen):
        clock = VirtualClock(start=sent_at + timedelta(minutes=1))
        found = run(url, kind, fmt, job, reconcile_wait=0, clock=clock)
    assert found is not None
    assert found.lat == 0
    assert found.description == _ADAPTER_DESCRIPTION[fmt]


def test_lat_long_0_alone_does_not_confirm_a_match() -> None:
    """A candidate whose only echoed field is (0, 0) is not taken for the request."""
    from civic311._client.execution import matches

    request = civic311.NewRequest(service_code="POT", lat=51.5, long=-0.1)
    candidate = civic311.ServiceRequest(service_request_id="1", service_code="POT", lat=0, long=0)
    assert not matches(request, candidate, NOW)
    moved = civic311.ServiceRequest(service_request_id="1", service_code="POT", lat=1, long=1)
    assert not matches(request, moved, NOW)
