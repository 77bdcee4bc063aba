"""The one converter: every value hook, extras, aliases, and to_dict/from_dict round trips."""

from __future__ import annotations

import contextlib
import json
import pickle
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import civic311
import civic311.outbox
from civic311 import (
    Attribute,
    AttributeValue,
    ErrorDetail,
    NewRequest,
    Receipt,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenStatus,
)
from civic311._wire.converter import format_datetime, from_dict, parse_datetime, to_dict
from civic311.errors import DecodeError, InvalidRequestError

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2010-01-01T00:00:00Z", datetime(2010, 1, 1, tzinfo=UTC)),
        ("2010-04-14T06:37:38-08:00", datetime(2010, 4, 14, 14, 37, 38, tzinfo=UTC)),
        ("2010-04-14T06:37:38-0800", datetime(2010, 4, 14, 14, 37, 38, tzinfo=UTC)),
        ("2010-04-14T06:37:38+05:30", datetime(2010, 4, 14, 1, 7, 38, tzinfo=UTC)),
        ("2016-02-16T16:45:01.017Z", datetime(2016, 2, 16, 16, 45, 1, 17000, tzinfo=UTC)),
        ("2016-02-16T16:45:01.0123456789Z", datetime(2016, 2, 16, 16, 45, 1, 12345, tzinfo=UTC)),
        ("2011-02-03 14:18", datetime(2011, 2, 3, 14, 18, tzinfo=UTC)),
        ("2010-01-01T00:00:00", datetime(2010, 1, 1, tzinfo=UTC)),
        ("2014-1-22T00:00:00Z", datetime(2014, 1, 22, tzinfo=UTC)),
        ("2010-01-01", datetime(2010, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_datetime_accepts_what_servers_write(text: str, expected: datetime) -> None:
    """W3C datetimes with Z, ±HH:MM, ±HHMM, fractions, a space, or no zone parse aware."""
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("text", ["yesterday", "2010-13-01T00:00:00Z", "2010-01-01T25:00:00Z", ""])
def test_parse_datetime_refuses_garbage(text: str) -> None:
    """Text that is not a datetime raises ValueError."""
    with pytest.raises(ValueError, match="not a W3C datetime"):
        parse_datetime(text)


def test_format_datetime_is_utc_z_without_fractions() -> None:
    """Query datetimes are UTC, second precision, with Z."""
    value = datetime(2024, 5, 1, 12, 30, 15, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert format_datetime(value) == "2024-05-01T10:30:15Z"
    assert format_datetime(value, zone=False) == "2024-05-01T10:30:15"


def test_format_datetime_refuses_naive() -> None:
    """A naive datetime raises InvalidRequestError instead of guessing a zone."""
    with pytest.raises(InvalidRequestError, match="naive"):
        format_datetime(datetime(2024, 5, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        (" 1 ", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        ("0", False),
        (0, False),
        (None, False),
        ("", False),
    ],
)
def test_booleans_in_any_case(raw: object, expected: bool) -> None:
    """metadata accepts booleans as JSON, strings in any case, and digits."""
    assert from_dict(Service, {"service_code": "1", "metadata": raw}).metadata is expected


def test_unknown_boolean_word_is_a_decode_error() -> None:
    """A boolean field holding a random word is a DecodeError naming the field."""
    with pytest.raises(DecodeError, match=r"Service\.metadata"):
        from_dict(Service, {"service_code": "1", "metadata": "perhaps"})


def test_numbers_where_strings_belong_become_strings() -> None:
    """Ids, codes, keys and zipcodes given as numbers become their digits."""
    request = from_dict(
        ServiceRequest, {"service_request_id": 638344, "service_code": 6, "zipcode": 94122}
    )
    assert (request.service_request_id, request.service_code, request.zipcode) == (
        "638344",
        "6",
        "94122",
    )
    assert from_dict(AttributeValue, {"key": 123, "name": "Ford"}).key == "123"


def test_lat_long_as_strings_or_numbers() -> None:
    """Coordinates parse from strings and numbers; empty strings are None."""
    request = from_dict(ServiceRequest, {"service_request_id": "1", "lat": "37.5", "long": -122})
    assert (request.lat, request.long) == (37.5, -122.0)
    assert from_dict(ServiceRequest, {"service_request_id": "1", "lat": ""}).lat is None


def test_bad_coordinate_is_a_decode_error() -> None:
    """A coordinate that is not a number raises DecodeError naming the field."""
    with pytest.raises(DecodeError, match=r"ServiceRequest\.lat"):
        from_dict(ServiceRequest, {"service_request_id": "1", "lat": "north"})


def test_bad_datetime_is_a_decode_error() -> None:
    """A datetime field that is not a datetime raises DecodeError naming the field."""
    with pytest.raises(DecodeError, match=r"requested_datetime"):
        from_dict(ServiceRequest, {"service_request_id": "1", "requested_datetime": "soon"})


def test_keywords_are_a_tuple_of_trimmed_strings() -> None:
    """Comma-separated keywords become a tuple of trimmed, non-empty strings."""
    service = from_dict(Service, {"service_code": "1", "keywords": " lorem, ipsum ,, dolor "})
    assert service.keywords == ("lorem", "ipsum", "dolor")
    assert from_dict(Service, {"service_code": "1", "keywords": ["a ", "b"]}).keywords == (
        "a",
        "b",
    )


def test_open_types_keep_unknown_values() -> None:
    """Unknown status, type and datatype values are kept as sent."""
    request = from_dict(ServiceRequest, {"service_request_id": "1", "status": "In Progress"})
    assert request.status == "In Progress"
    assert request.status is not None
    assert request.status.normalized == "in_progress"
    assert not request.is_closed
    service = from_dict(Service, {"service_code": "1", "type": "mystery"})
    assert service.type == "mystery"
    attribute = from_dict(Attribute, {"code": "x", "datatype": "geolocation"})
    assert attribute.datatype == "geolocation"
    assert not attribute.datatype.is_list


@pytest.mark.parametrize(
    ("status", "closed"),
    [
        ("closed", True),
        ("Closed", True),
        ("fixed", True),
        ("FIXED", True),
        ("duplicate", True),
        ("no_further_action", True),
        ("not councils responsibility", True),
        ("open", False),
        ("submitted", False),
        ("Received", False),
        ("in_progress", False),
        ("action_scheduled", False),
    ],
)
def test_status_answers_is_closed(status: str, closed: bool) -> None:
    """Status.is_closed knows the spec's and FixMyStreet's finished states."""
    assert civic311.Status(status).is_closed is closed


def test_unknown_fields_are_kept_in_extras() -> None:
    """Fields the spec does not name are kept in extras, not dropped."""
    record = {
        "service_request_id": "1",
        "notes": [{"type": "opened"}],
        "extended_attributes": {"ward": "3"},
    }
    request = from_dict(ServiceRequest, record)
    assert request.extras == {"notes": [{"type": "opened"}], "extended_attributes": {"ward": "3"}}


def test_known_misspellings_are_read_under_spec_names() -> None:
    """servicerequest_id, status_note and adress_id fill the spec's fields."""
    request = from_dict(
        ServiceRequest,
        {"servicerequest_id": "u-1", "status_note": "seen", "adress_id": "A7"},
    )
    assert (request.service_request_id, request.status_notes, request.address_id) == (
        "u-1",
        "seen",
        "A7",
    )
    assert request.extras == {}


def test_agency_responsible_object_is_flattened() -> None:
    """FixMyStreet's agency_responsible {"recipient": [...]} becomes readable text."""
    request = from_dict(
        ServiceRequest,
        {"service_request_id": "1", "agency_responsible": {"recipient": ["Roads", "Parks"]}},
    )
    assert request.agency_responsible == "Roads, Parks"


def test_missing_required_field_is_a_decode_error() -> None:
    """A service without a service_code raises DecodeError naming the field."""
    with pytest.raises(DecodeError, match="service_code"):
        from_dict(Service, {"service_name": "Potholes"})


def test_definition_attributes_sort_stably_by_order() -> None:
    """Attributes sort by order; missing orders go last in the server's sequence."""
    definition = from_dict(
        ServiceDefinition,
        {
            "service_code": "1",
            "attributes": [
                {"code": "c"},
                {"code": "b", "order": "2"},
                {"code": "d"},
                {"code": "a", "order": 1},
            ],
        },
    )
    assert [a.code for a in definition.attributes] == ["a", "b", "c", "d"]


SAMPLES: list[Any] = [
    Service(
        service_code="001",
        service_name="Pothole",
        metadata=True,
        type=civic311.ServiceType.REALTIME,
        keywords=("road", "hole"),
        extras={"groups": ["streets"]},
    ),
    ServiceDefinition(
        service_code="001",
        attributes=(
            Attribute(
                code="SIZE",
                datatype=civic311.AttributeDatatype("singlevaluelist"),
                required=True,
                order=1,
                values=(AttributeValue(key="1", name="Small"),),
            ),
        ),
    ),
    ServiceRequest(
        service_request_id="638344",
        status=civic311.Status("closed"),
        requested_datetime=datetime(2010, 4, 14, 6, 37, 38, tzinfo=timezone(timedelta(hours=-8))),
        lat=37.76,
        long=-122.42,
        zipcode="06510",
        extras={"notes": [{"type": "opened"}]},
    ),
    NewRequest(
        service_code="001",
        lat=1.0,
        long=2.0,
        description="Große Lücke",
        attributes={"A": ("x", "y"), "B": "z"},
    ),
    Receipt(service_request_id="1", service_notice="thanks"),
    TokenStatus(token="abc"),
    ErrorDetail(code="400", description="bad"),
]


@pytest.mark.parametrize("model", SAMPLES, ids=lambda m: type(m).__name__)
def test_to_dict_from_dict_round_trip(model: Any) -> None:
    """to_dict gives JSON-ready data that from_dict turns back into an equal model."""
    data = to_dict(model)
    text = json.dumps(data)
    assert from_dict(type(model), json.loads(text)) == model


@pytest.mark.parametrize("model", SAMPLES, ids=lambda m: type(m).__name__)
def test_models_pickle(model: Any) -> None:
    """Every model survives pickling (task queues, process pools)."""
    assert pickle.loads(pickle.dumps(model)) == model


def test_to_dict_datetimes_are_iso_8601() -> None:
    """Datetimes in to_dict output are ISO 8601 strings with their offset."""
    data = to_dict(SAMPLES[2])
    assert data["requested_datetime"] == "2010-04-14T06:37:38-08:00"
    assert data["extras"] == {"notes": [{"type": "opened"}]}


def test_to_dict_refuses_non_models() -> None:
    """to_dict on something that is not a model is a TypeError."""
    with pytest.raises(TypeError, match="civic311 model"):
        to_dict({"service_code": "1"})


def test_from_dict_refuses_non_mappings_and_non_models() -> None:
    """from_dict names the problem with a wrong class or wrong data."""
    with pytest.raises(TypeError, match="model class"):
        from_dict(dict, {})  # type: ignore[type-var]
    with pytest.raises(DecodeError, match="expected a mapping"):
        from_dict(Service, ["service_code"])  # type: ignore[arg-type]


def test_from_dict_new_request_still_validates() -> None:
    """A NewRequest read from a dict checks its rules like any other."""
    with pytest.raises(InvalidRequestError, match="location"):
        from_dict(NewRequest, {"service_code": "1"})


# --- from_dict of input: strict (issue 10 item 6) -------------------------------------------

REPORT = {"service_code": "001", "lat": 39.1653, "long": -86.5264, "description": "Pothole"}


def test_from_dict_new_request_refuses_an_unknown_key_naming_it() -> None:
    """A misspelt key is an InvalidRequestError naming it, with the field it resembles."""
    with pytest.raises(InvalidRequestError, match="did you mean 'description'") as caught:
        from_dict(NewRequest, {**REPORT, "descripton": "typo"})
    assert caught.value.field == "descripton"


def test_from_dict_new_request_refuses_a_missing_service_code() -> None:
    """No service_code is an InvalidRequestError naming service_code, not a DecodeError."""
    for data in ({"lat": 1.0, "long": 2.0}, {"service_code": None, "lat": 1.0, "long": 2.0}):
        with pytest.raises(InvalidRequestError) as caught:
            from_dict(NewRequest, data)
        assert caught.value.field == "service_code"
        assert not isinstance(caught.value, DecodeError)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("lat", "north"),
        ("long", [1]),
        ("service_code", ""),
        ("description", {"a": {"b": {"c": "deep"}}}),
        ("email", object()),
    ],
)
def test_from_dict_new_request_names_a_bad_field(key: str, value: object) -> None:
    """A value that cannot be read is an InvalidRequestError naming its field."""
    with pytest.raises(InvalidRequestError) as caught:
        from_dict(NewRequest, {**REPORT, key: value})
    assert caught.value.field == key


def test_from_dict_new_request_refuses_a_non_mapping_as_invalid_input() -> None:
    """Data that is no mapping at all is invalid input, not a city's bad body."""
    with pytest.raises(InvalidRequestError) as caught:
        from_dict(NewRequest, ["service_code"])  # type: ignore[arg-type]
    assert caught.value.field == "data"


def test_from_dict_new_request_still_reads_values_tolerantly() -> None:
    """Strict about keys, not about spelling values: numbers as text, text trimmed."""
    request = from_dict(
        NewRequest, {"service_code": 1, "lat": "39.5", "long": "-86.5", "email": " a@b.c "}
    )
    assert (request.service_code, request.lat, request.long) == ("1", 39.5, -86.5)
    assert request.email == "a@b.c"


def test_from_dict_of_city_models_stays_tolerant() -> None:
    """What cities send keeps today's rules: unknown keys in extras, DecodeError when unreadable."""
    request = from_dict(ServiceRequest, {"service_request_id": "1", "descripton": "x"})
    assert request.extras == {"descripton": "x"}
    with pytest.raises(DecodeError):
        from_dict(Service, {"service_name": "no code"})


# --- to_dict of every exported attrs type (issue 10 item 6) ---------------------------------

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
_REQUEST = ServiceRequest(service_request_id="7", status=civic311.Status("open"))
_NEW = NewRequest(service_code="001", lat=1.0, long=2.0)
EXPORTED_SAMPLES: dict[str, Any] = {
    "Attempt": civic311.Attempt(
        endpoint="https://a.test", number=1, outcome="HTTP 503", error=civic311.TransportError("x")
    ),
    "AttemptEvent": civic311.AttemptEvent(
        operation="list_services",
        attempt=1,
        endpoint="https://a.test",
        format="json",
        outcome="ok",
        latency=0.25,
    ),
    "EndpointHealth": civic311.EndpointHealth(
        url="https://a.test",
        state=civic311.EndpointState.DOWN,
        since=WHEN,
        last_error="HTTP 503",
        consecutive_failures=3,
        latency_avg=None,
        format="json",
        format_switched=False,
        calls=5,
        failures=3,
        next_probe_at=WHEN,
    ),
    "FlushReport": civic311.outbox.FlushReport(sent=("a",), failed=("b",)),
    "MediaFile": civic311.MediaFile.from_bytes(b"\xff\xd8\xff\xd9", "a.jpg"),
    "OutboxEntry": civic311.outbox.OutboxEntry(
        local_id="l1",
        created_at=WHEN,
        state="sent",
        request=_NEW,
        receipt=Receipt(service_request_id="9"),
    ),
    "Problem": civic311.Problem(code="SIZE", description="How big?", message="required"),
    "Profile": civic311.Profile(name="x", result_cap=500),
    "RetryPolicy": civic311.RetryPolicy(),
    "StatusChange": civic311.StatusChange(
        service_request_id="7",
        status=civic311.Status("closed"),
        previous=None,
        status_notes=None,
        updated_datetime=WHEN,
        observed_at=WHEN,
        request=_REQUEST,
    ),
    "Tracked": civic311.Tracked(requests=(_REQUEST,), changes=(), missing=("8",)),
    **{type(sample).__name__: sample for sample in SAMPLES},
    "AttributeValue": AttributeValue(key="1", name="Small"),
    "Attribute": Attribute(code="SIZE", values=(AttributeValue(key="1"),), order=2),
}


def _exported_attrs_classes() -> list[str]:
    import attrs

    # The package root and the outbox, whose entries web back ends pass around too.
    return sorted(
        name
        for module in (civic311, civic311.outbox)
        for name in module.__all__
        if isinstance(getattr(module, name), type) and attrs.has(getattr(module, name))
    )


def test_every_exported_attrs_class_has_a_to_dict_sample() -> None:
    """A new exported attrs class must be added to the to_dict samples below."""
    assert _exported_attrs_classes() == sorted(EXPORTED_SAMPLES)


@pytest.mark.parametrize("name", sorted(EXPORTED_SAMPLES))
def test_to_dict_takes_every_exported_attrs_type(name: str) -> None:
    """to_dict turns every attrs type civic311 exports into JSON-ready data."""
    data = to_dict(EXPORTED_SAMPLES[name])
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_to_dict_of_records_spells_enums_errors_and_datetimes_plainly() -> None:
    """Enumerations are their values, errors their class and message, datetimes ISO 8601."""
    health = to_dict(EXPORTED_SAMPLES["EndpointHealth"])
    assert health["state"] == "down"
    assert health["since"] == "2026-01-02T03:04:05+00:00"
    assert to_dict(EXPORTED_SAMPLES["Problem"]) == {
        "code": "SIZE",
        "description": "How big?",
        "message": "required",
    }
    attempt = to_dict(EXPORTED_SAMPLES["Attempt"])
    assert attempt["error"] == {"type": "TransportError", "message": "x"}
    entry = to_dict(EXPORTED_SAMPLES["OutboxEntry"])
    assert entry["request"] == to_dict(_NEW)
    assert entry["receipt"]["service_request_id"] == "9"
    assert to_dict(EXPORTED_SAMPLES["MediaFile"])["content_base64"] == "/9j/2Q=="


# --- the generated structure functions agree with the tolerant ones (issue 13) --------------
#
# Decoding a list goes through one generated function per model, each field's common case
# inline; anything unusual is handed to the tolerant function. These tests hold the two to the
# same answers: equal models of the same types (the same datetime zones, the same open types),
# or the same DecodeError.

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from civic311._wire.converter import (  # noqa: E402
    LAYOUT_CACHE_SIZE,
    SPECIALIZE_AFTER,
    SPECIALIZED_LAYOUTS,
    _fast_model_hook,
    _model_hook,
    _value_hooks,
    structurer,
)

FAST_MODELS = (ServiceRequest, Service, Receipt, TokenStatus, ErrorDetail, AttributeValue)
TOLERANT = {model: _model_hook(model, _value_hooks()) for model in FAST_MODELS}

TRICKY_STAMPS = [
    "2025-01-12T10:11:12-05:00",
    "2025-01-12T10:11:12+00:00",
    "2025-01-12T10:11:12Z",
    "2025-01-12T10:11:12z",
    "2025-01-12T10:11:12",
    "2025-01-12 10:11:12",
    " 2025-01-12T10:11:12Z ",
    "2025-01-12T10:11:12.5Z",
    "2025-01-12T10:11:12-0500",
    "2025-01-12T10:11:12+05:30",
    "2025-13-12T10:11:12-05:00",
    "2025-02-30T10:11:12Z",
    "2025-01-12T24:11:12",
    "2025-W01-1T10:11:12+05:00",
    "2025-01-12T101112.1+05:00",
    "2025-01-12X10:11:12+05:00",
    "٢٠٢٥-01-12T10:11:12+05:00",
    "2025-01-12T10:11:12+24:00",
    "2025-01-12T10:11:12Z12",
    "2025-1-2T3:04:05Z",
    "2025-01-12",
    "",
    "soon",
]
TRICKY_NUMBERS = [
    None,
    "",
    " ",
    "1.5",
    " -2.25 ",
    "1_0",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "0x10",
    "١٢",
    7,
    0,
    True,
    False,
    2.5,
    float("nan"),
    float("inf"),
    10**400,
    [1],
    {"a": 1},
    "north",
]
TRICKY_TEXT = [
    None,
    "",
    "  ",
    " padded ",
    "001",
    638344,
    1.5,
    2.0,
    True,
    ["a", " b "],
    {"r": ["x", "y"]},
    [[["deep"]]],
    "\u00a0nbsp\u00a0",
    "Große Lücke",
]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6))
VALUES = st.one_of(
    SCALARS,
    st.sampled_from(TRICKY_STAMPS + TRICKY_NUMBERS + TRICKY_TEXT),
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=3), SCALARS, max_size=2),
)
KEYS = st.sampled_from(
    [f.name for f in civic311.models.attrs.fields(ServiceRequest)]
    + ["service_code", "service_name", "metadata", "type", "keywords", "group", "token", "code"]
    + ["key", "name", "servicerequest_id", "status_note", "address_string", "adress_id"]
    + ["priority", "notes", "extras"]
)


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def _outcome(model: type[Any], structure: Any, record: dict[str, Any]) -> Any:
    try:
        result = structure(dict(record))
    except DecodeError as exc:
        return ("DecodeError", str(exc))
    import attrs

    fields = [(f.name, getattr(result, f.name)) for f in attrs.fields(model)]
    extras = getattr(result, "extras", {})
    return (
        type(result),
        result,
        [(name, type(value), repr(value)) for name, value in fields],
        [(key, type(key), type(extras)) for key in extras],  # the same keys, in order
        hash(result),
    )


def _assert_same(model: type[Any], record: dict[str, Any]) -> None:
    slow = _outcome(model, TOLERANT[model], record)
    assert _outcome(model, structurer(model), record) == slow, record
    # A fresh generated function, asked often enough that the record's layout gets a function
    # of its own: every answer, before and after, is the tolerant one's.
    fresh = _fast_model_hook(model, _value_hooks(), TOLERANT[model])
    for _ in range(SPECIALIZE_AFTER + 2):
        assert _outcome(model, fresh, record) == slow, record


def test_the_fast_structure_functions_are_generated() -> None:
    """Each plain model decodes through a generated function (built on first use)."""
    for model in FAST_MODELS:
        with contextlib.suppress(DecodeError):
            structurer(model)({})  # the first use builds it
        assert structurer(model).__code__.co_filename.startswith("<civic311 generated")
    assert civic311._wire.converter.converter.structure(
        {"code": "1", "description": "x"}, ErrorDetail
    ) == ErrorDetail("1", "x")


@pytest.mark.parametrize("stamp", TRICKY_STAMPS)
@pytest.mark.parametrize("field", ["requested_datetime", "expected_datetime"])
def test_fast_and_tolerant_read_tricky_datetimes_alike(stamp: str, field: str) -> None:
    """Every datetime spelling gives the same datetime, zone and all, or the same error."""
    _assert_same(ServiceRequest, {"service_request_id": "1", field: stamp})


@pytest.mark.parametrize("value", TRICKY_NUMBERS, ids=repr)
def test_fast_and_tolerant_read_tricky_numbers_alike(value: object) -> None:
    """lat and long as text, numbers, NaN, infinities or nonsense: the same answer both ways."""
    _assert_same(ServiceRequest, {"service_request_id": "1", "lat": value, "long": 1.0})


@pytest.mark.parametrize("value", TRICKY_TEXT, ids=repr)
@pytest.mark.parametrize("field", ["service_request_id", "status", "description"])
def test_fast_and_tolerant_read_tricky_text_alike(value: object, field: str) -> None:
    """Ids, statuses and text as numbers, booleans, containers or padding: the same answer."""
    _assert_same(ServiceRequest, {"service_request_id": "1", field: value})


@pytest.mark.parametrize(
    "record",
    [
        {"servicerequest_id": "5", "status_note": "n"},
        {"service_request_id": "5", "servicerequest_id": "6"},
        {"service_request_id": "5", "extras": {"a": 1}, "b": 2},
        {"service_request_id": "5", "extras": "odd"},
        {"service_request_id": "5", "priority": _deep(40)},
        {"service_request_id": "5", "a": 1, "b": _deep(40)},
        {"service_request_id": "5", "a": 1, "b": [1, {"c": 2}]},
        {"service_request_id": None, "token": "t"},
        {},
        {"service_request_id": "5", 1: "one"},
        {"service_request_id": "5", True: "true"},
    ],
)
def test_fast_and_tolerant_read_aliases_and_extras_alike(record: dict[str, Any]) -> None:
    """Aliases, nested and too-deep extras, missing ids: the same model or the same error."""
    _assert_same(ServiceRequest, record)


def test_fast_structure_remembers_layouts_without_confusing_them() -> None:
    """Records with the same keys in other orders or other extras keep their own extras."""
    first = structurer(ServiceRequest)({"service_request_id": "1", "a": 1, "b": 2})
    second = structurer(ServiceRequest)({"b": 2, "service_request_id": "1", "a": 1})
    assert list(first.extras) == ["a", "b"]
    assert list(second.extras) == ["b", "a"]
    for index in range(200):  # more layouts than are remembered
        request = structurer(ServiceRequest)({"service_request_id": "1", f"x{index}": index})
        assert request.extras == {f"x{index}": index}


def test_often_seen_layouts_get_functions_of_their_own_within_bounds() -> None:
    """A layout seen often is read by its own function; only so many, and only after a while."""
    fresh = _fast_model_hook(ServiceRequest, _value_hooks(), TOLERANT[ServiceRequest])
    assert fresh is not None
    layouts = fresh.__globals__["_layouts"]
    record = {"service_request_id": "1", "status": "open", "priority": "high"}
    for _ in range(SPECIALIZE_AFTER - 1):
        fresh(record)
    assert not any(callable(entry) for entry in layouts.values())
    fresh(record)
    assert callable(layouts[tuple(record)])
    assert fresh(record) == TOLERANT[ServiceRequest](record)
    for index in range(LAYOUT_CACHE_SIZE * 2):  # many layouts, each seen often
        other = {"service_request_id": "1", f"x{index}": index}
        for _ in range(SPECIALIZE_AFTER + 1):
            assert fresh(other).extras == {f"x{index}": index}
    assert sum(callable(entry) for entry in layouts.values()) == SPECIALIZED_LAYOUTS
    assert len(layouts) <= LAYOUT_CACHE_SIZE
    assert len(fresh.__globals__["_hits"]) <= LAYOUT_CACHE_SIZE


def test_fast_built_models_are_ordinary_frozen_models() -> None:
    """A model the generated function builds equals, hashes, pickles and freezes like any."""
    import attrs

    record = {"service_request_id": "9", "status": "open", "lat": 1.5, "priority": "high"}
    fast = structurer(ServiceRequest)(record)
    built = ServiceRequest(
        service_request_id="9",
        status=civic311.Status("open"),
        lat=1.5,
        extras={"priority": "high"},
    )
    assert fast == built
    assert hash(fast) == hash(built)
    assert pickle.loads(pickle.dumps(fast)) == built
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast.lat = 2.0  # type: ignore[misc]
    assert attrs.evolve(fast, lat=2.0).lat == 2.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(FAST_MODELS),
    record=st.dictionaries(KEYS | st.text(max_size=4), VALUES, max_size=12),
)
def test_fast_and_tolerant_structure_agree_on_any_record(
    model: type[Any], record: dict[str, Any]
) -> None:
    """For any record, the generated function gives what the tolerant one gives."""
    _assert_same(model, record)


@pytest.mark.parametrize(
    ("model", "layouts", "guessed"),
    [
        # as many keys, other keys: an extra in place of a field, or another extra
        (
            ServiceRequest,
            [
                {"service_request_id": "1", "status": "open", "priority": "high"},
                {"service_request_id": "2", "status": "open", "lat": 1.5},
                {"service_request_id": "3", "channel": "web", "status": "closed"},
                {"status": "open", "priority": "low", "service_request_id": "4"},
            ],
            True,
        ),
        # two extras in either order: the record's order is kept
        (
            ServiceRequest,
            [
                {"service_request_id": "1", "a": 1, "b": 2},
                {"service_request_id": "1", "b": 2, "a": 1},
            ],
            False,
        ),
        # a model without extras: unknown keys read (and dropped) the same way
        (
            ErrorDetail,
            [{"code": "1", "description": "x", "z": 1}, {"code": "2", "description": "y", "w": 2}],
            True,
        ),
    ],
)
def test_layouts_guessed_by_key_count_read_like_the_tolerant_function(
    model: type[Any], layouts: list[dict[str, Any]], guessed: bool
) -> None:
    """Records with as many keys as a known layout but other keys or order decode exactly."""
    fresh = _fast_model_hook(model, _value_hooks(), TOLERANT[model])
    assert fresh is not None
    for record in layouts:  # each layout gets a function of its own
        for _ in range(SPECIALIZE_AFTER + 1):
            fresh(record)
    # Two extras or more: their order shows, so those layouts are never guessed.
    assert bool(fresh.__globals__["_by_len"]) is guessed
    for _ in range(3):
        for record in [*layouts, *reversed(layouts)]:
            assert _outcome(model, fresh, record) == _outcome(model, TOLERANT[model], record)
