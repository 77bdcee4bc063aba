"""Small helpers shared by the FakeCity tests (plain functions, no fixtures)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import httpx

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
XML_TYPE = "text/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"

# A valid pothole report (service 001, realtime).
POTHOLE = {"service_code": "001", "lat": "41.3083", "long": "-72.9279", "description": "Big hole"}


def xml(response: httpx.Response) -> ET.Element:
    """Parse an XML answer, checking the declaration and content type first."""
    assert response.headers["content-type"] == XML_TYPE
    assert response.text.startswith(DECLARATION)
    return ET.fromstring(response.content)


def body(response: httpx.Response) -> Any:
    """Parse a JSON answer, checking the content type first."""
    assert response.headers["content-type"] == JSON_TYPE
    return json.loads(response.content)


def text(element: ET.Element, tag: str) -> str | None:
    """The text of a direct child (None when empty or missing)."""
    child = element.find(tag)
    return None if child is None else child.text


def spec_errors(response: httpx.Response, fmt: str) -> list[tuple[int, str]]:
    """The (code, description) pairs of a spec-shaped error body, in either format."""
    if fmt == "json":
        return [(e["code"], e["description"]) for e in body(response)]
    root = xml(response)
    assert root.tag == "errors"
    return [
        (int(text(e, "code") or 0), text(e, "description") or "") for e in root.findall("error")
    ]
