"""One call across attempts and endpoints: the bookkeeping both clients share. No I/O.

A client runs a `Call` as one plain loop (``_attempts`` in `civic311._client.async_client`)::

    while True:
        endpoint = run.next_endpoint()          # None: every endpoint is known down
        if endpoint is None:
            wait = run.recovery_wait()          # only if RetryPolicy(wait_for_recovery=True)
            if wait is None:
                raise run.unavailable()
            sleep(wait); continue
        try:
            return attempt(run, endpoint)       # reports run.succeeded / run.failed
        except Civic311Error as error:
            decision = run.decide(error)        # RetryPolicy.decide, pure
            if decision.action != "retry":
                raise run.failure(error)        # reconcile: the caller checks run.must_reconcile
            sleep(decision.wait)

The rules:

- **Where.** Endpoints come from the `EndpointPool` in configured order (primary first), minus
  those known to be down. A failure moves on to the next endpoint *at once* (no backoff before
  trying the mirror); once every endpoint has been tried, the round starts again after the
  policy's backoff.
- **When every endpoint is known down** (issue 11.5): the call fails at once — before any
  attempt, `AllEndpointsFailedError` saying when the next probe is due and naming the city's
  other channels; after attempts, the error rule below — unless the policy says
  ``wait_for_recovery=True`` and a cool-down ends before the deadline.
- **Whether.** `RetryPolicy.decide`: reads retry on transport errors, 429, 5xx and undecodable
  2xx bodies; other 4xx stop at once (the mirror would say the same); a POST is repeated only
  when it provably never reached a server, and otherwise *reconciled*.
- **What the breaker hears** (issue 11.4): every failure except a 4xx is reported to the pool;
  a 500 is reported with the operation it came from, so one resource's 500s (open311-adapter's
  answer to an unknown id) do not take the endpoint down (`EndpointPool.record_failure`).
- **Formats.** An endpoint that answers ``.json`` with XML, or with 404/406 and no parseable
  error body, is switched to XML for the rest of the client's life (many cities are XML only,
  reference §1.2); a JSON error body, an HTML page or truncated JSON never switches it.
- **What is raised** (issue 11.9, docs/errors.md): a fatal answer (400, 403, 404…) raises its
  own error. Giving up with ONE endpoint raises the last failure's own kind (`TransportError`,
  `ServerError`, `DecodeError`…); with several, `AllEndpointsFailedError`, keeping each
  endpoint's last error (``.errors``; ``__cause__`` is the last). Either way ``.attempts``
  lists every attempt.
- **How long.** No attempt starts after the deadline, and each exchange is bounded by the time
  left (`civic311._client.transport`). `call_limit` tightens the deadline for the calls made
  inside it: a submit's reconciliation shares the submit's budget (issue 11.6).

`reconcile_flow` is the sans-IO flow for a POST whose outcome is unknown: look for the request
it may have created, matched on what servers echo back.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from collections.abc import Callable, Generator, Iterator, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from civic311._clock import Clock
from civic311._protocol import Call, Sleep, Step, list_requests_call
from civic311._record import Record
from civic311._resilience.retry import Decision, Outcome, RetryPolicy, classify_status
from civic311._wire import Format, looks_html
from civic311.errors import (
    AllEndpointsFailedError,
    APIError,
    Attempt,
    Civic311Error,
    DecodeError,
    ResponseTooLargeError,
    TransportError,
)
from civic311.models import NewRequest, ServiceRequest

if TYPE_CHECKING:
    from civic311._resilience.pool import Endpoint, EndpointPool

__all__ = [
    "AttemptEvent",
    "AttemptHook",
    "CallRun",
    "Unsettled",
    "call_limit",
    "classify",
    "matches",
    "reconcile_flow",
    "wants_xml_fallback",
]

logger = logging.getLogger("civic311")

#: The client-clock monotonic time no call may run past, when a caller set one (`call_limit`).
_CALL_LIMIT: ContextVar[float | None] = ContextVar("civic311_call_limit", default=None)


class Unsettled(Record):
    """The driver's answer to a POST whose outcome is unknown (it may have created a request):
    the run (its attempts, decision and send time) and the error, for the submit flow to
    reconcile. A value, not an exception: nothing but the submit flow yields a POST."""

    __slots__ = ("error", "run")

    run: CallRun
    error: Civic311Error

    def __init__(self, run: CallRun, error: Civic311Error) -> None:
        self._set(run=run, error=error)


@contextlib.contextmanager
def call_limit(until: float) -> Iterator[None]:
    """Calls run inside end by *until* (client-clock monotonic), whatever their own deadline.

    Context variables follow the code path in threads and in async tasks alike, so the flows
    that make these calls need not pass the limit along.
    """
    outer = _CALL_LIMIT.get()
    token = _CALL_LIMIT.set(until if outer is None else min(outer, until))
    try:
        yield
    finally:
        _CALL_LIMIT.reset(token)


@attrs.frozen
class AttemptEvent:
    """What one attempt did, as handed to the ``on_attempt`` hook (and logged at DEBUG).

    Attributes:
        operation: The client method ("list_services", "submit", …).
        attempt: 1-based attempt number within the call.
        endpoint: The endpoint's base URL.
        format: The format asked.
        outcome: "ok", or the failure's kind ("never_sent", "retryable_status", …).
        error: The civic311 error of a failed attempt.
        latency: Seconds the attempt took.
        wait: Seconds waited before the next attempt (set once decided; 0 when failing over).
    """

    operation: str
    attempt: int
    endpoint: str
    format: str
    outcome: str
    error: Civic311Error | None = attrs.field(default=None, eq=False)
    latency: float = 0.0
    wait: float = 0.0


AttemptHook = Callable[[AttemptEvent], None]


def classify(error: Civic311Error, *, is_post: bool) -> Outcome:
    """The retry outcome of a civic311 error (see the module docstring)."""
    if isinstance(error, TransportError):
        return Outcome.AMBIGUOUS_TRANSPORT if error.sent else Outcome.NEVER_SENT
    if isinstance(error, APIError):
        return classify_status(error.status_code)
    if isinstance(error, ResponseTooLargeError):
        # The same body would be as large from any mirror; but a 2xx to a POST means something
        # was accepted, so find out rather than report failure.
        return Outcome.UNDECODABLE if is_post else Outcome.FATAL
    if isinstance(error, DecodeError):
        if error.status_code is not None:
            return classify_status(error.status_code, decodable=False)
        # A server answered something unreadable: for a POST that may mean "created".
        return Outcome.UNDECODABLE if is_post else Outcome.FATAL
    return Outcome.FATAL


def _resource_level(error: Civic311Error) -> bool:
    """A failure that may be one resource's own rather than the endpoint's: a plain 500.

    502/503/504 come from proxies and overloaded servers, refusals and timeouts from dead
    ones, HTML pages from maintenance: all about the endpoint. A 500 is often one resource's
    bug (open311-adapter answers 500 for an unknown id, real-servers/B_request_unknown_99999).
    """
    status = error.status_code if isinstance(error, APIError | DecodeError) else None
    return status == 500


def wants_xml_fallback(error: Civic311Error, fmt: Format) -> bool:
    """Whether a failed ``.json`` call says "this endpoint speaks XML only".

    True for 404 or 406 with no parseable error body: empty, plain text (open311-adapter
    answers an unknown extension with a text/plain 404, reference §5.2) or XML. A JSON error
    body is a real answer, and an HTML page (a proxy's or framework's 404) says nothing about
    formats: neither switches (docs/retries.md).
    """
    if fmt != "json" or not isinstance(error, APIError):
        return False
    if error.status_code not in (404, 406) or error.errors:
        return False
    head = error.body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] not in (b"[", b"{") and not looks_html(head)


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if len(text) <= 300 else text[:299] + "…"


class CallRun:
    """The state of one call while the client tries it: attempts, endpoints, the decision."""

    def __init__(
        self,
        call: Call[Any],
        *,
        pool: EndpointPool,
        policy: RetryPolicy,
        clock: Clock,
        rng: random.Random,
        retry_unsafe: bool = False,
        on_attempt: AttemptHook | None = None,
        other_channels: Sequence[str] = (),
    ) -> None:
        self.call = call
        self.pool = pool
        self.clock = clock
        self.rng = rng
        self.retry_unsafe = retry_unsafe
        self.on_attempt = on_attempt
        self.other_channels = other_channels
        self.started = started = clock.monotonic()
        limit = _CALL_LIMIT.get()
        # Past the caller's limit already: the call fails before any attempt. Right at it
        # (reconcile_wait=0: "look once"), it still gets one attempt.
        self.expired = limit is not None and limit < started
        if limit is not None and not self.expired and limit - started < policy.deadline:
            policy = attrs.evolve(policy, deadline=max(limit - started, 1e-3))
        self.policy = policy
        self.sent_at: datetime = clock.now()
        self.attempts: list[Attempt] = []
        self.decision: Decision | None = None
        self._tried: set[int] = set()
        self._outcome: Outcome = Outcome.OK
        self._error: Civic311Error | None = None
        self._event: AttemptEvent | None = None
        self._recovery_waits = 0

    # --- where -------------------------------------------------------------------------------

    def next_endpoint(self) -> Endpoint | None:
        """The endpoint for the next attempt, or None when the pool offers none."""
        if self.expired:
            return None
        offered = self.pool.candidates(self.clock.monotonic())
        if not offered:
            return None
        untried = [e for e in offered if e.index not in self._tried]
        if not untried:
            self._tried.clear()  # a new round over every endpoint
            untried = offered
        chosen = untried[0]
        for other in offered:
            if other is not chosen and other.is_probe:
                self.pool.release(other)  # let another caller probe it
        self._tried.add(chosen.index)
        return chosen

    def recovery_wait(self) -> float | None:
        """Seconds to wait for an endpoint's cool-down to end, or None to give up now.

        Only with ``RetryPolicy(wait_for_recovery=True)``, and only when a cool-down ends
        before the deadline: no request is sent meanwhile, so this is not paying a dead
        endpoint's timeout. The waits are counted, at most ``policy.attempts`` of them.
        """
        if self.expired or not self.policy.wait_for_recovery:
            return None
        if self._recovery_waits >= self.policy.attempts:
            return None
        wait = self.pool.next_offer_in(self.clock.monotonic()) or 0.0
        if wait >= self.time_left():
            return None
        self._recovery_waits += 1
        return wait

    def format_for(self, endpoint: Endpoint) -> Format:
        """The format this endpoint is asked in now."""
        return "xml" if self.pool.format_of(endpoint) == "xml" else "json"

    def time_left(self) -> float:
        """Seconds left before the call's deadline."""
        return self.policy.deadline - (self.clock.monotonic() - self.started)

    # --- reporting ---------------------------------------------------------------------------

    def succeeded(self, endpoint: Endpoint, fmt: Format, actual: Format, latency: float) -> None:
        """Report a usable answer; an XML answer to ``.json`` switches the endpoint to XML."""
        self.pool.record_success(
            endpoint, latency=latency, now=self.clock.monotonic(), wall=self.clock.now()
        )
        if actual != fmt:
            self.switch_format(endpoint, actual)
        self.decision = _OK
        if self.on_attempt is not None:
            self.on_attempt(
                AttemptEvent(
                    operation=self.call.operation,
                    attempt=len(self.attempts) + 1,
                    endpoint=endpoint.url,
                    format=fmt,
                    outcome="ok",
                    latency=latency,
                )
            )

    def switch_format(self, endpoint: Endpoint, fmt: Format) -> None:
        """Use *fmt* for *endpoint* for the rest of the client's life (visible in health)."""
        logger.info("endpoint %s answers %s; using %s from now on", endpoint.url, fmt, fmt)
        self.pool.switch_format(endpoint, fmt)

    def failed(self, endpoint: Endpoint, fmt: Format, error: Civic311Error, latency: float) -> None:
        """Report a failed attempt: to the pool (a 4xx is a healthy server), and to the log."""
        self._outcome = classify(error, is_post=self.call.is_post)
        self._error = error
        now, wall = self.clock.monotonic(), self.clock.now()
        short = _short(error)
        if self._outcome is Outcome.FATAL:
            self.pool.record_success(endpoint, latency=latency, now=now, wall=wall)
        else:
            self.pool.record_failure(
                endpoint,
                error=short,
                now=now,
                wall=wall,
                resource=self.call.operation if _resource_level(error) else None,
                exception=error,
            )
        self.attempts.append(
            Attempt(
                endpoint=endpoint.url, number=len(self.attempts) + 1, outcome=short, error=error
            )
        )
        self._event = AttemptEvent(
            operation=self.call.operation,
            attempt=len(self.attempts),
            endpoint=endpoint.url,
            format=fmt,
            outcome=self._outcome.value,
            error=error,
            latency=latency,
        )
        logger.debug(
            "%s attempt %d on %s failed (%s): %s",
            self.call.operation,
            len(self.attempts),
            endpoint.url,
            self._outcome.value,
            short,
        )

    def _publish(self, wait: float) -> None:
        """The failed attempt's wait is known: record it, and hand the event to the hook."""
        event, self._event = self._event, None
        if self.attempts:
            self.attempts[-1] = attrs.evolve(self.attempts[-1], wait=wait)
        if event is not None and self.on_attempt is not None:
            self.on_attempt(attrs.evolve(event, wait=wait))

    # --- whether -----------------------------------------------------------------------------

    def decide(self, error: Civic311Error) -> Decision:
        """What follows the failed attempt just reported (`RetryPolicy.decide`)."""
        status = error.status_code if isinstance(error, APIError) else None
        retry_after = error.retry_after if isinstance(error, APIError) else None
        decision = self.policy.decide(
            outcome=self._outcome,
            is_post=self.call.is_post,
            status_code=status,
            retry_after=retry_after,
            attempt=len(self.attempts),
            elapsed=self.clock.monotonic() - self.started,
            rng=self.rng,
            retry_unsafe=self.retry_unsafe,
        )
        if decision.action == "retry" and retry_after is None and self._untried_left():
            # Fail over at once: backing off only makes sense before asking the same server.
            decision = Decision("retry", 0.0, decision.reason + "; failing over")
        self.decision = decision
        self._publish(decision.wait if decision.action != "stop" else 0.0)
        if decision.action != "retry":
            logger.debug("%s: %s (%s)", self.call.operation, decision.action, decision.reason)
        return decision

    def _untried_left(self) -> bool:
        offered = self.pool.candidates(self.clock.monotonic())
        left = any(e.index not in self._tried for e in offered)
        for endpoint in offered:
            if endpoint.is_probe:
                self.pool.release(endpoint)
        return left

    # --- what is raised ----------------------------------------------------------------------

    @property
    def must_reconcile(self) -> bool:
        """The call was a POST whose outcome is unknown."""
        return self.decision is not None and self.decision.action == "reconcile"

    def failure(self, error: Civic311Error) -> Civic311Error:
        """The error the caller sees once the loop has given up with *error* (issue 11.9)."""
        if isinstance(error, AllEndpointsFailedError):
            return error
        error.attempts = list(self.attempts)
        if (
            self._outcome is Outcome.FATAL
            or len(self.pool.urls) == 1
            or (len(self.attempts) <= 1 and self.policy.attempts <= 1)
        ):
            return error  # its own kind, with every attempt attached
        reason = self.decision.reason if self.decision is not None else ""
        final = AllEndpointsFailedError(
            self.call.operation,
            self.attempts,
            other_channels=self.other_channels,
            reason=f"gave up: {reason}" if reason else "",
            errors=self._endpoint_errors(),
        )
        final.__cause__ = error
        return final

    def unavailable(self) -> Civic311Error:
        """The error for a call the pool offers no endpoint to (every one known down)."""
        if self._error is not None:
            # The call's own failures opened the last circuit: give up as on a "stop".
            self.decision = Decision("stop", 0.0, "every endpoint is down")
            return self.failure(self._error)
        now = self.clock.monotonic()
        if self.expired:
            reason, next_probe = "no time left before the caller's deadline", None
        else:
            wait = self.pool.next_offer_in(now) or 0.0
            next_probe = self.clock.now() + timedelta(seconds=wait)
            reason = (
                "every endpoint is known to be down; the next probe is due at "
                f"{next_probe:%H:%M:%S} UTC (in {wait:.0f}s). Not waiting: "
                "RetryPolicy(wait_for_recovery=True) waits for it"
            )
        errors = self._endpoint_errors()
        error = AllEndpointsFailedError(
            self.call.operation,
            [],
            other_channels=self.other_channels,
            reason=reason,
            errors=errors,
            next_probe_at=next_probe,
        )
        error.__cause__ = next(reversed(errors.values()), None)
        return error

    def _endpoint_errors(self) -> dict[str, Civic311Error]:
        """Each endpoint's last error: this call's, else the one the pool last heard."""
        errors = {
            url: e for url, e in self.pool.last_exceptions().items() if isinstance(e, Civic311Error)
        }
        for attempt in self.attempts:
            if attempt.error is not None:
                errors[attempt.endpoint] = attempt.error
        return {url: errors[url] for url in self.pool.urls if url in errors}


_OK = Decision("stop", 0.0, "ok")


# --- reconciliation --------------------------------------------------------------------------

#: Servers stamp requested_datetime with their own clock: allow this much skew either way.
CLOCK_SKEW = timedelta(minutes=5)

#: Two points this close (in degrees, about 11 m at the equator) are the same place.
SAME_PLACE = 1e-4


def _norm_text(text: str | None) -> str | None:
    return " ".join(text.split()).casefold() if text else None


def matches(request: NewRequest, candidate: ServiceRequest, sent_at: datetime) -> bool:
    """Whether *candidate* is the request a POST of *request* at *sent_at* may have created.

    The rule (docs/retries.md, keep in sync): the service_code is the same; the
    requested_datetime, when the server gives one, is no earlier than *sent_at* minus the clock
    skew allowance; and at least one echoed field confirms it while none contradicts it —
    the description (whitespace and case aside) and the location (lat/long within about 11 m,
    or the same address text when the request had no coordinates; an echoed (0, 0) is an
    unknown place, neither confirming nor contradicting). Fields servers do not return, such
    as email or name, are never used.
    """
    if candidate.service_code is not None and candidate.service_code != request.service_code:
        return False
    when = candidate.requested_datetime
    if when is not None and when < sent_at - CLOCK_SKEW:
        return False
    confirmed = False
    want, got = _norm_text(request.description), _norm_text(candidate.description)
    if want and got:
        if want != got:
            return False
        confirmed = True
    # (0, 0) echoed back means "not stored", not a place off Africa: open311-adapter's
    # backends drop coordinates and answer lat/long 0 (reference real-servers/B_request_0).
    unknown_place = candidate.lat == 0 and candidate.long == 0
    if (
        request.lat is not None
        and candidate.lat is not None
        and candidate.long is not None
        and not unknown_place
    ):
        assert request.long is not None
        if not (
            math.isclose(request.lat, candidate.lat, abs_tol=SAME_PLACE)
            and math.isclose(request.long, candidate.long, abs_tol=SAME_PLACE)
        ):
            return False
        confirmed = True
    elif request.lat is None and request.address_string and candidate.address:
        if _norm_text(request.address_string) != _norm_text(candidate.address):
            return False
        confirmed = True
    return confirmed


def reconcile_flow(
    request: NewRequest,
    *,
    sent_at: datetime,
    started: float,
    budget: float,
    now: Callable[[], datetime],
    interval: float = 1.0,
    exclude: frozenset[str] = frozenset(),
) -> Generator[Step, Any, ServiceRequest | None]:
    """Look for the request an ambiguous POST of *request* may have created.

    Asks GET requests for the service_code over a window from *sent_at* minus the clock skew
    allowance to now plus that allowance, and picks the closest match (`matches`). Not found
    yet — batch servers create requests late — it looks again every *interval* seconds
    (doubling) until *budget* seconds have passed. An endpoint error during a look is a miss,
    not a verdict. Requests in *exclude* — ones this client already holds a receipt for — are
    never taken for it: a second, identical report must not be "found" as the first one.

    Returns:
        The matching `ServiceRequest`, or None when nothing matched within the budget.
    """
    monotonic = started
    wait = interval
    while True:
        call: Call[list[ServiceRequest]] = list_requests_call(
            service_code=request.service_code,
            start_date=sent_at - CLOCK_SKEW,
            end_date=now() + CLOCK_SKEW,
        )
        try:
            found: list[ServiceRequest] = yield call
        except Civic311Error as exc:
            logger.debug("reconcile look-up failed: %s", _short(exc))
            found = []
        hits = [
            r for r in found if r.service_request_id not in exclude and matches(request, r, sent_at)
        ]
        if hits:
            return min(
                hits,
                key=lambda r: abs((r.requested_datetime or sent_at) - sent_at).total_seconds(),
            )
        left = started + budget - monotonic
        if left <= 0:
            return None
        monotonic = yield Sleep(min(wait, left))
        wait = min(wait * 2, 10.0)
