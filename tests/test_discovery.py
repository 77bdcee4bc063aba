"""Service Discovery (reference §7): parsing what servers really send, choosing endpoints,
the TTL cache, fetching through a client (its User-Agent, headers, TLS and size cap), and
FakeCity's discovery document."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

import civic311
from civic311._protocol import USER_AGENT
from civic311.discovery import (
    GEOREPORT_V2,
    Discovery,
    DiscoveryCache,
    DiscoveryEndpoint,
    choose_endpoints,
    default_cache,
    discovery_root,
    parse_discovery,
)
from civic311.errors import (
    DecodeError,
    InvalidRequestError,
    NotFoundError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
)
from civic311.profiles import Profile
from civic311.testing import Dialect, FakeCity, Fault, VirtualClock
from civic311.testing._discovery import DiscoveryEndpointSpec

from helpers import fixture_bytes

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def doc(name: str) -> Discovery:
    """The parsed fixture tests/fixtures/discovery/<name>."""
    return parse_discovery(fixture_bytes(f"discovery/{name}"))


def endpoint(**fields: object) -> DiscoveryEndpoint:
    """A GeoReport v2 production endpoint with JSON and XML, fields overridden."""
    values: dict[str, object] = {
        "specification": GEOREPORT_V2,
        "url": "https://open311.city.example/v2",
        "type": "production",
        "formats": ("text/xml", "application/json"),
    }
    values.update(fields)
    return DiscoveryEndpoint(**values)  # type: ignore[arg-type]


# -- parsing -----------------------------------------------------------------------------------


def test_spec_example_json_parses_every_field() -> None:
    """The spec's JSON shape gives typed fields, changesets in YYYY-MM-DD HH:MM read as UTC."""
    discovery = doc("spec.json")
    assert discovery.changeset == datetime(2011, 2, 3, 14, 18, tzinfo=timezone.utc)
    assert discovery.contact is not None
    assert discovery.contact.startswith("You can email")
    assert discovery.key_service is not None
    assert "api_key/request" in discovery.key_service
    assert len(discovery.endpoints) == 3
    first = discovery.endpoints[0]
    assert first.specification == GEOREPORT_V2
    assert first.url == "http://open311.city.gov/v2"
    assert first.type == "production"
    assert first.formats == ("text/xml", "application/json")
    assert first.changeset == datetime(2011, 2, 3, 14, 18, tzinfo=timezone.utc)
    assert discovery.extras == {}


def test_xml_and_json_of_the_same_document_are_equal() -> None:
    """The spec's XML and JSON forms decode to the same Discovery."""
    assert doc("spec.xml") == doc("spec.json")


def test_single_format_child_in_xml_is_still_a_tuple() -> None:
    """One <format> under <formats> gives a one-item tuple (§10.8)."""
    test = doc("spec.xml").endpoints[1]
    assert test.formats == ("text/xml",)


def test_byte_order_mark_and_extra_endpoint_keys() -> None:
    """Helsinki's BOM is skipped and its endpoints[].locales is kept in extras (§7)."""
    discovery = doc("helsinki_bom.json")
    assert discovery.endpoints[0].extras == {"locales": ["fi_FI", "en_GB", "en_US"]}
    assert discovery.changeset == datetime(2014, 3, 12, 8, 0, tzinfo=timezone.utc)


def test_endpoints_as_a_single_object() -> None:
    """Gießen's endpoints as one object instead of an array is a list of one (open311_java #15)."""
    discovery = doc("giessen_endpoints_object.json")
    assert [e.url for e in discovery.endpoints] == ["http://maengelmelder.giessen.de/georeport/v2"]
    assert discovery.key_service is None  # "" is no information


def test_endpoints_as_an_object_of_endpoints_keeps_their_order() -> None:
    """endpoints as {"0": {…}, "1": {…}} gives its endpoints in document order."""
    discovery = doc("endpoints_keyed_object.json")
    assert [e.type for e in discovery.endpoints] == ["production", "test"]


def test_endpoints_wrapped_in_endpoint_and_formats_in_format() -> None:
    """{"endpoint": […]} and {"format": "text/xml"} (XML-to-JSON leftovers) unwrap."""
    discovery = doc("endpoints_endpoint_wrapper.json")
    assert len(discovery.endpoints) == 1
    assert discovery.endpoints[0].formats == ("text/xml",)


def test_fixmystreet_wrapper_extras_and_html_format() -> None:
    """{"discovery": {…}} unwraps; max_requests is kept; text/html is not a usable format."""
    discovery = doc("fms_wrapped.json")
    assert discovery.extras == {"max_requests": 1000}
    assert discovery.endpoints[0].formats == ("text/xml", "application/json", "text/html")
    assert discovery.endpoints[0].format_names == ("xml", "json")


def test_misspelled_dicovery_root_is_accepted() -> None:
    """Klarschiff's documented <dicovery> root reads like <discovery> (§7)."""
    discovery = doc("klarschiff_dicovery.xml")
    assert discovery.endpoints[0].url == "https://geo.sv.rostock.de/citysdk/"
    assert discovery.endpoints[0].formats == ("application/xml",)


def test_lone_endpoint_without_container_and_format_as_string() -> None:
    """A top-level endpoint object (no endpoints list) and "formats": "…" are tolerated."""
    body = (
        b'{"changeset":"2020-01-01T00:00:00Z","endpoint":{"specification":"'
        + GEOREPORT_V2.encode()
        + b'","url":"https://x.example/v2","type":"production","formats":"application/json"}}'
    )
    discovery = parse_discovery(body)
    assert discovery.endpoints[0].formats == ("application/json",)
    assert discovery.extras == {}


def test_unreadable_changeset_is_none_and_kept_raw() -> None:
    """A changeset that is no datetime becomes None, its text kept in extras["changeset"]."""
    body = b'{"changeset":"v42","endpoints":[{"url":"https://x.example/v2","changeset":"r7"}]}'
    discovery = parse_discovery(body)
    assert discovery.changeset is None
    assert discovery.extras == {"changeset": "v42"}
    assert discovery.endpoints[0].changeset is None
    assert discovery.endpoints[0].extras == {"changeset": "r7"}


def test_empty_endpoints_element_is_an_empty_tuple() -> None:
    """<endpoints/> gives no endpoints, not an error."""
    discovery = parse_discovery(b"<discovery><changeset/><endpoints/></discovery>")
    assert discovery.endpoints == ()
    assert discovery.changeset is None


def test_text_that_is_not_json_is_a_decode_error() -> None:
    """D.C.'s discovery.json was not JSON: a DecodeError saying so (open311_java #15)."""
    with pytest.raises(DecodeError, match=r"not a discovery document.*not valid JSON"):
        doc("dc_not_json.json")


def test_html_page_is_a_decode_error() -> None:
    """An HTML page where the document should be is a DecodeError naming HTML."""
    with pytest.raises(DecodeError, match="HTML page"):
        doc("html_page.json")


def test_json_string_is_a_decode_error() -> None:
    """A JSON string (Gson's "Expected BEGIN_OBJECT but was STRING") is a clear DecodeError."""
    with pytest.raises(DecodeError, match="expected an object, got a JSON string"):
        parse_discovery(b'"Service Unavailable"')


def test_other_xml_root_is_a_decode_error() -> None:
    """An XML document with another root (<services>) is not a discovery document."""
    with pytest.raises(DecodeError, match="root is <services>"):
        parse_discovery(b"<services><service><service_code>1</service_code></service></services>")


def test_wrong_endpoints_type_is_a_decode_error_with_the_body() -> None:
    """endpoints as a number is a DecodeError that keeps the raw body."""
    body = b'{"endpoints": 5}'
    with pytest.raises(DecodeError, match="endpoints should be a list") as caught:
        parse_discovery(body)
    assert caught.value.body == body


def test_models_are_frozen_and_extras_read_only() -> None:
    """Discovery and its endpoints cannot be changed after parsing."""
    discovery = doc("fms_wrapped.json")
    with pytest.raises(AttributeError):
        discovery.contact = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        discovery.extras["max_requests"] = 1  # type: ignore[index]


# -- choosing ----------------------------------------------------------------------------------


def test_choose_production_prefers_json_and_skips_v3() -> None:
    """Production gives the v2 production endpoint in JSON; v3 is never chosen."""
    assert choose_endpoints(doc("spec.json")) == [("http://open311.city.gov/v2", "json")]


def test_choose_test_gives_xml_where_only_xml_is_offered() -> None:
    """The v2 test endpoint offers only text/xml, so XML is chosen; the v3 test one is skipped."""
    chosen = choose_endpoints(doc("spec.xml"), environment="test")
    assert chosen == [("http://open311.city.gov/dev/v2", "xml")]


def test_application_xml_counts_as_xml_and_trailing_slash_is_dropped() -> None:
    """application/xml is XML (Klarschiff), and the URL loses its trailing slash."""
    chosen = choose_endpoints(doc("klarschiff_dicovery.xml"))
    assert chosen == [("https://geo.sv.rostock.de/citysdk", "xml")]


@pytest.mark.parametrize(
    "spec",
    [
        "http://wiki.open311.org/GeoReport_v2/",
        "https://wiki.open311.org/GeoReport_v2",
        "HTTP://WIKI.OPEN311.ORG/georeport_v2",
        "  http://www.wiki.open311.org/GeoReport_v2 ",
    ],
)
def test_specification_token_tolerates_scheme_case_and_slash(spec: str) -> None:
    """GeoReport v2's token matches with https, another case, www. or a trailing slash."""
    discovery = Discovery(endpoints=(endpoint(specification=spec),))
    assert choose_endpoints(discovery) == [("https://open311.city.example/v2", "json")]


def test_type_is_matched_ignoring_case() -> None:
    """type "Production" counts as production."""
    discovery = Discovery(endpoints=(endpoint(type="Production"),))
    assert len(choose_endpoints(discovery)) == 1


def test_endpoint_without_formats_is_taken_as_xml() -> None:
    """No formats listed: XML, which every GeoReport v2 endpoint must speak (spec §1.2)."""
    discovery = Discovery(endpoints=(endpoint(formats=()),))
    assert choose_endpoints(discovery) == [("https://open311.city.example/v2", "xml")]


def test_document_order_is_kept_and_duplicates_dropped() -> None:
    """Endpoints come in document order (not by changeset); a URL listed twice appears once."""
    older = datetime(2010, 1, 1, tzinfo=timezone.utc)
    newer = datetime(2020, 1, 1, tzinfo=timezone.utc)
    discovery = Discovery(
        endpoints=(
            endpoint(url="https://a.example/v2", changeset=older),
            endpoint(url="https://b.example/v2/", changeset=newer, formats=("text/xml",)),
            endpoint(url="https://a.example/v2/", changeset=newer),
        )
    )
    assert choose_endpoints(discovery) == [
        ("https://a.example/v2", "json"),
        ("https://b.example/v2", "xml"),
    ]


def test_endpoints_without_usable_url_or_format_are_skipped() -> None:
    """An empty or non-http URL and an HTML-only endpoint are not chosen."""
    discovery = Discovery(
        endpoints=(
            endpoint(url=""),
            endpoint(url="ftp://files.example/v2"),
            endpoint(url="https://html.example/v2", formats=("text/html",)),
            endpoint(url="https://good.example/v2"),
        )
    )
    assert choose_endpoints(discovery) == [("https://good.example/v2", "json")]


def test_nothing_qualifies_names_what_was_found() -> None:
    """No usable endpoint is a DecodeError listing each endpoint the document offers."""
    discovery = Discovery(
        endpoints=(endpoint(url="https://html.example/v2", formats=("text/html",)),)
    )
    with pytest.raises(DecodeError, match=r"no GeoReport v2 production endpoint") as caught:
        choose_endpoints(discovery)
    assert "https://html.example/v2 (text/html)" in str(caught.value)
    with pytest.raises(DecodeError, match="no endpoints at all"):
        choose_endpoints(Discovery())


def test_no_test_endpoint_is_an_error_for_test() -> None:
    """Asking for test where only production is listed names the production entry."""
    with pytest.raises(DecodeError, match=r"no GeoReport v2 test endpoint.*production"):
        choose_endpoints(doc("fms_wrapped.json"), environment="test")


def test_bad_environment_is_an_invalid_request() -> None:
    """environment must be production or test; the error names the argument."""
    with pytest.raises(InvalidRequestError, match="environment"):
        choose_endpoints(doc("spec.json"), environment="staging")  # type: ignore[arg-type]


# -- the cache ---------------------------------------------------------------------------------


def test_cache_keeps_a_document_for_its_ttl() -> None:
    """A put document is returned until ttl seconds pass on the clock, then forgotten."""
    clock = VirtualClock(START)
    cache = DiscoveryCache(ttl=60, clock=clock)
    discovery = doc("spec.json")
    assert cache.get("u") is None
    cache.put("u", discovery)
    clock.advance(59)
    assert cache.get("u") is discovery
    clock.advance(1)
    assert cache.get("u") is None
    assert len(cache) == 0


def test_cache_with_zero_ttl_keeps_nothing_and_bounds_its_size() -> None:
    """ttl=0 disables caching; max_entries drops the oldest entries."""
    clock = VirtualClock(START)
    off = DiscoveryCache(ttl=0, clock=clock)
    off.put("u", Discovery())
    assert off.get("u") is None
    small = DiscoveryCache(ttl=60, clock=clock, max_entries=2)
    for url in ("a", "b", "c"):
        small.put(url, Discovery())
    assert small.get("a") is None
    assert small.get("b") is not None
    assert small.get("c") is not None


def test_cache_discard_and_clear() -> None:
    """discard forgets one URL, clear forgets all."""
    cache = DiscoveryCache(clock=VirtualClock(START))
    cache.put("a", Discovery())
    cache.put("b", Discovery())
    cache.discard("a")
    assert cache.get("a") is None
    assert cache.get("b") is not None
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize("ttl", [-1, float("inf"), "60", True])
def test_cache_refuses_a_bad_ttl(ttl: object) -> None:
    """A negative, infinite or non-numeric ttl is an InvalidRequestError naming ttl."""
    with pytest.raises(InvalidRequestError, match="ttl"):
        DiscoveryCache(ttl=ttl)  # type: ignore[arg-type]


# -- fetching, through a client ----------------------------------------------------------------


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock at 2026-01-01."""
    return VirtualClock(START)


@pytest.fixture
def city(clock: VirtualClock) -> FakeCity:
    """A default FakeCity on the virtual clock."""
    return FakeCity(seed=0, clock=clock)


def fetch(
    url: str,
    transport: httpx.BaseTransport | None = None,
    cache: DiscoveryCache | None = None,
    **options: Any,
) -> Discovery:
    """The document at *url*, fetched by a `civic311.Client` made for the purpose."""
    with civic311.Client(discovery_root(url), transport=transport, **options) as client:
        return client.get_discovery(url, cache=cache)


def test_fetch_over_fakecity_and_choose(city: FakeCity, clock: VirtualClock) -> None:
    """get_discovery reads FakeCity's document; its own base URL is the production choice."""
    discovery = fetch(city.discovery_url, city.transport(), cache=DiscoveryCache(clock=clock))
    assert choose_endpoints(discovery) == [(city.base_url, "json")]
    assert [e.specification for e in discovery.endpoints][1].endswith("GeoReport_v3")


def test_fetch_uses_the_cache_until_it_expires(city: FakeCity, clock: VirtualClock) -> None:
    """A second fetch within the TTL asks nothing; after it, the city is asked again."""
    cache = DiscoveryCache(ttl=600, clock=clock)
    with civic311.Client(city.base_url, transport=city.transport()) as client:
        first = client.get_discovery(city.discovery_url, cache=cache)
        assert client.get_discovery(city.discovery_url, cache=cache) is first
        assert [c.path for c in city.calls] == ["discovery"]
        clock.advance(601)
        client.get_discovery(city.discovery_url, cache=cache)
        client.get_discovery(city.discovery_url, cache=None)
    assert [c.path for c in city.calls] == ["discovery"] * 3


def test_fetch_xml_document(city: FakeCity) -> None:
    """The .xml document parses to the same Discovery as the .json one."""
    from_json = fetch(city.discovery_url, city.transport())
    from_xml = fetch(city.discovery_url_for(city.base_url, "xml"), city.transport())
    assert from_xml == from_json


@pytest.mark.anyio
async def test_async_fetch_over_fakecity(city: FakeCity) -> None:
    """AsyncClient.get_discovery reads the same document (asyncio and trio)."""
    async with civic311.AsyncClient(city.base_url, transport=city.transport()) as client:
        discovery = await client.get_discovery(city.discovery_url, cache=None)
    assert choose_endpoints(discovery) == [(city.base_url, "json")]


@pytest.mark.anyio
async def test_async_fetch_errors_become_civic311_errors(city: FakeCity) -> None:
    """Async: a down city is a TransportError, a 503 a ServerError."""
    async with civic311.AsyncClient(city.base_url, transport=city.transport()) as client:
        city.inject(Fault.status(503), path="discovery", times=1)
        with pytest.raises(ServerError):
            await client.get_discovery(city.discovery_url, cache=None)
        city.down()
        with pytest.raises(TransportError):
            await client.get_discovery(city.discovery_url, cache=None)


def test_fetch_over_loopback_lists_the_served_url(city: FakeCity) -> None:
    """Over serve(), the document sits beside the served base URL and lists it."""
    with city.serve() as base_url:
        discovery = fetch(city.discovery_url_for(base_url))
    assert choose_endpoints(discovery) == [(base_url, "json")]
    assert base_url.startswith("http://127.0.0.1:")


def test_fetch_error_status_is_an_api_error(city: FakeCity) -> None:
    """A 404 answer raises NotFoundError and is not cached."""
    cache = DiscoveryCache(clock=city.clock)
    url = "http://fakecity.test/elsewhere/discovery.json"
    with pytest.raises(NotFoundError):
        fetch(url, city.transport(), cache=cache)
    assert cache.get(url) is None


def test_fetch_down_city_is_a_transport_error(city: FakeCity) -> None:
    """A refused connection is a TransportError that says it was never sent."""
    city.down()
    with pytest.raises(TransportError) as caught:
        fetch(city.discovery_url, city.transport())
    assert caught.value.sent is False


def test_fetch_body_over_the_cap(city: FakeCity) -> None:
    """A body over the client's max_response_bytes raises ResponseTooLargeError."""
    with pytest.raises(ResponseTooLargeError):
        fetch(city.discovery_url, city.transport(), max_response_bytes=64)


def test_fetch_maintenance_page_is_a_decode_error_with_url(city: FakeCity) -> None:
    """An HTML page with 200 is a DecodeError carrying the URL and status."""
    city.inject(Fault.maintenance(), path="discovery", times=1)
    with pytest.raises(DecodeError, match="HTTP 200") as caught:
        fetch(city.discovery_url, city.transport())
    assert caught.value.url == city.discovery_url
    assert caught.value.status_code == 200


def _redirecting_to_https(request: httpx.Request) -> httpx.Response:
    if request.url.scheme == "http":
        return httpx.Response(301, headers={"Location": str(request.url.copy_with(scheme="https"))})
    body = fixture_bytes("discovery/spec.json")
    return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})


def test_fetch_follows_redirects() -> None:
    """An http→https redirect is followed (reference §10.37)."""
    discovery = fetch(
        "http://city.example/discovery.json", httpx.MockTransport(_redirecting_to_https)
    )
    assert len(discovery.endpoints) == 3


def test_fetch_follows_redirects_when_the_profile_sends_keys_on_reads() -> None:
    """The discovery GET carries no api_key, so it follows redirects even for a client whose
    profile puts the key on reads (those GETs never follow one)."""
    discovery = fetch(
        "http://city.example/discovery.json",
        httpx.MockTransport(_redirecting_to_https),
        api_key="SECRET-key",
        profile=Profile(api_key_on_reads=True),
    )
    assert len(discovery.endpoints) == 3


@pytest.mark.parametrize("url", ["ftp://city.example/discovery.json", "not a url", ""])
def test_fetch_refuses_a_non_http_url(url: str) -> None:
    """A URL that is not http(s) with a host is refused before any request."""
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(500))
    with civic311.Client("https://city.example/open311", transport=transport) as client:
        with pytest.raises(InvalidRequestError, match="discovery_url"):
            client.get_discovery(url, cache=None)
        with pytest.raises(InvalidRequestError, match="discovery_url"):
            civic311.Client.from_discovery(url, transport=transport)
    assert seen == []


def test_discovery_root_is_the_documents_directory() -> None:
    """discovery_root drops the file name, query and fragment."""
    assert discovery_root("https://city.example/open311/discovery.json?x=1#top") == (
        "https://city.example/open311"
    )
    assert discovery_root("http://127.0.0.1:8000/discovery.xml") == "http://127.0.0.1:8000"


def test_discovery_module_does_no_io() -> None:
    """civic311.discovery parses and chooses only: it imports no client and sends nothing."""
    import civic311.discovery as module

    source = Path(module.__file__).read_text(encoding="utf-8")
    assert "_client" not in source
    assert not any(
        name in source for name in (".send(", ".stream(", "httpx.Client(", "httpx.AsyncClient(")
    )


# -- from_discovery: the document comes through the client's own exchange ------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves a discovery document listing this server's /v2, and /v2/services.json, recording
    the headers of every request; ``padding`` bytes of extras make the document large."""

    seen: ClassVar[list[dict[str, str]]] = []
    padding: ClassVar[int] = 0

    def do_GET(self) -> None:
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        base = f"http://127.0.0.1:{self.server.server_address[1]}/v2"
        if self.path == "/discovery.json":
            document = {
                "endpoints": [
                    {
                        "specification": GEOREPORT_V2,
                        "url": base,
                        "type": "production",
                        "formats": ["application/json"],
                    }
                ],
                "padding": "x" * self.padding,
            }
            body = json.dumps(document).encode()
        elif self.path == "/v2/services.json":
            body = b'[{"service_code": "001", "service_name": "Pothole"}]'
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served() -> Iterator[tuple[type[_Handler], str]]:
    """A small discovery server on 127.0.0.1 (fresh records, small document), and its URL."""
    handler = type("Handler", (_Handler,), {"seen": [], "padding": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    default_cache.clear()
    try:
        yield handler, f"http://127.0.0.1:{server.server_address[1]}/discovery.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        default_cache.clear()


def test_from_discovery_fetches_with_the_clients_user_agent_and_headers(
    served: tuple[type[_Handler], str],
) -> None:
    """Over real HTTP the discovery GET carries civic311's User-Agent and the client's extra
    headers, like every other call; and the client made goes on to work."""
    handler, url = served
    with civic311.Client.from_discovery(url, headers={"X-App": "tests"}, timeout=5) as client:
        assert [s.service_code for s in client.list_services()] == ["001"]
    assert len(handler.seen) == 2
    assert {seen["user-agent"] for seen in handler.seen} == {USER_AGENT}
    assert {seen["x-app"] for seen in handler.seen} == {"tests"}


@pytest.mark.anyio
async def test_async_from_discovery_fetches_with_the_clients_user_agent(
    served: tuple[type[_Handler], str],
) -> None:
    """AsyncClient.from_discovery (asyncio and trio) fetches over loopback with civic311's UA."""
    handler, url = served
    client = await civic311.AsyncClient.from_discovery(url, timeout=5)
    async with client:
        assert await client.list_services()
    assert [seen["user-agent"] for seen in handler.seen] == [USER_AGENT, USER_AGENT]


def test_from_discovery_applies_the_response_cap(served: tuple[type[_Handler], str]) -> None:
    """max_response_bytes bounds the discovery document too: a larger one is refused, a
    smaller one is read."""
    handler, url = served
    handler.padding = 20_000
    with pytest.raises(ResponseTooLargeError, match="max_response_bytes"):
        civic311.Client.from_discovery(url, max_response_bytes=10_000, timeout=5)
    with civic311.Client.from_discovery(url, max_response_bytes=30_000, timeout=5) as client:
        assert client.endpoints[0].endswith("/v2")


@pytest.mark.anyio
async def test_async_from_discovery_applies_the_response_cap(
    served: tuple[type[_Handler], str],
) -> None:
    """The async twin refuses the oversized document as well (asyncio and trio)."""
    handler, url = served
    handler.padding = 20_000
    with pytest.raises(ResponseTooLargeError):
        await civic311.AsyncClient.from_discovery(url, max_response_bytes=10_000, timeout=5)


def test_from_discovery_checks_the_ca_bundle_before_fetching(
    served: tuple[type[_Handler], str], tmp_path: Path
) -> None:
    """A ca_bundle that cannot be loaded stops from_discovery before anything is sent (it used
    to fetch the document over a default TLS set-up first)."""
    handler, url = served
    with pytest.raises(InvalidRequestError, match="ca_bundle"):
        civic311.Client.from_discovery(url, ca_bundle=str(tmp_path / "missing.pem"))
    assert handler.seen == []


def test_from_discovery_keeps_the_fetching_http_client(
    served: tuple[type[_Handler], str],
) -> None:
    """The document and the calls go through one httpx client, made with the ca_bundle's TLS
    context, owned (and closed) by the client; a given http_client is left open."""
    certifi = pytest.importorskip("certifi")
    _, url = served
    client = civic311.Client.from_discovery(url, ca_bundle=certifi.where())
    with client:
        pool = getattr(client._http._transport, "_pool", None)
        context = getattr(pool, "_ssl_context", None)
        assert isinstance(context, ssl.SSLContext)
        assert context.cert_store_stats()["x509_ca"] > 10
    assert client._http.is_closed
    default_cache.clear()
    with httpx.Client() as mine:
        with civic311.Client.from_discovery(url, http_client=mine) as client:
            assert client._http is mine
        assert not mine.is_closed


# -- FakeCity's document -----------------------------------------------------------------------


def test_fakecity_discovery_urls() -> None:
    """discovery_url sits beside the base path; discovery_url_for works for any base URL."""
    city = FakeCity()
    assert city.discovery_url == "http://fakecity.test/open311/discovery.json"
    assert (
        FakeCity.discovery_url_for("http://127.0.0.1:8000/open311/v2/", "xml")
        == "http://127.0.0.1:8000/open311/discovery.xml"
    )
    assert FakeCity(base_path="/v2").discovery_url == "http://fakecity.test/discovery.json"


def test_fakecity_xml_only_city_lists_only_text_xml(clock: VirtualClock) -> None:
    """An XML-only dialect advertises text/xml alone, so XML is chosen."""
    city = FakeCity(clock=clock, dialect=Dialect.xml_only())
    discovery = fetch(city.discovery_url, city.transport())
    assert discovery.endpoints[0].formats == ("text/xml",)
    assert choose_endpoints(discovery) == [(city.base_url, "xml")]


def test_fakecity_custom_endpoints_in_order(clock: VirtualClock) -> None:
    """discovery_endpoints sets the listed endpoints, in order; None URL means the city."""
    city = FakeCity(
        clock=clock,
        discovery_endpoints=[
            DiscoveryEndpointSpec(url="http://mirror.test/open311/v2"),
            DiscoveryEndpointSpec(),
            DiscoveryEndpointSpec(url="http://staging.test/open311/v2", type="test"),
        ],
    )
    city.discovery_endpoints.append(DiscoveryEndpointSpec(url="http://backup.test/open311/v2"))
    discovery = fetch(city.discovery_url, city.transport())
    assert [url for url, _ in choose_endpoints(discovery)] == [
        "http://mirror.test/open311/v2",
        city.base_url,
        "http://backup.test/open311/v2",
    ]
    assert choose_endpoints(discovery, environment="test") == [
        ("http://staging.test/open311/v2", "json")
    ]


def test_fakecity_discovery_refuses_post_and_other_extensions(city: FakeCity) -> None:
    """POST is 405 with Allow: GET; discovery.html is a 404; the v2 API is untouched."""
    with httpx.Client(transport=city.transport(), base_url=city.base_url) as http:
        posted = http.post(city.discovery_url)
        assert posted.status_code == 405
        assert posted.headers["Allow"] == "GET"
        assert http.get(city.discovery_url_for(city.base_url, "html")).status_code == 404
        assert http.get("services.json").status_code == 200
        assert http.get("discovery.json").status_code == 404  # not inside the v2 base path
