"""tenacity executes the pure policy: real Retrying/AsyncRetrying loops, fake sleeping."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import attrs
import httpx
import pytest
import tenacity

from civic311._client.execution import classify
from civic311._client.transport import transport_error
from civic311._resilience import Decision, RetryPolicy, classify_status, parse_retry_after
from civic311._resilience._tenacity import decision_of, tenacity_kwargs

URL = "https://city.example/open311/v2/services.json"
WALL = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


@attrs.define
class FakeClock:
    """Monotonic time that only moves when something sleeps."""

    now: float = 0.0
    sleeps: list[float] = attrs.Factory(list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def make_decide_fn(
    policy: RetryPolicy, clock: FakeClock, *, is_post: bool = False, retry_unsafe: bool = False
) -> Callable[[tenacity.RetryCallState], Decision]:
    """The kind of glue a caller writes: classify the attempt, then call policy.decide()."""
    started = clock.monotonic()
    rng = random.Random(7)

    def decide_fn(state: tenacity.RetryCallState) -> Decision:
        assert state.outcome is not None
        status: int | None = None
        retry_after: float | None = None
        if state.outcome.failed:
            exc = state.outcome.exception()
            assert exc is not None
            assert isinstance(exc, httpx.HTTPError)
            outcome = classify(transport_error(exc, "GET", URL), is_post=is_post)
        else:
            response: httpx.Response = state.outcome.result()
            status = response.status_code
            outcome = classify_status(status)
            retry_after = parse_retry_after(response.headers.get("Retry-After"), WALL)
        return policy.decide(
            outcome=outcome,
            is_post=is_post,
            status_code=status,
            retry_after=retry_after,
            attempt=state.attempt_number,
            elapsed=clock.monotonic() - started,
            rng=rng,
            retry_unsafe=retry_unsafe,
        )

    return decide_fn


def scripted(*steps: httpx.Response | Exception) -> Callable[[], httpx.Response]:
    """A fake send(): returns or raises each step in turn."""
    queue: Iterator[httpx.Response | Exception] = iter(steps)

    def send() -> httpx.Response:
        step = next(queue)
        if isinstance(step, Exception):
            raise step
        return step

    return send


def resp(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("GET", URL))


def run(
    policy: RetryPolicy, send: Callable[[], httpx.Response], clock: FakeClock, **kw: bool
) -> httpx.Response:
    retrying = tenacity.Retrying(
        sleep=clock.sleep,
        **tenacity_kwargs(policy, make_decide_fn(policy, clock, **kw), clock.monotonic),
    )
    return retrying(send)


def test_retries_until_success_and_records_waits() -> None:
    """503, 503, 200: two waits of the exponential backoff, then the 200 is returned."""
    clock = FakeClock()
    policy = RetryPolicy(jitter=False)
    result = run(policy, scripted(resp(503), resp(503), resp(200)), clock)
    assert result.status_code == 200
    assert clock.sleeps == [0.5, 1.0]


def test_retry_after_is_honoured_and_clamped() -> None:
    """Retry-After seconds and dates replace the backoff; values past the cap are clamped."""
    clock = FakeClock()
    policy = RetryPolicy(jitter=False, deadline=300.0, max_retry_after=20.0)
    send = scripted(
        resp(429, **{"Retry-After": "3"}),
        resp(503, **{"Retry-After": "Wed, 01 May 2024 12:00:07 GMT"}),
        resp(503, **{"Retry-After": "3600"}),
        resp(200),
    )
    assert run(policy, send, clock).status_code == 200
    assert clock.sleeps == [3.0, 7.0, 20.0]


def test_jittered_waits_stay_under_the_backoff() -> None:
    """With full jitter each recorded wait is within [0, backoff for that attempt]."""
    clock = FakeClock()
    policy = RetryPolicy(attempts=5)
    run(policy, scripted(resp(502), resp(502), resp(502), resp(502), resp(200)), clock)
    assert len(clock.sleeps) == 4
    for n, wait in enumerate(clock.sleeps, start=1):
        assert 0.0 <= wait <= 0.5 * 2 ** (n - 1)


def test_gives_up_after_attempts_and_returns_last_response() -> None:
    """After `attempts` tries the last response comes back (the client turns it into an error)."""
    clock = FakeClock()
    policy = RetryPolicy.no_wait(attempts=3)
    send = scripted(resp(503), resp(503), resp(504), resp(200))
    result = run(policy, send, clock)
    assert result.status_code == 504
    assert clock.sleeps == [0.0, 0.0]


def test_gives_up_at_the_deadline_with_the_original_exception() -> None:
    """When the next wait would pass the deadline the attempt's own exception is re-raised."""
    clock = FakeClock()
    policy = RetryPolicy(jitter=False, attempts=10, deadline=2.0)
    send = scripted(*[httpx.ConnectError("refused")] * 10)
    with pytest.raises(httpx.ConnectError):
        run(policy, send, clock)
    assert clock.sleeps == [0.5, 1.0]  # the next wait (2.0) would end at 3.5 > 2.0


def test_fatal_is_not_retried() -> None:
    """A 404 comes straight back without any sleeping."""
    clock = FakeClock()
    assert run(RetryPolicy(), scripted(resp(404), resp(200)), clock).status_code == 404
    assert clock.sleeps == []


def test_post_read_timeout_stops_for_reconcile() -> None:
    """A POST whose response timed out is not sent again; the loop ends on "reconcile"."""
    clock = FakeClock()
    policy = RetryPolicy()
    kwargs = tenacity_kwargs(policy, make_decide_fn(policy, clock, is_post=True), clock.monotonic)
    calls = 0
    last_state: tenacity.RetryCallState | None = None
    with pytest.raises(httpx.ReadTimeout):  # noqa: PT012 - the loop is the unit under test
        for attempt in tenacity.Retrying(sleep=clock.sleep, **kwargs):
            last_state = attempt.retry_state
            with attempt:
                calls += 1
                raise httpx.ReadTimeout("no answer")
    assert calls == 1
    assert last_state is not None
    decision = decision_of(last_state)
    assert decision is not None
    assert decision.action == "reconcile"


def test_post_never_sent_is_retried() -> None:
    """A POST that failed to connect is sent again: it provably never arrived."""
    clock = FakeClock()
    policy = RetryPolicy.no_wait()
    send = scripted(httpx.ConnectError("refused"), resp(201))
    assert run(policy, send, clock, is_post=True).status_code == 201


def test_post_retry_unsafe_retries_ambiguous_outcomes() -> None:
    """With retry_unsafe=True a POST read timeout is retried like a GET."""
    clock = FakeClock()
    policy = RetryPolicy.no_wait()
    send = scripted(httpx.ReadTimeout("slow"), resp(201))
    assert run(policy, send, clock, is_post=True, retry_unsafe=True).status_code == 201


def test_stop_guard_enforces_attempts_without_decide() -> None:
    """The stop= guard ends the loop at `attempts` even if decide_fn always says retry."""
    clock = FakeClock()
    policy = RetryPolicy.no_wait(attempts=3)
    always = Decision("retry", 1.0, "test")
    kwargs = tenacity_kwargs(policy, lambda _state: always, clock.monotonic)
    calls: list[int] = []

    def send() -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused")

    with pytest.raises(httpx.ConnectError):
        tenacity.Retrying(sleep=clock.sleep, **kwargs)(send)
    assert len(calls) == 3


def test_stop_guard_returns_the_last_response_not_a_retry_error() -> None:
    """When the guard stops a loop over responses, the last response comes back as a stop."""
    clock = FakeClock()
    policy = RetryPolicy.no_wait(attempts=2)
    kwargs = tenacity_kwargs(policy, lambda _state: Decision("retry", 0.0, "test"), clock.monotonic)
    last_state: tenacity.RetryCallState | None = None
    send = scripted(resp(503), resp(502), resp(200))
    result: httpx.Response | None = None
    for attempt in tenacity.Retrying(sleep=clock.sleep, **kwargs):
        last_state = attempt.retry_state
        with attempt:
            result = send()
    assert result is not None
    assert result.status_code == 502
    assert last_state is not None
    assert decision_of(last_state) == Decision("stop", 0.0, "attempts")


def test_stop_guard_enforces_the_deadline_without_decide() -> None:
    """The stop= guard refuses a sleep that would end past the deadline."""
    clock = FakeClock()
    policy = RetryPolicy(attempts=100, deadline=10.0)
    always = Decision("retry", 4.0, "test")
    kwargs = tenacity_kwargs(policy, lambda _state: always, clock.monotonic)
    with pytest.raises(httpx.ConnectError):
        tenacity.Retrying(sleep=clock.sleep, **kwargs)(scripted(*[httpx.ConnectError("x")] * 9))
    assert clock.sleeps == [4.0, 4.0]


def test_async_retrying_runs_the_same_policy() -> None:
    """tenacity.AsyncRetrying with the same kwargs makes the same waits as the sync loop."""
    clock = FakeClock()
    policy = RetryPolicy(jitter=False)
    send = scripted(resp(503), httpx.ReadTimeout("x"), resp(200))

    async def asend() -> httpx.Response:
        return send()

    async def main() -> httpx.Response:
        retrying = tenacity.AsyncRetrying(
            sleep=clock.asleep,
            **tenacity_kwargs(policy, make_decide_fn(policy, clock), clock.monotonic),
        )
        return await retrying(asend)

    assert asyncio.run(main()).status_code == 200
    assert clock.sleeps == [0.5, 1.0]
