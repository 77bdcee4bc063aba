"""The one journal: rows per city, atomic claims, reconciliation that never takes another
submission's request, and files that are old, damaged or not ours (issue 10, "One journal")."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

import civic311
from civic311 import NewRequest, bulk
from civic311._journal.store import Owner, forget_token, new_token
from civic311.cli._app import cli
from civic311.ledger import Ledger, LedgerFileError
from civic311.outbox import FlushReport, Outbox
from civic311.testing import FakeCity, Fault

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
CONSOLE_SCRIPT = Path(sys.executable).with_name("civic311")


def pothole(n: int, **extra: object) -> NewRequest:
    return NewRequest(
        service_code="001",
        lat=39.16 + n / 10_000,
        long=-86.52,
        description=f"Pothole #{n}",
        **extra,  # type: ignore[arg-type]
    )


def dead_pid() -> int:
    """The pid of a process that has ended (a run that was killed)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def write_rows(path: Path, count: int) -> Path:
    lines = ["service_code,lat,long,description"]
    lines += [f"001,{39.1 + n / 10_000:.4f},-86.5,bulk row {n}" for n in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's ledger is a temp file; no ambient key."""
    monkeypatch.delenv("CIVIC311_API_KEY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    ledger = tmp_path / "ledger.sqlite"
    monkeypatch.setenv("CIVIC311_LEDGER", str(ledger))
    return ledger


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# --- case 1: one ledger, two cities -----------------------------------------------------------


def test_bulk_track_at_another_city_neither_reports_nor_stores_the_first_citys_requests(
    tmp_path: Path, cli_env: Path
) -> None:
    """`--endpoint B bulk track` leaves city A's submissions alone, though B has the same ids."""
    rows = write_rows(tmp_path / "rows.csv", 3)
    city_a, city_b = FakeCity(seed=1), FakeCity(seed=1)
    with city_a.serve() as url_a, city_b.serve() as url_b:
        code, out, err = run_cli("--endpoint", url_a, "--timeout", "5", "bulk", "submit", str(rows))
        assert code == 0, err
        with civic311.Client(url_b) as client_b:  # city B's own reports: the same ids
            for n in range(3):
                client_b.submit(pothole(100 + n))
        ids_a = {r.service_request_id for r in city_a.created}
        assert ids_a == {r.service_request_id for r in city_b.created}  # the trap is set
        code, out, err = run_cli("--json", "--endpoint", url_b, "--timeout", "5", "bulk", "track")
        assert code == 0, err
        tracked = json.loads(out)
        assert (tracked["requests"], tracked["changes"]) == (0, [])
        code, out, err = run_cli("--json", "--endpoint", url_a, "--timeout", "5", "bulk", "track")
        assert code == 0, err
        assert json.loads(out)["requests"] == 3
    with Ledger(cli_env) as ledger:
        for rid in ids_a:
            assert rid is not None
            assert ledger.history(rid, endpoint=url_b) == []
            [seen] = ledger.history(rid, endpoint=url_a)
            assert seen.status is not None
        assert {s.endpoint for s in ledger.submissions()} == {url_a}
        # B's descriptions ("Pothole #10x") were never stored as A's statuses or requests
        assert all(s.request.description.startswith("bulk row") for s in ledger.submissions())


def test_keys_are_unique_per_city(tmp_path: Path) -> None:
    """The same key at two endpoints is two rows; find_by_key tells them apart."""
    with Ledger(tmp_path / "l.sqlite") as ledger:
        a = ledger.record_pending(key="k", request=pothole(1), endpoint="https://a/v2", at=T0)
        b = ledger.record_pending(key="k", request=pothole(1), endpoint="https://b/v2", at=T0)
        assert a != b
        found = ledger.find_by_key("k", endpoint="https://b/v2")
        assert found is not None
        assert found.id == b


# --- case 2: two bulk runs on one ledger ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("queued_first", [True, False], ids=["queued-in-an-outage", "fresh"])
def test_two_bulk_runs_at_once_file_each_row_exactly_once(
    tmp_path: Path, queued_first: bool
) -> None:
    """Two `civic311 bulk submit rows.csv --rate 10 --concurrency 32` processes at once on
    one ledger (its rows queued during an outage, or a fresh one): 40 rows, 40 requests."""
    count = 40
    rows = write_rows(tmp_path / "rows.csv", count)
    ledger_path = tmp_path / "ledger.sqlite"
    env = {
        **os.environ,
        "CIVIC311_LEDGER": str(ledger_path),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
    }
    env.pop("CIVIC311_API_KEY", None)
    city = FakeCity(seed=2)
    with city.serve() as url:
        args = [str(CONSOLE_SCRIPT), "--endpoint", url, "--timeout", "10", "bulk", "submit"]
        if queued_first:
            city.down()  # an outage: every row is recorded and queued (no retries, to be quick)

            async def outage() -> bulk.BulkSummary:
                async with civic311.AsyncClient(url, retry=None, timeout=1) as client:
                    with Ledger(ledger_path) as ledger:
                        return await bulk.submit_all(
                            client, bulk.read_rows(rows), ledger=ledger, validate=False
                        )

            assert asyncio.run(outage()).counts() == {"queued": count}
            city.up()
        city.inject(Fault.latency(0.05), method="POST")
        runs = [
            subprocess.Popen(
                [*args, str(rows), "--rate", "10", "--concurrency", "32"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=120) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
        assert "DuplicateKeyError" not in out + err
        assert "Traceback" not in err
    on_city = Counter(r.description for r in city.created)
    assert len(on_city) == count
    assert set(on_city.values()) == {1}
    with Ledger(ledger_path) as ledger:
        assert Counter(s.state for s in ledger.submissions()) == {"sent": count}
        assert all(r.claim_token is None for r in ledger.store.rows())  # every claim released


def test_a_row_claimed_by_a_live_run_is_skipped_with_a_message(tmp_path: Path) -> None:
    """bulk leaves a row another live run holds, and says so; a dead run's row is taken over."""
    city = FakeCity(seed=3)
    path = tmp_path / "l.sqlite"
    rows = list(bulk.read_rows(write_rows(tmp_path / "rows.csv", 2)))
    with city.serve() as url, Ledger(path) as ledger:
        live = Owner(socket.gethostname(), os.getppid())  # a process that is certainly alive
        dead = Owner(socket.gethostname(), dead_pid())
        for row, owner in zip(rows, (live, dead), strict=True):
            assert row.request is not None
            row_id = ledger.record_pending(key=row.key, request=row.request, endpoint=url, at=T0)
            claimed = ledger.store.claim(
                row_id,
                token=f"token-{owner.pid}",
                owner=owner,
                at=T0,
                states=("pending",),
                stale_after=600,
                alive=lambda o, t: o.alive(t),
            )
            assert claimed.outcome == "claimed"

        async def go() -> bulk.BulkSummary:
            async with civic311.AsyncClient(url, reconcile_wait=0.2) as client:
                return await bulk.submit_all(client, rows, ledger=ledger, validate=False)

        summary = asyncio.run(go())
    held, taken = summary.results
    assert held.outcome == "skipped"
    assert held.detail is not None
    assert f"another run ({live})" in held.detail
    assert "not filed twice" in held.detail
    assert taken.outcome == "filed"
    assert city.count_created() == 1


# --- case 3: reconciliation never takes another submission's request ------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_crashed_identical_twin_is_not_reconciled_to_the_first_ones_request(
    tmp_path: Path, mode: str
) -> None:
    """Two identical reports; the first sent; the process dies with the second claimed but
    unsent. The next flush does not "find" the first one's request for the second."""
    city = FakeCity(seed=4)
    path = tmp_path / "o.sqlite"
    with city.serve() as url:
        with Outbox(path, resend_after=0) as outbox, civic311.Client(url) as first_process:
            one = outbox.add(pothole(1), now=T0, endpoint=url)
            two = outbox.add(pothole(1), now=T0, endpoint=url)
            rows = [outbox.ledger.find_by_local_id(x) for x in (one, two)]
            assert rows[0] is not None
            assert rows[1] is not None
            assert outbox.ledger.settle(first_process, rows[0].id).outcome == "filed"
            # ... and the process dies holding entry two, marked in flight, never sent.
            now = datetime.now(timezone.utc)
            gone = Owner(socket.gethostname(), dead_pid())
            store = outbox.ledger.store
            assert store.claim(
                rows[1].id, token="gone", owner=gone, at=now, states=("pending",),
                stale_after=600, alive=lambda o, t: o.alive(t),
            ).outcome == "claimed"  # fmt: skip
            assert store.mark_in_flight(rows[1].id, token="gone", at=now)
        assert city.count_created() == 1

        async def aflush() -> FlushReport:
            async with civic311.AsyncClient(url, reconcile_wait=0.3) as client:
                with Outbox(path, resend_after=0) as outbox:
                    return await outbox.aflush(client)

        if mode == "async":
            report = asyncio.run(aflush())
        else:
            with (
                Outbox(path, resend_after=0) as outbox,
                civic311.Client(url, reconcile_wait=0.3) as client,
            ):
                report = outbox.flush(client)
    assert report.reconciled == ()
    assert report.sent == (two,)
    with Outbox(path) as outbox:
        ids = [outbox.get(x).receipt for x in (one, two)]
    assert ids[0] is not None
    assert ids[1] is not None
    assert ids[0].service_request_id != ids[1].service_request_id
    assert city.count_created() == 2


# --- case 4: submits racing a flush ----------------------------------------------------------


@pytest.mark.slow
def test_eight_submitting_threads_and_a_flusher_file_each_report_once(tmp_path: Path) -> None:
    """8 threads submit 120 reports through one Outbox while another thread flushes: each
    report filed once, and no "sent" ever overwritten by "uncertain"."""
    city = FakeCity(seed=5)
    threads_n, each = 8, 15
    done = threading.Event()
    errors: list[BaseException] = []
    with city.serve() as url, Outbox(tmp_path / "o.sqlite", resend_after=0) as outbox:
        # Each POST takes longer than the flusher looks for it: before the journal's claims,
        # the flusher took an entry a submitter was still sending for lost, and sent it again
        # (128 requests for 120 reports, measured).
        city.inject(Fault.latency(0.3), method="POST")

        def submitter(worker: int) -> None:
            try:
                with civic311.Client(url, reconcile_wait=0.2) as client:
                    for n in range(each):
                        entry = outbox.submit(client, pothole(worker * 1000 + n))
                        assert entry.state == "sent", entry
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        def flusher() -> None:
            try:
                with civic311.Client(url, reconcile_wait=0.1) as client:
                    for _ in range(10_000):  # bounded; stops when the submitters are done
                        outbox.flush(client)
                        if done.is_set():
                            return
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        workers = [threading.Thread(target=submitter, args=(w,)) for w in range(threads_n)]
        flush_thread = threading.Thread(target=flusher)
        flush_thread.start()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        done.set()
        flush_thread.join(timeout=120)
        assert not any(t.is_alive() for t in [*workers, flush_thread])
        assert errors == []
        entries = outbox.entries()
    assert len(entries) == threads_n * each
    assert Counter(e.state for e in entries) == {"sent": threads_n * each}
    on_city = Counter(r.description for r in city.created)
    assert len(on_city) == threads_n * each
    assert set(on_city.values()) == {1}
    ids = [e.receipt.service_request_id for e in entries if e.receipt is not None]
    assert len(set(ids)) == threads_n * each


def test_an_interrupted_send_leaves_the_row_in_flight_and_unclaimed(tmp_path: Path) -> None:
    """Ctrl-C during the POST: the row stays in flight with no claim, and the next settle
    looks for it on the city first instead of sending it again."""
    city = FakeCity(seed=10)
    with city.serve() as url, Ledger(tmp_path / "l.sqlite") as ledger:
        row_id = ledger.record_pending(key="k", request=pothole(1), endpoint=url, at=T0)

        class Interrupted(civic311.Client):
            def submit(self, request: NewRequest, **options: object) -> civic311.Receipt:
                super().submit(request)  # the city files it; the answer never gets back
                raise KeyboardInterrupt

        with Interrupted(url) as client, pytest.raises(KeyboardInterrupt):
            ledger.settle(client, row_id)
        stored = ledger.store.get(row_id)
        assert stored is not None
        assert stored.in_flight
        assert stored.claim_token is None
        with civic311.Client(url, reconcile_wait=0.5) as client:
            settled = ledger.settle(client, row_id)
    assert settled.outcome == "reconciled"
    assert city.count_created() == 1


# --- claims, unit by unit ---------------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "claims.sqlite") as opened:
        yield opened


def test_a_claim_is_exclusive_and_only_its_holder_records_the_outcome(ledger: Ledger) -> None:
    """One claim wins; another live claimant is told who holds it; a stranger's outcome is
    refused; recording the outcome releases the claim."""
    row_id = ledger.record_pending(key="k", request=pothole(1), endpoint="https://a/v2", at=T0)
    store = ledger.store
    mine, theirs = new_token(), new_token()
    try:
        me = Owner.me()
        first = store.claim(
            row_id, token=mine, owner=me, at=T0, states=("pending",), stale_after=60,
            alive=lambda o, t: o.alive(t),
        )  # fmt: skip
        second = store.claim(
            row_id, token=theirs, owner=me, at=T0, states=("pending",), stale_after=60,
            alive=lambda o, t: o.alive(t),
        )  # fmt: skip
        assert (first.outcome, second.outcome) == ("claimed", "held")
        assert second.holder == str(me)
        assert not store.record_outcome(row_id, token=theirs, state="sent", at=T0)
        assert store.mark_in_flight(row_id, token=mine, at=T0)
        assert store.record_outcome(row_id, token=mine, state="failed", at=T0, error="400")
        row = store.get(row_id)
        assert row is not None
        assert (row.state, row.claim_token) == ("failed", None)
        settled = store.claim(
            row_id, token=theirs, owner=me, at=T0, states=("pending",), stale_after=60,
            alive=lambda o, t: o.alive(t),
        )  # fmt: skip
        assert settled.outcome == "settled"
    finally:
        forget_token(mine)
        forget_token(theirs)


def test_a_claim_from_another_host_expires_with_its_heartbeat(ledger: Ledger) -> None:
    """Liveness on another host is unknowable: its claim is taken once the heartbeat is older
    than stale_after, and not before."""
    row_id = ledger.record_pending(key="k", request=pothole(1), endpoint="https://a/v2", at=T0)
    store = ledger.store
    far = Owner("another-host.example", 4242)
    assert store.claim(
        row_id, token="far", owner=far, at=T0, states=("pending",), stale_after=60,
        alive=lambda o, t: o.alive(t),
    ).outcome == "claimed"  # fmt: skip
    early = store.claim(
        row_id, token="near", owner=Owner.me(), at=T0 + timedelta(seconds=30),
        states=("pending",), stale_after=60, alive=lambda o, t: o.alive(t),
    )  # fmt: skip
    assert early.outcome == "held"
    assert store.heartbeat("far", T0 + timedelta(seconds=50)) == 1
    still = store.claim(
        row_id, token="near", owner=Owner.me(), at=T0 + timedelta(seconds=100),
        states=("pending",), stale_after=60, alive=lambda o, t: o.alive(t),
    )  # fmt: skip
    assert still.outcome == "held"  # the heartbeat at +50 s keeps it alive until +110 s
    late = store.claim(
        row_id, token="near", owner=Owner.me(), at=T0 + timedelta(seconds=111),
        states=("pending",), stale_after=60, alive=lambda o, t: o.alive(t),
    )  # fmt: skip
    assert late.outcome == "claimed"


def test_the_single_writer_api_refuses_a_row_a_run_is_sending(ledger: Ledger) -> None:
    """record_outcome / mark_in_flight on a claimed row raise, naming the run holding it."""
    row_id = ledger.record_pending(key="k", request=pothole(1), endpoint="https://a/v2", at=T0)
    token = new_token()
    try:
        ledger.store.claim(
            row_id, token=token, owner=Owner.me(), at=T0, states=("pending",), stale_after=60,
            alive=lambda o, t: o.alive(t),
        )  # fmt: skip
        with pytest.raises(civic311.InvalidRequestError, match="another run"):
            ledger.record_outcome(row_id, state="sent", at=T0)
        with pytest.raises(civic311.InvalidRequestError, match="another run"):
            ledger.mark_in_flight(row_id, at=T0)
    finally:
        forget_token(token)


# --- old files, damaged files, files that are not ours ----------------------------------------

OLD_OUTBOX = """
CREATE TABLE outbox (
    local_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, state TEXT NOT NULL,
    request TEXT NOT NULL, sent_at TEXT, receipt TEXT, last_error TEXT,
    tries INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL);
CREATE INDEX outbox_state ON outbox (state, created_at);
"""


def make_old_outbox(path: Path) -> None:
    """An outbox file as civic311 wrote it before the one journal."""
    db = sqlite3.connect(path)
    db.executescript(OLD_OUTBOX)
    when = "2024-05-01T12:00:00+00:00"
    for local_id, state, receipt, tries in (
        ("q1", "queued", None, 0),
        ("q2", "queued", None, 1),
        ("s1", "sent", json.dumps({"service_request_id": "77"}), 1),
    ):
        db.execute(
            "INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            (
                local_id,
                when,
                state,
                json.dumps(
                    {"service_code": "001", "address_id": "1", "description": f"old {local_id}"}
                ),
                when if tries else None,
                receipt,
                tries,
                when,
            ),
        )
    db.commit()
    db.close()


def test_an_old_outbox_file_migrates_and_its_queue_is_flushed(tmp_path: Path) -> None:
    """An outbox file from before the journal opens as a journal; its queued entries are
    adopted by the first flushing client and sent; its sent entry keeps its receipt."""
    path = tmp_path / "old-outbox.sqlite"
    make_old_outbox(path)
    city = FakeCity(seed=6)
    with Outbox(path) as outbox:
        assert [(e.local_id, e.state) for e in outbox.entries()] == [
            ("q1", "queued"),
            ("q2", "queued"),
            ("s1", "sent"),
        ]
        assert outbox.get("s1").receipt == civic311.Receipt("77")
        with city.serve() as url, civic311.Client(url) as client:
            report = outbox.flush(client)
        assert report.sent == ("q1", "q2")
        assert outbox.get("q1").endpoint == url  # adopted by the client that sent it
    assert sorted(r.description or "" for r in city.created) == ["old q1", "old q2"]
    raw = sqlite3.connect(path)
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    raw.close()
    assert "outbox" not in tables


def test_old_bulk_keys_are_rewritten_to_the_one_content_key(tmp_path: Path) -> None:
    """A v2 ledger row keyed by the old bulk.row_key is found by the new key after migration,
    so a re-run skips it instead of filing it again."""
    import hashlib

    from civic311.bulk import row_key

    path = tmp_path / "v2.sqlite"
    request = pothole(9)
    content = civic311.to_dict(request)
    old_key = hashlib.sha256(
        json.dumps(content, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()[:24]
    from civic311._journal.sqlite import MIGRATIONS, SQLiteStore

    SQLiteStore(path, MIGRATIONS[:2]).close()  # a v2 file
    raw = sqlite3.connect(path)
    raw.execute(
        "INSERT INTO ledger_submissions (key, state, endpoint, service_code, request, "
        "recorded_at, sent_at, service_request_id, receipt_at, updated_at) "
        "VALUES (?, 'sent', 'https://a/v2', '001', ?, ?, ?, '5', ?, ?)",
        (old_key, json.dumps(content), *(["2024-05-01T12:00:00.000000+00:00"] * 4)),
    )
    raw.commit()
    raw.close()
    with Ledger(path) as ledger:
        found = ledger.find_by_key(row_key(request), endpoint="https://a/v2")
        assert found is not None
        assert found.service_request_id == "5"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b"this is a text file, not a database\n" * 200), "not a SQLite"),
        (lambda p: p.mkdir(), "cannot be opened"),
    ],
    ids=["foreign", "directory"],
)
def test_a_file_that_is_not_a_ledger_raises_a_civic311_error_naming_it(
    tmp_path: Path, make: object, reason: str
) -> None:
    """A foreign file or a directory raises LedgerFileError naming the file, for the Ledger
    and the Outbox alike, never a raw sqlite3 error."""
    path = tmp_path / "not-a-ledger.sqlite"
    make(path)  # type: ignore[operator]
    for opener in (Ledger, Outbox):
        with pytest.raises(LedgerFileError) as caught:
            opener(path)
        assert str(path) in str(caught.value)
        assert reason in str(caught.value)
        assert isinstance(caught.value, civic311.Civic311Error)


def test_a_read_only_ledger_raises_a_civic311_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger file that cannot be written raises LedgerFileError naming the file."""
    path = tmp_path / "ro.sqlite"
    Ledger(path).close()
    # Root ignores file modes, so open the file the way SQLite opens a read-only one.
    import civic311._journal.sqlite as store_module

    def read_only(where: Path) -> sqlite3.Connection:
        db = sqlite3.connect(f"file:{where}?mode=ro", uri=True, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    monkeypatch.setattr(store_module, "connect", read_only)
    with pytest.raises(LedgerFileError, match="read-only") as caught, Ledger(path) as ledger:
        ledger.record_pending(key=None, request=pothole(1), endpoint="https://a/v2", at=T0)
    assert str(path) in str(caught.value)


def test_a_ledger_locked_too_long_raises_a_civic311_error_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that waits out the busy timeout behind another process's lock raises
    LedgerFileError naming the file and the wait, not sqlite3's "database is locked"."""
    import civic311._sqlite

    path = tmp_path / "busy.sqlite"
    Ledger(path).close()
    monkeypatch.setattr(civic311._sqlite, "BUSY_TIMEOUT", 0.2)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with Ledger(path) as ledger, pytest.raises(LedgerFileError) as caught:
            ledger.record_pending(key=None, request=pothole(1), endpoint="https://a/v2", at=T0)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert str(path) in str(caught.value)
    assert "locked for over 0.2 s" in str(caught.value)


def test_a_corrupt_ledger_page_raises_a_civic311_error_naming_it(tmp_path: Path) -> None:
    """A ledger whose pages were overwritten raises LedgerFileError naming the file."""
    path = tmp_path / "corrupt.sqlite"
    with Ledger(path) as ledger:
        for n in range(50):
            ledger.record_pending(key=None, request=pothole(n), endpoint="https://a/v2", at=T0)
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page, past the file header
    path.write_bytes(bytes(data))
    with pytest.raises(LedgerFileError) as caught, Ledger(path) as ledger:
        ledger.submissions()
    assert str(path) in str(caught.value)


def test_one_damaged_entry_does_not_block_the_others(tmp_path: Path) -> None:
    """An entry whose stored request cannot be read is listed as unreadable, marked failed by
    a flush, and the other entries are sent."""
    path = tmp_path / "o.sqlite"
    city = FakeCity(seed=8)
    with city.serve() as url:
        with Outbox(path) as outbox:
            ids = [outbox.add(pothole(n), now=T0, endpoint=url) for n in range(3)]
        raw = sqlite3.connect(path)
        raw.execute(
            "UPDATE ledger_submissions SET request = '{not json' WHERE local_id = ?", (ids[1],)
        )
        raw.commit()
        raw.close()
        with Outbox(path) as outbox, civic311.Client(url) as client:
            assert [e.local_id for e in outbox.entries()] == [ids[0], ids[2]]
            assert len(outbox.ledger.unreadable()) == 1
            report = outbox.flush(client)
            assert report.sent == (ids[0], ids[2])
            assert report.failed == (ids[1],)
    assert city.count_created() == 2
