"""`AsyncClient`: the asynchronous GeoReport v2 client, `Client`'s twin.

The same methods with the same signatures, awaited (a test keeps the pair in step). A thin
driver over `httpx.AsyncClient`: everything it decides is decided below it, in pure code shared
with `Client`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Generator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx

from civic311._client.base import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_RECONCILE_WAIT,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    ClientBase,
    _Reconcile,
    city_options,
    discovery_options,
    tls_context,
)
from civic311._client.execution import AttemptHook, CallRun, wants_xml_fallback
from civic311._client.transport import EncodingBroken, aread_body, transport_error
from civic311._clock import Clock
from civic311._protocol import (
    IDENTITY,
    USER_AGENT,
    Call,
    Collected,
    Sleep,
    build_request,
    https_upgrade,
    read_response,
    redact_url,
)
from civic311._resilience.retry import RetryPolicy
from civic311._wire import Format
from civic311.errors import Civic311Error, InvalidRequestError, NotFoundError
from civic311.harvest import Emit
from civic311.models import (
    NewRequest,
    Receipt,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenStatus,
)
from civic311.profiles import Profile
from civic311.tracking import Lookup, Resolve, StatusChange, Tracked

if TYPE_CHECKING:  # loaded when used: keeps `import civic311` light
    from civic311.ledger import Ledger
    from civic311.outbox import Outbox, OutboxStep
    from civic311.triage import EmergencyPolicy

__all__ = ["AsyncClient"]

logger = logging.getLogger("civic311")

T = TypeVar("T")


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
        ca_bundle: A PEM file of extra trusted CAs. TLS verification cannot be turned off.
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
        emergency: What `submit` does when a description reads like an emergency (fire, gas,
            someone hurt…): ``"warn"`` (an `EmergencyWarning` pointing to 911), ``"refuse"``
            (`EmergencySuspectedError`), or ``"ignore"``. A heuristic, not a guarantee: 311 is
            not 911 (`civic311.triage`).

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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        clock: Clock | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        failure_threshold: int = 3,
        cooldown: float = 30.0,
        reconcile_wait: float = DEFAULT_RECONCILE_WAIT,
        on_attempt: AttemptHook | None = None,
        profile: Profile | str | None = None,
        other_channels: Sequence[str] = (),
        emergency: EmergencyPolicy = "warn",
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
            emergency=emergency,
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
            timeout=self._timeout,
            verify=tls_context(ca_bundle),
            headers={"User-Agent": USER_AGENT},
        )

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

        Fetches the document (cached for an hour), keeps the GeoReport v2 endpoints of
        *environment* that offer a usable format, primary first and the rest as fallbacks,
        each asked in its best format. *options* are passed on to the client.
        """
        http = options.get("http_client") or httpx.AsyncClient(
            transport=options.get("transport"), timeout=options.get("timeout", DEFAULT_TIMEOUT)
        )
        try:
            from civic311.discovery import afetch_discovery

            discovery = await afetch_discovery(url, http)
        finally:
            if "http_client" not in options:
                await http.aclose()
        endpoints, formats = discovery_options(discovery, environment, options)
        options.setdefault("format", formats[0])
        client = cls(endpoints, **options)
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

    # --- GeoReport v2 ------------------------------------------------------------------------

    async def list_services(self) -> list[Service]:
        """The service types the city accepts (GET services, spec §2.1)."""
        got: Collected[Service] = await self._drive(self._pages(self._services_call()))
        return self._complete(got, "list_services")

    async def get_service_definition(self, service_code: str) -> ServiceDefinition:
        """The attributes a service asks for (GET services/{code}, spec §2.2)."""
        result: ServiceDefinition = await self._execute(self._definition_call(service_code))
        return result

    async def submit(
        self,
        request: NewRequest,
        *,
        retry_unsafe: bool = False,
        outbox: Outbox | None = None,
        validate: bool = False,
    ) -> Receipt:
        """File a service request (POST requests, spec §2.3), never twice by accident.

        The POST is sent again, here or to a fallback endpoint, only when it provably never
        reached a server (refused, unresolvable, connect timeout) or the server said it did not
        act (429, 503). When the outcome is unknown (a read timeout, a dropped connection, a
        502/504 from a proxy, a 500) civic311 looks for the request it may have created and
        returns that, marked ``reconciled``; if it cannot find it, it raises
        `SubmissionUncertainError` carrying the request, rather than guess.

        Args:
            request: The request to file.
            retry_unsafe: Re-send even when the outcome is unknown, accepting that the city
                may get it twice.
            outbox: Store the request durably first; when every endpoint is down or the
                outcome stays unknown, it waits there (``Receipt.queued``) for `Outbox.flush`.
            validate: Check the request against the service's definition first (required
                attributes, datatypes, list keys, unknown codes; one `ValidationFailedError`
                lists every problem), and leave out informational (variable=false) attributes.

        Returns:
            A `Receipt` with the service_request_id (realtime), a token (batch; see
            `wait_for_id`), or neither (blackbox).
        """
        self._submit_call(request)  # checks the request before anything else
        self._check_required(request)
        if validate:
            request = self._validated(request, await self._definition_for(request.service_code))
        if outbox is None:
            return await self._submit(request, retry_unsafe=retry_unsafe)
        box = self._check_outbox(outbox)
        if not isinstance(request, NewRequest):
            self._submit_call(request)  # raises the InvalidRequestError
        local_id = box.add(request, now=self._clock.now())
        flow = box.send_flow(local_id, request, self._clock.now, ("queued",), retry_unsafe)
        state, outcome = await self._run_outbox(flow)
        return self._outbox_receipt(box, local_id, state, outcome)

    async def get_token(self, token: str) -> TokenStatus:
        """Look a token up (GET tokens/{token}, spec §2.4); `pending` while it has no id."""
        result: TokenStatus = await self._execute(self._token_call(token))
        return result

    async def wait_for_id(self, receipt_or_token: Receipt | str, *, timeout: float = 60.0) -> str:
        """The service_request_id behind a receipt or token, polling until the city has one.

        Polls ``tokens/{token}`` at once, then after 0.5 s, 1 s, 2 s… (up to 10 s apart) until
        *timeout* seconds have passed. A receipt that already has an id returns it at once.

        Raises:
            WaitTimeoutError: still pending after *timeout* (the token stays valid).
            UntrackableReceiptError: the receipt has neither id nor token (blackbox).
        """
        seconds = self._check_wait_timeout(timeout)
        known_id, token = self._token_of(receipt_or_token)
        if known_id is not None:
            return known_id
        assert token is not None
        flow = self._wait_flow(token, seconds)
        return await self._drive(flow)

    async def find_submitted(
        self, request: NewRequest, *, sent_at: datetime
    ) -> ServiceRequest | None:
        """The request a submission of *request* at *sent_at* created, if the city shows one.

        For answers that were lost (a crash mid-send, a dropped connection): it looks the way
        `submit` reconciles (docs/retries.md) — same service_code, created no earlier than
        *sent_at* minus five minutes, and the description or location echoed back — for up to
        ``reconcile_wait`` seconds.
        """
        if not isinstance(request, NewRequest):
            raise InvalidRequestError("request", "must be a civic311.NewRequest")
        if not isinstance(sent_at, datetime) or sent_at.tzinfo is None:
            raise InvalidRequestError("sent_at", "must be a timezone-aware datetime")
        found: ServiceRequest | None = await self._drive(self._find_flow(request, sent_at))
        return found

    async def get_request(self, service_request_id: str) -> ServiceRequest:
        """One service request (GET requests/{id}, spec §2.6)."""
        return await self._execute(self._request_call(service_request_id))

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
        call = self._requests_call(service_request_id, service_code, start_date, end_date, status)
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
        flow = self._harvest_flow(start_date, end_date, service_code, status)
        reply: Any = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration:
                return
            if isinstance(step, Emit):
                reply = None
                for request in step.requests:
                    yield request
            else:
                reply = await self._execute(step)

    async def track(
        self, items: Sequence[str | Receipt] | str | Receipt, *, ledger: Ledger | None = None
    ) -> Tracked:
        """Refresh requests once: turn tokens into ids, look ids up in batches, report changes.

        Args:
            items: Request ids and/or receipts (receipts still holding a token are resolved).
            ledger: Record every status seen, and compare with what it saw last time.

        Returns:
            The requests now, the changes since last seen, tokens still pending, ids missing.
        """
        flow = self._tracking_flow(
            items, ledger, interval=1.0, max_interval=1.0, timeout=None, once=True
        )
        result: list[Tracked] = []
        async for _ in self._drive_tracking(flow, ledger, result):
            pass
        return result[0]

    async def watch(
        self,
        items: Sequence[str | Receipt] | str | Receipt,
        *,
        interval: float = 300.0,
        max_interval: float = 3600.0,
        timeout: float | None = None,
        ledger: Ledger | None = None,
    ) -> AsyncIterator[StatusChange]:
        """Yield each `StatusChange` until every request is closed or *timeout* passes.

        Asks every *interval* seconds, backing off by half each quiet round up to
        *max_interval*, and waiting as long as the city's Retry-After says when rate-limited
        (`civic311.tracking`). With a *ledger*, every status seen is recorded and a resumed
        watch reports only what changed since.
        """
        flow = self._tracking_flow(
            items,
            ledger,
            interval=interval,
            max_interval=max_interval,
            timeout=timeout,
            once=False,
        )
        async for change in self._drive_tracking(flow, ledger):
            yield change

    async def get_requests(self, ids: Sequence[str]) -> list[ServiceRequest]:
        """Many requests by id, in as few calls as URLs of at most 2,000 characters allow.

        Chunks hold no more ids than one answer can (the page size, or the cap), pages are
        followed, and ids a cut answer left out are asked again: results come in the order
        asked, and only ids the city does not know are left out.
        """
        wanted, chunks = self._id_chunks(ids)
        return await self._drive(self._lookup_flow(wanted, chunks))

    # --- driving -----------------------------------------------------------------------------

    async def _definition_for(self, service_code: str) -> ServiceDefinition:
        """The service's definition, cached for an hour; a 404 means "no attributes"."""
        cached = self._cached_definition(service_code)
        if cached is not None:
            return cached
        try:
            definition = await self.get_service_definition(service_code)
        except NotFoundError:
            definition = ServiceDefinition(service_code=service_code)  # metadata=false
        return self._cache_definition(definition)

    async def _drive_tracking(
        self,
        flow: Generator[Lookup | Resolve | Sleep | StatusChange, Any, Tracked],
        ledger: Ledger | None,
        result: list[Tracked] | None = None,
    ) -> AsyncIterator[StatusChange]:
        reply: Any = None
        error: Civic311Error | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as done:
                if result is not None:
                    result.append(done.value)
                return
            reply, error = None, None
            try:
                if isinstance(step, StatusChange):
                    self._observed(ledger, [step.request])
                    yield step
                elif isinstance(step, Sleep):
                    await self._clock.asleep(step.seconds)
                    reply = self._clock.monotonic()
                elif isinstance(step, Resolve):
                    reply = await self.get_token(step.token)
                    self._observed(ledger, reply)
                else:
                    reply = await self.get_requests(list(step.ids))
            except Civic311Error as exc:
                error = exc

    async def _drive(self, flow: Generator[Call[Any] | Sleep, Any, T]) -> T:
        """Run a protocol flow: execute its calls, sleep its sleeps."""
        reply: Any = None
        error: Civic311Error | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            reply, error = None, None
            if isinstance(step, Sleep):
                await self._clock.asleep(step.seconds)
                reply = self._clock.monotonic()
                continue
            try:
                reply = await self._execute(step)
            except Civic311Error as exc:
                error = exc

    async def _execute(self, call: Call[T], *, retry_unsafe: bool = False) -> T:
        """Run *call* under the retry policy, failing over between endpoints."""
        result: T = await self._attempts(self._run(call, retry_unsafe=retry_unsafe))
        return result

    async def _attempts(self, run: CallRun) -> Any:
        """The tenacity loop over attempts; raises `_Reconcile` for an unknown POST outcome.

        The first attempt runs before the loop is built (most calls succeed at once, and the
        loop costs more than the rest of the call's bookkeeping, bench/overhead.py). If it
        fails, its error is the loop's first attempt, so every decision is the same as ever.
        """
        try:
            result = await self._attempt(run)
        except Civic311Error as exc:
            first: Civic311Error | None = exc
        else:
            run.finished()
            return result
        import tenacity

        retrying = tenacity.AsyncRetrying(sleep=self._clock.asleep, **run.tenacity_kwargs())
        try:
            async for attempt in retrying:
                with attempt:
                    if first is not None:
                        replay, first = first, None
                        raise replay
                    result = await self._attempt(run)
        except Civic311Error as exc:
            if run.must_reconcile:
                raise _Reconcile(run, exc) from exc
            final = run.final_error(exc)
            if final is exc:
                raise
            raise final from exc
        return result

    async def _attempt(self, run: CallRun) -> Any:
        """One attempt on the next endpoint (and once more in XML if it turns out XML-only)."""
        endpoint = run.next_endpoint()
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
        if base_url in self._identity_only:
            request.headers["Accept-Encoding"] = IDENTITY
        try:
            response, body = await self._exchange(call, request)
        except EncodingBroken as broken:
            if call.is_post:
                raise self._broken_encoding(request, broken.status_code) from None
            self._identity_only.add(base_url)
            request.headers["Accept-Encoding"] = IDENTITY
            try:
                response, body = await self._exchange(call, request)
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
            response, body = await self._exchange(call, request)
        return read_response(
            call, response, body, fmt, self._clock.now(), secret=self._settings.api_key
        )

    async def _exchange(
        self, call: Call[Any], request: httpx.Request
    ) -> tuple[httpx.Response, bytes]:
        """Send *request* and read its body up to the cap; httpx errors become civic311's."""
        shown = redact_url(request.url)
        started = self._clock.monotonic()
        try:
            response = await self._http.send(
                request, stream=True, follow_redirects=self._may_follow(call)
            )
        except httpx.DecodingError:
            raise EncodingBroken(None) from None  # transports that decode eagerly
        except httpx.HTTPError as exc:
            raise transport_error(exc, request.method, shown, self._settings.api_key) from exc
        try:
            body = await aread_body(response, self._max_response_bytes)
        except httpx.DecodingError:
            raise EncodingBroken(response.status_code) from None
        except httpx.HTTPError as exc:
            raise transport_error(exc, request.method, shown, self._settings.api_key) from exc
        finally:
            await response.aclose()
        logger.debug(
            "%s %s → %d (%d bytes, %.3fs)",
            request.method,
            shown,
            response.status_code,
            len(body),
            self._clock.monotonic() - started,
        )
        return response, body

    async def _submit(self, request: NewRequest, *, retry_unsafe: bool) -> Receipt:
        """POST with duplicate safety: an unknown outcome is reconciled, never re-sent."""
        call = self._submit_call(request)
        run = self._run(call, retry_unsafe=retry_unsafe)
        try:
            receipt: Receipt = await self._attempts(run)
        except _Reconcile as pending:
            await self._clock.asleep(pending.run.decision.wait if pending.run.decision else 0.0)
            found = await self._drive(self._reconcile_flow(request, pending.run))
            if found is None:
                raise self._uncertain(request, pending.run, pending.error) from pending.error
            return self._remember(self._reconciled_receipt(found))
        return self._remember(receipt)

    async def _run_outbox(self, flow: Generator[OutboxStep, Any, T]) -> T:
        """Drive an outbox flow: its sends through `submit`'s rules, its finds by reconciling."""
        from civic311.outbox import Send

        reply: Any = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            if isinstance(step, Send):
                try:
                    reply = await self._submit(step.request, retry_unsafe=step.retry_unsafe)
                except Civic311Error as exc:
                    reply = exc
            else:
                reply = await self._drive(self._find_flow(step.request, step.sent_at))

    def _may_follow(self, call: Call[Any]) -> bool:
        # Never follow a redirect with credentials aboard: a POST carries the api_key, and so
        # does a GET when the profile sends it on reads (DESIGN promise 6).
        return not call.is_post and not (self._settings.api_key and self._settings.api_key_on_reads)
