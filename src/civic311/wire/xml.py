"""XML bytes → the same plain shapes the JSON decoder gives (Spark convention, spec §4.1).

Responses are untrusted, so parsing goes through defusedxml: entity declarations (billion
laughs), external entities and external DTDs are refused, not expanded (DESIGN promise 6).

The conversion, so that XML and JSON meet in one shape before the converter sees them:

- the root element is dropped (`parse_xml` returns its local name beside the data);
- an element with no children is its trimmed text, or None when empty (`<account_id/>`);
- a container of items is a list even with one item (reference §10.8): a parent whose children
  share one tag becomes a list when there are several, when the parent's name is the item's
  plural (`<values><value>`), when the pair is a known container (`<service_requests><request>`),
  or when it carries Rails' ``type="array"`` (Klarschiff, reference §8.5);
- anything else is a dict; a tag repeated inside it collects into a list;
- tags are compared by local name, so a default namespace does not matter (spec §1.2).
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from civic311.errors import DecodeError, snippet

__all__ = ["parse_xml"]

#: container → item pairs where the item name is not simply the container's singular.
_CONTAINERS: frozenset[tuple[str, str]] = frozenset(
    {
        ("service_requests", "request"),
        ("requests", "request"),
        ("service_request_updates", "request_update"),
        ("error_messages", "error_message"),
        ("error_messages", "error"),
        ("agency_responsible", "recipient"),
        ("status_notes", "status_note"),
    }
)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag[:1] == "{" else tag


def _is_list(parent: str, child: str, element: Element) -> bool:
    return parent == child + "s" or (parent, child) in _CONTAINERS or element.get("type") == "array"


def _convert(element: Element, name: str) -> Any:
    children = list(element)
    if not children:
        if element.get("type") == "array":
            return []
        if element.get("nil") == "true":
            return None
        text = element.text
        if text is None:
            return None
        text = text.strip()
        return text or None
    tags = [_local(child.tag) for child in children]
    first = tags[0]
    if all(tag == first for tag in tags) and (len(children) > 1 or _is_list(name, first, element)):
        return [_convert(child, first) for child in children]
    out: dict[str, Any] = {}
    for tag, child in zip(tags, children, strict=True):
        value = _convert(child, tag)
        if tag in out:
            previous = out[tag]
            if isinstance(previous, _Repeated):
                previous.append(value)
            else:
                out[tag] = _Repeated([previous, value])
        else:
            out[tag] = value
    for key, value in out.items():
        if isinstance(value, _Repeated):
            out[key] = list(value)
    return out


class _Repeated(list[Any]):
    """Marks a list built from a tag repeated inside an object (not a real container)."""


def parse_xml(body: bytes) -> tuple[str, Any]:
    """Parse an XML body into ``(root_local_name, plain_data)``.

    Raises:
        DecodeError: the body is not well-formed XML, or declares entities or a DTD
            that could be used against the parser.
    """
    try:
        root = fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise DecodeError(
            f"refused hostile XML ({type(exc).__name__}: entity and external references "
            "are not expanded)",
            body=body,
        ) from exc
    except (ParseError, ValueError) as exc:
        raise DecodeError(
            f"body is not well-formed XML ({exc}): {snippet(body)!r}", body=body
        ) from exc
    name = _local(root.tag)
    return name, _convert(root, name)
