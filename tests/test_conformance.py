"""Conformance: every case of reference §10, "Conformance cases a client must handle".

Each test names its case (§10.N) and runs a real payload, taken from the spec's examples or the
servers the reference describes, through the public API (`civic311.Client` and `AsyncClient`
over `httpx.MockTransport`). A few cases are about one layer and test it there (the wire
decoder, the converter, the POST form). Payloads live in ``tests/fixtures/conformance/``,
named by case; one-liners are inline.

Cases that need capabilities still to come (harvesting, paging, profiles, media upload,
transport resilience) are written anyway and marked ``xfail(strict=True)`` with the issue they
wait on.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

import civic311
from civic311._w3c import parse_datetime
from civic311._wire import decode
from civic311._wire.errors import error_details
from civic311._wire.form import new_request_fields
from civic311._wire.shapes import one_object
from civic311.cities import CityStatusWarning

BASE = "https://city.example/open311/v2"
FIXTURES = Path(__file__).parent / "fixtures" / "conformance"
XML_TYPE = "text/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
UTC = timezone.utc
W3C_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")

REAL_CITIES = "Real cities issue (#5): {} not built yet"
RESILIENCE = "Resilience issue (#4): {} not built yet"


# --- helpers ---------------------------------------------------------------------------------


def payload(name: str) -> bytes:
    """The bytes of a conformance fixture."""
    return (FIXTURES / name).read_bytes()


def fmt_of(body: bytes | str) -> str:
    """The format a body is in, by its first significant byte."""
    raw = body.encode() if isinstance(body, str) else body
    return "xml" if raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<" else "json"


@dataclass(frozen=True)
class Reply:
    """One canned answer. `content_type` "" guesses from the body; None sends no header."""

    body: bytes | str = b""
    status: int = 200
    content_type: str | None = ""
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> httpx.Response:
        body = self.body.encode() if isinstance(self.body, str) else self.body
        headers = dict(self.headers)
        content_type = self.content_type
        if content_type == "":
            content_type = XML_TYPE if fmt_of(body) == "xml" else JSON_TYPE
        if content_type is not None:
            headers["Content-Type"] = content_type
        return httpx.Response(self.status, content=body, headers=headers)


Answer = Reply | bytes | str | Exception | Callable[[httpx.Request], httpx.Response]


class City:
    """A MockTransport handler: answers in turn (the last answer repeats), keeps every request."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, bytes | str):
            answer = Reply(answer)
        if isinstance(answer, Reply):
            return answer.response()
        return answer(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


class FakeClock:
    """A `civic311.Clock` whose sleeps return at once and are recorded."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.elapsed)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += max(seconds, 0.0)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def client(city: City, fmt: str = "json", **kwargs: Any) -> civic311.Client:
    kwargs.setdefault("clock", FakeClock())
    return civic311.Client(BASE, transport=httpx.MockTransport(city), format=fmt, **kwargs)


def aclient(city: City, fmt: str = "json", **kwargs: Any) -> civic311.AsyncClient:
    kwargs.setdefault("clock", FakeClock())
    return civic311.AsyncClient(BASE, transport=httpx.MockTransport(city), format=fmt, **kwargs)


def form(request: httpx.Request) -> list[tuple[str, str]]:
    """The decoded fields of a POST form body, in order."""
    return parse_qsl(request.content.decode("ascii"), keep_blank_values=True, encoding="utf-8")


def cause(error: BaseException) -> BaseException:
    """The error behind a call the client retried until it gave up (AllEndpointsFailedError
    lists every attempt; the last one says what the city answered), else *error* itself."""
    if isinstance(error, civic311.AllEndpointsFailedError) and error.last_error is not None:
        return error.last_error
    return error


def sinkhole(**overrides: Any) -> civic311.NewRequest:
    """The spec's example POST (§2.3)."""
    fields: dict[str, Any] = {
        "service_code": "001",
        "lat": 37.76524078,
        "long": -122.4212043,
        "address_string": "1234 5th street",
        "description": "A large sinkhole is destroying the street",
    }
    fields.update(overrides)
    return civic311.NewRequest(**fields)


def requests_json(*records: dict[str, Any]) -> str:
    return json.dumps(list(records))


# --- §10.1 POST response shapes --------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "01_post_array.json",
        "01_post_bare_object.json",
        "01_post_wrapped.json",
        "01_post_response.xml",
    ],
)
def test_01_post_response_in_any_shape_is_one_receipt(name: str) -> None:
    """§10.1: a POST answer as array of one, bare object, wrapper or XML gives one Receipt."""
    city = City(payload(name))
    fmt = fmt_of(payload(name))
    with client(city, fmt, api_key="xyz") as c:
        receipt = c.submit(sinkhole())
    assert receipt.service_request_id == "293944"
    assert receipt.token is None
    assert receipt.service_notice is not None
    assert receipt.service_notice.startswith("The City will inspect")
    assert receipt.account_id is None
    assert city.last.method == "POST"
    assert city.last.url.path == f"/open311/v2/requests.{fmt}"


@pytest.mark.anyio
async def test_01_async_post_array_of_one_is_one_receipt() -> None:
    """§10.1: AsyncClient reads the spec's array-of-one POST answer as one Receipt."""
    city = City(payload("01_post_array.json"))
    async with aclient(city, api_key="xyz") as c:
        receipt = await c.submit(sinkhole())
    assert receipt.service_request_id == "293944"
    assert receipt.account_id is None


# --- §10.2 token-only POST (batch) -----------------------------------------------------------


@pytest.mark.parametrize("name", ["02_post_token.json", "02_post_token.xml"])
def test_02_token_only_post_gives_a_token_receipt(name: str) -> None:
    """§10.2: a batch POST answer with only a token is a Receipt holding that token."""
    city = City(payload(name))
    with client(city, fmt_of(payload(name)), api_key="xyz") as c:
        receipt = c.submit(sinkhole())
    assert receipt.service_request_id is None
    assert receipt.token == "12345"
    assert receipt.tracking_id == "12345"


def test_02_wait_for_id_polls_the_token_with_backoff_until_an_id() -> None:
    """§10.2: wait_for_id polls GET tokens/{token} with growing waits until an id appears."""
    city = City(
        payload("02_post_token.json"),
        payload("02_token_pending.json"),
        payload("02_token_pending.json"),
        payload("02_token_ready.json"),
    )
    clock = FakeClock()
    with client(city, api_key="xyz", clock=clock) as c:
        receipt = c.submit(sinkhole())
        assert c.wait_for_id(receipt) == "638344"
    polls = city.requests[1:]
    assert [(r.method, r.url.path) for r in polls] == [("GET", "/open311/v2/tokens/12345.json")] * 3
    assert all("api_key" not in r.url.params for r in polls)
    assert len(clock.sleeps) == 2
    assert 0 < clock.sleeps[0] < clock.sleeps[1]


def test_02_token_lookup_in_xml_gives_the_id() -> None:
    """§10.2: the XML token answer (spec §2.4, numeric id and token) gives string id and token."""
    city = City(payload("02_token_ready.xml"))
    with client(city, "xml") as c:
        status = c.get_token("12345")
    assert status.service_request_id == "638344"
    assert status.token == "12345"
    assert not status.pending
    assert city.last.url.path == "/open311/v2/tokens/12345.xml"


@pytest.mark.anyio
async def test_02_async_wait_for_id_polls_until_an_id() -> None:
    """§10.2: AsyncClient.wait_for_id polls the token, sleeping through its clock, until an id."""
    city = City(payload("02_token_pending.json"), payload("02_token_ready.json"))
    clock = FakeClock()
    async with aclient(city, clock=clock) as c:
        assert await c.wait_for_id("12345") == "638344"
    assert len(city.requests) == 2
    assert len(clock.sleeps) == 1


# --- §10.3 blackbox services -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'<?xml version="1.0" encoding="utf-8"?>\n<service_requests/>',
        b'[{"service_notice":"Thank you. Your report has been passed to the council."}]',
        b"",
        b"[{}]",
        b'<?xml version="1.0" encoding="utf-8"?>\n<service_requests><request/></service_requests>',
    ],
    ids=["empty-array", "empty-xml", "notice-only", "empty-body", "empty-object", "empty-request"],
)
def test_03_blackbox_post_with_neither_id_nor_token_is_success(body: bytes) -> None:
    """§10.3: a blackbox POST answer with neither id nor token is success, not an error."""
    city = City(Reply(body, content_type=JSON_TYPE if fmt_of(body) == "json" else XML_TYPE))
    with client(city, api_key="xyz") as c:
        receipt = c.submit(sinkhole())
        assert receipt.service_request_id is None
        assert receipt.token is None
        assert receipt.tracking_id is None
        with pytest.raises(civic311.UntrackableReceiptError):
            c.wait_for_id(receipt)
    assert len(city.requests) == 1


# --- §10.4 not-yet-processed requests --------------------------------------------------------


def test_04_token_lookup_without_id_is_pending() -> None:
    """§10.4: a token answer with only the token (Chicago) is pending, not an error."""
    city = City(payload("02_token_pending.json"))
    with client(city) as c:
        status = c.get_token("12345")
    assert status.pending
    assert status.service_request_id is None
    assert status.token == "12345"


def test_04_wait_for_id_gives_up_after_timeout_keeping_the_token() -> None:
    """§10.4: a token that stays pending ends in WaitTimeoutError that carries the token."""
    city = City(payload("02_token_pending.json"))
    clock = FakeClock()
    with client(city, clock=clock) as c, pytest.raises(civic311.WaitTimeoutError) as info:
        c.wait_for_id("12345", timeout=30)
    assert info.value.token == "12345"
    assert info.value.polls == len(city.requests) > 2
    assert all(r.url.path == "/open311/v2/tokens/12345.json" for r in city.requests)
    assert clock.elapsed == pytest.approx(30)


def test_04_request_with_token_and_submitted_status_falls_back_to_token() -> None:
    """§10.4: GET requests/{id} giving token + status "submitted" (Baltimore) keeps the token."""
    city = City(payload("04_baltimore_submitted.json"))
    with client(city) as c:
        request = c.get_request("4f2a9c1e8b7d")
    assert request.service_request_id is None
    assert request.token == "4f2a9c1e8b7d"
    assert request.status == "submitted"
    assert request.status is not None
    assert request.status.is_open
    assert (request.service_request_id or request.token) == "4f2a9c1e8b7d"


# --- §10.5 list items without service_request_id ---------------------------------------------


@pytest.mark.parametrize("name", ["05_chicago_requests.json", "05_chicago_requests.xml"])
def test_05_requests_without_id_are_skipped(name: str) -> None:
    """§10.5: GET requests items without service_request_id (Chicago) are skipped, not fatal."""
    city = City(payload(name))
    with client(city, fmt_of(payload(name))) as c:
        found = c.list_requests()
    assert [r.service_request_id for r in found] == ["14-01100669", "14-01100671"]


# --- §10.6 single request lookup -------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["06_request_array.json", "06_request_bare_object.json", "06_request.xml"]
)
def test_06_single_request_as_array_of_one_or_bare_object(name: str) -> None:
    """§10.6: GET requests/{id} as array of one (spec), bare object (v2.1) or XML: one request."""
    city = City(payload(name))
    fmt = fmt_of(payload(name))
    with client(city, fmt) as c:
        request = c.get_request("638344")
    assert request.service_request_id == "638344"
    assert request.status == "closed"
    assert request.is_closed
    assert request.service_code == "006"
    assert request.address_id == "545483"
    assert request.zipcode == "94122"
    assert city.last.url.path == f"/open311/v2/requests/638344.{fmt}"


def test_06_json_and_xml_single_request_decode_to_the_same_model() -> None:
    """§10.6: the spec's single request in JSON (array of one) and XML give equal models."""
    with client(City(payload("06_request_array.json"))) as c:
        from_json = c.get_request("638344")
    with client(City(payload("06_request.xml")), "xml") as c:
        from_xml = c.get_request("638344")
    assert from_json == from_xml


@pytest.mark.anyio
async def test_06_async_bare_object_is_one_request() -> None:
    """§10.6: AsyncClient accepts the v2.1 bare-object answer to GET requests/{id}."""
    city = City(payload("06_request_bare_object.json"))
    async with aclient(city) as c:
        request = await c.get_request("638344")
    assert request.service_request_id == "638344"


# --- §10.7 empty lists -----------------------------------------------------------------------

EMPTY_SERVICES = [
    b"[]",
    b'{"services":[]}',
    b"<services/>",
    b"<services></services>",
    b'<?xml version="1.0" encoding="utf-8"?>\n<services>\n  \n</services>\n',
    b'<?xml version="1.0" encoding="UTF-8"?>\n<services type="array"/>\n',
]

EMPTY_REQUESTS = [
    b"[]",
    b'{"service_requests":[]}',
    b"<service_requests/>",
    b"<service_requests></service_requests>",
    b'<?xml version="1.0" encoding="UTF-8"?>\n<service_requests type="array">\n</service_requests>',
    b'<?xml version="1.0" encoding="utf-8"?>\n<requests/>',
]


@pytest.mark.parametrize("body", EMPTY_SERVICES)
def test_07_empty_service_list_is_an_empty_list(body: bytes) -> None:
    """§10.7: [], <services/>, <services></services>, a root with no children → []."""
    with client(City(body), fmt_of(body)) as c:
        assert c.list_services() == []


@pytest.mark.parametrize("body", EMPTY_REQUESTS)
def test_07_empty_request_list_is_an_empty_list(body: bytes) -> None:
    """§10.7: [], <service_requests/>, Rails and 6aika empty roots → an empty request list."""
    with client(City(body), fmt_of(body)) as c:
        assert c.list_requests() == []


# --- §10.8 XML single-child collapse ---------------------------------------------------------


def test_08_one_request_child_is_a_list_of_one() -> None:
    """§10.8: one <request> child still decodes to a list of one."""
    with client(City(payload("08_single_request.xml")), "xml") as c:
        found = c.list_requests()
    assert len(found) == 1
    assert found[0].service_request_id == "638344"


def test_08_one_service_child_is_a_list_of_one() -> None:
    """§10.8: one <service> child still decodes to a list of one."""
    with client(City(payload("08_single_service.xml")), "xml") as c:
        services = c.list_services()
    assert [s.service_code for s in services] == ["001"]


def test_08_one_attribute_with_one_value_are_lists_of_one() -> None:
    """§10.8: one <attribute> with one <value> still gives one-item attribute and value lists."""
    with client(City(payload("08_single_attribute.xml")), "xml") as c:
        definition = c.get_service_definition("DMV66")
    assert len(definition.attributes) == 1
    attribute = definition.attributes[0]
    assert attribute.code == "WHISHETN"
    assert attribute.values == (civic311.AttributeValue(key="123", name="Ford"),)


def test_08_one_endpoint_and_one_format_are_lists_in_the_wire_layer() -> None:
    """§10.8: a discovery document's single <endpoint> and single <format> decode to lists."""
    decoded = decode(payload("08_discovery_single.xml"), "xml")
    assert decoded.root == "discovery"
    assert isinstance(decoded.data["endpoints"], list)
    assert len(decoded.data["endpoints"]) == 1
    assert decoded.data["endpoints"][0]["formats"] == ["text/xml"]
    assert decoded.data["endpoints"][0]["url"] == "https://api.city.gov/dev/v2"


@pytest.mark.anyio
async def test_08_async_one_request_child_is_a_list_of_one() -> None:
    """§10.8: AsyncClient also reads one <request> child as a list of one."""
    async with aclient(City(payload("08_single_request.xml")), "xml") as c:
        found = await c.list_requests()
    assert [r.service_request_id for r in found] == ["638344"]


# --- §10.9 JSON wrapped in objects -----------------------------------------------------------


def test_09_services_wrapped_in_an_object() -> None:
    """§10.9: {"services":[…]} (FixMyStreet/Zürich) is the service list."""
    with client(City(payload("09_fms_services.json"))) as c:
        services = c.list_services()
    assert [s.service_code for s in services] == ["Abfall", "Strassenlampe"]
    assert [s.metadata for s in services] == [False, False]


def test_09_service_requests_wrapped_in_an_object() -> None:
    """§10.9: {"service_requests":[…]} (FixMyStreet) is the request list."""
    with client(City(payload("09_fms_requests.json"))) as c:
        found = c.list_requests()
    assert [r.service_request_id for r in found] == ["8762"]
    assert found[0].lat == pytest.approx(47.378177)
    assert found[0].agency_responsible == "Entsorgung + Recycling Zürich"


def test_09_service_definition_wrapped_in_an_object() -> None:
    """§10.9: {"service_definition":{…}} is the service definition."""
    with client(City(payload("09_definition_wrapped.json"))) as c:
        definition = c.get_service_definition("DMV66")
    assert definition.service_code == "DMV66"
    assert [a.code for a in definition.attributes] == ["WHISHETN"]


def test_09_discovery_wrapped_in_an_object_unwraps_in_the_wire_layer() -> None:
    """§10.9: {"discovery":{…}} (FixMyStreet) unwraps to the discovery object."""
    decoded = decode(payload("09_discovery_wrapped.json"), "json")
    discovery = one_object(decoded.data, ("discovery",), "discovery")
    assert discovery["changeset"] == "2021-03-01T00:00:00Z"
    assert discovery["endpoints"][0]["url"] == "https://www.zueriwieneu.ch/open311/v2"
    assert "application/json" in discovery["endpoints"][0]["formats"]


# --- §10.10 service definition is an object --------------------------------------------------


@pytest.mark.parametrize(
    "name", ["10_definition.json", "10_definition_array.json", "10_definition.xml"]
)
def test_10_service_definition_object_or_array_of_one(name: str) -> None:
    """§10.10: a definition as an object (spec), an array of one, or XML is one definition."""
    fmt = fmt_of(payload(name))
    city = City(payload(name))
    with client(city, fmt) as c:
        definition = c.get_service_definition("DMV66")
    assert definition.service_code == "DMV66"
    assert [a.code for a in definition.attributes] == ["WHISHETN"]
    assert city.last.url.path == f"/open311/v2/services/DMV66.{fmt}"


def test_10_service_definition_array_of_two_is_a_decode_error() -> None:
    """§10.10: an array of two definitions is the wrong shape: DecodeError, not a guess."""
    body = b'[{"service_code":"DMV66","attributes":[]},{"service_code":"DMV67","attributes":[]}]'
    with client(City(body)) as c, pytest.raises(civic311.Civic311Error) as info:
        c.get_service_definition("DMV66")
    assert isinstance(cause(info.value), civic311.DecodeError)


# --- §10.11 attribute values -----------------------------------------------------------------


def test_11_numeric_value_keys_become_strings() -> None:
    """§10.11: JSON values [{key: 123, name}] (spec example) give str keys "123", "124"."""
    with client(City(payload("10_definition.json"))) as c:
        definition = c.get_service_definition("DMV66")
    attribute = definition.attribute("WHISHETN")
    assert attribute is not None
    assert attribute.values == (
        civic311.AttributeValue(key="123", name="Ford"),
        civic311.AttributeValue(key="124", name="Chrysler"),
    )
    assert attribute.value_keys() == frozenset({"123", "124"})
    assert attribute.datatype == "singlevaluelist"
    assert attribute.datatype.is_list
    assert attribute.datatype_description is None


def test_11_xml_and_json_values_decode_to_the_same_definition() -> None:
    """§10.11: <values><value><key>/<name> XML equals the JSON values array, keys as str."""
    with client(City(payload("10_definition.json"))) as c:
        from_json = c.get_service_definition("DMV66")
    with client(City(payload("10_definition.xml")), "xml") as c:
        from_xml = c.get_service_definition("DMV66")
    assert from_json == from_xml


# --- §10.12 attributes on a service request --------------------------------------------------


def test_12_sf_attribute_array_on_a_request_is_kept_raw() -> None:
    """§10.12: SF's attributes array [{label,name,value,code}] on a request is kept as sent."""
    with client(City(payload("12_sf_attributes.json"))) as c:
        (request,) = c.list_requests()
    raw = json.loads(payload("12_sf_attributes.json"))[0]["attributes"]
    assert request.extras["attributes"] == raw
    assert civic311.from_dict(civic311.ServiceRequest, civic311.to_dict(request)) == request


def test_12_chicago_attribute_map_on_a_request_is_kept_raw() -> None:
    """§10.12: Chicago's attributes object map {"CODE":"VALUE"} on a request is kept as sent."""
    with client(City(payload("12_chicago_attributes.json"))) as c:
        (request,) = c.list_requests()
    assert request.extras["attributes"] == {
        "WHERETHE": "TRAFFIC",
        "ISTHEPOT": "Y",
        "A511OPTN": "NONE",
    }
    assert civic311.from_dict(civic311.ServiceRequest, civic311.to_dict(request)) == request


# --- §10.13 ids and codes are strings --------------------------------------------------------


def test_13_unquoted_leading_zero_codes_in_invalid_json_stay_strings() -> None:
    """§10.13: the spec's invalid JSON "service_code":001 / 006 gives "001" / "006"."""
    with client(City(payload("13_services_invalid_json.json"))) as c:
        services = c.list_services()
    assert [s.service_code for s in services] == ["001", "002", "006"]


def test_13_leading_zero_repair_leaves_text_inside_strings_alone() -> None:
    """§10.13: repairing "service_code":001 must not touch "9:00," inside a description."""
    with client(City(payload("13_services_invalid_json_times.json"))) as c:
        services = c.list_services()
    assert [s.service_code for s in services] == ["001", "002"]
    assert services[0].description == (
        "Cans must be off the curb by 9:00, the morning after collection."
    )


def test_13_ids_and_codes_of_every_style_are_kept_as_strings() -> None:
    """§10.13: numeric, Chicago, Accela, UUID and zero-led ids and codes are str, never int."""
    with client(City(payload("13_requests_ids.json"))) as c:
        found = c.list_requests()
    assert [r.service_request_id for r in found] == [
        "638344",
        "14-01100669",
        "ISLANDTON-14CAP-00000-00070",
        "6d0a5b3e-3c2b-4f7e-9a55-0f4b3c1e2d77",
        "00042",
    ]
    assert [r.service_code for r in found] == [
        "006",
        "4ffa9cad6018277d4000007b",
        "ServiceRequest/Animals/Animal Nuisance/NA",
        "0001",
        "001",
    ]
    assert civic311.to_dict(found[4])["service_request_id"] == "00042"


def test_13_xml_code_with_leading_zeros_stays_a_string() -> None:
    """§10.13: <service_code>001</service_code> is "001"."""
    with client(City(payload("08_single_service.xml")), "xml") as c:
        (service,) = c.list_services()
    assert service.service_code == "001"


def test_13_codes_and_ids_go_into_paths_quoted_not_cast() -> None:
    """§10.13: codes with "/" and spaces (Accela) and zero-led ids are sent verbatim, quoted."""
    city = City(
        b'{"service_code":"ServiceRequest/Animals/Animal Nuisance/NA","attributes":[]}',
        payload("06_request_bare_object.json"),
    )
    with client(city) as c:
        definition = c.get_service_definition("ServiceRequest/Animals/Animal Nuisance/NA")
        c.get_request("00042")
    assert definition.service_code == "ServiceRequest/Animals/Animal Nuisance/NA"
    assert city.requests[0].url.raw_path == (
        b"/open311/v2/services/ServiceRequest%2FAnimals%2FAnimal%20Nuisance%2FNA.json"
    )
    assert city.requests[1].url.raw_path == b"/open311/v2/requests/00042.json"


# --- §10.14 lat/long as strings or numbers ---------------------------------------------------


def test_14_coordinates_as_strings_numbers_missing_or_zero() -> None:
    """§10.14: lat/long as strings or numbers parse to float; missing/null is None; 0 stays 0."""
    with client(City(payload("14_coordinates.json"))) as c:
        found = c.list_requests()
    assert [(r.lat, r.long) for r in found] == [
        (41.3083, -72.9279),
        (41.3083, -72.9279),
        (None, None),
        (0.0, 0.0),
        (None, None),
    ]
    assert isinstance(found[0].lat, float)
    assert isinstance(found[3].long, float)


def test_14_xml_coordinates_are_floats() -> None:
    """§10.14: XML lat/long (always text) parse to floats."""
    with client(City(payload("06_request.xml")), "xml") as c:
        request = c.get_request("638344")
    assert request.lat == pytest.approx(37.762221815)
    assert request.long == pytest.approx(-122.4651145)


# --- §10.15 zipcode ----------------------------------------------------------------------------


def test_15_zipcodes_are_strings_with_leading_zeros_kept() -> None:
    """§10.15: zipcode 94122 (number), 06510 (bare, invalid JSON), "06510" → str, zeros kept."""
    with client(City(payload("15_zipcodes.json"))) as c:
        found = c.list_requests()
    assert [r.zipcode for r in found] == ["94122", "06510", "06510"]


def test_15_xml_zipcode_keeps_leading_zero() -> None:
    """§10.15: <zipcode>06510</zipcode> (New Haven) stays "06510"."""
    body = (
        b"<service_requests><request><service_request_id>1</service_request_id>"
        b"<status>open</status><zipcode>06510</zipcode></request></service_requests>"
    )
    with client(City(body), "xml") as c:
        (request,) = c.list_requests()
    assert request.zipcode == "06510"


# --- §10.16 booleans as strings --------------------------------------------------------------


def test_16_metadata_as_boolean_or_string_in_any_case() -> None:
    """§10.16: metadata true/"true"/"True"/"TRUE" and false/"false"(FMS)/"False"/"FALSE"."""
    with client(City(payload("16_services_booleans.json"))) as c:
        services = c.list_services()
    assert [s.metadata for s in services] == [True] * 4 + [False] * 4


@pytest.mark.parametrize("name", ["16_definition_booleans.json", "16_definition_booleans.xml"])
def test_16_variable_and_required_as_strings_in_any_case(name: str) -> None:
    """§10.16: attribute variable/required as "true"/"False"/"TRUE" strings give real bools."""
    with client(City(payload(name)), fmt_of(payload(name))) as c:
        definition = c.get_service_definition("pothole")
    assert [(a.code, a.variable, a.required) for a in definition.attributes] == [
        ("SIZE", True, False),
        ("NOTE", False, False),
        ("DEPTH", True, True),
    ]


def test_16_xml_metadata_string_false_is_false() -> None:
    """§10.16: <metadata>false</metadata> and <metadata>True</metadata> are real booleans."""
    body = (
        b"<services><service><service_code>001</service_code><metadata>false</metadata>"
        b"</service><service><service_code>002</service_code><metadata>True</metadata>"
        b"</service></services>"
    )
    with client(City(body), "xml") as c:
        services = c.list_services()
    assert [s.metadata for s in services] == [False, True]


# --- §10.17 empty element vs null vs missing -------------------------------------------------

_XML_REQUEST = (
    '<?xml version="1.0" encoding="utf-8"?><service_requests><request>'
    "<service_request_id>638344</service_request_id><status>open</status>{}"
    "</request></service_requests>"
)


@pytest.mark.parametrize(
    "body",
    [
        _XML_REQUEST.format("<description></description>"),
        _XML_REQUEST.format("<description/>"),
        _XML_REQUEST.format("<description>   </description>"),
        _XML_REQUEST.format(""),
        '[{"service_request_id":"638344","status":"open","description":null}]',
        '[{"service_request_id":"638344","status":"open","description":""}]',
        '[{"service_request_id":"638344","status":"open"}]',
    ],
    ids=["xml-empty", "xml-self-closing", "xml-blank", "xml-missing", "null", "empty", "missing"],
)
def test_17_empty_element_null_and_missing_all_give_none(body: str) -> None:
    """§10.17: <description></description>, <description/>, null, "" and a missing key → None."""
    with client(City(body), fmt_of(body)) as c:
        request = c.get_request("638344")
    assert request.description is None
    assert request.updated_datetime is None
    assert request.lat is None


def test_17_empty_account_id_element_in_post_answer_is_none() -> None:
    """§10.17: the spec's POST answer <account_id/> gives account_id None."""
    with client(City(payload("01_post_response.xml")), "xml") as c:
        receipt = c.submit(sinkhole())
    assert receipt.account_id is None


# --- §10.18 whitespace -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["18_whitespace.xml", "18_whitespace.json"])
def test_18_values_are_trimmed(name: str) -> None:
    """§10.18: values are trimmed, e.g. the spec's media_url with its trailing space."""
    with client(City(payload(name)), fmt_of(payload(name))) as c:
        (request,) = c.list_requests()
    assert request.service_request_id == "638344"
    assert request.status == "closed"
    assert request.service_code == "006"
    assert request.address == "8TH AVE and JUDAH ST"
    assert request.media_url == "http://city.gov.s3.amazonaws.com/requests/media/638344.jpg"
    assert request.requested_datetime == datetime(2010, 4, 14, 14, 37, 38, tzinfo=UTC)


def test_18_whitespace_before_the_xml_declaration_is_tolerated() -> None:
    """§10.18: blank lines before <?xml …?> (a PHP server's stray newlines) are trimmed."""
    with client(City(payload("18_leading_whitespace.xml")), "xml") as c:
        services = c.list_services()
    assert [s.service_code for s in services] == ["001"]


def test_18_keywords_are_split_and_trimmed() -> None:
    """§10.18: keywords "lorem, ipsum, dolor" (spec) give ("lorem", "ipsum", "dolor")."""
    with client(City(payload("08_single_service.xml")), "xml") as c:
        (service,) = c.list_services()
    assert service.keywords == ("lorem", "ipsum", "dolor")
    assert service.type == "realtime"
    assert service.group == "sanitation"


# --- §10.19 unknown or extra fields ----------------------------------------------------------


def test_19_fixmystreet_extra_fields_are_kept() -> None:
    """§10.19: FMS's title, detail, interface_used, requestor_name… are kept in extras."""
    with client(City(payload("19_fms_request.json"))) as c:
        (request,) = c.list_requests()
    assert request.extras["title"] == "Abfall Tramhaltestelle"
    assert request.extras["detail"] == "Abfallsack beim Tramhaltestelle Central"
    assert request.extras["interface_used"] == "Web interface"
    assert request.extras["requestor_name"] == "Anna Muster"
    assert request.extras["comment_count"] == 2
    assert request.extras["agency_sent_datetime"] == "2021-05-03T09:02:11+02:00"
    assert civic311.from_dict(civic311.ServiceRequest, civic311.to_dict(request)) == request


def test_19_fixmystreet_xml_with_a_title_field_is_not_mistaken_for_html() -> None:
    """§10.19: FMS XML requests carry <title>; that extra field must not read as an HTML page."""
    with client(City(payload("19_fms_requests.xml")), "xml") as c:
        (request,) = c.list_requests()
    assert request.service_request_id == "8762"
    assert request.extras["title"] == "Abfall Tramhaltestelle"
    assert request.extras["comment_count"] == "2"
    assert request.agency_responsible == "Entsorgung + Recycling Zürich"


def test_19_chicago_notes_and_extended_attributes_are_kept() -> None:
    """§10.19: Chicago's notes and extended_attributes are kept as sent."""
    with client(City(payload("19_chicago_request.json"))) as c:
        (request,) = c.list_requests()
    raw = json.loads(payload("19_chicago_request.json"))[0]
    assert request.extras["notes"] == raw["notes"]
    assert request.extras["extended_attributes"] == raw["extended_attributes"]
    assert civic311.from_dict(civic311.ServiceRequest, civic311.to_dict(request)) == request


def test_19_6aika_distance_media_urls_and_tasks_are_kept() -> None:
    """§10.19: 6aika/Helsinki distance, media_urls and tasks (XML, <requests> root) are kept."""
    with client(City(payload("19_6aika_requests.xml")), "xml") as c:
        (request,) = c.list_requests()
    assert request.service_request_id == "2021-00123"
    assert request.extras["distance"] == "132.5"
    extended = request.extras["extended_attributes"]
    assert extended["detailed_status"] == "RECEIVED"
    assert extended["media_urls"] == ["https://asiointi.hel.fi/palautews/media/2021-00123-1.jpg"]
    assert [t["task_type"] for t in extended["tasks"]] == ["Tarkastus"]


def test_19_fixmystreet_service_groups_are_kept() -> None:
    """§10.19: FMS <groups><group>…</group></groups> on a service is kept, as a list."""
    body = (
        "<services><service><service_code>Abfall</service_code>"
        "<service_name>Abfall</service_name><metadata>false</metadata><type>realtime</type>"
        "<groups><group>Sauberkeit</group><group>Entsorgung</group></groups>"
        "</service></services>"
    )
    with client(City(body), "xml") as c:
        (service,) = c.list_services()
    assert service.extras["groups"] == ["Sauberkeit", "Entsorgung"]


# --- §10.20 misspelled or renamed fields -----------------------------------------------------


def test_20_klarschiff_adress_id_and_rails_xml() -> None:
    """§10.20: Klarschiff's misspelled adress_id is address_id (Rails XML, type/nil attrs)."""
    with client(City(payload("20_klarschiff_requests.xml")), "xml") as c:
        (request,) = c.list_requests()
    assert request.service_request_id == "10254"
    assert request.service_code == "18"
    assert request.address_id == "HRO-4711"
    assert request.zipcode is None
    assert request.lat == pytest.approx(54.0887)


def test_20_markaspot_renamed_fields() -> None:
    """§10.20: Mark-a-Spot's servicerequest_id, status_note and address_string are read."""
    with client(City(payload("20_markaspot_requests.json"))) as c:
        (request,) = c.list_requests()
    assert request.service_request_id == "b9f2f1a0-5c6e-4b8f-9d3c-2a1e0f7c6d45"
    assert request.status_notes == "Weitergeleitet an die Stadtwerke"
    assert request.address == "Bonner Talweg 12, 53113 Bonn"
    assert request.media_url is None
    assert request.extras["title"] == "Defekte Straßenlaterne"


def test_20_markaspot_servicerequest_id_on_post_answer() -> None:
    """§10.20: a POST answer naming the id servicerequest_id (Mark-a-Spot) gives the id."""
    body = b'[{"servicerequest_id":"b9f2f1a0-5c6e-4b8f-9d3c-2a1e0f7c6d45"}]'
    with client(City(Reply(body, status=201))) as c:
        receipt = c.submit(sinkhole())
    assert receipt.service_request_id == "b9f2f1a0-5c6e-4b8f-9d3c-2a1e0f7c6d45"


# --- §10.21 statuses beyond open/closed ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "closed"),
    [
        ("open", False),
        ("closed", True),
        ("submitted", False),
        ("Received", False),
        ("Open", False),
        ("Closed", True),
        ("in_progress", False),
        ("action_scheduled", False),
        ("investigating", False),
        ("for_triage", False),
        ("fixed", True),
        ("duplicate", True),
        ("no_further_action", True),
        ("not_councils_responsibility", True),
        ("FIXED", True),
        ("IN_PROGRESS", False),
        ("CLOSED", True),
    ],
)
def test_21_any_status_is_kept_and_still_answers_is_closed(raw: str, closed: bool) -> None:
    """§10.21: statuses beyond open/closed are kept as sent and still say open or closed."""
    body = requests_json({"service_request_id": "1", "status": raw, "service_code": "001"})
    with client(City(body)) as c:
        (request,) = c.list_requests()
    assert request.status == raw
    assert isinstance(request.status, civic311.Status)
    assert request.is_closed is closed
    assert request.status.is_open is not closed


def test_21_status_normalizes_case_and_separators() -> None:
    """§10.21: upper-case and spaced forms normalise to the lower-case underscore form."""
    assert civic311.Status("IN_PROGRESS").normalized == "in_progress"
    assert civic311.Status("In Progress").normalized == "in_progress"
    assert civic311.Status("NO_FURTHER_ACTION").is_closed


# --- §10.22 error body shapes ----------------------------------------------------------------

ERROR_SHAPES = [
    (
        "22_spec_errors.json",
        403,
        civic311.ForbiddenError,
        [("403", "Invalid api_key received -- can't proceed with create_request.")],
    ),
    (
        "22_spec_errors.xml",
        403,
        civic311.ForbiddenError,
        [("403", "Invalid api_key received -- can't proceed with create_request.")],
    ),
    (
        "22_adapter_multiple_errors.xml",
        400,
        civic311.BadRequestError,
        [
            ("400", "Missing required parameter: lat"),
            ("400", "Missing required parameter: email"),
        ],
    ),
    (
        "22_fms_errors.json",
        400,
        civic311.BadRequestError,
        [("400", "Bad request: service_request_id")],
    ),
    (
        "22_markaspot_error.json",
        404,
        civic311.NotFoundError,
        [("404", "Service request not found")],
    ),
    ("22_6aika_error.json", 400, civic311.BadRequestError, [("400", "Invalid service_code")]),
    ("22_ureport_errors.json", 400, civic311.BadRequestError, [(None, "Missing service_code")]),
    (
        "22_klarschiff_errors.xml",
        422,
        civic311.BadRequestError,
        [("422", "email: muss ausgefüllt werden")],
    ),
]


@pytest.mark.parametrize(("name", "status", "error", "expected"), ERROR_SHAPES)
def test_22_every_error_body_shape_gives_the_error_list(
    name: str, status: int, error: type[civic311.APIError], expected: list[tuple[str, str]]
) -> None:
    """§10.22: spec, FMS, Mark-a-Spot, 6aika, uReport and Klarschiff error bodies all parse."""
    body = payload(name)
    city = City(Reply(body, status=status))
    with client(city, fmt_of(body), api_key="xyz") as c, pytest.raises(error) as info:
        c.submit(sinkhole())
    assert info.value.status_code == status
    assert [(e.code, e.description) for e in info.value.errors] == expected
    assert info.value.body == body
    assert "xyz" not in str(info.value)


@pytest.mark.parametrize(("name", "status", "error", "expected"), ERROR_SHAPES)
def test_22_error_details_reads_every_shape_in_the_wire_layer(
    name: str, status: int, error: type[civic311.APIError], expected: list[tuple[str, str]]
) -> None:
    """§10.22: error_details reads each decoded error body shape into ErrorDetail entries."""
    body = payload(name)
    details = error_details(decode(body, fmt_of(body)).data)  # type: ignore[arg-type]
    assert details == [civic311.ErrorDetail(code=c, description=d) for c, d in expected]


def test_22_6aika_field_error_map_names_the_field() -> None:
    """§10.22: 6aika's {"code":400,"detail":{field: [messages]}} keeps the field and message."""
    city = City(Reply(payload("22_6aika_field_error.json"), status=400))
    with client(city) as c, pytest.raises(civic311.BadRequestError) as info:
        c.submit(sinkhole())
    (detail,) = info.value.errors
    assert detail.code == "400"
    assert "lat" in detail.description
    assert "This field is required." in detail.description


@pytest.mark.anyio
async def test_22_async_spec_xml_errors_parse() -> None:
    """§10.22: AsyncClient raises ForbiddenError with the spec's <errors><error> entries."""
    city = City(Reply(payload("22_spec_errors.xml"), status=403))
    async with aclient(city, "xml", api_key="xyz") as c:
        with pytest.raises(civic311.ForbiddenError) as info:
            await c.submit(sinkhole())
    assert [e.code for e in info.value.errors] == ["403"]


# --- §10.23 error code ≠ HTTP status ---------------------------------------------------------


def test_23_error_code_and_http_status_are_both_surfaced() -> None:
    """§10.23: a body code (1001) that differs from the HTTP status (400) keeps both."""
    body = b'[{"code":1001,"description":"Attribute WHISHETN: unknown ticket number"}]'
    with (
        client(City(Reply(body, status=400))) as c,
        pytest.raises(civic311.BadRequestError) as info,
    ):
        c.submit(sinkhole())
    assert info.value.status_code == 400
    assert info.value.errors == [
        civic311.ErrorDetail(code="1001", description="Attribute WHISHETN: unknown ticket number")
    ]
    assert "400" in str(info.value)
    assert "1001" in str(info.value)


def test_23_error_class_follows_http_status_not_body_code() -> None:
    """§10.23: HTTP 404 with body code 400 is a NotFoundError whose entry still says 400."""
    body = (
        b"<errors><error><code>400</code>"
        b"<description>token not found</description></error></errors>"
    )
    city = City(Reply(body, status=404))
    with client(city, "xml") as c, pytest.raises(civic311.NotFoundError) as info:
        c.get_token("12345")
    assert info.value.status_code == 404
    assert [e.code for e in info.value.errors] == ["400"]


# --- §10.24 non-XML/JSON bodies --------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_24_html_maintenance_page_on_503_is_a_server_error_with_the_body(fmt: str) -> None:
    """§10.24: an HTML maintenance page on 503 is a ServerError keeping the raw body."""
    page = payload("24_maintenance.html")
    city = City(Reply(page, status=503, content_type="text/html"))
    with client(city, fmt) as c, pytest.raises(civic311.Civic311Error) as info:
        c.list_services()
    error = cause(info.value)
    assert isinstance(error, civic311.ServerError)
    assert error.status_code == 503
    assert error.errors == []
    assert error.body == page
    assert "Service Temporarily Unavailable" in str(error)


@pytest.mark.parametrize(
    ("status", "text", "error"),
    [
        (404, "Bad extension. We support .xml and .json", civic311.NotFoundError),
        (502, "Bad Gateway", civic311.ServerError),
        (500, "Internal Server Error", civic311.ServerError),
        (500, "", civic311.ServerError),
    ],
)
def test_24_plain_text_error_bodies_keep_status_and_body(
    status: int, text: str, error: type[civic311.APIError]
) -> None:
    """§10.24: text/plain error bodies (open311-adapter "Bad extension", proxies) are kept."""
    city = City(Reply(text, status=status, content_type="text/plain"))
    with client(city) as c, pytest.raises(civic311.Civic311Error) as info:
        c.list_services()
    raised = cause(info.value)
    assert isinstance(raised, error)
    assert raised.status_code == status
    assert raised.errors == []
    assert raised.body == text.encode()


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_24_html_page_with_200_is_a_decode_error_not_an_empty_result(fmt: str) -> None:
    """§10.24: FMS's HTML "ERROR: Missing jurisdiction_id" page with 200 raises DecodeError."""
    page = payload("24_fms_missing_jurisdiction.html")
    city = City(Reply(page, content_type="text/html; charset=utf-8"))
    with client(city, fmt) as c, pytest.raises(civic311.Civic311Error) as info:
        c.list_requests()
    error = cause(info.value)
    assert isinstance(error, civic311.DecodeError)
    assert error.status_code == 200
    assert error.body == page


def test_24_plain_text_with_200_is_a_decode_error() -> None:
    """§10.24: a plain-text 200 answer where XML was promised raises DecodeError."""
    city = City(Reply("Service temporarily unavailable", content_type="text/plain"))
    with client(city, "xml") as c, pytest.raises(civic311.Civic311Error) as info:
        c.list_services()
    assert isinstance(cause(info.value), civic311.DecodeError)


# --- §10.25 status codes outside the spec ----------------------------------------------------


def test_25_201_post_with_the_full_request_is_success() -> None:
    """§10.25: 6aika answers POST with 201 and the full request as an array of one: success."""
    body = requests_json(
        {
            "service_request_id": "2021-00124",
            "status": "open",
            "service_code": "180",
            "description": "Roskakori on täynnä",
            "requested_datetime": "2021-06-01T10:12:00+03:00",
        }
    )
    with client(City(Reply(body, status=201))) as c:
        receipt = c.submit(sinkhole())
    assert receipt.service_request_id == "2021-00124"


def test_25_202_post_with_a_token_is_success() -> None:
    """§10.25: a 202 Accepted POST answer with a token is a token receipt."""
    with client(City(Reply(payload("02_post_token.json"), status=202))) as c:
        assert c.submit(sinkhole()).token == "12345"


def test_25_204_post_without_body_is_success() -> None:
    """§10.25: a 204 No Content POST answer is success with neither id nor token."""
    with client(City(Reply(b"", status=204, content_type=None))) as c:
        receipt = c.submit(sinkhole())
    assert receipt == civic311.Receipt()


def test_25_203_get_is_success() -> None:
    """§10.25: any 2xx is success: a proxy's 203 to GET services still gives the services."""
    with client(City(Reply(payload("08_single_service.xml"), status=203)), "xml") as c:
        assert [s.service_code for s in c.list_services()] == ["001"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, civic311.BadRequestError),
        (401, civic311.ForbiddenError),
        (403, civic311.ForbiddenError),
        (404, civic311.NotFoundError),
        (422, civic311.BadRequestError),
        (500, civic311.ServerError),
        (502, civic311.ServerError),
        (503, civic311.ServerError),
    ],
)
def test_25_error_statuses_in_and_outside_the_spec_map_to_typed_errors(
    status: int, error: type[civic311.APIError]
) -> None:
    """§10.25: 401 (v2.1), 422 (Klarschiff) and 5xx map to typed APIErrors like 400/403/404."""
    body = json.dumps([{"code": status, "description": "refused"}])
    city = City(Reply(body, status=status))
    with client(city) as c, pytest.raises(civic311.Civic311Error) as info:
        c.list_services()
    raised = cause(info.value)
    assert isinstance(raised, error)
    assert raised.status_code == status
    assert [e.description for e in raised.errors] == ["refused"]


# --- §10.26 content-type variance, JSONP, never send callback --------------------------------

_SERVICES_JSON = b'[{"service_code":"001","service_name":"Cans left out 24x7","metadata":false}]'


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "text/javascript",
        "text/html; charset=utf-8",
        None,
    ],
)
def test_26_json_under_any_content_type(content_type: str | None) -> None:
    """§10.26: JSON is read whatever the Content-Type says, charset or not, or no header."""
    with client(City(Reply(_SERVICES_JSON, content_type=content_type))) as c:
        assert [s.service_code for s in c.list_services()] == ["001"]


@pytest.mark.parametrize(
    "content_type",
    ["text/xml", "text/xml; charset=utf-8", "application/xml", "text/html", None],
)
def test_26_xml_under_any_content_type(content_type: str | None) -> None:
    """§10.26: XML is read as text/xml, application/xml (FMS), a wrong type or no header."""
    body = payload("08_single_service.xml")
    with client(City(Reply(body, content_type=content_type)), "xml") as c:
        assert [s.service_code for s in c.list_services()] == ["001"]


def test_26_xml_answer_to_a_json_request_is_read() -> None:
    """§10.26: an XML-only city (D.C., Alexandria) answering .json with XML is still read."""
    with client(City(payload("08_single_request.xml"))) as c:
        found = c.list_requests()
    assert [r.service_request_id for r in found] == ["638344"]


@pytest.mark.parametrize(
    "body",
    [
        b"callback(" + _SERVICES_JSON + b")",
        b"callback(" + _SERVICES_JSON + b");",
        b"jQuery19104519_1385749132(" + _SERVICES_JSON + b");\n",
        b"/**/callback(" + _SERVICES_JSON + b")",
    ],
    ids=["bare", "semicolon", "jquery", "rails"],
)
def test_26_jsonp_wrapped_json_is_unwrapped(body: bytes) -> None:
    """§10.26: a JSONP callback(…) wrapper that leaked through is unwrapped."""
    with client(City(Reply(body, content_type="application/javascript"))) as c:
        assert [s.service_code for s in c.list_services()] == ["001"]


def test_26_callback_is_never_sent() -> None:
    """§10.26: no call of any method sends a callback parameter, in the query or the form."""
    city = City(
        _SERVICES_JSON,
        payload("10_definition.json"),
        payload("02_post_token.json"),
        payload("02_token_ready.json"),
        payload("06_request_array.json"),
        payload("05_chicago_requests.json"),
        payload("05_chicago_requests.json"),
        payload("02_token_ready.json"),
    )
    with client(city, api_key="xyz", jurisdiction_id="city.example") as c:
        c.list_services()
        c.get_service_definition("DMV66")
        receipt = c.submit(sinkhole())
        c.get_token("12345")
        c.get_request("638344")
        c.list_requests(status="open")
        c.get_requests(["14-01100669", "14-01100671"])
        c.wait_for_id(receipt)
    assert len(city.requests) == 8
    for request in city.requests:
        assert "callback" not in request.url.params
        assert "callback" not in str(request.url)
        if request.method == "POST":
            assert "callback" not in dict(form(request))


# --- §10.27 non-ASCII text -------------------------------------------------------------------


def test_27_post_form_is_utf8_with_declared_charset() -> None:
    """§10.27: the POST form is UTF-8 encoded and its Content-Type declares charset=utf-8."""
    request = civic311.NewRequest(
        service_code="5",
        address_string="Hohe Straße 1, 50667 Köln",
        description="Schlagloch vor dem Dom \u2013 bitte beheben",
        first_name="Jürgen",
        last_name="Väisänen",
    )
    city = City(payload("01_post_array.json"))
    with client(city, api_key="xyz") as c:
        c.submit(request)
    sent = city.last
    assert sent.headers["Content-Type"] == FORM_TYPE
    assert sent.content.isascii()
    assert b"Stra%C3%9Fe" in sent.content
    fields = dict(form(sent))
    assert fields["address_string"] == "Hohe Straße 1, 50667 Köln"
    assert fields["description"] == "Schlagloch vor dem Dom \u2013 bitte beheben"
    assert fields["first_name"] == "Jürgen"
    assert fields["last_name"] == "Väisänen"


def test_27_non_ascii_codes_in_paths_are_utf8_percent_encoded() -> None:
    """§10.27: a non-ASCII service code in the path is UTF-8 percent-encoded."""
    city = City('{"service_code":"Straßenschäden","attributes":[]}')
    with client(city) as c:
        definition = c.get_service_definition("Straßenschäden")
    assert definition.service_code == "Straßenschäden"
    assert city.last.url.raw_path == b"/open311/v2/services/Stra%C3%9Fensch%C3%A4den.json"


def test_27_finnish_and_swedish_json_text_decodes() -> None:
    """§10.27: Helsinki's Finnish and Swedish names, raw UTF-8 or \\u-escaped, decode intact."""
    with client(City(payload("27_helsinki_services.json"))) as c:
        services = c.list_services()
    assert [s.service_name for s in services] == [
        "Helsinkiläinen palaute \u2013 Puistot ja viheralueet",
        "Gatubelysning \u2013 trasig lykta",
    ]
    assert services[1].group == "Underhåll"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("27_giessen_services_bom.xml", "Straßenschäden"),
        ("27_koeln_services_bom.json", "Beleuchtung"),
    ],
)
def test_27_utf8_bodies_with_a_bom_decode(name: str, expected: str) -> None:
    """§10.27: UTF-8 XML and JSON bodies that start with a byte-order mark decode intact."""
    with client(City(payload(name)), fmt_of(payload(name))) as c:
        (service,) = c.list_services()
    assert service.service_name == expected
    assert service.description is not None
    assert "ß" in service.description or "ö" in service.description


# --- §10.28 dates ----------------------------------------------------------------------------


def test_28_query_dates_are_sent_in_utc_without_fractions() -> None:
    """§10.28: start/end dates go out as YYYY-MM-DDTHH:MM:SSZ, in UTC, no fractional seconds."""
    city = City(b"[]")
    with client(city) as c:
        c.list_requests(
            start_date=datetime(2024, 3, 1, 1, 30, 15, 987654, tzinfo=timezone(timedelta(hours=2))),
            end_date=datetime(2024, 3, 31, 23, 59, 59, 500, tzinfo=timezone(timedelta(hours=-5))),
        )
    params = city.last.url.params
    assert params["start_date"] == "2024-02-29T23:30:15Z"
    assert params["end_date"] == "2024-04-01T04:59:59Z"
    assert W3C_UTC.fullmatch(params["start_date"])
    assert W3C_UTC.fullmatch(params["end_date"])


def test_28_naive_query_date_is_refused_before_sending() -> None:
    """§10.28: a naive start_date raises InvalidRequestError naming it; nothing is sent."""
    city = City(b"[]")
    with client(city) as c, pytest.raises(civic311.InvalidRequestError) as info:
        c.list_requests(start_date=datetime(2024, 3, 1), end_date=datetime.now(UTC))  # noqa: DTZ001
    assert info.value.field == "start_date"
    assert "start_date" in str(info.value)
    assert city.requests == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2010-04-14T06:37:38-08:00", datetime(2010, 4, 14, 14, 37, 38, tzinfo=UTC)),
        ("1994-11-05T13:15:30Z", datetime(1994, 11, 5, 13, 15, 30, tzinfo=UTC)),
        ("1994-11-05T08:15:30-0500", datetime(1994, 11, 5, 13, 15, 30, tzinfo=UTC)),
        ("2018-02-07T10:00:00+01:00", datetime(2018, 2, 7, 9, 0, 0, tzinfo=UTC)),
        ("2014-06-18T16:45:01.017Z", datetime(2014, 6, 18, 16, 45, 1, 17000, tzinfo=UTC)),
        ("2014-07-23T09:12:44", datetime(2014, 7, 23, 9, 12, 44, tzinfo=UTC)),
        ("2011-02-03 14:18", datetime(2011, 2, 3, 14, 18, tzinfo=UTC)),
    ],
    ids=["offset", "z", "offset-no-colon", "php-date-c", "fraction", "no-zone", "changeset"],
)
def test_28_datetimes_parse_in_every_server_form(text: str, expected: datetime) -> None:
    """§10.28: Z, ±HH:MM, ±HHMM, fractions, no zone and the changeset form parse, zone-aware."""
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.tzinfo is not None


def test_28_response_datetimes_are_aware_and_null_or_missing_is_none() -> None:
    """§10.28: response datetimes come out zone-aware; null (Accela) or missing is None."""
    body = requests_json(
        {
            "service_request_id": "ISLANDTON-14CAP-00000-00070",
            "status": "Received",
            "requested_datetime": None,
            "updated_datetime": None,
        },
        {
            "service_request_id": "14-01100669",
            "status": "open",
            "requested_datetime": "2014-07-23T09:12:44-0500",
            "updated_datetime": "2014-07-23T09:12:46",
        },
    )
    with client(City(body)) as c:
        first, second = c.list_requests()
    assert first.requested_datetime is None
    assert first.updated_datetime is None
    assert first.expected_datetime is None
    assert second.requested_datetime == datetime(2014, 7, 23, 14, 12, 44, tzinfo=UTC)
    assert second.updated_datetime is not None
    assert second.updated_datetime.tzinfo is not None


# --- §10.29 90-day / 1000-row cap ------------------------------------------------------------


def test_29_list_requests_warns_on_spans_over_90_days() -> None:
    """§10.29: list_requests over more than 90 days warns (Civic311Warning) and sends one call."""
    city = City(b"[]")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with client(city) as c, pytest.warns(civic311.Civic311Warning, match="90"):
        c.list_requests(start_date=start, end_date=start + timedelta(days=120))
    assert len(city.requests) == 1


def test_29_list_requests_within_90_days_does_not_warn() -> None:
    """§10.29: exactly 90 days is within the spec's span: no warning."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with client(City(b"[]")) as c:
        assert c.list_requests(start_date=start, end_date=start + timedelta(days=90)) == []


def _windows(city: City) -> list[tuple[datetime, datetime]]:
    return [
        (parse_datetime(r.url.params["start_date"]), parse_datetime(r.url.params["end_date"]))
        for r in city.requests
    ]


def test_29_iter_requests_splits_long_ranges_into_90_day_windows() -> None:
    """§10.29: iter_requests over 200 days asks in windows of at most 90 days, covering all."""
    city = City(b"[]")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=200)
    with client(city) as c:
        assert list(c.iter_requests(start_date=start, end_date=end)) == []  # type: ignore[attr-defined]
    windows = sorted(_windows(city))
    assert len(windows) >= 3
    assert windows[0][0] == start
    assert windows[-1][1] == end
    assert all(b - a <= timedelta(days=90) for a, b in windows)
    assert all(later[0] <= earlier[1] for earlier, later in itertools.pairwise(windows))


def _capped_city(total: int, cap: int = 1000) -> tuple[City, set[str]]:
    """A server holding *total* requests over 30 days that answers at most *cap* per call."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    records = [
        {
            "service_request_id": f"14-{i:08d}",
            "status": "open",
            "service_code": "4fd3b656e750846c53000004",
            "requested_datetime": (start + timedelta(minutes=20 * i)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }
        for i in range(total)
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        low = parse_datetime(request.url.params.get("start_date", "1970-01-01T00:00:00Z"))
        high = parse_datetime(request.url.params.get("end_date", "2100-01-01T00:00:00Z"))
        hits = [r for r in records if low <= parse_datetime(r["requested_datetime"]) <= high]
        return Reply(json.dumps(hits[:cap])).response()

    return City(answer), {r["service_request_id"] for r in records}


def test_29_iter_requests_subdivides_windows_that_hit_the_cap() -> None:
    """§10.29: a window answering exactly 1000 rows is split until every request is harvested."""
    city, every_id = _capped_city(1500)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with client(city) as c:
        found = list(
            c.iter_requests(start_date=start, end_date=start + timedelta(days=30))  # type: ignore[attr-defined]
        )
    ids = [r.service_request_id for r in found]
    assert len(ids) == len(set(ids))
    assert set(ids) == every_id


def test_29_list_requests_warns_when_the_answer_hits_the_cap() -> None:
    """§10.29: exactly 1000 rows back (the spec's cap, no page info) warns of truncation."""
    city, _ = _capped_city(1500)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with client(city) as c, pytest.warns(civic311.Civic311Warning):
        found = c.list_requests(start_date=start, end_date=start + timedelta(days=30))
    assert len(found) == 1000


# --- §10.30 servers ignoring filters ---------------------------------------------------------

_IGNORED_FILTERS = requests_json(
    {
        "service_request_id": "1",
        "status": "open",
        "service_code": "001",
        "requested_datetime": "2024-01-10T08:00:00Z",
    },
    {
        "service_request_id": "2",
        "status": "closed",
        "service_code": "001",
        "requested_datetime": "2024-01-11T08:00:00Z",
    },
    {
        "service_request_id": "3",
        "status": "open",
        "service_code": "001",
        "requested_datetime": "2023-06-01T08:00:00Z",
    },
    {
        "service_request_id": "4",
        "status": "open",
        "service_code": "002",
        "requested_datetime": "2024-01-12T08:00:00Z",
    },
)


def test_30_filters_are_sent_to_the_server() -> None:
    """§10.30: status, service_code and date filters are sent as asked."""
    city = City(b"[]")
    with client(city) as c:
        c.list_requests(
            status="open",
            service_code="001",
            start_date=datetime(2024, 1, 1, tzinfo=UTC),
            end_date=datetime(2024, 1, 31, tzinfo=UTC),
        )
    params = city.last.url.params
    assert params["status"] == "open"
    assert params["service_code"] == "001"
    assert params["start_date"] == "2024-01-01T00:00:00Z"
    assert params["end_date"] == "2024-01-31T00:00:00Z"


def test_30_results_a_server_should_have_filtered_out_are_dropped() -> None:
    """§10.30: when the server ignores status/date/code filters, the client re-filters."""
    with client(City(_IGNORED_FILTERS)) as c:
        found = c.list_requests(
            status="open",
            service_code="001",
            start_date=datetime(2024, 1, 1, tzinfo=UTC),
            end_date=datetime(2024, 1, 31, tzinfo=UTC),
        )
    assert [r.service_request_id for r in found] == ["1"]


# --- §10.31 pagination extensions ------------------------------------------------------------


def test_31_chicago_page_and_page_size_are_followed_to_the_end() -> None:
    """§10.31: Chicago's page/page_size paging is followed until a short page."""
    records = [
        {"service_request_id": f"14-{i:08d}", "status": "open", "service_code": "001"}
        for i in range(1120)
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        size = int(request.url.params.get("page_size", "50"))
        page = max(int(request.url.params.get("page", "1")), 1)
        return Reply(json.dumps(records[(page - 1) * size : page * size])).response()

    city = City(answer)
    with pytest.warns(CityStatusWarning):
        chicago = civic311.Client.for_city(
            "chicago", transport=httpx.MockTransport(city), clock=FakeClock()
        )
    with chicago as c:
        start = datetime(2024, 1, 1, tzinfo=UTC)
        found = list(c.iter_requests(start_date=start, end_date=start + timedelta(days=30)))
    assert len({r.service_request_id for r in found}) == 1120
    assert len(city.requests) > 1
    assert all("page" in r.url.params for r in city.requests)


@pytest.mark.xfail(
    reason="6aika header-based paging (X-Next-Page-URL) is not one of the profile's paging "
    "strategies yet (none, page, offset)",
    strict=True,
)
def test_31_x_next_page_url_header_is_followed() -> None:
    """§10.31: a header-based X-Next-Page-URL is followed until it is absent."""
    page_two = f"{BASE}/requests.json?page=2"
    city = City(
        Reply(
            requests_json({"service_request_id": "1", "status": "open"}),
            headers={"X-Next-Page-URL": page_two},
        ),
        Reply(requests_json({"service_request_id": "2", "status": "open"})),
    )
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with client(city) as c:
        found = list(c.iter_requests(start_date=start, end_date=start + timedelta(days=30)))  # type: ignore[attr-defined]
    assert [r.service_request_id for r in found] == ["1", "2"]
    assert str(city.last.url) == page_two


# --- §10.32 empty jurisdiction_id ------------------------------------------------------------


def _every_call(c: civic311.Client) -> None:
    c.list_services()
    c.get_service_definition("DMV66")
    c.submit(sinkhole())
    c.get_token("12345")
    c.get_request("638344")
    c.list_requests()


def _every_call_city() -> City:
    return City(
        _SERVICES_JSON,
        payload("10_definition.json"),
        payload("01_post_array.json"),
        payload("02_token_ready.json"),
        payload("06_request_array.json"),
        b"[]",
    )


@pytest.mark.parametrize("jurisdiction", [None, "", "   "])
def test_32_unset_or_empty_jurisdiction_id_is_never_sent(jurisdiction: str | None) -> None:
    """§10.32: an unset or empty jurisdiction_id is omitted from every query and form."""
    city = _every_call_city()
    with client(city, jurisdiction_id=jurisdiction, api_key="xyz") as c:
        _every_call(c)
    assert len(city.requests) == 6
    for request in city.requests:
        assert "jurisdiction_id" not in request.url.params
        if request.method == "POST":
            assert "jurisdiction_id" not in dict(form(request))


def test_32_a_set_jurisdiction_id_is_sent_on_every_call() -> None:
    """§10.32: a set jurisdiction_id (required by FMS/Zürich) goes on every GET and the POST."""
    city = _every_call_city()
    with client(city, jurisdiction_id="cityofchicago.org", api_key="xyz") as c:
        _every_call(c)
    for request in city.requests:
        if request.method == "POST":
            assert dict(form(request))["jurisdiction_id"] == "cityofchicago.org"
        else:
            assert request.url.params["jurisdiction_id"] == "cityofchicago.org"


def test_32_empty_optional_arguments_are_omitted() -> None:
    """§10.32: empty optional filters and form fields are omitted, never sent empty (spec §1.5)."""
    city = City(b"[]", payload("01_post_array.json"))
    with client(city) as c:
        c.list_requests(status="", service_code=[], service_request_id=None)
        c.submit(sinkhole(email="", phone="   ", media_url=""))
    assert list(city.requests[0].url.params.keys()) == []
    sent = [name for name, _ in form(city.requests[1])]
    assert "email" not in sent
    assert "phone" not in sent
    assert "media_url" not in sent
    assert all(value.strip() for _, value in form(city.requests[1]))


# --- §10.33 comma lists ----------------------------------------------------------------------


def test_33_list_filters_are_comma_joined_without_spaces() -> None:
    """§10.33: status and service_code lists go out as "a,b", no spaces (Chicago)."""
    city = City(b"[]")
    with client(city) as c:
        c.list_requests(
            status=["open", "closed"],
            service_code=["4fd3b656e750846c53000004", " 4ffa9cad6018277d4000007b "],
        )
    params = city.last.url.params
    assert params["status"] == "open,closed"
    assert params["service_code"] == "4fd3b656e750846c53000004,4ffa9cad6018277d4000007b"
    raw_query = city.last.url.query
    assert b" " not in raw_query
    assert b"%20" not in raw_query
    assert b"+" not in raw_query


def test_33_comma_string_with_spaces_is_tightened() -> None:
    """§10.33: a comma string written with spaces ("open, closed") is sent as "open,closed"."""
    city = City(b"[]")
    with client(city) as c:
        c.list_requests(status="open, closed")
    assert city.last.url.params["status"] == "open,closed"


def test_33_get_requests_sends_only_a_comma_list_of_ids() -> None:
    """§10.33: get_requests sends service_request_id as one comma list and no other filter."""
    city = City(payload("05_chicago_requests.json"))
    with client(city) as c:
        found = c.get_requests(["14-01100671", "14-01100669"])
    assert [r.service_request_id for r in found] == ["14-01100671", "14-01100669"]
    assert len(city.requests) == 1
    params = city.last.url.params
    assert list(params.keys()) == ["service_request_id"]
    assert params["service_request_id"] == "14-01100671,14-01100669"


def test_33_long_id_lists_are_split_into_urls_of_at_most_2000_characters() -> None:
    """§10.33: hundreds of ids are batched into comma lists whose URLs stay ≤ 2000 characters."""
    ids = [f"14-{i:08d}" for i in range(400)]
    city = City(b"[]")
    with client(city) as c:
        c.get_requests(ids)
    assert len(city.requests) > 1
    assert all(len(str(r.url)) <= 2000 for r in city.requests)
    sent = [i for r in city.requests for i in r.url.params["service_request_id"].split(",")]
    assert sent == ids


# --- §10.34 multivaluelist encoding ----------------------------------------------------------


def test_34_multivaluelist_is_sent_as_repeated_bracket_pairs() -> None:
    """§10.34: a multivaluelist goes out as attribute[CODE][]=v per value (spec)."""
    city = City(payload("01_post_array.json"))
    request = sinkhole(attributes={"WHISHETN": "123", "DAMAGE": ["FENDER", "BUMPER"]})
    with client(city, api_key="xyz") as c:
        c.submit(request)
    fields = form(city.last)
    assert ("attribute[WHISHETN]", "123") in fields
    assert [v for k, v in fields if k == "attribute[DAMAGE][]"] == ["FENDER", "BUMPER"]
    assert "attribute[DAMAGE]" not in dict(fields)
    assert b"attribute%5BDAMAGE%5D%5B%5D=FENDER" in city.last.content


def test_34_repeat_style_exists_in_the_wire_layer() -> None:
    """§10.34: new_request_fields(multivalue="repeat") gives repeated attribute[CODE]=v pairs."""
    request = sinkhole(attributes={"WHISHETN": "123", "DAMAGE": ["FENDER", "BUMPER"]})
    fields = new_request_fields(request, multivalue="repeat")
    assert ("attribute[WHISHETN]", "123") in fields
    assert [v for k, v in fields if k == "attribute[DAMAGE]"] == ["FENDER", "BUMPER"]
    assert not any(k.endswith("[]") for k, _ in fields)


def test_34_repeat_style_is_a_client_option() -> None:
    """§10.34: a client configured for open311-adapter sends repeated attribute[CODE]=v."""
    city = City(payload("01_post_array.json"))
    request = sinkhole(attributes={"DAMAGE": ["FENDER", "BUMPER"]})
    with client(city, api_key="xyz", profile="open311_adapter") as c:
        c.submit(request)
    assert [v for k, v in form(city.last) if k == "attribute[DAMAGE]"] == ["FENDER", "BUMPER"]


# --- §10.35 location rule --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "field_name"),
    [
        ({}, "location"),
        ({"lat": 41.92440386}, "long"),
        ({"long": -87.71342512}, "lat"),
        ({"address_string": "   "}, "location"),
        ({"address_id": ""}, "location"),
    ],
)
def test_35_missing_location_raises_naming_the_field(
    location: dict[str, Any], field_name: str
) -> None:
    """§10.35: no lat+long, address_string or address_id raises InvalidRequestError (field)."""
    with pytest.raises(civic311.InvalidRequestError) as info:
        civic311.NewRequest(service_code="001", description="Pothole", **location)
    assert info.value.field == field_name
    assert field_name in str(info.value)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ({"lat": 41.92440386, "long": -87.71342512}, {"lat", "long"}),
        ({"address_string": "3500 W FULLERTON AVE, CHICAGO, IL, 60647"}, {"address_string"}),
        ({"address_id": "545483"}, {"address_id"}),
    ],
)
def test_35_each_location_form_alone_is_enough(
    location: dict[str, Any], expected: set[str]
) -> None:
    """§10.35: lat+long, address_string or address_id alone is a full location and is sent."""
    city = City(payload("01_post_array.json"))
    with client(city, api_key="xyz") as c:
        c.submit(civic311.NewRequest(service_code="001", **location))
    sent = {name for name, _ in form(city.last)}
    assert sent & {"lat", "long", "address_string", "address_id"} == expected


def test_35_chicago_profile_requires_coordinates_and_address() -> None:
    """§10.35: Chicago needs lat, long and address_string: missing address fails before sending."""
    city = City(payload("01_post_array.json"))
    with (
        pytest.warns(CityStatusWarning),
        civic311.Client.for_city(
            "chicago", transport=httpx.MockTransport(city), api_key="xyz", clock=FakeClock()
        ) as c,
        pytest.raises(civic311.InvalidRequestError) as info,
    ):
        c.submit(civic311.NewRequest(service_code="001", lat=41.9244, long=-87.7134))
    assert info.value.field == "address_string"
    assert city.requests == []


# --- §10.36 media upload variants ------------------------------------------------------------


def test_36_media_url_is_sent_as_a_form_field() -> None:
    """§10.36: media_url (the spec's way) is a plain form field in a urlencoded POST."""
    url = "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg"
    city = City(payload("01_post_array.json"))
    with client(city, api_key="xyz") as c:
        c.submit(sinkhole(media_url=url))
    assert city.last.headers["Content-Type"] == FORM_TYPE
    assert dict(form(city.last))["media_url"] == url
    assert b"media_url=http%3A%2F%2Ffarm3.static.flickr.com" in city.last.content


def test_36_photo_is_uploaded_as_multipart_media() -> None:
    """§10.36: a photo goes as one multipart file part named media (Bloomington, v2.1 draft)."""
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
    city = City(payload("01_post_array.json"))
    request = sinkhole(media=[civic311.MediaFile.from_bytes(jpeg, "pothole.jpg", "image/jpeg")])
    with client(city, api_key="xyz", profile="bloomington") as c:
        c.submit(request)
    assert city.last.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="media"; filename="pothole.jpg"' in city.last.content
    assert jpeg in city.last.content


# --- §10.37 transport quirks -----------------------------------------------------------------


def test_37_deflate_is_never_advertised() -> None:
    """§10.37: Accept-Encoding never offers deflate (Alexandria breaks decompressing it)."""
    city = City(_SERVICES_JSON)
    with client(city) as c:
        c.list_services()
    assert "deflate" not in city.last.headers.get("Accept-Encoding", "")


def test_37_broken_compressed_body_is_a_civic311_error() -> None:
    """§10.37: a body that fails to decompress raises a civic311 error, not httpx's."""
    city = City(Reply(b"\x00garbage-not-deflate", headers={"Content-Encoding": "deflate"}))
    with client(city) as c, pytest.raises(civic311.Civic311Error) as info:
        c.list_services()
    assert not isinstance(info.value, httpx.HTTPError)


def test_37_get_follows_an_http_to_https_redirect() -> None:
    """§10.37: a GET redirected from http to https (open311status PR #33) is followed."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            https = request.url.copy_with(scheme="https")
            return httpx.Response(301, headers={"Location": str(https)})
        return Reply(_SERVICES_JSON).response()

    city = City(answer)
    with civic311.Client(
        "http://city.example/open311/v2", transport=httpx.MockTransport(city), clock=FakeClock()
    ) as c:
        assert [s.service_code for s in c.list_services()] == ["001"]
    assert [r.url.scheme for r in city.requests] == ["http", "https"]


def test_37_post_is_never_redirected_with_its_api_key() -> None:
    """§10.37: a redirected POST is not followed: the api_key never reaches another host."""
    city = City(Reply(b"", status=307, headers={"Location": "https://elsewhere.example/r"}))
    with client(city, api_key="s3cret") as c, pytest.raises(civic311.Civic311Error) as info:
        c.submit(sinkhole())
    assert [r.url.host for r in city.requests] == ["city.example"]
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("exc", "sent"),
    [
        (
            httpx.ConnectError(
                "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                "unable to get local issuer certificate"
            ),
            False,
        ),
        (httpx.ConnectTimeout("timed out"), False),
        (httpx.ReadTimeout("timed out"), True),
    ],
    ids=["tls-chain", "connect-timeout", "read-timeout"],
)
def test_37_tls_and_timeout_failures_are_transport_errors(exc: Exception, sent: bool) -> None:
    """§10.37: TLS chain errors (Peoria) and timeouts (D.C.) raise TransportError with `sent`."""
    city = City(exc)
    with client(city) as c, pytest.raises(civic311.Civic311Error) as info:
        c.list_services()
    error = cause(info.value)
    assert isinstance(error, civic311.TransportError)
    assert error.sent is sent
    assert error.cause_name == type(exc).__name__


def test_37_slow_server_read_is_retried_after_a_timeout() -> None:
    """§10.37: a GET that timed out (slow D.C. server) is retried and then succeeds."""
    city = City(httpx.ReadTimeout("timed out"), _SERVICES_JSON)
    with client(city) as c:
        assert [s.service_code for s in c.list_services()] == ["001"]
    assert len(city.requests) == 2


def test_37_unreadable_ca_bundle_is_refused_naming_the_field() -> None:
    """§10.37: a private CA bundle (for broken TLS chains) that cannot be read names ca_bundle."""
    with pytest.raises(civic311.InvalidRequestError) as info:
        civic311.Client(BASE, ca_bundle=str(FIXTURES / "no-such-ca.pem"))
    assert info.value.field == "ca_bundle"


def test_37_broken_deflate_is_retried_asking_for_identity() -> None:
    """§10.37: after a body fails to decompress, the GET is retried asking for identity."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Accept-Encoding") == "identity":
            return Reply(_SERVICES_JSON).response()
        return Reply(b"\x00garbage", headers={"Content-Encoding": "deflate"}).response()

    with client(City(answer)) as c:
        assert [s.service_code for s in c.list_services()] == ["001"]


def test_37_post_redirected_to_https_on_the_same_host_is_resent_there() -> None:
    """§10.37: a POST answered 308 http→https on the same host is sent once more over https."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            https = request.url.copy_with(scheme="https")
            return httpx.Response(308, headers={"Location": str(https)})
        return Reply(payload("01_post_array.json")).response()

    city = City(answer)
    with civic311.Client(
        "http://city.example/open311/v2",
        transport=httpx.MockTransport(city),
        api_key="xyz",
        clock=FakeClock(),
    ) as c:
        assert c.submit(sinkhole()).service_request_id == "293944"
    assert [(r.method, r.url.scheme) for r in city.requests] == [
        ("POST", "http"),
        ("POST", "https"),
    ]


# --- §10.38 attribute order and variable=false -----------------------------------------------

_ORDERS = [
    ("A", "3"),
    ("B", None),
    ("C", 1),
    ("D", "2"),
    ("E", 2),
    ("F", "missing"),
    ("G", ""),
]
_SORTED = ["C", "D", "E", "A", "B", "F", "G"]


def _definition_json() -> bytes:
    attributes = []
    for code, order in _ORDERS:
        attribute: dict[str, Any] = {
            "variable": True,
            "code": code,
            "datatype": "string",
            "required": False,
            "description": f"Question {code}",
        }
        if order != "missing":
            attribute["order"] = order
        attributes.append(attribute)
    return json.dumps({"service_code": "DMV66", "attributes": attributes}).encode()


def _definition_xml() -> bytes:
    parts = []
    for code, order in _ORDERS:
        order_xml = "" if order == "missing" else f"<order>{order or ''}</order>"
        parts.append(
            f"<attribute><variable>true</variable><code>{code}</code>"
            f"<datatype>string</datatype><required>false</required>{order_xml}"
            f"<description>Question {code}</description></attribute>"
        )
    return (
        "<service_definition><service_code>DMV66</service_code>"
        f"<attributes>{''.join(parts)}</attributes></service_definition>"
    ).encode()


@pytest.mark.parametrize("body", [_definition_json(), _definition_xml()], ids=["json", "xml"])
def test_38_attributes_sort_stably_by_order_with_missing_last(body: bytes) -> None:
    """§10.38: order missing, duplicated or a string sorts stably, missing orders last."""
    with client(City(body), fmt_of(body)) as c:
        definition = c.get_service_definition("DMV66")
    assert [a.code for a in definition.attributes] == _SORTED
    assert [a.order for a in definition.attributes] == [1, 2, 2, 3, None, None, None]
    again = civic311.from_dict(civic311.ServiceDefinition, civic311.to_dict(definition))
    assert [a.code for a in again.attributes] == _SORTED


def test_38_variable_false_attributes_are_informational() -> None:
    """§10.38: variable=false (as "false"/"False") marks an attribute informational."""
    with client(City(payload("16_definition_booleans.json"))) as c:
        definition = c.get_service_definition("pothole")
    note = definition.attribute("NOTE")
    assert note is not None
    assert note.variable is False
    assert note.description == "Potholes are usually filled within 5 working days."
    assert [a.code for a in definition.attributes if a.variable] == ["SIZE", "DEPTH"]
