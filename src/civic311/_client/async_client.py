"""`AsyncClient`: the asynchronous GeoReport v2 client, `Client`'s twin.

The same methods with the same signatures, awaited (a test keeps the pair in step). A thin
driver over `httpx.AsyncClient`: everything it decides is decided below it, in pure code shared
with `Client`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx

from civic311._client.base import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_RECONCILE_WAIT,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    PROBE_SECONDS,
    SHARED_CACHE,
    ClientBase,
    SharedCache,
    arefuse_downgrade,
    check_seconds,
    city_options,
    discovery_options,
    http_settings,
    url_error,
)
from civic311._client.execution import AttemptHook, CallRun, Unsettled, wants_xml_fallback
from civic311._client.transport import (
    EncodingBroken,
    abound_exchanges,
    adeadline_scope,
    aread_body,
    deadline_error,
    read_cookies_when_set,
    transport_error,
)
from civic311._clock import Clock
from civic311._protocol import (
    IDENTITY,
    Call,
    Collected,
    Flow,
    Sleep,
    build_request,
    get_request_call,
    get_token_call,
    https_upgrade,
    list_requests_call,
    list_services_call,
    read_response,
    redact_url,
    service_definition_call,
)
from civic311._resilience.retry import RetryPolicy
from civic311._wire import Format
from civic311.errors import Civic311Error, InvalidRequestError, NotFoundError
from civic311.models import (
    NewRequest,
    Receipt,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenStatus,
)

if TYPE_CHECKING:  # loaded when used: keeps `import civic311` light
    from civic311._resilience.pool import Endpoint, EndpointHealth
    from civic311.discovery import Discovery, DiscoveryCache
    from civic311.profiles import Profile
    from civic311.tracking import StatusChange, StatusStore, Tracked, Watch

__all__ = ["AsyncClient"]

logger = logging.getLogger("civic311")

T = TypeVar("T")

#: The options that shape how a client talks HTTP: `from_discovery` fetches the document with
#: them, before the endpoints (and so the rest of the client) are known.
_TRANSPORT_OPTIONS = frozenset(
    {
        "transport",
        "http_client",
        "ca_bundle",
        "extra_ca",
        "timeout",
        "headers",
        "max_response_bytes",
        "clock",
    }
)


class AsyncClient(ClientBase):
    """An asynchronous Open311 GeoReport v2 client (asyncio or trio, through httpx).

    Args:
        endpoints: The endpoint base URL (``https://city.example/open311/v2``, with or without a
            trailing slash), or a list of them: primary first, then fallbacks.
        jurisdiction_id: Sent on every call when set; never sent empty (spec §1.3).
        api_key: Sent as a form field on POST (spec §1.4). Never shown in reprs, logs or errors.
        format: ``"json"`` or ``"xml"``; both decode to the same models. Default: the
            profile's preference, else JSON.
        timeout: Seconds (or an `httpx.Timeout`) for each HTTP exchange.
        headers: Extra headers sent on every call.
        transport: An httpx transport to send through (FakeCity's, `httpx.MockTransport`…).
        http_client: An `httpx.AsyncClient` to use instead of creating one. civic311 never closes a
            client it did not create.
        ca_bundle: A PEM file of the CAs to trust INSTEAD of the public roots (a city behind a
            private CA). TLS verification cannot be turned off.
        extra_ca: A PEM file of CAs to trust IN ADDITION to the public roots.
        max_response_bytes: The body size cap; larger bodies raise `ResponseTooLargeError`.
        clock: Time source for waits (`civic311.testing.VirtualClock` in tests).
        retry: The `RetryPolicy` (attempts, one deadline across endpoints, backoff), or None
            for a single attempt with no failover.
        failure_threshold: Consecutive failures that mark an endpoint down.
        cooldown: Seconds a down endpoint is skipped before one call probes it again.
        reconcile_wait: Seconds to look for the request an ambiguous POST may have created.
        on_attempt: Called with an `AttemptEvent` after every attempt (metrics, logs).
        profile: How the server deviates from the spec: a `civic311.profiles.Profile` or the
            name of a bundled one ("chicago", "fixmystreet"…); `Client.for_city` picks it.
        other_channels: Other ways a resident can reach the city ("web: https://…",
            "phone: 311"), named by `AllEndpointsFailedError` when every endpoint fails.

    The client does not read descriptions for emergencies: 311 is not 911, and an app that
    takes reports from people should say so, and may call `civic311.triage.check` on the
    description before `submit` (the ``civic311 submit`` command does).

    Use it as a context manager, or call `close`, to release connections::

        async with civic311.AsyncClient("https://city.example/open311/v2") as client:
            services = await client.list_services()
    """

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        jurisdiction_id: str | None = None,
        api_key: str | None = None,
        format: Format | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        ca_bundle: str | None = None,
        extra_ca: str | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        clock: Clock | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        failure_threshold: int = 3,
        cooldown: float = 30.0,
        reconcile_wait: float = DEFAULT_RECONCILE_WAIT,
        on_attempt: AttemptHook | None = None,
        profile: Profile | str | None = None,
        other_channels: Sequence[str] = (),
    ) -> None:
        super().__init__(
            endpoints,
            jurisdiction_id=jurisdiction_id,
            api_key=api_key,
            format=format,
            timeout=timeout,
            headers=headers,
            max_response_bytes=max_response_bytes,
            clock=clock,
            retry=retry,
            failure_threshold=failure_threshold,
            cooldown=cooldown,
            reconcile_wait=reconcile_wait,
            on_attempt=on_attempt,
            profile=profile,
            other_channels=other_channels,
        )
        if http_client is not None and transport is not None:
            raise InvalidRequestError("transport", "give transport or http_client, not both")
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise InvalidRequestError(
                "http_client", f"must be an httpx.AsyncClient, not {type(http_client).__name__}"
            )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            transport=transport,
            event_hooks={"request": [arefuse_downgrade]},
            **http_settings(timeout=self._timeout, ca_bundle=ca_bundle, extra_ca=extra_ca),
        )
        if self._owns_http:
            abound_exchanges(self._http)  # every exchange ends by the call's deadline
            read_cookies_when_set(self._http)  # 14 us less per call (bench/overhead.py)

    @classmethod
    def for_city(
        cls,
        name: str,
        *,
        environment: Literal["production", "test"] = "production",
        allow_retired: bool = False,
        **options: Any,
    ) -> AsyncClient:
        """A client for a city in the bundled registry (`civic311.cities`).

        Its endpoints, jurisdiction_id, profile and other ways to reach the city come from
        the registry; *options* (api_key, timeout…) are passed on and win over them. A city
        whose entry is questioned gives a `CityStatusWarning`; a retired one raises
        `RetiredCityError` unless ``allow_retired=True``.
        """
        endpoints, kwargs = city_options(name, environment, allow_retired, dict(options))
        return cls(endpoints, **kwargs)

    @classmethod
    async def from_discovery(
        cls,
        url: str,
        *,
        environment: Literal["production", "test"] = "production",
        **options: Any,
    ) -> AsyncClient:
        """A client for the GeoReport v2 endpoints a Service Discovery document lists.

        Fetches the document (`get_discovery`, cached for an hour) through the client's own
        transport, so *options* that shape it (ca_bundle, transport or http_client, headers,
        timeout, max_response_bytes) apply to that fetch too; then keeps the GeoReport v2
        endpoints of *environment* that offer a usable format, primary first and the rest as
        fallbacks, each asked in its best format. *options* are passed on to the client.
        """
        from civic311.discovery import discovery_root

        shaping = {k: v for k, v in options.items() if k in _TRANSPORT_OPTIONS}
        fetcher = cls(discovery_root(url), **shaping)
        try:
            discovery = await fetcher.get_discovery(url)
            endpoints, formats = discovery_options(discovery, environment, options)
            options.setdefault("format", formats[0])
            options.pop("transport", None)
            options.pop("ca_bundle", None)
            options.pop("extra_ca", None)
            # The same httpx client goes on: the connection (and TLS set-up) is reused.
            client = cls(endpoints, **{**options, "http_client": fetcher._http})
        except BaseException:
            await fetcher.aclose()
            raise
        client._owns_http = fetcher._owns_http
        client._use_formats(formats)
        return client

    # --- lifecycle ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Release connections (only those of an httpx client civic311 created)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def probe(self) -> list[EndpointHealth]:
        """Ask every endpoint for its services list, once each, and return `health`.

        A real call, not the remembered state: an endpoint is up only when it answers with a
        services list. A 404, an HTML page, an error document or no answer is recorded as a
        failure naming what came back, so a wrong base URL is not "up" (issue 14 point 5).
        Each endpoint is asked once, without retries, down or not.
        """
        call = list_services_call()
        for endpoint in self._pool.endpoints():
            started = self._clock.monotonic()
            error: Civic311Error | None = None
            try:
                await self._send(call, endpoint.url, self._probe_format(endpoint), PROBE_SECONDS)
            except Civic311Error as exc:
                error = exc
            self._probed(endpoint, error, self._clock.monotonic() - started)
        return self.health()

    # --- GeoReport v2 ------------------------------------------------------------------------

    async def list_services(self) -> list[Service]:
        """The service types the city accepts (GET services, spec §2.1)."""
        got: Collected[Service] = await self._drive(self._pages(list_services_call()))
        return self._complete(got, "list_services")

    async def get_service_definition(self, service_code: str) -> ServiceDefinition:
        """The attributes a service asks for (GET services/{code}, spec §2.2)."""
        return await self._execute(service_definition_call(service_code))

    async def prepare(self, request: NewRequest, *, validate: bool = False) -> NewRequest:
        """Check *request* the way `submit` does, without sending it; return it as it would be
        sent.

        The form must encode (text fields, attributes, media), the city's profile may require
        fields. With *validate*, the
        service's definition is read (cached for an hour; a 404 means "no attributes") and
        the request checked against it, informational attributes left out. Bulk dry runs and
        the `Outbox` use it to refuse a bad request before storing it.

        Raises:
            InvalidRequestError: naming the field (`ValidationFailedError` lists every problem).
        """
        request, _ = await self._prepared(request, validate=validate)
        return request

    async def _prepared(
        self, request: NewRequest, *, validate: bool
    ) -> tuple[NewRequest, Call[Receipt]]:
        """`prepare`'s checks, and the POST they build: `submit` sends that one (building it
        twice was a tenth of civic311's own work per submit: issue 13, bulk)."""
        call = self._submit_call(request)  # checks the request before anything else
        self._check_required(request)
        if validate:
            request = self._validated(request, await self._definition_for(request.service_code))
            call = self._submit_call(request)
        return request, call

    async def submit(
        self,
        request: NewRequest,
        *,
        retry_unsafe: bool = False,
        validate: bool = False,
    ) -> Receipt:
        """File a service request (POST requests, spec §2.3), never twice by accident.

        The POST is sent again, here or to a fallback endpoint, only when it provably never
        reached a server (refused, unresolvable, connect timeout) or the server said it did not
        act (429, 503). When the outcome is unknown (a read timeout, a dropped connection, a
        502/504 from a proxy, a 500) civic311 looks for the request it may have created and
        returns that, marked ``reconciled``; if it cannot find it, it raises
        `SubmissionUncertainError` carrying the request, rather than guess. To keep a request
        durably while the city is down, submit it through a `civic311.outbox.Outbox`.

        Args:
            request: The request to file.
            retry_unsafe: Re-send even when the outcome is unknown, accepting that the city
                may get it twice.
            validate: Check the request against the service's definition first (required
                attributes, datatypes, list keys, unknown codes; one `ValidationFailedError`
                lists every problem), and leave out informational (variable=false) attributes.
                A service the city does not offer is an `InvalidRequestError` naming
                ``service_code``.

        Returns:
            A `Receipt` with the service_request_id (realtime), a token (batch; see
            `wait_for_id`), or neither (blackbox).
        """
        request, call = await self._prepared(request, validate=validate)
        return await self._submit(request, call, retry_unsafe=retry_unsafe)

    async def get_token(self, token: str) -> TokenStatus:
        """Look a token up (GET tokens/{token}, spec §2.4); `pending` while it has no id."""
        return await self._execute(get_token_call(token))

    async def wait_for_id(self, receipt_or_token: Receipt | str, *, timeout: float = 60.0) -> str:
        """The service_request_id behind a receipt or token, polling until the city has one.

        Polls ``tokens/{token}`` at once, then after 0.5 s, 1 s, 2 s… (up to 10 s apart) until
        *timeout* seconds have passed. A receipt that already has an id returns it at once.

        Raises:
            WaitTimeoutError: still pending after *timeout* (the token stays valid).
            UntrackableReceiptError: the receipt has neither id nor token (blackbox).
        """
        seconds = check_seconds(timeout, "timeout")
        known_id, token = self._token_of(receipt_or_token)
        if known_id is not None:
            return known_id
        assert token is not None
        flow = self._wait_flow(token, seconds)
        return await self._drive(flow)

    async def find_submitted(
        self, request: NewRequest, *, sent_at: datetime, exclude: Collection[str] = ()
    ) -> ServiceRequest | None:
        """The request a submission of *request* at *sent_at* created, if the city shows one.

        For answers that were lost (a crash mid-send, a dropped connection): it looks the way
        `submit` reconciles (docs/retries.md) — same service_code, created no earlier than
        *sent_at* minus five minutes, and the description or location echoed back — for up to
        ``reconcile_wait`` seconds. Requests in *exclude* (ids your records already hold for
        other submissions: the journal passes every id it knows) are never taken for it.
        """
        if not isinstance(request, NewRequest):
            raise InvalidRequestError("request", "must be a civic311.NewRequest")
        if not isinstance(sent_at, datetime) or sent_at.tzinfo is None:
            raise InvalidRequestError("sent_at", "must be a timezone-aware datetime")
        skip = self._check_exclude(exclude)
        found: ServiceRequest | None = await self._drive(self._find_flow(request, sent_at, skip))
        return found

    async def get_request(self, service_request_id: str) -> ServiceRequest:
        """One service request (GET requests/{id}, spec §2.6)."""
        return await self._execute(get_request_call(service_request_id))

    async def list_requests(
        self,
        *,
        service_request_id: str | Sequence[str] | None = None,
        service_code: str | Sequence[str] | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        status: str | Sequence[str] | None = None,
    ) -> list[ServiceRequest]:
        """Service requests matching the filters (GET requests, spec §2.5).

        Without dates the city answers its most recent 90 days; it returns at most about
        1,000 requests, so use `iter_requests` for complete harvests. Datetimes must be
        timezone-aware and are sent as ``YYYY-MM-DDTHH:MM:SSZ``.
        """
        call = list_requests_call(
            service_request_id=service_request_id,
            service_code=service_code,
            start_date=start_date,
            end_date=end_date,
            status=status,
            date_zone=self._settings.date_zone,
        )
        got: Collected[ServiceRequest] = await self._drive(self._pages(call))
        return self._listed(got, service_request_id, service_code, status, start_date, end_date)

    async def iter_requests(
        self,
        *,
        start_date: datetime,
        end_date: datetime,
        service_code: str | Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
    ) -> AsyncIterator[ServiceRequest]:
        """Every request in [start_date, end_date], each exactly once, however long the span.

        Walks back from end_date in spans of at most 90 days, follows pages the server names
        or the profile implies, slides past capped answers sorted newest first (halving
        others), re-filters, and drops duplicates at the edges (`civic311.harvest`). Requests
        arrive answer by answer, newest span first; memory stays flat. A window the server
        cannot show completely raises no error but a `HarvestWarning` naming it.
        """
        harvest = self._harvest(start_date, end_date, service_code, status)
        while (batch := await self._drive(harvest.next_batch())) is not None:
            for request in batch:
                yield request

    async def track(
        self,
        items: Sequence[str | Receipt] | str | Receipt,
        *,
        ledger: StatusStore | None = None,
    ) -> Tracked:
        """Refresh requests once: turn tokens into ids, look ids up in batches, report changes.

        Args:
            items: Request ids and/or receipts (receipts still holding a token are resolved).
            ledger: Record every status seen, and compare with what it saw last time.

        Returns:
            The requests now, the changes since last seen, tokens still pending, ids missing.
        """
        watch = self._watch(items, ledger, interval=1.0, max_interval=1.0, timeout=None)
        return await self._round(watch, ledger)

    async def watch(
        self,
        items: Sequence[str | Receipt] | str | Receipt,
        *,
        interval: float = 300.0,
        max_interval: float = 3600.0,
        timeout: float | None = None,
        ledger: StatusStore | None = None,
    ) -> AsyncIterator[StatusChange]:
        """Yield each `StatusChange` until every request is closed or *timeout* passes.

        Asks every *interval* seconds, backing off by half each quiet round up to
        *max_interval*, and waiting as long as the city's Retry-After says when rate-limited
        (`civic311.tracking`). With a *ledger*, every status seen is recorded and a resumed
        watch reports only what changed since.
        """
        watch = self._watch(
            items, ledger, interval=interval, max_interval=max_interval, timeout=timeout
        )
        while True:
            tracked = await self._round(watch, ledger)
            for change in tracked.changes:
                yield change
            if not await self._drive(watch.pause(tracked)):
                return

    async def get_discovery(
        self, url: str, *, cache: DiscoveryCache | SharedCache | None = SHARED_CACHE
    ) -> Discovery:
        """The Service Discovery document at *url* (`civic311.discovery`), fetched through this
        client: its TLS settings, User-Agent, headers, timeout and response size cap apply.

        Redirects are followed (no credentials go with this request). Documents are kept for
        an hour in `civic311.discovery.default_cache`, or in a *cache* of your own; None
        fetches every time.

        Raises:
            InvalidRequestError: *url* is not an http(s) URL.
            TransportError: no answer (refused, timed out, dropped).
            APIError: an error status (`NotFoundError` for 404, …).
            ResponseTooLargeError: the body passed ``max_response_bytes``.
            DecodeError: the body is not a discovery document.
        """
        # civic311.discovery loads here, on first use: it costs `import civic311` 4 ms otherwise
        # (bench/import_time.py).
        from civic311.discovery import (
            DISCOVERY_CALL,
            default_cache,
            discovery_request,
            read_discovery,
        )

        if isinstance(cache, SharedCache):
            cache = default_cache
        request = discovery_request(url, self._headers)
        target = str(request.url)
        if cache is not None and (cached := cache.get(target)) is not None:
            return cached
        # One exchange, bounded like any call by the retry policy's deadline (issue 11.7).
        response, body = await self._exchange(DISCOVERY_CALL, request, self._policy.deadline)
        discovery = read_discovery(response, body, self._clock.now())
        if cache is not None:
            cache.put(target, discovery)
        return discovery

    async def get_requests(self, ids: Sequence[str]) -> list[ServiceRequest]:
        """Many requests by id, in as few calls as URLs of at most 2,000 characters allow.

        Chunks hold no more ids than one answer can (the page size, or the cap), pages are
        followed, and ids a cut answer left out are asked again: results come in the order
        asked, and only ids the city does not know are left out.
        """
        return await self._drive(self._lookup_flow(ids))

    # --- driving -----------------------------------------------------------------------------

    async def _definition_for(self, service_code: str) -> ServiceDefinition:
        """The service's definition, cached for an hour; a 404 means "no attributes"."""
        cached = self._cached_definition(service_code)
        if cached is not None:
            return cached
        try:
            definition = await self.get_service_definition(service_code)
        except NotFoundError:
            # A 404 is "no definition" on some servers (6aika answers 404 for every code,
            # reference/real-servers A_definition_001) and "no such service" on others
            # (open311-adapter, B_definition_NOPE): the service list tells which (issue 14.6).
            self._check_offered(service_code, await self.list_services())
            definition = ServiceDefinition(service_code=service_code)  # metadata=false
        return self._cache_definition(definition)

    async def _round(self, watch: Watch, ledger: StatusStore | None) -> Tracked:
        """One tracking round, what it saw recorded in the ledger."""
        try:
            tracked = await self._drive(watch.round())
        finally:
            self._observed(ledger, watch)  # tokens resolved, even by a round that then failed
        self._observed(ledger, watch, tracked.changes)
        return tracked

    async def _drive(self, flow: Flow[T], *, retry_unsafe: bool = False) -> T:
        """Run a flow, the one driver of every multi-step operation (`civic311._protocol`).

        Each `Call` the flow yields runs under the retry policy (`_attempts`) and its result is
        sent back, or its error thrown in — except a POST whose outcome is unknown, answered
        with `Unsettled` for the flow to reconcile. Each `Sleep` sleeps on the clock and sends
        back the monotonic time. The flow's return value is the result.
        """
        reply: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    step = flow.send(reply) if error is None else flow.throw(error)
                except StopIteration as done:
                    result: T = done.value
                    return result
                reply, error = None, None
                if isinstance(step, Sleep):
                    await self._clock.asleep(step.seconds)
                    reply = self._clock.monotonic()
                    continue
                run = self._run(step, retry_unsafe=retry_unsafe)
                try:
                    reply = await self._attempts(run)
                except Civic311Error as exc:
                    if run.must_reconcile:
                        reply = Unsettled(run, exc)  # the submit flow looks for it
                    else:
                        error = exc  # thrown into the flow, which may handle it (or re-raise)
        finally:
            flow.close()

    async def _execute(self, call: Call[T], *, retry_unsafe: bool = False) -> T:
        """Run *call* under the retry policy, failing over between endpoints."""
        result: T = await self._attempts(self._run(call, retry_unsafe=retry_unsafe))
        return result

    async def _attempts(self, run: CallRun) -> Any:
        """The attempt loop, one plain loop over `RetryPolicy.decide` (`execution` docstring).

        Returns the first usable answer; raises the error the caller sees (`CallRun.failure`),
        also when a POST's outcome is unknown, which `_submit` reconciles (`run.must_reconcile`).
        Bounded: every pass makes an attempt (at most ``policy.attempts``) or waits for a
        recovery (at most as many), and no attempt starts after the deadline.
        """
        while True:
            endpoint = run.next_endpoint()
            if endpoint is None:
                wait = run.recovery_wait()
                if wait is None:
                    raise run.unavailable()
                await self._clock.asleep(wait)
                continue
            try:
                return await self._attempt(run, endpoint)
            except Civic311Error as error:
                decision = run.decide(error)
                if decision.action != "retry":
                    raise run.failure(error)  # noqa: B904 - the error itself, or its wrapper
            if decision.wait > 0:
                await self._clock.asleep(decision.wait)

    async def _attempt(self, run: CallRun, endpoint: Endpoint) -> Any:
        """One attempt on *endpoint* (and once more in XML if it turns out XML-only)."""
        fmt = run.format_for(endpoint)
        started = self._clock.monotonic()
        try:
            result, actual = await self._send(run.call, endpoint.url, fmt, run.time_left())
        except Civic311Error as exc:
            if self._profile.force_format or not wants_xml_fallback(exc, fmt):
                run.failed(endpoint, fmt, exc, self._clock.monotonic() - started)
                raise
            run.switch_format(endpoint, "xml")
            fmt = "xml"
            try:
                result, actual = await self._send(run.call, endpoint.url, fmt, run.time_left())
            except Civic311Error as again:
                run.failed(endpoint, fmt, again, self._clock.monotonic() - started)
                raise
        run.succeeded(endpoint, fmt, actual, self._clock.monotonic() - started)
        return result

    async def _send(
        self, call: Call[T], base_url: str, fmt: Format, seconds_left: float
    ) -> tuple[T, Format]:
        """One GeoReport exchange: send, read the body up to the cap, parse.

        Two transport quirks are handled here, once each (reference §10.37): a body whose
        compression fails to decode is asked again uncompressed, and the endpoint keeps asking
        so; a POST redirected from http to https on the same host is sent there once.
        """
        request = build_request(call, base_url, fmt, self._settings, self._headers)
        request.extensions["timeout"] = self._timeout_within(seconds_left)
        until = self._clock.monotonic() + seconds_left
        if base_url in self._identity_only:
            request.headers["Accept-Encoding"] = IDENTITY
        try:
            response, body = await self._exchange(call, request, until - self._clock.monotonic())
        except EncodingBroken as broken:
            if call.is_post:
                raise self._broken_encoding(request, broken.status_code) from None
            self._identity_only.add(base_url)
            request.headers["Accept-Encoding"] = IDENTITY
            try:
                response, body = await self._exchange(
                    call, request, until - self._clock.monotonic()
                )
            except EncodingBroken as again:
                raise self._broken_encoding(request, again.status_code) from None
        upgrade = https_upgrade(request, response)
        if upgrade is not None:
            request = httpx.Request(
                "POST",
                upgrade,
                headers=request.headers,
                content=request.content,
                extensions=request.extensions,
            )
            response, body = await self._exchange(call, request, until - self._clock.monotonic())
        return read_response(
            call, response, body, fmt, self._clock.now(), secret=self._settings.api_key
        )

    async def _exchange(
        self, call: Call[Any], request: httpx.Request, seconds_left: float
    ) -> tuple[httpx.Response, bytes]:
        """Send *request* and read its body up to the cap, all within *seconds_left* (issue
        11.7: headers and body, however slowly they trickle); httpx errors become civic311's.
        """
        # The URL as errors and the log show it (a key sent on reads masked) is worked out only
        # when one of them needs it: the happy path shows it nowhere.
        started = self._clock.monotonic()
        response: httpx.Response | None = None
        try:
            async with adeadline_scope(seconds_left):
                try:
                    response = await self._http.send(
                        request, stream=True, follow_redirects=self._may_follow(call)
                    )
                except httpx.DecodingError:
                    raise EncodingBroken(None) from None  # transports that decode eagerly
                try:
                    body = await aread_body(
                        response, self._max_response_bytes, self._settings.api_key
                    )
                except httpx.DecodingError:
                    raise EncodingBroken(response.status_code) from None
        except TimeoutError:
            raise deadline_error(request.method, redact_url(request.url), seconds_left) from None
        except (httpx.InvalidURL, UnicodeError) as exc:
            shown = redact_url(request.url)
            raise url_error(exc, request.method, shown, self._settings.api_key) from None
        except httpx.HTTPError as exc:
            shown = redact_url(request.url)
            raise transport_error(exc, request.method, shown, self._settings.api_key) from exc
        finally:
            if response is not None:
                await response.aclose()
        assert response is not None  # assigned, or the try above raised
        if logger.isEnabledFor(logging.DEBUG):  # the arguments cost more than the check
            logger.debug(
                "%s %s → %d (%d bytes, %.3fs)",
                request.method,
                redact_url(request.url),
                response.status_code,
                len(body),
                self._clock.monotonic() - started,
            )
        return response, body

    async def _submit(
        self, request: NewRequest, call: Call[Receipt], *, retry_unsafe: bool
    ) -> Receipt:
        """POST with duplicate safety: an unknown outcome is reconciled, never re-sent."""
        return await self._drive(self._submit_flow(request, call), retry_unsafe=retry_unsafe)

    def _may_follow(self, call: Call[Any]) -> bool:
        # Never follow a redirect with credentials aboard: a POST carries the api_key, and so
        # does a GET when the profile sends it on reads (DESIGN promise 6). The discovery GET
        # carries none.
        if call.operation == "get_discovery":
            return True
        return not call.is_post and not (self._settings.api_key and self._profile.api_key_on_reads)
