"""Fuzz tests: whatever bytes a server sends, civic311 answers with a result or a
`civic311.Civic311Error` (DESIGN promise 5) — never a bare KeyError, TypeError, ValueError,
RecursionError, UnicodeError or LookupError — in bounded time and memory.

Inputs: arbitrary bytes, and the real fixtures of tests/fixtures/paired and
tests/fixtures/conformance mutated (truncated, bytes flipped, DOCTYPEs and entities inserted,
nested deeply, huge numbers, invalid UTF-8, BOMs in the middle). Each goes to
`civic311._wire.decode`, to `civic311._wire.errors.error_details`, and to `read_response` of every
operation with the statuses 200, 400, 404 and 500; a sample also goes through a whole `Client`.

Known crashes are kept as explicit examples (and as named cases in
`test_hostile_body_gives_only_civic311_errors`) so they stay visible until fixed.
"""

from __future__ import annotations

import contextlib
import json
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import civic311
from civic311 import Civic311Error, NewRequest, to_dict
from civic311._protocol import (
    Call,
    Settings,
    build_request,
    get_request_call,
    get_token_call,
    list_requests_call,
    list_services_call,
    read_response,
    service_definition_call,
    submit_call,
)
from civic311._wire import decode
from civic311._wire.errors import error_details
from civic311.testing import VirtualClock

BASE = "https://city.example/open311/v2"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
STATUSES = (200, 400, 404, 500)
FORMATS = ("json", "xml")
FIXTURES_DIR = Path(__file__).parent / "fixtures"
FIXTURES: tuple[bytes, ...] = tuple(
    path.read_bytes()
    for folder in ("paired", "conformance")
    for path in sorted((FIXTURES_DIR / folder).iterdir())
    if path.is_file()
)

#: Derandomized: the suite sees the same inputs on every run (no flaky failures in CI); explore
#: further by raising max_examples locally.
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Lone surrogates: a Python str can hold them, UTF-8 cannot carry them.
SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc80", "\udfff"])

#: Seconds one body may take through every operation, format and status (48 reads).
PER_BODY_SECONDS = 5.0


def _calls() -> list[Call[Any]]:
    return [
        list_services_call(),
        service_definition_call("x"),
        submit_call(NewRequest(service_code="001", lat=41.3, long=-72.9, description="d")),
        get_token_call("t"),
        get_request_call("1"),
        list_requests_call(),
    ]


CALLS = _calls()
REQUESTS = {
    (call.operation, fmt): build_request(call, BASE, fmt, Settings())
    for call in CALLS
    for fmt in FORMATS
}


def _json_ready(result: Any) -> None:
    """A result must be usable: every model in it goes through to_dict and json.dumps."""
    for model in result if isinstance(result, list) else [result]:
        json.dumps(to_dict(model))


def read_everywhere(body: bytes, seconds: float = PER_BODY_SECONDS) -> None:
    """Feed *body* to every reader; only civic311 errors (or results) may come out, within
    *seconds*."""
    started = time.perf_counter()
    messages: list[str] = []
    for fmt in FORMATS:
        try:
            decoded = decode(body, fmt)
        except Civic311Error:
            pass
        else:
            assert isinstance(error_details(decoded.data), list)
        for call in CALLS:
            request = REQUESTS[(call.operation, fmt)]
            for status in STATUSES:
                response = httpx.Response(status, content=body, request=request)
                try:
                    result, actual = read_response(call, response, body, fmt, NOW)
                except Civic311Error as exc:
                    messages.append(str(exc))  # the message itself must build
                    continue
                assert 200 <= status < 300
                assert actual in FORMATS
                _json_ready(result)
    assert time.perf_counter() - started < seconds


# --- known hostile bodies --------------------------------------------------------------------

#: Each of these once raised (or still raises) something other than a Civic311Error.
UNKNOWN_ENCODING = b'<?xml version="1.0" encoding="bogus"?><services/>'
#: JSON integers past Python's 4,300-digit str→int limit: json.loads raises a bare ValueError.
INT_OVER_DIGIT_LIMIT = b'[{"service_code": ' + b"1" * 4301 + b"}]"
#: An integer too big for a float where a float is due: float(int) raises OverflowError.
HUGE_INT_COORDINATE = b'[{"service_request_id": "1", "lat": 1' + b"0" * 309 + b"}]"
HUGE_INT_ORDER = (
    b'{"service_code": "x", "attributes": [{"code": "a", "order": 1' + b"0" * 309 + b"}]}"
)
#: Nesting where text is due: the converter's text hook recurses into it (RecursionError).
NESTED_JSON_CODE = b'[{"service_code": ' + b"[" * 600 + b"]" * 600 + b"}]"
NESTED_XML_CODE = (
    b"<services><service><service_code>"
    + b"<a>" * 2000
    + b"1"
    + b"</a>" * 2000
    + b"</service_code></service></services>"
)
#: Nesting inside an XML error body: error_details recurses into it (RecursionError).
NESTED_XML_ERROR_TEXT = (
    b"<errors><error><code>400</code><description>"
    + b"<a>" * 2000
    + b"1"
    + b"</a>" * 2000
    + b"</description></error></errors>"
)
NESTED_XML_ERRORS = b"<errors>" * 3000 + b"</errors>" * 3000
#: XML has no nesting limit (JSON's is Python's recursion limit): a 5,000-deep unknown field
#: lands in `extras`, which neither json.dumps nor == can then handle.
NESTED_XML_EXTRAS = (
    b"<service_requests><request><service_request_id>1</service_request_id><foo>"
    + b"<a>" * 5000
    + b"1"
    + b"</a>" * 5000
    + b"</foo></request></service_requests>"
)

HOSTILE: dict[str, bytes] = {
    "unknown-xml-encoding": UNKNOWN_ENCODING,
    "json-int-over-4300-digits": INT_OVER_DIGIT_LIMIT,
    "json-int-too-big-for-lat": HUGE_INT_COORDINATE,
    "json-int-too-big-for-order": HUGE_INT_ORDER,
    "json-nested-600-in-service-code": NESTED_JSON_CODE,
    "xml-nested-2000-in-service-code": NESTED_XML_CODE,
    "xml-nested-2000-in-error-description": NESTED_XML_ERROR_TEXT,
    "xml-errors-nested-3000": NESTED_XML_ERRORS,
    "xml-nested-5000-in-unknown-field": NESTED_XML_EXTRAS,
}


@pytest.mark.parametrize("body", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_body_gives_only_civic311_errors(body: bytes) -> None:
    """Each known hostile body gives a result or a Civic311Error from every reader."""
    read_everywhere(body)


# --- arbitrary bytes -------------------------------------------------------------------------


@FUZZ
@given(body=st.binary(max_size=2048))
@example(body=UNKNOWN_ENCODING)
@example(body=b'<?xml version="1.0" encoding="x-no-such-codec"?><a/>')
@example(body=INT_OVER_DIGIT_LIMIT)
@example(body=HUGE_INT_COORDINATE)
@example(body=HUGE_INT_ORDER)
@example(body=NESTED_JSON_CODE)
@example(body=NESTED_XML_CODE)
@example(body=NESTED_XML_ERROR_TEXT)
@example(body=NESTED_XML_ERRORS)
@example(body=NESTED_XML_EXTRAS)
def test_arbitrary_bytes_give_only_civic311_errors(body: bytes) -> None:
    """Any bytes, under any status and operation, give a result or a Civic311Error."""
    read_everywhere(body)


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=512),
        st.text(st.one_of(st.characters(), SURROGATES), max_size=200).map(
            lambda s: s.encode("utf-8", "surrogatepass")
        ),
    ),
    prefix=st.sampled_from([b"", b"<", b"[", b"{", b"\xef\xbb\xbf", b"\n\n<?xml version='1.0'?>"]),
)
def test_text_like_bytes_give_only_civic311_errors(body: bytes, prefix: bytes) -> None:
    """Bytes that start like XML or JSON give a result or a Civic311Error."""
    read_everywhere(prefix + body)


# --- mutated real fixtures -------------------------------------------------------------------

SNIPPETS: tuple[bytes, ...] = (
    b'<!DOCTYPE r [<!ENTITY e "x">]>',
    b'<!DOCTYPE r [<!ENTITY % p "x"> %p;]>',
    b'<!DOCTYPE r SYSTEM "file:///etc/passwd">',
    b'<!ENTITY e SYSTEM "file:///etc/passwd">',
    b"&e;",
    b"&amp;&#0;&#x110000;",
    b"<![CDATA[",
    b"]]>",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xfe\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\x80",
    b"\x00",
    b"9" * 400,
    b"1" * 4400,
    b"1e999999",
    b"-1e-999999",
    b"-0",
    b"NaN",
    b"Infinity",
    b"null",
    b"true",
    b'"\\ud800"',
    b'"2026-13-45T99:99:99+99:99"',
    b'"99999-01-01T00:00:00Z"',
    b"[",
    b"]",
    b"{",
    b"}",
    b'"',
    b",",
    b":",
    b"<x>",
    b"</x>",
    b'<x type="array"/>',
    b'<x nil="true"/>',
    b"<errors><error><code>1</code></error></errors>",
    b'{"errors": [',
    b"<service_requests>",
    b"<?xml version='1.0' encoding='bogus'?>",
)


def _nest(body: bytes, depth: int) -> bytes:
    if body.lstrip()[:1] == b"<":
        return b"<n>" * depth + body + b"</n>" * depth
    return b"[" * depth + body + b"]" * depth


MUTATIONS: dict[str, Callable[[bytearray, int, int, bytes], bytearray]] = {
    "truncate": lambda b, i, v, s: b[: i % (len(b) + 1)],
    "flip": lambda b, i, v, s: (
        b[: i % len(b)] + bytes([b[i % len(b)] ^ (v or 1)]) + b[i % len(b) + 1 :] if b else b
    ),
    "insert": lambda b, i, v, s: b[: i % (len(b) + 1)] + s + b[i % (len(b) + 1) :],
    "delete": lambda b, i, v, s: b[: i % (len(b) + 1)] + b[i % (len(b) + 1) + v % 32 :],
    "duplicate": lambda b, i, v, s: b[: i % (len(b) + 1)] + b[i % (len(b) + 1) :][:v] * 2,
    "prefix": lambda b, i, v, s: bytearray(s) + b,
    "nest": lambda b, i, v, s: bytearray(_nest(bytes(b), 1 + v * 4)),
    "quote-numbers": lambda b, i, v, s: bytearray(bytes(b).replace(b'"', b"", v % 4 + 1)),
}


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> bytes:
    """A real fixture with a few mutations applied."""
    body = bytearray(draw(st.sampled_from(FIXTURES)))
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(sorted(MUTATIONS)),
                st.integers(min_value=0, max_value=1 << 16),
                st.integers(min_value=0, max_value=255),
                st.sampled_from(SNIPPETS),
            ),
            min_size=1,
            max_size=5,
        )
    )
    for name, index, value, snippet in steps:
        body = MUTATIONS[name](body, index, value, snippet)
    return bytes(body)


@FUZZ
@given(body=mutated_fixtures())
def test_mutated_fixtures_give_only_civic311_errors(body: bytes) -> None:
    """Real fixtures, mutated, give a result or a Civic311Error from every reader."""
    read_everywhere(body)


@pytest.mark.parametrize("index", range(len(FIXTURES)))
def test_every_truncation_of_a_fixture_gives_only_civic311_errors(index: int) -> None:
    """Every fixture cut at every 7th byte gives a result or a Civic311Error."""
    body = FIXTURES[index]
    started = time.perf_counter()
    for cut in range(0, len(body), 7):
        for fmt in FORMATS:
            with contextlib.suppress(Civic311Error):
                decode(body[:cut], fmt)
    for cut in range(0, len(body), max(1, len(body) // 8)):
        read_everywhere(body[:cut])
    assert time.perf_counter() - started < 30


# --- error bodies as plain data --------------------------------------------------------------

ERROR_KEYS = (
    "errors",
    "error",
    "error_messages",
    "error_message",
    "code",
    "description",
    "message",
    "detail",
    "msg",
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
)
JSON_DATA = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(ERROR_KEYS),
                st.text(max_size=8),
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=25,
)


@FUZZ
@given(data=JSON_DATA)
def test_error_details_reads_any_data(data: Any) -> None:
    """error_details reads any decoded data into a list of ErrorDetail, never raising."""
    found = error_details(data)
    assert isinstance(found, list)
    for detail in found:
        assert isinstance(detail, civic311.ErrorDetail)
        assert isinstance(detail.description, str)
        assert detail.code is None or isinstance(detail.code, str)


# --- big, deep and expanding bodies: bounded time and memory ---------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<services><service><service_code>&lol9;</service_code></service></services>
"""

BIG_BODIES: dict[str, bytes] = {
    "billion-laughs": BILLION_LAUGHS,
    "json-deep-arrays": b"[" * 100_000 + b"]" * 100_000,
    "json-deep-objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "json-unclosed-deep": b"[" * 200_000,
    "xml-deep-unclosed": b"<a>" * 50_000,
    "xml-deep-empty": b"<services>" + b"<a>" * 50_000 + b"</a>" * 50_000 + b"</services>",
    "xml-wide": b"<services>"
    + b"<service><service_code>1</service_code></service>" * 5_000
    + b"</services>",
    "json-wide": b"[" + b'{"service_code":"1"},' * 5_000 + b'{"service_code":"2"}]',
    "json-huge-exponent": b'[{"service_request_id":"1","lat":1e999999999}]',
    "json-long-number": b'[{"service_request_id":"1","lat":0.' + b"1" * 100_000 + b"}]",
    "json-long-string": b'[{"service_code":"' + b"x" * 2_000_000 + b'"}]',
    "bom-in-the-middle": b'[{"service_code":"1"},\xef\xbb\xbf{"service_code":"2"}]',
    "xml-bom-in-the-middle": b"<services>\xef\xbb\xbf<service><service_code>1</service_code>"
    b"</service></services>",
    "invalid-utf8-json": b'[{"service_code":"\xff\xfe\xc3\x28"}]',
    "invalid-utf8-xml": b"<services><service><service_code>\xff\xc3\x28</service_code>"
    b"</service></services>",
}


@pytest.mark.parametrize("body", list(BIG_BODIES.values()), ids=list(BIG_BODIES))
def test_big_and_deep_bodies_are_bounded(body: bytes) -> None:
    """Deep, wide and expanding bodies give civic311 errors in bounded time and memory."""
    read_everywhere(body, seconds=15.0)
    call = list_services_call()
    tracemalloc.start()
    try:
        for fmt in FORMATS:
            for status in (200, 400):
                response = httpx.Response(
                    status, content=body, request=REQUESTS[(call.operation, fmt)]
                )
                with contextlib.suppress(Civic311Error):
                    read_response(call, response, body, fmt, NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * len(body) + 32 * 1024 * 1024


def test_billion_laughs_is_refused_not_expanded() -> None:
    """A billion-laughs document is refused at its entity declarations, fast and small."""
    tracemalloc.start()
    try:
        started = time.perf_counter()
        for fmt in FORMATS:
            with pytest.raises(civic311.DecodeError, match="hostile XML"):
                decode(BILLION_LAUGHS, fmt)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 1024 * 1024


# --- through a whole Client ------------------------------------------------------------------

CLIENT_FUZZ = settings(FUZZ, max_examples=150)

OPERATIONS: dict[str, Callable[[civic311.Client], Any]] = {
    "list_services": lambda c: c.list_services(),
    "get_service_definition": lambda c: c.get_service_definition("001"),
    "submit": lambda c: c.submit(NewRequest(service_code="001", lat=1.5, long=2.5)),
    "get_token": lambda c: c.get_token("t1"),
    "get_request": lambda c: c.get_request("600001"),
    "list_requests": lambda c: c.list_requests(),
    "get_requests": lambda c: c.get_requests(["1", "2"]),
}


@CLIENT_FUZZ
@given(
    answers=st.lists(
        st.tuples(
            st.sampled_from((200, 201, 202, 204, 301, 400, 403, 404, 429, 500, 502, 503)),
            st.one_of(st.binary(max_size=256), mutated_fixtures()),
            st.sampled_from(["application/json", "text/xml", "text/html", ""]),
        ),
        min_size=1,
        max_size=6,
    ),
    fmt=st.sampled_from(FORMATS),
    operation=st.sampled_from(sorted(OPERATIONS)),
)
def test_client_gives_only_civic311_errors(
    answers: list[tuple[int, bytes, str]], fmt: str, operation: str
) -> None:
    """A whole Client facing any answers gives a result or a Civic311Error."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        assert len(seen) < 200  # bounded: the client gives up long before
        status, body, content_type = answers[(len(seen) - 1) % len(answers)]
        headers = {"Content-Type": content_type} if content_type else {}
        if status == 301:
            headers["Location"] = "https://elsewhere.example/x"
        return httpx.Response(status, content=body, headers=headers)

    clock = VirtualClock(start=NOW)
    with civic311.Client(
        [BASE, "https://mirror.example/open311/v2"],
        transport=httpx.MockTransport(handler),
        format=fmt,
        clock=clock,
        reconcile_wait=2.0,
    ) as client:
        try:
            result = OPERATIONS[operation](client)
        except Civic311Error as exc:
            message, shown = str(exc), repr(exc)
            assert message
            assert shown
        else:
            _json_ready(result)


# --- arguments: bad text is a clear InvalidRequestError, before any network call -------------

#: Any text, lone surrogates included.
ANY_TEXT = st.text(st.one_of(st.characters(), SURROGATES), min_size=1, max_size=12)


@FUZZ
@given(value=ANY_TEXT)
@example(value="\ud800")
@example(value="a\udc80b")
def test_call_builders_take_any_text_or_name_the_field(value: str) -> None:
    """Any text argument builds a request or raises InvalidRequestError naming the field."""
    builders: list[Callable[[], Any]] = [
        lambda: build_request(service_definition_call(value), BASE, "json", Settings()),
        lambda: build_request(get_token_call(value), BASE, "json", Settings()),
        lambda: build_request(get_request_call(value), BASE, "json", Settings()),
        lambda: build_request(list_requests_call(service_code=value), BASE, "json", Settings()),
        lambda: build_request(
            submit_call(NewRequest(service_code=value, lat=1.0, long=2.0)),
            BASE,
            "json",
            Settings(),
        ),
        lambda: build_request(
            submit_call(NewRequest(service_code="001", address_string=value)),
            BASE,
            "json",
            Settings(),
        ),
    ]
    for build in builders:
        try:
            request = build()
        except civic311.InvalidRequestError as exc:
            field = exc.field
            assert field
        else:
            assert isinstance(request, httpx.Request)


# --- hostile answers: error documents, surrogates, masking (issue 12, issue 11 point 14) -----

#: Text an XML document can carry too (no control characters, no surrogates).
ERROR_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=30)


@st.composite
def error_documents(draw: st.DrawFn) -> tuple[bytes, str]:
    """An error document in one of the shapes seen in the wild, and its format."""
    # 4xx and 5xx codes (a document whose codes are all 2xx reports success, not an error).
    code = draw(st.one_of(st.none(), st.integers(400, 599), st.sampled_from(["403", "E12"])))
    text = draw(ERROR_TEXT)
    record: dict[str, Any] = {"description": text} if code is None else {"code": code}
    if code is not None:
        record[draw(st.sampled_from(["description", "message", "detail"]))] = text
    shape = draw(st.sampled_from(["list", "errors", "errors-map", "error", "sixaika", "xml"]))
    if shape == "xml":
        from xml.sax.saxutils import escape

        inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in record.items())
        return f"<errors><error>{inner}</error></errors>".encode(), "xml"
    data: Any = {
        "list": [record],
        "errors": {"errors": [record]},
        "errors-map": {"errors": {"field": [text or "bad"]}},
        "error": {"error": {**record, "message": text}},
        "sixaika": {"code": code or 400, "detail": text or "bad"},
    }[shape]
    return json.dumps(data).encode(), "json"


@FUZZ
@given(document=error_documents(), status=st.sampled_from([200, 201, 202]))
def test_error_documents_with_2xx_are_always_api_errors(
    document: tuple[bytes, str], status: int
) -> None:
    """Any error document served with a 2xx raises a 4xx APIError from every operation —
    never a result, never an outage-like error."""
    body, fmt = document
    for call in _calls():
        response = httpx.Response(status, request=build_request(call, BASE, "json", Settings()))
        with pytest.raises(civic311.APIError) as caught:
            read_response(call, response, body, fmt, NOW)  # type: ignore[arg-type]
        assert 400 <= caught.value.status_code < 500
        assert caught.value.http_status == status


@FUZZ
@given(data=JSON_DATA)
def test_error_document_recognition_reads_any_data(data: Any) -> None:
    """error_document and implied_status take any decoded data without raising."""
    from civic311._wire.errors import error_document, implied_status

    assert error_document(data) in (True, False)
    assert 400 <= implied_status(error_details(data)) < 500


@FUZZ
@given(
    text=st.text(st.one_of(st.characters(codec="utf-8"), SURROGATES), max_size=20),
    fmt=st.sampled_from(FORMATS),
)
def test_decoded_text_never_holds_a_surrogate(text: str, fmt: str) -> None:
    """Whatever a JSON string escapes (lone surrogates included), decoded text is UTF-8-able."""
    body = json.dumps({"status_notes": text, text: [text]}).encode("ascii")
    data = decode(body, "json").data
    json.dumps(data, ensure_ascii=False).encode("utf-8")  # raises on a lone surrogate


#: Keys long enough to be masked everywhere: letters, digits and the characters that escape
#: differently in URLs, forms, JSON and XML; at least 8 of them.
LONG_KEYS = st.text(st.sampled_from('aZ09"\\/+&<> %é'), min_size=8, max_size=24)
#: Surroundings that share no character with any spelling of those keys.
AROUND = st.text(st.sampled_from(" \t:,()[]{}|!~"), max_size=10)


@FUZZ
@given(key=LONG_KEYS, before=AROUND, after=AROUND)
def test_a_long_key_never_survives_masking_in_any_spelling(
    key: str, before: str, after: str
) -> None:
    """Every spelling of a key of 8+ characters is masked, wherever it sits."""
    from civic311._secrets import mask_bytes, mask_text, spellings

    for spelling in spellings(key):
        text = f"{before}{spelling}{after}{spelling}"
        assert mask_text(text, key) == f"{before}***{after}***"
        assert mask_bytes(text.encode(), key) == f"{before}***{after}***".encode()


@FUZZ
@given(
    key=st.text(st.sampled_from("abcdefgh"), min_size=1, max_size=7),
    words=st.lists(st.text(st.sampled_from("abcdefgh_"), min_size=1, max_size=12), max_size=8),
)
def test_a_short_key_never_corrupts_words(key: str, words: list[str]) -> None:
    """A key under 8 characters is left alone inside prose: only a value position (after
    "=", quoted, element text, the whole text) is masked."""
    from civic311._secrets import mask_text

    text = " ".join(words)
    if text == key:
        return
    assert mask_text(text, key) == text
