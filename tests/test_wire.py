"""The wire layer: hardened XML, tolerant JSON, shape unwrapping and format sniffing."""

from __future__ import annotations

import pytest

from civic311._wire import decode
from civic311._wire.json import parse_json
from civic311._wire.shapes import items, one_object
from civic311._wire.xml import parse_xml
from civic311.errors import DecodeError


def test_xml_single_child_container_is_a_list() -> None:
    """A container with one item element still decodes to a list of one."""
    root, data = parse_xml(
        b"<services><service><service_code>1</service_code></service></services>"
    )
    assert root == "services"
    assert data == [{"service_code": "1"}]


def test_xml_single_field_object_stays_an_object() -> None:
    """An object with one field is not mistaken for a list."""
    _, data = parse_xml(b"<service_requests><request><token>9</token></request></service_requests>")
    assert data == [{"token": "9"}]


def test_xml_request_with_only_media_url_is_an_object() -> None:
    """A field whose tag looks like an item name is still a field of its object."""
    _, data = parse_xml(b"<requests><request><media_url>u</media_url></request></requests>")
    assert data == [{"media_url": "u"}]


def test_xml_empty_elements_are_none_and_text_is_trimmed() -> None:
    """Empty elements become None and whitespace around text is dropped."""
    _, data = parse_xml(b"<r><a/><b></b><c>  x \n</c></r>")
    assert data == {"a": None, "b": None, "c": "x"}


def test_xml_default_namespace_does_not_matter() -> None:
    """Tags are read by local name, so a default namespace changes nothing."""
    body = b'<services xmlns="http://wiki.open311.org/GeoReport_v2"><service><service_code>1</service_code></service></services>'
    assert parse_xml(body) == ("services", [{"service_code": "1"}])


def test_xml_rails_typed_array_root() -> None:
    """Rails' type="array" roots (Klarschiff) decode to lists, also when empty."""
    assert parse_xml(b'<services type="array"/>') == ("services", [])
    body = b'<services type="array"><service><service_code>1</service_code></service></services>'
    assert parse_xml(body)[1] == [{"service_code": "1"}]


def test_xml_repeated_tag_inside_object_collects() -> None:
    """A tag repeated inside an object collects its values into a list."""
    _, data = parse_xml(b"<service><group>a</group><group>b</group><x>1</x></service>")
    assert data == {"group": ["a", "b"], "x": "1"}


def test_xml_entity_expansion_is_refused() -> None:
    """A billion-laughs document raises DecodeError instead of expanding."""
    body = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<services><service><service_code>&lol2;</service_code></service></services>"""
    with pytest.raises(DecodeError, match="hostile XML"):
        parse_xml(body)


def test_xml_external_entity_is_refused() -> None:
    """An external entity reference raises DecodeError and reads no file."""
    body = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r><a>&xxe;</a></r>"""
    with pytest.raises(DecodeError, match="hostile XML"):
        parse_xml(body)


@pytest.mark.parametrize(
    "body",
    [b"<services><service>", b"<services>", b"not xml at all <", b"<a></b>"],
)
def test_xml_malformed_raises_decode_error(body: bytes) -> None:
    """Truncated or malformed XML raises DecodeError naming the problem."""
    with pytest.raises(DecodeError, match="not well-formed XML"):
        parse_xml(body)


def test_json_byte_order_mark_is_skipped() -> None:
    """A UTF-8 BOM before JSON is ignored."""
    assert parse_json(b"\xef\xbb\xbf[1]") == [1]


def test_json_jsonp_wrapper_is_unwrapped() -> None:
    """A JSONP callback wrapper is removed."""
    assert parse_json(b'cb([{"a": 1}]);') == [{"a": 1}]


def test_json_leading_zero_numbers_become_strings() -> None:
    """The spec's invalid "service_code":001 is read as the string "001"."""
    assert parse_json(b'[{"service_code":001, "n": 5, "z": 0}]') == [
        {"service_code": "001", "n": 5, "z": 0}
    ]


@pytest.mark.parametrize("body", [b'[{"a": 1', b"{", b'{"a": }', b"\xff\xfe[]"])
def test_json_truncated_or_invalid_raises(body: bytes) -> None:
    """Truncated, invalid or non-UTF-8 JSON raises DecodeError."""
    with pytest.raises(DecodeError):
        parse_json(body)


def test_json_deep_nesting_is_a_decode_error() -> None:
    """Absurdly deep nesting is a DecodeError, not a RecursionError."""
    with pytest.raises(DecodeError):
        parse_json(b"[" * 100_000 + b"]" * 100_000)


def test_decode_sniffs_xml_answer_to_json_request() -> None:
    """An XML body where JSON was asked is decoded and reported as XML."""
    decoded = decode(b"<?xml version='1.0'?><services/>", "json")
    assert decoded.format == "xml"
    assert decoded.root == "services"


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><html><body>Down for maintenance</body></html>",
        b"<html><head><title>Login</title></head></html>",
        b"  <HTML>x</HTML>",
    ],
)
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_decode_html_page_is_refused(body: bytes, fmt: str) -> None:
    """An HTML page raises DecodeError that says it is HTML."""
    with pytest.raises(DecodeError, match="HTML page"):
        decode(body, fmt)  # type: ignore[arg-type]


def test_decode_empty_body_is_refused() -> None:
    """An empty body is a DecodeError, not an empty result."""
    with pytest.raises(DecodeError, match="empty body"):
        decode(b"  \n", "json")


def test_decode_plain_text_is_refused_for_xml() -> None:
    """Plain text where XML was asked is a DecodeError."""
    with pytest.raises(DecodeError, match="neither XML nor JSON"):
        decode(b"Bad extension. We support .xml and .json", "xml")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, []),
        ([], []),
        ([{"a": 1}], [{"a": 1}]),
        ({"a": 1}, [{"a": 1}]),
        ({"service_requests": [{"a": 1}]}, [{"a": 1}]),
        ({"service_requests": {"request": [{"a": 1}]}}, [{"a": 1}]),
        ({"service_requests": None}, []),
    ],
)
def test_items_unwraps_every_list_shape(data: object, expected: list[object]) -> None:
    """Lists, bare objects and wrapper objects all give the list of records."""
    assert items(data, ("service_requests", "request"), "service_requests") == expected


def test_items_refuses_non_objects() -> None:
    """A list of scalars is a DecodeError naming the index."""
    with pytest.raises(DecodeError, match=r"services\[1\]"):
        items([{"a": 1}, 5], ("services",), "services")


@pytest.mark.parametrize(
    "data",
    [{"service_code": "1"}, [{"service_code": "1"}], {"service_definition": {"service_code": "1"}}],
)
def test_one_object_accepts_object_array_of_one_and_wrapper(data: object) -> None:
    """A service definition may be an object, an array of one, or wrapped."""
    assert one_object(data, ("service_definition",), "service_definition") == {"service_code": "1"}


def test_one_object_refuses_lists_of_many() -> None:
    """Two objects where one was expected is a DecodeError."""
    with pytest.raises(DecodeError, match="a list of 2"):
        one_object([{}, {}], ("x",), "service_definition")


def test_xml_with_an_unknown_encoding_is_a_decode_error() -> None:
    """An XML declaration naming an unknown encoding raises DecodeError, not LookupError."""
    with pytest.raises(DecodeError, match="not well-formed XML"):
        parse_xml(b'<?xml version="1.0" encoding="bogus"?><services/>')
