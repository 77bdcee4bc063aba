"""Bulk's batched journal writes (issue 13): new rows recorded claimed and in flight in one
statement, in batches on a writer thread; outcomes written without an fsync. Each row is still
filed at most once, and a run that dies or is cancelled leaves rows the next run can settle."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import civic311
from civic311 import bulk
from civic311._journal.sqlite import SQLiteStore
from civic311._journal.store import BatchingStore, NewRow, OutcomeRecord, Owner, StoredReceipt
from civic311.ledger import Ledger
from civic311.testing import FakeCity, Fault

from helpers import submit_csv, write_csv

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
DEAD = Owner(socket.gethostname(), 0)  # pid 0: never a live process


def new_row(key: str, n: int = 0) -> NewRow:
    return NewRow(
        scope="https://city.example/v2",
        service_code="001",
        request_json=f'{{"service_code": "001", "description": "row {n}"}}',
        at=NOW,
        key=key,
        source_row=n,
    )


def test_sqlite_store_batches(tmp_path: Path) -> None:
    """The SQLite store offers the batch writes bulk uses."""
    store = SQLiteStore(tmp_path / "j.sqlite")
    try:
        assert isinstance(store, BatchingStore)
    finally:
        store.close()


def test_insert_in_flight_claims_new_rows_and_leaves_recorded_keys_alone(tmp_path: Path) -> None:
    """One batch: new keys come back as ids, claimed and in flight; a recorded key as None."""
    store = SQLiteStore(tmp_path / "j.sqlite")
    try:
        (first,) = store.insert_in_flight([(new_row("a"), "t0")], owner=DEAD, at=NOW)
        ids = store.insert_in_flight(
            [(new_row("a"), "t1"), (new_row("b", 1), "t2")], owner=Owner.me(), at=NOW
        )
        assert ids[0] is None
        assert isinstance(ids[1], int)
        assert store.existing_keys("https://city.example/v2", ["a", "b", "c"]) == {
            "a": first,
            "b": ids[1],
        }
        row = store.get(ids[1])
        assert row is not None
        assert row.in_flight
        assert row.tries == 1
        assert row.sent_at == NOW
        assert row.claim_token == "t2"
        assert row.claim_owner == str(Owner.me())
        untouched = store.get(first or 0)
        assert untouched is not None
        assert untouched.claim_token == "t0"
    finally:
        store.close()


@pytest.mark.parametrize("sqlite_version", [None, (3, 31, 1)], ids=["now", "before-3.33"])
def test_outcomes_are_recorded_only_under_their_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_version: tuple[int, int, int] | None
) -> None:
    """record_outcomes writes each outcome whose token still holds the row, in one
    transaction, and leaves a row whose claim was taken over untouched; without UPDATE … FROM
    (SQLite before 3.33) it falls back to one conditional update per outcome, same result."""
    if sqlite_version is not None:
        import sqlite3

        monkeypatch.setattr(sqlite3, "sqlite_version_info", sqlite_version)
    store = SQLiteStore(tmp_path / "j.sqlite")
    try:
        a, b = store.insert_in_flight(
            [(new_row("a"), "ta"), (new_row("b", 1), "tb")], owner=Owner.me(), at=NOW
        )
        assert a is not None
        assert b is not None
        later = NOW + timedelta(seconds=1)
        done = store.record_outcomes(
            [
                OutcomeRecord(a, "ta", "sent", later, StoredReceipt(service_request_id="7")),
                OutcomeRecord(b, "someone-else", "sent", later),
            ],
            durable=False,
        )
        assert done == 1
        sent, still = store.get(a), store.get(b)
        assert sent is not None
        assert sent.state == "sent"
        assert sent.claim_token is None
        assert sent.receipt is not None
        assert sent.receipt.service_request_id == "7"
        assert still is not None
        assert still.in_flight
        assert still.claim_token == "tb"
    finally:
        store.close()


def test_unsend_undoes_only_an_unanswered_claim(tmp_path: Path) -> None:
    """unsend puts a row recorded in flight back to never sent, only under its own claim and
    before an outcome."""
    store = SQLiteStore(tmp_path / "j.sqlite")
    try:
        a, b = store.insert_in_flight(
            [(new_row("a"), "ta"), (new_row("b", 1), "tb")], owner=Owner.me(), at=NOW
        )
        assert a is not None
        assert b is not None
        assert not store.unsend(a, "wrong-token")
        assert store.unsend(a, "ta")
        row = store.get(a)
        assert row is not None
        assert row.sent_at is None
        assert row.tries == 0
        assert row.state == "pending"
        assert row.claim_token is None
        store.record_outcomes([OutcomeRecord(b, "tb", "sent", NOW)], durable=True)
        assert not store.unsend(b, "tb")
        sent = store.get(b)
        assert sent is not None
        assert sent.state == "sent"
    finally:
        store.close()


def _submit(city: FakeCity, path: Path, ledger_path: Path, **options: object) -> bulk.BulkSummary:
    return submit_csv(
        city.base_url,
        ledger_path,
        path,
        client_options={"transport": city.transport(), "reconcile_wait": 0},
        **options,
    )


def test_a_crash_between_the_batch_commit_and_the_sends_leaves_rows_to_reconcile(
    tmp_path: Path,
) -> None:
    """Rows a dead run recorded in flight (one batch) but whose POSTs never left, and one whose
    POST did land: the next run looks for each first. The landed one is reconciled, the
    others wait for resend_after and are then filed: every row on the city once."""
    city = FakeCity(seed=21)
    path = write_csv(tmp_path / "rows.csv", 6)
    ledger_path = tmp_path / "ledger.sqlite"
    rows = list(bulk.read_rows(path))

    async def crash() -> None:
        async with civic311.AsyncClient(city.base_url, transport=city.transport()) as client:
            with Ledger(ledger_path) as ledger:
                endpoint = client.endpoints[0]
                batch = [
                    (ledger._new_row(r.key, r.request, endpoint, NOW, row_number=r.number), f"t{n}")
                    for n, r in enumerate(rows)
                    if r.request is not None
                ]
                store = ledger.store
                assert isinstance(store, BatchingStore)
                store.insert_in_flight(batch, owner=DEAD, at=datetime.now(timezone.utc))
                assert rows[0].request is not None
                await client.submit(rows[0].request)  # the one POST that left before the kill

    asyncio.run(crash())
    assert city.count_created() == 1
    first = _submit(city, path, ledger_path)
    assert first.counts() == {"reconciled": 1, "uncertain": 5}
    assert city.count_created() == 1  # nothing sent again before resend_after
    second = _submit(city, path, ledger_path, resend_after=0)
    assert second.counts() == {"skipped": 1, "filed": 5}
    on_city = Counter(r.description for r in city.created)
    assert len(on_city) == 6
    assert set(on_city.values()) == {1}


@pytest.mark.slow
def test_several_runs_on_one_file_file_each_row_once(tmp_path: Path) -> None:
    """Three runs at once (threads, each its own Ledger on one file, batched writes): each
    row is filed by exactly one of them; the others skip it."""
    count = 120
    city = FakeCity(seed=22)
    path = write_csv(tmp_path / "rows.csv", count)
    ledger_path = tmp_path / "ledger.sqlite"
    summaries: list[bulk.BulkSummary] = []
    errors: list[BaseException] = []
    with city.serve() as url:
        city.inject(Fault.latency(0.01), method="POST")

        def worker() -> None:
            async def go() -> bulk.BulkSummary:
                async with civic311.AsyncClient(url, timeout=10) as client:
                    with Ledger(ledger_path) as ledger:
                        return await bulk.submit_all(
                            client,
                            bulk.read_rows(path),
                            ledger=ledger,
                            concurrency=8,
                            validate=False,
                        )

            try:
                summaries.append(asyncio.run(go()))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not errors, errors
    filed = sum(s.counts().get("filed", 0) for s in summaries)
    assert filed == count
    for summary in summaries:
        assert set(summary.counts()) <= {"filed", "skipped"}, summary.counts()
    on_city = Counter(r.description for r in city.created)
    assert len(on_city) == count
    assert set(on_city.values()) == {1}


@pytest.mark.slow
def test_a_cancelled_run_leaves_no_claim_and_no_unsent_row_in_flight(tmp_path: Path) -> None:
    """Cancelled mid-run: every claim is dropped, rows recorded ahead but never sent are back
    to never sent (only rows whose POST started stay in flight, at most the concurrency),
    and a resumed run files each row once."""
    count, concurrency = 60, 4
    city = FakeCity(seed=23)
    path = write_csv(tmp_path / "rows.csv", count)
    ledger_path = tmp_path / "ledger.sqlite"
    with city.serve() as url:
        city.inject(Fault.latency(0.2), method="POST")

        async def cancelled() -> None:
            async with civic311.AsyncClient(url, timeout=10) as client:
                with Ledger(ledger_path) as ledger:
                    run = asyncio.ensure_future(
                        bulk.submit_all(
                            client,
                            bulk.read_rows(path),
                            ledger=ledger,
                            concurrency=concurrency,
                            validate=False,
                        )
                    )
                    deadline = time.monotonic() + 30
                    while city.count_created() < concurrency and time.monotonic() < deadline:  # noqa: ASYNC110 - polls the server thread's count
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(0.05)  # the next sends are in flight, more recorded ahead
                    run.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await run

        asyncio.run(cancelled())
        with Ledger(ledger_path) as ledger:
            left = ledger.store.rows()
        assert all(row.claim_token is None for row in left)
        in_flight = [row for row in left if row.in_flight]
        assert 0 < len(in_flight) <= concurrency
        assert len(left) > len(in_flight) + sum(row.state == "sent" for row in left)
        city.clear_faults()
        time.sleep(0.3)  # the cancelled POSTs (held by the latency) land or fail

        async def resume() -> bulk.BulkSummary:
            async with civic311.AsyncClient(url, reconcile_wait=0.5) as client:
                with Ledger(ledger_path) as ledger:
                    return await bulk.submit_all(
                        client,
                        bulk.read_rows(path),
                        ledger=ledger,
                        validate=False,
                        resend_after=0,
                    )

        summary = asyncio.run(resume())
    assert summary.ok, summary.problems()[:3]
    on_city = Counter(r.description for r in city.created)
    assert len(on_city) == count
    assert set(on_city.values()) == {1}
