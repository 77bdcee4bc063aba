"""One call across attempts and endpoints: the bookkeeping both clients share. No I/O.

A client executes a `Call` as a tenacity loop. Each attempt asks `CallRun.next_endpoint` where
to go, sends there, and reports back with `succeeded` or `failed`; tenacity asks
`CallRun.decide` whether to go on. The rules:

- **Where.** Endpoints come from the `EndpointPool` in configured order (primary first), minus
  those known to be down. A failure moves on to the next endpoint *at once* (no backoff before
  trying the mirror); once every endpoint has been tried, the round starts again after the
  policy's backoff. When the pool offers nothing (every endpoint down and cooling), the call
  fails at once with `AllEndpointsFailedError` instead of paying a known-dead timeout.
- **Whether.** `civic311._resilience.retry.decide`: reads retry on transport errors, 429, 5xx
  and undecodable 2xx bodies; other 4xx stop at once (the mirror would say the same); a POST is
  repeated only when it provably never reached a server, and otherwise *reconciled*.
- **Formats.** An endpoint that answers ``.json`` with XML, or with 404/406 and no parseable
  error body, is switched to XML for the rest of the client's life (many cities are XML only,
  reference §1.2); a JSON error body, an HTML page or truncated JSON never switches it.
- **What is raised.** A fatal answer (400, 403, 404…) raises its own error. Giving up on
  retryable failures raises `AllEndpointsFailedError`, listing every attempt.

`reconcile_flow` is the sans-IO flow for a POST whose outcome is unknown: look for the request
it may have created, matched on what servers echo back.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Generator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from civic311._clock import Clock
from civic311._protocol import Call, Sleep, Step, list_requests_call
from civic311._resilience.pool import Endpoint, EndpointPool
from civic311._resilience.retry import (
    Decision,
    Outcome,
    RetryPolicy,
    classify_status,
    decide,
    tenacity_kwargs,
)
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

if TYPE_CHECKING:  # tenacity loads on the first retry, not at import
    import tenacity

__all__ = [
    "AttemptEvent",
    "AttemptHook",
    "CallRun",
    "classify",
    "matches",
    "reconcile_flow",
    "wants_xml_fallback",
]

logger = logging.getLogger("civic311")


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


def _short(error: Civic311Error) -> str:
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
        self.policy = policy
        self.clock = clock
        self.rng = rng
        self.retry_unsafe = retry_unsafe
        self.on_attempt = on_attempt
        self.other_channels = tuple(other_channels)
        self.started = clock.monotonic()
        self.sent_at = clock.now()
        self.attempts: list[Attempt] = []
        self.events: list[AttemptEvent] = []
        self.decision: Decision | None = None
        self._tried: set[int] = set()
        self._outcome: Outcome = Outcome.OK
        self._error: Civic311Error | None = None
        # Seconds until an endpoint comes off its cool-down, when none was on offer.
        self._waiting_for: float | None = None

    # --- where -------------------------------------------------------------------------------

    def next_endpoint(self) -> Endpoint:
        """The endpoint for the next attempt.

        Raises:
            AllEndpointsFailedError: the pool offers none (every endpoint is down).
        """
        offered = self.pool.candidates(self.clock.monotonic())
        untried = [e for e in offered if e.index not in self._tried]
        if not untried and offered:
            self._tried.clear()  # a new round over every endpoint
            untried = offered
        if not untried:
            error = AllEndpointsFailedError(
                self.call.operation,
                self.attempts,
                other_channels=self.other_channels,
                reason="every endpoint is down; not waiting on known-dead timeouts",
            )
            error.__cause__ = self._error
            self._waiting_for = self.pool.next_offer_in(self.clock.monotonic())
            raise error
        chosen = untried[0]
        for other in offered:
            if other is not chosen and other.is_probe:
                self.pool.release(other)  # let another caller probe it
        self._tried.add(chosen.index)
        return chosen

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
        self._emit(endpoint, fmt, "ok", None, latency)

    def switch_format(self, endpoint: Endpoint, fmt: Format) -> None:
        """Use *fmt* for *endpoint* for the rest of the client's life (visible in health)."""
        logger.info("endpoint %s answers %s; using %s from now on", endpoint.url, fmt, fmt)
        self.pool.switch_format(endpoint, fmt)

    def failed(self, endpoint: Endpoint, fmt: Format, error: Civic311Error, latency: float) -> None:
        """Report a failed attempt: to the pool (a 4xx is a healthy server), and to the log."""
        self._outcome = classify(error, is_post=self.call.is_post)
        self._error = error
        if self._outcome is Outcome.FATAL:
            self.pool.record_success(
                endpoint, latency=latency, now=self.clock.monotonic(), wall=self.clock.now()
            )
        else:
            self.pool.record_failure(
                endpoint, error=_short(error), now=self.clock.monotonic(), wall=self.clock.now()
            )
        self.attempts.append(
            Attempt(
                endpoint=endpoint.url,
                number=len(self.attempts) + 1,
                outcome=_short(error),
                error=error,
            )
        )
        self._emit(endpoint, fmt, self._outcome.value, error, latency)

    def _emit(
        self,
        endpoint: Endpoint,
        fmt: Format,
        outcome: str,
        error: Civic311Error | None,
        latency: float,
    ) -> None:
        event = AttemptEvent(
            operation=self.call.operation,
            attempt=len(self.events) + 1,
            endpoint=endpoint.url,
            format=fmt,
            outcome=outcome,
            error=error,
            latency=latency,
        )
        self.events.append(event)
        if error is not None:
            logger.debug(
                "%s attempt %d on %s failed (%s): %s",
                event.operation,
                event.attempt,
                event.endpoint,
                outcome,
                _short(error),
            )

    def _publish_last(self, wait: float) -> None:
        if not self.events:
            return
        event = attrs.evolve(self.events[-1], wait=wait)
        self.events[-1] = event
        if self.attempts and event.outcome != "ok":
            self.attempts[-1] = attrs.evolve(self.attempts[-1], wait=wait)
        if self.on_attempt is not None:
            self.on_attempt(event)

    # --- whether -----------------------------------------------------------------------------

    def decide(self, retry_state: tenacity.RetryCallState) -> Decision:
        """What follows the attempt tenacity just finished (its ``retry=`` callback)."""
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            self.decision = Decision("stop", 0.0, "ok")
            self._publish_last(0.0)
            return self.decision
        if self._waiting_for is not None:
            return self._wait_for_endpoint(retry_state.attempt_number)
        error = self._error
        status = error.status_code if isinstance(error, APIError) else None
        retry_after = error.retry_after if isinstance(error, APIError) else None
        decision = decide(
            self.policy,
            outcome=self._outcome,
            is_post=self.call.is_post,
            status_code=status,
            retry_after=retry_after,
            attempt=retry_state.attempt_number,
            elapsed=self.clock.monotonic() - self.started,
            rng=self.rng,
            retry_unsafe=self.retry_unsafe,
        )
        if decision.action == "retry" and retry_after is None and self._untried_left():
            # Fail over at once: backing off only makes sense before asking the same server.
            decision = Decision("retry", 0.0, decision.reason + "; failing over")
        self.decision = decision
        self._publish_last(decision.wait if decision.action != "stop" else 0.0)
        if decision.action != "retry":
            logger.debug("%s: %s (%s)", self.call.operation, decision.action, decision.reason)
        return decision

    def _wait_for_endpoint(self, attempt: int) -> Decision:
        """Every endpoint is cooling down: wait for the soonest one if the deadline allows.

        Waiting out a cool-down is not paying a dead endpoint's timeout: no request is sent
        until an endpoint is offered again, and a call whose deadline ends first fails at once.
        """
        wait, self._waiting_for = self._waiting_for or 0.0, None
        if wait >= self.time_left() or attempt >= self.policy.attempts:
            self.decision = Decision("stop", 0.0, "every endpoint is down past the deadline")
        else:
            self.decision = Decision("retry", wait, "waiting for an endpoint's cool-down")
        return self.decision

    def finished(self) -> None:
        """The call succeeded without the retry loop: publish its attempt like `decide` would."""
        self.decision = Decision("stop", 0.0, "ok")
        self._publish_last(0.0)

    def _untried_left(self) -> bool:
        offered = self.pool.candidates(self.clock.monotonic())
        left = any(e.index not in self._tried for e in offered)
        for endpoint in offered:
            if endpoint.is_probe:
                self.pool.release(endpoint)
        return left

    def tenacity_kwargs(self) -> dict[str, Any]:
        """``retry=``, ``wait=``, ``stop=``… for `tenacity.Retrying` / `AsyncRetrying`."""
        return dict(
            tenacity_kwargs(self.policy, self.decide, self.clock.monotonic, started=self.started)
        )

    # --- what is raised ----------------------------------------------------------------------

    @property
    def must_reconcile(self) -> bool:
        """The call was a POST whose outcome is unknown."""
        return self.decision is not None and self.decision.action == "reconcile"

    def final_error(self, error: Civic311Error) -> Civic311Error:
        """The error the caller sees once the loop has given up with *error*."""
        if isinstance(error, AllEndpointsFailedError):
            return error
        if self._outcome is Outcome.FATAL or (
            len(self.attempts) <= 1 and self.policy.attempts <= 1
        ):
            return error
        reason = self.decision.reason if self.decision is not None else ""
        final = AllEndpointsFailedError(
            self.call.operation,
            self.attempts,
            other_channels=self.other_channels,
            reason=f"gave up: {reason}" if reason else "",
        )
        final.__cause__ = error
        return final

    @property
    def never_sent(self) -> bool:
        """Every attempt provably failed before reaching a server (the POST was never filed)."""
        return bool(self.attempts) and all(
            isinstance(a.error, TransportError) and not a.error.sent for a in self.attempts
        )


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
