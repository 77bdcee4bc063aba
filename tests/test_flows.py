"""One flow vocabulary, one driver: every multi-step operation is a generator that yields only a
`Call` or a `Sleep`, composed with ``yield from``, and each client runs them all through its one
`_drive` (issue 10). Pure tests drive flows by hand; client tests record what the driver saw."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

import civic311
from civic311._protocol import Call, Flow, Sleep, lookup_flow
from civic311.errors import RateLimitedError
from civic311.harvest import Harvest
from civic311.models import ServiceRequest, TokenStatus
from civic311.testing import FakeCity, Fault, VirtualClock
from civic311.tracking import Watch

from helpers import ASYNC_BACKENDS, run_async

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def request(rid: str, status: str = "open", when: datetime | None = None) -> ServiceRequest:
    return ServiceRequest(
        service_request_id=rid,
        status=civic311.Status(status),
        service_code="001",
        requested_datetime=when or NOW - timedelta(days=1),
    )


def drive(flow: Flow[Any], answer: Any) -> tuple[Any, list[Call[Any] | Sleep]]:
    """Run *flow* by hand: each call is answered by ``answer(call)`` (an exception is thrown
    in), each sleep with a monotonic time; returns the result and every step seen."""
    steps: list[Call[Any] | Sleep] = []
    reply: Any = None
    error: BaseException | None = None
    clock = 0.0
    for _ in range(10_000):
        try:
            step = flow.throw(error) if error is not None else flow.send(reply)
        except StopIteration as done:
            return done.value, steps
        steps.append(step)
        reply, error = None, None
        if isinstance(step, Sleep):
            clock += step.seconds
            reply = clock
            continue
        try:
            reply = answer(step)
        except civic311.Civic311Error as exc:
            error = exc
    raise AssertionError("the flow did not finish")


# --- pure flows --------------------------------------------------------------------------------


def test_lookup_flow_asks_each_chunk_and_answers_in_the_order_asked() -> None:
    """lookup_flow yields one GET per chunk and returns the found requests in the asked order."""
    known = {"1": request("1"), "3": request("3"), "4": request("4")}

    def answer(call: Call[Any]) -> list[ServiceRequest]:
        asked = dict(call.params)["service_request_id"].split(",")
        return [known[i] for i in reversed(asked) if i in known]

    found, steps = drive(lookup_flow(["4", "1", "2", "3"], [["4", "1"], ["2", "3"]]), answer)
    assert [r.service_request_id for r in found] == ["4", "1", "3"]
    assert [dict(s.params)["service_request_id"] for s in steps if isinstance(s, Call)] == [
        "4,1",
        "2,3",
    ]


def test_harvest_is_a_stream_of_flows_that_yield_only_calls() -> None:
    """Each next_batch flow asks GET requests and returns a window's new requests; a capped
    window is split; None ends the stream."""
    harvest = Harvest(start=NOW - timedelta(days=100), end=NOW, result_cap=3)
    answers: Iterator[list[ServiceRequest]] = iter(
        [
            [request("a", when=NOW - timedelta(days=95))],  # the older, 10-day window
            [request(f"b{i}", when=NOW - timedelta(days=50)) for i in range(3)],  # capped
            [request("c", when=NOW - timedelta(days=60))],  # its older half
            [request("d", when=NOW - timedelta(days=20))],  # its newer half
        ]
    )
    batches = []
    while True:
        batch, steps = drive(harvest.next_batch(), lambda call: next(answers))
        assert all(isinstance(step, Call) for step in steps)
        if batch is None:
            break
        batches.append([r.service_request_id for r in batch])
    assert batches == [["a"], ["c"], ["d"]]
    assert harvest.emitted == 3


def test_watch_round_composes_the_lookup_flow_and_catches_its_rate_limit() -> None:
    """A round resolves tokens, then ``yield from`` the lookup flow; a 429 thrown into that
    nested flow reaches the round, which reports the round and waits the Retry-After."""
    rate_limited = RateLimitedError(
        status_code=429, errors=[], body=b"", method="GET", url="u", retry_after=90.0
    )
    answers: Iterator[Any] = iter(
        [TokenStatus(token="T", service_request_id="2"), rate_limited, [request("1")]]
    )

    def answer(call: Call[Any]) -> Any:
        value = next(answers)
        if isinstance(value, Exception):
            raise value
        return value

    def lookup(ids: Any) -> Flow[list[ServiceRequest]]:
        return lookup_flow(list(ids), [list(ids)])

    watch = Watch(
        ["1", civic311.Receipt(token="T")],
        lookup=lookup,
        known=lambda rid: None,
        now=lambda: NOW,
        started=0.0,
        interval=10.0,
        max_interval=60.0,
        deadline=None,
    )
    tracked, steps = drive(watch.round(), answer)
    assert [type(s) for s in steps] == [Call, Call]
    assert tracked.requests == ()
    assert tracked.missing == ()
    assert watch.take_resolved() == [("T", "2")]
    go_on, pause = drive(watch.pause(tracked), answer)
    assert go_on is True
    assert pause == [Sleep(90.0)]  # the Retry-After, longer than the interval
    tracked, _ = drive(watch.round(), answer)
    assert [r.service_request_id for r in tracked.requests] == ["1"]
    assert tracked.missing == ("2",)


# --- the one driver --------------------------------------------------------------------------


class _Recorded:
    """Wraps each client's `_drive` so that every step of every flow it runs is recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.steps: list[object] = []
        self.flows = 0
        for cls in (civic311.Client, civic311.AsyncClient):
            original = cls._drive
            monkeypatch.setattr(cls, "_drive", self._wrap(original))

    def _wrap(self, original: Any) -> Any:
        recorder = self

        def watched(flow: Flow[Any]) -> Flow[Any]:
            recorder.flows += 1
            reply: Any = yield from _tap(flow, recorder.steps)
            return reply

        def drive(client: Any, flow: Flow[Any], **kwargs: Any) -> Any:
            return original(client, watched(flow), **kwargs)

        return drive


def _tap(flow: Flow[Any], seen: list[object]) -> Generator[Any, Any, Any]:
    """``yield from`` *flow*, recording each step it yields (errors pass through)."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(reply)
        except StopIteration as done:
            return done.value
        seen.append(step)
        reply, error = None, None
        try:
            reply = yield step
        except BaseException as exc:
            error = exc


@pytest.mark.parametrize("flavor", ["sync", *ASYNC_BACKENDS])
def test_every_operation_runs_through_the_one_driver(
    monkeypatch: pytest.MonkeyPatch, flavor: str
) -> None:
    """submit (reconciling a lost answer), wait_for_id, find_submitted, get_requests, track,
    watch and iter_requests all run as flows through `_drive`, which sees only calls and
    sleeps."""
    recorded = _Recorded(monkeypatch)
    clock = VirtualClock(start=NOW)
    city = FakeCity(seed=5, clock=clock, token_lookups=1)
    city.inject(Fault.drop_after_create(), path="requests", method="POST", times=1)
    new = civic311.NewRequest(service_code="001", lat=39.16, long=-86.52, description="Pothole")
    window = {"start_date": NOW - timedelta(days=30), "end_date": NOW + timedelta(days=1)}
    options: dict[str, Any] = {"clock": clock, "reconcile_wait": 5.0}
    if flavor == "sync":
        with civic311.Client(city.base_url, transport=city.transport(), **options) as client:
            receipt = client.submit(new)
            assert receipt.reconciled
            later = client.submit(civic311.NewRequest(service_code="004", address_id="Z"))
            client.wait_for_id(later, timeout=600)
            client.find_submitted(new, sent_at=clock.now() - timedelta(minutes=1))
            client.get_requests([receipt.service_request_id or ""])
            client.track([receipt])
            list(client.watch([receipt], timeout=60))
            list(client.iter_requests(**window))
    else:

        async def run() -> None:
            async with civic311.AsyncClient(
                city.base_url, transport=city.transport(), **options
            ) as client:
                receipt = await client.submit(new)
                assert receipt.reconciled
                later = await client.submit(civic311.NewRequest(service_code="004", address_id="Z"))
                await client.wait_for_id(later, timeout=600)
                await client.find_submitted(new, sent_at=clock.now() - timedelta(minutes=1))
                await client.get_requests([receipt.service_request_id or ""])
                await client.track([receipt])
                [c async for c in client.watch([receipt], timeout=60)]
                [r async for r in client.iter_requests(**window)]

        run_async(run, flavor)
    kinds = {type(step) for step in recorded.steps}
    assert kinds == {Call, Sleep}, kinds
    operations = {step.operation for step in recorded.steps if isinstance(step, Call)}
    assert operations == {"submit", "list_requests", "get_token"}
    assert recorded.flows >= 9


def test_a_harvest_asks_no_further_than_its_consumer_reads() -> None:
    """Breaking out of iter_requests after the first window asks the city nothing more: one
    window's flow at a time, driven only while the caller iterates."""
    clock = VirtualClock(start=NOW)
    city = FakeCity(seed=6, clock=clock)
    city.generate_requests(30, start=NOW - timedelta(days=200), end=NOW)
    with civic311.Client(city.base_url, transport=city.transport(), clock=clock) as client:
        for _ in client.iter_requests(start_date=NOW - timedelta(days=200), end_date=NOW):
            break
        asked = len(city.calls)
    assert asked == 1  # one window asked; nothing more after the consumer stopped


def test_transport_errors_thrown_into_a_flow_keep_their_type() -> None:
    """A failure inside a flow (a 404 that is not "pending" for this city) surfaces as the
    same typed civic311 error a direct call raises."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json=[{"code": 404, "description": "no such token"}])

    with civic311.Client(
        "https://city.example/v2",
        transport=httpx.MockTransport(handler),
        profile=civic311.profiles.Profile(token_404_pending=False),
    ) as client:
        with pytest.raises(civic311.NotFoundError):
            client.get_token("T")
        with pytest.raises(civic311.NotFoundError):
            client.wait_for_id("T", timeout=5)


def test_each_client_has_one_driver() -> None:
    """Only `_drive` steps generators in each client's source (the outbox's own driver,
    `_run_outbox`, is on its way out with the journal redesign and may be gone)."""
    import ast
    from pathlib import Path

    import civic311._client.async_client as async_source
    import civic311._client.client as sync_source

    for module in (async_source, sync_source):
        tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
        drivers = {
            function.name
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(function)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("send", "throw")
            and not (isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "_http")
        }
        assert "_drive" in drivers
        assert drivers <= {"_drive", "_run_outbox"}, drivers
