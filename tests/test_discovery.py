"""Service Discovery (reference §7): parsing what servers really send, choosing endpoints,
the TTL cache, fetching, and FakeCity's discovery document."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from civic311.discovery import (
    GEOREPORT_V2,
    Discovery,
    DiscoveryCache,
    DiscoveryEndpoint,
    afetch_discovery,
    choose_endpoints,
    fetch_discovery,
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


# -- fetching ----------------------------------------------------------------------------------


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock at 2026-01-01."""
    return VirtualClock(START)


@pytest.fixture
def city(clock: VirtualClock) -> FakeCity:
    """A default FakeCity on the virtual clock."""
    return FakeCity(seed=0, clock=clock)


def test_fetch_over_fakecity_and_choose(city: FakeCity, clock: VirtualClock) -> None:
    """fetch_discovery reads FakeCity's document; its own base URL is the production choice."""
    cache = DiscoveryCache(clock=clock)
    with httpx.Client(transport=city.transport()) as http:
        discovery = fetch_discovery(city.discovery_url, http, cache=cache)
    assert choose_endpoints(discovery) == [(city.base_url, "json")]
    assert [e.specification for e in discovery.endpoints][1].endswith("GeoReport_v3")


def test_fetch_uses_the_cache_until_it_expires(city: FakeCity, clock: VirtualClock) -> None:
    """A second fetch within the TTL asks nothing; after it, the city is asked again."""
    cache = DiscoveryCache(ttl=600, clock=clock)
    with httpx.Client(transport=city.transport()) as http:
        first = fetch_discovery(city.discovery_url, http, cache=cache)
        assert fetch_discovery(city.discovery_url, http, cache=cache) is first
        assert [c.path for c in city.calls] == ["discovery"]
        clock.advance(601)
        fetch_discovery(city.discovery_url, http, cache=cache)
        fetch_discovery(city.discovery_url, http, cache=None)
    assert [c.path for c in city.calls] == ["discovery"] * 3


def test_fetch_xml_document(city: FakeCity) -> None:
    """The .xml document parses to the same Discovery as the .json one."""
    with httpx.Client(transport=city.transport()) as http:
        from_json = fetch_discovery(city.discovery_url, http, cache=None)
        from_xml = fetch_discovery(city.discovery_url_for(city.base_url, "xml"), http, cache=None)
    assert from_xml == from_json


@pytest.mark.anyio
async def test_afetch_over_fakecity(city: FakeCity) -> None:
    """afetch_discovery reads the same document over an AsyncClient."""
    async with httpx.AsyncClient(transport=city.transport()) as http:
        discovery = await afetch_discovery(city.discovery_url, http, cache=None)
    assert choose_endpoints(discovery) == [(city.base_url, "json")]


@pytest.mark.anyio
async def test_afetch_errors_become_civic311_errors(city: FakeCity) -> None:
    """Async: a down city is a TransportError, a 503 a ServerError."""
    async with httpx.AsyncClient(transport=city.transport()) as http:
        city.inject(Fault.status(503), path="discovery", times=1)
        with pytest.raises(ServerError):
            await afetch_discovery(city.discovery_url, http, cache=None)
        city.down()
        with pytest.raises(TransportError):
            await afetch_discovery(city.discovery_url, http, cache=None)


def test_fetch_over_loopback_lists_the_served_url(city: FakeCity) -> None:
    """Over serve(), the document sits beside the served base URL and lists it."""
    with city.serve() as base_url, httpx.Client() as http:
        discovery = fetch_discovery(city.discovery_url_for(base_url), http, cache=None)
    assert choose_endpoints(discovery) == [(base_url, "json")]
    assert base_url.startswith("http://127.0.0.1:")


def test_fetch_error_status_is_an_api_error(city: FakeCity) -> None:
    """A 404 answer raises NotFoundError and is not cached."""
    cache = DiscoveryCache(clock=city.clock)
    url = "http://fakecity.test/elsewhere/discovery.json"
    with httpx.Client(transport=city.transport()) as http, pytest.raises(NotFoundError):
        fetch_discovery(url, http, cache=cache)
    assert cache.get(url) is None


def test_fetch_down_city_is_a_transport_error(city: FakeCity) -> None:
    """A refused connection is a TransportError that says it was never sent."""
    city.down()
    http = httpx.Client(transport=city.transport())
    with http, pytest.raises(TransportError) as caught:
        fetch_discovery(city.discovery_url, http, cache=None)
    assert caught.value.sent is False


def test_fetch_body_over_the_cap(city: FakeCity) -> None:
    """A body over max_bytes raises ResponseTooLargeError."""
    with httpx.Client(transport=city.transport()) as http, pytest.raises(ResponseTooLargeError):
        fetch_discovery(city.discovery_url, http, cache=None, max_bytes=64)


def test_fetch_maintenance_page_is_a_decode_error_with_url(city: FakeCity) -> None:
    """An HTML page with 200 is a DecodeError carrying the URL and status."""
    city.inject(Fault.maintenance(), path="discovery", times=1)
    http = httpx.Client(transport=city.transport())
    with http, pytest.raises(DecodeError, match="HTTP 200") as caught:
        fetch_discovery(city.discovery_url, http, cache=None)
    assert caught.value.url == city.discovery_url
    assert caught.value.status_code == 200


def test_fetch_follows_redirects() -> None:
    """An http→https redirect is followed (reference §10.37)."""
    body = fixture_bytes("discovery/spec.json")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            return httpx.Response(
                301, headers={"Location": str(request.url.copy_with(scheme="https"))}
            )
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        discovery = fetch_discovery("http://city.example/discovery.json", http, cache=None)
    assert len(discovery.endpoints) == 3


@pytest.mark.parametrize("url", ["ftp://city.example/discovery.json", "not a url", ""])
def test_fetch_refuses_a_non_http_url(url: str) -> None:
    """A URL that is not http(s) with a host is refused before any request."""
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    with http, pytest.raises(InvalidRequestError, match="discovery_url"):
        fetch_discovery(url, http, cache=None)


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
    with httpx.Client(transport=city.transport()) as http:
        discovery = fetch_discovery(city.discovery_url, http, cache=None)
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
    with httpx.Client(transport=city.transport()) as http:
        discovery = fetch_discovery(city.discovery_url, http, cache=None)
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
