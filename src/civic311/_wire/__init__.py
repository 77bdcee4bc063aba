"""The wire layer: bytes ⇄ plain data ⇄ models. No I/O.

`decode` reads a body in either format into plain data of one shape, sniffing what actually
came back: servers answer ``.json`` with XML (XML-only cities), and 200 with an HTML
maintenance or login page. Shapes (`items`, `one_object`), error bodies (`error_details`), the
converter and the POST form encoding sit in the submodules.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from civic311._record import Record
from civic311._regex import on_first_use
from civic311.errors import DecodeError, page_summary, snippet

__all__ = ["Decoded", "Format", "decode", "looks_html"]

Format = Literal["json", "xml"]


# HTML is told by its start (a doctype or an <html> root, possibly after an XML declaration
# for XHTML), never by a <title> somewhere inside: FixMyStreet and Mark-a-Spot requests carry
# a <title> field (reference §8.7, §10.19).
_html_start = on_first_use(
    rb"^(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html[\s>/])",
    re.IGNORECASE | re.DOTALL,
)


class Decoded(Record):
    """A decoded body: its plain data, the format it really was, and the XML root name."""

    __slots__ = ("data", "format", "root")

    data: Any
    format: Format
    root: str | None

    def __init__(self, data: Any, format: Format, root: str | None = None) -> None:
        self._set(data=data, format=format, root=root)


def looks_html(head: bytes) -> bool:
    """Whether a body starting with *head* is an HTML page (a doctype or an html root)."""
    return _html_start().match(head) is not None


def decode(body: bytes, expected: Format) -> Decoded:
    """Decode *body*, which should be *expected*; XML and JSON are told apart by their first byte.

    Raises:
        DecodeError: an empty body, an HTML page, or text that is neither XML nor JSON.
    """
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise DecodeError(f"empty body where {expected.upper()} was expected", body=body)
    if head[:1] == b"<":
        if looks_html(head):
            raise DecodeError(
                f"{page_summary(body)} where {expected.upper()} was expected (a maintenance "
                "or login page?)",
                body=body,
            )
        # Imported on first XML body: expat and defusedxml are not needed by JSON-only callers
        # and cost `import civic311` ~2 ms.
        from civic311._wire.xml import parse_xml

        # PHP servers often emit blank lines before the XML declaration, which expat refuses.
        root, data = parse_xml(body.lstrip(b"\xef\xbb\xbf \t\r\n"))
        if root == "html":
            raise DecodeError(f"an HTML page where {expected.upper()} was expected", body=body)
        return Decoded(data, "xml", root)
    if head[:1] in b'[{"-0123456789tfn' or expected == "json":
        from civic311._wire.json import parse_json  # imported on first use, as parse_xml

        return Decoded(parse_json(body), "json")
    raise DecodeError(
        f"body is neither XML nor JSON (expected {expected.upper()}): {snippet(body)!r}",
        body=body,
    )
