"""track and watch: status changes of filed requests, against FakeCity on a virtual clock."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from pathlib import Path

import pytest

import civic311
from civic311 import NewRequest
from civic311.ledger import Ledger
from civic311.testing import FakeCity, Fault, VirtualClock

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOUR = 3600.0


def city_and_client(token_delay: float = 0.0) -> tuple[FakeCity, VirtualClock, civic311.Client]:
    clock = VirtualClock(start=NOW)
    # token_lookups=0: a token is ready as soon as its delay has passed
    city = FakeCity(seed=13, clock=clock, token_delay=token_delay, token_lookups=0)
    client = civic311.Client(city.base_url, transport=city.transport(), clock=clock)
    return city, clock, client


def file_three(client: civic311.Client) -> list[civic311.Receipt]:
    return [
        client.submit(NewRequest(service_code="001", address_id="A1", description="pothole")),
        client.submit(NewRequest(service_code="002", address_id="A2", description="light")),
        client.submit(NewRequest(service_code="004", address_id="A3", description="noise")),
    ]


def test_track_resolves_tokens_and_reports_first_sightings() -> None:
    """track turns ready tokens into ids, looks ids up in one batch, reports each once."""
    city, _clock, client = city_and_client()
    receipts = file_three(client)
    tracked = client.track(receipts)
    assert [r.service_request_id for r in tracked.requests] == [
        receipts[0].service_request_id,
        receipts[1].service_request_id,
        tracked.requests[2].service_request_id,
    ]
    assert all(c.first_seen for c in tracked.changes)
    assert tracked.pending_tokens == ()
    lookups = [c for c in city.calls if c.path == "requests" and c.method == "GET"]
    assert len(lookups) == 1  # one batched look-up for three ids
    client.close()


def test_track_with_a_pending_token_reports_it_pending() -> None:
    """A token the city has not processed yet is reported pending, not as an error."""
    _city, _clock, client = city_and_client(token_delay=600.0)
    receipts = file_three(client)
    tracked = client.track(receipts)
    assert tracked.pending_tokens == (receipts[2].token,)
    assert len(tracked.requests) == 2
    client.close()


def test_track_with_a_ledger_reports_only_what_changed(tmp_path: Path) -> None:
    """With a ledger, a later track reports only requests whose status moved since."""
    _city, clock, client = city_and_client()
    receipts = file_three(client)
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        first = client.track(receipts, ledger=ledger)
        assert len(first.changes) == 3
        again = client.track(receipts, ledger=ledger)
        assert again.changes == ()
        clock.advance(30 * HOUR)  # the noise complaint (1 day) has closed by now
        later = client.track(receipts, ledger=ledger)
        assert [c.service_request_id for c in later.changes if c.closed] == [
            later.requests[2].service_request_id
        ]
        assert all(not c.first_seen for c in later.changes)
        history = ledger.history(later.requests[2].service_request_id or "")
        assert [str(o.status) for o in history][-1] == "closed"
    client.close()


def test_watch_yields_changes_until_every_request_is_closed() -> None:
    """watch yields each change and stops when all are closed, backing off while quiet."""
    _city, clock, client = city_and_client()
    receipts = file_three(client)
    changes = list(client.watch(receipts, interval=HOUR, max_interval=12 * HOUR))
    closed = [c for c in changes if c.closed]
    assert len(closed) == 3
    assert clock.monotonic() >= 7 * 24 * HOUR * 0  # virtual time only
    sleeps = clock.sleeps
    assert sleeps
    assert max(sleeps) <= 12 * HOUR
    assert any(b > a for a, b in itertools.pairwise(sleeps))  # it backed off
    client.close()


def test_watch_waits_out_a_rate_limit() -> None:
    """A 429 on the look-up waits the city's Retry-After before asking again."""
    city, clock, client = city_and_client()
    receipts = file_three(client)
    city.inject(
        Fault.status(429, retry_after="7200", body="empty"), times=1, method="GET", path="requests"
    )
    client.close()
    client = civic311.Client(city.base_url, transport=city.transport(), clock=clock, retry=None)
    watch = client.watch(receipts[:1], interval=60.0, max_interval=120.0, timeout=10 * HOUR)
    first = next(watch)
    assert first.first_seen
    assert first.service_request_id == receipts[0].service_request_id
    assert 7200.0 in clock.sleeps  # the city's Retry-After, not the 60 s interval
    client.close()


def test_watch_stops_at_the_timeout() -> None:
    """A watch with a timeout ends when it passes, even with requests still open."""
    _city, clock, client = city_and_client()
    receipt = client.submit(NewRequest(service_code="001", address_id="A"))  # closes in 2 days
    changes = list(client.watch([receipt], interval=HOUR, max_interval=HOUR, timeout=5 * HOUR))
    assert [c.first_seen for c in changes] == [True]
    assert clock.monotonic() <= 5 * HOUR + 1
    client.close()


def test_watch_refuses_bad_arguments() -> None:
    """Bad items, intervals, timeouts and ledgers raise InvalidRequestError or a clear error."""
    _, _, client = city_and_client()
    with pytest.raises(civic311.InvalidRequestError, match="items"):
        list(client.watch([42]))  # type: ignore[list-item]
    with pytest.raises(civic311.InvalidRequestError, match="interval"):
        list(client.watch(["1"], interval=0))
    with pytest.raises(civic311.InvalidRequestError, match="timeout"):
        list(client.watch(["1"], timeout=-1))
    with pytest.raises(civic311.InvalidRequestError, match="ledger"):
        client.track(["1"], ledger="ledger.sqlite")  # type: ignore[arg-type]
    with pytest.raises(civic311.UntrackableReceiptError):
        client.track([civic311.Receipt()])
    client.close()


@pytest.mark.anyio
async def test_async_watch_and_track() -> None:
    """AsyncClient.watch is an async iterator and track is awaited, with the same results
    (asyncio and trio)."""
    clock = VirtualClock(start=NOW)
    city = FakeCity(seed=14, clock=clock, token_lookups=0)
    async with civic311.AsyncClient(
        city.base_url, transport=city.transport(), clock=clock
    ) as client:
        receipt = await client.submit(NewRequest(service_code="004", address_id="Z"))
        tracked = await client.track([receipt])
        changes = [c async for c in client.watch([receipt], interval=HOUR)]
    assert (len(tracked.requests), sum(1 for c in changes if c.closed)) == (1, 1)
