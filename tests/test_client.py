"""Client and AsyncClient over mocked transports: every method, both formats, both flavours."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

import civic311
from civic311._client.transport import _SetCookies
from civic311.testing._vclock import VirtualClock

from helpers import BASE, Both, fixture_bytes, respond

UTC = timezone.utc
SECRET = "sk-live-VERY-SECRET-123"


def routes(fmt: str) -> respx.Router:
    """A respx router answering every GeoReport path from the paired fixtures."""
    router = respx.Router(base_url=BASE, assert_all_called=False)
    ctype = "application/json" if fmt == "json" else "text/xml; charset=utf-8"

    def fixture(name: str) -> httpx.Response:
        return httpx.Response(
            200, content=fixture_bytes(f"paired/{name}.{fmt}"), headers={"Content-Type": ctype}
        )

    router.get(f"/services.{fmt}").mock(return_value=fixture("services"))
    router.get(f"/services/DMV66.{fmt}").mock(return_value=fixture("service_definition"))
    router.post(f"/requests.{fmt}").mock(return_value=fixture("submit"))
    router.get(f"/tokens/12345.{fmt}").mock(return_value=fixture("token"))
    router.get(f"/requests/638344.{fmt}").mock(return_value=fixture("request"))
    router.get(f"/requests.{fmt}").mock(return_value=fixture("requests"))
    return router


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_every_method_both_formats(both: Both, fmt: str) -> None:
    """Every GeoReport method works in both formats through both clients."""
    router = routes(fmt)
    options = {"format": fmt}
    services = both(router.handler, "list_services", client=options)
    assert [s.service_code for s in services] == ["001", "002"]
    definition = both(router.handler, "get_service_definition", "DMV66", client=options)
    assert definition.attributes[0].values[0].key == "123"
    new = civic311.NewRequest(service_code="001", lat=37.7, long=-122.4)
    receipt = both(router.handler, "submit", new, client=options)
    assert receipt.service_request_id == "293944"
    assert both(router.handler, "get_token", "12345", client=options).service_request_id == "638344"
    assert both(router.handler, "get_request", "638344", client=options).status == "closed"
    listed = both(router.handler, "list_requests", client=options)
    assert [r.service_request_id for r in listed] == ["638344", "638349"]
    # the fixture ignores the filter; the client re-filters (reference §10.30)
    only_open = both(router.handler, "list_requests", status="open", client=options)
    assert [r.service_request_id for r in only_open] == ["638349"]


def test_get_requests_chunks_and_keeps_the_asked_order(both: Both) -> None:
    """Many ids go out in URL-sized chunks; results come back in the order asked."""
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        ids = request.url.params["service_request_id"].split(",")
        # the city answers newest first and ignores an id it does not know
        return httpx.Response(
            200, json=[{"service_request_id": i} for i in reversed(ids) if i != "0000042"]
        )

    wanted = [f"{i:07d}" for i in range(400)] + ["0000001"]
    found = both(handler, "get_requests", wanted)
    assert [r.service_request_id for r in found] == [i for i in wanted[:400] if i != "0000042"]
    assert len(urls) > 1
    assert all(len(u) <= 2000 for u in urls)


@pytest.mark.parametrize("ids", ["1,2,3", None, 5, [1, 2], ["ok", ""]])
def test_get_requests_refuses_bad_ids(both: Both, ids: object) -> None:
    """get_requests wants a list of id strings, and says so before any request."""
    handler = respond("[]")
    with pytest.raises(civic311.InvalidRequestError, match="ids"):
        both(handler, "get_requests", ids)
    assert handler.seen == []  # type: ignore[attr-defined]


def test_dates_are_sent_as_utc_z(both: Both) -> None:
    """list_requests sends datetimes as YYYY-MM-DDTHH:MM:SSZ in UTC."""
    handler = respond("[]")
    both(
        handler,
        "list_requests",
        start_date=datetime(2024, 3, 1, 12, 0, 0, 500, tzinfo=UTC),
        end_date=datetime(2024, 3, 2, tzinfo=UTC),
    )
    params = handler.seen[0].url.params  # type: ignore[attr-defined]
    assert params["start_date"] == "2024-03-01T12:00:00Z"
    assert params["end_date"] == "2024-03-02T00:00:00Z"


def test_naive_datetime_refused_before_sending(both: Both) -> None:
    """A naive datetime raises InvalidRequestError and nothing is sent."""
    handler = respond("[]")
    with pytest.raises(civic311.InvalidRequestError, match="naive"):
        both(handler, "list_requests", start_date=datetime(2024, 1, 1))  # noqa: DTZ001
    assert handler.seen == []  # type: ignore[attr-defined]


def test_submit_sends_the_form_with_key_and_jurisdiction(both: Both) -> None:
    """submit POSTs the UTF-8 form with api_key and jurisdiction_id."""
    handler = respond('[{"service_request_id":"9"}]')
    new = civic311.NewRequest(
        service_code="001", address_string="Köln", attributes={"M": ["a", "b"]}
    )
    both(handler, "submit", new, client={"api_key": SECRET, "jurisdiction_id": "koeln.de"})
    request = handler.seen[0]  # type: ignore[attr-defined]
    form = parse_qsl(request.content.decode())
    assert form == [
        ("service_code", "001"),
        ("address_string", "Köln"),
        ("attribute[M][]", "a"),
        ("attribute[M][]", "b"),
        ("jurisdiction_id", "koeln.de"),
        ("api_key", SECRET),
    ]


@pytest.mark.parametrize("bad", [None, {"service_code": "1"}, "001"])
def test_submit_refuses_non_new_requests(both: Both, bad: object) -> None:
    """submit takes a NewRequest and says so."""
    with pytest.raises(civic311.InvalidRequestError, match="NewRequest"):
        both(respond("[]"), "submit", bad)


def test_user_headers_and_user_agent(both: Both) -> None:
    """Extra headers are sent beside the civic311 User-Agent."""
    handler = respond("[]")
    both(handler, "list_services", client={"headers": {"X-App": "fixit"}})
    sent = handler.seen[0].headers  # type: ignore[attr-defined]
    assert sent["X-App"] == "fixit"
    assert sent["User-Agent"].startswith("civic311/")


def test_response_over_the_cap_stops_reading(both: Both) -> None:
    """A body over max_response_bytes raises ResponseTooLargeError."""
    handler = respond(b"[" + b'{"service_code":"1"},' * 5000 + b'{"service_code":"1"}]')
    with pytest.raises(civic311.ResponseTooLargeError, match="over the cap of 1,024 bytes"):
        both(handler, "list_services", client={"max_response_bytes": 1024})


def test_declared_length_over_the_cap_is_refused_at_once(both: Both) -> None:
    """A Content-Length over the cap is refused before reading the body."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"[]", headers={"Content-Length": str(10**9)})

    with pytest.raises(civic311.ResponseTooLargeError, match="declares 1,000,000,000 bytes"):
        both(handler, "list_services", client={"max_response_bytes": 4096})


@pytest.mark.parametrize(
    ("exc", "sent"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow"), False),
        (httpx.ReadTimeout("slow"), True),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
    ],
)
def test_transport_failures_become_transport_errors(
    both: Both, exc: httpx.HTTPError, sent: bool
) -> None:
    """httpx failures raise TransportError that says whether the request may have arrived."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(civic311.TransportError) as caught:
        both(handler, "list_services", client={"retry": None})
    assert caught.value.sent is sent
    assert caught.value.url == BASE + "/services.json"
    assert isinstance(caught.value.__cause__, httpx.HTTPError)


def test_wait_for_id_polls_on_the_clock(both: Both) -> None:
    """wait_for_id polls tokens until the id appears, sleeping on the client's clock."""
    clock = VirtualClock()
    polls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        polls.append(clock.monotonic())
        if len(polls) < 4:
            return httpx.Response(200, json=[{"token": "T"}])
        return httpx.Response(200, json=[{"token": "T", "service_request_id": "77"}])

    result = both(handler, "wait_for_id", civic311.Receipt(token="T"), client={"clock": clock})
    assert result == "77"
    assert polls == [0.0, 0.5, 1.5, 3.5]


def test_wait_for_id_404_pending_then_timeout(both: Both) -> None:
    """A token that answers 404 is pending until the timeout, then WaitTimeoutError."""
    clock = VirtualClock()
    handler = respond('[{"code":404,"description":"no such token"}]', status=404)
    with pytest.raises(civic311.WaitTimeoutError) as caught:
        both(handler, "wait_for_id", "T", timeout=20, client={"clock": clock})
    assert caught.value.token == "T"
    assert clock.monotonic() == pytest.approx(20.0)


def test_wait_for_id_returns_known_id_without_calls(both: Both) -> None:
    """A receipt that already has an id returns it with no request at all."""
    handler = respond("[]")
    assert both(handler, "wait_for_id", civic311.Receipt(service_request_id="5")) == "5"
    assert handler.seen == []  # type: ignore[attr-defined]


def test_wait_for_id_blackbox_receipt_is_a_clear_error(both: Both) -> None:
    """A blackbox receipt raises UntrackableReceiptError at once instead of hanging."""
    with pytest.raises(civic311.UntrackableReceiptError, match="blackbox"):
        both(respond("[]"), "wait_for_id", civic311.Receipt())


@pytest.mark.parametrize(("arg", "timeout"), [("", 5), (None, 5), ("T", -1), ("T", "5")])
def test_wait_for_id_refuses_bad_arguments(both: Both, arg: object, timeout: object) -> None:
    """Empty tokens and bad timeouts raise InvalidRequestError."""
    with pytest.raises(civic311.InvalidRequestError):
        both(respond("[]"), "wait_for_id", arg, timeout=timeout)


def test_redirects_followed_for_reads_not_for_posts(both: Both) -> None:
    """GETs follow a redirect; a POST (it carries the api_key) never does."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "city.example":
            return httpx.Response(301, headers={"Location": "https://elsewhere.example/v2/x.json"})
        return httpx.Response(200, json=[])

    assert both(handler, "list_services") == []
    new = civic311.NewRequest(service_code="1", address_id="2")
    with pytest.raises(civic311.APIError, match="301"):
        both(handler, "submit", new, client={"api_key": SECRET})


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"format": "yaml"}, "format"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "10"}, "timeout"),
        ({"headers": ["X"]}, "headers"),
        ({"max_response_bytes": 0}, "max_response_bytes"),
        ({"jurisdiction_id": 5}, "jurisdiction_id"),
        ({"api_key": 5}, "api_key"),
        ({"clock": object()}, "clock"),
        ({"endpoints": []}, "endpoints"),
        ({"endpoints": [BASE, BASE + "/"]}, "endpoints"),
        ({"endpoints": 5}, "endpoints"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle"),
    ],
)
@pytest.mark.parametrize("cls", [civic311.Client, civic311.AsyncClient])
def test_constructor_refuses_bad_options(
    cls: type[civic311.Client], options: dict[str, object], field: str
) -> None:
    """Bad constructor arguments raise InvalidRequestError naming the option."""
    options = dict(options)
    endpoints = options.pop("endpoints", BASE)
    with pytest.raises(civic311.InvalidRequestError, match=field):
        cls(endpoints, **options)  # type: ignore[arg-type]


def test_client_closes_only_what_it_opened() -> None:
    """A client given an http_client leaves it open; one it created is closed on exit."""
    mine = httpx.Client(transport=httpx.MockTransport(respond("[]")))
    with civic311.Client(BASE, http_client=mine) as client:
        client.list_services()
    assert not mine.is_closed
    mine.close()
    with civic311.Client(BASE, transport=httpx.MockTransport(respond("[]"))) as client:
        inner = client._http
    assert inner.is_closed


@pytest.mark.anyio
async def test_async_client_closes_only_what_it_opened() -> None:
    """AsyncClient leaves a given httpx.AsyncClient open and closes its own."""
    mine = httpx.AsyncClient(transport=httpx.MockTransport(respond("[]")))
    async with civic311.AsyncClient(BASE, http_client=mine) as client:
        await client.list_services()
    assert not mine.is_closed
    await mine.aclose()
    async with civic311.AsyncClient(BASE, transport=httpx.MockTransport(respond("[]"))) as client:
        inner = client._http
    assert inner.is_closed


def _cookie_gate(seen: list[httpx.Request]) -> httpx.MockTransport:
    """A server that answers only a request carrying its cookie; without it, it sets the
    cookie and redirects to the same URL (a session cookie behind a load balancer)."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("Cookie") == "guid=abc":
            return httpx.Response(200, json=[], headers={"Set-Cookie": "seen=1; Path=/"})
        return httpx.Response(
            302, headers={"Location": str(request.url), "Set-Cookie": "guid=abc; Path=/"}
        )

    return httpx.MockTransport(handler)


def test_cookies_an_answer_sets_are_kept_and_sent_on_its_redirect() -> None:
    """A Set-Cookie answer is stored (and sent on the redirect); a cookie-less one stores none."""
    seen: list[httpx.Request] = []
    with civic311.Client(BASE, transport=_cookie_gate(seen)) as client:
        assert isinstance(client._http.cookies, _SetCookies)  # the store under test
        assert client.list_services() == []
        assert [r.headers.get("Cookie") for r in seen] == [None, "guid=abc"]
        assert dict(client._http.cookies) == {"guid": "abc", "seen": "1"}
    with civic311.Client(BASE, transport=httpx.MockTransport(respond("[]"))) as client:
        client.list_services()
        assert not client._http.cookies


@pytest.mark.anyio
async def test_async_cookies_an_answer_sets_are_kept_and_sent_on_its_redirect() -> None:
    """AsyncClient stores a Set-Cookie answer's cookies and sends them on the redirect."""
    seen: list[httpx.Request] = []
    async with civic311.AsyncClient(BASE, transport=_cookie_gate(seen)) as client:
        assert await client.list_services() == []
        assert [r.headers.get("Cookie") for r in seen] == [None, "guid=abc"]
        assert dict(client._http.cookies) == {"guid": "abc", "seen": "1"}


def test_a_given_http_client_keeps_its_own_cookie_store() -> None:
    """An http_client passed in keeps httpx's cookie handling as it was."""
    mine = httpx.Client(transport=_cookie_gate([]))
    with civic311.Client(BASE, http_client=mine) as client:
        assert client.list_services() == []
    assert type(mine.cookies) is httpx.Cookies
    assert dict(mine.cookies) == {"guid": "abc", "seen": "1"}
    mine.close()


def test_wrong_http_client_types_are_refused() -> None:
    """A sync client with an async httpx client (and the reverse) is refused clearly."""
    with pytest.raises(civic311.InvalidRequestError, match=r"httpx\.Client"):
        civic311.Client(BASE, http_client=httpx.AsyncClient())  # type: ignore[arg-type]
    with pytest.raises(civic311.InvalidRequestError, match=r"httpx\.AsyncClient"):
        civic311.AsyncClient(BASE, http_client=httpx.Client())  # type: ignore[arg-type]
    with pytest.raises(civic311.InvalidRequestError, match="not both"):
        civic311.Client(
            BASE, http_client=httpx.Client(), transport=httpx.MockTransport(respond("[]"))
        )


def test_api_key_never_in_repr_errors_or_logs(both: Both, caplog: pytest.LogCaptureFixture) -> None:
    """The api_key appears in no repr, exception text or log record, even on reads."""
    caplog.set_level(logging.DEBUG, logger="civic311")
    client = civic311.Client(BASE, api_key=SECRET)
    assert SECRET not in repr(client)
    assert "api_key=<set>" in repr(client)
    client.close()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json=[{"code": 403, "description": "Invalid api_key"}])

    new = civic311.NewRequest(service_code="1", address_id="2")
    for method, args in (("submit", (new,)), ("list_services", ())):
        with pytest.raises(civic311.ForbiddenError) as caught:
            both(handler, method, *args, client={"api_key": SECRET})
        assert SECRET not in str(caught.value)
        assert SECRET not in repr(caught.value)
    assert caplog.records
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def test_transport_error_text_never_holds_the_key() -> None:
    """Even with the key on reads, a transport failure's text carries no key."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused {request.url}")

    from civic311._protocol import Settings
    from civic311.profiles import Profile

    transport = httpx.MockTransport(handler)
    with civic311.Client(BASE, api_key=SECRET, transport=transport, retry=None) as client:
        client._settings = Settings(api_key=SECRET, profile=Profile(api_key_on_reads=True))
        with pytest.raises(civic311.TransportError) as caught:
            client.list_services()
    assert caught.value.url.endswith("api_key=%2A%2A%2A")
    assert SECRET not in caught.value.url
    assert SECRET not in str(caught.value)


def test_an_echoed_api_key_never_reaches_the_error(both: Both) -> None:
    """A server that echoes the POST (key included) in its error body: the key is scrubbed."""

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json=[{"code": 400, "description": f"bad request: {request.content.decode()}"}]
        )

    new = civic311.NewRequest(service_code="1", address_id="2")
    with pytest.raises(civic311.BadRequestError) as caught:
        both(echo, "submit", new, client={"api_key": SECRET})
    error = caught.value
    assert SECRET not in str(error)
    assert SECRET not in repr(error.errors)
    assert SECRET.encode() not in error.body
    assert "api_key=***" in str(error)
