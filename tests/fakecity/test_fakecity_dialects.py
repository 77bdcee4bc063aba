"""Dialects: each deviation from the spec, observed end to end with a plain httpx client."""

from __future__ import annotations

from datetime import timedelta

import attrs
import httpx
import pytest

from civic311.testing import Dialect, FakeCity

from .conftest import START
from .fakecity_helpers import POTHOLE, XML_TYPE, body, text, xml

DAY = timedelta(days=1)


def _seed(city: FakeCity, n: int) -> list[str]:
    """Add *n* requests one hour apart (newest first in the returned ids)."""
    records = [
        city.add_request("001", requested_datetime=START - timedelta(hours=h))
        for h in range(1, n + 1)
    ]
    return [r.service_request_id for r in records]


def _ids(response: httpx.Response) -> list[str]:
    return [str(item["service_request_id"]) for item in body(response)]


def test_xml_only(http: httpx.Client, city: FakeCity) -> None:
    """xml_only answers .json with 404 text/plain "Bad extension"; .xml still works."""
    city.dialect = Dialect.xml_only()
    response = http.get("services.json")
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text.startswith("Bad extension")
    assert http.post("requests.json", data=POTHOLE).status_code == 404
    assert city.count_created() == 0
    assert xml(http.get("services.xml")).tag == "services"


def test_wrapped_json(http: httpx.Client, city: FakeCity) -> None:
    """wrapped_json puts lists and the definition inside an object (FixMyStreet)."""
    city.dialect = Dialect(wrapped_json=True)
    assert list(body(http.get("services.json"))) == ["services"]
    assert body(http.get("services/002.json"))["service_definition"]["service_code"] == "002"
    posted = body(http.post("requests.json", data=POTHOLE))
    assert list(posted) == ["service_requests"]
    assert len(body(http.get("requests.json"))["service_requests"]) == 1
    assert xml(http.get("services.xml")).tag == "services"  # XML is unchanged


def test_string_booleans(http: httpx.Client, city: FakeCity) -> None:
    """string_booleans writes JSON booleans as "true" / "False" strings."""
    city.dialect = Dialect(string_booleans=True)
    services = body(http.get("services.json"))
    assert services[0]["metadata"] == "true"
    assert services[3]["metadata"] == "False"
    attribute = body(http.get("services/001.json"))["attributes"][0]
    assert (attribute["variable"], attribute["required"]) == ("False", "False")


def test_numeric_ids_and_keys(http: httpx.Client, city: FakeCity) -> None:
    """numeric_ids writes digit-only ids and keys as JSON numbers, but keeps leading zeros."""
    city.dialect = Dialect(numeric_ids=True)
    [item] = body(http.post("requests.json", data=POTHOLE))
    assert isinstance(item["service_request_id"], int)
    values = body(http.get("services/002.json"))["attributes"][0]["values"]
    assert values[0]["key"] == 123
    assert body(http.get("services.json"))[0]["service_code"] == "001"  # codes stay strings
    root = xml(http.post("requests.xml", data=POTHOLE))
    assert text(root[0], "service_request_id") == str(item["service_request_id"] + 1)


def test_requests_root(http: httpx.Client, city: FakeCity) -> None:
    """requests_root='requests' renames the XML root of every request list (6aika)."""
    city.dialect = Dialect(requests_root="requests")
    assert xml(http.post("requests.xml", data=POTHOLE)).tag == "requests"
    assert xml(http.get("requests.xml")).tag == "requests"
    request_id = city.created[0].service_request_id
    root = xml(http.get(f"requests/{request_id}.xml"))
    assert [child.tag for child in root] == ["request"]


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("spec", [{"code": 404, "description": "Service code 999 not found"}]),
        ("code_detail", {"code": 404, "detail": "Service code 999 not found"}),
        ("fms", {"errors": {"code": 404, "description": "Service code 999 not found"}}),
        ("markaspot", {"error": {"code": 404, "message": "Service code 999 not found"}}),
        ("description_only", [{"description": "Service code 999 not found"}]),
    ],
)
def test_error_shapes_json(
    http: httpx.Client, city: FakeCity, shape: str, expected: object
) -> None:
    """Each error_shape gives its documented JSON body (§5.2, §10.22)."""
    city.dialect = Dialect(error_shape=shape)  # type: ignore[arg-type]
    response = http.get("services/999.json")
    assert response.status_code == 404
    assert body(response) == expected


@pytest.mark.parametrize(
    ("shape", "root", "fields"),
    [
        ("spec", "errors", ["code", "description"]),
        ("code_detail", "error", ["code", "detail"]),
        ("fms", "errors", ["code", "description"]),
        ("markaspot", "error", ["code", "message"]),
        ("description_only", "errors", ["description"]),
    ],
)
def test_error_shapes_xml(
    http: httpx.Client, city: FakeCity, shape: str, root: str, fields: list[str]
) -> None:
    """Each error_shape has a matching XML body."""
    city.dialect = Dialect(error_shape=shape)  # type: ignore[arg-type]
    element = xml(http.get("services/999.xml"))
    assert element.tag == root
    item = element.find("error") if root == "errors" else element
    assert item is not None
    assert [child.tag for child in item] == fields


def test_multiple_errors_join_in_single_object_shapes(http: httpx.Client, city: FakeCity) -> None:
    """Shapes with one error object join several descriptions with '; '."""
    city.dialect = Dialect(error_shape="code_detail")
    detail = body(http.post("requests.json", data={"service_code": "003"}))["detail"]
    assert detail.count("; ") == 1


def test_post_status_201_and_full_record(http: httpx.Client, city: FakeCity) -> None:
    """6aika answers POST with 201 and the whole request record."""
    city.dialect = Dialect.sixaika()
    response = http.post("requests.json", data=POTHOLE)
    assert response.status_code == 201
    [item] = body(response)
    assert item["status"] == "open"
    assert item["description"] == "Big hole"
    assert item["requested_datetime"] == "2026-01-01T02:00:00+02:00"
    assert "address" not in item  # omit_empty: null fields are left out


def test_full_record_for_batch_has_token_not_id(http: httpx.Client, city: FakeCity) -> None:
    """With post_full_record a batch service still answers a token instead of an id."""
    city.dialect = Dialect(post_full_record=True)
    [item] = body(http.post("requests.json", data={"service_code": "004", "address_id": "9"}))
    assert "service_request_id" not in item
    assert item["token"] == city.created[0].token


def test_page_paging(http: httpx.Client, city: FakeCity) -> None:
    """paging='page' serves page/page_size slices; page=0 reads as 1; past the end is []."""
    city.dialect = Dialect(paging="page", page_size_default=3, page_size_max=4)
    ids = _seed(city, 7)
    assert _ids(http.get("requests.json")) == ids[:3]
    assert _ids(http.get("requests.json", params={"page": "0"})) == ids[:3]
    assert _ids(http.get("requests.json", params={"page": "2"})) == ids[3:6]
    assert _ids(http.get("requests.json", params={"page": "3"})) == ids[6:]
    assert _ids(http.get("requests.json", params={"page": "4"})) == []
    big = http.get("requests.json", params={"page_size": "100"})
    assert _ids(big) == ids[:4]  # clipped to page_size_max
    assert http.get("requests.json", params={"page": "two"}).status_code == 400


def test_repeat_last_page(http: httpx.Client, city: FakeCity) -> None:
    """repeat_last_page answers the last page again past the end."""
    city.dialect = Dialect(paging="page", page_size_default=3, repeat_last_page=True)
    ids = _seed(city, 7)
    assert _ids(http.get("requests.json", params={"page": "3"})) == ids[6:]
    assert _ids(http.get("requests.json", params={"page": "9"})) == ids[6:]


def test_offset_paging(http: httpx.Client, city: FakeCity) -> None:
    """paging='offset' serves limit/offset slices."""
    city.dialect = Dialect(paging="offset", page_size_default=2, page_size_max=5)
    ids = _seed(city, 6)
    assert _ids(http.get("requests.json")) == ids[:2]
    assert _ids(http.get("requests.json", params={"offset": "1", "limit": "3"})) == ids[1:4]
    assert _ids(http.get("requests.json", params={"offset": "6"})) == []
    assert http.get("requests.json", params={"offset": "-1"}).status_code == 400


def test_ignore_filters(http: httpx.Client, city: FakeCity) -> None:
    """ignore_filters drops date, span and status filtering (service_code still applies)."""
    city.dialect = Dialect(ignore_filters=True)
    old = city.add_request("001", requested_datetime=START - 400 * DAY)
    new = city.add_request("002", requested_datetime=START - DAY)
    params = {"start_date": "2025-12-30T00:00:00Z", "end_date": "2025-12-31T12:00:00Z"}
    assert _ids(http.get("requests.json", params={**params, "status": "closed"})) == [
        new.service_request_id,
        old.service_request_id,
    ]
    assert _ids(http.get("requests.json", params={"start_date": "junk"})) != []
    assert _ids(http.get("requests.json", params={"service_code": "001"})) == [
        old.service_request_id
    ]


def test_fixmystreet_has_no_default_window(http: httpx.Client, city: FakeCity) -> None:
    """The FixMyStreet preset returns old requests with no dates and allows any span."""
    city.dialect = Dialect.fixmystreet()
    old = city.add_request("001", requested_datetime=START - 400 * DAY)
    assert [r["service_request_id"] for r in body(http.get("requests.json"))["service_requests"]]
    response = http.get("requests.xml")
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    params = {"start_date": "2024-01-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}
    listed = body(http.get("requests.json", params=params))["service_requests"]
    assert listed[0]["service_request_id"] == old.service_request_id
    assert body(http.get("services.json"))["services"][3]["metadata"] == "False"


def test_multivalue_repeat(http: httpx.Client, city: FakeCity) -> None:
    """multivalue='repeat' collects repeated attribute[c]; the [] form is mis-read (400)."""
    city.dialect = Dialect.open311_adapter()
    form = {"service_code": "003", "address_string": "x", "attribute[SURFACE]": ["wood", "glass"]}
    assert http.post("requests.json", data=form).status_code == 200
    assert city.created[0].attributes["SURFACE"] == ("wood", "glass")
    brackets = {"service_code": "003", "address_string": "x", "attribute[SURFACE][]": ["wood"]}
    response = http.post("requests.json", data=brackets)
    assert response.status_code == 400
    assert "attribute[SURFACE] is required" in body(response)[0]["description"]


def test_multivalue_brackets_repeat_keeps_last(http: httpx.Client, city: FakeCity) -> None:
    """In the spec's brackets mode a repeated attribute[c] keeps only the last value (PHP)."""
    form = {"service_code": "003", "address_string": "x", "attribute[SURFACE]": ["wood", "glass"]}
    assert http.post("requests.json", data=form).status_code == 200
    assert city.created[0].attributes["SURFACE"] == "glass"


def test_idless_every(http: httpx.Client, city: FakeCity) -> None:
    """idless_every=N drops the id of every request whose id is a multiple of N in lists."""
    city.dialect = Dialect(idless_every=2)
    _seed(city, 4)
    items = body(http.get("requests.json"))
    assert sum("service_request_id" not in i for i in items) == 2
    kept = [int(i["service_request_id"]) for i in items if "service_request_id" in i]
    assert all(k % 2 for k in kept)
    assert all("service_code" in i for i in items)


def test_offset_datetime_style(http: httpx.Client, city: FakeCity) -> None:
    """datetime_style='offset' writes ±HH:MM local times (PHP date('c'))."""
    city.dialect = Dialect(datetime_style="offset", utc_offset_minutes=-300)
    city.add_request("001", requested_datetime=START - DAY)
    [item] = body(http.get("requests.json"))
    assert item["requested_datetime"] == "2025-12-30T19:00:00-05:00"


def test_omit_empty_in_xml(http: httpx.Client, city: FakeCity) -> None:
    """omit_empty leaves empty elements out of XML too."""
    city.dialect = Dialect(omit_empty=True)
    city.add_request("001", requested_datetime=START - DAY)
    request = xml(http.get("requests.xml")).find("request")
    assert request is not None
    assert request.find("media_url") is None
    assert request.find("service_code") is not None


def test_presets_are_distinct_and_adjustable() -> None:
    """Every preset differs from the spec; replace() adjusts one; bad values are refused."""
    presets = [
        Dialect.xml_only(),
        Dialect.chicago(),
        Dialect.sf(),
        Dialect.sixaika(),
        Dialect.fixmystreet(),
        Dialect.open311_adapter(),
        Dialect.markaspot(),
        Dialect.ureport(),
    ]
    assert all(p != Dialect.spec() for p in presets)
    assert len(set(presets)) == len(presets)
    assert Dialect.chicago().replace(paging="none").paging == "none"
    assert Dialect.xml_only().json_enabled is False
    with pytest.raises(ValueError, match="xml"):
        Dialect(formats=("json",))
    with pytest.raises(ValueError, match="paging"):
        Dialect(paging="cursor")  # type: ignore[arg-type]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Dialect().paging = "page"  # type: ignore[misc]


@pytest.mark.parametrize(
    "preset",
    [Dialect.markaspot(), Dialect.ureport(), Dialect.chicago(), Dialect.sf(), Dialect.sixaika()],
)
def test_presets_serve_a_full_round_trip(
    http: httpx.Client, city: FakeCity, preset: Dialect
) -> None:
    """Every preset serves services, a POST and a listing without error."""
    city.dialect = preset
    city.token_lookups = 0
    assert http.get("services.json").is_success
    assert http.post("requests.json", data=POTHOLE).is_success
    assert http.get("requests.xml").headers["content-type"] == XML_TYPE
    assert len(body(http.get("requests.json"))) == 1
