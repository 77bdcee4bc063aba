"""Ledger, Outbox and bulk over the journal: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

import civic311
from civic311 import NewRequest, bulk
from civic311._resilience import RetryPolicy
from civic311.ledger import Ledger
from civic311.outbox import Outbox
from civic311.testing import FakeCity, Fault, VirtualClock

from helpers import submit_csv, write_csv


def test_bulk_files_once_and_a_second_run_skips(journal_target: str, tmp_path: Path) -> None:
    """A bulk run files every row over HTTP; the same file again files nothing more."""
    city = FakeCity(seed=21)
    rows = write_csv(tmp_path / "r.csv", 12)
    with city.serve() as url:
        assert submit_csv(url, journal_target, rows, concurrency=4).counts() == {"filed": 12}
        assert submit_csv(url, journal_target, rows).counts() == {"skipped": 12}
    assert city.count_created() == 12


def test_bulk_reconciles_lost_answers_instead_of_refiling(
    journal_target: str, tmp_path: Path
) -> None:
    """Rows whose answer is lost after the city created them are found, not filed again."""
    city = FakeCity(seed=22)
    city.inject(Fault.drop_after_create(), times=3, method="POST")
    rows = write_csv(tmp_path / "r.csv", 6)
    with city.serve() as url:
        summary = submit_csv(url, journal_target, rows, concurrency=1)
    assert summary.counts() == {"filed": 3, "reconciled": 3}
    assert set(Counter(r.description for r in city.created).values()) == {1}


def test_bulk_queues_in_an_outage_and_the_next_run_sends(
    journal_target: str, tmp_path: Path
) -> None:
    """A city that cannot be reached leaves rows queued; the next run files them."""
    city = FakeCity(seed=23)
    rows = write_csv(tmp_path / "r.csv", 4)

    async def go() -> bulk.BulkSummary:
        async with civic311.AsyncClient(city.base_url, transport=city.transport(), retry=None) as c:
            with Ledger(journal_target) as ledger:
                return await bulk.submit_all(c, bulk.read_rows(rows), ledger=ledger, validate=False)

    city.down()
    assert asyncio.run(go()).counts() == {"queued": 4}
    city.up()
    assert asyncio.run(go()).counts() == {"filed": 4}
    assert city.count_created() == 4


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_outbox_flushes_what_an_outage_queued(journal_target: str, flavor: str) -> None:
    """Reports queued while the city is down are sent by a flush, oldest first (both clients)."""
    clock = VirtualClock()
    city = FakeCity(clock=clock)
    requests = [
        NewRequest(service_code="001", lat=37.7, long=-122.4, description=f"Queued #{n}")
        for n in range(3)
    ]
    with city.serve() as url, Outbox(journal_target) as outbox:
        if flavor == "sync":
            with civic311.Client(url, clock=clock, retry=RetryPolicy.no_wait(attempts=1)) as c:
                city.down()
                entries = [outbox.submit(c, r) for r in requests]
                city.up()
                clock.advance(120)
                report = outbox.flush(c)
        else:

            async def go() -> tuple[list[civic311.outbox.OutboxEntry], civic311.outbox.FlushReport]:
                async with civic311.AsyncClient(
                    url, clock=clock, retry=RetryPolicy.no_wait(attempts=1)
                ) as c:
                    city.down()
                    queued = [await outbox.asubmit(c, r) for r in requests]
                    city.up()
                    clock.advance(120)
                    return queued, await outbox.aflush(c)

            entries, report = asyncio.run(go())
        assert {e.state for e in entries} == {"queued"}
        assert report.sent == tuple(e.local_id for e in entries)
        assert outbox.pending() == []
    assert [r.description for r in city.created] == [f"Queued #{n}" for n in range(3)]


def test_statuses_tracked_into_the_journal_are_per_city(journal_target: str) -> None:
    """track(ledger=) records what it sees, under the client's city, on either store."""
    city = FakeCity(seed=24)
    with city.serve() as url, civic311.Client(url) as client, Ledger(journal_target) as ledger:
        receipt = client.submit(
            NewRequest(service_code="001", lat=37.7, long=-122.4, description="Track me")
        )
        assert receipt.service_request_id is not None
        client.track([receipt], ledger=ledger)
        history = ledger.history(receipt.service_request_id, endpoint=client.endpoints[0])
        assert [h.status for h in history] == ["open"]
        assert ledger.history(receipt.service_request_id, endpoint="https://elsewhere/") == []


def test_a_ledger_refuses_a_second_entry_with_one_local_id(journal_target: str) -> None:
    """Ledger.record_pending with a local_id already recorded raises DuplicateKeyError naming
    that local_id and the submission holding it (never a raw database error)."""
    from datetime import datetime, timezone

    from civic311.errors import DuplicateKeyError

    at = datetime(2026, 3, 1, tzinfo=timezone.utc)
    request = NewRequest(service_code="001", lat=39.1, long=-86.5, description="dup")
    with Ledger(journal_target) as ledger:
        first = ledger.record_pending(
            key=None, request=request, endpoint="https://a.example/v2", at=at, local_id="L-7"
        )
        with pytest.raises(DuplicateKeyError) as caught:
            ledger.record_pending(
                key="other", request=request, endpoint="https://a.example/v2", at=at, local_id="L-7"
            )
        assert caught.value.field == "local_id"
        assert caught.value.existing == first
        assert "L-7" in str(caught.value)
        assert f"#{first}" in str(caught.value)
        assert [s.id for s in ledger.submissions()] == [first]


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_a_long_send_keeps_its_claims_heartbeat_fresh(
    journal_target: str, flavor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a POST takes long, the settling run refreshes its claim's heartbeat (every
    HEARTBEAT_EVERY seconds, shortened here), so another host never judges a live run's
    claim stale; the outcome then releases it."""
    import threading
    import time
    from datetime import datetime, timezone

    import civic311.ledger

    monkeypatch.setattr(civic311.ledger, "HEARTBEAT_EVERY", 0.05)
    request = NewRequest(service_code="001", lat=39.1, long=-86.5, description="slow")
    city = FakeCity(seed=1)
    with city.serve() as url, Ledger(journal_target) as ledger:
        city.inject(Fault.latency(0.8), method="POST")
        row_id = ledger.record_pending(
            key="slow", request=request, endpoint=url, at=datetime.now(timezone.utc)
        )
        results: list[object] = []

        def settle() -> None:
            if flavor == "sync":
                with civic311.Client(url) as client:
                    results.append(ledger.settle(client, row_id))
            else:

                async def go() -> object:
                    async with civic311.AsyncClient(url) as client:
                        return await ledger.asettle(client, row_id)

                results.append(asyncio.run(go()))

        worker = threading.Thread(target=settle)
        worker.start()
        fresher = []
        while worker.is_alive():
            row = ledger.store.get(row_id)
            assert row is not None
            if row.in_flight and row.heartbeat_at and row.sent_at:
                fresher.append((row.heartbeat_at - row.sent_at).total_seconds())
            time.sleep(0.02)
        worker.join()
        assert [r.outcome for r in results] == ["filed"]  # type: ignore[attr-defined]
        assert fresher
        assert max(fresher) >= 0.1  # beaten at least twice past the mark in flight
        done = ledger.store.get(row_id)
        assert done is not None
        assert (done.state, done.claim_token, done.heartbeat_at) == ("sent", None, None)
