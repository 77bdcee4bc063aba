"""XML bytes → the same plain shapes the JSON decoder gives (Spark convention, spec §4.1).

Responses are untrusted, so parsing is hardened the way defusedxml hardens ElementTree, with
defusedxml's own exceptions: entity declarations (billion laughs), external entities and
external DTDs are refused, not expanded (DESIGN promise 6).

The document is read in one pass over expat's events, building the plain data directly (no
element tree in between): expat with ElementTree's settings (namespace processing, buffered
text, an undefined entity is an error) and defusedxml's refusals, so what is accepted, what is
refused and the data that comes out are exactly what ``defusedxml.ElementTree.fromstring``
followed by a tree walk gave, at about half the cost (decoding is the hot path of harvests).

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

from typing import Any, NoReturn
from xml.parsers import expat

from defusedxml.common import DefusedXmlException, EntitiesForbidden, ExternalReferenceForbidden

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
    # expat gives "uri}local" for a namespaced name (the separator is "}", as in ElementTree).
    return tag.rsplit("}", 1)[-1]


def _leaf(attrib: dict[str, str], text: str | None) -> Any:
    """The value of an element without children."""
    if attrib:
        if attrib.get("type") == "array":
            return []
        if attrib.get("nil") == "true":
            return None
    if text is None:
        return None
    return text.strip() or None


def _parent(name: str, attrib: dict[str, str], tags: list[str], values: list[Any]) -> Any:
    """The value of element *name* from its children's local *tags* and *values*."""
    first = tags[0]
    if tags.count(first) == len(tags) and (
        len(tags) > 1
        or name == first + "s"
        or (name, first) in _CONTAINERS
        or attrib.get("type") == "array"
    ):
        return values
    out = dict(zip(tags, values, strict=True))
    if len(out) == len(tags):
        return out  # no tag repeated: the common case
    out = {}
    repeated: set[str] = set()
    for tag, value in zip(tags, values, strict=True):
        if tag not in out:
            out[tag] = value
        elif tag in repeated:
            out[tag].append(value)
        else:
            out[tag] = [out[tag], value]  # a tag repeated inside an object collects
            repeated.add(tag)
    return out


# defusedxml's refusals (defusedxml.ElementTree.DefusedXMLParser, forbid_dtd=False).


def _entity_decl(
    name: str,
    is_parameter_entity: bool,
    value: str | None,
    base: str | None,
    sysid: str | None,
    pubid: str | None,
    notation_name: str | None,
) -> NoReturn:
    raise EntitiesForbidden(name, value, base, sysid, pubid, notation_name)


def _unparsed_entity_decl(
    name: str, base: str | None, sysid: str | None, pubid: str | None, notation_name: str | None
) -> NoReturn:
    raise EntitiesForbidden(name, None, base, sysid, pubid, notation_name)


def _external_entity_ref(
    context: str | None, base: str | None, sysid: str | None, pubid: str | None
) -> NoReturn:
    raise ExternalReferenceForbidden(context, base, sysid, pubid)


#: GeoReport documents nest about six elements deep (discovery: endpoints/endpoint/formats);
#: anything past this is broken or hostile, and would only make every reader recurse.
MAX_DEPTH = 64


class _TooDeep(Exception):
    """Raised from the parser's start handler when a document nests past MAX_DEPTH."""


def _parse(body: bytes) -> tuple[str, Any]:
    parser = expat.ParserCreate(None, "}")
    # A frame per open element: [local name, attributes, child tags, child values, text].
    # The document itself is the bottom frame; the root element becomes its only child.
    document: list[Any] = ["", {}, None, None, None]
    current = document
    stack: list[list[Any]] = []
    names: dict[str, str] = {}

    def start(tag: str, attrib: dict[str, str]) -> None:
        nonlocal current
        if len(stack) >= MAX_DEPTH:
            raise _TooDeep
        name = names.get(tag)
        if name is None:
            name = names[tag] = _local(tag)
        stack.append(current)
        current = [name, attrib, None, None, None]

    def data(text: str) -> None:
        # Text is only ever used for elements without children, and is kept whole.
        old = current[4]
        current[4] = text if old is None else old + text

    def end(_: str) -> None:
        nonlocal current
        name, attrib, tags, values, text = current
        if tags is not None:
            value = _parent(name, attrib, tags, values)
        elif attrib:
            value = _leaf(attrib, text)
        else:  # a plain leaf, the common case, inline (_leaf without attributes)
            value = None if text is None else text.strip() or None
        current = stack.pop()
        if current[2] is None:
            current[2] = [name]
            current[3] = [value]
        else:
            current[2].append(name)
            current[3].append(value)

    def default(text: str) -> None:
        # ElementTree's XMLParser: a reference to an entity nobody declared is an error.
        if text[:1] == "&":
            line, column = parser.ErrorLineNumber, parser.ErrorColumnNumber
            error = expat.ExpatError(f"undefined entity {text}: line {line}, column {column}")
            error.code = 11  # XML_ERROR_UNDEFINED_ENTITY
            error.lineno, error.offset = line, column
            raise error

    parser.DefaultHandlerExpand = default
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    parser.EntityDeclHandler = _entity_decl
    parser.UnparsedEntityDeclHandler = _unparsed_entity_decl
    parser.ExternalEntityRefHandler = _external_entity_ref
    parser.buffer_text = True
    parser.Parse(body, True)
    return document[2][0], document[3][0]


def parse_xml(body: bytes) -> tuple[str, Any]:
    """Parse an XML body into ``(root_local_name, plain_data)``.

    Raises:
        DecodeError: the body is not well-formed XML, or declares entities or a DTD
            that could be used against the parser.
    """
    try:
        return _parse(body)
    except _TooDeep:
        raise DecodeError(
            f"XML nests deeper than {MAX_DEPTH} elements; no GeoReport document does", body=body
        ) from None
    except DefusedXmlException as exc:
        raise DecodeError(
            f"refused hostile XML ({type(exc).__name__}: entity and external references "
            "are not expanded)",
            body=body,
        ) from exc
    except (expat.ExpatError, ValueError, LookupError) as exc:  # LookupError: unknown encoding
        raise DecodeError(
            f"body is not well-formed XML ({exc}): {snippet(body)!r}", body=body
        ) from exc
