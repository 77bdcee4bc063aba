"""Bulk submission: validated first, resumable, never filing a row twice (loopback FakeCity)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

import civic311
from civic311 import bulk
from civic311.ledger import Ledger
from civic311.testing import FakeCity, Fault, VirtualClock

from helpers import write_csv


def run(coro: object) -> bulk.BulkSummary:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_dry_run_reports_every_bad_row_and_files_nothing(tmp_path: Path) -> None:
    """A dry run names each bad row with its number and reason, and sends no POST."""
    city = FakeCity(seed=1)
    rows = list(bulk.read_rows(write_csv(tmp_path / "r.csv", 3, bad=True)))

    async def go() -> bulk.BulkSummary:
        async with civic311.AsyncClient(city.base_url, transport=city.transport()) as client:
            with Ledger(tmp_path / "l.sqlite") as ledger:
                return await bulk.submit_all(client, rows, ledger=ledger, dry_run=True)

    summary = run(go())
    assert summary.dry_run
    assert summary.counts() == {"valid": 3, "invalid": 3}
    problems = {r.number: r.detail for r in summary.problems()}
    assert set(problems) == {4, 5, 6}
    assert "SURFACE" in (problems[4] or "")
    assert "lat" in (problems[5] or "")
    assert "999" in (problems[6] or "")
    assert not [c for c in city.calls if c.method == "POST"]


def test_run_files_valid_rows_and_a_second_run_skips_them(tmp_path: Path) -> None:
    """Valid rows are filed once; running the same file again files nothing more."""
    city = FakeCity(seed=2)
    path = write_csv(tmp_path / "r.csv", 20, bad=True)
    seen: list[bulk.RowResult] = []

    async def go() -> bulk.BulkSummary:
        async with civic311.AsyncClient(city.base_url, transport=city.transport()) as client:
            with Ledger(tmp_path / "l.sqlite") as ledger:
                return await bulk.submit_all(
                    client, bulk.read_rows(path), ledger=ledger, concurrency=4, on_row=seen.append
                )

    first = run(go())
    assert first.counts() == {"filed": 20, "invalid": 3}
    assert not first.ok
    assert len(seen) == 23
    second = run(go())
    assert second.counts() == {"skipped": 20, "invalid": 3}
    assert city.count_created() == 20


def test_rate_limit_spaces_the_starts(tmp_path: Path) -> None:
    """rate= keeps starts at most that many per second (on the client's clock)."""
    clock = VirtualClock()
    city = FakeCity(seed=3, clock=clock)
    rows = list(bulk.read_rows(write_csv(tmp_path / "r.csv", 10)))

    async def go() -> bulk.BulkSummary:
        async with civic311.AsyncClient(
            city.base_url, transport=city.transport(), clock=clock
        ) as client:
            with Ledger(tmp_path / "l.sqlite") as ledger:
                return await bulk.submit_all(client, rows, ledger=ledger, concurrency=10, rate=2)

    assert run(go()).counts() == {"filed": 10}
    assert clock.monotonic() == pytest.approx(4.5)  # 10 starts, 2 a second


def test_city_down_queues_rows_and_a_later_run_sends_them(tmp_path: Path) -> None:
    """Rows that never reached the city are queued in the ledger and sent by the next run."""
    city = FakeCity(seed=4)
    path = write_csv(tmp_path / "r.csv", 5)

    async def go() -> bulk.BulkSummary:
        async with civic311.AsyncClient(
            city.base_url, transport=city.transport(), retry=None
        ) as client:
            with Ledger(tmp_path / "l.sqlite") as ledger:
                return await bulk.submit_all(
                    client, bulk.read_rows(path), ledger=ledger, validate=False
                )

    city.down()
    assert run(go()).counts() == {"queued": 5}
    city.up()
    assert run(go()).counts() == {"filed": 5}
    assert city.count_created() == 5


def test_ambiguous_rows_are_reconciled_not_doubled(tmp_path: Path) -> None:
    """A row whose answer is lost is found on the server instead of being filed again."""
    city = FakeCity(seed=5)
    city.inject(Fault.drop_after_create(), times=3, method="POST")
    path = write_csv(tmp_path / "r.csv", 6)

    async def go() -> bulk.BulkSummary:
        async with civic311.AsyncClient(city.base_url, transport=city.transport()) as client:
            with Ledger(tmp_path / "l.sqlite") as ledger:
                return await bulk.submit_all(
                    client, bulk.read_rows(path), ledger=ledger, concurrency=1
                )

    assert run(go()).counts() == {"filed": 3, "reconciled": 3}
    assert city.count_created() == 6


def test_track_all_refreshes_what_the_ledger_holds(tmp_path: Path) -> None:
    """track_all looks up every filed request and records first sightings."""
    city = FakeCity(seed=6)
    path = write_csv(tmp_path / "r.csv", 4)

    async def go() -> civic311.tracking.Tracked:
        async with civic311.AsyncClient(city.base_url, transport=city.transport()) as client:
            with Ledger(tmp_path / "l.sqlite") as ledger:
                await bulk.submit_all(client, bulk.read_rows(path), ledger=ledger)
                return await bulk.track_all(client, ledger=ledger)

    tracked = asyncio.run(go())
    assert len(tracked.requests) == 4
    assert all(c.first_seen for c in tracked.changes)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    """Wrong client, ledger, concurrency or rate raise InvalidRequestError naming them."""

    async def go(**kwargs: object) -> None:
        async with civic311.AsyncClient("https://x.example/v2") as client:
            with Ledger(tmp_path / "l.sqlite") as ledger:
                options = {"ledger": ledger, **kwargs}
                await bulk.submit_all(client, [], **options)  # type: ignore[arg-type]

    for kwargs, field in (
        ({"concurrency": 0}, "concurrency"),
        ({"rate": -1}, "rate"),
        ({"ledger": "l.sqlite"}, "ledger"),
    ):
        with pytest.raises(civic311.InvalidRequestError, match=field):
            asyncio.run(go(**kwargs))
    with pytest.raises(civic311.InvalidRequestError, match="client"):
        asyncio.run(bulk.submit_all(object(), [], ledger=None))  # type: ignore[arg-type]


RUNNER = textwrap.dedent(
    """
    import asyncio, sys
    import civic311
    from civic311 import bulk
    from civic311.ledger import Ledger

    url, rows, ledger_path = sys.argv[1], sys.argv[2], sys.argv[3]

    async def main():
        async with civic311.AsyncClient(url, timeout=10) as client:
            with Ledger(ledger_path) as ledger:
                await bulk.submit_all(
                    client, bulk.read_rows(rows), ledger=ledger, concurrency=16, validate=False
                )

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_killed_halfway_then_resumed_files_every_row_exactly_once(tmp_path: Path) -> None:
    """300 rows; kill -9 the filing process halfway; resume: each row on the city once."""
    count = 300
    city = FakeCity(seed=7)
    rows = write_csv(tmp_path / "rows.csv", count)
    ledger_path = tmp_path / "ledger.sqlite"
    script = tmp_path / "runner.py"
    script.write_text(RUNNER, encoding="utf-8")
    with city.serve() as url:
        city.inject(Fault.latency(0.01), method="POST")
        child = subprocess.Popen([sys.executable, str(script), url, str(rows), str(ledger_path)])
        try:
            deadline = time.monotonic() + 120
            while city.count_created() < count // 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        before = city.count_created()
        assert 0 < before < count
        city.clear_faults()

        async def resume() -> bulk.BulkSummary:
            async with civic311.AsyncClient(url, reconcile_wait=0.5) as client:
                with Ledger(ledger_path) as ledger:
                    return await bulk.submit_all(
                        client,
                        bulk.read_rows(rows),
                        ledger=ledger,
                        concurrency=16,
                        validate=False,
                        resend_after=0,
                    )

        summary = asyncio.run(resume())
    counts = summary.counts()
    assert summary.ok, summary.problems()[:3]
    assert counts.get("skipped", 0) + counts.get("filed", 0) + counts.get("reconciled", 0) == count
    on_city = Counter(r.description for r in city.created)
    assert len(on_city) == count
    assert set(on_city.values()) == {1}


def test_bulk_keeps_one_connection_per_concurrent_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An AsyncClient that builds its own httpx client keeps every connection alive for
    reuse (civic311._client.base.POOL_LIMITS): 160 rows at concurrency 32 open at most 32
    connections. httpx's default keeps 20, and the same run opened over 100 (one per POST
    beyond the 20th slot)."""
    import httpcore

    opened = 0
    create = httpcore.AsyncConnectionPool.create_connection

    def counting(self: httpcore.AsyncConnectionPool, origin: httpcore.Origin) -> object:
        nonlocal opened
        opened += 1
        return create(self, origin)

    monkeypatch.setattr(httpcore.AsyncConnectionPool, "create_connection", counting)
    rows = list(bulk.read_rows(write_csv(tmp_path / "rows.csv", 160)))
    city = FakeCity(seed=1)
    with city.serve() as url:
        city.inject(Fault.latency(0.05), method="POST")

        async def go() -> bulk.BulkSummary:
            async with civic311.AsyncClient(url, timeout=10) as client:
                with Ledger(tmp_path / "ledger.sqlite") as ledger:
                    return await bulk.submit_all(
                        client, rows, ledger=ledger, concurrency=32, validate=False
                    )

        summary = asyncio.run(go())
    assert summary.counts() == {"filed": 160}
    assert 0 < opened <= 32
