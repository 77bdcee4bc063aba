"""The pure decisions behind "every call bounded in time" (issue 11.4-11.7, 11.9), no network.

The breaker's resource rule, fail-fast versus waiting for recovery, the error a call raises,
the submit's limit on the calls inside it, and the exchange deadline's clamps, each alone.
"""

from __future__ import annotations

import math
import pickle
import random
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import httpcore
import httpx
import pytest

import civic311
from civic311._client import transport
from civic311._client._exchange import EXCHANGE_DEADLINE
from civic311._client._network import DeadlineBackend
from civic311._client.execution import CallRun, call_limit
from civic311._protocol import list_services_call
from civic311._resilience import RetryPolicy
from civic311._resilience.pool import EndpointPool, EndpointState
from civic311.errors import (
    AllEndpointsFailedError,
    Attempt,
    DecodeError,
    ServerError,
    TransportError,
)
from civic311.testing import VirtualClock

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
A, B = "https://a.example/v2", "https://b.example/v2"


def server_error() -> ServerError:
    return ServerError(status_code=500, method="GET", url=A + "/requests/99999.json")


def refused(url: str = A) -> TransportError:
    return TransportError("could not connect", method="GET", url=url, sent=False)


# --- 11.4: the breaker's resource rule --------------------------------------------------------


def test_one_resources_500s_count_once() -> None:
    """Any number of 500s from one operation count once towards the breaker."""
    pool = EndpointPool([A], wall=T0, failure_threshold=3)
    endpoint = pool.candidates(0.0)[0]
    for second in range(10):
        pool.record_failure(endpoint, error="HTTP 500", now=second, wall=T0, resource="get_request")
    health = pool.health()[0]
    assert (health.state, health.consecutive_failures, health.failures) == (
        EndpointState.DEGRADED,
        1,
        10,
    )
    assert pool.candidates(10.0)


def test_500s_across_different_calls_open_the_breaker() -> None:
    """500s from three different operations are an outage: the endpoint goes down."""
    pool = EndpointPool([A], wall=T0, failure_threshold=3, cooldown=30)
    endpoint = pool.candidates(0.0)[0]
    for operation in ("get_request", "list_services", "get_service_definition"):
        pool.record_failure(endpoint, error="HTTP 500", now=1.0, wall=T0, resource=operation)
    assert pool.health()[0].state is EndpointState.DOWN
    assert pool.candidates(2.0) == []


def test_a_success_forgets_the_failing_resources() -> None:
    """After a success, the same resource's next 500 counts again (once)."""
    pool = EndpointPool([A], wall=T0, failure_threshold=2)
    endpoint = pool.candidates(0.0)[0]
    pool.record_failure(endpoint, error="500", now=0.0, wall=T0, resource="get_request")
    pool.record_success(endpoint, latency=0.1, now=1.0, wall=T0)
    pool.record_failure(endpoint, error="500", now=2.0, wall=T0, resource="get_request")
    pool.record_failure(endpoint, error="500", now=3.0, wall=T0, resource="get_request")
    assert pool.health()[0].consecutive_failures == 1


def test_endpoint_level_failures_always_count() -> None:
    """Refusals, timeouts, 502-504 and maintenance pages count each time."""
    pool = EndpointPool([A], wall=T0, failure_threshold=3)
    endpoint = pool.candidates(0.0)[0]
    for second in range(3):
        pool.record_failure(endpoint, error="refused", now=second, wall=T0)
    assert pool.health()[0].state is EndpointState.DOWN


def test_a_failed_probe_restarts_the_cool_down_even_for_a_counted_resource() -> None:
    """While down, any failure (a probe's 500 too) starts a fresh cool-down."""
    pool = EndpointPool([A], wall=T0, failure_threshold=1, cooldown=10)
    endpoint = pool.candidates(0.0)[0]
    pool.record_failure(endpoint, error="500", now=0.0, wall=T0, resource="get_request")
    probe = pool.candidates(10.0)[0]
    assert probe.is_probe
    pool.record_failure(probe, error="500", now=10.0, wall=T0, resource="get_request")
    assert pool.candidates(15.0) == []
    assert pool.candidates(20.0)[0].is_probe


def test_the_pool_keeps_each_endpoints_last_error_object() -> None:
    """last_exceptions gives each endpoint's last failure, in configured order."""
    pool = EndpointPool([A, B], wall=T0)
    a, b = pool.candidates(0.0)
    first, second = refused(B), refused(A)
    pool.record_failure(b, error="x", now=0.0, wall=T0, exception=first)
    pool.record_failure(a, error="x", now=0.0, wall=T0, exception=second)
    assert list(pool.last_exceptions().items()) == [(A, second), (B, first)]


# --- 11.5: fail fast, or wait for recovery when asked -----------------------------------------


def make_run(pool: EndpointPool, policy: RetryPolicy, clock: VirtualClock) -> CallRun:
    return CallRun(
        list_services_call(),
        pool=pool,
        policy=policy,
        clock=clock,
        rng=random.Random(0),
        other_channels=("phone: 311",),
    )


def down_pool(clock: VirtualClock, *urls: str, cooldown: float = 30.0) -> EndpointPool:
    pool = EndpointPool(list(urls), wall=clock.now(), failure_threshold=1, cooldown=cooldown)
    for endpoint in pool.candidates(clock.monotonic()):
        pool.record_failure(
            endpoint,
            error="refused",
            now=clock.monotonic(),
            wall=clock.now(),
            exception=refused(endpoint.url),
        )
    return pool


def test_every_endpoint_down_fails_fast_by_default() -> None:
    """No endpoint on offer: no wait; the error says when the next probe is due."""
    clock = VirtualClock()
    pool = down_pool(clock, A, B)
    clock.advance(10)
    run = make_run(pool, RetryPolicy(), clock)
    assert run.next_endpoint() is None
    assert run.recovery_wait() is None
    error = run.unavailable()
    assert isinstance(error, AllEndpointsFailedError)
    assert error.attempts == []
    assert error.next_probe_at == clock.now() + timedelta(seconds=20)
    assert "next probe is due" in str(error)
    assert "(in 20s)" in str(error)
    assert "phone: 311" in str(error)
    assert list(error.errors) == [A, B]
    assert error.__cause__ is error.errors[B]


def test_wait_for_recovery_waits_for_the_soonest_cool_down_within_the_deadline() -> None:
    """wait_for_recovery=True: wait the cool-down's rest if the deadline allows, else give up."""
    clock = VirtualClock()
    pool = down_pool(clock, A, cooldown=5)
    run = make_run(pool, RetryPolicy(deadline=30, wait_for_recovery=True), clock)
    assert run.recovery_wait() == pytest.approx(5.0)
    late = make_run(pool, RetryPolicy(deadline=4, wait_for_recovery=True), clock)
    assert late.recovery_wait() is None


def test_waits_for_recovery_are_counted() -> None:
    """At most policy.attempts recovery waits: the loop is bounded even if time stands still."""
    clock = VirtualClock()
    pool = down_pool(clock, A, cooldown=1)
    run = make_run(pool, RetryPolicy(attempts=2, deadline=60, wait_for_recovery=True), clock)
    assert [run.recovery_wait() is not None for _ in range(3)] == [True, True, False]


def test_wait_for_recovery_must_be_a_bool() -> None:
    """The option is checked like every other policy field."""
    with pytest.raises(TypeError, match="wait_for_recovery"):
        RetryPolicy(wait_for_recovery="yes")  # type: ignore[arg-type]
    assert RetryPolicy().wait_for_recovery is False


# --- 11.9: which error a call raises ----------------------------------------------------------


def fail_attempt(run: CallRun, error: civic311.Civic311Error) -> None:
    endpoint = run.next_endpoint()
    assert endpoint is not None
    run.failed(endpoint, "json", error, 0.01)
    run.decide(error)


def test_one_endpoint_gives_up_with_the_underlying_error() -> None:
    """One endpoint: the last failure itself, with every attempt attached."""
    clock = VirtualClock()
    pool = EndpointPool([A], wall=clock.now())
    run = make_run(pool, RetryPolicy.no_wait(attempts=2), clock)
    errors = [DecodeError("HTML page", status_code=200), DecodeError("HTML", status_code=200)]
    for error in errors:
        fail_attempt(run, error)
    final = run.failure(errors[-1])
    assert final is errors[-1]
    assert [a.error for a in final.attempts] == errors


def test_several_endpoints_give_up_with_all_endpoints_failed() -> None:
    """Several endpoints: AllEndpointsFailedError, each endpoint's last error, the cause last."""
    clock = VirtualClock()
    pool = EndpointPool([A, B], wall=clock.now())
    run = make_run(pool, RetryPolicy.no_wait(attempts=2), clock)
    first, second = refused(A), server_error()
    fail_attempt(run, first)
    fail_attempt(run, second)
    final = run.failure(second)
    assert isinstance(final, AllEndpointsFailedError)
    assert final.errors == {A: first, B: second}
    assert final.__cause__ is second
    assert final.last_error is second


def test_call_limit_tightens_the_deadline_of_calls_inside() -> None:
    """Inside call_limit, a call's deadline ends at the limit; past it, no attempt starts."""
    clock = VirtualClock()
    pool = EndpointPool([A], wall=clock.now())
    with call_limit(clock.monotonic() + 2):
        run = make_run(pool, RetryPolicy(deadline=30), clock)
        assert run.time_left() == pytest.approx(2.0)
        clock.advance(3)
        late = make_run(pool, RetryPolicy(deadline=30), clock)
        assert late.next_endpoint() is None
        assert "no time left" in str(late.unavailable())
    assert make_run(pool, RetryPolicy(deadline=30), clock).time_left() == 30.0


def test_errors_with_their_attempts_pickle() -> None:
    """An error whose last attempt holds the error itself crosses a process boundary."""
    error = ServerError(status_code=503, method="GET", url=A)
    error.attempts = [Attempt(endpoint=A, number=1, outcome="HTTP 503", error=error)]
    again = pickle.loads(pickle.dumps(error))
    assert again.status_code == 503
    assert again.attempts[0].error is again
    wrapped = AllEndpointsFailedError("list_services", error.attempts, errors={A: error})
    assert pickle.loads(pickle.dumps(wrapped)).errors[A].status_code == 503


@pytest.mark.parametrize(
    "error",
    [
        civic311.InvalidRequestError("lat", "out of range"),
        AllEndpointsFailedError("list_services", [], other_channels=["phone: 311"]),
        civic311.SubmissionUncertainError(
            "unknown", civic311.NewRequest(service_code="1", address_string="1 Main St")
        ),
        civic311.WaitTimeoutError("tok", 1.0, 2),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_error_pickles_with_its_attributes(error: civic311.Civic311Error) -> None:
    """Errors whose constructors take other arguments pickle too, attributes and all."""
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert vars(again).keys() == vars(error).keys()


# --- 11.7: the exchange deadline ---------------------------------------------------------------


class FakeStream(httpcore.NetworkStream):
    """Records the timeouts it is given; times out when given less than *needs* seconds."""

    def __init__(self, needs: float = 0.0) -> None:
        self.needs = needs
        self.timeouts: list[float | None] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.timeouts.append(timeout)
        if timeout is not None and timeout < self.needs:
            raise httpcore.ReadTimeout("slow")
        return b"x"

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.timeouts.append(timeout)

    def close(self) -> None:
        pass


class FakeBackend(httpcore.NetworkBackend):
    def __init__(self, stream: FakeStream) -> None:
        self.stream = stream
        self.connect_timeouts: list[float | None] = []

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, *_: Any, **__: Any
    ) -> Any:
        self.connect_timeouts.append(timeout)
        return self.stream


def test_socket_operations_get_at_most_the_time_left() -> None:
    """Inside deadline_scope, connect, read and write get min(httpx timeout, time left)."""
    stream = FakeStream()
    backend = DeadlineBackend(FakeBackend(stream))
    with transport.deadline_scope(5.0):
        connected = backend.connect_tcp("127.0.0.1", 80, timeout=10.0)
        connected.read(10, timeout=1.0)
        connected.write(b"x", timeout=60.0)
    first_connect = backend._inner.connect_timeouts[0]  # type: ignore[attr-defined]
    assert first_connect is not None
    assert 4.0 < first_connect <= 5.0
    assert stream.timeouts[0] == 1.0  # httpx's own timeout was the tighter one
    assert stream.timeouts[1] is not None
    assert stream.timeouts[1] <= 5.0
    connected.read(10, timeout=None)  # outside the scope: untouched
    assert stream.timeouts[-1] is None


def test_a_clamped_read_timeout_is_the_deadline_not_the_read_timeout() -> None:
    """When the deadline is what cut a read short, it surfaces as TimeoutError."""
    backend = DeadlineBackend(FakeBackend(FakeStream(needs=1.0)))
    with transport.deadline_scope(0.5):
        connected = backend.connect_tcp("127.0.0.1", 80, timeout=10.0)
        with pytest.raises(TimeoutError):
            connected.read(10, timeout=30.0)
    with pytest.raises(httpcore.ReadTimeout):  # httpx's own read timeout stays what it was
        connected.read(10, timeout=0.5)


def test_past_the_deadline_nothing_more_is_read() -> None:
    """Once the exchange's deadline has passed, the body read stops with TimeoutError."""

    def chunks() -> Any:
        yield b"["
        yield b"]"

    response = httpx.Response(200, content=chunks(), request=httpx.Request("GET", A))
    token = EXCHANGE_DEADLINE.set(time.monotonic() - 1)
    try:
        with pytest.raises(TimeoutError):
            transport.read_body(response, 1024)
    finally:
        EXCHANGE_DEADLINE.reset(token)


def test_the_deadline_error_is_a_transport_error_that_may_have_been_sent() -> None:
    """A cut-short exchange is ambiguous: a POST is reconciled, never blindly re-sent."""
    error = transport.deadline_error("POST", A + "/requests.json", 2.0)
    assert isinstance(error, TransportError)
    assert error.sent is True
    assert "deadline (2.0s)" in str(error)


def test_civic311_owned_sync_clients_bound_their_sockets() -> None:
    """The sync client puts DeadlineBackend under the connection pool it creates."""
    with civic311.Client(A) as client:
        pool = client._http._transport._pool  # type: ignore[attr-defined]
        assert isinstance(pool._network_backend, DeadlineBackend)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_async_deadline_scope_ends_a_wait_with_timeout_error(backend: str) -> None:
    """adeadline_scope (asyncio.timeout on asyncio, anyio's scope on trio) raises TimeoutError."""

    async def main() -> None:
        async with transport.adeadline_scope(0.01):  # raised to MIN_EXCHANGE (0.1 s)
            await anyio.sleep(30)

    with pytest.raises(TimeoutError):
        anyio.run(main, backend=backend)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_async_deadline_scope_lets_a_quick_exchange_through(backend: str) -> None:
    """Inside adeadline_scope, work that ends in time returns normally (no scope is left set)."""

    async def main() -> int:
        async with transport.adeadline_scope(None):
            pass
        async with transport.adeadline_scope(30.0):
            await anyio.sleep(0.001)
        return 7

    assert anyio.run(main, backend=backend) == 7


@pytest.mark.parametrize(
    "timeout",
    [
        httpx.Timeout(10.0),
        httpx.Timeout(10.0, connect=3.0),
        httpx.Timeout(None),
        httpx.Timeout(5.0, read=None),
    ],
)
@pytest.mark.parametrize("left", [0.0, 0.5, 3.0, 7.0, 10.0, 60.0, math.inf])
def test_each_timeout_is_cut_to_the_time_left(timeout: httpx.Timeout, left: float) -> None:
    """_timeout_within gives each httpx timeout as min(its own, time left); unset ones the left."""
    client = civic311.Client("https://city.example/v2", timeout=timeout)
    bound = max(left, 0.001)
    expected = {k: bound if v is None else min(v, bound) for k, v in timeout.as_dict().items()}
    assert client._timeout_within(left) == expected
    first = client._timeout_within(left)
    first["read"] = -1.0  # each call gets its own dict: a request's change stays its own
    assert client._timeout_within(left) == expected
    client.close()
