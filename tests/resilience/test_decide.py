"""Outcome classification and the pure retry / reconcile / stop decision."""

from __future__ import annotations

import random

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from civic311._client.execution import classify
from civic311._client.transport import transport_error
from civic311._resilience import Decision, Outcome, RetryPolicy, classify_status

REQUEST = httpx.Request("POST", "https://city.example/open311/v2/requests.json")

# --------------------------------------------------------------------------------------------
# classify_status


@pytest.mark.parametrize(
    ("status", "decodable", "expected"),
    [
        (200, True, Outcome.OK),
        (201, True, Outcome.OK),
        (204, True, Outcome.OK),
        (200, False, Outcome.UNDECODABLE),
        (299, False, Outcome.UNDECODABLE),
        (429, True, Outcome.RETRYABLE_STATUS),
        (500, True, Outcome.RETRYABLE_STATUS),
        (502, True, Outcome.RETRYABLE_STATUS),
        (503, True, Outcome.RETRYABLE_STATUS),
        (503, False, Outcome.RETRYABLE_STATUS),
        (504, True, Outcome.RETRYABLE_STATUS),
        (400, True, Outcome.FATAL),
        (401, True, Outcome.FATAL),
        (403, True, Outcome.FATAL),
        (404, False, Outcome.FATAL),
        (408, True, Outcome.FATAL),
        (501, True, Outcome.FATAL),
        (505, True, Outcome.FATAL),
        (301, True, Outcome.FATAL),
        (100, True, Outcome.FATAL),
    ],
)
def test_classify_status(status: int, decodable: bool, expected: Outcome) -> None:
    """Statuses map to OK, UNDECODABLE (bad 2xx body), RETRYABLE_STATUS or FATAL."""
    assert classify_status(status, decodable=decodable) is expected


# --------------------------------------------------------------------------------------------
# transport errors: sent or not (the one list, civic311._client.transport.NEVER_SENT)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(httpx.ConnectError("refused"), Outcome.NEVER_SENT, id="connect-error"),
        pytest.param(
            httpx.ConnectError("[Errno -2] Name or service not known"),
            Outcome.NEVER_SENT,
            id="dns-failure",
        ),
        pytest.param(httpx.ConnectTimeout("slow"), Outcome.NEVER_SENT, id="connect-timeout"),
        pytest.param(httpx.PoolTimeout("busy"), Outcome.NEVER_SENT, id="pool-timeout"),
        pytest.param(httpx.UnsupportedProtocol("ftp"), Outcome.NEVER_SENT, id="bad-scheme"),
        # h11 refuses to send a request it finds malformed: nothing left this machine.
        pytest.param(httpx.LocalProtocolError("bad"), Outcome.NEVER_SENT, id="local-protocol"),
        pytest.param(httpx.ReadTimeout("slow"), Outcome.AMBIGUOUS_TRANSPORT, id="read-timeout"),
        pytest.param(httpx.WriteTimeout("slow"), Outcome.AMBIGUOUS_TRANSPORT, id="write-timeout"),
        pytest.param(httpx.ReadError("reset"), Outcome.AMBIGUOUS_TRANSPORT, id="read-error"),
        pytest.param(httpx.WriteError("pipe"), Outcome.AMBIGUOUS_TRANSPORT, id="write-error"),
        pytest.param(
            httpx.RemoteProtocolError("disconnected"),
            Outcome.AMBIGUOUS_TRANSPORT,
            id="remote-protocol",
        ),
        pytest.param(httpx.ProxyError("proxy"), Outcome.AMBIGUOUS_TRANSPORT, id="proxy"),
        pytest.param(httpx.CloseError("close"), Outcome.AMBIGUOUS_TRANSPORT, id="close"),
        pytest.param(httpx.TooManyRedirects("loop"), Outcome.AMBIGUOUS_TRANSPORT, id="redirects"),
    ],
)
def test_transport_errors_say_whether_they_were_sent(
    exc: httpx.HTTPError, expected: Outcome
) -> None:
    """Only failures before sending are NEVER_SENT; other transport errors are ambiguous."""
    error = transport_error(exc, "POST", str(REQUEST.url))
    assert classify(error, is_post=True) is expected
    assert error.cause_name == type(exc).__name__


# --------------------------------------------------------------------------------------------
# decide: the table

POLICY = RetryPolicy(jitter=False)


def _decide(
    outcome: Outcome,
    *,
    is_post: bool,
    status: int | None,
    retry_unsafe: bool = False,
    retry_after: float | None = None,
    attempt: int = 1,
    elapsed: float = 0.0,
    policy: RetryPolicy = POLICY,
    rng: random.Random | None = None,
) -> Decision:
    return policy.decide(
        outcome=outcome,
        is_post=is_post,
        status_code=status,
        retry_after=retry_after,
        attempt=attempt,
        elapsed=elapsed,
        rng=rng or random.Random(0),
        retry_unsafe=retry_unsafe,
    )


# (outcome, status, GET, POST, POST with retry_unsafe): keep in sync with the module docstring.
TABLE = [
    (Outcome.OK, 200, "stop", "stop", "stop"),
    (Outcome.OK, 201, "stop", "stop", "stop"),
    (Outcome.FATAL, 400, "stop", "stop", "stop"),
    (Outcome.FATAL, 403, "stop", "stop", "stop"),
    (Outcome.FATAL, 404, "stop", "stop", "stop"),
    (Outcome.FATAL, 501, "stop", "stop", "stop"),
    (Outcome.FATAL, None, "stop", "stop", "stop"),
    (Outcome.NEVER_SENT, None, "retry", "retry", "retry"),
    (Outcome.AMBIGUOUS_TRANSPORT, None, "retry", "reconcile", "retry"),
    (Outcome.RETRYABLE_STATUS, 429, "retry", "retry", "retry"),
    (Outcome.RETRYABLE_STATUS, 503, "retry", "retry", "retry"),
    (Outcome.RETRYABLE_STATUS, 500, "retry", "reconcile", "retry"),
    (Outcome.RETRYABLE_STATUS, 502, "retry", "reconcile", "retry"),
    (Outcome.RETRYABLE_STATUS, 504, "retry", "reconcile", "retry"),
    (Outcome.RETRYABLE_STATUS, None, "retry", "reconcile", "retry"),
    (Outcome.UNDECODABLE, 200, "retry", "reconcile", "retry"),
]
CASES = [
    pytest.param(outcome, status, is_post, unsafe, expected, id=f"{outcome.value}-{status}-{m}")
    for outcome, status, get, post, post_unsafe in TABLE
    for is_post, unsafe, expected, m in [
        (False, False, get, "GET"),
        (False, True, get, "GET-unsafe"),
        (True, False, post, "POST"),
        (True, True, post_unsafe, "POST-unsafe"),
    ]
]


@pytest.mark.parametrize(("outcome", "status", "is_post", "retry_unsafe", "expected"), CASES)
def test_decision_table(
    outcome: Outcome, status: int | None, is_post: bool, retry_unsafe: bool, expected: str
) -> None:
    """Each outcome, method, retry_unsafe and status gets the action the table promises."""
    decision = _decide(outcome, is_post=is_post, status=status, retry_unsafe=retry_unsafe)
    assert decision.action == expected


@pytest.mark.parametrize(
    ("outcome", "status", "reason"),
    [
        (Outcome.OK, 200, "ok"),
        (Outcome.FATAL, 404, "fatal"),
        (Outcome.NEVER_SENT, None, "never sent"),
        (Outcome.AMBIGUOUS_TRANSPORT, None, "transport error"),
        (Outcome.RETRYABLE_STATUS, 503, "status 503"),
        (Outcome.UNDECODABLE, 200, "undecodable body"),
    ],
)
def test_reasons(outcome: Outcome, status: int | None, reason: str) -> None:
    """Decisions carry a short reason for logs and errors."""
    assert _decide(outcome, is_post=False, status=status).reason == reason


def test_reconcile_reason_explains_the_risk() -> None:
    """A reconcile names why the POST may have been acted on."""
    decision = _decide(Outcome.RETRYABLE_STATUS, is_post=True, status=502)
    assert "502" in decision.reason
    assert "proxy" in decision.reason


def test_fatal_is_never_retried_even_when_unsafe_allowed() -> None:
    """FATAL stops regardless of attempts left, method or retry_unsafe."""
    decision = _decide(Outcome.FATAL, is_post=True, status=404, retry_unsafe=True)
    assert decision == Decision("stop", 0.0, "fatal")


# --------------------------------------------------------------------------------------------
# decide: limits and waits


@pytest.mark.parametrize(
    ("attempt", "action", "reason"),
    [(1, "retry", "never sent"), (3, "retry", "never sent"), (4, "stop", "attempts")],
)
def test_attempts_limit(attempt: int, action: str, reason: str) -> None:
    """After `attempts` attempts in total the decision is stop("attempts")."""
    decision = _decide(Outcome.NEVER_SENT, is_post=False, status=None, attempt=attempt)
    assert (decision.action, decision.reason) == (action, reason)


@pytest.mark.parametrize(
    ("elapsed", "action", "reason"),
    [(0.0, "retry", "status 503"), (29.5, "retry", "status 503"), (29.6, "stop", "deadline")],
)
def test_deadline_limit(elapsed: float, action: str, reason: str) -> None:
    """A retry whose wait would end past the deadline is a stop("deadline")."""
    decision = _decide(Outcome.RETRYABLE_STATUS, is_post=False, status=503, elapsed=elapsed)
    assert (decision.action, decision.reason) == (action, reason)


def test_attempts_are_checked_before_the_deadline() -> None:
    """When both limits are hit the reason is "attempts"."""
    decision = _decide(Outcome.NEVER_SENT, is_post=False, status=None, attempt=4, elapsed=100.0)
    assert decision.reason == "attempts"


def test_exponential_wait_without_jitter() -> None:
    """Without Retry-After the wait is the exponential backoff for this attempt."""
    waits = [
        _decide(
            Outcome.NEVER_SENT,
            is_post=False,
            status=None,
            attempt=n,
            policy=RetryPolicy(jitter=False, attempts=10, deadline=1000),
        ).wait
        for n in range(1, 8)
    ]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [(0.0, 0.0), (2.0, 2.0), (17.5, 17.5), (60.0, 60.0), (3600.0, 60.0), (-3.0, 0.0)],
)
def test_retry_after_is_honoured_and_clamped(retry_after: float, wait: float) -> None:
    """Retry-After replaces the backoff, clamped to [0, max_retry_after], without jitter."""
    decision = _decide(
        Outcome.RETRYABLE_STATUS,
        is_post=False,
        status=429,
        retry_after=retry_after,
        policy=RetryPolicy(deadline=1000),
    )
    assert decision == Decision("retry", wait, "status 429")


def test_retry_after_beyond_the_deadline_stops() -> None:
    """A Retry-After longer than the time left is a stop("deadline"), not a truncated wait."""
    decision = _decide(Outcome.RETRYABLE_STATUS, is_post=True, status=503, retry_after=45.0)
    assert decision == Decision("stop", 0.0, "deadline")


def test_reconcile_ignores_limits_and_clamps_wait_to_the_deadline() -> None:
    """A reconcile is never refused by the limits; its wait fits in the time left."""
    decision = _decide(
        Outcome.AMBIGUOUS_TRANSPORT,
        is_post=True,
        status=None,
        attempt=4,
        elapsed=29.0,
        retry_after=10.0,
    )
    assert decision.action == "reconcile"
    assert decision.wait == 1.0
    late = _decide(Outcome.AMBIGUOUS_TRANSPORT, is_post=True, status=None, elapsed=45.0)
    assert (late.action, late.wait) == ("reconcile", 0.0)


def test_no_wait_policy_retries_immediately_even_with_retry_after() -> None:
    """RetryPolicy.no_wait() clamps every wait, Retry-After too, to zero."""
    decision = _decide(
        Outcome.RETRYABLE_STATUS,
        is_post=False,
        status=503,
        retry_after=30.0,
        policy=RetryPolicy.no_wait(),
    )
    assert decision == Decision("retry", 0.0, "status 503")


RETRYING = [
    Outcome.NEVER_SENT,
    Outcome.AMBIGUOUS_TRANSPORT,
    Outcome.RETRYABLE_STATUS,
    Outcome.UNDECODABLE,
]


@given(
    initial=st.floats(min_value=0, max_value=30, allow_nan=False),
    extra=st.floats(min_value=0, max_value=120, allow_nan=False),
    deadline=st.floats(min_value=0.001, max_value=300, allow_nan=False),
    jitter=st.booleans(),
    outcome=st.sampled_from(RETRYING),
    is_post=st.booleans(),
    status=st.sampled_from([None, 429, 500, 502, 503, 504, 200]),
    retry_after=st.none() | st.floats(min_value=-10, max_value=1e9, allow_nan=False),
    attempt=st.integers(min_value=1, max_value=50),
    elapsed=st.floats(min_value=0, max_value=400, allow_nan=False),
    seed=st.integers(),
)
def test_waits_stay_within_bounds(
    initial: float,
    extra: float,
    deadline: float,
    jitter: bool,
    outcome: Outcome,
    is_post: bool,
    status: int | None,
    retry_after: float | None,
    attempt: int,
    elapsed: float,
    seed: int,
) -> None:
    """Every wait is within [0, max_wait] (or max_retry_after) and never ends past the deadline."""
    policy = RetryPolicy(
        attempts=20,
        deadline=deadline,
        initial_wait=initial,
        max_wait=initial + extra,
        jitter=jitter,
        max_retry_after=60.0,
    )
    decision = _decide(
        outcome,
        is_post=is_post,
        status=status,
        retry_after=retry_after,
        attempt=attempt,
        elapsed=elapsed,
        policy=policy,
        rng=random.Random(seed),
    )
    assert decision.wait >= 0.0
    cap = policy.max_retry_after if retry_after is not None else policy.max_wait
    assert decision.wait <= cap
    if decision.action == "retry":
        assert elapsed + decision.wait <= policy.deadline
        assert attempt < policy.attempts
    if decision.action == "reconcile":
        assert elapsed + decision.wait <= max(policy.deadline, elapsed)
    if decision.action == "stop":
        assert decision.wait == 0.0


def test_decide_is_pure() -> None:
    """The same inputs and rng seed give the same decision."""
    policy = RetryPolicy()
    first = _decide(Outcome.NEVER_SENT, is_post=False, status=None, attempt=3, policy=policy)
    second = _decide(Outcome.NEVER_SENT, is_post=False, status=None, attempt=3, policy=policy)
    assert first == second
    assert 0.0 <= first.wait <= 2.0
