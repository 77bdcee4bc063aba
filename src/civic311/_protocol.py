"""Sans-IO GeoReport v2: build requests, read responses, run multi-step flows. No network here.

Each operation is a `Call`: what to ask (method, path, query, form) and how to read the answer.
`build_request` turns a call into an `httpx.Request` for one endpoint; `read_response` turns the
`httpx.Response` and its body into a model or raises the right `civic311.errors` error. Both are
pure, so everything here is tested with plain `httpx.Response` objects.

Multi-step flows are generators in the style of httpx's auth flows, in ONE vocabulary (a
`Step`): they ``yield`` a `Call` and receive its result (or have its error thrown in), or
``yield`` a `Sleep` and receive the monotonic time after it. Nothing else is ever yielded, so
one driver per client runs every flow (``AsyncClient._drive``, and `Client`'s generated twin),
and flows compose with ``yield from``: submit → reconcile, `wait_for_id_flow`, `lookup_flow`,
a harvest's batch (`civic311.harvest`), a tracking round (`civic311.tracking`). A flow that
streams (a harvest, a watch) is an object whose state lives between flows: the client drives
one flow per batch or round and hands each result to its caller. Only the clients send and
sleep.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import operator
import re
import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar
from urllib.parse import quote, urlencode

import attrs
import httpx

from civic311._checks import endpoint_url
from civic311._record import Record
from civic311._regex import on_first_use
from civic311._resilience.retry import parse_retry_after
from civic311._secrets import SECRET_NAMES, mask_bytes, mask_text, redact_text, redact_url
from civic311._version import __version__
from civic311._w3c import format_datetime
from civic311._wire import Decoded, Format, decode, looks_html
from civic311._wire.errors import error_details, error_document, implied_status
from civic311._wire.form import (
    FORM_CONTENT_TYPE,
    FilePart,
    MediaStyle,
    MultivalueStyle,
    encode_form,
    media_parts,
    multipart_data,
    new_request_fields,
)
from civic311._wire.shapes import items, one_object
from civic311.errors import (
    APIError,
    Civic311Warning,
    DecodeError,
    InvalidRequestError,
    NotFoundError,
    WaitTimeoutError,
    error_for_status,
)
from civic311.media import MAX_MEDIA_BYTES
from civic311.models import (
    ErrorDetail,
    NewRequest,
    Receipt,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenStatus,
)

if TYPE_CHECKING:
    import cattrs

    from civic311.profiles import Profile

__all__ = [
    "MAX_PAGES",
    "MAX_URL_LENGTH",
    "Call",
    "Civic311Warning",
    "SECRET_NAMES",
    "Collected",
    "Page",
    "PageRule",
    "Settings",
    "Sleep",
    "build_request",
    "Flow",
    "Step",
    "chunk_ids",
    "encodable",
    "get_request_call",
    "get_token_call",
    "https_upgrade",
    "id_set",
    "list_requests_call",
    "list_services_call",
    "lookup_flow",
    "next_link",
    "next_params",
    "normalize_base_url",
    "page_of",
    "paged_flow",
    "read_response",
    "redact_text",
    "scrub",
    "scrub_text",
    "redact_url",
    "request_key",
    "service_definition_call",
    "submit_call",
    "wait_for_id_flow",
]

logger = logging.getLogger("civic311")

T = TypeVar("T")

#: Keep every URL under this many characters (old IIS and proxies cut at 2,048).
MAX_URL_LENGTH = 2000

#: Spec §2.5: a start_date/end_date range "may not span more than 90 days".
MAX_SPAN = timedelta(days=90)

#: Spec §2.5: "Default query limit is … first 1000 requests returned".
DEFAULT_RESULT_CAP = 1000

USER_AGENT = f"civic311/{__version__}"


class Settings(Record):
    """What shapes requests and their reading for one client: its credentials, and how the
    city's server deviates from the spec (its `civic311.profiles.Profile`).

    Attributes:
        jurisdiction_id: Sent on every call when set; never sent empty (spec §1.3, §1.5).
        api_key: Sent as a form field on POST (spec §1.4). Never shown in a repr.
        profile: The server's quirks (paths, date style, extensions, media, paging…), read
            where they matter rather than copied field by field.
    """

    __slots__ = ("api_key", "jurisdiction_id", "profile")
    _unshown = frozenset({"api_key"})

    jurisdiction_id: str | None
    api_key: str | None
    profile: Profile

    def __init__(
        self,
        jurisdiction_id: str | None = None,
        api_key: str | None = None,
        profile: Profile | None = None,
    ) -> None:
        if profile is None:
            # The spec's own profile. Imported here: the profiles load with the first client,
            # not with `import civic311` (issue 13).
            from civic311.profiles import SPEC

            profile = SPEC
        self._set(jurisdiction_id=jurisdiction_id, api_key=api_key, profile=profile)

    @property
    def date_zone(self) -> bool:
        """Whether query datetimes carry ``Z`` (some servers refuse it, reference §6.2)."""
        return self.profile.date_style == "utc_z"


class Call(Record, Generic[T]):
    """One GeoReport request, independent of endpoint and format.

    Attributes:
        operation: The client method it serves ("list_services", "submit", …).
        method: "GET" or "POST".
        path: The resource path without the format extension, already URL-quoted.
        params: Query parameters (without jurisdiction_id, added per settings).
        form: The POST form fields (without credentials), or None for a GET.
        files: Files to upload; when there are any, the POST is multipart/form-data.
        parse: Reads the decoded body into the result.
        paged: The result is a list the server may page (`Page`, `paged_flow`).
    """

    __slots__ = ("files", "form", "method", "operation", "paged", "params", "parse", "path")
    _unshown = frozenset({"parse", "files"})

    operation: str
    method: Literal["GET", "POST"]
    path: str
    parse: Callable[[Decoded], T]
    params: tuple[tuple[str, str], ...]
    form: tuple[tuple[str, str], ...] | None
    files: tuple[FilePart, ...]
    #: The answer is a list that may be one page of several: `read_response` returns it as a
    #: `Page` carrying what the response headers say about the rest (`page_of`).
    paged: bool

    def __init__(
        self,
        operation: str,
        method: Literal["GET", "POST"],
        path: str,
        parse: Callable[[Decoded], T],
        params: tuple[tuple[str, str], ...] = (),
        form: tuple[tuple[str, str], ...] | None = None,
        files: tuple[FilePart, ...] = (),
        paged: bool = False,
    ) -> None:
        self._set(
            operation=operation,
            method=method,
            path=path,
            parse=parse,
            params=params,
            form=form,
            files=files,
            paged=paged,
        )

    @property
    def is_post(self) -> bool:
        """Whether the call creates something (and so must never be blindly repeated)."""
        return self.method == "POST"


class Sleep(Record):
    """A flow step: wait this many seconds, then send back the monotonic time."""

    __slots__ = ("seconds",)

    seconds: float

    def __init__(self, seconds: float) -> None:
        self._set(seconds=seconds)


# --- URLs ------------------------------------------------------------------------------------


def normalize_base_url(url: object) -> str:
    """Check an endpoint URL and drop any trailing slash (`civic311._checks.endpoint_url`).

    Raises:
        InvalidRequestError: not an http(s) URL with a host that httpx can send to.
    """
    return endpoint_url(url)


def encodable(value: str, field: str) -> str:
    """*value*, checked to be encodable as UTF-8 (lone surrogates are not).

    Raises:
        InvalidRequestError: naming *field*.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(
            field, f"holds characters that cannot be sent as UTF-8 ({exc.reason})"
        ) from None
    return value


def _segment(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(field, f"must be a string, not {type(value).__name__}")
    if not value.strip():
        raise InvalidRequestError(field, "must not be empty")
    encodable(value, field)
    # Codes such as Accela's "ServiceRequest/Animals/…" hold "/" and spaces (reference §8.9).
    return quote(value.strip(), safe="")


def build_request(
    call: Call[Any],
    base_url: str,
    fmt: Format,
    settings: Settings,
    headers: httpx.Headers | None = None,
) -> httpx.Request:
    """The `httpx.Request` for *call* on the endpoint *base_url* in format *fmt*.

    Raises:
        InvalidRequestError: a URL httpx refuses (issue 12 point 6: never ``httpx.InvalidURL``
            or ``UnicodeError`` out of a call).
    """
    try:
        return _build_request(call, base_url, fmt, settings, headers)
    except (httpx.InvalidURL, UnicodeError) as exc:
        shown = mask_text(str(exc), settings.api_key)
        raise InvalidRequestError(
            "endpoint",
            f"{call.method} {redact_text(base_url)}/{call.path}: not a usable URL ({shown})",
        ) from None


def _build_request(
    call: Call[Any],
    base_url: str,
    fmt: Format,
    settings: Settings,
    headers: httpx.Headers | None,
) -> httpx.Request:
    profile = settings.profile
    resource, _, rest = call.path.partition("/")
    path = profile.paths.get(resource, resource) + (f"/{rest}" if rest else "")
    params = list(call.params)
    if profile.extensions and call.operation in ("list_requests", "get_request"):
        params.append(("extensions", "true"))
    request_headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT[fmt]}
    if profile.accept_encoding is not None:
        request_headers["Accept-Encoding"] = profile.accept_encoding
    if headers:
        request_headers.update(headers)
    if call.form is None:
        if settings.jurisdiction_id:
            params.append(("jurisdiction_id", settings.jurisdiction_id))
        if settings.api_key and profile.api_key_on_reads:
            params.append(("api_key", settings.api_key))
        # The query is encoded here, once: httpx would parse the URL a second time to merge
        # a params= argument into it (this is on every call's path; bench/overhead.py).
        return httpx.Request(
            "GET", _with_query(base_url, path, fmt, params), headers=request_headers
        )
    form = list(call.form)
    if settings.jurisdiction_id:
        form.append(("jurisdiction_id", settings.jurisdiction_id))
    if settings.api_key:
        form.append(("api_key", settings.api_key))
    url = _with_query(base_url, path, fmt, params)
    if call.files:
        # multipart/form-data: httpx writes the boundary and the Content-Type (§8.2, §10.36).
        return httpx.Request(
            "POST",
            url,
            data=multipart_data(form),
            files=list(call.files),
            headers=request_headers,
        )
    request_headers["Content-Type"] = FORM_CONTENT_TYPE
    return httpx.Request("POST", url, content=encode_form(form), headers=request_headers)


def _with_query(
    base_url: str, path: str, fmt: str, params: Sequence[tuple[str, str]]
) -> httpx.URL | str:
    """The URL of *path* in *fmt* on *base_url* with the query *params*.

    Parsing a URL is the largest single cost of building a request (httpx checks every
    character in Python: 12-15 us of a call's ~150 us in process; bench/overhead.py). The
    endpoint is parsed once (`_parsed_base`) and the call's own part appended to it when httpx
    would keep that part as it is; anything else goes through httpx's parser. The test
    ``test_fast_url_is_the_parsed_url`` holds both ways to the same URL.
    """
    tail = f"/{path}.{fmt}"
    # quote, not quote_plus: a space is %20 and a "+" in a value stays %2B, as httpx writes.
    # Its output is unreserved characters, %XX escapes, "=" and "&": a query httpx keeps as is.
    query = urlencode(params, quote_via=quote) if params else None
    base = _parsed_base(base_url)
    if (
        base is None
        or not _PLAIN_PATH.fullmatch(tail)
        or len(base_url) + len(tail) + len(query or "") >= _HTTPX_URL_LIMIT
    ):
        return f"{base_url}{tail}?{query}" if query else f"{base_url}{tail}"
    reference = base._uri_reference
    url = httpx.URL.__new__(httpx.URL)
    url._uri_reference = reference._replace(path=reference.path + tail, query=query)
    return url


#: httpx refuses longer URLs ("URL too long", httpx/_urlparse.py MAX_URL_LENGTH): those go
#: through its parser, to be refused there.
_HTTPX_URL_LIMIT = 65_536

#: A path httpx's parser leaves unchanged: segments of unreserved characters and %XX escapes,
#: none of them "." or ".." (which it would resolve away). RFC 3986 §2.3, §3.3, §5.2.4.
_PLAIN_PATH = re.compile(r"(?:/(?!\.\.?(?:/|$))(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})+)+")


@functools.lru_cache(maxsize=64)
def _parsed_base(base_url: str) -> httpx.URL | None:
    """*base_url* parsed by httpx, when appending a plain path to it is appending to its text:
    already in httpx's canonical form, with no query or fragment. None otherwise, and when
    this httpx does not keep its parse where `_with_query` expects it (a private attribute,
    ``URL._uri_reference``, a named tuple since httpx 0.23): the parser is then used."""
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, UnicodeError):
        return None  # the parser raises again, where build_request reports it
    reference = getattr(url, "_uri_reference", None)
    if (
        str(url) != base_url
        or not hasattr(reference, "_replace")
        or getattr(reference, "query", "") is not None
        or getattr(reference, "fragment", "") is not None
    ):
        return None
    return url


_ACCEPT: dict[Format, str] = {
    "json": "application/json, text/xml;q=0.5, */*;q=0.1",
    "xml": "text/xml, application/xml;q=0.9, */*;q=0.1",
}


def https_upgrade(request: httpx.Request, response: httpx.Response) -> httpx.URL | None:
    """The https URL to send a POST to again, when the server answered it with a redirect from
    http to https on the same host and path (open311status PR #33, reference §10.37).

    A redirect means the server did not act on the POST, and the credentials stay with the same
    host, now over TLS; any other redirect of a POST is not followed (DESIGN promise 6).
    """
    if request.method != "POST" or response.status_code not in (301, 302, 303, 307, 308):
        return None
    location = response.headers.get("Location")
    if not location:
        return None
    try:
        target = request.url.join(location)
    except httpx.InvalidURL:
        return None
    same_place = target.host == request.url.host and target.path == request.url.path
    # The port too (issue 12 point 4): http://host:8080 may move to https://host:8080, and
    # the default port 80 to the default 443; any other port may be another service.
    same_port = target.port == request.url.port or (
        request.url.port in (None, 80) and target.port in (None, 443)
    )
    if request.url.scheme == "http" and target.scheme == "https" and same_place and same_port:
        return target
    return None


#: Sent instead of httpx's default once an endpoint's compressed bodies fail to decode
#: (Alexandria's broken deflate; open311status sends no Accept-Encoding there, §10.37).
IDENTITY = "identity"


# --- responses -------------------------------------------------------------------------------


def read_response(
    call: Call[T],
    response: httpx.Response,
    body: bytes,
    fmt: Format,
    now: datetime,
    secret: str | None = None,
) -> tuple[T, Format]:
    """Read *body* (already capped by the client) into *call*'s result.

    Returns:
        The result, and the format the body really was (an XML answer to ``.json`` says the
        endpoint is XML-only).

    Raises:
        APIError: a non-2xx status (any 2xx is success, reference §10.25).
        DecodeError: a 2xx body that is not the promised format or shape.
    """
    status = response.status_code
    try:
        return _read_response(call, response, body, fmt, now, secret)
    except RecursionError:
        # Absurdly deep nesting (hostile or broken bodies): a clear error, never a crash.
        raise DecodeError(
            f"{call.method} {redact_url(response.request.url)} → HTTP {status}: the body "
            "nests too deeply to read",
            body=scrub(body, secret)[:1024],
            url=redact_url(response.request.url),
            status_code=status,
        ) from None


def _read_response(
    call: Call[T],
    response: httpx.Response,
    body: bytes,
    fmt: Format,
    now: datetime,
    secret: str | None,
) -> tuple[T, Format]:
    status = response.status_code
    if not 200 <= status < 300:
        error = api_error(response, scrub(body, secret), fmt, now, secret)
        if status == 404 and call.operation == "list_services":
            error.add_hint(WRONG_BASE_URL)
        raise error
    try:
        if call.is_post and not body.strip():  # (strip copies the body: POSTs only)
            # A 2xx with no body to a POST: accepted, nothing to report (blackbox, spec §3.1).
            return call.parse(Decoded(None, fmt)), fmt
        decoded = decode(body, fmt)
        if error_document(decoded.data, decoded.root):
            # An error document served with 2xx is a refusal all the same, of the kind its
            # codes imply; never an empty Receipt, never an outage (issue 12 points 1-2).
            raise _document_error(call, response, body, decoded, secret)
        result: Any = call.parse(decoded)
        if call.paged:
            result = page_of(result, response)
        return result, decoded.format
    except DecodeError as exc:
        said = scrub_text(str(exc), secret)
    url = redact_url(response.request.url)  # only on the error path: it costs a parse
    if call.operation == "list_services" and looks_html(body[:512].lstrip()):
        said += f" ({WRONG_BASE_URL})"
    # Raised outside the except block: the unmasked inner error must not ride along as the
    # new one's __context__ (its body is the raw one).
    raise DecodeError(
        f"{call.method} {url} → HTTP {status}: {said}",
        body=scrub(body, secret),
        url=url,
        status_code=status,
    )


#: Said when the services list at a base URL is a 404 or an HTML page (issue 14 point 5).
WRONG_BASE_URL = (
    "is this the GeoReport v2 base URL? it usually ends in …/open311/v2, the part before "
    "services.json"
)


def scrub(body: bytes, secret: str | None) -> bytes:
    """*body* with *secret* masked (`civic311._secrets.mask_bytes`).

    Some servers echo the request back in their error bodies, api_key included; an error's
    message, parsed errors and kept body must not carry it (DESIGN promise 6).
    """
    return mask_bytes(body, secret)


def scrub_text(text: str, secret: str | None) -> str:
    """`scrub` for text: *secret*, in any spelling, and ``api_key=…`` values become ``***``."""
    return mask_text(text, secret)


def _document_error(
    call: Call[Any],
    response: httpx.Response,
    body: bytes,
    decoded: Decoded,
    secret: str | None,
) -> APIError:
    details = _masked_details(error_details(decoded.data), secret)
    implied = implied_status(details)
    return error_for_status(implied)(
        status_code=implied,
        http_status=response.status_code,
        errors=details,
        body=scrub(body, secret),
        method=call.method,
        url=redact_url(response.request.url),
    )


def _masked_details(details: list[ErrorDetail], secret: str | None) -> list[ErrorDetail]:
    # Parsing may reveal a spelling the raw body hid (a JSON escape): mask after parsing too.
    return [
        ErrorDetail(
            code=scrub_text(d.code, secret) if d.code else d.code,
            description=scrub_text(d.description, secret),
        )
        for d in details
    ]


def api_error(
    response: httpx.Response,
    body: bytes,
    fmt: Format,
    now: datetime,
    secret: str | None = None,
) -> APIError:
    """The `APIError` for a non-2xx *response*, with every error entry its body holds.

    *secret* (the api_key) is scrubbed from the parsed entries too: a body may hold it in an
    escaped spelling (``\\/`` in JSON) that only parsing reveals.
    """
    details = []
    try:
        details = error_details(decode(body, fmt).data) if body.strip() else []
    except DecodeError:
        details = []  # an HTML or text error page: the raw body is kept on the error
    details = _masked_details(details, secret)
    cls = error_for_status(response.status_code)
    return cls(
        status_code=response.status_code,
        errors=details,
        body=body,
        method=response.request.method,
        url=redact_url(response.request.url),
        retry_after=parse_retry_after(response.headers.get("Retry-After"), now),
    )


# --- operations ------------------------------------------------------------------------------

_REQUEST_NAMES = ("service_requests", "requests", "request")


def _records(decoded: Decoded, names: Sequence[str], what: str) -> list[dict[str, Any]]:
    return items(decoded.data, names, what)


@functools.cache
def _converter() -> cattrs.Converter:
    """The converter, imported on first use: it brings cattrs (~10 ms of `import civic311`)."""
    from civic311._wire.converter import converter

    return converter


def _structurer(model: type[T]) -> Callable[[dict[str, Any]], T]:
    """The converter's structure function for *model*, looked up once per list, not per record
    (`civic311._wire.converter.structurer`; imported on first use like the converter)."""
    from civic311._wire.converter import structurer

    return structurer(model)


def _structure(model: type[T], record: dict[str, Any], what: str) -> T:
    try:
        return _converter().structure(record, model)
    except DecodeError as exc:
        raise DecodeError(f"{what}: {exc}") from exc


def _parse_services(decoded: Decoded) -> list[Service]:
    records = _records(decoded, ("services", "service"), "services")
    structure = _structurer(Service)
    try:
        return list(map(structure, records))
    except DecodeError as exc:
        raise _name_bad_record(structure, records, "services") from exc


def list_services_call() -> Call[list[Service]]:
    """GET services (spec §2.1)."""
    return Call("list_services", "GET", "services", _parse_services, paged=True)


def service_definition_call(service_code: str) -> Call[ServiceDefinition]:
    """GET services/{service_code} (spec §2.2)."""
    path = f"services/{_segment(service_code, 'service_code')}"
    code = service_code.strip()

    def parse(decoded: Decoded) -> ServiceDefinition:
        record = one_object(decoded.data, ("service_definition",), "service_definition")
        if not record.get("service_code"):
            record = {**record, "service_code": code}
        return _structure(ServiceDefinition, record, "service_definition")

    return Call("get_service_definition", "GET", path, parse)


def submit_call(
    request: NewRequest,
    *,
    multivalue: MultivalueStyle = "brackets",
    media: MediaStyle = "url",
    max_media_bytes: int = MAX_MEDIA_BYTES,
    form_names: Mapping[str, str] | None = None,
) -> Call[Receipt]:
    """POST requests (spec §2.3), with media as the city takes it (reference §10.36).

    Raises:
        InvalidRequestError: not a NewRequest, or media this city cannot take (several URLs
            where it takes one, files where it takes none, too many or too large files).
    """
    if not isinstance(request, NewRequest):
        raise InvalidRequestError(
            "request", f"must be a civic311.NewRequest, not {type(request).__name__}"
        )
    extra, files = media_parts(request, style=media, max_bytes=max_media_bytes)
    form = (*new_request_fields(request, multivalue=multivalue), *extra)
    if form_names:
        # Fields the server knows under another name (6aika: address, issue 11 point 10).
        form = tuple((form_names.get(name, name), value) for name, value in form)

    def parse(decoded: Decoded) -> Receipt:
        records = _records(decoded, _REQUEST_NAMES, "service_requests")
        if not records:
            return Receipt()  # blackbox: neither id nor token is success (reference §10.3)
        receipt = _structure(Receipt, records[0], "service_requests[0]")
        if receipt.extras:
            receipt = attrs.evolve(receipt, extras=_request_extras(records[0], receipt.extras))
        return receipt

    return Call("submit", "POST", "requests", parse, form=form, files=tuple(files))


def _request_extras(record: dict[str, Any], extras: Mapping[str, Any]) -> dict[str, Any]:
    """A POST answer's fields beyond the receipt's, read as a `ServiceRequest` reads them.

    6aika answers a POST with 201 and the whole request (reference/real-servers/
    A_post_latlong): kept raw, ``lat`` was a float from JSON and a string from XML, and an
    empty ``address`` ``""`` from one and None from the other. Read through the request model
    and back to plain data, both formats give the same extras (issue 11 point 10). A record
    the model cannot read keeps its raw values.
    """
    try:
        converter = _converter()
        plain = converter.unstructure(converter.structure(record, ServiceRequest))
    except (DecodeError, ValueError, TypeError):
        return dict(extras)
    return {key: plain.get(key, value) for key, value in extras.items()}


def get_token_call(token: str) -> Call[TokenStatus]:
    """GET tokens/{token} (spec §2.4)."""
    path = f"tokens/{_segment(token, 'token')}"
    asked = token.strip()

    def parse(decoded: Decoded) -> TokenStatus:
        records = _records(decoded, _REQUEST_NAMES, "service_requests")
        if not records:
            return TokenStatus(token=asked)  # nothing yet: still pending
        record = records[0]
        if not record.get("token"):
            record = {**record, "token": asked}
        return _structure(TokenStatus, record, "service_requests[0]")

    return Call("get_token", "GET", path, parse)


def get_request_call(service_request_id: str) -> Call[ServiceRequest]:
    """GET requests/{service_request_id} (spec §2.6): an array of one, or a bare object."""
    path = f"requests/{_segment(service_request_id, 'service_request_id')}"
    asked = service_request_id.strip()

    def parse(decoded: Decoded) -> ServiceRequest:
        records = _records(decoded, _REQUEST_NAMES, "service_requests")
        if not records:
            raise NotFoundError(
                status_code=200,
                body=b"",
                url=path,
                method="GET",
                errors=[],
            )
        result = _structure(ServiceRequest, records[0], "service_requests[0]")
        if result.service_request_id is None and result.token is None:
            result = attrs.evolve(result, service_request_id=asked)
        return result

    return Call("get_request", "GET", path, parse)


def _parse_request_list(decoded: Decoded) -> Page[ServiceRequest]:
    records = _records(decoded, _REQUEST_NAMES, "service_requests")
    structure = _structurer(ServiceRequest)  # looked up once, not per record
    try:
        out: Page[ServiceRequest] = Page(map(structure, records), received=len(records))
    except DecodeError as exc:
        raise _name_bad_record(structure, records, "service_requests") from exc
    if not all(map(_request_id, out)):  # (an id is never empty: empty text reads as None)
        kept = [r for r in out if r.service_request_id is not None]
        # Not created yet; Chicago lists these (reference §10.5).
        logger.debug("skipped %d requests without a service_request_id", len(out) - len(kept))
        out[:] = kept
    return out


_request_id = operator.attrgetter("service_request_id")


def _name_bad_record(
    structure: Callable[[dict[str, Any]], object], records: list[dict[str, Any]], what: str
) -> DecodeError:
    """The error of the first record of *records* that *structure* refuses, naming its place
    (formatted only when one is bad; structuring is pure, so reading again raises the same)."""
    for index, record in enumerate(records):
        try:
            structure(record)
        except DecodeError as exc:  # noqa: PERF203 - the error path, once
            return DecodeError(f"{what}[{index}]: {exc}")
    return DecodeError(f"{what}: a record could not be read")  # pragma: no cover


def _comma_list(value: object, field: str) -> str | None:
    """Spec §2.5 lists are comma-delimited, without spaces (Chicago, reference §10.33)."""
    if value is None:
        return None
    values: Iterable[object]
    if isinstance(value, str):
        values = value.split(",")
    elif isinstance(value, Sequence | set | frozenset):
        values = value
    else:
        raise InvalidRequestError(
            field, f"must be a string or a sequence of strings, not {type(value).__name__}"
        )
    parts = []
    for item in values:
        if not isinstance(item, str):
            raise InvalidRequestError(field, f"values must be strings, not {type(item).__name__}")
        if item.strip():
            parts.append(encodable(item.strip(), field))
    return ",".join(parts) or None


def id_set(value: str | Sequence[str] | None) -> frozenset[str]:
    """The ids of a ``service_request_id`` filter, as `list_requests_call` sends them."""
    text = _comma_list(value, "service_request_id")
    return frozenset(text.split(",")) if text else frozenset()


def _query_datetime(value: object, field: str, zone: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidRequestError(field, f"must be a datetime, not {type(value).__name__}")
    try:
        return format_datetime(value, zone=zone)
    except InvalidRequestError as exc:
        raise InvalidRequestError(field, str(exc).split(": ", 1)[1]) from exc


def list_requests_call(
    *,
    service_request_id: str | Sequence[str] | None = None,
    service_code: str | Sequence[str] | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    status: str | Sequence[str] | None = None,
    date_zone: bool = True,
    extra_params: Sequence[tuple[str, str]] = (),
) -> Call[list[ServiceRequest]]:
    """GET requests (spec §2.5). Items without a service_request_id are skipped (§10.5).

    Raises:
        InvalidRequestError: a naive datetime, a wrong type, or end_date before start_date.
    """
    params: list[tuple[str, str]] = []
    ids = _comma_list(service_request_id, "service_request_id")
    codes = _comma_list(service_code, "service_code")
    statuses = _comma_list(status, "status")
    start = _query_datetime(start_date, "start_date", date_zone)
    end = _query_datetime(end_date, "end_date", date_zone)
    if start_date is not None and end_date is not None:
        if end_date < start_date:
            raise InvalidRequestError("end_date", "is before start_date")
        if end_date - start_date > MAX_SPAN:
            warnings.warn(
                f"start_date..end_date spans {(end_date - start_date).days} days; the spec "
                "allows 90 (§2.5) and servers refuse or cut longer spans — use iter_requests",
                Civic311Warning,
                stacklevel=4,
            )
    for name, value in (
        ("service_request_id", ids),
        ("service_code", codes),
        ("start_date", start),
        ("end_date", end),
        ("status", statuses),
    ):
        if value is not None:
            params.append((name, value))
    params.extend(extra_params)
    return Call(
        "list_requests", "GET", "requests", _parse_request_list, params=tuple(params), paged=True
    )


def chunk_ids(
    ids: Sequence[str],
    base_length: int,
    limit: int = MAX_URL_LENGTH,
    most: int | None = None,
) -> list[list[str]]:
    """Split *ids* into groups whose comma list keeps the URL within *limit* characters, and
    of at most *most* ids (the server's page size or result cap: more ids than one answer
    holds would come back cut).

    *base_length* is the length of the URL without the ``service_request_id`` value.

    Raises:
        InvalidRequestError: one id alone would pass the limit.
    """
    budget = limit - base_length
    chunks: list[list[str]] = []
    current: list[str] = []
    used = 0
    for id_ in ids:
        cost = len(quote(id_, safe="")) + (3 if current else 0)  # "%2C" between ids
        if len(quote(id_, safe="")) > budget:
            raise InvalidRequestError("ids", f"id {id_[:40]!r}… is too long for one URL")
        if current and (used + cost > budget or (most is not None and len(current) >= most)):
            chunks.append(current)
            current, used = [], 0
            cost = len(quote(id_, safe=""))
        current.append(id_)
        used += cost
    if current:
        chunks.append(current)
    return chunks


# --- flows -----------------------------------------------------------------------------------

#: What a flow yields: a call to run (its result is sent back, its error thrown in) or a sleep
#: (the monotonic time after it is sent back). The one vocabulary of every flow.
Step = Call[Any] | Sleep

#: A flow that returns a *T*: driven by ``_drive`` in either client, composed with ``yield from``.
Flow = Generator[Step, Any, T]


def lookup_flow(
    wanted: Sequence[str],
    chunks: Sequence[Sequence[str]],
    *,
    date_zone: bool = True,
    rule: PageRule | None = None,
) -> Flow[list[ServiceRequest]]:
    """Look the ids *wanted* up by id, chunk by chunk (`chunk_ids`), following pages.

    An id is missing only when the city truly lacks it. Ids an answer left out are asked
    again while answers bring some of them (a server may cap below what the profile says,
    silently); an answer with none of them settles it, unless that answer may be cut (it
    reached the cap, or the server says there is more: a server ignoring the id filter), when
    they are asked again in halves, and a single id still in doubt alone (GET
    requests/{id}: a 404 means missing). Rows not asked for are dropped (open311-adapter
    ignores the id filter and answers every request, reference
    real-servers/B_requests_filter_ids_ignored). Bounded: every re-ask finds an id or halves
    its chunk.

    Returns:
        The requests in the order of *wanted*; ids the city does not have are left out.
    """
    rule = rule or PageRule()
    found: dict[str, ServiceRequest] = {}
    queue: deque[Sequence[str]] = deque(chunks)
    alone: list[str] = []
    while queue:
        chunk = queue.popleft()
        got: Collected[ServiceRequest] = yield from paged_flow(
            list_requests_call(service_request_id=chunk, date_zone=date_zone),
            rule,
            request_key,
        )
        asked = set(chunk)
        progress = False
        for request in got.rows:
            rid = request.service_request_id
            if rid is not None and rid in asked and rid not in found:
                found[rid] = request
                progress = True
        missing = [i for i in chunk if i not in found]
        if not missing:
            continue
        if progress:
            # Some came, some did not: a server may cap below what the profile says and not
            # say so (issue 11 point 2: 250 ids, 175 found). Ask the rest again; an answer
            # with none of them settles it.
            queue.append(missing)
            continue
        if not got.cut:
            continue  # none of these came, from an answer that was not cut: missing
        if len(chunk) == 1:
            alone.extend(missing)
            continue
        size = max(1, min(len(missing), len(chunk) // 2))
        queue.extend(missing[i : i + size] for i in range(0, len(missing), size))
    for rid in alone:
        with contextlib.suppress(NotFoundError):  # a 404: the city does not have it
            found[rid] = yield get_request_call(rid)
    return [found[i] for i in wanted if i in found]


def request_key(request: ServiceRequest) -> str | None:
    """A request's key when paged answers are de-duplicated (`paged_flow`): its id."""
    return request.service_request_id


def wait_for_id_flow(
    token: str,
    *,
    timeout: float,
    started: float,
    first_interval: float = 0.5,
    max_interval: float = 10.0,
    pending_404: bool = True,
) -> Flow[str]:
    """Poll tokens/{token} with growing intervals until an id appears (spec §2.4).

    The first look-up is immediate, then 0.5 s, 1 s, 2 s… up to *max_interval*, never past
    *timeout*. A token answer without an id (Chicago) is pending; so is a 404 when
    *pending_404* (San Francisco answers 404 until the token is processed, reference §10.4).

    Raises:
        WaitTimeoutError: *timeout* passed with the token still pending.
    """
    call = get_token_call(token)
    interval = first_interval
    polls = 0
    now = started
    while True:
        polls += 1
        try:
            status: TokenStatus = yield call
        except NotFoundError:
            if not pending_404:
                raise
        else:
            if status.service_request_id is not None:
                return status.service_request_id
        remaining = started + timeout - now
        if remaining <= 0:
            raise WaitTimeoutError(token.strip(), now - started, polls)
        now = yield Sleep(min(interval, remaining))
        interval = min(interval * 2, max_interval)


# --- paging ----------------------------------------------------------------------------------
#
# GeoReport v2 has no paging (spec §2.5: at most ~1,000 rows, silently cut), but servers page
# anyway and say so in headers: 6aika/issue-reporting sends X-Next-Page-URL, X-Result-Count,
# X-Page-Count and X-Page-Size on every list (default page 100, max 500; captured answers in
# reference/real-servers/A_requests_*), other frameworks an RFC 8288 ``Link: <…>; rel="next"``
# or an X-Total-Count. Whatever the profile says, a list answer is read as a `Page` with those
# hints, and `paged_flow` follows them.

#: Query names a next-page URL may carry that civic311 never copies from a server: the
#: credentials and what `build_request` adds itself from the settings.
_NOT_COPIED = SECRET_NAMES | {"jurisdiction_id", "extensions"}

#: The most pages one list call follows (a runaway server must not hold a caller for ever).
MAX_PAGES = 100


_link = on_first_use(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")
_rel = on_first_use(r"""(?i)(?:^|;)\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""")
_format_suffix = on_first_use(r"\.(?:json|xml)$", re.IGNORECASE)


class Page(list[T]):
    """One answer of a list call, and what the server's headers say about the rest.

    Attributes:
        received: Records the body held (items without an id included: §10.5 skips them).
        total: The rows the server says match (``X-Result-Count``, ``X-Total-Count``), if it
            says.
        next_params: The query of the next page, taken from ``X-Next-Page-URL`` or a ``Link``
            ``rel="next"`` on this endpoint (None: the server named no next page).
        foreign_next: A next-page URL that points elsewhere (another host or resource); it
            is never followed, so the api_key and the caller never go there.
    """

    __slots__ = ("foreign_next", "next_params", "received", "total")

    def __init__(self, rows: Iterable[T] = (), *, received: int | None = None) -> None:
        super().__init__(rows)
        self.received: int = len(self) if received is None else received
        self.total: int | None = None
        self.next_params: tuple[tuple[str, str], ...] | None = None
        self.foreign_next: str | None = None


def _count(headers: httpx.Headers) -> int | None:
    for name in ("X-Result-Count", "X-Total-Count"):
        text = headers.get(name)
        if text is not None and text.strip().isdigit():
            return int(text.strip())
    return None


def next_link(headers: httpx.Headers) -> str | None:
    """The next page's URL a response names: ``X-Next-Page-URL`` (6aika, DRF) or an RFC 8288
    ``Link`` with ``rel="next"`` (rel may list several types, §3.3 of the RFC)."""
    url: str | None = headers.get("X-Next-Page-URL")
    if url is not None and url.strip():
        return url.strip()
    for value in headers.get_list("Link"):
        for target, params in _link().findall(value):
            for quoted, bare in _rel().findall(params):
                if "next" in str(quoted or bare).lower().split():
                    return str(target).strip()
    return None


def next_params(request_url: httpx.URL, link: str) -> tuple[tuple[str, str], ...] | None:
    """The query to ask for the page *link* names, or None when *link* is not this endpoint's.

    civic311 never sends a request to the URL a server names: it takes that URL's query and
    asks the endpoint it already uses, on the same resource. A link to another host, port or
    path is refused (the api_key must never go elsewhere, DESIGN promise 6). A link that
    differs only by scheme is accepted: a server behind a TLS proxy writes ``http://`` links
    for an ``https://`` endpoint (Django without SECURE_PROXY_SSL_HEADER), and the query is
    asked over the endpoint's own scheme anyway.
    """
    try:
        target = request_url.join(link)
    except (httpx.InvalidURL, ValueError):
        return None
    same_host = (target.host or "").lower() == (request_url.host or "").lower()
    same_port = target.port == request_url.port or (target.port is None) == (
        request_url.port is None
    )
    same_path = _format_suffix().sub("", target.path) == _format_suffix().sub("", request_url.path)
    if not (same_host and same_port and same_path):
        return None
    return tuple((k, v) for k, v in target.params.multi_items() if k.lower() not in _NOT_COPIED)


def page_of(rows: list[T], response: httpx.Response) -> Page[T]:
    """*rows* as a `Page`, with the paging hints of *response*'s headers."""
    page: Page[T] = rows if isinstance(rows, Page) else Page(rows)
    headers = response.headers
    page.total = _count(headers)
    link = next_link(headers)
    if link is not None:
        page.next_params = next_params(response.request.url, link)
        if page.next_params is None:
            page.foreign_next = redact_url(link) if "://" in link else link
    return page


class PageRule(Record):
    """How to page a list by the profile: ``none``, ``page`` (page + page_size) or ``offset``
    (limit + offset), the page size to ask for, the first page's number, and the cap."""

    __slots__ = ("first_page", "max_pages", "page_size", "result_cap", "style")

    style: Literal["none", "page", "offset"]
    page_size: int | None
    first_page: int
    result_cap: int
    max_pages: int

    def __init__(
        self,
        style: Literal["none", "page", "offset"] = "none",
        page_size: int | None = None,
        first_page: int = 1,
        result_cap: int = DEFAULT_RESULT_CAP,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self._set(
            style=style,
            page_size=page_size,
            first_page=first_page,
            result_cap=result_cap,
            max_pages=max_pages,
        )

    def params(self, number: int) -> tuple[tuple[str, str], ...]:
        """The query parameters of page *number* (0-based)."""
        if self.style == "page":
            params = [("page", str(self.first_page + number))]
            if self.page_size is not None:
                params.append(("page_size", str(self.page_size)))
            return tuple(params)
        if self.style == "offset":
            size = self.page_size or 100
            return (("limit", str(size)), ("offset", str(number * size)))
        return ()


class Collected(Record, Generic[T]):
    """What `paged_flow` gathered.

    Attributes:
        rows: Every row of every page, each key once, in the order served.
        pages: Answers asked.
        total: The count the server gave last, if any.
        more: The server said there is more than was fetched (a count above what came, a
            next page past the page budget, or a next page elsewhere): the list is cut.
        capped: Nothing said "more", but an unpaged answer reached the cap: maybe cut.
        reason: Why ``more``, for messages.
    """

    __slots__ = ("capped", "more", "pages", "reason", "rows", "total")

    rows: list[T]
    pages: int
    total: int | None
    more: bool
    capped: bool
    reason: str

    def __init__(
        self,
        rows: list[T],
        pages: int,
        total: int | None = None,
        more: bool = False,
        capped: bool = False,
        reason: str = "",
    ) -> None:
        self._set(rows=rows, pages=pages, total=total, more=more, capped=capped, reason=reason)

    @property
    def cut(self) -> bool:
        """Whether the list may be incomplete."""
        return self.more or self.capped


def _with_params(call: Call[T], params: Sequence[tuple[str, str]]) -> Call[T]:
    return call.evolve(params=tuple(params))


def paged_flow(
    call: Call[list[T]],
    rule: PageRule,
    key: Callable[[T], str | None],
) -> Generator[Call[list[T]], Any, Collected[T]]:
    """Ask *call*, and every further page the server names or the profile's *rule* implies.

    The first page asks for the profile's page size (the largest the server allows, where the
    profile knows it). A next page is taken from the answer's headers first (`page_of`), else
    from *rule* while pages come full. Paging stops at an empty page, a page that repeats the
    previous one (uReport answers the last page again past the end, §8.6), the server's count
    reached, or ``rule.max_pages`` pages. Rows are de-duplicated by *key* across pages.
    """
    extra = rule.params(0) if rule.style != "none" else ()
    ask = _with_params(call, (*call.params, *extra)) if extra else call
    rows: list[T] = []
    seen: set[str] = set()
    previous: list[str | None] | None = None
    pages = 0
    total: int | None = None
    received = 0
    while True:
        page: list[T] = yield ask
        pages += 1
        keys = [key(r) for r in page]
        if pages > 1 and (not page or keys == previous):
            break  # empty, or the last page answered again
        previous = keys
        for row, k in zip(page, keys, strict=True):
            if k is not None:
                if k in seen:
                    continue
                seen.add(k)
            rows.append(row)
        info = page if isinstance(page, Page) else Page(page)
        received += info.received
        total = info.total if info.total is not None else total
        if info.foreign_next is not None:
            return Collected(
                rows, pages, total, True, False, f"its next page is elsewhere ({info.foreign_next})"
            )
        nxt: Sequence[tuple[str, str]] | None = None
        if info.next_params is not None:
            nxt = info.next_params
        elif rule.style != "none" and info.received and (total is None or received < total):
            full = rule.page_size is None or info.received >= rule.page_size
            if full:
                nxt = (*call.params, *rule.params(pages))
        if nxt is None or (total is not None and received >= total and not info.next_params):
            break
        if pages >= rule.max_pages:
            return Collected(
                rows, pages, total, True, False, f"it has more pages than the {pages} followed"
            )
        ask = _with_params(call, nxt)
    if total is not None and received < total:
        return Collected(
            rows, pages, total, True, False, f"it counts {total} and {received} came back"
        )
    paging_known = pages > 1 or total is not None or rule.style != "none"
    capped = not paging_known and received >= rule.result_cap
    return Collected(rows, pages, total, False, capped)
