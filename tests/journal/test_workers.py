"""Several workers on one journal: CLI bulk processes (one killed) and web back-end threads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

import civic311
from civic311 import NewRequest
from civic311._journal.postgres import safe_url
from civic311._resilience import RetryPolicy
from civic311.outbox import Outbox
from civic311.testing import FakeCity, Fault, VirtualClock

from helpers import write_csv

SECRET = "sk-workers-SECRET-7"


def cli(url: str, ledger: str, rows: Path, *extra: str) -> list[str]:
    civic = Path(sys.executable).with_name("civic311")
    return [str(civic), "--endpoint", url, "--ledger", ledger, "--json", "bulk", "submit",
            str(rows), "--no-validate", *extra]  # fmt: skip


def claims_of(url: str, pid: int) -> int:
    """How many rows the process *pid* has claimed in the journal at *url*."""
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM ledger_submissions WHERE claim_owner LIKE %s", (f"%:{pid}",)
        ).fetchone()
    return int(found[0]) if found else 0


def test_three_cli_workers_one_killed_file_every_row_exactly_once(
    tmp_path: Path, postgres_url: str
) -> None:
    """Three `bulk submit` processes on one CSV and one PostgreSQL journal, one SIGKILLed
    mid-run, then a final run: every row is on the city exactly once."""
    count = 240
    city = FakeCity(seed=15)
    rows = write_csv(tmp_path / "rows.csv", count)
    with city.serve() as url:
        city.inject(Fault.latency(0.05), method="POST")
        logs = [(tmp_path / f"w{n}.out").open("w") for n in range(3)]
        workers = [
            subprocess.Popen(
                cli(url, postgres_url, rows, "--concurrency", "4"),
                stdout=logs[n],
                stderr=subprocess.STDOUT,
            )
            for n in range(3)
        ]
        try:
            # Kill the first worker mid-run: once a quarter is filed and it holds claims.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                city.count_created() >= count // 4 and claims_of(postgres_url, workers[0].pid)
            ):
                time.sleep(0.01)
            os.kill(workers[0].pid, signal.SIGKILL)
            codes = [w.wait(timeout=120) for w in workers]
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
                    w.wait(timeout=30)
            for log in logs:
                log.close()
        assert codes[0] == -signal.SIGKILL
        assert 0 < city.count_created() <= count
        city.clear_faults()
        time.sleep(0.1)  # let the killed worker's last POSTs (held by the latency) land
        dead = f":{workers[0].pid}"
        with psycopg.connect(postgres_url) as conn:
            left = conn.execute(
                "SELECT state, sent_at IS NOT NULL, claim_owner FROM ledger_submissions "
                "WHERE state <> 'sent'"
            ).fetchall()
        print("before the final run:", Counter(left))
        # The killed worker's claims were taken over by the workers still running (its pid
        # is gone) or are left for the final run: either way each is looked for first.
        assert all(owner is None or owner.endswith(dead) for _, _, owner in left), left
        final = subprocess.run(
            cli(url, postgres_url, rows, "--resend-after", "0"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
        summary = json.loads(final.stdout)
        assert summary["ledger"] == safe_url(postgres_url)
        counts = summary["counts"]
        # Each row left in flight was looked for on the city first: found (reconciled) or,
        # its POST having never landed, sent now (filed). Nothing else was sent again.
        assert counts.get("reconciled", 0) + counts.get("filed", 0) == len(left), counts
    on_city = Counter(r.description for r in city.created)
    assert len(on_city) == count
    assert set(on_city.values()) == {1}
    posts = [c for c in city.calls if c.method == "POST"]
    assert len(posts) >= count
    for n in range(3):
        assert SECRET not in (tmp_path / f"w{n}.out").read_text()


def report(n: int) -> NewRequest:
    return NewRequest(
        service_code="001", lat=37.7 + n / 10_000, long=-122.4, description=f"Web report #{n}"
    )


def test_two_web_threads_share_one_outbox(journal_target: str) -> None:
    """Two threads of one web back end share an Outbox: reports queued in an outage, then
    flushes racing new submits; each report is filed once and ends 'sent'."""
    clock = VirtualClock()
    city = FakeCity(clock=clock, api_key=SECRET)
    per_thread = 12
    with city.serve() as url, Outbox(journal_target, resend_after=0) as outbox:
        clients = [
            civic311.Client(url, clock=clock, api_key=SECRET, retry=RetryPolicy.no_wait(attempts=1))
            for _ in range(2)
        ]
        try:
            city.down()
            queued = [outbox.submit(clients[n % 2], report(n)) for n in range(2 * per_thread)]
            assert {e.state for e in queued} == {"queued"}
            city.up()
            clock.advance(120)  # past each client's circuit cool-down
            city.inject(Fault.latency(0.005), method="POST")
            errors: list[BaseException] = []
            barrier = threading.Barrier(2)

            def web_thread(n: int) -> None:
                try:
                    barrier.wait(timeout=10)
                    client = clients[n]
                    for m in range(per_thread):
                        outbox.submit(client, report(100 + n * per_thread + m))
                        if m % 4 == 0:
                            outbox.flush(client)
                    outbox.flush(client)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=web_thread, args=(n,)) for n in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            assert not errors, errors
            outbox.flush(clients[0])
            assert outbox.pending() == []
        finally:
            for c in clients:
                c.close()
    on_city = Counter(r.description for r in city.created)
    assert len(on_city) == 4 * per_thread
    assert set(on_city.values()) == {1}


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_outbox_on_either_store_holds_no_api_key(journal_target: str, fmt: str) -> None:
    """Submitting through an Outbox stores the report but never the api_key (both formats)."""
    clock = VirtualClock()
    city = FakeCity(clock=clock, api_key=SECRET)
    with (
        city.serve() as url,
        Outbox(journal_target) as outbox,
        civic311.Client(url, clock=clock, api_key=SECRET, format=fmt) as client,  # type: ignore[arg-type]
    ):
        entry = outbox.submit(client, report(1))
        assert entry.state == "sent"
        dump = dump_journal(journal_target)
    assert "Web report #1" in dump
    assert SECRET not in dump
    assert SECRET not in repr(outbox)


def dump_journal(target: str) -> str:
    """Every byte the journal holds, as text (the SQLite files, or every PostgreSQL row)."""
    if "://" not in target:
        folder = Path(target).parent
        return "".join(p.read_bytes().decode("latin-1") for p in folder.iterdir() if p.is_file())
    import psycopg

    with psycopg.connect(target) as conn:
        text = [str(r) for r in conn.execute("SELECT * FROM ledger_submissions").fetchall()]
        text += [str(r) for r in conn.execute("SELECT * FROM ledger_status").fetchall()]
    return "\n".join(text)
