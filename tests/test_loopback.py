"""The client over real HTTP on 127.0.0.1 against FakeCity: every method in both formats, and
the fault matrix — every fault on the primary, for every operation, sync and async.

The client and the cities share a VirtualClock, so backoffs, token delays and reconciliation
waits are virtual; sockets, timeouts and faults are real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

import civic311
from civic311._resilience import RetryPolicy
from civic311.testing import FakeCity, Fault, VirtualClock

from helpers import ASYNC_BACKENDS, AsyncCaller

SECRET = "loopback-SECRET-key"
TIMEOUT = 0.5  # seconds: a hung primary costs this much real time per attempt


def pothole(tag: str) -> civic311.NewRequest:
    return civic311.NewRequest(
        service_code="001", lat=39.16, long=-86.52, description=f"Pothole {tag}"
    )


class Runner:
    """Calls client methods through Client, or AsyncClient on one event loop per test."""

    def __init__(self, flavor: str, endpoints: list[str], **options: Any) -> None:
        self.flavor = flavor
        self.caller: AsyncCaller | None = None
        if flavor == "sync":
            self.client: Any = civic311.Client(endpoints, **options)
        else:
            self.caller = AsyncCaller(flavor, endpoints, **options)
            self.client = self.caller.client

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.caller is not None:
            return self.caller(method, *args, **kwargs)
        return getattr(self.client, method)(*args, **kwargs)

    def close(self) -> None:
        if self.caller is not None:
            self.caller.close()
        else:
            self.client.close()


@pytest.fixture(scope="module")
def cities() -> Iterator[tuple[FakeCity, FakeCity, str, str, VirtualClock]]:
    """A primary and a mirror sharing one store, served on loopback for the whole module."""
    clock = VirtualClock()
    primary = FakeCity(seed=11, clock=clock, api_key=SECRET, token_delay=20.0)
    mirror = FakeCity(store=primary.store, clock=clock, api_key=SECRET, token_delay=20.0)
    with primary.serve() as primary_url, mirror.serve() as mirror_url:
        yield primary, mirror, primary_url, mirror_url, clock


@pytest.fixture
def pair(
    cities: tuple[FakeCity, FakeCity, str, str, VirtualClock],
) -> Iterator[tuple[FakeCity, FakeCity, str, str, VirtualClock]]:
    primary, mirror, *_ = cities
    yield cities
    primary.clear_faults()
    mirror.clear_faults()
    primary.up()
    mirror.up()


@pytest.fixture(params=["sync", *ASYNC_BACKENDS])
def flavor(request: pytest.FixtureRequest) -> str:
    """The client: "sync", or AsyncClient on "asyncio" or on "trio" (over real sockets)."""
    return str(request.param)


# --- every method, both formats, over loopback ----------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_every_method_over_loopback(pair: Any, flavor: str, fmt: str) -> None:
    """Each GeoReport method works over real HTTP in both formats."""
    primary, _, url, _, clock = pair
    run = Runner(flavor, [url], format=fmt, api_key=SECRET, clock=clock)
    try:
        services = run("list_services")
        assert {s.type for s in services} == {"realtime", "batch", "blackbox"}
        graffiti = run("get_service_definition", "003")
        surface = graffiti.attribute("SURFACE")
        assert surface is not None
        assert surface.required
        assert surface.datatype.is_multi
        keys = sorted(surface.value_keys())[:2]
        receipt = run(
            "submit",
            civic311.NewRequest(
                service_code="003",
                address_string="12 Kirkwood Ave",
                description=f"Tagged wall ({fmt}, {flavor})",
                attributes={"SURFACE": keys},
            ),
        )
        assert receipt.service_request_id
        stored = primary.get(receipt.service_request_id)
        assert stored is not None
        assert sorted(stored.attributes["SURFACE"]) == keys
        batch = run(
            "submit",
            pothole(f"batch {fmt} {flavor}").__class__(
                service_code="004", lat=39.1, long=-86.5, description=f"Noise {fmt} {flavor}"
            ),
        )
        assert batch.token
        assert not batch.service_request_id
        pending = run("get_token", batch.token)
        assert pending.pending
        request_id = run("wait_for_id", batch, timeout=120)
        one = run("get_request", request_id)
        assert one.service_request_id == request_id
        assert one.status == "open"
        blackbox = run("submit", civic311.NewRequest(service_code="005", address_id="A-17"))
        assert blackbox.service_request_id is None
        assert blackbox.token is None
        recent = run(
            "list_requests",
            service_code=["003", "004"],
            status="open",
            start_date=clock.now() - timedelta(days=1),
            end_date=clock.now() + timedelta(minutes=1),
        )
        assert {receipt.service_request_id, request_id} <= {r.service_request_id for r in recent}
        many = run("get_requests", [request_id, receipt.service_request_id, "no-such-id"])
        assert [r.service_request_id for r in many] == [request_id, receipt.service_request_id]
    finally:
        run.close()


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (lambda r: r("get_service_definition", "999"), civic311.NotFoundError, "999"),
        (lambda r: r("get_request", "nope"), civic311.NotFoundError, "nope"),
        (
            lambda r: r("submit", civic311.NewRequest(service_code="003", address_id="1")),
            civic311.BadRequestError,
            "SURFACE",
        ),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_city_errors_over_loopback(
    pair: Any, flavor: str, fmt: str, call: Callable[[Runner], Any], error: type, text: str
) -> None:
    """The city's 4xx answers arrive as typed errors with the city's own messages."""
    _, _, url, _, clock = pair
    run = Runner(flavor, [url], format=fmt, api_key=SECRET, clock=clock)
    try:
        with pytest.raises(error, match=text) as caught:
            call(run)
        assert caught.value.errors
    finally:
        run.close()


def test_wrong_api_key_is_forbidden_and_never_shown(pair: Any, flavor: str) -> None:
    """A bad key gets ForbiddenError; neither key appears in its text."""
    _, _, url, _, clock = pair
    run = Runner(flavor, [url], api_key="wrong-key-123", clock=clock)
    try:
        with pytest.raises(civic311.ForbiddenError) as caught:
            run("submit", pothole("forbidden"))
        assert "wrong-key-123" not in str(caught.value)
    finally:
        run.close()


# --- the fault matrix -------------------------------------------------------------------------

#: Faults injected on the primary, and whether a POST that meets them reaches the city.
FAULTS: dict[str, tuple[Callable[[FakeCity], None], str]] = {
    "down": (lambda c: c.down(), "refused"),
    "hang": (lambda c: c.inject(Fault.hang()), "not-created"),
    "500": (lambda c: c.inject(Fault.status(500)), "not-created"),
    "502": (lambda c: c.inject(Fault.status(502)), "not-created"),
    "503-retry-after": (lambda c: c.inject(Fault.status(503, retry_after="2")), "refused"),
    "503": (lambda c: c.inject(Fault.status(503, body="empty")), "refused"),
    "429-retry-after": (lambda c: c.inject(Fault.status(429, retry_after="1")), "refused"),
    "maintenance-200": (lambda c: c.inject(Fault.maintenance()), "not-created"),
    "truncated-cut": (lambda c: c.inject(Fault.truncated()), "created"),
    "truncated-short": (
        lambda c: c.inject(Fault.truncated(advertise_full_length=False)),
        "created",
    ),
    "reset": (lambda c: c.inject(Fault.reset()), "not-created"),
    "drop-after-create": (lambda c: c.inject(Fault.drop_after_create()), "created"),
    "latency": (lambda c: c.inject(Fault.latency(0.05)), "slow"),
}

OPERATIONS: dict[str, Callable[[Runner, dict[str, str]], Any]] = {
    "list_services": lambda r, ids: r("list_services"),
    "get_service_definition": lambda r, ids: r("get_service_definition", "003"),
    "get_token": lambda r, ids: r("get_token", ids["token"]),
    "wait_for_id": lambda r, ids: r("wait_for_id", ids["token"], timeout=120),
    "get_request": lambda r, ids: r("get_request", ids["id"]),
    "list_requests": lambda r, ids: r("list_requests", service_request_id=ids["id"]),
    "get_requests": lambda r, ids: r("get_requests", [ids["id"]]),
    "submit": lambda r, ids: r("submit", pothole(ids["tag"])),
}


def _seed(primary: FakeCity, clock: VirtualClock, tag: str) -> dict[str, str]:
    """A realtime request and a batch token to look up, made directly in the store."""
    with civic311.Client(
        primary.base_url, transport=primary.transport(), api_key=SECRET, clock=clock
    ) as direct:
        made = direct.submit(civic311.NewRequest(service_code="001", address_id=f"seed-{tag}"))
        token = direct.submit(
            civic311.NewRequest(service_code="004", address_id=f"noise-{tag}")
        ).token
    assert made.service_request_id
    assert token
    return {"id": made.service_request_id, "token": token, "tag": tag}


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_matrix(pair: Any, flavor: str, fault: str, operation: str) -> None:
    """A fault on the primary ends in success through the mirror, or — for a POST whose fate
    is unknown — in SubmissionUncertainError; never a duplicate, always within the deadline."""
    primary, _, primary_url, mirror_url, clock = pair
    tag = f"{fault}/{operation}/{flavor}"
    ids = _seed(primary, clock, tag)
    inject, post_fate = FAULTS[fault]
    inject(primary)
    policy = RetryPolicy(attempts=4, deadline=30.0)
    run = Runner(
        flavor,
        [primary_url, mirror_url],
        api_key=SECRET,
        clock=clock,
        timeout=TIMEOUT,
        retry=policy,
        reconcile_wait=10.0,
    )
    started = clock.monotonic()
    try:
        if operation == "submit" and post_fate == "not-created":
            with pytest.raises(civic311.SubmissionUncertainError) as caught:
                OPERATIONS[operation](run, ids)
            assert caught.value.request.description == f"Pothole {tag}"
            assert primary.count_created(description=f"Pothole {tag}") == 0
        else:
            result = OPERATIONS[operation](run, ids)
            assert result is not None
            if operation == "submit":
                assert primary.count_created(description=f"Pothole {tag}") == 1
                assert result.reconciled is (post_fate == "created")
        elapsed = clock.monotonic() - started
        budget = policy.deadline + 10.0 + (120 if operation == "wait_for_id" else 0)
        assert elapsed <= budget
        # drop-after-create spares reads, so the primary answers them (and the reconcile look-up)
        spares_reads = post_fate == "slow" or fault == "drop-after-create"
        if not spares_reads and operation != "wait_for_id":
            assert run.client.health()[1].calls >= 1  # the mirror answered
    finally:
        run.close()
