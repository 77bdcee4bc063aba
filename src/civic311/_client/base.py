"""What `Client` and `AsyncClient` share: configuration, argument checks and call building.

Nothing here sends or sleeps. Each public method of the two clients checks its arguments and
builds its `Call` through `ClientBase`, then only drives it.
"""

from __future__ import annotations

import logging
import math
import os
import random
import ssl
import warnings
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx

from civic311._checks import check_seconds
from civic311._client.execution import (
    AttemptHook,
    CallRun,
    Unsettled,
    call_limit,
    reconcile_flow,
)
from civic311._clock import Clock, SystemClock
from civic311._protocol import (
    MAX_PAGES,
    MAX_URL_LENGTH,
    USER_AGENT,
    Call,
    Civic311Warning,
    Collected,
    Flow,
    PageRule,
    Settings,
    Sleep,
    build_request,
    chunk_ids,
    id_set,
    list_requests_call,
    lookup_flow,
    normalize_base_url,
    paged_flow,
    redact_text,
    redact_url,
    request_key,
    submit_call,
    wait_for_id_flow,
)
from civic311._resilience.retry import RetryPolicy
from civic311._secrets import mask_text
from civic311._wire import Format
from civic311.errors import (
    Civic311Error,
    DecodeError,
    InvalidRequestError,
    SubmissionUncertainError,
    TransportError,
    UntrackableReceiptError,
)
from civic311.models import NewRequest, Receipt, Service, ServiceDefinition, ServiceRequest

if TYPE_CHECKING:  # discovery, harvests and tracking load only when used
    from civic311._resilience.pool import Endpoint, EndpointHealth
    from civic311.discovery import Discovery
    from civic311.harvest import Harvest
    from civic311.profiles import Profile
    from civic311.tracking import StatusChange, StatusStore, Watch

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "arefuse_downgrade",
    "http_settings",
    "key_off_plain_http",
    "refuse_downgrade",
    "timeout_of",
    "tls_context",
    "url_error",
    "check_seconds",
    "DEFAULT_RECONCILE_WAIT",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "SHARED_CACHE",
    "PROBE_SECONDS",
    "ClientBase",
    "SharedCache",
]

#: Four attempts within 30 s, exponential backoff from 0.5 s with full jitter: patient with a
#: struggling city without hammering it (stamina's and AWS's advice).
DEFAULT_RETRY = RetryPolicy()

#: How long to look for the request an ambiguous POST may have created before declaring the
#: submission uncertain.
DEFAULT_RECONCILE_WAIT = 15.0

#: Seconds one endpoint may take to answer `probe` (the client's timeout bounds each phase).
PROBE_SECONDS = 30.0

#: A policy of one attempt, for ``retry=None``.
_NO_RETRY = RetryPolicy(attempts=1, initial_wait=0.0, max_wait=0.0)

#: Seconds for connect, read, write and pool waits; a slow city (D.C., reference §10.37) still
#: answers within it, a dead one does not hold a caller for long.
DEFAULT_TIMEOUT = 10.0

#: The response size cap (DESIGN promise 6): bigger bodies raise `ResponseTooLargeError`.
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024


T = TypeVar("T")


def _service_key(service: Any) -> str | None:
    code: str | None = getattr(service, "service_code", None)
    return code


class SharedCache:
    """The default of `get_discovery`'s *cache*: the process-wide
    `civic311.discovery.default_cache` (a sentinel, like httpx's ``USE_CLIENT_DEFAULT``, so the
    discovery module loads only when used)."""

    def __repr__(self) -> str:
        return "SHARED_CACHE"


SHARED_CACHE = SharedCache()


def _check_format(value: object) -> Format:
    # "XML" and "Json" are what people type (and what discovery documents and config files
    # spell); the case carries no meaning (issue 14.8).
    folded = value.strip().lower() if isinstance(value, str) else value
    if folded not in ("json", "xml"):
        raise InvalidRequestError("format", f'must be "json" or "xml", got {value!r}')
    return "json" if folded == "json" else "xml"


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


def timeout_of(value: object) -> httpx.Timeout:
    """*value* (seconds, None or an `httpx.Timeout`) as an `httpx.Timeout`."""
    if isinstance(value, httpx.Timeout):
        return value
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        if value is not None and value <= 0:
            raise InvalidRequestError("timeout", f"must be positive, got {value!r}")
        return httpx.Timeout(value)
    raise InvalidRequestError("timeout", f"must be seconds or httpx.Timeout, not {value!r}")


def _headers(value: object) -> httpx.Headers:
    if value is None:
        return httpx.Headers()
    if not isinstance(value, Mapping):
        raise InvalidRequestError("headers", f"must be a mapping, not {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InvalidRequestError("headers", f"names and values must be strings: {key!r}")
    return httpx.Headers(dict(value))


def _pem(value: object, field: str) -> str:
    if not isinstance(value, str | os.PathLike):
        raise InvalidRequestError(field, "must be a path to a PEM file")
    return os.fspath(value)


def tls_context(ca_bundle: object, extra_ca: object = None) -> ssl.SSLContext | Literal[True]:
    """TLS settings: always verifying (issue 12 point 10).

    *ca_bundle* (a PEM path) REPLACES the public roots: only the CAs in it are trusted (a
    city behind a private CA, with nothing public to reach). *extra_ca* (a PEM path) ADDS its
    CAs to the public roots (certifi's, as httpx uses by default). Given both, the bundle's CAs
    and the extra ones are trusted. There is deliberately no way to turn verification off
    (DESIGN promise 6).

    Raises:
        InvalidRequestError: naming the option whose file is missing or holds no certificate.
    """
    if ca_bundle is None and extra_ca is None:
        return True
    try:
        if ca_bundle is not None:
            path = _pem(ca_bundle, "ca_bundle")
            context = ssl.create_default_context(cafile=path)
        else:
            context = httpx.create_ssl_context()  # certifi's roots, what verify=True means
    except (OSError, ssl.SSLError) as exc:
        raise InvalidRequestError("ca_bundle", f"cannot load {ca_bundle!r}: {exc}") from exc
    if extra_ca is not None:
        path = _pem(extra_ca, "extra_ca")
        try:
            context.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidRequestError("extra_ca", f"cannot load {extra_ca!r}: {exc}") from exc
    return context


def url_error(exc: Exception, method: str, url: str, secret: str | None) -> TransportError:
    """The `TransportError` for a URL httpx or the resolver refuses mid-call (a redirect to a
    host label over 63 characters raises a bare ``UnicodeError`` from the IDNA codec; issue
    12 point 6). Nothing was sent to it."""
    detail = mask_text(str(exc).strip(), secret)
    return TransportError(
        f"not a usable URL ({type(exc).__name__}: {detail})",
        method=method,
        url=url,
        sent=False,
        cause_name=type(exc).__name__,
    )


#: Set on a request sent over https; httpx hands a request's extensions on to the requests
#: it builds to follow redirects, so every later hop knows where the chain began.
_BEGAN_HTTPS = "civic311.began_https"


def refuse_downgrade(request: httpx.Request) -> None:
    """An httpx request hook: no redirect leads from https to http (issue 12 point 4).

    Raises:
        httpx.UnsupportedProtocol: before the plain-http request is sent (plain http is not a
            protocol this chain may use); the client maps it to a `TransportError` that never
            reached a server.
    """
    if request.url.scheme == "https":
        request.extensions[_BEGAN_HTTPS] = True
    elif request.extensions.get(_BEGAN_HTTPS):
        raise httpx.UnsupportedProtocol(
            f"refused a redirect from https to plain http ({redact_url(request.url)})",
            request=request,
        )


async def arefuse_downgrade(request: httpx.Request) -> None:
    """`refuse_downgrade` for an `httpx.AsyncClient`."""
    refuse_downgrade(request)


def http_settings(
    *, timeout: httpx.Timeout, ca_bundle: object = None, extra_ca: object = None
) -> dict[str, Any]:
    """The keyword arguments of every httpx client civic311 creates: the client's own and the
    one that fetches a discovery document (`from_discovery`), so both trust the same CAs and
    refuse the same downgrades (issue 12 points 4 and 10)."""
    return {
        "timeout": timeout,
        "verify": tls_context(ca_bundle, extra_ca),
        "headers": {"User-Agent": USER_AGENT},
        "limits": POOL_LIMITS,
    }


#: The connection pool of an httpx client civic311 builds: httpx's own 100 connections, and
#: every one of them may stay open for reuse. httpx keeps only 20 by default, so `bulk` at a
#: concurrency above 20 closed a connection after most POSTs and opened a new one for the next
#: (a TCP and, for https, a TLS handshake per row): 640 rows at concurrency 32 opened 532
#: connections with httpx's default, 32 with these (tests/test_bulk.py pins it). An
#: ``http_client`` you pass in keeps the limits you gave it.
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)


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
    # Imported here: the profiles (a 48-field attrs class and its presets) load with the first
    # client, not with `import civic311` (issue 13).
    from civic311.profiles import PROFILES, SPEC, Profile

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
    from civic311.cities import check_usable, get

    city = get(name)
    check_usable(city, allow_retired=allow_retired)
    endpoints = key_off_plain_http(
        city.endpoints(environment),  # type: ignore[arg-type]
        options,
        f"the registry entry {city.key!r}",
        curated=True,
    )
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
    kept = key_off_plain_http([url for url, _ in chosen], options, "the discovery document")
    chosen = [(url, fmt) for url, fmt in chosen if url in kept]
    if discovery.contact and "other_channels" not in options:
        options["other_channels"] = [f"contact: {discovery.contact}"]
    return [url for url, _ in chosen], [fmt for _, fmt in chosen]


def _plain_http_off_machine(url: str) -> bool:
    # Loopback never leaves the machine (a FakeCity, a local proxy): nothing to intercept.
    host = (urlsplit(url).hostname or "").lower()
    loopback = host == "localhost" or host.startswith("127.") or host == "::1"
    return url.lower().startswith("http://") and not loopback


def key_off_plain_http(
    endpoints: Sequence[str], options: Mapping[str, Any], source: str, *, curated: bool = False
) -> list[str]:
    """*endpoints* from a registry or discovery document, fit to carry the caller's api_key.

    An api_key goes to a plain-http endpoint only when the caller named that endpoint
    (``Client("http://…", api_key=…)``), never because a document listed it (issue 12 point
    4): with a key, plain-http endpoints off this machine (loopback is exempt) are dropped
    when https ones remain, with a warning, and refused when none do.

    A *curated* source (the bundled registry: chosen by the caller by the city's name, and
    reviewed like the code) is used as listed: naming the city is naming its endpoints, and
    some cities offer no https at all (Chicago, Québec). Fetched documents are never curated.

    Raises:
        InvalidRequestError: an api_key, and only plain-http endpoints, from a fetched document.
    """
    if not options.get("api_key"):
        return list(endpoints)
    plain = [url for url in endpoints if _plain_http_off_machine(url)]
    if not plain:
        return list(endpoints)
    kept = [url for url in endpoints if url not in plain]
    if curated:
        return list(endpoints)
    if not kept:
        raise InvalidRequestError(
            "api_key",
            f"{source} lists only plain-http endpoints ({', '.join(plain)}), where the key "
            "would travel unencrypted; to send it there anyway, name the endpoint yourself: "
            "Client(endpoint, api_key=…)",
        )
    warnings.warn(
        f"{source} lists plain-http endpoints ({', '.join(plain)}); they are left out so the "
        "api_key never travels unencrypted",
        Civic311Warning,
        stacklevel=4,
    )
    return kept


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
    return Settings(jurisdiction_id=jurisdiction_id, api_key=api_key, profile=profile)


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
    ) -> None:
        self._endpoints = _endpoints(endpoints)
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
        if self._settings.api_key and self._profile.api_key_on_reads:
            guard_httpx_logs()
        self._timeout = timeout_of(timeout)
        # Read on every call (`_timeout_within`): worked out once. An unset one (None) is
        # unbounded, so the time left always bounds it.
        self._timeout_values: dict[str, float | None] = self._timeout.as_dict()
        self._timeout_longest = max(
            (math.inf if v is None else v for v in self._timeout_values.values()), default=0.0
        )
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
        # The pool loads with the first client, not with `import civic311` (issue 13).
        from civic311._resilience.pool import EndpointPool

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
        from civic311._resilience.pool import EndpointPool

        self._pool = EndpointPool(
            self._endpoints,
            wall=self._clock.now(),
            format=tuple(formats),
            failure_threshold=self._pool.failure_threshold,
            cooldown=self._pool.cooldown,
        )

    def health(self) -> list[EndpointHealth]:
        """Each endpoint's health: state (up, degraded, down), since when, the last error,
        consecutive failures, average latency and the format in use.

        This is what calls so far have seen; `probe` asks every endpoint now."""
        return self._pool.health()

    def _probed(self, endpoint: Endpoint, error: Civic311Error | None, latency: float) -> None:
        """Record one endpoint's answer to `probe`: only a services list counts as up."""
        now, wall = self._clock.monotonic(), self._clock.now()
        if error is None:
            self._pool.record_success(endpoint, latency=latency, now=now, wall=wall)
            return
        text = (str(error).splitlines() or [type(error).__name__])[0]
        self._pool.record_failure(endpoint, error=text[:300], now=now, wall=wall)

    def _probe_format(self, endpoint: Endpoint) -> Format:
        return "xml" if self._pool.format_of(endpoint) == "xml" else "json"

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

    def _submit_flow(self, request: NewRequest, call: Call[Receipt] | None = None) -> Flow[Receipt]:
        """POST *request* with duplicate safety: an unknown outcome is reconciled, never re-sent.

        The driver answers the POST with its receipt, or with `Unsettled` when the outcome is
        unknown (no exception steers this). The flow then waits what the retry policy decided
        and looks for the request it may have created (`_find_flow`) for at most
        ``reconcile_wait`` seconds: every look-up, with its own retries, ends by then too, so
        the whole submit ends by the retry deadline plus ``reconcile_wait`` (issue 11.6).
        Not found: `SubmissionUncertainError`, saying how long it actually looked. *call* is
        the request's POST when the caller built it already.
        """
        outcome: Receipt | Unsettled = yield (call or self._submit_call(request))
        if not isinstance(outcome, Unsettled):
            return self._remember(outcome)
        run, error = outcome.run, outcome.error
        yield Sleep(run.decision.wait if run.decision else 0.0)
        looking = self._clock.monotonic()
        with call_limit(looking + self._reconcile_wait):
            found = yield from self._find_flow(request, run.sent_at)
        if found is None:
            waited = self._clock.monotonic() - looking
            raise self._uncertain(request, run, error, waited) from error
        return self._remember(self._reconciled_receipt(found))

    def _find_flow(
        self, request: NewRequest, sent_at: datetime, exclude: frozenset[str] = frozenset()
    ) -> Flow[ServiceRequest | None]:
        return reconcile_flow(
            request,
            sent_at=sent_at,
            started=self._clock.monotonic(),
            budget=self._reconcile_wait,
            now=self._clock.now,
            exclude=frozenset(self._filed) | exclude,
        )

    @staticmethod
    def _check_exclude(exclude: object) -> frozenset[str]:
        if isinstance(exclude, str) or not isinstance(exclude, Collection):
            raise InvalidRequestError("exclude", "must be a collection of request ids")
        if not all(isinstance(item, str) for item in exclude):
            raise InvalidRequestError("exclude", "must hold request ids (strings)")
        return frozenset(exclude)

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
    def _check_offered(service_code: str, services: Sequence[Service]) -> None:
        """Refuse a service code the city's service list does not hold (``validate=True``)."""
        codes = [service.service_code for service in services]
        if service_code in codes:
            return
        shown = ", ".join(codes[:12]) + (", …" if len(codes) > 12 else "")
        raise InvalidRequestError(
            "service_code",
            f"{service_code!r} is not one of the city's {len(codes)} services ({shown}); "
            "list_services() (civic311 services) shows them. Nothing was sent.",
        )

    @staticmethod
    def _validated(request: NewRequest, definition: ServiceDefinition) -> NewRequest:
        # Imported on first use (validate=True): not part of `import civic311` (issue 13).
        from civic311.validation import check, sendable

        check(definition, request)
        return sendable(definition, request)

    @staticmethod
    def _reconciled_receipt(found: ServiceRequest) -> Receipt:
        return Receipt(
            service_request_id=found.service_request_id,
            token=found.token,
            service_notice=found.service_notice,
            reconciled=True,
        )

    def _uncertain(
        self, request: NewRequest, run: CallRun, error: Civic311Error, waited: float
    ) -> SubmissionUncertainError[NewRequest]:
        # What was actually waited, not what was allowed (issue 11.6): a look-up may end early
        # on the submit's deadline, or take longer than the budget on a slow server.
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return SubmissionUncertainError(
            f"submit: the city may or may not have filed this request ({first}); it was not "
            f"found on the server after looking for {waited:.1f}s (reconcile_wait="
            f"{self._reconcile_wait:g}s) and was not sent again. "
            "Keep the request (error.request) and check later, or use a civic311.outbox.Outbox.",
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
        values = self._timeout_values
        if left > self._timeout_longest:
            return dict(values)  # the common case: the call's time left bounds nothing
        return {k: left if v is None else min(v, left) for k, v in values.items()}

    # --- call building -----------------------------------------------------------------------

    def _submit_call(self, request: NewRequest) -> Call[Receipt]:
        return submit_call(
            request,
            multivalue=self._profile.multivalue,
            media=self._profile.media,
            max_media_bytes=self._profile.max_media_bytes,
            form_names=self._profile.form_names,
        )

    def _watch(
        self,
        items: object,
        ledger: StatusStore | None,
        *,
        interval: float,
        max_interval: float,
        timeout: float | None,
    ) -> Watch:
        from civic311.tracking import StatusStore, Watch

        if ledger is not None and not isinstance(ledger, StatusStore):
            raise InvalidRequestError(
                "ledger",
                f"must be a civic311.ledger.Ledger (a tracking.StatusStore), not {ledger!r}",
            )
        if timeout is not None and (isinstance(timeout, bool) or timeout < 0):
            raise InvalidRequestError("timeout", f"must be seconds ≥ 0 or None, not {timeout!r}")

        endpoint = self._endpoints[0]

        def known(rid: str) -> tuple[str | None, str | None, datetime | None] | None:
            return ledger.last_seen(endpoint, rid) if ledger is not None else None

        return Watch(
            items,
            lookup=self._lookup_flow,
            known=known,
            now=self._clock.now,
            started=self._clock.monotonic(),
            interval=interval,
            max_interval=max_interval,
            deadline=timeout,
        )

    def _observed(
        self, ledger: StatusStore | None, watch: Watch, changes: Sequence[StatusChange] = ()
    ) -> None:
        """Record what a tracking round saw in the status store, under this client's primary
        endpoint: tokens it turned into ids, and the requests that changed (the ledger keeps
        only changes)."""
        resolved = watch.take_resolved()
        if ledger is None:
            return
        now = self._clock.now()
        endpoint = self._endpoints[0]
        for token, service_request_id in resolved:
            ledger.record_resolved(endpoint, token, service_request_id, now)
        for change in changes:
            ledger.record_seen(endpoint, change.request, now)

    def _check_required(self, request: NewRequest) -> None:
        """The fields this city requires in practice (its profile), before anything is sent."""
        for name in self._profile.required_fields:
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
        profile = self._profile
        return PageRule(
            style=profile.paging,
            page_size=profile.page_size,
            first_page=profile.first_page,
            result_cap=profile.result_cap,
            max_pages=max_pages,
        )

    def _pages(self, call: Call[list[T]]) -> Flow[Collected[T]]:
        """*call* and the pages after it, as the server's headers or the profile say."""
        if call.operation == "list_services":
            # The profile's paging is GET requests' (§8.1); services page only when the
            # server says so in its headers (6aika sends X-Page-* there too).
            rule = PageRule(result_cap=self._profile.result_cap)
            return paged_flow(call, rule, _service_key)
        key: Any = request_key
        return paged_flow(call, self._page_rule(), key)

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
        elif got.capped and not self._profile.ignores_filters:
            warnings.warn(
                f"list_requests got {len(found)} requests, the server's cap: the answer is "
                "probably cut short; iter_requests harvests the whole span",
                Civic311Warning,
                stacklevel=3,
            )
        if service_request_id is not None:
            wanted = id_set(service_request_id)
            return [r for r in found if r.service_request_id in wanted]
        from civic311.harvest import filter_sets, keep  # loaded on first use (issue 13)

        codes, statuses = filter_sets(service_code, status)
        if codes is None and statuses is None and start_date is None and end_date is None:
            return found
        low = start_date or datetime.min.replace(tzinfo=timezone.utc)
        high = end_date or datetime.max.replace(tzinfo=timezone.utc)
        return [r for r in found if keep(r, low, high, codes, statuses)]

    def _harvest(
        self,
        start_date: datetime,
        end_date: datetime,
        service_code: str | Sequence[str] | None,
        status: str | Sequence[str] | None,
    ) -> Harvest:
        from civic311.harvest import Harvest  # loaded on first use (issue 13)

        profile = self._profile
        return Harvest(
            start=start_date,
            end=end_date,
            service_code=service_code,
            status=status,
            result_cap=profile.result_cap,
            max_window_days=profile.max_window_days,
            paging=profile.paging,
            page_size=profile.page_size,
            first_page=profile.first_page,
            date_zone=self._settings.date_zone,
            # No longer off for servers that ignore filters: the flow notices a server that
            # ignores dates from its answers (issue 11 point 8).
            split_capped=True,
        )

    def _wait_flow(self, token: str, timeout: float) -> Flow[str]:
        profile = self._profile
        return wait_for_id_flow(
            token,
            timeout=timeout,
            started=self._clock.monotonic(),
            first_interval=profile.poll_interval,
            max_interval=profile.max_poll_interval,
            pending_404=profile.token_404_pending,
        )

    def _lookup_flow(self, ids: object) -> Flow[list[ServiceRequest]]:
        """Look *ids* up by id (`civic311._protocol.lookup_flow`): the distinct ids asked, in
        order, that the city has."""
        wanted, chunks = self._id_chunks(ids)
        return lookup_flow(
            wanted, chunks, date_zone=self._settings.date_zone, rule=self._page_rule()
        )

    def _id_chunks(self, ids: object) -> tuple[list[str], list[list[str]]]:
        """The distinct ids asked, in order, and their chunks: URLs of at most 2,000
        characters, and no more ids than one answer holds."""
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
        profile = self._profile
        most = min(profile.result_cap, profile.page_size or profile.result_cap)
        return wanted, chunk_ids(wanted, base_length, MAX_URL_LENGTH, most)

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
