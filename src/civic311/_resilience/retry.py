"""Retry policy as pure decisions: what to do after an attempt, and how long to wait.

Nothing here sends, sleeps or reads a clock. The client classifies what happened to an attempt
(`civic311._client.execution.classify`, `classify_status`), hands it to `RetryPolicy.decide`
together with how many attempts were made and how much time has passed, and gets back a
`Decision`: *retry* (after ``wait`` seconds, on the same endpoint or the next one the pool
offers), *reconcile* (a POST whose fate is unknown: look for the request it may have created,
never send it again blindly) or *stop*. Both clients run one plain loop over these decisions
(`civic311._client.execution`); `civic311._resilience._tenacity` is the one small adapter that
runs the same decisions under tenacity.

Why POST is special: GeoReport v2 has no idempotency key, so sending ``POST requests`` twice can
file the same pothole twice. A POST is therefore sent again only when it provably never reached a
server, or when the server said it did not act on it (429, 503). When the outcome is unknown the
answer is *reconcile*, unless the caller opted in with ``retry_unsafe=True``.

Decision table (keep in sync with docs/retries.md):

====================  =============================  ==========================================
outcome               GET (safe to repeat)           POST ``requests`` (not idempotent)
====================  =============================  ==========================================
OK                    stop ("ok")                    stop ("ok")
FATAL                 stop ("fatal")                 stop ("fatal")
NEVER_SENT            retry                          retry
AMBIGUOUS_TRANSPORT   retry                          reconcile (retry if ``retry_unsafe``)
RETRYABLE_STATUS 429  retry                          retry
RETRYABLE_STATUS 503  retry                          retry
RETRYABLE_STATUS 500  retry                          reconcile (retry if ``retry_unsafe``)
RETRYABLE_STATUS 502  retry                          reconcile (retry if ``retry_unsafe``)
RETRYABLE_STATUS 504  retry                          reconcile (retry if ``retry_unsafe``)
UNDECODABLE (2xx)     retry                          reconcile (retry if ``retry_unsafe``)
====================  =============================  ==========================================

``retry_unsafe=True`` turns every "reconcile" into "retry": the caller accepts duplicates. A
RETRYABLE_STATUS without a status code is treated like a 500 (reconcile on POST).

Every "retry" above is subject to two limits, checked in this order:

1. ``attempt >= policy.attempts`` → stop ("attempts"). ``attempt`` is 1-based: the number of
   attempts already made, across all endpoints.
2. ``elapsed + wait > policy.deadline`` → stop ("deadline"). One deadline covers every attempt
   on every endpoint, so failing over never buys more time.

The wait before the next attempt (keep in sync with docs/retries.md)::

    if Retry-After was sent:  wait = min(retry_after, max_retry_after)
    else:                     backoff = min(max_wait, initial_wait * exp_base ** (attempt - 1))
                              wait = uniform(0, backoff) if jitter else backoff

"Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015) spreads the retries
of many clients hit by the same outage over the whole window instead of in synchronized waves.

A "reconcile" is never refused by the limits (the request may exist; finding out is the only way
not to lose it or file it twice). Its ``wait`` is computed the same way and clamped to the time
left before the deadline, so the server has a moment to settle before it is asked.
"""

from __future__ import annotations

import enum
import math
import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Literal, SupportsFloat, SupportsIndex

import attrs

from civic311._record import Record
from civic311._regex import on_first_use

__all__ = [
    "Action",
    "Decision",
    "Outcome",
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "backoff",
    "classify_status",
    "parse_retry_after",
    "to_float",
]

Action = Literal["retry", "reconcile", "stop"]

#: Statuses worth another try. 429 (RFC 6585 §4) and 503 (RFC 9110 §15.6.4) say "not now";
#: 500, 502 and 504 are the usual faces of an overloaded or restarting city server.
RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})

# Statuses for which the server tells us it did not act on the request, so even a POST may be
# sent again: 503 "the server is currently unable to handle the request" (RFC 9110 §15.6.4) and
# 429 "the user has sent too many requests" (RFC 6585 §4), both refusals before processing.
_REFUSED_BEFORE_PROCESSING: frozenset[int] = frozenset({429, 503})


# --------------------------------------------------------------------------------------------
# Policy


def _wait_seconds(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    # Finite: a wait is handed to time.sleep / asyncio.sleep, which reject inf.
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if math.isnan(value) or value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _at_least_one_attempt(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def _growing_base(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    # A base below 1 would make waits shrink as an outage goes on: the opposite of backing off.
    if math.isnan(value) or value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value!r}")


def _max_wait_covers_initial(
    instance: RetryPolicy, attribute: attrs.Attribute[float], value: float
) -> None:
    if instance.initial_wait > value:
        raise ValueError(
            f"max_wait ({value!r}) must be >= initial_wait ({instance.initial_wait!r})"
        )


def to_float(value: SupportsFloat | SupportsIndex | str) -> float:
    """``float(value)``, as an attrs converter.

    Not ``converter=to_float`` itself: attrs reads a converter's signature, and for a builtin
    that means parsing its text signature with `tokenize`, whose first use compiles a large
    regular expression (~3 ms of `import civic311`, measured with bench/import_time.py).
    """
    return float(value)


@attrs.frozen
class RetryPolicy:
    """How hard civic311 tries before giving up, shared by reads, failover and POST.

    The defaults are polite to a city's server: at most 4 attempts (1 call + 3 retries) inside
    30 seconds, waiting up to 0.5 s, 1 s, 2 s (full jitter) between them, and never more than a
    minute even when a ``Retry-After`` asks for longer.

    Attributes:
        attempts: Attempts in total, across all endpoints (1 means "never retry").
        deadline: Seconds from the first attempt after which no new attempt starts, shared by
            every endpoint. ``math.inf`` disables it.
        initial_wait: Backoff before the second attempt, in seconds.
        max_wait: Cap on any computed backoff, in seconds.
        exp_base: Growth factor of the backoff per attempt.
        jitter: Draw each wait uniformly from ``[0, backoff]`` ("full jitter").
        max_retry_after: Cap on a server's ``Retry-After``, in seconds.
        wait_for_recovery: When every endpoint is known to be down (each one's circuit open),
            wait for the soonest cool-down to end and probe it, if that happens before the
            deadline. False (the default) fails at once with `AllEndpointsFailedError`, which
            says when the next probe is due: a web handler or a bulk run never sits waiting
            for a dead city (issue 11.5).

    Raises:
        ValueError: A field is out of range; the message names the field.

    Example:
        >>> policy = RetryPolicy(attempts=6, deadline=120.0)
        >>> policy.attempts, policy.deadline, policy.max_wait
        (6, 120.0, 8.0)
    """

    attempts: int = attrs.field(default=4, validator=_at_least_one_attempt)
    deadline: float = attrs.field(default=30.0, converter=to_float, validator=_positive)
    initial_wait: float = attrs.field(default=0.5, converter=to_float, validator=_wait_seconds)
    max_wait: float = attrs.field(
        default=8.0,
        converter=to_float,
        validator=[_wait_seconds, _max_wait_covers_initial],
    )
    exp_base: float = attrs.field(default=2.0, converter=to_float, validator=_growing_base)
    jitter: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    max_retry_after: float = attrs.field(default=60.0, converter=to_float, validator=_wait_seconds)
    wait_for_recovery: bool = attrs.field(
        default=False, validator=attrs.validators.instance_of(bool)
    )

    def decide(
        self,
        *,
        outcome: Outcome,
        is_post: bool,
        status_code: int | None,
        retry_after: float | None,
        attempt: int,
        elapsed: float,
        rng: random.Random,
        retry_unsafe: bool = False,
    ) -> Decision:
        """What follows an attempt. Pure: the same inputs (and rng state) give the same answer.

        The rules are the table in this module's docstring.

        Args:
            outcome: What became of the attempt (`classify_status`; the client's ``classify``).
            is_post: The attempt was a POST (not idempotent in GeoReport v2).
            status_code: The response status, if there was a response.
            retry_after: Seconds from a ``Retry-After`` header (`parse_retry_after`), if any.
            attempt: Attempts made so far, 1-based, across all endpoints.
            elapsed: Seconds since the first attempt started (monotonic).
            rng: Source of jitter.
            retry_unsafe: The caller accepts duplicates: turn every "reconcile" into "retry".

        Returns:
            The `Decision`.

        Example:
            >>> import random
            >>> RetryPolicy(jitter=False).decide(
            ...     outcome=Outcome.RETRYABLE_STATUS, is_post=False, status_code=503,
            ...     retry_after=None, attempt=1, elapsed=0.0, rng=random.Random(0))
            Decision(action='retry', wait=0.5, reason='status 503')
        """
        if outcome is Outcome.OK:
            return Decision("stop", 0.0, "ok")
        if outcome is Outcome.FATAL:
            # Never retried, never failed over: a 404 for a service_code is a 404 on the mirror.
            return Decision("stop", 0.0, "fatal")

        if is_post and not retry_unsafe:
            unsafe = _unsafe_reason(outcome, status_code)
            if unsafe is not None:
                remaining = max(self.deadline - elapsed, 0.0)
                wait = min(_wait_for(self, retry_after, attempt, rng), remaining)
                return Decision("reconcile", wait, unsafe)

        if attempt >= self.attempts:
            return Decision("stop", 0.0, "attempts")
        wait = _wait_for(self, retry_after, attempt, rng)
        if elapsed + wait > self.deadline:
            return Decision("stop", 0.0, "deadline")
        return Decision("retry", wait, _retry_reason(outcome, status_code))

    @classmethod
    def no_wait(cls, attempts: int = 4) -> RetryPolicy:
        """A policy that retries like the default one but never waits: for tests.

        ``Retry-After`` is clamped to zero too, so a test of a 503 storm runs in microseconds.

        Args:
            attempts: Attempts in total.

        Example:
            >>> RetryPolicy.no_wait(attempts=2).max_wait
            0.0
        """
        return cls(
            attempts=attempts, initial_wait=0.0, max_wait=0.0, jitter=False, max_retry_after=0.0
        )


# --------------------------------------------------------------------------------------------
# Retry-After


# delay-seconds = 1*DIGIT (RFC 9110 §10.2.3); we also take a sign and a fraction, because servers
# in the wild send "1.5" and "-1". No exponents, "inf" or "nan": those are not a delay.
_delay_seconds = on_first_use(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value, or None if it says nothing.

    RFC 9110 §10.2.3 allows two forms: ``delay-seconds`` (``"120"``) and an ``HTTP-date``
    (§5.6.7), which recipients must accept in all three historical formats: IMF-fixdate
    (``"Sun, 06 Nov 1994 08:49:37 GMT"``), RFC 850 (``"Sunday, 06-Nov-94 08:49:37 GMT"``) and
    asctime (``"Sun Nov  6 08:49:37 1994"``). `email.utils.parsedate_to_datetime` reads all
    three. Decimal seconds are tolerated.

    Args:
        value: The raw header value, or None when the header is absent.
        now: The current wall time, to turn a date into a delay. A naive datetime is taken as
            UTC (HTTP dates are always GMT, RFC 9110 §5.6.7).

    Returns:
        The delay in seconds: ``0.0`` for a negative delay or a date in the past, the value as
        sent for huge delays (`RetryPolicy.decide` clamps it), None for a missing or unreadable
        value.
        Never raises.

    Example:
        >>> from datetime import datetime, timezone
        >>> now = datetime(1994, 11, 6, 8, 49, 0, tzinfo=timezone.utc)
        >>> parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now)
        37.0
        >>> parse_retry_after("3", now), parse_retry_after("soon", now)
        (3.0, None)
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _delay_seconds().fullmatch(text):
        # A run of digits too long for a float becomes inf: still "a very long time".
        return max(float(text), 0.0)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    try:
        seconds = (when - now).total_seconds()
    except OverflowError:  # pragma: no cover - datetime arithmetic within year 1..9999 is safe
        return None
    return max(seconds, 0.0)


# --------------------------------------------------------------------------------------------
# Classification


class Outcome(str, enum.Enum):
    """What became of one attempt, as far as retrying is concerned.

    The values are plain strings so outcomes log and serialize well.
    """

    OK = "ok"
    """A 2xx response whose body decoded: done."""
    NEVER_SENT = "never_sent"
    """The request provably never reached a server (connect failure, DNS, pool timeout)."""
    AMBIGUOUS_TRANSPORT = "ambiguous_transport"
    """The connection failed after the request may have been delivered (read timeout, reset)."""
    RETRYABLE_STATUS = "retryable_status"
    """The server answered 429, 500, 502, 503 or 504."""
    UNDECODABLE = "undecodable"
    """A 2xx whose body is not the promised format, e.g. an HTML maintenance page."""
    FATAL = "fatal"
    """Retrying cannot help: another 4xx, an unexpected status, or a non-network error."""


def classify_status(status_code: int, *, decodable: bool = True) -> Outcome:
    """Classify an HTTP response by its status (and, for a 2xx, whether its body decoded).

    Args:
        status_code: The response status.
        decodable: False when the caller could not decode a 2xx body in the promised format
            (an HTML maintenance page served with 200, a truncated JSON document...). Ignored
            for non-2xx statuses: a 503 with an HTML body is still a 503.

    Returns:
        `Outcome.OK` for a usable 2xx, `Outcome.UNDECODABLE` for an unusable one,
        `Outcome.RETRYABLE_STATUS` for 429/500/502/503/504, `Outcome.FATAL` otherwise (other
        4xx such as 400, 403 or 404 are the same on every retry and every mirror).

    Example:
        >>> classify_status(503).value, classify_status(200, decodable=False).value
        ('retryable_status', 'undecodable')
    """
    if 200 <= status_code < 300:  # the 2xx class, RFC 9110 §15.3
        return Outcome.OK if decodable else Outcome.UNDECODABLE
    if status_code in RETRYABLE_STATUSES:
        return Outcome.RETRYABLE_STATUS
    return Outcome.FATAL


# --------------------------------------------------------------------------------------------
# Decision


class Decision(Record):
    """What to do after an attempt.

    Attributes:
        action: ``"retry"`` (send again after ``wait``, to this endpoint or the next candidate),
            ``"reconcile"`` (a POST may have created a request: look for it after ``wait``
            instead of sending it again) or ``"stop"`` (success, or give up).
        wait: Seconds to wait before the next step (0.0 for "stop").
        reason: Why, for logs and error messages: ``"ok"``, ``"fatal"``, ``"attempts"`` and
            ``"deadline"`` for stops, a short explanation otherwise.
    """

    __slots__ = ("action", "reason", "wait")

    action: Action
    wait: float
    reason: str

    def __init__(self, action: Action, wait: float, reason: str) -> None:
        self._set(action=action, wait=wait, reason=reason)


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """The exponential backoff after ``attempt`` attempts, with full jitter if the policy says so.

    Args:
        policy: The retry policy.
        attempt: Attempts made so far (1-based).
        rng: Source of jitter, injected so tests are deterministic.

    Returns:
        ``min(max_wait, initial_wait * exp_base ** (attempt - 1))``, or a uniform draw from
        ``[0, that]`` when ``policy.jitter``. Always within ``[0, policy.max_wait]``.
    """
    exponent = max(attempt - 1, 0)
    try:
        ceiling = min(policy.max_wait, policy.initial_wait * policy.exp_base**exponent)
    except OverflowError:  # 2.0 ** 5000 on a very long outage
        ceiling = policy.max_wait
    if policy.jitter and ceiling > 0:
        # uniform() may round to a hair above its bound; keep the promise of <= max_wait.
        return min(rng.uniform(0.0, ceiling), ceiling)
    return ceiling


def _wait_for(
    policy: RetryPolicy, retry_after: float | None, attempt: int, rng: random.Random
) -> float:
    if retry_after is not None and not math.isnan(retry_after):
        # The server's own estimate wins over our guess, within bounds (RFC 9110 §10.2.3).
        return min(max(retry_after, 0.0), policy.max_retry_after)
    return backoff(policy, attempt, rng)


def _unsafe_reason(outcome: Outcome, status_code: int | None) -> str | None:
    """Why a POST with this outcome may have been acted on, or None if it surely was not."""
    if outcome is Outcome.NEVER_SENT:
        return None
    if outcome is Outcome.AMBIGUOUS_TRANSPORT:
        return "POST may have reached the server before the connection failed"
    if outcome is Outcome.UNDECODABLE:
        return "POST got a 2xx with an unreadable body: something accepted it"
    if status_code in _REFUSED_BEFORE_PROCESSING:
        return None
    if status_code in (502, 504):
        return f"POST got {status_code} from a proxy: the origin may have created the request"
    return f"POST got {status_code}: the server may have failed after creating the request"


def _retry_reason(outcome: Outcome, status_code: int | None) -> str:
    if outcome is Outcome.NEVER_SENT:
        return "never sent"
    if outcome is Outcome.AMBIGUOUS_TRANSPORT:
        return "transport error"
    if outcome is Outcome.UNDECODABLE:
        return "undecodable body"
    return f"status {status_code}"
