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

import logging
import warnings
from collections.abc import Callable, Generator, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote, urlencode

import attrs
import httpx

from civic311._checks import endpoint_url
from civic311._resilience.retry import parse_retry_after
from civic311._secrets import SECRET_NAMES, mask_bytes, mask_text, redact_text, redact_url
from civic311._version import __version__
from civic311._wire import Decoded, Format, decode, looks_html
from civic311._wire.converter import converter, format_datetime
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
from civic311.profiles import SPEC, Profile

__all__ = [
    "Call",
    "Civic311Warning",
    "MAX_URL_LENGTH",
    "SECRET_NAMES",
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
    "list_requests_call",
    "list_services_call",
    "lookup_flow",
    "normalize_base_url",
    "read_response",
    "redact_text",
    "scrub",
    "scrub_text",
    "redact_url",
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


@attrs.frozen
class Settings:
    """What shapes requests and their reading for one client: its credentials, and how the
    city's server deviates from the spec (its `civic311.profiles.Profile`).

    Attributes:
        jurisdiction_id: Sent on every call when set; never sent empty (spec §1.3, §1.5).
        api_key: Sent as a form field on POST (spec §1.4). Never shown in a repr.
        profile: The server's quirks (paths, date style, extensions, media, paging…), read
            where they matter rather than copied field by field.
    """

    jurisdiction_id: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    profile: Profile = SPEC

    @property
    def date_zone(self) -> bool:
        """Whether query datetimes carry ``Z`` (some servers refuse it, reference §6.2)."""
        return self.profile.date_style == "utc_z"


@attrs.frozen
class Call(Generic[T]):
    """One GeoReport request, independent of endpoint and format.

    Attributes:
        operation: The client method it serves ("list_services", "submit", …).
        method: "GET" or "POST".
        path: The resource path without the format extension, already URL-quoted.
        params: Query parameters (without jurisdiction_id, added per settings).
        form: The POST form fields (without credentials), or None for a GET.
        files: Files to upload; when there are any, the POST is multipart/form-data.
        parse: Reads the decoded body into the result.
    """

    operation: str
    method: Literal["GET", "POST"]
    path: str
    parse: Callable[[Decoded], T] = attrs.field(repr=False)
    params: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, str], ...] | None = None
    files: tuple[FilePart, ...] = attrs.field(default=(), repr=False)

    @property
    def is_post(self) -> bool:
        """Whether the call creates something (and so must never be blindly repeated)."""
        return self.method == "POST"


@attrs.frozen
class Sleep:
    """A flow step: wait this many seconds, then send back the monotonic time."""

    seconds: float


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


def _with_query(base_url: str, path: str, fmt: str, params: Sequence[tuple[str, str]]) -> str:
    url = f"{base_url}/{path}.{fmt}"
    # quote, not quote_plus: a space is %20 and a "+" in a value stays %2B, as httpx writes.
    return f"{url}?{urlencode(params, quote_via=quote)}" if params else url


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
        if not body.strip() and call.is_post:
            # A 2xx with no body to a POST: accepted, nothing to report (blackbox, spec §3.1).
            return call.parse(Decoded(None, fmt)), fmt
        decoded = decode(body, fmt)
        if error_document(decoded.data, decoded.root):
            # An error document served with 2xx is a refusal all the same, of the kind its
            # codes imply; never an empty Receipt, never an outage (issue 12 points 1-2).
            raise _document_error(call, response, body, decoded, secret)
        return call.parse(decoded), decoded.format
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


def _structure(model: type[T], record: dict[str, Any], what: str) -> T:
    try:
        return converter.structure(record, model)
    except DecodeError as exc:
        raise DecodeError(f"{what}: {exc}") from exc


def _parse_services(decoded: Decoded) -> list[Service]:
    records = _records(decoded, ("services", "service"), "services")
    return [_structure(Service, r, f"services[{i}]") for i, r in enumerate(records)]


def list_services_call() -> Call[list[Service]]:
    """GET services (spec §2.1)."""
    return Call("list_services", "GET", "services", _parse_services)


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

    def parse(decoded: Decoded) -> Receipt:
        records = _records(decoded, _REQUEST_NAMES, "service_requests")
        if not records:
            return Receipt()  # blackbox: neither id nor token is success (reference §10.3)
        return _structure(Receipt, records[0], "service_requests[0]")

    return Call("submit", "POST", "requests", parse, form=form, files=tuple(files))


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


def _parse_request_list(decoded: Decoded) -> list[ServiceRequest]:
    records = _records(decoded, _REQUEST_NAMES, "service_requests")
    out = []
    skipped = 0
    for index, record in enumerate(records):
        request = _structure(ServiceRequest, record, f"service_requests[{index}]")
        if request.service_request_id is None:
            skipped += 1  # not created yet; Chicago lists these (reference §10.5)
            continue
        out.append(request)
    if skipped:
        logger.debug("skipped %d requests without a service_request_id", skipped)
    return out


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
    return Call("list_requests", "GET", "requests", _parse_request_list, params=tuple(params))


def chunk_ids(ids: Sequence[str], base_length: int, limit: int = MAX_URL_LENGTH) -> list[list[str]]:
    """Split *ids* into groups whose comma list keeps the URL within *limit* characters.

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
        if current and used + cost > budget:
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
    wanted: Sequence[str], chunks: Sequence[Sequence[str]], *, date_zone: bool = True
) -> Flow[list[ServiceRequest]]:
    """Look the ids *wanted* up, one GET requests per chunk of *chunks* (`chunk_ids`).

    Returns:
        The requests in the order of *wanted*; ids the city did not return are left out.
    """
    by_id: dict[str | None, ServiceRequest] = {}
    for chunk in chunks:
        found: list[ServiceRequest] = yield list_requests_call(
            service_request_id=chunk, date_zone=date_zone
        )
        by_id.update((r.service_request_id, r) for r in found)
    return [by_id[i] for i in wanted if i in by_id]


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
