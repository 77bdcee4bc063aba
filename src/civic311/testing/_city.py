"""FakeCity: a GeoReport v2 server in memory, spec-true, with faults and dialects.

Mount it in process as an httpx transport, or serve it on 127.0.0.1::

    from datetime import datetime, timezone
    import httpx
    from civic311.testing import FakeCity, Fault, VirtualClock

    clock = VirtualClock(start=datetime(2026, 1, 1, tzinfo=timezone.utc))
    city = FakeCity(seed=0, clock=clock, api_key="secret")

    with httpx.Client(transport=city.transport(), base_url=city.base_url) as http:
        http.get("services.json").json()                 # the default catalogue, "001"…"005"

    with city.serve() as base_url:                       # "http://127.0.0.1:PORT/open311/v2"
        httpx.post(f"{base_url}/requests.json", data={
            "api_key": "secret", "service_code": "001", "lat": "41.3", "long": "-72.9",
        })

    assert city.count_created() == 1                     # filed exactly once
    clock.advance(3 * 86400)                             # …three days later it is closed
    assert city.status_of(city.created[0].service_request_id) == "closed"

What the city does, method by method, follows the reference (`georeport-v2.md`) §2-§5:

* ``GET services.{fmt}``, ``GET services/{code}.{fmt}`` (the code percent-decoded from one path
  segment, so ``%2F`` and ``%20`` are part of it), ``POST requests.{fmt}``,
  ``GET tokens/{token}.{fmt}``, ``GET requests.{fmt}``, ``GET requests/{id}.{fmt}``.
* POST is validated like a strict server: jurisdiction (400/404), api_key (403), service_code
  (400 missing / 404 unknown), the location rule, required attributes and list keys (400), all
  400s reported together.
* POST takes ``application/x-www-form-urlencoded`` or ``multipart/form-data``. A multipart POST
  may upload files as the dialect's `Dialect.media` allows (one ``media`` part: Bloomington;
  ``media[]`` or repeated ``media`` parts: Helsinki, 6aika; none), reference §10.36. The city
  keeps each file's name, type, size and SHA-256 (`StoredRequest.media`) and gives it a URL
  under itself, which becomes the request's ``media_url``; repeated ``media_url`` fields
  (FixMyStreet) are all kept in `StoredRequest.media_urls`.
* Realtime services answer an id, batch services a token that resolves after `token_delay`
  clock seconds and `token_lookups` pending look-ups, blackbox services neither.
* GET requests honours ``service_request_id`` (overrides the rest), ``service_code``,
  ``status``, ``start_date``/``end_date`` (90-day default window, 400 beyond 90 days),
  `result_cap` and `sort`.
* Requests close on the clock (per-service ``close_after``); reads evaluate lazily.

Anything a client did is visible afterwards: `city.calls` (each request seen), `city.created`
(each request filed by POST), `city.get(id)`, `city.count_created()`.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlencode

import attrs

from civic311._clock import Clock, SystemClock
from civic311.testing._dialect import Dialect
from civic311.testing._discovery import (
    DiscoveryEndpointSpec,
    default_discovery_endpoints,
    discovery_ext,
    discovery_reply,
    discovery_url_for,
)
from civic311.testing._faults import Fault, FaultKind, Faults, InjectedFault
from civic311.testing._generate import generate
from civic311.testing._handler import Action, Truncation
from civic311.testing._incoming import Incoming
from civic311.testing._model import (
    AttributeValue,
    ServiceSpec,
    StoredMedia,
    StoredRequest,
)
from civic311.testing._render import Format, Renderer, Reply, html_page, text_reply
from civic311.testing._store import CityStore, TokenRecord, plus, utc_seconds
from civic311.testing._wire import (
    FormError,
    Node,
    ParsedForm,
    Upload,
    content_type_params,
    parse_form,
    parse_multipart,
    parse_query,
    parse_w3_datetime,
)

if TYPE_CHECKING:
    from civic311.testing._server import LoopbackServer
    from civic311.testing._transport import FakeCityTransport

__all__ = ["CallRecord", "FakeCity"]

_DAY = timedelta(days=1)
#: A Host header the city trusts to build URLs from: a name or an IP literal, and a port.
_HOST = re.compile(r"([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?")
_MAX_DESCRIPTION = 4000  # §3.4 / §3.5: "limited to 4,000 characters"
_MAX_CALLS = 10_000


@attrs.frozen
class CallRecord:
    """One HTTP request the city saw (see `FakeCity.calls`).

    * **path** - the resource, as faults match it: ``services``, ``requests/600001``…
    * **status** - the HTTP status answered, or None when no answer was sent (hang, drop).
    * **fault** - the kind of fault applied, if any.
    """

    method: str
    path: str
    query: str
    status: int | None
    fault: FaultKind | None
    at: datetime


@attrs.frozen
class Route:
    """Where a request goes: decoded path segments below the base path, and the format."""

    segments: tuple[str, ...] | None  # None: outside the base path
    ext: str | None
    query: str
    discovery: bool = False  # the discovery document beside the base path (_discovery.py)

    @property
    def resource(self) -> str:
        """The resource path that faults and `CallRecord`s use, e.g. ``requests/600001``."""
        if self.discovery:
            return "discovery"
        return "/".join(self.segments) if self.segments is not None else ""


class Plan:
    """What a transport must do with one request: wait, then answer, hang or drop
    (a `_handler.Planned`, which is all the transports know of it).

    `run()` processes the request (when the fault lets it through) and returns the answer to
    send, or None when there is nothing to send. Transports own the waiting and the sockets.
    """

    def __init__(self, city: FakeCity, incoming: Incoming, route: Route, fault: Fault | None):
        self.city = city
        self.incoming = incoming
        self.route = route
        self.fault = fault
        kind = fault.kind if fault else None
        self.delay = fault.seconds if fault is not None and kind == "latency" else 0.0
        self.action: Action = "respond"
        if kind == "hang":
            self.action = "hang"
        elif kind in ("reset", "drop_after_create"):
            self.action = "drop"
        self.truncate: Truncation | None = None  # see `_handler.Truncation`
        if fault is not None and kind == "truncated":
            self.truncate = "full_length" if fault.advertise_full_length else "honest"

    def run(self) -> Reply | None:
        """Process the request as the fault dictates; the reply to send, or None."""
        fault = self.fault
        kind = fault.kind if fault else None
        reply: Reply | None
        if kind in ("hang", "reset"):
            reply = None
        elif kind == "drop_after_create":
            self.city.respond(self.incoming, self.route)
            reply = None
        elif fault is not None and kind in ("status", "maintenance"):
            reply = self.city.fault_reply(fault, self.route)
        else:
            reply = self.city.respond(self.incoming, self.route)
            if not 200 <= reply.status < 300:
                self.truncate = None  # only a success body is cut
        self.city._record(self.incoming, self.route, reply, fault)
        return reply


def _comma(query: Mapping[str, list[str]], name: str) -> list[str]:
    """A comma-list parameter (§2.5): ``a,b`` and repeated ``name=a&name=b`` both accepted."""
    items: list[str] = []
    for value in query.get(name, []):
        items.extend(part.strip() for part in value.split(","))
    return [item for item in items if item]


def _single(query: Mapping[str, list[str]], name: str) -> str | None:
    values = [v.strip() for v in query.get(name, []) if v.strip()]
    return values[-1] if values else None


class FakeCity:
    """A GeoReport v2 city in memory. See the module docstring for a tour.

    **Parameters** (all keyword-only):

    * **seed** - seeds the default store (ids, tokens, generated requests).
    * **clock** - a `civic311._clock.Clock`; `VirtualClock` for tests. Default `SystemClock()`.
    * **api_key** - when set, POST requires it (form body or query string), else 403.
    * **jurisdiction_id** - when set, every method requires it: missing 400, wrong 404 (§1.3).
    * **result_cap** - GET requests answers at most this many (1000, §2.5).
    * **sort** - GET requests order: ``"desc"`` (newest first) or ``"asc"``.
    * **dialect** - a `Dialect` (spec by default); may be swapped at run time.
    * **store** - a `CityStore` to share with another FakeCity (a mirror). Default: a new one
      with the default catalogue, seeded with *seed*.
    * **services** - the catalogue for a new store (default `default_services()`).
    * **token_delay** - clock seconds before a batch token can resolve (default 0).
    * **token_lookups** - how many look-ups of a fresh token answer "pending" (default 1).
    * **base_path** - the URL path of the endpoint (default ``/open311/v2``).
    * **discovery_endpoints** - what the discovery document (`discovery_url`) lists; default:
      this city as GeoReport v2 production and a v3 test endpoint. See `_discovery`.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        api_key: str | None = None,
        jurisdiction_id: str | None = None,
        result_cap: int = 1000,
        sort: Literal["desc", "asc"] = "desc",
        dialect: Dialect | None = None,
        store: CityStore | None = None,
        services: Sequence[ServiceSpec] | None = None,
        token_delay: float = 0.0,
        token_lookups: int = 1,
        base_path: str = "/open311/v2",
        discovery_endpoints: Sequence[DiscoveryEndpointSpec] | None = None,
    ) -> None:
        if sort not in ("desc", "asc"):
            raise ValueError("sort must be 'desc' or 'asc'")
        if result_cap < 1:
            raise ValueError("result_cap must be >= 1")
        if store is not None and services is not None:
            raise ValueError("give services to the store, not to a FakeCity sharing it")
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.store = store if store is not None else CityStore(seed=seed, services=services)
        self.api_key = api_key
        self.jurisdiction_id = jurisdiction_id
        self.result_cap = result_cap
        self.sort: Literal["desc", "asc"] = sort
        self.dialect = dialect if dialect is not None else Dialect()
        self.token_delay = float(token_delay)
        self.token_lookups = int(token_lookups)
        self.base_path = "/" + base_path.strip("/")
        self.discovery_endpoints: list[DiscoveryEndpointSpec] = (
            list(discovery_endpoints)
            if discovery_endpoints is not None
            else default_discovery_endpoints()
        )
        self.faults = Faults()
        self._lock = threading.Lock()
        self._down = False
        self._servers: list[LoopbackServer] = []
        self._calls: deque[CallRecord] = deque(maxlen=_MAX_CALLS)

    def __repr__(self) -> str:
        return (
            f"FakeCity(store={self.store!r}, dialect={self.dialect!r}, "
            f"down={self._down}, faults={len(self.faults.active)})"
        )

    # -- mounting ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The base URL for `transport()` use: ``http://fakecity.test/open311/v2``.

        Any host works with the transport; only the path matters.
        """
        return f"http://fakecity.test{self.base_path}"

    @property
    def discovery_url(self) -> str:
        """The discovery document for `transport()` use (``.json``; ``.xml`` works too):
        ``http://fakecity.test/open311/discovery.json``. For `serve()`: `discovery_url_for`."""
        return discovery_url_for(self.base_url)

    @staticmethod
    def discovery_url_for(base_url: str, fmt: str = "json") -> str:
        """The discovery URL beside an endpoint base URL, e.g. the one `serve()` yields."""
        return discovery_url_for(base_url, fmt)

    def transport(self) -> FakeCityTransport:
        """An httpx transport that serves this city in process, for `httpx.Client` *and*
        `httpx.AsyncClient`: ``httpx.Client(transport=city.transport())``."""
        from civic311.testing._transport import FakeCityTransport

        return FakeCityTransport(self)

    @contextlib.contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Serve the city on 127.0.0.1 (a free port unless *port*) and yield its base URL.

        A `ThreadingHTTPServer` with daemon threads; at the end of the block the listening
        socket and every connection, hung ones included, are closed and the port released.
        """
        from civic311.testing._server import LoopbackServer

        server = LoopbackServer(self, port=port)
        server.start()
        with self._lock:
            self._servers.append(server)
            down = self._down
        if down:
            server.pause()
        try:
            yield f"http://127.0.0.1:{server.port}{self.base_path}"
        finally:
            with self._lock:
                self._servers.remove(server)
            server.stop()

    # -- faults ------------------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> InjectedFault:
        """Add a fault (see `civic311.testing.Fault`) for *times* matching requests."""
        return self.faults.inject(fault, times=times, method=method, path=path)

    def clear_faults(self) -> None:
        """Remove every injected fault and release hung connections."""
        self.faults.clear()

    def down(self) -> None:
        """Refuse connections: served ports are closed (connection refused), transports raise
        `httpx.ConnectError`. Open connections are closed too."""
        with self._lock:
            self._down = True
            servers = list(self._servers)
        for server in servers:
            server.pause()

    def up(self) -> None:
        """Accept connections again, on the same ports."""
        with self._lock:
            self._down = False
            servers = list(self._servers)
        for server in servers:
            server.resume()

    @property
    def is_down(self) -> bool:
        """Whether `down()` is in effect."""
        with self._lock:
            return self._down

    # -- the data ----------------------------------------------------------------------------

    @property
    def services(self) -> list[ServiceSpec]:
        """The catalogue, in order."""
        return self.store.services()

    def add_service(self, service: ServiceSpec) -> ServiceSpec:
        """Add (or replace, by code) a service; shared with every FakeCity on the same store."""
        return self.store.add_service(service)

    def remove_service(self, service_code: str) -> None:
        """Withdraw a service from the catalogue."""
        self.store.remove_service(service_code)

    @property
    def requests(self) -> list[StoredRequest]:
        """Every stored request, oldest first (a copy)."""
        return self.store.records()

    @property
    def created(self) -> list[StoredRequest]:
        """The requests filed through POST, oldest first."""
        return [r for r in self.store.records() if r.origin == "post"]

    def get(self, service_request_id: str) -> StoredRequest | None:
        """The stored request with this id, or None."""
        return self.store.get(service_request_id)

    def status_of(self, service_request_id: str) -> Literal["open", "closed"]:
        """The request's status now, on the city's clock. KeyError if unknown."""
        record = self.store.get(service_request_id)
        if record is None:
            raise KeyError(service_request_id)
        return record.status_at(self.clock.now())

    def count_created(
        self, *, service_code: str | None = None, description: str | None = None
    ) -> int:
        """How many requests were filed through POST (optionally with this code/description).

        The assertion behind "a report is never filed twice": ``city.count_created() == 1``.
        """
        return sum(
            1
            for r in self.created
            if (service_code is None or r.service_code == service_code)
            and (description is None or r.description == description)
        )

    @property
    def calls(self) -> list[CallRecord]:
        """The last 10,000 HTTP requests seen, oldest first."""
        with self._lock:
            return list(self._calls)

    def clear_calls(self) -> None:
        """Forget the recorded calls."""
        with self._lock:
            self._calls.clear()

    def generate_requests(
        self,
        n: int,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        burst: tuple[datetime, int, float] | None = None,
    ) -> list[StoredRequest]:
        """Add *n* seeded historical requests spread over [start, end) and return them.

        *start*/*end* default to the 90 days before now. *burst* = ``(at, count, seconds)``
        adds *count* more requests within *seconds* after *at* ("2,500 in one hour":
        ``burst=(at, 2500, 3600)``). Same seed and same calls: same requests.
        """
        end = self.clock.now() if end is None else end
        start = end - 90 * _DAY if start is None else start
        return generate(self.store, n, start, end, burst)

    def add_request(
        self,
        service_code: str,
        *,
        requested_datetime: datetime | None = None,
        description: str | None = None,
        lat: float | None = None,
        long: float | None = None,
        address: str | None = None,
        address_id: str | None = None,
        zipcode: str | None = None,
        media_url: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        close_after: float | None = None,
        closed: bool = False,
        service_request_id: str | None = None,
    ) -> StoredRequest:
        """Put one request in the store directly (not through POST; `count_created` ignores it).

        It closes *close_after* seconds after *requested_datetime* (default: now), or is
        closed already when *closed*.
        """
        service = self.store.service(service_code)
        if service is None:
            raise KeyError(f"no service {service_code!r}")
        requested = utc_seconds(requested_datetime or self.clock.now())
        close_at = requested if closed else plus(requested, close_after)
        record = StoredRequest(
            service_request_id=service_request_id or self.store.new_id(),
            service_code=service.service_code,
            service_name=service.service_name,
            requested_datetime=requested,
            description=description,
            lat=lat,
            long=long,
            address=address,
            address_id=address_id,
            zipcode=zipcode,
            media_url=media_url,
            attributes=dict(attributes or {}),
            agency_responsible=service.agency_responsible,
            service_notice=service.service_notice,
            close_at=close_at,
            origin="added",
        )
        return self.store.add(record)

    def close_request(
        self, service_request_id: str, notes: str = "Request resolved."
    ) -> StoredRequest:
        """Close a request now (on the city's clock) with these status notes."""
        with self.store.lock:
            record = self.store.get(service_request_id)
            if record is None:
                raise KeyError(service_request_id)
            now = self.clock.now().replace(microsecond=0)
            if record.close_at is not None and record.close_at <= now:
                return record
            return self.store.replace(
                attrs.evolve(
                    record, close_at=max(now, record.requested_datetime), close_notes=notes
                )
            )

    # -- request handling (used by the transports) -------------------------------------------

    def _record(
        self, incoming: Incoming, route: Route, reply: Reply | None, fault: Fault | None
    ) -> None:
        call = CallRecord(
            method=incoming.method,
            path=route.resource,
            query=route.query,
            status=reply.status if reply is not None else None,
            fault=fault.kind if fault is not None else None,
            at=self.clock.now(),
        )
        with self._lock:
            self._calls.append(call)

    def route(self, target: str) -> Route:
        """Split a request target into decoded segments below the base path and a format."""
        path, _, query = target.partition("?")
        if "://" in path:  # absolute-form target (a proxy request): keep the path only
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        prefix = self.base_path + "/"
        if not path.startswith(prefix):
            ext = discovery_ext(self.base_path, path)
            return Route(None, ext, query, discovery=ext is not None)
        raw = path[len(prefix) :].split("/")
        last, dot, ext = raw[-1].rpartition(".")
        if dot:
            raw[-1] = last
        # Decode each segment on its own, so an encoded "/" (%2F) stays inside its segment
        # (Accela codes like "ServiceRequest/Animals/…", reference §8.9).
        segments = tuple(unquote(s, encoding="utf-8", errors="replace") for s in raw)
        return Route(segments, ext if dot else None, query)

    def plan(self, incoming: Incoming) -> Plan:
        """Route a request and decide its fault (counting it); the transport runs the plan."""
        route = self.route(incoming.target)
        fault = self.faults.take(incoming.method, route.resource)
        return Plan(self, incoming, route, fault)

    def fault_reply(self, fault: Fault, route: Route) -> Reply:
        """The answer of a status or maintenance fault."""
        if fault.kind == "maintenance":
            return html_page(
                200,
                "Down for maintenance",
                "The 311 service is undergoing scheduled maintenance. Please try again later.",
            )
        extra: tuple[tuple[str, str], ...] = ()
        if fault.retry_after is not None:
            extra = (("Retry-After", fault.retry_after),)
        code = fault.status_code
        title = f"{code} Error"
        if fault.body == "html":
            return html_page(
                code, title, "The server could not complete your request.", extra=extra
            )
        if fault.body == "text":
            return text_reply(code, title, extra=extra)
        if fault.body == "error":
            fmt: Format = "json" if route.ext == "json" and self.dialect.json_enabled else "xml"
            reply = Renderer(self.dialect, fmt).errors([(code, title)])
            return Reply(reply.status, reply.headers + extra, reply.body)
        return Reply(code, extra, b"")

    def respond(self, incoming: Incoming, route: Route) -> Reply:
        """Answer one request as the city, with no faults involved."""
        dialect = self.dialect
        if route.discovery:
            return discovery_reply(
                incoming,
                route.ext,
                base_path=self.base_path,
                dialect=dialect,
                endpoints=self.discovery_endpoints,
                key_required=self.api_key is not None,
            )
        if route.segments is None:
            return Renderer(dialect, "xml").errors([(404, "Resource not found")])
        if route.ext not in ("xml", "json") or (route.ext == "json" and not dialect.json_enabled):
            # open311-adapter's answer to an unknown format (reference §5.2, §10.24).
            supported = ".xml and .json" if dialect.json_enabled else ".xml"
            return text_reply(404, f"Bad extension. We support {supported}")
        fmt: Format = "json" if route.ext == "json" else "xml"
        renderer = Renderer(dialect, fmt)
        segments = route.segments
        method = incoming.method
        try:
            # '+' in a query means a space, as on PHP and most servers: a client that sends a
            # raw "+02:00" offset unencoded gets a 400 for a bad date, as it would in the wild.
            query = parse_query(route.query) if route.query else {}
        except FormError:
            return renderer.errors([(400, "the query string is not valid UTF-8")])

        name = segments[0]
        known = (
            (name == "services" and len(segments) in (1, 2))
            or (name == "requests" and len(segments) in (1, 2))
            or (name == "tokens" and len(segments) == 2)
        )
        if not known or any(not s for s in segments):
            return renderer.errors([(404, "Resource not found")])
        allowed = "GET, POST" if segments == ("requests",) else "GET"
        if method not in allowed.split(", "):
            reply = renderer.errors([(405, f"Method {method} not allowed here")])
            return Reply(405, (*reply.headers, ("Allow", allowed)), reply.body)

        form: ParsedForm | None = None
        if method == "POST":
            try:
                form = self._read_form(incoming)
            except FormError as exc:
                return renderer.errors([(exc.status, str(exc))])

        jurisdiction = form.get("jurisdiction_id") if form is not None else None
        jurisdiction = jurisdiction or _single(query, "jurisdiction_id")
        problem = self._check_jurisdiction(jurisdiction)
        if problem is not None:
            return renderer.errors([problem])

        if form is not None:
            return self._create(form, query, renderer, self._public_base(incoming))
        if name == "services":
            if len(segments) == 1:
                return renderer.services(self.store.services())
            service = self.store.service(segments[1])
            if service is None:
                return renderer.errors([(404, f"Service code {segments[1]} not found")])
            return renderer.definition(service)
        if name == "tokens":
            return self._token(segments[1], renderer)
        if len(segments) == 2:
            return self._one_request(segments[1], renderer)
        return self._list_requests(query, renderer, self._public_base(incoming), route.ext)

    # -- the six methods ---------------------------------------------------------------------

    def _read_form(self, incoming: Incoming) -> ParsedForm:
        ctype = incoming.headers.get("content-type", "")
        if ctype or incoming.body:
            media, params = content_type_params(ctype)
            if media == "multipart/form-data":
                # File uploads (reference §8.2, §8.5, §8.6). The boundary is case-sensitive,
                # so the parameters are read without lower-casing their values.
                return parse_multipart(
                    incoming.body, params.get("boundary", ""), self.dialect.multivalue
                )
            if media != "application/x-www-form-urlencoded":
                raise FormError(
                    "POST requests needs an application/x-www-form-urlencoded; charset=utf-8 "
                    "or a multipart/form-data body"
                )
            charset = params.get("charset")
            if charset is not None and charset.lower() not in ("utf-8", "utf8"):
                raise FormError("the form must be encoded in UTF-8")
        return parse_form(incoming.body, self.dialect.multivalue)

    def _check_jurisdiction(self, value: str | None) -> tuple[int, str] | None:
        expected = self.jurisdiction_id
        if expected is None:
            return None  # single-jurisdiction: the parameter is optional and ignored (§1.3)
        if value is None:
            return (400, "jurisdiction_id was not provided")
        if value != expected:
            return (404, f"jurisdiction_id {value} not found")
        return None

    def _public_base(self, incoming: Incoming) -> str:
        """The city's base URL as the client reached it (its Host header), for the URLs the
        city hands out (uploaded media); `base_url` when the header is missing or odd."""
        host = incoming.headers.get("host", "")
        if _HOST.fullmatch(host):
            return f"http://{host}{self.base_path}"
        return self.base_url

    def _create(
        self,
        form: ParsedForm,
        query: Mapping[str, list[str]],
        renderer: Renderer,
        base: str | None = None,
    ) -> Reply:
        if self.api_key is not None:
            # §1.4: servers take the key in the form body or the query string. The key is never
            # echoed back in a message.
            key = form.get("api_key") or _single(query, "api_key")
            if key is None:
                return renderer.errors(
                    [(403, "Missing api_key -- can't proceed with create_request.")]
                )
            if key != self.api_key:
                return renderer.errors(
                    [(403, "Invalid api_key received -- can't proceed with create_request.")]
                )

        errors: list[tuple[int, str]] = []
        code = form.get("service_code")
        service: ServiceSpec | None = None
        if code is None:
            errors.append((400, "service_code was not provided"))
        else:
            service = self.store.service(code)
            if service is None:
                return renderer.errors([(404, f"Service code {code} not found")])

        lat_text, long_text = form.get("lat"), form.get("long")
        lat = long = None
        if (lat_text is None) != (long_text is None):
            errors.append((400, "lat and long must be sent together"))
        elif lat_text is not None and long_text is not None:
            lat = _coordinate(lat_text, 90.0)
            long = _coordinate(long_text, 180.0)
            if lat is None:
                errors.append((400, "lat must be a number between -90 and 90"))
            if long is None:
                errors.append((400, "long must be a number between -180 and 180"))
        address = form.get(self.dialect.address_field)
        address_id = form.get("address_id")
        if lat_text is None and long_text is None and address is None and address_id is None:
            errors.append(
                (
                    400,
                    "A full location parameter must be submitted: lat and long, "
                    f"{self.dialect.address_field} or address_id",
                )
            )
        description = form.get("description")
        if description is not None and len(description) > _MAX_DESCRIPTION:
            errors.append((400, f"description is longer than {_MAX_DESCRIPTION} characters"))
        if service is not None:
            errors.extend(_check_attributes(service, form))
        errors.extend(_check_uploads(self.dialect.media, form.uploads))
        if errors:
            return renderer.errors(errors)
        assert service is not None  # code is not None when there are no errors
        record = self._store_post(
            service, form, lat, long, address, address_id, description, base or self.base_url
        )

        if self.dialect.post_full_record:
            node = renderer.record(record, self.clock.now(), with_id=service.type == "realtime")
            if record.token is not None:
                node = {"token": renderer.ident(record.token), **node}
            return renderer.request_list([node], self.dialect.post_status)
        item: dict[str, Node] = {}
        if service.type == "realtime":
            item["service_request_id"] = renderer.ident(record.service_request_id)
        elif service.type == "batch":
            assert record.token is not None
            item["token"] = renderer.ident(record.token)
        item["service_notice"] = service.service_notice
        item["account_id"] = record.account_id
        return renderer.request_list([item], self.dialect.post_status)

    def _store_post(
        self,
        service: ServiceSpec,
        form: ParsedForm,
        lat: float | None,
        long: float | None,
        address: str | None,
        address_id: str | None,
        description: str | None,
        base: str,
    ) -> StoredRequest:
        now = self.clock.now()
        requested = utc_seconds(now)
        close_at = plus(requested, service.close_after)
        progress_at = plus(requested, service.close_after / 2 if service.close_after else None)
        token: str | None = None
        visible_from: datetime | None = None
        attributes: dict[str, AttributeValue] = {
            code: tuple(value) if isinstance(value, list) else value
            for code, value in form.attributes.items()
        }
        digests = [hashlib.sha256(upload.content).hexdigest() for upload in form.uploads]
        with self.store.lock:
            service_request_id = self.store.new_id()
            media = tuple(
                StoredMedia(
                    field=upload.name,
                    filename=upload.filename,
                    content_type=upload.content_type,
                    size=len(upload.content),
                    sha256=digest,
                    url=f"{base}/media/{service_request_id}/{n}",
                )
                for n, (upload, digest) in enumerate(
                    zip(form.uploads, digests, strict=True), start=1
                )
            )
            # Uploaded files take precedence over media_url (v2.1 draft, reference §8.2).
            media_urls = tuple(m.url for m in media) + tuple(form.all("media_url"))
            if service.type == "batch":
                token = self.store.new_token()
                ready_at = now + timedelta(seconds=self.token_delay)
                visible_from = ready_at
                self.store.add_token(
                    TokenRecord(token, service_request_id, ready_at, self.token_lookups)
                )
            record = StoredRequest(
                service_request_id=service_request_id,
                service_code=service.service_code,
                service_name=service.service_name,
                requested_datetime=requested,
                description=description,
                lat=lat,
                long=long,
                address=address,
                address_id=address_id,
                media_url=media_urls[0] if media_urls else None,
                media_urls=media_urls,
                media=media,
                email=form.get("email"),
                device_id=form.get("device_id"),
                account_id=form.get("account_id"),
                first_name=form.get("first_name"),
                last_name=form.get("last_name"),
                phone=form.get("phone"),
                attributes=attributes,
                agency_responsible=service.agency_responsible,
                service_notice=service.service_notice,
                close_at=close_at,
                progress_at=progress_at,
                token=token,
                visible_from=visible_from,
                jurisdiction_id=form.get("jurisdiction_id"),
                origin="post",
            )
            return self.store.add(record)

    def _token(self, token: str, renderer: Renderer) -> Reply:
        record = self.store.look_up_token(token, self.clock.now())
        if record is None:
            return renderer.errors([(404, f"Token {token} not found")])
        if record.resolved:
            return renderer.request_list(
                [
                    {
                        "service_request_id": renderer.ident(record.service_request_id),
                        "token": renderer.ident(token),
                    }
                ]
            )
        if self.dialect.token_404_while_pending:
            return renderer.errors([(404, f"Token {token} has no service request yet")])
        # Chicago: the token alone, until the backend has processed the request (§2.4).
        return renderer.request_list([{"token": renderer.ident(token)}])

    def _one_request(self, service_request_id: str, renderer: Renderer) -> Reply:
        now = self.clock.now()
        record = self.store.get(service_request_id)
        if record is None or not record.visible_at(now):
            return renderer.errors([(404, f"Service request {service_request_id} not found")])
        return renderer.request_list([renderer.record(record, now)])

    def _list_requests(
        self,
        query: Mapping[str, list[str]],
        renderer: Renderer,
        base: str | None = None,
        ext: str = "json",
    ) -> Reply:
        dialect = self.dialect
        counted = dialect.paging_headers != "none" and dialect.paging != "none"
        now = self.clock.now()
        descending = self.sort == "desc"

        try:
            offset, limit = self._paging(query)
        except ValueError as exc:
            return renderer.errors([(400, str(exc))])

        ids = [] if dialect.ignore_ids else _comma(query, "service_request_id")
        if ids:
            # "This overrides all other arguments" (§2.5): each id, in the order asked.
            found = [self.store.get(i) for i in ids]
            matched = [r for r in found if r is not None and r.visible_at(now)]
            page = matched[offset : offset + limit]
            if not page and matched and offset and dialect.repeat_last_page:
                page = matched[(len(matched) - 1) // limit * limit :]
            extra = self._paging_headers(query, len(matched), offset, limit, base, ext)
            return renderer.request_list([renderer.record(r, now) for r in page], extra=extra)

        codes = set(_comma(query, "service_code"))
        statuses: set[str] = set()
        start: datetime | None = None
        end: datetime | None = None
        if not dialect.ignore_filters:
            statuses = set(_comma(query, "status"))
            bad = statuses - {"open", "closed"}
            if bad:
                return renderer.errors(
                    [(400, f"status must be open or closed, not {', '.join(sorted(bad))}")]
                )
            try:
                start, end = self._window(query, now)
            except ValueError as exc:
                return renderer.errors([(400, str(exc))])

        pending_listed = dialect.idless_pending
        wanted = offset + limit
        matched = []
        with self.store.lock:
            for record in self.store.iter_window(start, end, descending):
                if codes and record.service_code not in codes:
                    continue
                if statuses and record.status_at(now) not in statuses:
                    continue
                if not pending_listed and not record.visible_at(now):
                    continue
                matched.append(record)
                if len(matched) >= wanted and not dialect.repeat_last_page and not counted:
                    break
        page = matched[offset : offset + limit]
        if not page and matched and offset and dialect.repeat_last_page:
            page = matched[(len(matched) - 1) // limit * limit :]
        extra = self._paging_headers(query, len(matched), offset, limit, base, ext)
        items = [self._list_item(r, now, renderer) for r in page]
        return renderer.request_list(items, extra=extra)

    def _paging_headers(
        self,
        query: Mapping[str, list[str]],
        total: int,
        offset: int,
        limit: int,
        base: str | None,
        ext: str,
    ) -> tuple[tuple[str, str], ...]:
        """The headers a paged list answer carries in the dialect's style (6aika's X-…
        headers, or RFC 8288 Link and X-Total-Count), keeping the query's other parameters in
        the next page's URL as Django REST framework does."""
        dialect = self.dialect
        if dialect.paging_headers == "none" or dialect.paging == "none":
            return ()

        def url_at(new_offset: int) -> str:
            pairs = [(k, v) for k, values in query.items() for v in values]
            if dialect.paging == "page":
                pairs = [(k, v) for k, v in pairs if k != "page"]
                pairs.append(("page", str(new_offset // limit + 1)))
            else:
                pairs = [(k, v) for k, v in pairs if k != "offset"]
                pairs.append(("offset", str(new_offset)))
            return f"{base or self.base_url}/requests.{ext}?{urlencode(pairs)}"

        following = url_at(offset + limit) if offset + limit < total else None
        if dialect.paging_headers == "link":
            headers = [("X-Total-Count", str(total))]
            if following is not None:
                headers.append(("Link", f'<{following}>; rel="next"'))
            return tuple(headers)
        headers = [
            ("X-Result-Count", str(total)),
            ("X-Page-Count", str(max(1, -(-total // limit)))),
            ("X-Page-Size", str(limit)),
        ]
        if following is not None:
            headers.append(("X-Next-Page-URL", following))
        if offset > 0:
            headers.append(("X-Previous-Page-URL", url_at(max(0, offset - limit))))
        return tuple(headers)

    def _list_item(
        self, record: StoredRequest, now: datetime, renderer: Renderer
    ) -> dict[str, Node]:
        every = self.dialect.idless_every
        with_id = record.visible_at(now) and not (
            every > 0
            and record.service_request_id.isdigit()
            and int(record.service_request_id) % every == 0
        )
        return renderer.record(record, now, with_id=with_id)

    def _paging(self, query: Mapping[str, list[str]]) -> tuple[int, int]:
        """(offset, limit) of the page asked for, by the dialect's paging extension (§8.1)."""
        dialect = self.dialect
        if dialect.paging == "none":
            return 0, self.result_cap

        def number(name: str, default: int) -> int:
            text = _single(query, name)
            if text is None:
                return default
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{name} must be a whole number") from None

        if dialect.paging == "page":
            size = number("page_size", dialect.page_size_default)
            page = max(number("page", 1), 1)  # page=0 is read as 1 (uReport)
        else:
            size = number("limit", dialect.page_size_default)
            page = 0
        size = min(max(size, 1), dialect.page_size_max)
        if dialect.paging == "page":
            return (page - 1) * size, size
        offset = number("offset", 0)
        if offset < 0:
            raise ValueError("offset must be >= 0")
        return offset, size

    def _window(
        self, query: Mapping[str, list[str]], now: datetime
    ) -> tuple[datetime | None, datetime | None]:
        """The requested_datetime window: start <= t <= end (§2.5, §6.2)."""
        dialect = self.dialect
        start_text, end_text = _single(query, "start_date"), _single(query, "end_date")
        try:
            start = parse_w3_datetime(start_text) if start_text is not None else None
        except ValueError:
            raise ValueError(
                f"start_date {start_text} is not a w3 datetime such as 2010-01-01T00:00:00Z"
            ) from None
        try:
            end = parse_w3_datetime(end_text) if end_text is not None else None
        except ValueError:
            raise ValueError(
                f"end_date {end_text} is not a w3 datetime such as 2010-01-01T00:00:00Z"
            ) from None
        window = dialect.default_window_days
        span = dialect.max_span_days
        if start is not None and end is not None:
            if end < start:
                raise ValueError("end_date is before start_date")
            if span is not None and end - start > span * _DAY:
                raise ValueError(f"start_date and end_date may not span more than {span} days")
            return start, end
        if start is not None:
            return start, (start + window * _DAY if window is not None else None)
        if end is not None:
            return (end - window * _DAY if window is not None else None), end
        if window is None:
            return None, None
        return now - window * _DAY, now


def _coordinate(text: str, bound: float) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if not -bound <= value <= bound:  # also rejects nan
        return None
    return value


_DATETIME_ATTRIBUTE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)


def _check_attributes(service: ServiceSpec, form: ParsedForm) -> list[tuple[int, str]]:
    """400s for required attributes missing and values of the wrong kind (§3.3, §3.5)."""
    errors: list[tuple[int, str]] = []
    for attribute in service.attributes:
        if not attribute.variable:
            continue  # informational (§10.38): whatever a client sends for it is ignored
        code = attribute.code
        raw = form.attributes.get(code)
        given = raw if isinstance(raw, list) else [] if raw is None else [raw]
        values = [v.strip() for v in given if v.strip()]
        if not values:
            if attribute.required:
                errors.append((400, f"attribute[{code}] is required: {attribute.description}"))
            continue
        datatype = attribute.datatype
        if datatype == "singlevaluelist":
            if len(values) > 1:
                errors.append((400, f"attribute[{code}] takes one value"))
            elif values[0] not in attribute.keys:
                errors.append((400, f"attribute[{code}]: {values[0]} is not a valid key"))
        elif datatype == "multivaluelist":
            errors.extend(
                (400, f"attribute[{code}]: {v} is not a valid key")
                for v in values
                if v not in attribute.keys
            )
        elif len(values) > 1:
            errors.append((400, f"attribute[{code}] takes one value"))
        elif datatype == "number":
            try:
                float(values[0])
            except ValueError:
                errors.append((400, f"attribute[{code}] must be a number"))
        elif datatype == "datetime":
            if not _DATETIME_ATTRIBUTE.match(values[0]):
                errors.append((400, f"attribute[{code}] must be an ISO 8601 datetime"))
        elif datatype == "string" and ("\n" in values[0] or "\r" in values[0]):
            errors.append((400, f"attribute[{code}] must be a single line"))
    return errors


def _check_uploads(
    accepts: Literal["none", "single", "array"], uploads: Sequence[Upload]
) -> list[tuple[int, str]]:
    """400s for files the dialect's city does not take (reference §10.36)."""
    if not uploads:
        return []
    if accepts == "none":
        return [(400, "this city takes no file uploads; give media_url instead")]
    # Bloomington reads one file from "media" (§8.6); Helsinki and 6aika read "media[]" or
    # repeated "media" parts (§8.5, and the v2.1 draft's <input name="media[]">, §8.2).
    allowed = ("media",) if accepts == "single" else ("media", "media[]")
    where = " or ".join(allowed)
    errors = [
        (400, f"unexpected file field {u.name!r}: files go in {where}")
        for u in uploads
        if u.name not in allowed
    ]
    if accepts == "single" and len(uploads) > 1:
        errors.append((400, f"this city takes one file in media, got {len(uploads)}"))
    errors.extend(
        (400, f"the uploaded file {u.filename!r} is empty") for u in uploads if not u.content
    )
    return errors
