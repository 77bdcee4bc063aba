"""The one converter: every value hook, extras, aliases, and to_dict/from_dict round trips."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import civic311
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
