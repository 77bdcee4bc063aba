"""What `Client` and `AsyncClient` share: configuration, argument checks and call building.

Nothing here sends or sleeps. Each public method of the two clients checks its arguments and
builds its `Call` through `ClientBase`, then only drives it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import ssl
import warnings
from collections import deque
from collections.abc import Generator, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs
import httpx

from civic311._client.execution import AttemptHook, CallRun, reconcile_flow
from civic311._clock import Clock, SystemClock
from civic311._protocol import (
    MAX_PAGES,
    MAX_URL_LENGTH,
    Call,
    Civic311Warning,
    Collected,
    PageRule,
    Settings,
    Sleep,
    Step,
    build_request,
    chunk_ids,
    get_request_call,
    get_token_call,
    id_set,
    list_requests_call,
    list_services_call,
    normalize_base_url,
    paged_flow,
    redact_text,
    redact_url,
    service_definition_call,
    submit_call,
    wait_for_id_flow,
)
from civic311._resilience.pool import EndpointHealth, EndpointPool
from civic311._resilience.retry import RetryPolicy
from civic311._wire import Format
from civic311.errors import (
    Civic311Error,
    DecodeError,
    InvalidRequestError,
    NotFoundError,
    SubmissionUncertainError,
    UntrackableReceiptError,
)
from civic311.harvest import Emit, filter_sets, harvest_flow, keep
from civic311.models import NewRequest, Receipt, ServiceDefinition, ServiceRequest, TokenStatus
from civic311.profiles import PROFILES, SPEC, Profile
from civic311.tracking import Lookup, Resolve, StatusChange, Tracked, watch_flow
from civic311.validation import check, sendable

if TYPE_CHECKING:  # outbox, ledger (sqlite3), discovery and triage load only when used
    from civic311.discovery import Discovery
    from civic311.ledger import Ledger
    from civic311.outbox import Outbox
    from civic311.triage import EmergencyPolicy

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_RECONCILE_WAIT",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "ClientBase",
]

#: Four attempts within 30 s, exponential backoff from 0.5 s with full jitter: patient with a
#: struggling city without hammering it (stamina's and AWS's advice).
DEFAULT_RETRY = RetryPolicy()

#: How long to look for the request an ambiguous POST may have created before declaring the
#: submission uncertain.
DEFAULT_RECONCILE_WAIT = 15.0

#: A policy of one attempt, for ``retry=None``.
_NO_RETRY = RetryPolicy(attempts=1, initial_wait=0.0, max_wait=0.0)

#: Seconds for connect, read, write and pool waits; a slow city (D.C., reference §10.37) still
#: answers within it, a dead one does not hold a caller for long.
DEFAULT_TIMEOUT = 10.0

#: The response size cap (DESIGN promise 6): bigger bodies raise `ResponseTooLargeError`.
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024


T = TypeVar("T")


def _request_key(request: ServiceRequest) -> str | None:
    return request.service_request_id


def _service_key(service: Any) -> str | None:
    code: str | None = getattr(service, "service_code", None)
    return code


class _Reconcile(Exception):
    """Raised inside a client when a POST's outcome is unknown and must be reconciled."""

    def __init__(self, run: CallRun, error: Civic311Error) -> None:
        super().__init__(str(error))
        self.run = run
        self.error = error


def _check_format(value: object) -> Format:
    if value not in ("json", "xml"):
        raise InvalidRequestError("format", f'must be "json" or "xml", got {value!r}')
    return "json" if value == "json" else "xml"


def _check_optional_text(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(field, f"must be a string, not {type(value).__name__}")
    return value.strip() or None


def _endpoints(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        urls: Sequence[object] = [value]
    elif isinstance(value, Sequence):
        urls = value
    else:
        raise InvalidRequestError(
            "endpoints", f"must be a URL or a list of URLs, not {type(value).__name__}"
        )
    if not urls:
        raise InvalidRequestError("endpoints", "at least one endpoint URL is required")
    normalized = tuple(normalize_base_url(u) for u in urls)
    if len(set(normalized)) != len(normalized):
        raise InvalidRequestError("endpoints", "the same endpoint is listed twice")
    return normalized


def _timeout(value: object) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        return value
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        if value is not None and value <= 0:
            raise InvalidRequestError("timeout", f"must be positive, got {value!r}")
        return httpx.Timeout(value)
    raise InvalidRequestError("timeout", f"must be seconds or httpx.Timeout, not {value!r}")


def check_seconds(value: object, field: str) -> float:
    """*value* as seconds ≥ 0, or an `InvalidRequestError` naming *field*."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidRequestError(field, f"must be seconds ≥ 0, got {value!r}")
    return float(value)


def _headers(value: object) -> httpx.Headers:
    if value is None:
        return httpx.Headers()
    if not isinstance(value, Mapping):
        raise InvalidRequestError("headers", f"must be a mapping, not {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InvalidRequestError("headers", f"names and values must be strings: {key!r}")
    return httpx.Headers(dict(value))


def tls_context(ca_bundle: object) -> ssl.SSLContext | Literal[True]:
    """TLS settings: always verifying; *ca_bundle* (a PEM path) adds a private CA.

    There is deliberately no way to turn verification off (DESIGN promise 6).
    """
    if ca_bundle is None:
        return True
    if not isinstance(ca_bundle, str | os.PathLike):
        raise InvalidRequestError("ca_bundle", "must be a path to a PEM file")
    try:
        return ssl.create_default_context(cafile=os.fspath(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise InvalidRequestError("ca_bundle", f"cannot load {ca_bundle!r}: {exc}") from exc


class _RedactKeys(logging.Filter):
    """Rewrites httpx's log lines so a URL carrying an api_key shows ``api_key=***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_HTTPX_FILTER = _RedactKeys()


def guard_httpx_logs() -> None:
    """Install the redacting filter on httpx's logger, once (it logs every request's URL at
    INFO, and a profile may put the api_key in read URLs: DESIGN promise 6)."""
    httpx_logger = logging.getLogger("httpx")
    if _HTTPX_FILTER not in httpx_logger.filters:
        httpx_logger.addFilter(_HTTPX_FILTER)


def _check_profile(value: object) -> Profile:
    if value is None:
        return SPEC
    if isinstance(value, str):
        try:
            return PROFILES[value.lower()]
        except KeyError:
            known = ", ".join(sorted(PROFILES))
            raise InvalidRequestError("profile", f"no profile {value!r}; known: {known}") from None
    if not isinstance(value, Profile):
        raise InvalidRequestError("profile", f"must be a Profile or a profile name, not {value!r}")
    return value


def city_options(
    name: str, environment: str, allow_retired: bool, options: dict[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    """The endpoints and client options of a registry city (`Client.for_city`)."""
    from civic311 import cities

    city = cities.get(name)
    cities.check_usable(city, allow_retired=allow_retired)
    endpoints = city.endpoints(environment)  # type: ignore[arg-type]
    options.setdefault("jurisdiction_id", city.jurisdiction_id)
    if "json" not in city.formats and not city.profile.format:
        options.setdefault("format", "xml")  # the registry lists it as XML-only
    options.setdefault("profile", city.profile)
    options.setdefault("other_channels", city.other_channels())
    return endpoints, options


def discovery_options(
    discovery: Discovery, environment: str, options: dict[str, Any]
) -> tuple[list[str], list[Format]]:
    """The endpoints, and each one's format, that a discovery document offers."""
    from civic311.discovery import choose_endpoints

    chosen = choose_endpoints(discovery, environment=environment)  # type: ignore[arg-type]
    if discovery.contact and "other_channels" not in options:
        options["other_channels"] = [f"contact: {discovery.contact}"]
    return [url for url, _ in chosen], [fmt for _, fmt in chosen]


def settings_for(profile: Profile, *, jurisdiction_id: str | None, api_key: str | None) -> Settings:
    """The request settings a client with *profile* and these credentials uses.

    Raises:
        InvalidRequestError: the profile requires a jurisdiction_id and none is given, or
            forbids one and one is given.
    """
    if profile.jurisdiction == "required" and not jurisdiction_id:
        raise InvalidRequestError(
            "jurisdiction_id", f"the {profile.name!r} server requires one on every call"
        )
    if profile.jurisdiction == "forbidden" and jurisdiction_id:
        raise InvalidRequestError(
            "jurisdiction_id", f"the {profile.name!r} server refuses one; leave it None"
        )
    return Settings(
        jurisdiction_id=jurisdiction_id,
        api_key=api_key,
        multivalue=profile.multivalue,
        date_zone=profile.date_style == "utc_z",
        api_key_on_reads=profile.api_key_on_reads,
        paths=dict(profile.paths),
        accept_encoding=profile.accept_encoding,
        extensions=profile.extensions,
        result_cap=profile.result_cap,
        ignores_filters=profile.ignores_filters,
        token_404_pending=profile.token_404_pending,
        poll_interval=profile.poll_interval,
        max_poll_interval=profile.max_poll_interval,
        required_fields=tuple(profile.required_fields),
        media=profile.media,
        max_media_bytes=profile.max_media_bytes,
        form_names=dict(profile.form_names),
        paging=profile.paging,
        page_size=profile.page_size,
        first_page=profile.first_page,
        max_window_days=profile.max_window_days,
    )


class ClientBase:
    """Configuration and pure call building shared by `Client` and `AsyncClient`."""

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        jurisdiction_id: str | None = None,
        api_key: str | None = None,
        format: Format | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
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
        self._endpoints = _endpoints(endpoints)
        if emergency not in ("warn", "refuse", "ignore"):
            raise InvalidRequestError(
                "emergency", f'must be "warn", "refuse" or "ignore", got {emergency!r}'
            )
        self._emergency: EmergencyPolicy = emergency
        self._profile = _check_profile(profile)
        if self._profile.force_format and self._profile.format is not None:
            if format is not None and format != self._profile.format:
                raise InvalidRequestError(
                    "format",
                    f"the {self._profile.name!r} profile speaks only {self._profile.format}",
                )
            format = self._profile.format
        self._format: Format = _check_format(format or self._profile.format or "json")
        self._settings = settings_for(
            self._profile,
            jurisdiction_id=_check_optional_text(jurisdiction_id, "jurisdiction_id"),
            api_key=_check_optional_text(api_key, "api_key"),
        )
        if self._settings.api_key and self._settings.api_key_on_reads:
            guard_httpx_logs()
        self._timeout = _timeout(timeout)
        self._headers = _headers(headers)
        if (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes <= 0
        ):
            raise InvalidRequestError(
                "max_response_bytes", f"must be a positive int, got {max_response_bytes!r}"
            )
        self._max_response_bytes = max_response_bytes
        if clock is not None and not isinstance(clock, Clock):
            raise InvalidRequestError("clock", "must provide monotonic, now, sleep and asleep")
        self._clock: Clock = clock or SystemClock()
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidRequestError("retry", f"must be a RetryPolicy or None, not {retry!r}")
        self._policy = retry if retry is not None else _NO_RETRY
        if on_attempt is not None and not callable(on_attempt):
            raise InvalidRequestError("on_attempt", "must be callable with an AttemptEvent")
        self._on_attempt = on_attempt
        self._reconcile_wait = check_seconds(reconcile_wait, "reconcile_wait")
        try:
            self._pool = EndpointPool(
                self._endpoints,
                wall=self._clock.now(),
                format=self._format,
                failure_threshold=failure_threshold,
                cooldown=check_seconds(cooldown, "cooldown"),
            )
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError("failure_threshold", str(exc)) from exc
        self._rng = random.Random()  # noqa: S311 - jitter, not secrets
        self._definitions: dict[str, tuple[float, ServiceDefinition]] = {}
        # Ids this client filed or reconciled, most recent last (bounded): never reconciled onto.
        self._filed: deque[str] = deque(maxlen=10_000)
        # Endpoints whose compressed answers failed to decode: asked uncompressed from then on.
        self._identity_only: set[str] = set()
        if isinstance(other_channels, str) or not all(
            isinstance(channel, str) for channel in other_channels
        ):
            raise InvalidRequestError("other_channels", "must be a list of strings")
        self._other_channels: tuple[str, ...] = tuple(other_channels)

    # --- read-only views ---------------------------------------------------------------------

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The endpoint base URLs, primary first."""
        return self._endpoints

    @property
    def format(self) -> Format:
        """The format asked of the servers ("json" or "xml")."""
        return self._format

    @property
    def jurisdiction_id(self) -> str | None:
        """The jurisdiction_id sent on every call, if any."""
        return self._settings.jurisdiction_id

    def __repr__(self) -> str:
        # Never the api_key (DESIGN promise 6): only whether one is set.
        key = ", api_key=<set>" if self._settings.api_key else ""
        jurisdiction = (
            f", jurisdiction_id={self._settings.jurisdiction_id!r}"
            if self._settings.jurisdiction_id
            else ""
        )
        return (
            f"{type(self).__name__}(endpoints={list(self._endpoints)!r}, "
            f"format={self._format!r}{jurisdiction}{key})"
        )

    @property
    def profile(self) -> Profile:
        """How this client's server deviates from the spec (`civic311.profiles.Profile`)."""
        return self._profile

    @property
    def clock(self) -> Clock:
        """The clock this client waits on."""
        return self._clock

    def _use_formats(self, formats: Sequence[Format]) -> None:
        """Ask each endpoint in its own format (discovery says which each offers)."""
        self._pool = EndpointPool(
            self._endpoints,
            wall=self._clock.now(),
            format=tuple(formats),
            failure_threshold=self._pool.failure_threshold,
            cooldown=self._pool.cooldown,
        )

    def health(self) -> list[EndpointHealth]:
        """Each endpoint's health: state (up, degraded, down), since when, the last error,
        consecutive failures, average latency and the format in use."""
        return self._pool.health()

    def _run(self, call: Call[Any], *, retry_unsafe: bool = False) -> CallRun:
        return CallRun(
            call,
            pool=self._pool,
            policy=self._policy,
            clock=self._clock,
            rng=self._rng,
            retry_unsafe=retry_unsafe,
            on_attempt=self._on_attempt,
            other_channels=self._other_channels,
        )

    def _reconcile_flow(
        self, request: NewRequest, run: CallRun
    ) -> Generator[Step, Any, ServiceRequest | None]:
        return self._find_flow(request, run.sent_at)

    def _find_flow(
        self, request: NewRequest, sent_at: datetime
    ) -> Generator[Step, Any, ServiceRequest | None]:
        return reconcile_flow(
            request,
            sent_at=sent_at,
            started=self._clock.monotonic(),
            budget=self._reconcile_wait,
            now=self._clock.now,
            exclude=frozenset(self._filed),
        )

    def _remember(self, receipt: Receipt) -> Receipt:
        """Note an id this client was given, so reconciliation never takes it for another."""
        if receipt.service_request_id:
            self._filed.append(receipt.service_request_id)
        return receipt

    #: How long a fetched service definition is trusted (seconds on the client's clock).
    DEFINITION_TTL = 3600.0

    def _cached_definition(self, service_code: str) -> ServiceDefinition | None:
        entry = self._definitions.get(service_code)
        if entry is not None and self._clock.monotonic() - entry[0] < self.DEFINITION_TTL:
            return entry[1]
        return None

    def _cache_definition(self, definition: ServiceDefinition) -> ServiceDefinition:
        self._definitions[definition.service_code] = (self._clock.monotonic(), definition)
        return definition

    @staticmethod
    def _validated(request: NewRequest, definition: ServiceDefinition) -> NewRequest:
        check(definition, request)
        return sendable(definition, request)

    @staticmethod
    def _outbox_receipt(
        outbox: Outbox, local_id: str, state: str, outcome: Receipt | Civic311Error | None
    ) -> Receipt:
        """What `submit(…, outbox=)` returns for the state the entry ended in."""
        if state == "sent" and isinstance(outcome, Receipt):
            return attrs.evolve(outcome, local_id=local_id)
        if state == "failed" and isinstance(outcome, Civic311Error):
            raise outcome
        return Receipt(queued=True, local_id=local_id)

    @staticmethod
    def _check_outbox(outbox: object) -> Outbox:
        from civic311.outbox import Outbox

        if not isinstance(outbox, Outbox):
            raise InvalidRequestError("outbox", f"must be a civic311.Outbox, not {outbox!r}")
        return outbox

    @staticmethod
    def _reconciled_receipt(found: ServiceRequest) -> Receipt:
        return Receipt(
            service_request_id=found.service_request_id,
            token=found.token,
            service_notice=found.service_notice,
            reconciled=True,
        )

    def _uncertain(
        self, request: NewRequest, run: CallRun, error: Civic311Error
    ) -> SubmissionUncertainError:
        return SubmissionUncertainError(
            f"submit: the city may or may not have filed this request ({error}); it was not "
            f"found on the server within {self._reconcile_wait:g}s and was not sent again. "
            "Keep the request (error.request) and check later, or use an Outbox.",
            request,
            run.attempts,
        )

    @staticmethod
    def _broken_encoding(request: httpx.Request, status_code: int | None) -> DecodeError:
        # The server answered but its compression was broken. For a POST, like any undecodable
        # answer, that is reconciled and never a reason to POST again.
        url = redact_url(request.url)
        return DecodeError(
            f"{request.method} {url} → HTTP {status_code or '?'}: the answer's "
            "Content-Encoding could not be decoded, even uncompressed",
            url=url,
            status_code=status_code,
        )

    def _timeout_within(self, seconds_left: float) -> dict[str, float | None]:
        """The per-request timeout, shortened so one attempt never outlives the call's deadline."""
        left = max(seconds_left, 0.001)
        values = self._timeout.as_dict()
        return {k: left if v is None else min(v, left) for k, v in values.items()}

    # --- call building -----------------------------------------------------------------------

    def _services_call(self) -> Call[Any]:
        return list_services_call()

    def _definition_call(self, service_code: str) -> Call[Any]:
        return service_definition_call(service_code)

    def _submit_call(self, request: NewRequest) -> Call[Receipt]:
        return submit_call(
            request,
            multivalue=self._settings.multivalue,
            media=self._settings.media,
            max_media_bytes=self._settings.max_media_bytes,
            form_names=self._settings.form_names,
        )

    def _token_call(self, token: str) -> Call[Any]:
        return get_token_call(token)

    def _request_call(self, service_request_id: str) -> Call[ServiceRequest]:
        return get_request_call(service_request_id)

    def _tracking_flow(
        self,
        items: object,
        ledger: Ledger | None,
        *,
        interval: float,
        max_interval: float,
        timeout: float | None,
        once: bool,
    ) -> Generator[Lookup | Resolve | Sleep | StatusChange, Any, Tracked]:
        from civic311.ledger import Ledger

        if ledger is not None and not isinstance(ledger, Ledger):
            raise InvalidRequestError("ledger", f"must be a civic311.Ledger, not {ledger!r}")
        if timeout is not None and (isinstance(timeout, bool) or timeout < 0):
            raise InvalidRequestError("timeout", f"must be seconds ≥ 0 or None, not {timeout!r}")

        def known(rid: str) -> tuple[str | None, str | None, datetime | None] | None:
            seen = ledger.latest_status(rid) if ledger is not None else None
            if seen is None:
                return None
            status = str(seen.status) if seen.status is not None else None
            return (status, seen.status_notes, seen.updated_datetime)

        return watch_flow(
            items,
            known=known,
            now=self._clock.now,
            started=self._clock.monotonic(),
            interval=interval,
            max_interval=max_interval,
            deadline=timeout,
            once=once,
        )

    def _observed(
        self, ledger: Ledger | None, found: Sequence[ServiceRequest] | TokenStatus
    ) -> None:
        """Record what a tracking round saw in the ledger (it keeps only changes)."""
        if ledger is None:
            return
        now = self._clock.now()
        if isinstance(found, TokenStatus):
            if found.service_request_id:
                ledger.record_token_resolved(found.token, found.service_request_id, now)
            return
        for request in found:
            ledger.record_status(request, observed_at=now)

    def _check_required(self, request: NewRequest) -> None:
        """The fields this city requires in practice (its profile), and the emergency check
        of the description (`civic311.triage`), before anything is sent."""
        if request.description and self._emergency != "ignore":
            from civic311.triage import check

            check(request.description, self._emergency, stacklevel=5)
        for name in self._settings.required_fields:
            if name == "lat_long":
                given = request.lat is not None and request.long is not None
            else:
                value = getattr(request, name, None)
                given = isinstance(value, str) and bool(value.strip())
            if not given:
                raise InvalidRequestError(
                    name, "this city requires it on every report (see its profile)"
                )

    def _page_rule(self, max_pages: int = MAX_PAGES) -> PageRule:
        settings = self._settings
        return PageRule(
            style=settings.paging,
            page_size=settings.page_size,
            first_page=settings.first_page,
            result_cap=settings.result_cap,
            max_pages=max_pages,
        )

    def _pages(self, call: Call[list[T]]) -> Generator[Call[list[T]], Any, Collected[T]]:
        """*call* and the pages after it, as the server's headers or the profile say."""
        if call.operation == "list_services":
            # The profile's paging is GET requests' (§8.1); services page only when the
            # server says so in its headers (6aika sends X-Page-* there too).
            rule = PageRule(result_cap=self._settings.result_cap)
            return paged_flow(call, rule, _service_key)
        request_key: Any = _request_key
        return paged_flow(call, self._page_rule(), request_key)

    @staticmethod
    def _complete(got: Collected[T], what: str) -> list[T]:
        """The rows of a paged list, warning when the server said there was more."""
        if got.more:
            warnings.warn(
                f"{what} got {len(got.rows)} rows but the server says there are more: {got.reason}",
                Civic311Warning,
                stacklevel=3,
            )
        return got.rows

    def _listed(
        self,
        got: Collected[ServiceRequest],
        service_request_id: str | Sequence[str] | None,
        service_code: str | Sequence[str] | None,
        status: str | Sequence[str] | None,
        start_date: datetime | None,
        end_date: datetime | None,
    ) -> list[ServiceRequest]:
        """Re-filter the answer, and warn when it may be cut.

        Servers that ignore filters answer more than was asked (reference §10.30;
        open311-adapter answers every request to ``service_request_id=0,2``, captured in
        real-servers/B_requests_filter_ids_ignored): dropping what does not match is what
        FixMyStreet's client does too. Ids override every other filter (spec §2.5), so an id
        lookup is re-filtered by id alone.
        """
        found = got.rows
        if got.more:
            warnings.warn(
                f"list_requests got {len(found)} requests but the server says there are more: "
                f"{got.reason}; iter_requests harvests the whole span",
                Civic311Warning,
                stacklevel=3,
            )
        elif got.capped and not self._settings.ignores_filters:
            warnings.warn(
                f"list_requests got {len(found)} requests, the server's cap: the answer is "
                "probably cut short; iter_requests harvests the whole span",
                Civic311Warning,
                stacklevel=3,
            )
        if service_request_id is not None:
            wanted = id_set(service_request_id)
            return [r for r in found if r.service_request_id in wanted]
        codes, statuses = filter_sets(service_code, status)
        if codes is None and statuses is None and start_date is None and end_date is None:
            return found
        low = start_date or datetime.min.replace(tzinfo=timezone.utc)
        high = end_date or datetime.max.replace(tzinfo=timezone.utc)
        return [r for r in found if keep(r, low, high, codes, statuses)]

    def _harvest_flow(
        self,
        start_date: datetime,
        end_date: datetime,
        service_code: str | Sequence[str] | None,
        status: str | Sequence[str] | None,
    ) -> Generator[Call[list[ServiceRequest]] | Emit, Any, int]:
        settings = self._settings
        return harvest_flow(
            start=start_date,
            end=end_date,
            service_code=service_code,
            status=status,
            result_cap=settings.result_cap,
            max_window_days=settings.max_window_days,
            paging=settings.paging,
            page_size=settings.page_size,
            first_page=settings.first_page,
            date_zone=settings.date_zone,
            # No longer off for servers that ignore filters: the flow notices a server that
            # ignores dates from its answers (issue 11 point 8).
            split_capped=True,
        )

    def _wait_flow(self, token: str, timeout: float) -> Generator[Step, Any, str]:
        settings = self._settings
        return wait_for_id_flow(
            token,
            timeout=timeout,
            started=self._clock.monotonic(),
            first_interval=settings.poll_interval,
            max_interval=settings.max_poll_interval,
            pending_404=settings.token_404_pending,
        )

    def _requests_call(
        self,
        service_request_id: str | Sequence[str] | None,
        service_code: str | Sequence[str] | None,
        start_date: datetime | None,
        end_date: datetime | None,
        status: str | Sequence[str] | None,
    ) -> Call[list[ServiceRequest]]:
        return list_requests_call(
            service_request_id=service_request_id,
            service_code=service_code,
            start_date=start_date,
            end_date=end_date,
            status=status,
            date_zone=self._settings.date_zone,
        )

    def _id_chunks(self, ids: object) -> tuple[list[str], list[list[str]]]:
        """The distinct ids asked, in order, and their URL-sized chunks."""
        if isinstance(ids, str) or not isinstance(ids, Sequence | set | frozenset):
            raise InvalidRequestError(
                "ids", f"must be a list of service_request_id strings, not {type(ids).__name__}"
            )
        wanted: list[str] = []
        seen: set[str] = set()
        for item in ids:
            if not isinstance(item, str) or not item.strip():
                raise InvalidRequestError("ids", f"every id must be a non-empty string: {item!r}")
            key = item.strip()
            if key not in seen:
                seen.add(key)
                wanted.append(key)
        probe = build_request(
            list_requests_call(service_request_id="x"),
            max(self._endpoints, key=len),
            self._format,
            self._settings,
        )
        base_length = len(str(probe.url)) - 1  # the URL minus the one-character probe id
        # No more ids than one answer holds: a page (when the profile knows its size) or the
        # cap. More would come back cut (issue 11 point 2: 250 ids, 175 found).
        settings = self._settings
        most = min(settings.result_cap, settings.page_size or settings.result_cap)
        return wanted, chunk_ids(wanted, base_length, MAX_URL_LENGTH, most)

    def _lookup_flow(
        self, wanted: list[str], chunks: list[list[str]]
    ) -> Generator[Call[Any], Any, list[ServiceRequest]]:
        """Look *wanted* up by id, chunk by chunk, following pages; in the order asked.

        An id is missing only when the city truly lacks it. Ids an answer left out are asked
        again while answers bring some of them (a server may cap below what the profile
        says, silently); an answer with none of them settles it, unless that answer may be
        cut (it reached the cap, or the server says there is more: a server ignoring the id
        filter), when they are asked again in halves, and a single id still in doubt alone
        (GET requests/{id}: a 404 means missing). Rows not asked for are dropped
        (open311-adapter ignores the id filter and answers every request, reference
        real-servers/B_requests_filter_ids_ignored). Bounded: every re-ask finds an id or
        halves its chunk.
        """
        found: dict[str, ServiceRequest] = {}
        queue = deque(chunks)
        alone: list[str] = []
        rule = self._page_rule()
        while queue:
            chunk = queue.popleft()
            got: Collected[ServiceRequest] = yield from paged_flow(
                list_requests_call(service_request_id=chunk), rule, _request_key
            )
            asked = set(chunk)
            progress = False
            for request in got.rows:
                rid = request.service_request_id
                if rid in asked and rid not in found:
                    found[rid] = request
                    progress = True
            missing = [i for i in chunk if i not in found]
            if not missing:
                continue
            if progress:
                # Some came, some did not: a server may cap below what the profile says and
                # not say so. Ask the rest again; an answer with none of them settles it.
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

    @staticmethod
    def _token_of(receipt_or_token: Receipt | str) -> tuple[str | None, str | None]:
        """(id, token) of what `wait_for_id` was given."""
        if isinstance(receipt_or_token, Receipt):
            if receipt_or_token.service_request_id:
                return receipt_or_token.service_request_id, None
            if receipt_or_token.token:
                return None, receipt_or_token.token
            raise UntrackableReceiptError(
                "this receipt has neither a service_request_id nor a token: the service is "
                "blackbox (spec §3.1), so the city will never give it an id to wait for"
            )
        if isinstance(receipt_or_token, str) and receipt_or_token.strip():
            return None, receipt_or_token.strip()
        raise InvalidRequestError(
            "receipt_or_token",
            f"must be a Receipt or a non-empty token string, not {receipt_or_token!r}",
        )

    @staticmethod
    def _check_wait_timeout(timeout: object) -> float:
        return check_seconds(timeout, "timeout")
