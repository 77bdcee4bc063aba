"""Open311 Service Discovery: one URL that says where a city's GeoReport v2 endpoints are.

A city publishes ``…/discovery.json`` and ``…/discovery.xml`` (reference §7) listing its API
endpoints: which specification each speaks, production or test, which formats. civic311 reads
it, picks the GeoReport v2 endpoints of the environment you want, and hands their base URLs to a
client (``Client.from_discovery(url)``)::

    import civic311
    from civic311.discovery import choose_endpoints, discovery_root

    url = "https://city.example/open311/discovery.json"
    with civic311.Client(discovery_root(url)) as client:
        discovery = client.get_discovery(url)
    choose_endpoints(discovery)              # [("https://city.example/open311/v2", "json")]
    choose_endpoints(discovery, environment="test")

This module only parses and chooses; it does no I/O. The document is fetched by a client
(`get_discovery`, `from_discovery`), through the client's own exchange: its TLS settings
(``ca_bundle``), User-Agent, headers, timeout and response size cap apply.

Real documents bend the spec (reference §7 table), and `parse_discovery` takes them as they
come: a UTF-8 byte-order mark (Helsinki), ``endpoints`` as an object instead of an array
(Gießen) or as ``{"endpoint": […]}``, a lone endpoint object, the whole document wrapped in
``{"discovery": {…}}`` (FixMyStreet), keys the spec does not know (kept in ``extras``),
changesets as ``YYYY-MM-DD HH:MM`` (the spec's own example) or W3C datetimes, formats as MIME
types, one ``<format>`` in XML, and Klarschiff's misspelled ``<dicovery>`` root. What is not a
discovery document at all (D.C.'s discovery.json was not JSON) is a `DecodeError`.

Fetched documents are kept in a `DiscoveryCache` (an hour by default); the spec's ``changeset``
flags changes, but only a fresh fetch can reveal a new one, so the cache simply expires.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import attrs
import httpx

from civic311._clock import Clock, SystemClock
from civic311._protocol import USER_AGENT, Call, api_error, redact_url
from civic311._w3c import parse_datetime
from civic311._wire import Decoded, decode
from civic311.errors import Civic311Warning, DecodeError, InvalidRequestError, snippet

__all__ = [
    "DISCOVERY_CALL",
    "GEOREPORT_V2",
    "Discovery",
    "DiscoveryCache",
    "DiscoveryEndpoint",
    "check_discovery_url",
    "choose_endpoints",
    "default_cache",
    "discovery_request",
    "discovery_root",
    "parse_discovery",
    "read_discovery",
]

#: The specification token of GeoReport v2 endpoints (Service Discovery, reference §7).
GEOREPORT_V2 = "http://wiki.open311.org/GeoReport_v2"

FormatName = Literal["json", "xml"]
_ENVIRONMENTS = ("production", "test")

# MIME types (and bare names) in `formats` → the GeoReport format they stand for (§7: "MIME
# types, e.g. text/xml, application/json"). text/html (FixMyStreet) stands for none.
_FORMAT_NAMES: dict[str, FormatName] = {
    "application/json": "json",
    "text/json": "json",
    "json": "json",
    "text/xml": "xml",
    "application/xml": "xml",
    "xml": "xml",
}

_DOCUMENT_KEYS = ("changeset", "contact", "key_service", "endpoints")
_ENDPOINT_KEYS = ("specification", "url", "changeset", "type", "formats")


def _frozen_extras(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


def _extras_repr(value: Mapping[str, Any]) -> str:
    return repr(dict(value))


@attrs.frozen(kw_only=True)
class DiscoveryEndpoint:
    """One entry of a discovery document's ``endpoints`` (reference §7).

    Attributes:
        specification: The specification token, e.g. `GEOREPORT_V2` (other APIs, such as the
            spec example's GeoReport v3, are listed too).
        url: The endpoint's base URL, as written ("" when the entry had none).
        changeset: When the entry last changed; None when absent or unreadable (the raw text
            is then kept in ``extras["changeset"]``).
        type: ``"production"`` or ``"test"`` as written ("" when absent).
        formats: The formats offered, as written: MIME types such as ``text/xml``.
        extras: Keys the spec does not define (Helsinki's ``locales``), kept as sent.
    """

    specification: str
    url: str
    changeset: datetime | None = None
    type: str = ""
    formats: tuple[str, ...] = ()
    extras: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_extras, hash=False, repr=_extras_repr
    )

    @property
    def is_georeport_v2(self) -> bool:
        """Whether `specification` names GeoReport v2, ignoring scheme, case, ``www.`` and a
        trailing slash (``https://wiki.open311.org/GeoReport_v2/`` counts)."""
        return _spec_token(self.specification) == _spec_token(GEOREPORT_V2)

    @property
    def format_names(self) -> tuple[FormatName, ...]:
        """The GeoReport formats among `formats`, in document order (``text/html`` dropped)."""
        names: list[FormatName] = []
        for mime in self.formats:
            name = _FORMAT_NAMES.get(mime.split(";")[0].strip().lower())
            if name is not None and name not in names:
                names.append(name)
        return tuple(names)


@attrs.frozen(kw_only=True)
class Discovery:
    """A city's Service Discovery document (reference §7).

    Attributes:
        changeset: When the document last changed (None when absent or unreadable).
        contact: Human-readable contact information.
        key_service: Human-readable information on getting an API key.
        endpoints: Every endpoint listed, whatever its specification, in document order.
        extras: Top-level keys the spec does not define (FixMyStreet's ``max_requests``).
        source: The URL the document was read from, after redirects (None when parsed from
            bytes alone). A document read over https yields only https endpoints.
    """

    changeset: datetime | None = None
    contact: str | None = None
    key_service: str | None = None
    endpoints: tuple[DiscoveryEndpoint, ...] = ()
    extras: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_extras, hash=False, repr=_extras_repr
    )
    source: str | None = attrs.field(default=None, eq=False)


# -- parsing -----------------------------------------------------------------------------------


def _spec_token(text: str) -> str:
    token = text.strip().casefold()
    for scheme in ("https://", "http://"):
        if token.startswith(scheme):
            token = token[len(scheme) :]
            break
    token = token.removeprefix("www.")
    return token.rstrip("/")


def _text(value: Any, what: str) -> str | None:
    """A scalar as trimmed text; None for null, empty or missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        text = str(value).strip()
        return text or None
    raise DecodeError(f"discovery document: {what} should be text, got {type(value).__name__}")


def _changeset(value: Any, what: str, extras: dict[str, Any]) -> datetime | None:
    text = _text(value, what)
    if text is None:
        return None
    try:
        return parse_datetime(text)
    except ValueError:
        # "Sortable" is all the spec promises (§7); an unreadable one is no reason to refuse
        # the endpoints. The raw text stays available.
        extras["changeset"] = text
        return None


def _formats(value: Any, what: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value.strip(),)
    if isinstance(value, Mapping) and set(value) == {"format"}:
        return _formats(value["format"], what)  # {"format": [...]}: an XML-to-JSON leftover
    if isinstance(value, list):
        formats: list[str] = []
        for item in value:
            text = _text(item, f"{what}[]")
            if text is not None:
                formats.append(text)
        return tuple(formats)
    raise DecodeError(
        f"discovery document: {what} should be a list of MIME types, got {type(value).__name__}"
    )


def _endpoint_records(value: Any) -> list[Any]:
    """The endpoint objects of ``endpoints``, however the server shaped it."""
    if value is None or value == "":
        return []  # <endpoints/>
    if isinstance(value, list):
        records: list[Any] = []
        for item in value:
            if isinstance(item, Mapping) and set(item) == {"endpoint"}:
                records.extend(_endpoint_records(item["endpoint"]))  # [{"endpoint": {…}}]
            else:
                records.append(item)
        return records
    if isinstance(value, Mapping):
        if "endpoint" in value and len(value) == 1:
            return _endpoint_records(value["endpoint"])  # {"endpoint": […]} or {"endpoint": {…}}
        if "url" in value or "specification" in value:
            return [value]  # a lone endpoint object
        # Gießen: an object of endpoint objects (open311_java #15); keep their order.
        return [item for item in value.values() if isinstance(item, Mapping)] or [value]
    raise DecodeError(
        f"discovery document: endpoints should be a list of objects, got {type(value).__name__}"
    )


def _endpoint(record: Any, index: int) -> DiscoveryEndpoint:
    where = f"endpoints[{index}]"
    if not isinstance(record, Mapping):
        raise DecodeError(
            f"discovery document: {where} should be an object, got {type(record).__name__}"
        )
    extras = {k: v for k, v in record.items() if k not in _ENDPOINT_KEYS}
    return DiscoveryEndpoint(
        specification=_text(record.get("specification"), f"{where}.specification") or "",
        url=_text(record.get("url"), f"{where}.url") or "",
        changeset=_changeset(record.get("changeset"), f"{where}.changeset", extras),
        type=_text(record.get("type"), f"{where}.type") or "",
        formats=_formats(record.get("formats"), f"{where}.formats"),
        extras=extras,
    )


def _document(data: Any) -> Mapping[str, Any]:
    """The discovery object itself, unwrapped from ``{"discovery": {…}}`` or ``[{…}]``."""
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if isinstance(data, Mapping):
        inner = data.get("discovery")
        if isinstance(inner, Mapping) and "endpoints" not in data:
            return inner  # FixMyStreet wraps the document (§10.9)
        return data
    if isinstance(data, str):
        found = f"a JSON string ({snippet(data.encode('utf-8'), 80)!r})"
    elif isinstance(data, list):
        found = f"a list of {len(data)}"
    else:
        found = type(data).__name__
    raise DecodeError(f"not a discovery document: expected an object, got {found}")


def parse_discovery(body: bytes) -> Discovery:
    """Read a discovery document, JSON or XML (told apart by its first byte).

    Raises:
        DecodeError: the body is not JSON or XML (an HTML page, D.C.'s non-JSON), or not shaped
            like a discovery document; the message says what was found.
    """
    try:
        decoded = decode(body, "json")
    except DecodeError as exc:
        raise DecodeError(f"not a discovery document: {exc}", body=body) from exc
    return _from_decoded(decoded, body)


def _from_decoded(decoded: Decoded, body: bytes = b"") -> Discovery:
    if decoded.format == "xml" and decoded.root not in ("discovery", "dicovery"):
        # <dicovery> is Klarschiff's documented spelling (reference §7).
        raise DecodeError(
            f"not a discovery document: the XML root is <{decoded.root}>, not <discovery>",
            body=body,
        )
    try:
        data = decoded.data
        if decoded.format == "xml" and data is None:
            data = {}  # <discovery/>
        document = _document(data)
        extras = {k: v for k, v in document.items() if k not in _DOCUMENT_KEYS}
        records = _endpoint_records(document.get("endpoints", document.get("endpoint")))
        extras.pop("endpoint", None)
        return Discovery(
            changeset=_changeset(document.get("changeset"), "changeset", extras),
            contact=_text(document.get("contact"), "contact"),
            key_service=_text(document.get("key_service"), "key_service"),
            endpoints=tuple(_endpoint(record, i) for i, record in enumerate(records)),
            extras=extras,
        )
    except DecodeError as exc:
        raise DecodeError(str(exc), body=body) from exc


# -- choosing ----------------------------------------------------------------------------------


def choose_endpoints(
    discovery: Discovery, *, environment: Literal["production", "test"] = "production"
) -> list[tuple[str, FormatName]]:
    """The GeoReport v2 endpoints of *environment*, each with the format to use there.

    An endpoint qualifies when its specification is GeoReport v2 (`GEOREPORT_V2`, ignoring
    scheme, case and a trailing slash), its ``type`` is *environment* (ignoring case), its URL
    is http(s), and it offers a GeoReport format. A document read over https (`Discovery.source`)
    never yields a plain-http endpoint: each is asked over https instead, with a
    `Civic311Warning` (issue 12 point 4: a document whose integrity TLS vouched for must not
    send the api_key somewhere in clear text). JSON is chosen where offered, else XML
    (``text/xml`` or ``application/xml``). An endpoint that lists no formats at all is taken to
    speak XML, which the spec requires of every GeoReport v2 endpoint (§1.2).

    Order: the document's. The spec gives endpoint order no meaning, but it is the only order
    the provider controls, so it is read as preference; ``changeset`` says when an entry last
    changed, not which endpoint is better, so it does not reorder. A URL listed twice is kept
    once. URLs come back without a trailing slash.

    Raises:
        InvalidRequestError: *environment* is not "production" or "test".
        DecodeError: no endpoint qualifies; the message lists what the document offers.
    """
    if environment not in _ENVIRONMENTS:
        raise InvalidRequestError(
            "environment", f"must be 'production' or 'test', got {environment!r}"
        )
    chosen: list[tuple[str, FormatName]] = []
    seen: set[str] = set()
    secure = (discovery.source or "").lower().startswith("https://")
    for endpoint in discovery.endpoints:
        if not endpoint.is_georeport_v2 or endpoint.type.strip().lower() != environment:
            continue
        url = endpoint.url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            continue
        if secure and parts.scheme.lower() == "http":
            upgraded = urlunsplit(parts._replace(scheme="https"))
            warnings.warn(
                f"the discovery document, read over https, lists the plain-http endpoint "
                f"{url}; asking {upgraded} instead",
                Civic311Warning,
                stacklevel=2,
            )
            url = upgraded
        names = endpoint.format_names
        if not endpoint.formats:
            names = ("xml",)
        if not names:
            continue
        fmt: FormatName = "json" if "json" in names else "xml"
        if url not in seen:
            seen.add(url)
            chosen.append((url, fmt))
    if not chosen:
        offered = "; ".join(_describe(e) for e in discovery.endpoints) or "no endpoints at all"
        raise DecodeError(
            f"the discovery document lists no GeoReport v2 {environment} endpoint with a JSON "
            f"or XML format; it lists: {offered}"
        )
    return chosen


def _describe(endpoint: DiscoveryEndpoint) -> str:
    formats = ", ".join(endpoint.formats) or "no formats"
    return (
        f"{endpoint.specification or '(no specification)'} {endpoint.type or '(no type)'} "
        f"{endpoint.url or '(no url)'} ({formats})"
    )


# -- caching -----------------------------------------------------------------------------------


class DiscoveryCache:
    """Fetched discovery documents by URL, each kept for *ttl* seconds (thread-safe).

    Time comes from *clock*'s monotonic reading, so tests can use
    `civic311.testing.VirtualClock`. At most *max_entries* documents are kept; the oldest go
    first. A *ttl* of 0 keeps nothing.
    """

    def __init__(
        self, ttl: float = 3600.0, clock: Clock | None = None, *, max_entries: int = 256
    ) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 <= ttl < float("inf"):
            raise InvalidRequestError("ttl", f"must be a number of seconds >= 0, got {ttl!r}")
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise InvalidRequestError(
                "max_entries", f"must be a positive whole number, got {max_entries!r}"
            )
        self.ttl = float(ttl)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Discovery]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DiscoveryCache(ttl={self.ttl}, entries={len(self._entries)})"

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, url: str) -> Discovery | None:
        """The document fetched from *url* within the last *ttl* seconds, or None."""
        now = self.clock.monotonic()
        with self._lock:
            entry = self._entries.get(url)
            if entry is None:
                return None
            expires, discovery = entry
            if now >= expires:
                del self._entries[url]
                return None
            return discovery

    def put(self, url: str, discovery: Discovery) -> None:
        """Keep *discovery* as the document of *url* for *ttl* seconds from now."""
        if self.ttl <= 0:
            return
        expires = self.clock.monotonic() + self.ttl
        with self._lock:
            self._entries.pop(url, None)
            self._entries[url] = (expires, discovery)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def discard(self, url: str) -> None:
        """Forget the document of *url*, if kept."""
        with self._lock:
            self._entries.pop(url, None)

    def clear(self) -> None:
        """Forget every document."""
        with self._lock:
            self._entries.clear()


#: The cache `Client.get_discovery` and `Client.from_discovery` use unless given another (or None).
default_cache = DiscoveryCache()


# -- fetching, sans I/O: the client sends -------------------------------------------------------

_ACCEPT = "application/json, text/xml;q=0.9, application/xml;q=0.9, */*;q=0.1"

#: The discovery GET as a `Call`, for the client's exchange. No credentials ride on it (no
#: api_key, no jurisdiction_id), so its redirects are followed: http→https moves are common
#: (reference §10.37).
DISCOVERY_CALL: Call[Discovery] = Call("get_discovery", "GET", "discovery", _from_decoded)


def check_discovery_url(url: object) -> str:
    """*url*, checked to be an http(s) URL with a host.

    Raises:
        InvalidRequestError: naming ``discovery_url``.
    """
    if not isinstance(url, str):
        raise InvalidRequestError(
            "discovery_url", f"must be a URL string, not {type(url).__name__}"
        )
    text = url.strip()
    try:
        parsed = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise InvalidRequestError("discovery_url", f"not a URL: {text!r} ({exc})") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidRequestError("discovery_url", f"must be an http(s) URL, got {text!r}")
    return text


def discovery_root(url: str) -> str:
    """Where the discovery document at *url* sits, as an endpoint URL: its directory
    (``https://city.example/open311/discovery.json`` → ``https://city.example/open311``),
    the client `from_discovery` fetches the document through.

    Raises:
        InvalidRequestError: *url* is not an http(s) URL.
    """
    parsed = httpx.URL(check_discovery_url(url))
    directory = parsed.path.rpartition("/")[0] or "/"
    return str(parsed.copy_with(path=directory, query=None, fragment=None)).rstrip("/")


def discovery_request(url: str, headers: Mapping[str, str] | None = None) -> httpx.Request:
    """The GET of the discovery document at *url*, with *headers* (a client's own) added.

    Raises:
        InvalidRequestError: *url* is not an http(s) URL.
    """
    request_headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT, **(headers or {})}
    return httpx.Request("GET", check_discovery_url(url), headers=request_headers)


def read_discovery(response: httpx.Response, body: bytes, now: datetime) -> Discovery:
    """The discovery document an answer holds (*body* already read up to the client's cap).

    Raises:
        APIError: an error status (`NotFoundError` for 404, …); *now* reads Retry-After dates.
        DecodeError: the body is not a discovery document; it carries the URL and status.
    """
    url = str(response.request.url)
    asked = str(response.history[0].request.url) if response.history else url
    if asked.lower().startswith("https://") and response.url.scheme != "https":
        # A redirect took an https fetch to plain http (issue 12 point 4): what came back is
        # not what TLS vouched for. (Clients civic311 makes refuse this before sending.)
        shown = redact_url(response.url)
        raise DecodeError(
            f"GET {redact_url(asked)} was redirected to plain http ({shown}); a discovery "
            "document asked for over https is only read over https",
            url=shown,
            status_code=response.status_code,
        )
    if not 200 <= response.status_code < 300:
        fmt: FormatName = "xml" if url.lower().split("?")[0].endswith(".xml") else "json"
        raise api_error(response, body, fmt, now)
    try:
        return attrs.evolve(parse_discovery(body), source=str(response.url))
    except DecodeError as exc:
        shown = redact_url(response.request.url)
        raise DecodeError(
            f"GET {shown} → HTTP {response.status_code}: {exc}",
            body=body,
            url=shown,
            status_code=response.status_code,
        ) from exc
