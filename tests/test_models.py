"""NewRequest checks itself when built; the models answer the questions callers have."""

from __future__ import annotations

from typing import Any

import pytest

import civic311
from civic311 import InvalidRequestError, NewRequest, Receipt, TokenStatus


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"service_code": "", "lat": 1.0, "long": 1.0}, "service_code"),
        ({"service_code": "   ", "lat": 1.0, "long": 1.0}, "service_code"),
        ({"service_code": 1, "lat": 1.0, "long": 1.0}, "service_code"),
        ({"service_code": None, "lat": 1.0, "long": 1.0}, "service_code"),
        ({"service_code": "1"}, "location"),
        ({"service_code": "1", "address_string": "  "}, "location"),
        ({"service_code": "1", "lat": 1.0}, "long"),
        ({"service_code": "1", "long": 1.0}, "lat"),
        ({"service_code": "1", "lat": 91.0, "long": 1.0}, "lat"),
        ({"service_code": "1", "lat": -90.5, "long": 1.0}, "lat"),
        ({"service_code": "1", "lat": 1.0, "long": 180.01}, "long"),
        ({"service_code": "1", "lat": float("nan"), "long": 1.0}, "lat"),
        ({"service_code": "1", "lat": "37.7", "long": 1.0}, "lat"),
        ({"service_code": "1", "lat": True, "long": 1.0}, "lat"),
        ({"service_code": "1", "address_string": 5}, "address_string"),
        ({"service_code": "1", "address_id": "a", "email": b"x@y"}, "email"),
        ({"service_code": "1", "address_id": "a", "description": "x" * 4001}, "description"),
        ({"service_code": "1", "address_id": "a", "attributes": ["A"]}, "attributes"),
        # Numbers are values now (issue 11 point 11), but never nan or inf, nor float keys.
        (
            {"service_code": "1", "address_id": "a", "attributes": {"A": float("inf")}},
            "attributes[A]",
        ),
        ({"service_code": "1", "address_id": "a", "attributes": {"A": [1.5]}}, "attributes[A]"),
        ({"service_code": "1", "address_id": "a", "attributes": {"": "x"}}, "attributes"),
        ({"service_code": "1", "address_id": "a", "attributes": {"A": b"x"}}, "attributes[A]"),
    ],
)
def test_new_request_refuses_bad_input_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    """Each broken rule raises InvalidRequestError whose field names the culprit."""
    with pytest.raises(InvalidRequestError) as caught:
        NewRequest(**kwargs)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lat": 37.76, "long": -122.42},
        {"lat": 0, "long": 0},
        {"lat": 90, "long": -180},
        {"address_string": "1234 5th street"},
        {"address_id": "545483"},
    ],
)
def test_new_request_accepts_each_kind_of_location(kwargs: dict[str, Any]) -> None:
    """lat+long together, an address_string, or an address_id each satisfy the location rule."""
    assert NewRequest(service_code="001", **kwargs).service_code == "001"


def test_new_request_attribute_lists_become_tuples() -> None:
    """Multivalue attributes are frozen as tuples of strings."""
    request = NewRequest(service_code="1", address_id="a", attributes={"A": ["x", "y"], "B": "z"})
    assert request.attributes == {"A": ("x", "y"), "B": "z"}


def test_new_request_is_frozen() -> None:
    """A NewRequest cannot be changed after it is checked."""
    request = NewRequest(service_code="1", address_id="a")
    with pytest.raises(AttributeError):
        request.service_code = "2"  # type: ignore[misc]


def test_receipt_tracking_id_prefers_the_id() -> None:
    """tracking_id is the service_request_id, else the token, else None."""
    assert Receipt(service_request_id="1", token="t").tracking_id == "1"
    assert Receipt(token="t").tracking_id == "t"
    assert Receipt().tracking_id is None


def test_token_status_pending() -> None:
    """A token status without an id is pending."""
    assert TokenStatus(token="t").pending
    assert not TokenStatus(token="t", service_request_id="5").pending


def test_service_type_answers_what_a_post_gives() -> None:
    """ServiceType says whether a POST gives an id or a token."""
    assert civic311.ServiceType("Realtime").gives_id
    assert civic311.ServiceType("batch").gives_token
    assert not civic311.ServiceType("blackbox").gives_id


def test_attribute_value_keys_and_definition_lookup() -> None:
    """A definition finds attributes by code, and list attributes list their keys."""
    attribute = civic311.Attribute(
        code="A",
        datatype=civic311.AttributeDatatype("multivaluelist"),
        values=(civic311.AttributeValue(key="1"), civic311.AttributeValue(key="2")),
    )
    definition = civic311.ServiceDefinition(service_code="s", attributes=(attribute,))
    assert definition.attribute("A") is attribute
    assert definition.attribute("B") is None
    assert attribute.value_keys() == {"1", "2"}
    assert attribute.datatype.is_multi
