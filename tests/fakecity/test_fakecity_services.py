"""GET services and GET services/{code}: shapes in both formats, routing and general errors."""

from __future__ import annotations

import httpx
import pytest

from civic311.testing import AttributeSpec, FakeCity, ServiceSpec, ValueSpec

from .fakecity_helpers import body, spec_errors, text, xml


def test_services_json_is_an_array_of_spec_objects(http: httpx.Client) -> None:
    """GET services.json answers a top-level array with every §3.1 field, codes as strings."""
    services = body(http.get("services.json"))
    assert [s["service_code"] for s in services] == ["001", "002", "003", "004", "005"]
    assert list(services[0]) == [
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    ]
    assert {s["service_code"]: s["type"] for s in services} == {
        "001": "realtime",
        "002": "realtime",
        "003": "realtime",
        "004": "batch",
        "005": "blackbox",
    }
    assert services[0]["metadata"] is True
    assert services[3]["metadata"] is False


def test_services_xml_has_declaration_and_service_children(http: httpx.Client) -> None:
    """GET services.xml is <services> with one <service> per service, in text/xml UTF-8."""
    root = xml(http.get("services.xml"))
    assert root.tag == "services"
    items = root.findall("service")
    assert [text(s, "service_code") for s in items] == ["001", "002", "003", "004", "005"]
    assert text(items[0], "metadata") == "true"
    assert text(items[4], "type") == "blackbox"
    assert text(items[0], "group") == "streets"


def test_definition_json_is_an_object_with_every_datatype(http: httpx.Client) -> None:
    """The service definitions hold all six datatypes, values for lists, variable=false too."""
    seen: set[str] = set()
    for code in ("001", "002", "003"):
        definition = body(http.get(f"services/{code}.json"))
        assert isinstance(definition, dict)
        assert definition["service_code"] == code
        for attribute in definition["attributes"]:
            seen.add(attribute["datatype"])
            assert list(attribute)[:7] == [
                "variable",
                "code",
                "datatype",
                "required",
                "datatype_description",
                "order",
                "description",
            ]
            has_values = attribute["datatype"] in ("singlevaluelist", "multivaluelist")
            assert ("values" in attribute) == has_values
    assert seen == {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}
    pothole = body(http.get("services/001.json"))["attributes"]
    assert pothole[0]["code"] == "SAFETY"
    assert pothole[0]["variable"] is False
    graffiti = body(http.get("services/003.json"))["attributes"][0]
    assert graffiti["required"] is True
    assert graffiti["values"][0] == {"key": "brick", "name": "Brick or stone"}


def test_definition_xml_nests_attributes_and_values(http: httpx.Client) -> None:
    """services/{code}.xml is <service_definition><attributes><attribute><values><value>."""
    root = xml(http.get("services/002.xml"))
    assert root.tag == "service_definition"
    assert text(root, "service_code") == "002"
    attributes = root.findall("attributes/attribute")
    assert len(attributes) == 1
    assert text(attributes[0], "datatype") == "singlevaluelist"
    assert text(attributes[0], "datatype_description") is None  # empty element ↔ null
    values = attributes[0].findall("values/value")
    assert (text(values[0], "key"), text(values[0], "name")) == ("123", "Street light on a pole")


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_definition_without_metadata_has_empty_attributes(http: httpx.Client, fmt: str) -> None:
    """A service with metadata=false still answers a definition, with an empty attribute list."""
    response = http.get(f"services/004.{fmt}")
    if fmt == "json":
        assert body(response) == {"service_code": "004", "attributes": []}
    else:
        root = xml(response)
        attributes = root.find("attributes")
        assert attributes is not None
        assert list(attributes) == []


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_unknown_service_code_is_404(http: httpx.Client, fmt: str) -> None:
    """An unknown service code answers 404 with a spec error body."""
    response = http.get(f"services/999.{fmt}")
    assert response.status_code == 404
    [(code, description)] = spec_errors(response, fmt)
    assert code == 404
    assert "999" in description


def test_codes_with_slash_and_space_are_one_percent_encoded_segment(
    http: httpx.Client, city: FakeCity
) -> None:
    """A code with '/' and ' ' is found when percent-encoded in the path (Accela, §8.9)."""
    code = "ServiceRequest/Animals/Animal Nuisance/NA"
    city.add_service(ServiceSpec(code, "Animal nuisance", type="realtime"))
    response = http.get("services/ServiceRequest%2FAnimals%2FAnimal%20Nuisance%2FNA.json")
    assert body(response)["service_code"] == code
    unencoded = http.get("services/ServiceRequest/Animals/Animal%20Nuisance/NA.json")
    assert unencoded.status_code == 404


def test_non_ascii_names_travel_as_utf8(http: httpx.Client, city: FakeCity) -> None:
    """Non-ASCII service names and value names survive both formats (§10.27)."""
    city.add_service(
        ServiceSpec(
            "010",
            "Müllabfuhr - Straße",
            attributes=(
                AttributeSpec(
                    "ART",
                    "singlevaluelist",
                    "Welche Tonne?",
                    values=(ValueSpec("1", "Gelbe Tonne"), ValueSpec("2", "Blaue Tonne")),
                ),
            ),
        )
    )
    assert body(http.get("services.json"))[-1]["service_name"] == "Müllabfuhr - Straße"
    assert text(xml(http.get("services.xml")).findall("service")[-1], "service_name") == (
        "Müllabfuhr - Straße"
    )


@pytest.mark.parametrize("path", ["services.csv", "services", "requests.html", "tokens/a.yaml"])
def test_unknown_extension_is_plain_text_404(http: httpx.Client, path: str) -> None:
    """An unknown or missing format answers 404 text/plain "Bad extension" (open311-adapter)."""
    response = http.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "Bad extension. We support .xml and .json"


@pytest.mark.parametrize("fmt", ["xml", "json"])
@pytest.mark.parametrize("path", ["nothing", "services/001/more", "tokens", "requests/1/2"])
def test_unknown_path_is_404_with_error_body(http: httpx.Client, path: str, fmt: str) -> None:
    """A path that is not one of the six methods answers 404 with an error body."""
    response = http.get(f"{path}.{fmt}")
    assert response.status_code == 404
    assert spec_errors(response, fmt) == [(404, "Resource not found")]


def test_path_outside_base_is_404(http: httpx.Client) -> None:
    """A URL outside the base path answers a 404 XML error."""
    response = http.get(str(http.base_url).replace("/open311/v2/", "/other/services.json"))
    assert response.status_code == 404
    assert spec_errors(response, "xml") == [(404, "Resource not found")]


def test_wrong_method_is_405_with_allow(http: httpx.Client) -> None:
    """A method the resource does not support answers 405 and an Allow header."""
    response = http.post("services.json", data={"a": "b"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert http.delete("requests.json").headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    "path", ["services", "services/001", "requests", "requests/600001", "tokens/abc"]
)
def test_jurisdiction_is_checked_on_every_get(
    http: httpx.Client, city: FakeCity, path: str
) -> None:
    """With a jurisdiction_id configured, each GET without it is 400 and with a wrong one 404."""
    city.jurisdiction_id = "fakecity.test"
    missing = http.get(f"{path}.json")
    assert missing.status_code == 400
    assert body(missing)[0]["description"] == "jurisdiction_id was not provided"
    empty = http.get(f"{path}.json", params={"jurisdiction_id": ""})
    assert empty.status_code == 400  # an empty parameter counts as absent (§1.5)
    wrong = http.get(f"{path}.xml", params={"jurisdiction_id": "other.gov"})
    assert wrong.status_code == 404
    assert spec_errors(wrong, "xml")[0][0] == 404
    if path in ("services", "services/001", "requests"):
        right = http.get(f"{path}.json", params={"jurisdiction_id": "fakecity.test"})
        assert right.status_code == 200


def test_jurisdiction_is_ignored_when_not_configured(http: httpx.Client) -> None:
    """A single-jurisdiction city ignores any jurisdiction_id sent (§1.3)."""
    response = http.get("services.json", params={"jurisdiction_id": "anything"})
    assert response.status_code == 200
