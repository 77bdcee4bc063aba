"""The fake city's own wire code: XML and JSON writers, the POST form parsers (urlencoded and
multipart/form-data), w3 dates.

This is deliberately independent of civic311's client-side wire layer: a fake server that
shared the client's encoder would agree with the client's bugs. Everything here is written from
the reference (`georeport-v2.md`) with the standard library only.

A response body is first built as a plain tree (`Node`: dicts, lists, scalars) in the spec's
element order, then written either way:

* XML (§1.2, §4): ``<?xml version="1.0" encoding="UTF-8"?>``, then the root element; a list
  under key ``K`` becomes repeated ``<item>`` children, with the item tag taken from
  `ITEM_TAGS` (``services`` → ``service``, ``attributes`` → ``attribute``…). ``None`` is an
  empty element, booleans are ``true``/``false``.
* JSON (§4.1, Spark convention): the root element is dropped, so a list root becomes a top-level
  array; ``None`` is ``null``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Literal, TypeAlias
from urllib.parse import unquote_to_bytes

import attrs

__all__ = [
    "ITEM_TAGS",
    "MAX_MULTIPART_BYTES",
    "FormError",
    "Node",
    "ParsedForm",
    "Upload",
    "content_type_params",
    "format_datetime",
    "parse_form",
    "parse_multipart",
    "parse_w3_datetime",
    "parse_query",
    "to_json",
    "to_xml",
]

Scalar: TypeAlias = str | int | float | bool | None
#: A response body before it is written: dicts (ordered), lists and scalars.
Node: TypeAlias = Scalar | Mapping[str, "Node"] | Sequence["Node"]

#: Item element names for list containers (reference §4.2).
ITEM_TAGS: dict[str, str] = {
    "services": "service",
    "service_requests": "request",
    "requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
}

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

# Characters XML 1.0 cannot carry at all, even escaped. A user's description may contain them
# (JSON can); the XML writer drops them rather than emit a document no parser accepts.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: Scalar) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return _XML_INVALID.sub("", str(value))


def _xml_fill(element: ET.Element, node: Node, item_tag: str | None) -> None:
    if isinstance(node, Mapping):
        for key, child in node.items():
            sub = ET.SubElement(element, key)
            _xml_fill(sub, child, ITEM_TAGS.get(key))
    elif isinstance(node, (list, tuple)):
        tag = item_tag or "item"
        for child in node:
            sub = ET.SubElement(element, tag)
            _xml_fill(sub, child, None)
    else:
        element.text = _text(node)  # type: ignore[arg-type]


def to_xml(root: str, node: Node) -> bytes:
    """Write *node* under a ``<root>`` element, with the UTF-8 XML declaration (§1.2).

    ElementTree escapes ``&``, ``<`` and ``>`` in text, so user input cannot break the document.
    """
    element = ET.Element(root)
    _xml_fill(element, node, ITEM_TAGS.get(root))
    body = ET.tostring(element, encoding="unicode", short_empty_elements=True)
    return (XML_DECLARATION + body + "\n").encode("utf-8")


def to_json(node: Node) -> bytes:
    """Write *node* as UTF-8 JSON (non-ASCII kept as characters, as real servers do)."""
    return json.dumps(node, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- dates (reference §6) ----------------------------------------------------------------------

# The w3 profile of ISO 8601 the spec asks for. Fractional seconds are rejected, like
# open311-adapter's schema regex (§6.1) and Toronto (§6.2); a missing zone is read as UTC
# (the brief's choice; the spec says the zone must be present).
_W3 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2})?$",
)


def parse_w3_datetime(text: str) -> datetime:
    """Parse ``YYYY-MM-DDTHH:MM:SS`` + ``Z`` / ``±HH:MM`` / nothing (UTC). ValueError if bad."""
    match = _W3.match(text.strip())
    if match is None:
        raise ValueError(f"not a w3 datetime: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    zone = match.group(7)
    if zone in (None, "Z"):
        tz = timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"bad UTC offset in {text!r}")
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return datetime(year, month, day, hour, minute, second, tzinfo=tz).astimezone(timezone.utc)


def format_datetime(
    value: datetime, style: Literal["z", "offset"] = "z", offset_minutes: int = 0
) -> str:
    """Emit ``YYYY-MM-DDTHH:MM:SSZ`` (§10.28), or ``…±HH:MM`` in the ``offset`` style."""
    if style == "z":
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    local = value.astimezone(timezone(timedelta(minutes=offset_minutes)))
    return local.isoformat(timespec="seconds")


# -- request bodies and query strings ----------------------------------------------------------


class FormError(ValueError):
    """The body or query string could not be decoded (not percent-encoded UTF-8, or a broken
    multipart body). `status` is the HTTP status to answer: 400, or 413 for a body too large."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _decode_component(raw: str, plus_is_space: bool) -> str:
    if plus_is_space:
        raw = raw.replace("+", " ")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormError("the form is not valid UTF-8") from exc


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """Split ``a=1&b=2`` into decoded pairs, in order, keeping repeats and blank values.

    ``+`` means a space and ``%XX`` are UTF-8 bytes (application/x-www-form-urlencoded, §1.2).
    """
    pairs: list[tuple[str, str]] = []
    for chunk in text.split("&"):
        if not chunk:
            continue
        name, _, value = chunk.partition("=")
        pairs.append((_decode_component(name, True), _decode_component(value, True)))
    return pairs


def parse_query(query: str) -> dict[str, list[str]]:
    """Decode a query string to name -> every value given (in order)."""
    result: dict[str, list[str]] = {}
    for name, value in parse_pairs(query):
        result.setdefault(name, []).append(value)
    return result


@attrs.frozen
class Upload:
    """One file part of a ``multipart/form-data`` POST: the part's field name (``media``,
    ``media[]``…), the file name the client gave, the part's content type, and the bytes."""

    name: str
    filename: str
    content_type: str
    content: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")


class ParsedForm:
    """A decoded POST form: plain fields (last value wins), every value of repeated fields
    (`all`, e.g. FixMyStreet's repeated ``media_url``), ``attribute[...]`` values, and the
    uploaded files of a multipart body (`uploads`)."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.repeated: dict[str, list[str]] = {}
        self.attributes: dict[str, str | list[str]] = {}
        self.uploads: list[Upload] = []

    def all(self, name: str) -> list[str]:
        """Every non-empty value sent for the plain field *name*, stripped, in order."""
        return [v.strip() for v in self.repeated.get(name, []) if v.strip()]

    def get(self, name: str) -> str | None:
        """The field's value with surrounding whitespace removed; None when absent or empty.

        The spec says an empty parameter means the same as an absent one (§1.5).
        """
        value = self.fields.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None


# Two readings of attribute keys (reference §3.5, §10.34):
# * "brackets" (the spec, PHP style): attribute[CODE]=v is one value (a repeat replaces it, as
#   PHP does), attribute[CODE][]=v appends to a list.
# * "repeat" (open311-adapter): the key regex is ^attribute\[(.+)\]$ and repeats collect into
#   a list, so attribute[CODE][]=v is read as the code "CODE][" (greedy), exactly the mis-parse
#   the reference warns about.
_BRACKETS_LIST = re.compile(r"^attribute\[([^\]]+)\]\[\]$")
_BRACKETS_ONE = re.compile(r"^attribute\[([^\]]+)\]$")
_REPEAT = re.compile(r"^attribute\[(.+)\]$")


def parse_form(body: bytes, multivalue: Literal["brackets", "repeat"]) -> ParsedForm:
    """Parse an application/x-www-form-urlencoded UTF-8 body into a `ParsedForm`."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        # A urlencoded body is ASCII on the wire; raw UTF-8 bytes mean a client skipped encoding.
        raise FormError("the form body must be percent-encoded") from exc
    return _collect(parse_pairs(text), multivalue)


def _collect(
    pairs: Iterable[tuple[str, str]], multivalue: Literal["brackets", "repeat"]
) -> ParsedForm:
    """Sort decoded (name, value) pairs into a `ParsedForm`, reading attribute keys per
    *multivalue*."""
    form = ParsedForm()
    for name, value in pairs:
        if multivalue == "brackets":
            many = _BRACKETS_LIST.match(name)
            if many:
                current = form.attributes.get(many.group(1))
                if isinstance(current, list):
                    current.append(value)
                else:
                    form.attributes[many.group(1)] = [value]
                continue
            one = _BRACKETS_ONE.match(name)
            if one:
                form.attributes[one.group(1)] = value
                continue
        else:
            match = _REPEAT.match(name)
            if match:
                code = match.group(1)
                current = form.attributes.get(code)
                if current is None:
                    form.attributes[code] = value
                elif isinstance(current, list):
                    current.append(value)
                else:
                    form.attributes[code] = [current, value]
                continue
        form.fields[name] = value
        form.repeated.setdefault(name, []).append(value)
    return form


# -- multipart/form-data (RFC 7578, RFC 2046 §5.1) ----------------------------------------------
#
# Written by hand, small and strict, rather than with the `email` package: that parser is
# lenient by design (it records "defects" and carries on) and re-splits lines, while a server
# under test should take exactly the bytes between two delimiters and refuse anything malformed.

#: The largest multipart body the city reads (the loopback server has its own, lower, cap).
MAX_MULTIPART_BYTES = 32 * 1024 * 1024
_MAX_PARTS = 256
_MAX_PART_HEADERS = 8 * 1024
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_PARAM = re.compile(r';\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)\s*')


def content_type_params(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type (or Content-Disposition) value into its lower-cased main value and
    its parameters (names lower-cased, values as sent: a multipart boundary is case-sensitive).

    Raises:
        FormError: the parameters are not ``; name=value`` pairs.
    """
    main, sep, rest = value.partition(";")
    params: dict[str, str] = {}
    rest = (sep + rest).rstrip("; \t")  # a trailing ";" is sloppy, not malformed
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None:
            raise FormError(f"malformed header parameters: {value!r}")
        raw = match.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[match.group(1).lower()] = raw
        position = match.end()
    return main.strip().lower(), params


def _part(raw: bytes, index: int) -> tuple[str, str | None, str, bytes]:
    """(field name, filename or None, content type, content) of one part."""
    if raw.startswith(b"\r\n"):
        raise FormError(f"multipart part {index} has no headers (no Content-Disposition)")
    head, sep, content = raw.partition(b"\r\n\r\n")
    if not sep:
        raise FormError(f"multipart part {index} has no blank line after its headers")
    if len(head) > _MAX_PART_HEADERS:
        raise FormError(f"multipart part {index} has too many headers")
    try:
        lines = head.decode("utf-8").split("\r\n")
    except UnicodeDecodeError as exc:
        raise FormError(f"multipart part {index} has headers that are not UTF-8") from exc
    headers: dict[str, str] = {}
    for line in lines:
        key, colon, value = line.partition(":")
        if not colon or not key.strip() or key != key.strip():
            raise FormError(f"multipart part {index} has a malformed header: {line!r}")
        headers[key.lower()] = value.strip()
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise FormError(f"multipart part {index} has no Content-Disposition")
    kind, params = content_type_params(disposition)
    name = params.get("name")
    if kind != "form-data" or not name:
        raise FormError(f"multipart part {index} is not form-data with a name")
    ctype = headers.get("content-type", "text/plain")
    return name, params.get("filename"), ctype, content


def parse_multipart(
    body: bytes, boundary: str, multivalue: Literal["brackets", "repeat"]
) -> ParsedForm:
    """Parse a ``multipart/form-data`` body: text parts become fields (UTF-8, read like a
    urlencoded form's), parts with a ``filename`` become `ParsedForm.uploads`.

    Raises:
        FormError: a bad boundary, a body with no opening or closing delimiter, a part without
            ``Content-Disposition: form-data; name=…``, a text field that is not UTF-8, more
            than 256 parts (400), or a body over `MAX_MULTIPART_BYTES` (413).
    """
    if len(body) > MAX_MULTIPART_BYTES:
        raise FormError("the multipart body is too large", status=413)
    if not _BOUNDARY.fullmatch(boundary):
        raise FormError("the multipart boundary is missing or malformed")
    delimiter = b"\r\n--" + boundary.encode("ascii")
    data = b"\r\n" + body  # so the first delimiter looks like every other one
    start = data.find(delimiter)
    if start < 0:
        raise FormError("the multipart body has no opening boundary")
    position = start + len(delimiter)
    pairs: list[tuple[str, str]] = []
    uploads: list[Upload] = []
    while True:
        if data.startswith(b"--", position):
            break  # the close delimiter; what follows is an epilogue, ignored (RFC 2046)
        # Transport padding (spaces and tabs) may follow a delimiter, then CRLF.
        while data[position : position + 1] in (b" ", b"\t"):
            position += 1
        if not data.startswith(b"\r\n", position):
            raise FormError("a multipart boundary is not followed by a line break")
        position += 2
        end = data.find(delimiter, position)
        if end < 0:
            raise FormError("the multipart body has no closing boundary")
        if len(pairs) + len(uploads) >= _MAX_PARTS:
            raise FormError(f"the multipart body has more than {_MAX_PARTS} parts")
        name, filename, ctype, content = _part(data[position:end], len(pairs) + len(uploads))
        if filename is not None:
            uploads.append(Upload(name, filename, ctype, content))
        else:
            try:
                pairs.append((name, content.decode("utf-8")))
            except UnicodeDecodeError as exc:
                raise FormError(f"the multipart field {name!r} is not UTF-8") from exc
        position = end + len(delimiter)
    form = _collect(pairs, multivalue)
    form.uploads = uploads
    return form
