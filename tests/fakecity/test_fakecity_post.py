"""POST requests: answers per service type, strict validation, api_key and jurisdiction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from civic311.testing import FakeCity

from .fakecity_helpers import POTHOLE, body, spec_errors, text, xml


def test_realtime_post_json_answers_array_of_one_with_id(
    http: httpx.Client, city: FakeCity
) -> None:
    """A realtime POST answers [{service_request_id, service_notice, account_id}] and stores it."""
    response = http.post(
        "requests.json",
        data={**POTHOLE, "email": "a@example.org", "first_name": "Ada", "account_id": "77"},
    )
    assert response.status_code == 200
    [item] = body(response)
    assert list(item) == ["service_request_id", "service_notice", "account_id"]
    assert isinstance(item["service_request_id"], str)
    assert item["service_notice"].startswith("The City will inspect")
    assert item["account_id"] == "77"
    stored = city.get(item["service_request_id"])
    assert stored is not None
    assert (stored.lat, stored.long, stored.description) == (41.3083, -72.9279, "Big hole")
    assert (stored.email, stored.first_name, stored.origin) == ("a@example.org", "Ada", "post")
    assert city.count_created() == 1


def test_realtime_post_xml_shape(http: httpx.Client) -> None:
    """An XML POST answers <service_requests><request> with the id and empty account_id."""
    root = xml(http.post("requests.xml", data=POTHOLE))
    assert root.tag == "service_requests"
    [request] = root.findall("request")
    assert text(request, "service_request_id")
    assert request.find("account_id") is not None
    assert text(request, "account_id") is None
    assert request.find("token") is None


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_batch_post_answers_token_only(http: httpx.Client, city: FakeCity, fmt: str) -> None:
    """A batch service answers a token and no service_request_id (§3.6)."""
    response = http.post(f"requests.{fmt}", data={"service_code": "004", "address_string": "1 Elm"})
    if fmt == "json":
        [item] = body(response)
        assert "service_request_id" not in item
        token = item["token"]
    else:
        request = xml(response).find("request")
        assert request is not None
        assert request.find("service_request_id") is None
        token = text(request, "token")
    [stored] = city.created
    assert stored.token == token


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_blackbox_post_answers_neither_but_stores(
    http: httpx.Client, city: FakeCity, fmt: str
) -> None:
    """A blackbox service answers neither id nor token, and the request is still stored."""
    response = http.post(f"requests.{fmt}", data={"service_code": "005", "address_id": "A-12"})
    assert response.status_code == 200
    if fmt == "json":
        [item] = body(response)
        assert "service_request_id" not in item
        assert "token" not in item
    else:
        request = xml(response).find("request")
        assert request is not None
        assert request.find("service_request_id") is None
        assert request.find("token") is None
    assert city.count_created(service_code="005") == 1
    assert city.created[0].address_id == "A-12"


def test_multivaluelist_brackets_are_collected(http: httpx.Client, city: FakeCity) -> None:
    """attribute[CODE][]=v pairs become one list; attribute[CODE]=v a single value (§3.5)."""
    response = http.post(
        "requests.json",
        data={
            "service_code": "003",
            "address_string": "Town Hall",
            "attribute[SURFACE][]": ["brick", "glass"],
            "attribute[OFFENSIVE]": "Y",
        },
    )
    assert response.status_code == 200
    stored = city.created[0]
    assert stored.attributes == {"SURFACE": ("brick", "glass"), "OFFENSIVE": "Y"}


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_missing_service_code_is_400(http: httpx.Client, fmt: str) -> None:
    """No service_code answers 400 and names the field."""
    response = http.post(f"requests.{fmt}", data={"lat": "1", "long": "2"})
    assert response.status_code == 400
    assert spec_errors(response, fmt) == [(400, "service_code was not provided")]


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_unknown_service_code_is_404(http: httpx.Client, city: FakeCity, fmt: str) -> None:
    """An unknown service_code answers 404 and stores nothing."""
    response = http.post(f"requests.{fmt}", data={**POTHOLE, "service_code": "0001"})
    assert response.status_code == 404
    assert spec_errors(response, fmt)[0][0] == 404
    assert city.count_created() == 0


@pytest.mark.parametrize(
    ("location", "ok"),
    [
        ({"lat": "41.3", "long": "-72.9"}, True),
        ({"address_string": "1234 5th street"}, True),
        ({"address_id": "123"}, True),
        ({"lat": "41.3"}, False),
        ({"long": "-72.9"}, False),
        ({"lat": "north", "long": "-72.9"}, False),
        ({"lat": "91", "long": "0"}, False),
        ({"lat": "", "long": "", "address_string": " "}, False),
        ({}, False),
    ],
)
def test_location_rule(http: httpx.Client, location: dict[str, str], ok: bool) -> None:
    """lat+long together, address_string or address_id is required; numbers must be in range."""
    response = http.post("requests.json", data={"service_code": "001", **location})
    assert response.status_code == (200 if ok else 400)


def test_required_attribute_and_location_errors_are_listed_together(http: httpx.Client) -> None:
    """Several problems give several error entries in one 400 (§5.1)."""
    response = http.post("requests.json", data={"service_code": "003"})
    assert response.status_code == 400
    descriptions = [d for _, d in spec_errors(response, "json")]
    assert len(descriptions) == 2
    assert descriptions[0].startswith("A full location parameter must be submitted")
    assert descriptions[1].startswith("attribute[SURFACE] is required")


@pytest.mark.parametrize(
    ("service_code", "attributes", "message"),
    [
        ("003", {"attribute[SURFACE][]": ["brick", "plastic"]}, "plastic is not a valid key"),
        ("002", {"attribute[LIGHTTYPE]": "999"}, "999 is not a valid key"),
        ("002", {"attribute[LIGHTTYPE][]": ["123", "124"]}, "takes one value"),
        ("001", {"attribute[DEPTH]": "deep"}, "must be a number"),
        ("001", {"attribute[NOTICED]": "yesterday"}, "must be an ISO 8601 datetime"),
        ("001", {"attribute[LANE]": "left\nlane"}, "must be a single line"),
    ],
)
def test_attribute_values_are_validated(
    http: httpx.Client, service_code: str, attributes: dict[str, object], message: str
) -> None:
    """List values must be valid keys, numbers numeric, datetimes ISO 8601, strings one line."""
    data: dict[str, Any] = {"service_code": service_code, "address_string": "x"}
    if service_code == "003":
        data["attribute[SURFACE][]"] = "metal"
    response = http.post("requests.json", data={**data, **attributes})
    assert response.status_code == 400
    assert message in spec_errors(response, "json")[0][1]


def test_valid_attributes_of_every_datatype_are_accepted(
    http: httpx.Client, city: FakeCity
) -> None:
    """Good values of number, datetime, string and text attributes are stored as sent."""
    response = http.post(
        "requests.json",
        data={
            **POTHOLE,
            "attribute[DEPTH]": "7.5",
            "attribute[NOTICED]": "2025-12-31T08:00:00-05:00",
            "attribute[LANE]": "left",
            "attribute[DETAILS]": "two lines\nof text",
        },
    )
    assert response.status_code == 200
    assert city.created[0].attributes["DETAILS"] == "two lines\nof text"


def test_informational_attribute_is_ignored_but_recorded(
    http: httpx.Client, city: FakeCity
) -> None:
    """A variable=false attribute is not validated; what the client sent is kept for asserts."""
    response = http.post("requests.json", data={**POTHOLE, "attribute[SAFETY]": "x\ny"})
    assert response.status_code == 200
    assert city.created[0].attributes == {"SAFETY": "x\ny"}


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_api_key_missing_or_wrong_is_403(http: httpx.Client, city: FakeCity, fmt: str) -> None:
    """With an api_key configured, a POST without it or with a wrong one is 403, never echoed."""
    city.api_key = "s3cret-key"
    missing = http.post(f"requests.{fmt}", data=POTHOLE)
    assert missing.status_code == 403
    wrong = http.post(f"requests.{fmt}", data={**POTHOLE, "api_key": "guess-key"})
    assert wrong.status_code == 403
    assert spec_errors(wrong, fmt)[0][1].startswith("Invalid api_key received")
    assert "guess-key" not in wrong.text
    assert city.count_created() == 0


def test_api_key_is_accepted_in_body_or_query(http: httpx.Client, city: FakeCity) -> None:
    """The key may travel in the form body or in the query string (§1.4)."""
    city.api_key = "k"
    assert http.post("requests.json", data={**POTHOLE, "api_key": "k"}).status_code == 200
    assert http.post("requests.json", params={"api_key": "k"}, data=POTHOLE).status_code == 200
    assert city.count_created() == 2


def test_gets_do_not_need_the_api_key(http: httpx.Client, city: FakeCity) -> None:
    """Only POST requires the key; GET methods do not (§1.4)."""
    city.api_key = "k"
    assert http.get("services.json").status_code == 200
    assert http.get("requests.json").status_code == 200


def test_jurisdiction_on_post(http: httpx.Client, city: FakeCity) -> None:
    """POST checks jurisdiction_id: missing 400, wrong 404, right (body or query) 200."""
    city.jurisdiction_id = "fakecity.test"
    assert http.post("requests.json", data=POTHOLE).status_code == 400
    wrong = {**POTHOLE, "jurisdiction_id": "elsewhere.gov"}
    assert http.post("requests.json", data=wrong).status_code == 404
    right = {**POTHOLE, "jurisdiction_id": "fakecity.test"}
    assert http.post("requests.json", data=right).status_code == 200
    query = {"jurisdiction_id": "fakecity.test"}
    assert http.post("requests.json", params=query, data=POTHOLE).status_code == 200
    assert city.created[0].jurisdiction_id == "fakecity.test"


def test_jurisdiction_is_checked_before_the_api_key(http: httpx.Client, city: FakeCity) -> None:
    """A wrong jurisdiction answers 404 even when the key is missing too."""
    city.jurisdiction_id = "fakecity.test"
    city.api_key = "k"
    response = http.post("requests.json", data={**POTHOLE, "jurisdiction_id": "x"})
    assert response.status_code == 404


def test_non_form_bodies_are_400(http: httpx.Client, city: FakeCity) -> None:
    """A JSON body or a non-UTF-8 charset is refused with 400: the spec's body is urlencoded."""
    assert http.post("requests.json", json=POTHOLE).status_code == 400
    latin1 = http.post(
        "requests.json",
        content=b"service_code=001&address_string=Stra%DFe",
        headers={"content-type": "application/x-www-form-urlencoded; charset=iso-8859-1"},
    )
    assert latin1.status_code == 400
    bad_utf8 = http.post(
        "requests.json",
        content=b"service_code=001&address_string=Stra%DFe",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert bad_utf8.status_code == 400
    assert city.count_created() == 0


def test_utf8_form_with_plus_and_percent_escapes_round_trips(
    http: httpx.Client, city: FakeCity
) -> None:
    """'+' is a space and %XX are UTF-8 bytes; the description comes back unchanged."""
    response = http.post(
        "requests.json",
        content=b"service_code=001&address_string=K%C3%B6ln+Stra%C3%9Fe+1&description=a%26b+%3C3",
        headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    [item] = body(response)
    stored = city.get(item["service_request_id"])
    assert stored is not None
    assert stored.address == "Köln Straße 1"
    assert stored.description == "a&b <3"
    one = http.get(f"requests/{item['service_request_id']}.xml")
    request = xml(one).find("request")
    assert request is not None
    assert text(request, "description") == "a&b <3"


def test_description_longer_than_4000_is_400(http: httpx.Client) -> None:
    """A description over 4,000 characters is refused (§3.5)."""
    response = http.post("requests.json", data={**POTHOLE, "description": "x" * 4001})
    assert response.status_code == 400
    assert http.post("requests.json", data={**POTHOLE, "description": "x" * 4000}).is_success


def test_query_string_fields_do_not_count_as_form_fields(http: httpx.Client) -> None:
    """Only api_key and jurisdiction_id may come in the query; the report is in the body."""
    response = http.post("requests.json", params=POTHOLE)
    assert response.status_code == 400


def test_created_request_is_readable_by_id(http: httpx.Client, city: FakeCity) -> None:
    """GET requests/{id} returns the new request as an array of one, open, with its times."""
    [item] = body(http.post("requests.json", data=POTHOLE))
    [one] = body(http.get(f"requests/{item['service_request_id']}.json"))
    assert one["service_request_id"] == item["service_request_id"]
    assert one["status"] == "open"
    assert one["requested_datetime"] == "2026-01-01T00:00:00Z"
    assert one["updated_datetime"] == "2026-01-01T00:00:00Z"
    assert one["expected_datetime"] == "2026-01-03T00:00:00Z"
    assert one["service_name"] == "Pothole"
    assert one["lat"] == 41.3083


def test_chunked_post_body_is_read(city: FakeCity) -> None:
    """A POST body sent with chunked transfer encoding is read in full over serve()."""

    def chunks() -> Iterator[bytes]:
        yield b"service_code=001&"
        yield b"address_string=Main+St"

    with city.serve() as url:
        response = httpx.post(
            f"{url}/requests.json",
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200
    assert city.created[0].address == "Main St"
