"""Retries, failover, circuit breaking, format fallback and POST safety, over mock transports.

Time is a VirtualClock throughout, so backoffs and cool-downs pass instantly and exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

import civic311
import civic311.triage
from civic311._resilience import RetryPolicy
from civic311._resilience.pool import EndpointState
from civic311.testing._vclock import VirtualClock

from helpers import AsyncCaller, Both

PRIMARY = "https://primary.example/v2"
MIRROR = "https://mirror.example/v2"
NEW = civic311.NewRequest(service_code="001", lat=37.76, long=-122.42, description="Pothole on 5th")

Behaviour = Callable[[httpx.Request], httpx.Response]


def ok_services(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[{"service_code": "001", "service_name": "Pothole"}])


def status(code: int, **headers: str) -> Behaviour:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, text="<html>busy</html>", headers=headers)

    return answer


def raises(exc: type[httpx.HTTPError]) -> Behaviour:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc("simulated", request=request)

    return answer


class Hosts:
    """A handler routing by host, counting the requests each host saw."""

    def __init__(self, **behaviours: Behaviour) -> None:
        self.behaviours = {f"{name}.example": b for name, b in behaviours.items()}
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.url.host.split(".")[0], request.method, request.url.path))
        return self.behaviours[request.url.host](request)

    def count(self, host: str) -> int:
        return sum(1 for h, _, _ in self.seen if h == host)


def options(clock: VirtualClock, **extra: Any) -> dict[str, Any]:
    return {"endpoints": [PRIMARY, MIRROR], "clock": clock, **extra}


@pytest.mark.parametrize(
    "failure",
    [
        raises(httpx.ConnectError),
        raises(httpx.ConnectTimeout),
        raises(httpx.ReadTimeout),
        raises(httpx.RemoteProtocolError),
        status(500),
        status(502),
        status(503),
        status(504),
        status(429),
        lambda r: httpx.Response(200, text="<html><body>Maintenance</body></html>"),
        lambda r: httpx.Response(200, text='[{"service_code": "0'),
    ],
)
def test_reads_fail_over_to_the_mirror_at_once(both: Both, failure: Behaviour) -> None:
    """Any transient failure on the primary sends a read to the mirror with no backoff."""
    clock = VirtualClock()
    hosts = Hosts(primary=failure, mirror=ok_services)
    services = both(hosts, "list_services", client=options(clock))
    assert services[0].service_code == "001"
    assert [h for h, _, _ in hosts.seen] == ["primary", "mirror"]
    assert clock.monotonic() == 0.0


@pytest.mark.parametrize("code", [400, 403, 404, 422])
def test_client_errors_never_fail_over(both: Both, code: int) -> None:
    """A 4xx is an answer: raised at once, the mirror never asked."""
    clock = VirtualClock()
    hosts = Hosts(primary=status(code), mirror=ok_services)
    with pytest.raises(civic311.APIError) as caught:
        both(hosts, "list_services", client=options(clock))
    assert caught.value.status_code == code
    assert hosts.count("mirror") == 0
    assert len(hosts.seen) == 1  # an HTML 404 says nothing about formats: no XML retry


def test_retry_after_is_honoured_on_a_single_endpoint(both: Both) -> None:
    """A 503 with Retry-After waits that long before asking again."""
    clock = VirtualClock()
    answers = iter([status(503, **{"Retry-After": "7"}), ok_services])
    hosts = Hosts(primary=lambda r: next(answers)(r))
    both(hosts, "list_services", client={"endpoints": PRIMARY, "clock": clock})
    assert hosts.count("primary") == 2
    assert clock.monotonic() == pytest.approx(7.0)


def test_retry_after_beyond_the_deadline_gives_up_at_once(both: Both) -> None:
    """A Retry-After longer than the deadline stops instead of waiting in vain."""
    clock = VirtualClock()
    hosts = Hosts(primary=status(429, **{"Retry-After": "3600"}))
    # One endpoint: the error is the 429 itself, with its one attempt (issue 11.9).
    with pytest.raises(civic311.RateLimitedError) as caught:
        both(hosts, "list_services", client={"endpoints": PRIMARY, "clock": clock})
    assert clock.monotonic() == 0.0
    assert hosts.count("primary") == 1
    assert caught.value.retry_after == 3600.0
    assert [(a.number, a.wait) for a in caught.value.attempts] == [(1, 0.0)]
    assert caught.value.attempts[0].error is caught.value


def test_backoff_between_rounds_is_bounded_and_the_error_lists_attempts(both: Both) -> None:
    """When every endpoint keeps failing, rounds back off and the error lists each attempt."""
    clock = VirtualClock()
    hosts = Hosts(primary=status(503), mirror=status(502))
    policy = RetryPolicy(attempts=4, deadline=30, initial_wait=1, max_wait=4, jitter=False)
    with pytest.raises(civic311.AllEndpointsFailedError) as caught:
        both(hosts, "list_services", client=options(clock, retry=policy))
    error = caught.value
    assert [a.endpoint for a in error.attempts] == [PRIMARY, MIRROR, PRIMARY, MIRROR]
    assert [a.wait for a in error.attempts] == [0.0, 2.0, 0.0, 0.0]
    assert "HTTP 503" in error.attempts[0].outcome
    assert "#4 https://mirror.example/v2" in str(error)
    assert clock.monotonic() == pytest.approx(2.0)


def test_circuit_opens_and_later_calls_skip_the_dead_primary(both: Both) -> None:
    """After three failures the primary is down: later calls go straight to the mirror."""
    clock = VirtualClock()
    hosts = Hosts(primary=raises(httpx.ConnectTimeout), mirror=ok_services)
    flavor_client = _client(both, hosts, options(clock))
    with flavor_client as call:
        for _ in range(5):
            call("list_services")
        health = call.health()
    assert hosts.count("primary") == 3
    assert hosts.count("mirror") == 5
    primary, mirror = health
    assert primary.state is EndpointState.DOWN
    assert primary.consecutive_failures == 3
    assert "ConnectTimeout" in (primary.last_error or "")
    assert mirror.state is EndpointState.UP
    assert mirror.latency_avg is not None


def test_half_open_probe_after_cooldown_brings_the_primary_back(both: Both) -> None:
    """After the cool-down one call probes the primary; success puts it back first in line."""
    clock = VirtualClock()
    failing = {"on": True}

    def primary(request: httpx.Request) -> httpx.Response:
        if failing["on"]:
            raise httpx.ConnectError("refused", request=request)
        return ok_services(request)

    hosts = Hosts(primary=primary, mirror=ok_services)
    with _client(both, hosts, options(clock, cooldown=60)) as call:
        for _ in range(4):
            call("list_services")
        assert hosts.count("primary") == 3
        failing["on"] = False
        clock.advance(61)
        call("list_services")
        call("list_services")
        assert call.health()[0].state is EndpointState.UP
    assert [h for h, _, _ in hosts.seen][-2:] == ["primary", "primary"]


def test_every_endpoint_down_fails_fast_naming_the_attempts(both: Both) -> None:
    """With every endpoint known down, a call fails at once without paying any timeout."""
    clock = VirtualClock()
    hosts = Hosts(primary=raises(httpx.ConnectError), mirror=raises(httpx.ConnectError))
    policy = RetryPolicy.no_wait(attempts=10)
    with _client(both, hosts, options(clock, retry=policy, failure_threshold=2)) as call:
        with pytest.raises(civic311.AllEndpointsFailedError):
            call("list_services")
        seen = len(hosts.seen)
        with pytest.raises(civic311.AllEndpointsFailedError, match="known to be down"):
            call("list_services")
    assert len(hosts.seen) == seen


def test_json_404_without_error_body_switches_to_xml(both: Both) -> None:
    """An XML-only endpoint (text 404 on .json) is switched to XML, and stays switched."""
    clock = VirtualClock()

    def xml_only(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(".json"):
            return httpx.Response(404, text="Bad extension. We support .xml and .json")
        return httpx.Response(
            200, text="<services><service><service_code>7</service_code></service></services>"
        )

    hosts = Hosts(primary=xml_only)
    with _client(both, hosts, {"endpoints": PRIMARY, "clock": clock}) as call:
        assert call("list_services")[0].service_code == "7"
        call("list_services")
        health = call.health()[0]
    assert [p for _, _, p in hosts.seen] == [
        "/v2/services.json",
        "/v2/services.xml",
        "/v2/services.xml",
    ]
    assert health.format == "xml"
    assert health.format_switched


def test_xml_answer_to_json_switches_the_endpoint(both: Both) -> None:
    """An endpoint answering .json with XML is decoded, and asked in XML from then on."""
    clock = VirtualClock()
    hosts = Hosts(
        primary=lambda r: httpx.Response(
            200, text="<services><service><service_code>7</service_code></service></services>"
        )
    )
    with _client(both, hosts, {"endpoints": PRIMARY, "clock": clock}) as call:
        call("list_services")
        call("list_services")
    assert [p for _, _, p in hosts.seen] == ["/v2/services.json", "/v2/services.xml"]


@pytest.mark.parametrize(
    "answer",
    [
        lambda r: httpx.Response(404, json=[{"code": 404, "description": "no such service"}]),
        lambda r: httpx.Response(200, text="<html><body>Login</body></html>"),
        lambda r: httpx.Response(200, text='[{"service_code": '),
    ],
)
def test_json_errors_html_and_truncation_never_switch_format(both: Both, answer: Behaviour) -> None:
    """A JSON error body, an HTML page or truncated JSON leaves the endpoint on JSON."""
    clock = VirtualClock()
    hosts = Hosts(primary=answer)
    with _client(both, hosts, {"endpoints": PRIMARY, "clock": clock, "retry": None}) as call:
        with pytest.raises(civic311.Civic311Error):
            call("list_services")
        assert call.health()[0].format == "json"


# --- POST safety ---------------------------------------------------------------------------


def created(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[{"service_request_id": "101"}])


@pytest.mark.parametrize(
    "failure",
    [raises(httpx.ConnectError), raises(httpx.ConnectTimeout), status(503), status(429)],
)
def test_post_that_never_arrived_goes_to_the_mirror(both: Both, failure: Behaviour) -> None:
    """A POST refused before the server acted is sent to the mirror."""
    clock = VirtualClock()
    hosts = Hosts(primary=failure, mirror=created)
    receipt = both(hosts, "submit", NEW, client=options(clock))
    assert receipt.service_request_id == "101"
    assert not receipt.reconciled
    assert [(h, m) for h, m, _ in hosts.seen] == [("primary", "POST"), ("mirror", "POST")]


def listing(*records: dict[str, Any]) -> Behaviour:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=list(records))

    return answer


def post_then(post: Behaviour, get: Behaviour) -> Behaviour:
    def answer(request: httpx.Request) -> httpx.Response:
        return post(request) if request.method == "POST" else get(request)

    return answer


MATCH = {
    "service_request_id": "555",
    "service_code": "001",
    "description": "pothole on  5th",
    "lat": 37.76001,
    "long": -122.42001,
    "requested_datetime": "2026-01-01T00:00:03Z",
}


@pytest.mark.parametrize(
    "ambiguous",
    [
        raises(httpx.ReadTimeout),
        raises(httpx.RemoteProtocolError),
        status(502),
        status(504),
        status(500),
    ],
)
def test_ambiguous_post_is_reconciled_not_resent(both: Both, ambiguous: Behaviour) -> None:
    """After an ambiguous failure the client finds the created request instead of re-sending."""
    clock = VirtualClock()
    hosts = Hosts(primary=post_then(ambiguous, listing(MATCH)), mirror=created)
    receipt = both(hosts, "submit", NEW, client=options(clock))
    assert receipt.service_request_id == "555"
    assert receipt.reconciled
    posts = [h for h, m, _ in hosts.seen if m == "POST"]
    assert posts == ["primary"]


def test_reconcile_ignores_lookalikes(both: Both) -> None:
    """Requests that differ in description, place, code or time are not taken for ours."""
    clock = VirtualClock()
    others = [
        {**MATCH, "service_request_id": "1", "description": "Pothole on 6th"},
        {**MATCH, "service_request_id": "2", "lat": 37.8},
        {**MATCH, "service_request_id": "3", "service_code": "002"},
        {**MATCH, "service_request_id": "4", "requested_datetime": "2025-12-31T23:00:00Z"},
        {"service_request_id": "5", "service_code": "001"},  # echoes nothing to confirm with
    ]
    hosts = Hosts(primary=post_then(raises(httpx.ReadTimeout), listing(*others)))
    with pytest.raises(civic311.SubmissionUncertainError) as caught:
        both(
            hosts, "submit", NEW, client={"endpoints": PRIMARY, "clock": clock, "reconcile_wait": 5}
        )
    assert caught.value.request == NEW
    assert [m for _, m, _ in hosts.seen].count("POST") == 1
    assert clock.monotonic() <= 5 + 30  # bounded by reconcile_wait (plus the settle wait)


def test_retry_unsafe_resends_after_ambiguity(both: Both) -> None:
    """retry_unsafe=True opts into re-sending a POST whose outcome was unknown."""
    clock = VirtualClock()
    hosts = Hosts(primary=raises(httpx.ReadTimeout), mirror=created)
    receipt = both(hosts, "submit", NEW, retry_unsafe=True, client=options(clock))
    assert receipt.service_request_id == "101"
    assert [h for h, m, _ in hosts.seen if m == "POST"] == ["primary", "mirror"]


def test_post_fatal_error_is_raised_as_is(both: Both) -> None:
    """A 400 on POST is the city's answer: raised at once, nothing re-sent or reconciled."""
    clock = VirtualClock()
    hosts = Hosts(
        primary=lambda r: httpx.Response(400, json=[{"code": 400, "description": "lat missing"}]),
        mirror=created,
    )
    with pytest.raises(civic311.BadRequestError, match="lat missing"):
        both(hosts, "submit", NEW, client=options(clock))
    assert len(hosts.seen) == 1


def test_attempt_hook_sees_every_attempt(both: Both) -> None:
    """on_attempt receives one event per attempt with endpoint, outcome and wait."""
    clock = VirtualClock()
    events: list[Any] = []
    hosts = Hosts(primary=status(503), mirror=ok_services)
    both(hosts, "list_services", client=options(clock, on_attempt=events.append))
    assert [(e.endpoint, e.outcome, e.wait) for e in events] == [
        (PRIMARY, "retryable_status", 0.0),
        (MIRROR, "ok", 0.0),
    ]
    assert events[0].operation == "list_services"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("retry", 4),
        ("failure_threshold", 0),
        ("cooldown", -1),
        ("reconcile_wait", "x"),
        ("on_attempt", 3),
    ],
)
def test_resilience_options_are_checked(option: str, value: object) -> None:
    """Bad resilience options raise InvalidRequestError naming the option."""
    with pytest.raises(civic311.InvalidRequestError, match=option):
        civic311.Client(PRIMARY, **{option: value})


class _SyncCaller:
    def __init__(self, client: civic311.Client) -> None:
        self.client = client

    def __call__(self, method: str, *args: Any) -> Any:
        return getattr(self.client, method)(*args)

    def health(self) -> Any:
        return self.client.health()

    def __enter__(self) -> _SyncCaller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()


class _AsyncCaller(AsyncCaller):
    """Drives one AsyncClient across several calls on one event loop (asyncio or trio)."""

    def health(self) -> Any:
        return self.client.health()

    def __enter__(self) -> _AsyncCaller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _client(both: Both, handler: Behaviour, opts: dict[str, Any]) -> Any:
    opts = dict(opts)
    endpoints = opts.pop("endpoints")
    if both.flavor == "sync":
        client = civic311.Client(endpoints, transport=httpx.MockTransport(handler), **opts)
        return _SyncCaller(client)
    return _AsyncCaller(both.backend, endpoints, transport=httpx.MockTransport(handler), **opts)


def test_find_submitted_finds_what_a_lost_answer_created(both: Both) -> None:
    """find_submitted returns the request a lost submission created, or None."""
    clock = VirtualClock()
    hosts = Hosts(primary=listing(MATCH))
    sent_at = clock.now()
    found = both(
        hosts, "find_submitted", NEW, sent_at=sent_at, client={"endpoints": PRIMARY, "clock": clock}
    )
    assert found.service_request_id == "555"
    empty = Hosts(primary=listing())
    assert (
        both(
            empty,
            "find_submitted",
            NEW,
            sent_at=sent_at,
            client={"endpoints": PRIMARY, "clock": clock, "reconcile_wait": 3},
        )
        is None
    )
    with pytest.raises(civic311.InvalidRequestError, match="sent_at"):
        both(empty, "find_submitted", NEW, sent_at="now", client={"endpoints": PRIMARY})


def test_a_second_identical_report_is_never_reconciled_onto_the_first(both: Both) -> None:
    """Filing the same report twice: if the second POST's answer is lost, the first (already
    receipted) request is not taken for it — the outcome is uncertain, never a false success."""
    clock = VirtualClock()
    created = {"n": 0}
    stored: list[dict[str, Any]] = []

    def city(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            created["n"] += 1
            if created["n"] == 2:
                raise httpx.ReadTimeout("lost", request=request)  # not created: never stored
            stored.append({**MATCH, "service_request_id": f"70{created['n']}"})
            return httpx.Response(200, json=[{"service_request_id": f"70{created['n']}"}])
        return httpx.Response(200, json=stored)

    flavor = both.flavor
    if flavor == "sync":
        with civic311.Client(
            PRIMARY, transport=httpx.MockTransport(city), clock=clock, reconcile_wait=3
        ) as client:
            assert client.submit(NEW).service_request_id == "701"
            with pytest.raises(civic311.SubmissionUncertainError):
                client.submit(NEW)
    else:

        async def run() -> None:
            async with civic311.AsyncClient(
                PRIMARY, transport=httpx.MockTransport(city), clock=clock, reconcile_wait=3
            ) as client:
                assert (await client.submit(NEW)).service_request_id == "701"
                with pytest.raises(civic311.SubmissionUncertainError):
                    await client.submit(NEW)

        both.run(run)


def test_attempt_hook_sees_a_first_time_success(both: Both) -> None:
    """A call that succeeds at once still reports its one attempt to on_attempt."""
    events: list[Any] = []
    hosts = Hosts(primary=ok_services)
    both(hosts, "list_services", client={"endpoints": PRIMARY, "on_attempt": events.append})
    assert [(e.endpoint, e.outcome, e.attempt) for e in events] == [(PRIMARY, "ok", 1)]
