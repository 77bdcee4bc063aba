"""The endpoint pool: which of a city's endpoints to try, in what order, and how each is doing.

A client is configured with one or more base URLs: the primary first, then fallbacks (a mirror,
a vendor's second host, the city's older path). The pool keeps a small circuit breaker per
endpoint so that outages are visible (`EndpointPool.health`) and so that, once an endpoint is
known to be down, calls stop paying its timeout: they skip it until a cool-down has passed, and
then exactly one call at a time probes it.

State machine of one endpoint::

                 success                    failure (consecutive < K)
              +----------+                 +---------+
              |          v                 |         v
            +---------------+  failure   +-------------+
    start ->|      UP       |----------->|  DEGRADED   |
            +---------------+            +-------------+
                ^       ^     success          |
                |       +----------------------+ K consecutive failures
                |                              v
                |                        +-------------+
                |                        |    DOWN     |<----------------+
                |                        | (cooling    |                 |
                |                        |  down)      |                 | probe fails:
                |                        +-------------+                 | fresh cool-down
                |                              | cool-down over:         |
                |                              v one caller gets it      |
                |     probe succeeds     +-------------+                 |
                +------------------------|  HALF-OPEN  |-----------------+
                                         |  (probing)  |
                                         +-------------+

K is ``failure_threshold`` (3 by default; with K = 1 the first failure goes straight to DOWN).
HALF-OPEN is not a separate `EndpointState`: the endpoint stays DOWN (it is still down as far as
anyone knows) while one caller holds its probe. While the probe is out, other callers skip the
endpoint; if the prober vanishes without reporting, the probe expires after ``probe_timeout``
seconds, or at once when the prober calls `EndpointPool.release`.

"Failure" and "success" are what the client reports: transport errors, 429 and 5xx responses
and undecodable bodies are failures of the endpoint; a 4xx such as 404 is a perfectly healthy
server saying no, and should be reported as a success.

Endpoint-level and resource-level failures (issue 11.4). Refusals, resets, timeouts, 429,
502/503/504 and unreadable 2xx bodies (an HTML maintenance page) say the *endpoint* is in
trouble: each one counts towards K. A plain 500 may be one resource's bug instead:
mySociety's open311-adapter answers 500 for an unknown request id
(reference/real-servers/B_request_unknown_99999.json), and retrying that id must not take the
whole endpoint down for every other call. So the client reports a 500 with the *resource* it
came from (the operation, e.g. ``"get_request"``), and a resource counts towards K only once
between two successes: 500s across different calls still open the breaker, one call's 500s
(or its retries) do not. While an endpoint is down, any failure restarts its cool-down.

Thread safety: one `threading.Lock` guards all state. It is only held for a few assignments,
never across I/O or an ``await``, so the same pool serves a `Client` used from many threads and
an `AsyncClient` on an event loop.

Time is passed in, never read: ``now`` is monotonic seconds (cool-downs), ``wall`` a
timezone-aware `datetime` (what users see in `EndpointHealth.since`).
"""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import SupportsFloat, SupportsIndex

import attrs

from civic311._record import Record
from civic311._resilience.retry import to_float

__all__ = [
    "Endpoint",
    "EndpointHealth",
    "EndpointPool",
    "EndpointState",
    "FORMATS",
]

#: Response formats GeoReport v2 defines (the ``.json`` / ``.xml`` URL suffix).
FORMATS: frozenset[str] = frozenset({"json", "xml"})


class EndpointState(str, enum.Enum):
    """Health of an endpoint. The values are plain strings: ``state == "down"`` works."""

    UP = "up"
    """Working, as far as we know (also the state before the first call)."""
    DEGRADED = "degraded"
    """The last call (or few) failed, but not enough in a row to give up on it."""
    DOWN = "down"
    """``failure_threshold`` failures in a row: skipped until its cool-down has passed."""


class Endpoint(Record):
    """A handle on one endpoint of a pool, handed out by `EndpointPool.candidates`.

    Pass it back to `EndpointPool.record_success` / `EndpointPool.record_failure`.

    Attributes:
        index: Position in the configured order (0 is the primary).
        url: The endpoint's base URL, exactly as configured.
        probe: Non-zero when this handle carries the half-open probe of a down endpoint (a ticket
            number, so a late report from an expired probe cannot release a newer one). Not part
            of equality: the same endpoint compares equal with or without a probe.
    """

    __slots__ = ("index", "probe", "url")
    _uncompared = frozenset({"probe"})

    index: int
    url: str
    probe: int

    def __init__(self, index: int, url: str, probe: int = 0) -> None:
        self._set(index=index, url=url, probe=probe)

    @property
    def is_probe(self) -> bool:
        """True when this call is the half-open probe of a down endpoint."""
        return self.probe != 0


@attrs.frozen
class EndpointHealth:
    """A snapshot of one endpoint's health, as returned by ``client.health()``.

    Attributes:
        url: The endpoint's base URL.
        state: Up, degraded or down.
        since: Wall time of the last state change (or of the pool's creation).
        last_error: The last failure, already redacted by the client; kept after recovery.
        consecutive_failures: Failures since the last success.
        latency_avg: Exponentially weighted average latency of successful calls, in seconds;
            None before the first success.
        format: The response format currently used for this endpoint (``"json"``/``"xml"``).
        format_switched: True when ``format`` differs from the configured one (the client fell
            back to the other format because this server's answers were unreadable).
        calls: Calls reported, successes and failures.
        failures: Failures reported.
        next_probe_at: For a down endpoint, the wall time after which it will be probed again;
            None otherwise.
    """

    url: str
    state: EndpointState
    since: datetime
    last_error: str | None
    consecutive_failures: int
    latency_avg: float | None
    format: str
    format_switched: bool
    calls: int
    failures: int
    next_probe_at: datetime | None = None


class _Slot:
    """Mutable bookkeeping for one endpoint; only touched under the pool's lock."""

    # A plain slotted class, not attrs: internal, never compared or printed, and attrs' class
    # construction for its 18 fields cost `import civic311` ~0.5 ms (issue 13).
    __slots__ = (
        "calls",
        "configured_format",
        "consecutive_failures",
        "down_until",
        "down_until_wall",
        "failing_resources",
        "failures",
        "format",
        "handle",
        "last_error",
        "last_exception",
        "latency_avg",
        "probe_expires",
        "probe_ticket",
        "since",
        "state",
        "tickets_issued",
        "url",
    )

    def __init__(self, url: str, configured_format: str, format: str, since: datetime) -> None:
        self.url = url
        self.configured_format = configured_format
        self.format = format
        self.since = since
        self.state = EndpointState.UP
        self.last_error: str | None = None
        self.consecutive_failures = 0
        self.latency_avg: float | None = None
        self.calls = 0
        self.failures = 0
        # Monotonic time before which a down endpoint is not offered, and its wall-clock twin.
        self.down_until = -math.inf
        self.down_until_wall: datetime | None = None
        # The outstanding half-open probe: its ticket (0 = none) and when it expires (monotonic).
        self.probe_ticket = 0
        self.probe_expires = -math.inf
        self.tickets_issued = 0
        # Resources whose 500s have counted towards the breaker since the last success.
        self.failing_resources: set[str] = set()
        # The last failure's exception object (the client's error), for AllEndpointsFailedError.
        self.last_exception: BaseException | None = None
        # The handle offered while the endpoint is not down: frozen, so one serves every call.
        self.handle: Endpoint | None = None

    def clear_probe(self) -> None:
        self.probe_ticket = 0
        self.probe_expires = -math.inf

    def change_state(self, state: EndpointState, wall: datetime) -> None:
        if state is not self.state:
            self.state = state
            self.since = wall


def _urls_converter(urls: Sequence[str] | str) -> tuple[str, ...]:
    # A lone string is one URL, not a sequence of one-character URLs.
    return (urls,) if isinstance(urls, str) else tuple(urls)


def _check_urls(value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("urls must name at least one endpoint")
    for url in value:
        if not isinstance(url, str) or not url.strip():
            raise ValueError(f"urls must be non-empty strings, got {url!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"urls must not repeat an endpoint, got {list(value)!r}")


def _formats_converter(value: str | Sequence[str]) -> str | tuple[str, ...]:
    return value if isinstance(value, str) else tuple(value)


def _check_format(urls: tuple[str, ...], value: str | tuple[str, ...]) -> None:
    formats: list[object] = [value] if isinstance(value, str) else list(value)
    if isinstance(value, str) or len(formats) == len(urls):
        bad = [fmt for fmt in formats if fmt not in FORMATS]
        if not bad:
            return
        raise ValueError(f"format must be 'json' or 'xml', got {bad[0]!r}")
    raise ValueError(f"format must be one string or one per URL ({len(urls)}), got {len(formats)}")


def _check_threshold(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_seconds(name: str, value: float) -> None:
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")


def _check_alpha(name: str, value: float) -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")


class EndpointPool:
    """The endpoints of one city, in order, each with a health state and a circuit breaker.

    Args:
        urls: Base URLs, primary first (a single string is one endpoint).
        wall: Wall time now (timezone-aware); the initial ``since`` of every endpoint.
        format: The response format to start with: one for all endpoints, or one per URL.
        failure_threshold: Consecutive failures that take an endpoint down (K).
        cooldown: Seconds a down endpoint is skipped before it is probed again.
        latency_alpha: Weight of the newest sample in the latency average (EWMA).
        probe_timeout: Seconds after which a probe that never reported is given to the next
            caller.

    Raises:
        ValueError: An argument is out of range; the message names it.

    Example:
        >>> from datetime import datetime, timezone
        >>> pool = EndpointPool(["https://a.example/v2", "https://b.example/v2"],
        ...                     wall=datetime(2024, 1, 1, tzinfo=timezone.utc))
        >>> [e.url for e in pool.candidates(now=0.0)]
        ['https://a.example/v2', 'https://b.example/v2']
    """

    # A plain class, not attrs (issue 13): internal, compared by identity, and attrs' class
    # construction cost `import civic311` ~0.5 ms. Arguments are converted, then checked in
    # order, as the attrs fields did.
    __slots__ = (
        "_lock",
        "_slots",
        "cooldown",
        "failure_threshold",
        "format",
        "latency_alpha",
        "probe_timeout",
        "urls",
        "wall",
    )

    def __init__(
        self,
        urls: Sequence[str] | str,
        *,
        wall: datetime,
        format: str | Sequence[str] = "json",
        failure_threshold: int = 3,
        cooldown: SupportsFloat | SupportsIndex | str = 30.0,
        latency_alpha: SupportsFloat | SupportsIndex | str = 0.3,
        probe_timeout: SupportsFloat | SupportsIndex | str = 30.0,
    ) -> None:
        self.urls: tuple[str, ...] = _urls_converter(urls)
        self.wall = wall
        self.format: str | tuple[str, ...] = _formats_converter(format)
        self.failure_threshold = failure_threshold
        self.cooldown = to_float(cooldown)
        self.latency_alpha = to_float(latency_alpha)
        self.probe_timeout = to_float(probe_timeout)
        _check_urls(self.urls)
        _check_format(self.urls, self.format)
        _check_threshold("failure_threshold", failure_threshold)
        _check_seconds("cooldown", self.cooldown)
        _check_alpha("latency_alpha", self.latency_alpha)
        _check_seconds("probe_timeout", self.probe_timeout)
        self._lock = threading.Lock()
        formats = [self.format] * len(self.urls) if isinstance(self.format, str) else self.format
        self._slots = [
            _Slot(url=url, configured_format=fmt, format=fmt, since=wall)
            for url, fmt in zip(self.urls, formats, strict=True)
        ]

    def __repr__(self) -> str:
        return (
            f"EndpointPool(urls={self.urls!r}, format={self.format!r}, "
            f"failure_threshold={self.failure_threshold!r}, cooldown={self.cooldown!r}, "
            f"latency_alpha={self.latency_alpha!r}, probe_timeout={self.probe_timeout!r})"
        )

    # ----------------------------------------------------------------------------------------
    # Choosing

    def candidates(self, now: float) -> list[Endpoint]:
        """The endpoints to try for one call, in configured order (primary first).

        Endpoints that are up or degraded are always offered. A down endpoint is skipped while
        it cools down; once the cool-down has passed it is offered to one caller as a half-open
        probe (``Endpoint.is_probe``), and skipped by everyone else until that probe reports
        (`record_success` / `record_failure`), is released (`release`), or expires.

        Args:
            now: Monotonic time now, in seconds.

        Returns:
            The endpoints to try, in order. Empty when every endpoint is down and cooling (or
            being probed by someone else): raise at once rather than pay a known-dead timeout.
        """
        offered: list[Endpoint] = []
        with self._lock:
            for index, slot in enumerate(self._slots):
                if slot.state is not EndpointState.DOWN:
                    if slot.handle is None:
                        slot.handle = Endpoint(index, slot.url)
                    offered.append(slot.handle)
                    continue
                if now < slot.down_until:
                    continue  # still cooling down
                if slot.probe_ticket and now < slot.probe_expires:
                    continue  # another caller holds the probe
                slot.tickets_issued += 1
                slot.probe_ticket = slot.tickets_issued
                slot.probe_expires = now + self.probe_timeout
                offered.append(Endpoint(index, slot.url, probe=slot.probe_ticket))
        return offered

    def next_offer_in(self, now: float) -> float | None:
        """Seconds until `candidates` may offer an endpoint again, when it offers none now.

        The soonest end of a cool-down, or of another caller's outstanding probe (at the
        latest its expiry). None when nothing is down (candidates are on offer now).
        """
        with self._lock:
            waits = []
            for slot in self._slots:
                if slot.state is not EndpointState.DOWN:
                    return None
                ready = slot.down_until
                if slot.probe_ticket:
                    ready = max(ready, slot.probe_expires)
                waits.append(max(ready - now, 0.0))
        return min(waits) if waits else None

    def release(self, endpoint: Endpoint) -> None:
        """Give back a probe that was not used (e.g. an earlier endpoint answered first).

        A no-op for endpoints that are not probes, and for probes already reported or expired,
        so it is safe to call on every candidate a call did not try.
        """
        with self._lock:
            slot = self._slot(endpoint)
            if endpoint.probe and slot.probe_ticket == endpoint.probe:
                slot.clear_probe()

    # ----------------------------------------------------------------------------------------
    # Reporting

    def record_success(
        self, endpoint: Endpoint, *, latency: float, now: float, wall: datetime
    ) -> None:
        """Report a call that got a usable answer from ``endpoint``.

        The endpoint is up again (whatever it was), its consecutive failures reset, and
        ``latency`` joins the average: ``avg = alpha * latency + (1 - alpha) * avg``.

        Args:
            endpoint: The handle from `candidates`.
            latency: Seconds the call took.
            now: Monotonic time now (accepted for symmetry; success has no timer).
            wall: Wall time now, the new ``since`` if the state changes.
        """
        del now  # a success starts no timer
        with self._lock:
            slot = self._slot(endpoint)
            slot.calls += 1
            slot.consecutive_failures = 0
            slot.clear_probe()
            slot.down_until = -math.inf
            slot.down_until_wall = None
            if slot.failing_resources:
                slot.failing_resources.clear()
            slot.change_state(EndpointState.UP, wall)
            if math.isfinite(latency) and latency >= 0:
                if slot.latency_avg is None:
                    slot.latency_avg = latency
                else:
                    alpha = self.latency_alpha
                    slot.latency_avg = alpha * latency + (1 - alpha) * slot.latency_avg

    def record_failure(
        self,
        endpoint: Endpoint,
        *,
        error: str,
        now: float,
        wall: datetime,
        resource: str | None = None,
        exception: BaseException | None = None,
    ) -> None:
        """Report a call to ``endpoint`` that failed (transport error, 429, 5xx, bad body).

        The first failure makes the endpoint degraded; ``failure_threshold`` in a row make it
        down with a cool-down of ``cooldown`` seconds from ``now``. A failure while down (a
        failed probe, or a late report) starts a fresh cool-down.

        Args:
            endpoint: The handle from `candidates`.
            error: A short description, already redacted by the caller; stored as is.
            now: Monotonic time now, where the cool-down starts.
            wall: Wall time now, the new ``since`` if the state changes.
            resource: For a failure that may be one resource's own (a 500), what failed (the
                operation): it counts towards the breaker once per resource between two
                successes (module docstring). None for an endpoint-level failure.
            exception: The error itself, kept as the endpoint's last error
                (`last_exceptions`).
        """
        with self._lock:
            slot = self._slot(endpoint)
            slot.calls += 1
            slot.failures += 1
            slot.last_error = error
            slot.last_exception = exception
            was_down = slot.state is EndpointState.DOWN
            if resource is not None and not was_down:
                if resource in slot.failing_resources:
                    return  # this resource already counted: its own 500s are not an outage
                slot.failing_resources.add(resource)
            slot.consecutive_failures += 1
            if was_down or slot.consecutive_failures >= self.failure_threshold:
                slot.change_state(EndpointState.DOWN, wall)
                slot.down_until = now + self.cooldown
                slot.down_until_wall = wall + timedelta(seconds=self.cooldown)
                # The cool-down restarts, so any outstanding probe is moot.
                slot.clear_probe()
            else:
                slot.change_state(EndpointState.DEGRADED, wall)

    # ----------------------------------------------------------------------------------------
    # Formats

    def switch_format(self, endpoint: Endpoint, fmt: str) -> None:
        """Use ``fmt`` (``"json"`` or ``"xml"``) for ``endpoint`` from now on.

        Raises:
            ValueError: ``fmt`` is not a GeoReport v2 format.
        """
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be 'json' or 'xml', got {fmt!r}")
        with self._lock:
            self._slot(endpoint).format = fmt

    def format_of(self, endpoint: Endpoint) -> str:
        """The format currently used for ``endpoint``."""
        with self._lock:
            return self._slot(endpoint).format

    # ----------------------------------------------------------------------------------------
    # Reading

    def health(self) -> list[EndpointHealth]:
        """A consistent snapshot of every endpoint's health, in configured order."""
        with self._lock:
            return [
                EndpointHealth(
                    url=slot.url,
                    state=slot.state,
                    since=slot.since,
                    last_error=slot.last_error,
                    consecutive_failures=slot.consecutive_failures,
                    latency_avg=slot.latency_avg,
                    format=slot.format,
                    format_switched=slot.format != slot.configured_format,
                    calls=slot.calls,
                    failures=slot.failures,
                    next_probe_at=(
                        slot.down_until_wall if slot.state is EndpointState.DOWN else None
                    ),
                )
                for slot in self._slots
            ]

    def last_exceptions(self) -> dict[str, BaseException]:
        """Each endpoint's last reported failure (the error object), by URL, in order."""
        with self._lock:
            return {
                slot.url: slot.last_exception
                for slot in self._slots
                if slot.last_exception is not None
            }

    def endpoints(self) -> list[Endpoint]:
        """Every endpoint in configured order, healthy or not (for display and tests)."""
        return [Endpoint(index, url) for index, url in enumerate(self.urls)]

    def _slot(self, endpoint: Endpoint) -> _Slot:
        if not 0 <= endpoint.index < len(self._slots) or (
            self._slots[endpoint.index].url != endpoint.url
        ):
            raise ValueError(f"endpoint {endpoint.url!r} does not belong to this pool")
        return self._slots[endpoint.index]
