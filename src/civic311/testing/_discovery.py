"""FakeCity's Service Discovery document (reference §7).

A FakeCity whose endpoint is ``…/open311/v2`` publishes its discovery document beside it, at
``…/open311/discovery.json`` and ``…/open311/discovery.xml`` (the base path's parent, like the
Connected Bits cities, Bloomington and Chicago in the 2014 Servers page). Both formats are
always served: the spec requires both for discovery, even where the endpoint is XML-only.

By default the document lists the city itself as a GeoReport v2 **production** endpoint (with
the formats its `Dialect` serves) and, as the spec's own example does, a GeoReport **v3 test**
endpoint, which a client must not pick. Change the list to test failover from discovery::

    from civic311.testing._discovery import DiscoveryEndpointSpec

    city = FakeCity(discovery_endpoints=[
        DiscoveryEndpointSpec(url="http://127.0.0.1:8001/open311/v2"),   # listed first
        DiscoveryEndpointSpec(),                                          # this city itself
        DiscoveryEndpointSpec(type="test", formats=("text/xml",)),
    ])
    city.discovery_endpoints.append(DiscoveryEndpointSpec(url="http://mirror.test/open311/v2"))

An entry whose ``url`` is None stands for this city, with the host the request came to, so it is
right both in process (``http://fakecity.test/open311/v2``) and on a served port
(``http://127.0.0.1:PORT/open311/v2``).

Written with the standard library and the fake's own JSON writer, independent of civic311's
parser (`civic311.discovery`), so the two can catch each other's mistakes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from civic311.testing._render import Reply, text_reply
from civic311.testing._wire import XML_DECLARATION, Node, to_json

if TYPE_CHECKING:
    from civic311.testing._dialect import Dialect
    from civic311.testing._incoming import Incoming

__all__ = [
    "GEOREPORT_V2",
    "GEOREPORT_V3",
    "DiscoveryEndpointSpec",
    "default_discovery_endpoints",
    "discovery_ext",
    "discovery_reply",
    "discovery_url_for",
]

GEOREPORT_V2 = "http://wiki.open311.org/GeoReport_v2"
GEOREPORT_V3 = "http://wiki.open311.org/GeoReport_v3"

#: The document's changeset, in the spec example's ``YYYY-MM-DD HH:MM`` form (§6.2, §7).
DOCUMENT_CHANGESET = "2025-12-01 09:00"
#: Each endpoint's default changeset, as a W3C datetime (FixMyStreet's form).
ENDPOINT_CHANGESET = "2025-12-01T09:00:00Z"

_MIME = {"xml": "text/xml", "json": "application/json"}


def _formats(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise TypeError("formats must be a tuple of MIME types such as ('text/xml',), or None")
    return tuple(str(v) for v in value)


@attrs.frozen(kw_only=True)
class DiscoveryEndpointSpec:
    """One endpoint to list in a FakeCity's discovery document.

    * **url** - the base URL; None: this city's own endpoint, as reached.
    * **specification** - the spec token (GeoReport v2 by default).
    * **type** - ``"production"`` or ``"test"`` (any text, to test clients' tolerance).
    * **formats** - MIME types; None: this city's formats (``text/xml``, and
      ``application/json`` unless the dialect is XML-only).
    * **changeset** - written as given.
    """

    url: str | None = None
    specification: str = GEOREPORT_V2
    type: str = "production"
    formats: tuple[str, ...] | None = attrs.field(default=None, converter=_formats)
    changeset: str = ENDPOINT_CHANGESET


def default_discovery_endpoints() -> list[DiscoveryEndpointSpec]:
    """This city as GeoReport v2 production, plus a GeoReport v3 test endpoint (the spec's
    example lists one; clients must skip it)."""
    return [
        DiscoveryEndpointSpec(),
        DiscoveryEndpointSpec(
            url="http://fakecity.test/open311/v3",
            specification=GEOREPORT_V3,
            type="test",
            formats=("application/json", "text/xml"),
        ),
    ]


def _discovery_base(base_path: str) -> str:
    """The discovery path without extension: the base path's parent + ``/discovery``."""
    return base_path.rstrip("/").rpartition("/")[0] + "/discovery"


def discovery_ext(base_path: str, path: str) -> str | None:
    """The extension if *path* is the discovery document of an endpoint at *base_path*
    (``"json"``, ``"xml"``, or whatever else was asked), else None."""
    stem, dot, ext = path.rpartition(".")
    if dot and stem == _discovery_base(base_path):
        return ext
    return None


def discovery_url_for(base_url: str, fmt: str = "json") -> str:
    """The discovery document URL of an endpoint base URL: ``http://h/open311/v2`` →
    ``http://h/open311/discovery.json``."""
    return f"{base_url.rstrip('/').rpartition('/')[0]}/discovery.{fmt}"


def _document(
    incoming: Incoming,
    *,
    base_path: str,
    dialect: Dialect,
    endpoints: Sequence[DiscoveryEndpointSpec],
    key_required: bool,
) -> dict[str, Node]:
    host = incoming.headers.get("host") or "fakecity.test"
    own_url = f"http://{host}{base_path}"
    own_formats = [_MIME[f] for f in dialect.formats if f in _MIME]
    listed: list[Node] = [
        {
            "specification": spec.specification,
            "url": spec.url if spec.url is not None else own_url,
            "changeset": spec.changeset,
            "type": spec.type,
            "formats": list(spec.formats) if spec.formats is not None else own_formats,
        }
        for spec in endpoints
    ]
    key_service = (
        "Send the api_key this FakeCity was created with."
        if key_required
        else "No key is needed: this FakeCity accepts POSTs without one."
    )
    return {
        "changeset": DOCUMENT_CHANGESET,
        "contact": "FakeCity 311 (civic311.testing), for tests only.",
        "key_service": key_service,
        "endpoints": listed,
    }


def _xml(document: dict[str, Node]) -> bytes:
    root = ET.Element("discovery")
    for key in ("changeset", "contact", "key_service"):
        ET.SubElement(root, key).text = str(document[key])
    container = ET.SubElement(root, "endpoints")
    endpoints = document["endpoints"]
    assert isinstance(endpoints, list)
    for endpoint in endpoints:
        assert isinstance(endpoint, dict)
        element = ET.SubElement(container, "endpoint")
        for key in ("specification", "url", "changeset", "type"):
            ET.SubElement(element, key).text = str(endpoint[key])
        formats = ET.SubElement(element, "formats")
        for mime in endpoint["formats"]:
            ET.SubElement(formats, "format").text = str(mime)
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return (XML_DECLARATION + body + "\n").encode("utf-8")


def discovery_reply(
    incoming: Incoming,
    ext: str | None,
    *,
    base_path: str,
    dialect: Dialect,
    endpoints: Sequence[DiscoveryEndpointSpec],
    key_required: bool,
) -> Reply:
    """The answer to a request for the discovery document (GET or HEAD).

    Takes the few values of the city it lists (its *base_path*, *dialect*, discovery
    *endpoints* and whether POST needs a key) rather than the `FakeCity`, so this module sits
    below ``_city`` and imports nothing back from it (issue 10)."""
    if incoming.method not in ("GET", "HEAD"):
        reply = text_reply(405, f"Method {incoming.method} not allowed here")
        return Reply(405, (*reply.headers, ("Allow", "GET")), reply.body)
    document = _document(
        incoming,
        base_path=base_path,
        dialect=dialect,
        endpoints=endpoints,
        key_required=key_required,
    )
    if ext == "json":
        return Reply(200, (("Content-Type", dialect.json_content_type),), to_json(document))
    if ext == "xml":
        return Reply(200, (("Content-Type", dialect.xml_content_type),), _xml(document))
    return text_reply(404, "Bad extension. We support .xml and .json")
