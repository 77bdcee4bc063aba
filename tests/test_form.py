"""POST form encoding per spec §2.3: UTF-8, attribute[CODE], multivalue styles, no empties."""

from __future__ import annotations

from urllib.parse import parse_qsl

from civic311 import NewRequest
from civic311._wire.form import encode_form, new_request_fields


def test_fields_in_spec_order_without_empties() -> None:
    """Only given, non-empty fields are sent, service_code first."""
    request = NewRequest(
        service_code="001",
        lat=37.76524078,
        long=-122.4212043,
        address_string="1234 5th street",
        email="",
        description="A large sinkhole",
    )
    assert new_request_fields(request) == [
        ("service_code", "001"),
        ("lat", "37.76524078"),
        ("long", "-122.4212043"),
        ("address_string", "1234 5th street"),
        ("description", "A large sinkhole"),
    ]


def test_multivaluelist_brackets_and_repeat_styles() -> None:
    """Lists go as attribute[C][]=v (spec) or repeated attribute[C]=v (open311-adapter)."""
    request = NewRequest(service_code="1", address_id="a", attributes={"C": ["x", "y"], "S": "z"})
    assert new_request_fields(request)[2:] == [
        ("attribute[C][]", "x"),
        ("attribute[C][]", "y"),
        ("attribute[S]", "z"),
    ]
    assert new_request_fields(request, multivalue="repeat")[2:] == [
        ("attribute[C]", "x"),
        ("attribute[C]", "y"),
        ("attribute[S]", "z"),
    ]


def test_empty_attribute_values_are_omitted() -> None:
    """Empty attribute strings and empty lists are not sent."""
    request = NewRequest(
        service_code="1", address_id="a", attributes={"A": "", "B": [], "C": [" "]}
    )
    assert new_request_fields(request) == [("service_code", "1"), ("address_id", "a")]


def test_coordinates_never_use_exponent_notation() -> None:
    """Tiny coordinates are written in plain decimals."""
    request = NewRequest(service_code="1", lat=1e-7, long=-0.0)
    fields = dict(new_request_fields(request))
    assert fields["lat"] == "0.0000001"
    assert fields["long"] == "0"


def test_encoding_is_utf8_and_reversible() -> None:
    """Non-ASCII and reserved characters survive encoding and standard decoding."""
    request = NewRequest(
        service_code="Animals/Nuisance & Noise",
        address_string="Gießen, Straße 5 #2",
        description="Köln: 100% kaputt?\nJa=ja",
    )
    body = encode_form(new_request_fields(request))
    assert body.isascii()
    decoded = parse_qsl(body.decode("ascii"), keep_blank_values=True, encoding="utf-8")
    assert decoded == new_request_fields(request)
