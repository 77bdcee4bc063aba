"""Property tests: models survive every trip they make — through FakeCity's independent wire
code in XML and JSON, through `to_dict`/`from_dict` and JSON, and through the POST form.

FakeCity renders and parses with its own code (`civic311.testing._wire`), so a round trip
through it checks civic311's reader and writer against a second implementation rather than
against themselves.

Normalisations the properties allow for, each a documented decision of the converter or of the
protocol (and nothing else):

- text is trimmed and empty text is None (`civic311._wire.converter`, reference §10.17, §10.18);
  the strategies therefore draw trimmed text where a value must come back identical;
- datetimes travel at second precision in UTC (or the dialect's offset) and compare as instants;
- coordinates are sent with ten decimals (`civic311._wire.form`), so a POSTed lat/long comes
  back within 1e-10;
- FakeCity's `ParsedForm.get` trims what a POST carried, like the servers it imitates.
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import civic311
from civic311 import (
    Attribute,
    AttributeDatatype,
    AttributeValue,
    ErrorDetail,
    MediaFile,
    NewRequest,
    Receipt,
    Service,
    ServiceDefinition,
    ServiceRequest,
    ServiceType,
    Status,
    TokenStatus,
    from_dict,
    to_dict,
)
from civic311._wire.converter import ALIASES
from civic311._wire.form import encode_form, new_request_fields
from civic311.testing import Dialect, FakeCity, ServiceSpec, VirtualClock
from civic311.testing._wire import format_datetime as city_datetime
from civic311.testing._wire import parse_form, to_json, to_xml

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SMALL = settings(PROPERTY, max_examples=60)

NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
BASE = "https://city.example/open311/v2"

# --- strategies ------------------------------------------------------------------------------

#: Printable characters: letters, digits, punctuation, symbols and spaces of any script.
PRINTABLE = st.characters(categories=("L", "N", "P", "S", "Zs"))
#: Anything but surrogates (which UTF-8 cannot carry): control characters included.
ANY_CHAR = st.characters(exclude_categories=("Cs",))

SPECIAL_IDS = (
    "001",
    "0",
    "06510",
    "638344",
    "a/b",
    "ServiceRequest/Animals/Dead Animal",
    "Gießen",
    "Helsinkiläinen",
    "Straßenschäden & Co",
    "x?y#z=1&w=%20+",
    "1.5",
    "a.",
    "..",
    "日本語",
)


def _trimmed(alphabet: st.SearchStrategy[str], max_size: int) -> st.SearchStrategy[str]:
    """Non-empty text with no surrounding whitespace (what a trimming reader gives back)."""
    return st.text(alphabet, min_size=1, max_size=max_size).map(str.strip).filter(bool)


def ids() -> st.SearchStrategy[str]:
    """Ids and codes: leading zeros, slashes, spaces, reserved characters, any script.

    Commas are left out: GET requests takes ids as a comma-delimited list (spec §2.5).
    """
    drawn = _trimmed(PRINTABLE, 24).filter(lambda s: "," not in s)
    return st.one_of(st.sampled_from(SPECIAL_IDS), drawn)


def text() -> st.SearchStrategy[str]:
    """Trimmed printable text of any script."""
    return st.one_of(st.sampled_from(SPECIAL_IDS), _trimmed(PRINTABLE, 40))


def optional_text() -> st.SearchStrategy[str | None]:
    """Trimmed printable text, or None."""
    return st.none() | text()


#: Naive bounds for `st.datetimes` (which draws naive values; a zone is added after).
EARLIEST = datetime(1900, 1, 2)  # noqa: DTZ001
LATEST = datetime(2099, 12, 30)  # noqa: DTZ001


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """Aware datetimes at second precision, 1900-2100, with any whole-minute offset."""
    offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
        lambda m: timezone(timedelta(minutes=m))
    )
    return st.builds(
        lambda moment, tz: moment.replace(microsecond=0, tzinfo=timezone.utc).astimezone(tz),
        st.datetimes(min_value=EARLIEST, max_value=LATEST),
        offsets,
    )


def latitudes() -> st.SearchStrategy[float]:
    """Latitudes in range."""
    return st.floats(min_value=-90.0, max_value=90.0, allow_nan=False)


def longitudes() -> st.SearchStrategy[float]:
    """Longitudes in range."""
    return st.floats(min_value=-180.0, max_value=180.0, allow_nan=False)


def statuses() -> st.SearchStrategy[Status]:
    """Any status a server sends: the spec's two and every other kind."""
    known = st.sampled_from(
        ["open", "closed", "submitted", "Received", "In Progress", "fixed", "duplicate", "Fixed"]
    )
    return st.one_of(known, text()).map(Status)


#: Extras keys: XML names that are no spec field and no alias of one.
_RESERVED_KEYS = (
    {f.name for f in attrs.fields(ServiceRequest)}
    | set(ALIASES[ServiceRequest])
    | {"extras", "request", "requests", "service_requests"}
)


def extras() -> st.SearchStrategy[dict[str, str]]:
    """Unknown fields with simple string values (kept in `extras`)."""
    keys = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(
        lambda k: k not in _RESERVED_KEYS and not k.startswith("xml")
    )
    return st.dictionaries(keys, text(), max_size=3)


def zipcodes() -> st.SearchStrategy[str]:
    """Zipcodes: leading zeros, letters, spaces."""
    return st.one_of(
        st.sampled_from(["06510", "00501", "SW1A 1AA", "20095", "FI-00100"]),
        _trimmed(st.sampled_from(string.ascii_uppercase + string.digits + " -"), 10),
    )


def urls() -> st.SearchStrategy[str]:
    """http(s) URLs with paths, queries and fragments."""
    path = st.text(st.sampled_from(string.ascii_letters + string.digits + "/-_.%"), max_size=20)
    query = st.text(st.sampled_from(string.ascii_letters + string.digits + "=&"), max_size=12)
    return st.builds(
        lambda scheme, host, p, q: f"{scheme}://{host}/{p}" + (f"?{q}" if q else ""),
        st.sampled_from(["http", "https"]),
        st.sampled_from(["city.example", "img.example.org", "127.0.0.1:8080"]),
        path,
        query,
    )


# --- 1. a ServiceRequest through FakeCity, in XML and JSON -----------------------------------

DIALECTS = (
    Dialect(),
    Dialect(numeric_ids=True, wrapped_json=True, omit_empty=True),
    Dialect(datetime_style="offset", utc_offset_minutes=-330, requests_root="requests"),
    Dialect.sixaika(),
)


@attrs.frozen
class Seed:
    """What a test puts into a FakeCity for one request."""

    service_request_id: str
    service_code: str
    service_name: str
    service_notice: str | None
    agency_responsible: str | None
    requested: datetime
    description: str | None
    lat: float | None
    long: float | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    media_url: str | None
    close_after: int | None
    closed: bool


def seeds() -> st.SearchStrategy[Seed]:
    """Every field FakeCity can carry for a stored request."""
    point = st.one_of(st.tuples(st.none(), st.none()), st.tuples(latitudes(), longitudes()))
    return st.builds(
        lambda point, **kw: Seed(lat=point[0], long=point[1], **kw),
        point=point,
        service_request_id=ids(),
        service_code=ids(),
        service_name=text(),
        service_notice=optional_text(),
        agency_responsible=optional_text(),
        requested=aware_datetimes(),
        description=optional_text(),
        address=optional_text(),
        address_id=optional_text(),
        zipcode=st.none() | zipcodes(),
        media_url=st.none() | urls(),
        close_after=st.none() | st.integers(min_value=1, max_value=10 * 365 * 86400),
        closed=st.booleans(),
    )


def _seeded_city(seed: Seed, dialect: Dialect) -> tuple[FakeCity, ServiceRequest]:
    """A FakeCity holding *seed*, and the `ServiceRequest` a reader should see for it."""
    city = FakeCity(seed=1, clock=VirtualClock(start=NOW), dialect=dialect)
    city.add_service(
        ServiceSpec(
            service_code=seed.service_code,
            service_name=seed.service_name,
            service_notice=seed.service_notice,
            agency_responsible=seed.agency_responsible,
        )
    )
    stored = city.add_request(
        seed.service_code,
        service_request_id=seed.service_request_id,
        requested_datetime=seed.requested,
        description=seed.description,
        lat=seed.lat,
        long=seed.long,
        address=seed.address,
        address_id=seed.address_id,
        zipcode=seed.zipcode,
        media_url=seed.media_url,
        close_after=seed.close_after,
        closed=seed.closed,
    )
    # What the city shows at NOW, by its own model (status, notes and dates are computed).
    expected = ServiceRequest(
        service_request_id=seed.service_request_id,
        status=Status(stored.status_at(NOW)),
        status_notes=stored.status_notes_at(NOW),
        service_name=seed.service_name,
        service_code=seed.service_code,
        description=seed.description,
        agency_responsible=seed.agency_responsible,
        service_notice=seed.service_notice,
        requested_datetime=stored.requested_datetime,
        updated_datetime=stored.updated_at(NOW),
        expected_datetime=stored.expected_datetime,
        address=seed.address,
        address_id=seed.address_id,
        zipcode=seed.zipcode,
        lat=seed.lat,
        long=seed.long,
        media_url=seed.media_url,
    )
    return city, expected


@PROPERTY
@given(seed=seeds(), dialect=st.sampled_from(DIALECTS))
def test_service_request_survives_fakecity_in_xml_and_json(seed: Seed, dialect: Dialect) -> None:
    """Any request FakeCity stores reads back equal, by id and in a list, in XML and JSON."""
    city, expected = _seeded_city(seed, dialect)
    for fmt in ("xml", "json"):
        with civic311.Client(
            city.base_url, transport=city.transport(), format=fmt, retry=None, clock=city.clock
        ) as client:
            one = client.get_request(seed.service_request_id)
            listed = client.list_requests(service_request_id=seed.service_request_id)
        assert one == expected, fmt
        assert listed == [expected], fmt
        assert one.requested_datetime is not None
        assert one.requested_datetime.tzinfo is not None


def _wire_record(request: ServiceRequest, style: str, offset: int) -> dict[str, Any]:
    """*request* as a plain record in the spec's field order, extras last."""

    def when(value: datetime | None) -> str | None:
        return None if value is None else city_datetime(value, style, offset)  # type: ignore[arg-type]

    node: dict[str, Any] = {}
    for field in attrs.fields(ServiceRequest):
        if field.name == "extras":
            continue
        value = getattr(request, field.name)
        if isinstance(value, datetime):
            node[field.name] = when(value)
        else:
            node[field.name] = str(value) if isinstance(value, str) else value  # Status → str
    node.update(request.extras)
    return node


def service_requests() -> st.SearchStrategy[ServiceRequest]:
    """Any valid ServiceRequest a server could send, including extras and any status."""
    point = st.one_of(st.tuples(st.none(), st.none()), st.tuples(latitudes(), longitudes()))
    return st.builds(
        lambda point, **kw: ServiceRequest(lat=point[0], long=point[1], **kw),
        point=point,
        service_request_id=ids(),
        status=st.none() | statuses(),
        status_notes=optional_text(),
        service_name=optional_text(),
        service_code=st.none() | ids(),
        description=optional_text(),
        agency_responsible=optional_text(),
        service_notice=optional_text(),
        requested_datetime=st.none() | aware_datetimes(),
        updated_datetime=st.none() | aware_datetimes(),
        expected_datetime=st.none() | aware_datetimes(),
        address=optional_text(),
        address_id=st.none() | ids(),
        zipcode=st.none() | zipcodes(),
        media_url=st.none() | urls(),
        token=st.none() | ids(),
        extras=extras(),
    )


@PROPERTY
@given(
    request=service_requests(),
    style=st.sampled_from([("z", 0), ("offset", 120), ("offset", -330)]),
    fmt=st.sampled_from(["xml", "json"]),
)
def test_any_service_request_survives_fakecity_writers(
    request: ServiceRequest, style: tuple[str, int], fmt: str
) -> None:
    """Any ServiceRequest written by FakeCity's XML/JSON writers reads back equal."""
    record = _wire_record(request, *style)
    body = to_xml("service_requests", [record]) if fmt == "xml" else to_json([record])

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    with civic311.Client(
        BASE, transport=httpx.MockTransport(handler), format=fmt, retry=None
    ) as client:
        got = client.get_request(request.service_request_id or "x")
    assert got == request
    assert dict(got.extras) == dict(request.extras)
    assert got.is_closed == (request.status is not None and request.status.is_closed)


# --- 2. to_dict → JSON → from_dict, every model ----------------------------------------------


def services() -> st.SearchStrategy[Service]:
    """Any Service."""
    return st.builds(
        Service,
        service_code=ids(),
        service_name=optional_text(),
        description=optional_text(),
        metadata=st.booleans(),
        type=st.none()
        | st.sampled_from(["realtime", "batch", "blackbox", "Realtime", "other"]).map(ServiceType),
        keywords=st.lists(text(), max_size=4).map(tuple),
        group=optional_text(),
        extras=extras(),
    )


def attribute_values() -> st.SearchStrategy[AttributeValue]:
    """Any AttributeValue."""
    return st.builds(AttributeValue, key=ids(), name=optional_text())


def attributes() -> st.SearchStrategy[Attribute]:
    """Any Attribute."""
    return st.builds(
        Attribute,
        code=ids(),
        datatype=st.sampled_from(
            [*sorted(AttributeDatatype.KNOWN), "SingleValueList", "custom_type"]
        ).map(AttributeDatatype),
        required=st.booleans(),
        variable=st.booleans(),
        description=optional_text(),
        datatype_description=optional_text(),
        order=st.none() | st.integers(min_value=-(2**53), max_value=2**53),
        values=st.lists(attribute_values(), max_size=3).map(tuple),
        extras=extras(),
    )


def definitions() -> st.SearchStrategy[ServiceDefinition]:
    """Any ServiceDefinition (its attributes come sorted by order)."""
    return st.builds(
        ServiceDefinition,
        service_code=ids(),
        attributes=st.lists(attributes(), max_size=4).map(tuple),
        extras=extras(),
    )


def receipts() -> st.SearchStrategy[Receipt]:
    """Any Receipt, including the reconciled kind."""
    return st.builds(
        Receipt,
        service_request_id=st.none() | ids(),
        token=st.none() | ids(),
        service_notice=optional_text(),
        account_id=st.none() | ids(),
        reconciled=st.booleans(),
        extras=extras(),
    )


def token_statuses() -> st.SearchStrategy[TokenStatus]:
    """Any TokenStatus."""
    return st.builds(
        TokenStatus, token=ids(), service_request_id=st.none() | ids(), extras=extras()
    )


def error_details() -> st.SearchStrategy[ErrorDetail]:
    """Any ErrorDetail (its description may be empty: servers send a bare code)."""
    return st.builds(ErrorDetail, code=st.none() | ids(), description=text())


def media_files() -> st.SearchStrategy[MediaFile]:
    """Small uploads with ordinary names and types."""
    return st.builds(
        MediaFile,
        filename=st.from_regex(r"[a-z][a-z0-9_-]{0,10}\.(jpg|png|gif)", fullmatch=True),
        content=st.binary(min_size=1, max_size=64),
        content_type=st.sampled_from(["image/jpeg", "image/png", "image/gif"]),
    )


def attribute_maps(values: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Attribute code → one value or a list of values (multivaluelist).

    Codes are printable (they are identifiers; FakeCity's "repeat" parser, like
    open311-adapter's greedy ``attribute[(.+)]`` pattern, reads no line breaks in them) and
    hold no ``[`` or ``]``, which the ``attribute[CODE]`` form names cannot carry.
    """
    codes = st.one_of(
        st.sampled_from(["WHISHETN", "SURFACE", "001", "a b", "Gießen", "x/y", "&=+%#?"]),
        st.text(PRINTABLE, min_size=1, max_size=12).filter(
            lambda c: c.strip() and "[" not in c and "]" not in c
        ),
    )
    one = values
    many = st.lists(values, max_size=4).map(tuple)
    return st.dictionaries(codes, st.one_of(one, many), max_size=4)


def new_requests(
    text_values: st.SearchStrategy[str],
    *,
    with_media: bool = False,
    media_urls: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[NewRequest]:
    """Valid NewRequests: a code, a location (a point, an address or an address id) and any
    optional fields, drawn from *text_values*."""
    optional = st.none() | text_values
    media_urls = media_urls if media_urls is not None else st.none() | urls()

    @st.composite
    def build(draw: st.DrawFn) -> NewRequest:
        where = draw(st.sampled_from(["point", "address", "address_id", "all"]))
        kwargs: dict[str, Any] = {
            "service_code": draw(text_values.filter(lambda s: s.strip())),
            "description": draw(st.none() | text_values.map(lambda s: s[:4000])),
            "email": draw(optional),
            "device_id": draw(optional),
            "account_id": draw(optional),
            "first_name": draw(optional),
            "last_name": draw(optional),
            "phone": draw(optional),
            "media_url": draw(media_urls),
            "attributes": draw(attribute_maps(text_values)),
        }
        if where in ("point", "all"):
            kwargs["lat"] = draw(latitudes())
            kwargs["long"] = draw(longitudes())
        if where in ("address", "all"):
            kwargs["address_string"] = draw(text_values.filter(lambda s: s.strip()))
            kwargs["address_id"] = draw(optional)
        if where in ("address_id", "all"):
            kwargs["address_id"] = draw(text_values.filter(lambda s: s.strip()))
            kwargs["address_string"] = draw(optional)
        if with_media:
            kwargs["media"] = draw(st.lists(media_files(), max_size=2))
        return NewRequest(**kwargs)

    return build()


def _json_trip(model: Any) -> Any:
    data = json.loads(json.dumps(to_dict(model)))
    return from_dict(type(model), data)


MODELS: dict[str, st.SearchStrategy[Any]] = {
    "ErrorDetail": error_details(),
    "Service": services(),
    "AttributeValue": attribute_values(),
    "Attribute": attributes(),
    "ServiceDefinition": definitions(),
    "ServiceRequest": service_requests(),
    "Receipt": receipts(),
    "TokenStatus": token_statuses(),
    "NewRequest": new_requests(
        text(),
        with_media=True,
        media_urls=st.none() | urls() | st.lists(urls(), min_size=2, max_size=3),
    ),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_to_dict_json_from_dict_is_identity(name: str) -> None:
    """to_dict → json.dumps → json.loads → from_dict gives back an equal model, every type."""

    @SMALL
    @given(model=MODELS[name])
    def check(model: Any) -> None:
        again = _json_trip(model)
        assert again == model
        assert type(again) is type(model)
        assert to_dict(again) == to_dict(model)  # extras and unhashed fields too
        if isinstance(model, NewRequest):
            assert again.attributes == model.attributes
            assert again.media == model.media
            assert new_request_fields(again) == new_request_fields(model)

    check()


@SMALL
@given(request=new_requests(st.text(ANY_CHAR, max_size=30)))
def test_new_request_sends_the_same_form_after_a_json_trip(request: NewRequest) -> None:
    """A NewRequest parked as JSON sends the same form fields, up to trimmed whitespace."""
    again = _json_trip(request)

    def trimmed(fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(name, value.strip()) for name, value in fields]

    assert trimmed(new_request_fields(again)) == trimmed(new_request_fields(request))
    assert again.attributes == request.attributes  # attribute values are never touched


# --- 3. NewRequest → form → FakeCity's form parser ----------------------------------------------

#: Form text: anything but surrogates, with the characters urlencoding must escape.
FORM_TEXT = st.one_of(
    st.sampled_from(["&=+%#?/ ", "a&b=c", "100%", "x+y", "Gießen", "Helsinkiläinen", "", "  "]),
    st.text(st.one_of(ANY_CHAR, st.sampled_from("&=+%#?/ ")), max_size=30),
)


def _given(value: str | None) -> bool:
    return value is not None and value.strip() != ""


def _expected_fields(request: NewRequest) -> dict[str, str]:
    names = (
        "address_string",
        "address_id",
        "email",
        "device_id",
        "account_id",
        "first_name",
        "last_name",
        "phone",
        "description",
    )
    fields = {"service_code": request.service_code}
    fields.update({n: getattr(request, n) for n in names if _given(getattr(request, n))})
    if isinstance(request.media_url, str):
        fields["media_url"] = request.media_url
    return fields


def _expected_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    expected: dict[str, Any] = {}
    for code, value in attributes.items():
        if isinstance(value, str):
            if value.strip():
                expected[code] = value
        else:
            kept = [v for v in value if v.strip()]
            if kept:
                expected[code] = kept
    return expected


@PROPERTY
@given(request=new_requests(FORM_TEXT))
def test_form_encoding_round_trips_through_fakecity_parser(request: NewRequest) -> None:
    """The POST form, parsed by FakeCity's own parser, gives back every non-blank field."""
    body = encode_form(new_request_fields(request))
    assert body.isascii()
    form = parse_form(body, "brackets")
    sent = _expected_fields(request)
    coordinates = {k: form.fields.pop(k) for k in ("lat", "long") if k in form.fields}
    assert form.fields == sent
    assert form.attributes == _expected_attributes(request.attributes)
    assert all(len(values) == 1 for values in form.repeated.values())
    if request.lat is not None and request.long is not None:
        assert math.isclose(float(coordinates["lat"]), request.lat, abs_tol=1e-10)
        assert math.isclose(float(coordinates["long"]), request.long, abs_tol=1e-10)
        assert "e" not in coordinates["lat"].lower()
        assert "e" not in coordinates["long"].lower()
    else:
        assert coordinates == {}


@PROPERTY
@given(request=new_requests(FORM_TEXT))
def test_repeat_style_round_trips_through_fakecity_parser(request: NewRequest) -> None:
    """In the repeat style, list attributes come back as repeated values."""
    form = parse_form(encode_form(new_request_fields(request, multivalue="repeat")), "repeat")
    expected = {
        code: value[0] if isinstance(value, list) and len(value) == 1 else value
        for code, value in _expected_attributes(request.attributes).items()
    }
    assert form.attributes == expected


def _strip(value: str | None) -> str | None:
    return None if value is None else value.strip() or None


@SMALL
@given(request=new_requests(FORM_TEXT, media_urls=st.none() | urls()))
def test_submit_through_fakecity_stores_what_was_sent(request: NewRequest) -> None:
    """A NewRequest POSTed to FakeCity through the client is stored with the same fields."""
    clock = VirtualClock(start=NOW)
    city = FakeCity(seed=2, clock=clock, api_key="k3y", jurisdiction_id="city.example")
    code = request.service_code.strip()
    city.add_service(ServiceSpec(service_code=code, service_name="Any", close_after=None))
    with civic311.Client(
        city.base_url,
        transport=city.transport(),
        api_key="k3y",
        jurisdiction_id="city.example",
        retry=None,
        clock=clock,
    ) as client:
        receipt = client.submit(request)
    assert receipt.service_request_id is not None
    stored = city.get(receipt.service_request_id)
    assert stored is not None
    assert city.count_created() == 1
    assert stored.service_code == code
    for name in ("description", "email", "device_id", "account_id", "first_name", "last_name"):
        assert getattr(stored, name) == _strip(getattr(request, name)), name
    assert stored.phone == _strip(request.phone)
    assert stored.address == _strip(request.address_string)
    assert stored.address_id == _strip(request.address_id)
    assert stored.media_url == request.media_url  # one URL, already trimmed by NewRequest
    assert stored.jurisdiction_id == "city.example"
    expected_attributes = {
        code: tuple(value) if isinstance(value, list) else value
        for code, value in _expected_attributes(request.attributes).items()
    }
    assert dict(stored.attributes) == expected_attributes
    if request.lat is None or request.long is None:
        assert stored.lat is None
        assert stored.long is None
    else:
        assert stored.lat is not None
        assert stored.long is not None
        assert math.isclose(stored.lat, request.lat, abs_tol=1e-10)
        assert math.isclose(stored.long, request.long, abs_tol=1e-10)
