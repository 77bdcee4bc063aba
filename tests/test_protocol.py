"""Sans-IO protocol: request building, response reading and flows, with no transport at all."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

import httpx
import hypothesis
import pytest
from hypothesis import strategies as st

import civic311
from civic311 import errors
from civic311._protocol import (
    Call,
    Settings,
    Sleep,
    build_request,
    chunk_ids,
    get_request_call,
    get_token_call,
    list_requests_call,
    list_services_call,
    normalize_base_url,
    read_response,
    redact_url,
    service_definition_call,
    submit_call,
    wait_for_id_flow,
)
from civic311.profiles import Profile

from helpers import fixture_bytes

UTC = timezone.utc
NOW = datetime(2026, 1, 1, tzinfo=UTC)
BASE = "https://city.example/open311/v2"


def reply(
    call: Call[object],
    body: bytes,
    status: int = 200,
    fmt: str = "json",
    headers: dict[str, str] | None = None,
) -> object:
    request = build_request(call, BASE, fmt, Settings())  # type: ignore[arg-type]
    response = httpx.Response(status, content=body, headers=headers, request=request)
    return read_response(call, response, body, fmt, NOW)[0]  # type: ignore[arg-type]


@pytest.mark.parametrize("url", [BASE, BASE + "/", "  " + BASE + "/ "])
def test_base_url_with_or_without_trailing_slash(url: str) -> None:
    """A base URL works with or without a trailing slash."""
    request = build_request(list_services_call(), normalize_base_url(url), "json", Settings())
    assert str(request.url) == BASE + "/services.json"


@pytest.mark.parametrize("url", ["ftp://x/v2", "city.example/v2", "", 5, "https://x/v2?a=1"])
def test_bad_base_urls_are_refused(url: object) -> None:
    """Anything but an http(s) URL with a host raises InvalidRequestError."""
    with pytest.raises(civic311.InvalidRequestError, match="endpoint"):
        normalize_base_url(url)


@pytest.mark.parametrize("jurisdiction", [None, ""])
def test_jurisdiction_never_sent_when_unset(jurisdiction: str | None) -> None:
    """No jurisdiction_id parameter at all when it is None or empty."""
    request = build_request(list_services_call(), BASE, "json", Settings(jurisdiction))
    assert "jurisdiction_id" not in str(request.url)


def test_get_carries_jurisdiction_and_user_agent_not_the_key() -> None:
    """GETs carry jurisdiction_id and our User-Agent; the api_key stays off reads."""
    settings = Settings(jurisdiction_id="city.example", api_key="SECRET")
    request = build_request(list_services_call(), BASE, "xml", settings)
    assert request.url.params["jurisdiction_id"] == "city.example"
    assert "SECRET" not in str(request.url)
    assert request.headers["User-Agent"] == f"civic311/{civic311.__version__}"
    assert request.headers["Accept"].startswith("text/xml")


def test_post_carries_key_and_jurisdiction_in_the_form() -> None:
    """POST sends api_key and jurisdiction_id as form fields, UTF-8 declared."""
    call = submit_call(civic311.NewRequest(service_code="001", address_id="7"))
    request = build_request(call, BASE, "json", Settings("city.example", "SECRET"))
    assert request.method == "POST"
    assert str(request.url) == BASE + "/requests.json"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    form = dict(parse_qsl(request.content.decode()))
    assert form == {
        "service_code": "001",
        "address_id": "7",
        "jurisdiction_id": "city.example",
        "api_key": "SECRET",
    }


def test_api_key_on_reads_when_settings_say_so() -> None:
    """A profile can send the api_key on GETs too (as a query parameter)."""
    settings = Settings(api_key="SECRET", profile=Profile(api_key_on_reads=True))
    request = build_request(list_services_call(), BASE, "json", settings)
    assert request.url.params["api_key"] == "SECRET"
    assert "SECRET" not in redact_url(request.url)


def test_path_segments_are_quoted() -> None:
    """Service codes with slashes and spaces are percent-encoded into one path segment."""
    call = service_definition_call("ServiceRequest/Animals/Animal Nuisance/NA")
    request = build_request(call, BASE, "json", Settings())
    assert request.url.raw_path.endswith(
        b"/services/ServiceRequest%2FAnimals%2FAnimal%20Nuisance%2FNA.json"
    )


@pytest.mark.parametrize("bad", ["", "  ", None, 5])
def test_empty_or_wrong_path_values_are_refused(bad: object) -> None:
    """Empty or non-string codes, ids and tokens raise InvalidRequestError before any I/O."""
    for factory, field in (
        (service_definition_call, "service_code"),
        (get_request_call, "service_request_id"),
        (get_token_call, "token"),
    ):
        with pytest.raises(civic311.InvalidRequestError, match=field):
            factory(bad)  # type: ignore[arg-type]


def test_list_requests_params() -> None:
    """Filters become comma lists without spaces and UTC Z datetimes."""
    call = list_requests_call(
        service_code=["001", " 002 "],
        status=["open", "closed"],
        start_date=datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))),
        end_date=datetime(2024, 1, 31, tzinfo=UTC),
    )
    assert dict(call.params) == {
        "service_code": "001,002",
        "status": "open,closed",
        "start_date": "2024-01-01T00:00:00Z",
        "end_date": "2024-01-31T00:00:00Z",
    }


def test_list_requests_refuses_naive_datetimes() -> None:
    """A naive start_date raises InvalidRequestError naming start_date."""
    with pytest.raises(civic311.InvalidRequestError, match=r"start_date.*naive"):
        list_requests_call(start_date=datetime(2024, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start_date": "2024-01-01"}, "start_date"),
        ({"service_code": 5}, "service_code"),
        ({"status": ["open", 1]}, "status"),
        (
            {
                "start_date": datetime(2024, 2, 1, tzinfo=UTC),
                "end_date": datetime(2024, 1, 1, tzinfo=UTC),
            },
            "end_date",
        ),
    ],
)
def test_list_requests_refuses_wrong_types(kwargs: dict[str, object], field: str) -> None:
    """Wrong filter types raise InvalidRequestError naming the filter."""
    with pytest.raises(civic311.InvalidRequestError, match=field):
        list_requests_call(**kwargs)  # type: ignore[arg-type]


def test_list_requests_warns_over_90_days() -> None:
    """A span over 90 days warns that servers refuse or cut it."""
    with pytest.warns(civic311.Civic311Warning, match="iter_requests"):
        list_requests_call(
            start_date=datetime(2024, 1, 1, tzinfo=UTC), end_date=datetime(2024, 6, 1, tzinfo=UTC)
        )


def test_chunk_ids_keep_urls_under_the_limit() -> None:
    """Id chunks never push the URL past the limit and keep every id once, in order."""
    ids = [f"{i:08d}-abc" for i in range(1000)]
    base = len(BASE + "/requests.json?service_request_id=")
    chunks = chunk_ids(ids, base, 2000)
    assert [i for chunk in chunks for i in chunk] == ids
    for chunk in chunks:
        call = list_requests_call(service_request_id=chunk)
        assert len(str(build_request(call, BASE, "json", Settings()).url)) <= 2000
    assert len(chunks) > 1


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("services", list_services_call()),
        ("service_definition", service_definition_call("DMV66")),
        ("submit", submit_call(civic311.NewRequest(service_code="1", address_id="2"))),
        ("token", get_token_call("12345")),
        ("requests", list_requests_call()),
        ("request", get_request_call("638344")),
    ],
)
def test_paired_fixtures_decode_to_equal_models(name: str, call: Call[object], fmt: str) -> None:
    """Each operation's XML and JSON fixtures decode to the same models."""
    from_xml = reply(call, fixture_bytes(f"paired/{name}.xml"), fmt="xml")
    from_json = reply(call, fixture_bytes(f"paired/{name}.json"), fmt="json")
    assert from_xml == from_json
    # and the format asked does not matter: the body is sniffed
    assert reply(call, fixture_bytes(f"paired/{name}.{fmt}"), fmt="json") == from_json


def test_paired_requests_values() -> None:
    """The spec's example requests decode with string ids, kept zeros, aware datetimes."""
    requests = reply(list_requests_call(), fixture_bytes("paired/requests.xml"), fmt="xml")
    assert isinstance(requests, list)
    first, second = requests
    assert first.service_request_id == "638344"
    assert first.service_code == "006"
    assert first.is_closed
    assert first.media_url == "http://city.gov.s3.amazonaws.com/requests/media/638344.jpg"
    assert first.requested_datetime == datetime(2010, 4, 14, 14, 37, 38, tzinfo=UTC)
    assert second.zipcode == "06510"
    assert first.description is None


ERROR_SHAPES = [
    (b'[{"code":403,"description":"Invalid api_key"}]', [("403", "Invalid api_key")]),
    (
        b"<?xml version='1.0'?><errors><error><code>403</code>"
        b"<description>Invalid api_key</description></error></errors>",
        [("403", "Invalid api_key")],
    ),
    (
        b'{"errors":{"code":400,"description":"Bad request: status"}}',
        [("400", "Bad request: status")],
    ),
    (b'{"error":{"code":404,"message":"Not found"}}', [("404", "Not found")]),
    (b'{"code":400,"detail":"Missing lat"}', [("400", "Missing lat")]),
    (
        b'{"code":400,"detail":{"lat":["required"],"long":["required"]}}',
        [("400", "lat: required; long: required")],
    ),
    (b'[{"description":"service_code not found"}]', [(None, "service_code not found")]),
    (
        b"<error_messages><error_message><code>422</code><description>email missing"
        b"</description></error_message></error_messages>",
        [("422", "email missing")],
    ),
    (
        b'[{"code":400,"description":"a"},{"code":"BAD_LAT","description":"b"}]',
        [("400", "a"), ("BAD_LAT", "b")],
    ),
]


@pytest.mark.parametrize(("body", "expected"), ERROR_SHAPES)
def test_every_error_shape_is_parsed(body: bytes, expected: list[tuple[str | None, str]]) -> None:
    """All six error-body shapes (and multi-error arrays) become ErrorDetail lists."""
    with pytest.raises(civic311.APIError) as caught:
        reply(list_services_call(), body, status=400)
    assert [(e.code, e.description) for e in caught.value.errors] == expected
    assert caught.value.body == body
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.ForbiddenError),
        (403, errors.ForbiddenError),
        (404, errors.NotFoundError),
        (422, errors.BadRequestError),
        (429, errors.RateLimitedError),
        (500, errors.ServerError),
        (503, errors.ServerError),
        (418, errors.APIError),
    ],
)
def test_status_codes_map_to_the_error_tree(status: int, cls: type[Exception]) -> None:
    """Each error status raises its class in the tree."""
    with pytest.raises(cls):
        reply(list_services_call(), b"", status=status)


def test_html_error_page_keeps_status_and_body() -> None:
    """A 503 HTML page is a ServerError with no parsed errors and the raw body."""
    body = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
    with pytest.raises(errors.ServerError) as caught:
        reply(list_services_call(), body, status=503, headers={"Retry-After": "7"})
    assert caught.value.errors == []
    assert caught.value.body == body
    assert caught.value.retry_after == 7.0
    assert "503 Service Unavailable" in str(caught.value)


def test_html_page_with_200_is_a_decode_error_naming_the_url() -> None:
    """A maintenance page with 200 raises DecodeError that says what was asked of whom."""
    with pytest.raises(errors.DecodeError) as caught:
        reply(list_services_call(), b"<html><body>Maintenance</body></html>")
    assert "GET https://city.example/open311/v2/services.json" in str(caught.value)
    assert "HTML page" in str(caught.value)
    assert caught.value.status_code == 200


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_truncated_bodies_are_decode_errors(fmt: str) -> None:
    """Half a body raises DecodeError in either format."""
    body = fixture_bytes(f"paired/requests.{fmt}")
    with pytest.raises(errors.DecodeError):
        reply(list_requests_call(), body[: len(body) // 2], fmt=fmt)


def test_error_document_with_200_is_an_api_error() -> None:
    """An <errors> document served with 200 still raises an APIError."""
    body = b"<errors><error><code>400</code><description>no</description></error></errors>"
    with pytest.raises(errors.APIError, match="no"):
        reply(list_services_call(), body, fmt="xml")


def test_wrong_shape_names_the_record() -> None:
    """A record of the wrong shape raises DecodeError naming its index and field."""
    with pytest.raises(errors.DecodeError, match=r"services\[1\].*service_code"):
        reply(list_services_call(), b'[{"service_code":"1"},{"service_name":"x"}]')


def test_bad_request_record_is_named_by_its_index() -> None:
    """A request list with one unreadable record raises DecodeError naming its index and field."""
    body = b'[{"service_request_id":"1"},{"service_request_id":"2"},{"service_request_id":"3",'
    body += b'"requested_datetime":"soon"}]'
    with pytest.raises(errors.DecodeError, match=r"service_requests\[2\].*requested_datetime"):
        reply(list_requests_call(), body)


def test_request_list_counts_what_it_received_and_keeps_its_order() -> None:
    """A page keeps the records' order and counts every record, skipped ones included."""
    body = b'[{"service_request_id":"3"},{"token":"t"},{"service_request_id":"1"}]'
    result = reply(list_requests_call(), body)
    assert [r.service_request_id for r in result] == ["3", "1"]  # type: ignore[attr-defined]
    assert result.received == 3  # type: ignore[attr-defined]


def test_empty_2xx_post_is_a_blackbox_receipt() -> None:
    """An empty 2xx answer to a POST is a receipt with neither id nor token."""
    call = submit_call(civic311.NewRequest(service_code="1", address_id="2"))
    assert reply(call, b"", status=201) == civic311.Receipt()


def test_get_request_empty_list_is_not_found() -> None:
    """An empty list for one request id raises NotFoundError."""
    with pytest.raises(errors.NotFoundError):
        reply(get_request_call("5"), b"[]")


def test_request_list_skips_items_without_ids() -> None:
    """Requests without a service_request_id are skipped, not returned half-made."""
    body = b'[{"service_request_id":"1"},{"token":"t"},{"service_request_id":null}]'
    result = reply(list_requests_call(), body)
    assert [r.service_request_id for r in result] == ["1"]  # type: ignore[attr-defined]


def test_wait_flow_polls_with_growing_intervals_until_an_id() -> None:
    """The first look-up is immediate, then intervals double, and the id is returned."""
    flow = wait_for_id_flow("T", timeout=60, started=0.0)
    step = next(flow)
    sleeps = []
    for _ in range(4):
        assert isinstance(step, Call)
        step = flow.send(civic311.TokenStatus(token="T"))
        assert isinstance(step, Sleep)
        sleeps.append(step.seconds)
        step = flow.send(sum(sleeps))
    with pytest.raises(StopIteration) as done:
        flow.send(civic311.TokenStatus(token="T", service_request_id="42"))
    assert done.value.value == "42"
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


def test_wait_flow_treats_404_as_pending_and_times_out() -> None:
    """A 404 on the token is pending; after the timeout a WaitTimeoutError names the token."""
    flow = wait_for_id_flow("T", timeout=1.0, started=0.0)
    next(flow)
    not_found = errors.NotFoundError(status_code=404)
    step = flow.throw(not_found)
    assert step == Sleep(0.5)
    flow.send(0.5)
    step = flow.throw(not_found)
    assert step == Sleep(0.5)  # capped by the time left
    flow.send(1.0)
    with pytest.raises(errors.WaitTimeoutError, match=r"'T'.*3 look-ups"):
        flow.throw(not_found)


def test_wait_flow_404_is_an_error_when_not_pending() -> None:
    """With pending_404 off, a 404 on the token propagates."""
    flow = wait_for_id_flow("T", timeout=5, started=0.0, pending_404=False)
    next(flow)
    with pytest.raises(errors.NotFoundError):
        flow.throw(errors.NotFoundError(status_code=404))


FAST_URL_BASES = [
    BASE,
    BASE + "/",
    "http://127.0.0.1:8311/open311/v2",
    "http://[::1]:8080/v2",
    "https://city.example",
    "https://City.Example/Open311/v2",  # not httpx's canonical form: parsed every time
    "https://bücher.example/v2",  # IDNA host: parsed every time
    "https://city.example/open%20311/v2",
    "https://city.example/a b/v2",  # httpx quotes the space: parsed every time
]


@pytest.mark.parametrize("base", FAST_URL_BASES)
@pytest.mark.parametrize(
    "call",
    [
        list_services_call(),
        get_request_call("600001"),
        get_request_call("ServiceRequest/Animals/Dog bite ü"),
        get_request_call(".."),
        service_definition_call("a+b=c&d"),
        list_requests_call(service_request_id=["1", "2 3"], status="open"),
    ],
)
@pytest.mark.parametrize("paths", [{}, {"requests": "issues"}, {"requests": "api/v 1/issues"}])
def test_fast_url_is_the_parsed_url(base: str, call: Call[object], paths: dict[str, str]) -> None:
    """A request's URL, built on the parsed endpoint, is the URL httpx parses from its text."""
    settings = Settings("city.example", profile=Profile(paths=paths, extensions=True))
    for fmt in ("json", "xml"):
        url = build_request(call, base, fmt, settings).url  # type: ignore[arg-type]
        parsed = httpx.URL(str(url))
        assert url == parsed
        assert (url.raw_path, url.host, url.port, url.scheme) == (
            parsed.raw_path,
            parsed.host,
            parsed.port,
            parsed.scheme,
        )
        assert url.params.multi_items() == parsed.params.multi_items()


@hypothesis.given(st.text(min_size=1, max_size=40))
@hypothesis.settings(max_examples=200, deadline=None)
def test_fast_url_matches_the_parser_for_any_id(service_request_id: str) -> None:
    """For any id, the request URL equals httpx's parse of the same text (or both refuse)."""
    try:
        call = get_request_call(service_request_id)
    except civic311.InvalidRequestError:
        return
    url = build_request(call, BASE, "json", Settings()).url
    assert url.raw_path == httpx.URL(f"{BASE}/{call.path}.json").raw_path
