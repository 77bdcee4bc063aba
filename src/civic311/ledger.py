"""The ledger: the record of your communications with 311 that you are told to keep.

Cities tell residents to keep the number they were given and the date they reported. `Ledger`
keeps that, and more, in a SQLite file (standard library ``sqlite3``, WAL journal, file mode
0600, a busy timeout so several processes can share it)::

    with Ledger("reports.sqlite") as ledger:
        sid = ledger.record_submission(
            key=None, request=request, endpoint=client_url, sent_at=now, receipt=receipt
        )
        ...
        ledger.record_status(client.get_request(receipt.service_request_id), observed_at=now)
        ledger.history(receipt.service_request_id)    # every status change, oldest first
        ledger.export_csv("my-311-reports.csv")

What it records:

- **every submission**: what was sent (`civic311.to_dict` of the `NewRequest`), when, to which
  endpoint, the receipt (id, token, service_notice, reconciled, queued/local_id), when a token
  became an id, and the error if it failed. The api_key is never stored: a `NewRequest` holds
  none, any field named like a key (``api_key``, ``apikey``, ``key``…) is stripped from extras
  before writing, and api_key query values are redacted from endpoints and error texts;
- **every status change**: `record_status` stores status, status_notes and updated_datetime
  only when one of them differs from the last observation of that request, so tracking every
  hour does not grow the file;
- **keys for bulk and resume**: a submission may carry a ``key`` (your own id or a content hash,
  see `content_key`), unique when given. A bulk runner records a row *before* sending it
  (`record_pending`), marks it in flight (`mark_in_flight`) and records the outcome
  (`record_outcome`). After a crash, `in_flight` lists the rows that may or may not have
  reached the city — look for them on the server before sending again.

Submission states:

=========  =============================================================================
pending    recorded, not yet answered; ``sent_at`` is None until handed to the network
           (a pending row *with* ``sent_at`` is in flight: the process may have died
           mid-send)
sent       the city answered with a receipt (an id, a token, or neither for blackbox)
queued     every endpoint was down; the request waits (e.g. in the `Outbox`)
uncertain  the POST may have created a request and civic311 could not find out
failed     the city refused it (a 400, a 403…)
=========  =============================================================================

Storage. Tables are prefixed ``ledger_`` so the file can also hold the `Outbox` (table
``outbox``), which the ledger never touches. Datetimes are stored as fixed-width UTC ISO 8601
text (so they sort as text) and come back timezone-aware (UTC). The schema is versioned in
``ledger_schema_version`` (one row per applied migration; not ``PRAGMA user_version``, which
is file-wide and would be shared with whatever else lives in the file). Opening an older file
migrates it forward in one transaction; opening a file written by a newer civic311 raises
`LedgerSchemaError` rather than guess.

Each write is its own ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction, so several processes (a
bulk runner, a tracker, a web worker) can write to one file; SQLite serialises them and the
busy timeout makes each wait its turn.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Literal, cast, get_args

import attrs

from civic311._protocol import SECRET_NAMES, redact_text
from civic311._sqlite import connect
from civic311._wire.converter import from_dict, to_dict
from civic311.errors import DuplicateKeyError, InvalidRequestError, LedgerSchemaError
from civic311.models import NewRequest, Receipt, ServiceRequest, Status

__all__ = [
    "EXPORT_COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "DuplicateKeyError",
    "Ledger",
    "LedgerSchemaError",
    "Migration",
    "StatusObservation",
    "Submission",
    "SubmissionState",
    "content_key",
]

SubmissionState = Literal["pending", "sent", "queued", "uncertain", "failed"]
_STATES: frozenset[str] = frozenset(get_args(SubmissionState))
#: States an outcome can be recorded as (a row becomes "pending" only when it is created).
_OUTCOMES: frozenset[str] = _STATES - {"pending"}
#: States from which a row may be (re)handed to the network.
_SENDABLE = ("pending", "queued", "uncertain")


PathOrFile = str | os.PathLike[str] | IO[str]


# --- errors ----------------------------------------------------------------------------------


# --- result models ---------------------------------------------------------------------------


@attrs.frozen
class Submission:
    """One submission as the ledger holds it.

    Attributes:
        id: The ledger's row id (what `record_submission` / `record_pending` returned).
        key: Your key or content hash, if you gave one (unique in the ledger).
        state: pending, sent, queued, uncertain or failed (module docstring).
        request: What was sent.
        endpoint: The endpoint it was sent to (api_key values redacted).
        recorded_at: When the row was recorded.
        updated_at: When the row last changed.
        sent_at: When it was handed to the network; None while pending and not yet sent.
        receipt: The city's answer, once there is one. After `Ledger.record_token_resolved`
            it carries both the token and the service_request_id.
        receipt_at: When the receipt was recorded.
        token_resolved_at: When the token became a service_request_id.
        error: Why it failed or is uncertain (redacted text).
    """

    id: int
    key: str | None
    state: SubmissionState
    request: NewRequest
    endpoint: str
    recorded_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None
    receipt: Receipt | None = None
    receipt_at: datetime | None = None
    token_resolved_at: datetime | None = None
    error: str | None = None

    @property
    def service_request_id(self) -> str | None:
        """The city's id for the request, once known."""
        return self.receipt.service_request_id if self.receipt is not None else None

    @property
    def token(self) -> str | None:
        """The token a batch service answered with, if any."""
        return self.receipt.token if self.receipt is not None else None

    @property
    def in_flight(self) -> bool:
        """Handed to the network with no outcome recorded: it may or may not exist at the city."""
        return self.state == "pending" and self.sent_at is not None


@attrs.frozen
class StatusObservation:
    """A request's status as seen at one moment (stored only when it changed).

    Attributes:
        service_request_id: The city's id.
        status: The status as the city sent it (`Status.is_closed` answers "finished?").
        status_notes: The city's notes.
        updated_datetime: When the city says it last changed the request.
        observed_at: When we looked.
        service_code: The request's service, when the city said.
        service_name: The service's name, when the city said.
    """

    service_request_id: str
    status: Status | None
    status_notes: str | None
    updated_datetime: datetime | None
    observed_at: datetime
    service_code: str | None = None
    service_name: str | None = None

    @property
    def is_closed(self) -> bool:
        """Whether the city considered the request finished at this observation."""
        return self.status is not None and self.status.is_closed


# --- schema and migrations -------------------------------------------------------------------


@attrs.frozen
class Migration:
    """One step of the ledger's schema history: bring a file from ``version - 1`` to
    ``version``. Steps run in order, inside the migrating transaction; they must not commit."""

    version: int
    description: str
    apply: Callable[[sqlite3.Connection], None] = attrs.field(repr=False)


def _run(db: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT first; run statement by statement to stay in the transaction.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1(db: sqlite3.Connection) -> None:
    """The first ledger: submissions (already sent) and status observations."""
    _run(
        db,
        """
        CREATE TABLE ledger_submissions (
            id                 INTEGER PRIMARY KEY AUTOINCREMENT,
            endpoint           TEXT NOT NULL,
            service_code       TEXT NOT NULL,
            request            TEXT NOT NULL,
            sent_at            TEXT NOT NULL,
            service_request_id TEXT,
            token              TEXT,
            service_notice     TEXT,
            account_id         TEXT,
            reconciled         INTEGER NOT NULL DEFAULT 0,
            receipt_at         TEXT,
            token_resolved_at  TEXT,
            error              TEXT
        );
        CREATE INDEX ledger_submissions_request_id ON ledger_submissions (service_request_id);
        CREATE INDEX ledger_submissions_token ON ledger_submissions (token);
        CREATE TABLE ledger_status (
            id                 INTEGER PRIMARY KEY AUTOINCREMENT,
            service_request_id TEXT NOT NULL,
            status             TEXT,
            status_notes       TEXT,
            updated_datetime   TEXT,
            observed_at        TEXT NOT NULL,
            service_code       TEXT,
            service_name       TEXT
        );
        CREATE INDEX ledger_status_by_id ON ledger_status (service_request_id, observed_at)
        """,
    )


def _v2(db: sqlite3.Connection) -> None:
    """Keys and states for bulk runs: rows recorded before sending (so ``sent_at`` becomes
    nullable, which SQLite can only do by rebuilding the table), a unique ``key``, the queued
    flag and local id of outbox receipts, and the receipt's extra fields."""
    _run(
        db,
        """
        CREATE TABLE ledger_submissions_v2 (
            id                 INTEGER PRIMARY KEY AUTOINCREMENT,
            key                TEXT UNIQUE,
            state              TEXT NOT NULL,
            endpoint           TEXT NOT NULL,
            service_code       TEXT NOT NULL,
            request            TEXT NOT NULL,
            recorded_at        TEXT NOT NULL,
            sent_at            TEXT,
            service_request_id TEXT,
            token              TEXT,
            service_notice     TEXT,
            account_id         TEXT,
            reconciled         INTEGER NOT NULL DEFAULT 0,
            queued             INTEGER NOT NULL DEFAULT 0,
            local_id           TEXT,
            receipt_extras     TEXT,
            receipt_at         TEXT,
            token_resolved_at  TEXT,
            error              TEXT,
            updated_at         TEXT NOT NULL
        );
        INSERT INTO ledger_submissions_v2 (
            id, key, state, endpoint, service_code, request, recorded_at, sent_at,
            service_request_id, token, service_notice, account_id, reconciled,
            receipt_at, token_resolved_at, error, updated_at
        )
        SELECT
            id, NULL,
            CASE WHEN receipt_at IS NOT NULL THEN 'sent'
                 WHEN error IS NOT NULL THEN 'failed'
                 ELSE 'uncertain' END,
            endpoint, service_code, request, sent_at, sent_at,
            service_request_id, token, service_notice, account_id, reconciled,
            receipt_at, token_resolved_at, error,
            coalesce(token_resolved_at, receipt_at, sent_at)
        FROM ledger_submissions;
        DROP TABLE ledger_submissions;
        ALTER TABLE ledger_submissions_v2 RENAME TO ledger_submissions;
        CREATE INDEX ledger_submissions_request_id ON ledger_submissions (service_request_id);
        CREATE INDEX ledger_submissions_token ON ledger_submissions (token);
        CREATE INDEX ledger_submissions_state ON ledger_submissions (state, id);
        CREATE INDEX ledger_status_observed ON ledger_status (observed_at)
        """,
    )


#: The schema's history, oldest first. Append; never edit a released step.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "submissions and status observations", _v1),
    Migration(2, "keys and states for bulk runs; nullable sent_at; receipt extras", _v2),
)

#: The schema version this code writes.
SCHEMA_VERSION = MIGRATIONS[-1].version

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS ledger_schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL
)
"""


# --- helpers ---------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    # Fixed width (always microseconds, always +00:00) so stored datetimes sort as text.
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _parse_required(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _aware(name: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidRequestError(name, f"must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequestError(
            name, f"{value.isoformat()} is naive; give it a timezone (e.g. tzinfo=timezone.utc)"
        )
    return value


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(name, f"must be a string, not {type(value).__name__}")
    if not value.strip():
        raise InvalidRequestError(name, "must not be empty")
    return value


def _optional_text(name: str, value: object) -> str | None:
    return None if value is None else _text(name, value)


def _error_text(value: object) -> str | None:
    # Lenient on purpose: callers pass str(exc), which may be empty; an empty text is no text.
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError("error", f"must be a string, not {type(value).__name__}")
    return redact_text(value) if value.strip() else None


def _row_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(
            name, f"must be a submission id (int), not {type(value).__name__}"
        )
    return value


def _state(name: str, value: object, allowed: frozenset[str]) -> SubmissionState:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidRequestError(name, f"must be one of {sorted(allowed)}, got {value!r}")
    return cast(SubmissionState, value)  # checked against the Literal's values above


def _is_secret_name(name: object) -> bool:
    # "api_key", "API-Key", "apiKey", "x_api_key", "key": compare without separators or case.
    if not isinstance(name, str):
        return False
    squashed = name.lower().replace("_", "").replace("-", "").replace(" ", "")
    return (
        squashed in {n.replace("_", "") for n in SECRET_NAMES}
        or squashed.endswith("apikey")
        or squashed == "key"
    )


def _scrub(data: Mapping[str, Any]) -> dict[str, Any]:
    """*data* without secret-named fields, at the top level and inside ``extras``."""
    clean: dict[str, Any] = {}
    for name, value in data.items():
        if _is_secret_name(name):
            continue
        if name == "extras" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if not _is_secret_name(k)}
        clean[name] = value
    return clean


def _redacted_endpoint(endpoint: str) -> str:
    # Text-level redaction (not a URL round trip): the endpoint is kept as the caller wrote it,
    # with only the values of api_key-like query parameters replaced by ***.
    return redact_text(endpoint)


def content_key(request: NewRequest) -> str:
    """A stable key for *request*'s content: ``sha256:`` + the hex digest of its canonical JSON.

    Two `NewRequest`s with the same fields get the same key, so a bulk runner that passes
    ``key=content_key(request)`` can never record (and so never send) the same report twice,
    even across restarts.
    """
    if not isinstance(request, NewRequest):
        raise InvalidRequestError(
            "request", f"must be a civic311.NewRequest, not {type(request).__name__}"
        )
    canonical = json.dumps(to_dict(request), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _current_version(db: sqlite3.Connection) -> int:
    exists = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ledger_schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    return int(
        db.execute("SELECT coalesce(max(version), 0) FROM ledger_schema_version").fetchone()[0]
    )


def _checked_version(db: sqlite3.Connection, path: str, latest: int) -> int:
    current = _current_version(db)
    if current > latest:
        raise LedgerSchemaError(path, current, latest)
    return current


def _migrate(db: sqlite3.Connection, path: str, migrations: tuple[Migration, ...]) -> None:
    latest = migrations[-1].version
    current = _checked_version(db, path, latest)
    if current == latest:
        return  # the common case: no write lock taken just to open the file
    db.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the lock: another process may have migrated while we waited.
        db.execute(_VERSION_TABLE)
        current = _checked_version(db, path, latest)
        now = _iso(datetime.now(timezone.utc))
        for step in migrations:
            if step.version > current:
                step.apply(db)
                db.execute(
                    "INSERT INTO ledger_schema_version (version, description, applied_at) "
                    "VALUES (?, ?, ?)",
                    (step.version, step.description, now),
                )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _receipt(row: sqlite3.Row) -> Receipt | None:
    if row["receipt_at"] is None:
        return None
    extras = json.loads(row["receipt_extras"]) if row["receipt_extras"] else {}
    return Receipt(
        service_request_id=row["service_request_id"],
        token=row["token"],
        service_notice=row["service_notice"],
        account_id=row["account_id"],
        reconciled=bool(row["reconciled"]),
        queued=bool(row["queued"]),
        local_id=row["local_id"],
        extras=extras,
    )


def _submission(row: sqlite3.Row) -> Submission:
    return Submission(
        id=row["id"],
        key=row["key"],
        state=row["state"],
        request=from_dict(NewRequest, json.loads(row["request"])),
        endpoint=row["endpoint"],
        recorded_at=_parse_required(row["recorded_at"]),
        sent_at=_parse(row["sent_at"]),
        receipt=_receipt(row),
        receipt_at=_parse(row["receipt_at"]),
        token_resolved_at=_parse(row["token_resolved_at"]),
        error=row["error"],
        updated_at=_parse_required(row["updated_at"]),
    )


def _observation(row: sqlite3.Row) -> StatusObservation:
    return StatusObservation(
        service_request_id=row["service_request_id"],
        status=None if row["status"] is None else Status(row["status"]),
        status_notes=row["status_notes"],
        updated_datetime=_parse(row["updated_datetime"]),
        observed_at=_parse_required(row["observed_at"]),
        service_code=row["service_code"],
        service_name=row["service_name"],
    )


#: The columns of `Ledger.export_csv` and the keys of `Ledger.export_jsonl`, in order. One row
#: per submission, joined with the latest status seen for its service_request_id:
#:
#: - submission_id, key, state, endpoint, recorded_at, sent_at: the submission (`Submission`);
#: - service_code, description, address_string, address_id, lat, long: what was reported;
#: - service_request_id, token, service_notice, account_id, reconciled, queued, local_id,
#:   receipt_at, token_resolved_at, error: the city's answer and what became of it;
#: - status, status_notes, updated_datetime, status_observed_at: the latest status seen
#:   (empty when the request was never tracked);
#: - request: the whole request as JSON (text in CSV, an object in JSONL).
#:
#: Datetimes are ISO 8601 in UTC; in CSV, None is an empty cell and booleans are true/false.
EXPORT_COLUMNS: tuple[str, ...] = (
    "submission_id",
    "key",
    "state",
    "endpoint",
    "recorded_at",
    "sent_at",
    "service_code",
    "description",
    "address_string",
    "address_id",
    "lat",
    "long",
    "service_request_id",
    "token",
    "service_notice",
    "account_id",
    "reconciled",
    "queued",
    "local_id",
    "receipt_at",
    "token_resolved_at",
    "error",
    "status",
    "status_notes",
    "updated_datetime",
    "status_observed_at",
    "request",
)


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _export_row(sub: Submission, latest: StatusObservation | None) -> dict[str, Any]:
    receipt = sub.receipt
    request = sub.request
    return {
        "submission_id": sub.id,
        "key": sub.key,
        "state": sub.state,
        "endpoint": sub.endpoint,
        "recorded_at": _when(sub.recorded_at),
        "sent_at": _when(sub.sent_at),
        "service_code": request.service_code,
        "description": request.description,
        "address_string": request.address_string,
        "address_id": request.address_id,
        "lat": request.lat,
        "long": request.long,
        "service_request_id": sub.service_request_id,
        "token": sub.token,
        "service_notice": receipt.service_notice if receipt else None,
        "account_id": receipt.account_id if receipt else None,
        "reconciled": receipt.reconciled if receipt else None,
        "queued": receipt.queued if receipt else None,
        "local_id": receipt.local_id if receipt else None,
        "receipt_at": _when(sub.receipt_at),
        "token_resolved_at": _when(sub.token_resolved_at),
        "error": sub.error,
        "status": None if latest is None or latest.status is None else str(latest.status),
        "status_notes": latest.status_notes if latest else None,
        "updated_datetime": _when(latest.updated_datetime) if latest else None,
        "status_observed_at": _when(latest.observed_at) if latest else None,
        "request": to_dict(request),
    }


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return value


@contextmanager
def _text_sink(target: object, newline: str | None) -> Iterator[IO[str]]:
    """A text stream to write an export to: *target* itself if it is one, else a file opened
    at that path (created 0600: exports hold personal data; truncated if it exists)."""
    if isinstance(target, str | os.PathLike):
        fd = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8", newline=newline) as stream:
            yield stream
    elif hasattr(target, "write"):
        yield cast(IO[str], target)  # duck-typed: anything with write(str)
    else:
        raise InvalidRequestError(
            "path_or_file",
            f"must be a file path or a text stream, not {type(target).__name__}",
        )


# --- the ledger ------------------------------------------------------------------------------


class Ledger:
    """The record of your submissions to 311 and of every status change seen (module docstring).

    Args:
        path: The SQLite file; created with mode 0600 if missing, migrated forward if older.
            It may be the `Outbox`'s file too.

    Raises:
        LedgerSchemaError: the file was written by a newer civic311.

    Use it as a context manager, or call `close`. One `Ledger` may be shared by threads; for
    several processes, open one `Ledger` per process on the same file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise InvalidRequestError("path", f"must be a file path, not {type(path).__name__}")
        self.path = Path(path)
        self._db = connect(self.path)
        # One connection shared by threads: a lock keeps their transactions from interleaving.
        self._lock = threading.RLock()
        try:
            _migrate(self._db, str(self.path), MIGRATIONS)
        except BaseException:
            self._db.close()
            raise

    # --- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connection (safe to call twice)."""
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    @property
    def schema_version(self) -> int:
        """The schema version of the open file (always `SCHEMA_VERSION` once opened)."""
        with self._lock:
            return _current_version(self._db)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so a read-then-write (the change check in
        # record_status, the key check in record_submission) cannot race another process.
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- submissions: writing ----------------------------------------------------------------

    def record_submission(
        self,
        *,
        key: str | None,
        request: NewRequest,
        endpoint: str,
        sent_at: datetime,
        receipt: Receipt | None = None,
        error: str | None = None,
        state: SubmissionState | None = None,
    ) -> int:
        """Record a submission that was handed to the network at *sent_at*; return its row id.

        The state, unless given, follows from what you pass: a *receipt* → ``sent`` (or
        ``queued`` for an outbox receipt); an *error* alone → ``failed`` (pass
        ``state="uncertain"`` for a `SubmissionUncertainError`); neither → ``pending`` and in
        flight, to be completed by `record_receipt` or `record_outcome`.

        Raises:
            DuplicateKeyError: *key* is already recorded.
            InvalidRequestError: a wrong type, a naive datetime, an unknown state.
        """
        request_json = self._request_json(request)
        key = _optional_text("key", key)
        endpoint = _redacted_endpoint(_text("endpoint", endpoint))
        sent = _iso(_aware("sent_at", sent_at))
        if receipt is not None and not isinstance(receipt, Receipt):
            raise InvalidRequestError(
                "receipt", f"must be a civic311.Receipt, not {type(receipt).__name__}"
            )
        error = _error_text(error)
        if state is None:
            if receipt is not None:
                state = "queued" if receipt.queued else "sent"
            else:
                state = "failed" if error is not None else "pending"
        state = _state("state", state, _STATES)
        with self._write() as db:
            self._check_key(db, key)
            cursor = db.execute(
                "INSERT INTO ledger_submissions (key, state, endpoint, service_code, request, "
                "recorded_at, sent_at, error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    state,
                    endpoint,
                    request.service_code,
                    request_json,
                    sent,
                    sent,
                    error,
                    sent,
                ),
            )
            row_id = int(cursor.lastrowid or 0)
            if receipt is not None:
                self._store_receipt(db, row_id, receipt, sent)
        return row_id

    def record_pending(
        self, *, key: str | None, request: NewRequest, endpoint: str, at: datetime
    ) -> int:
        """Record a submission *before* sending it (state ``pending``, no ``sent_at``).

        A bulk runner calls this, then `mark_in_flight` just before the POST, then
        `record_outcome` (or `record_receipt`). A crash anywhere leaves a row that says how
        far it got.

        Raises:
            DuplicateKeyError: *key* is already recorded (see `find_by_key` to resume).
        """
        request_json = self._request_json(request)
        key = _optional_text("key", key)
        endpoint = _redacted_endpoint(_text("endpoint", endpoint))
        now = _iso(_aware("at", at))
        with self._write() as db:
            self._check_key(db, key)
            cursor = db.execute(
                "INSERT INTO ledger_submissions (key, state, endpoint, service_code, request, "
                "recorded_at, updated_at) VALUES (?, 'pending', ?, ?, ?, ?, ?)",
                (key, endpoint, request.service_code, request_json, now, now),
            )
            return int(cursor.lastrowid or 0)

    def mark_in_flight(self, submission: int | str, *, at: datetime) -> None:
        """Mark a submission as handed to the network at *at* (state ``pending``, ``sent_at``
        set). *submission* is a row id (int) or a key (str).

        A ``queued`` or ``uncertain`` row may be marked again when it is re-sent; a ``sent``
        or ``failed`` one may not.

        Raises:
            KeyError: no such submission.
            InvalidRequestError: the submission is already settled (sent or failed).
        """
        now = _iso(_aware("at", at))
        with self._write() as db:
            row = self._locate(db, submission)
            if row["state"] not in _SENDABLE:
                raise InvalidRequestError(
                    "submission",
                    f"#{row['id']} is already {row['state']}; it cannot be sent again",
                )
            db.execute(
                "UPDATE ledger_submissions SET state = 'pending', sent_at = ?, updated_at = ? "
                "WHERE id = ?",
                (now, now, row["id"]),
            )

    def record_outcome(
        self,
        submission: int | str,
        *,
        state: SubmissionState,
        at: datetime,
        receipt: Receipt | None = None,
        error: str | None = None,
    ) -> None:
        """Record how a send ended: ``sent``, ``queued``, ``uncertain`` or ``failed``, with
        the receipt or the error. *submission* is a row id (int) or a key (str).

        Raises:
            KeyError: no such submission.
        """
        checked = _state("state", state, _OUTCOMES)
        now = _iso(_aware("at", at))
        if receipt is not None and not isinstance(receipt, Receipt):
            raise InvalidRequestError(
                "receipt", f"must be a civic311.Receipt, not {type(receipt).__name__}"
            )
        error = _error_text(error)
        with self._write() as db:
            row = self._locate(db, submission)
            db.execute(
                "UPDATE ledger_submissions SET state = ?, error = ?, updated_at = ?, "
                "sent_at = coalesce(sent_at, ?) WHERE id = ?",
                (checked, error, now, now, row["id"]),
            )
            if receipt is not None:
                self._store_receipt(db, row["id"], receipt, now)

    def record_receipt(self, submission_id: int, receipt: Receipt, at: datetime) -> None:
        """Record the city's receipt for a submission; its state becomes ``sent`` (``queued``
        for an outbox receipt).

        Raises:
            KeyError: no such submission.
        """
        row_id = _row_id("submission_id", submission_id)
        if not isinstance(receipt, Receipt):
            raise InvalidRequestError(
                "receipt", f"must be a civic311.Receipt, not {type(receipt).__name__}"
            )
        now = _iso(_aware("at", at))
        with self._write() as db:
            row = self._locate(db, row_id)
            db.execute(
                "UPDATE ledger_submissions SET state = ?, error = NULL, updated_at = ?, "
                "sent_at = coalesce(sent_at, ?) WHERE id = ?",
                ("queued" if receipt.queued else "sent", now, now, row["id"]),
            )
            self._store_receipt(db, row["id"], receipt, now)

    def record_token_resolved(self, token: str, service_request_id: str, at: datetime) -> int:
        """Record that *token* became *service_request_id* at *at*; return how many
        submissions carried that token (0 if none: a token may come from elsewhere)."""
        token = _text("token", token)
        service_request_id = _text("service_request_id", service_request_id)
        now = _iso(_aware("at", at))
        with self._write() as db:
            cursor = db.execute(
                "UPDATE ledger_submissions SET service_request_id = ?, token_resolved_at = ?, "
                "updated_at = ? WHERE token = ? AND "
                "(service_request_id IS NULL OR service_request_id = ?)",
                (service_request_id, now, now, token, service_request_id),
            )
            return int(cursor.rowcount)

    def _request_json(self, request: object) -> str:
        if not isinstance(request, NewRequest):
            raise InvalidRequestError(
                "request", f"must be a civic311.NewRequest, not {type(request).__name__}"
            )
        return json.dumps(_scrub(to_dict(request)), ensure_ascii=False)

    def _check_key(self, db: sqlite3.Connection, key: str | None) -> None:
        if key is None:
            return
        found = db.execute("SELECT id FROM ledger_submissions WHERE key = ?", (key,)).fetchone()
        if found is not None:
            raise DuplicateKeyError(key, int(found["id"]))

    def _locate(self, db: sqlite3.Connection, submission: object) -> sqlite3.Row:
        if isinstance(submission, str):
            row = db.execute(
                "SELECT * FROM ledger_submissions WHERE key = ?", (submission,)
            ).fetchone()
        else:
            row = db.execute(
                "SELECT * FROM ledger_submissions WHERE id = ?",
                (_row_id("submission", submission),),
            ).fetchone()
        if row is None:
            raise KeyError(f"no submission {submission!r} in the ledger")
        result: sqlite3.Row = row
        return result

    def _store_receipt(
        self, db: sqlite3.Connection, row_id: int, receipt: Receipt, at: str
    ) -> None:
        extras = _scrub(dict(receipt.extras))
        db.execute(
            "UPDATE ledger_submissions SET service_request_id = coalesce(?, service_request_id), "
            "token = ?, service_notice = ?, account_id = ?, reconciled = ?, queued = ?, "
            "local_id = ?, receipt_extras = ?, receipt_at = ? WHERE id = ?",
            (
                receipt.service_request_id,
                receipt.token,
                receipt.service_notice,
                receipt.account_id,
                int(receipt.reconciled),
                int(receipt.queued),
                receipt.local_id,
                json.dumps(extras, ensure_ascii=False, default=str) if extras else None,
                at,
                row_id,
            ),
        )

    # --- submissions: reading ----------------------------------------------------------------

    def submission(self, submission_id: int) -> Submission | None:
        """The submission with this row id, or None."""
        row_id = _row_id("submission_id", submission_id)
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM ledger_submissions WHERE id = ?", (row_id,)
            ).fetchone()
        return None if row is None else _submission(row)

    def find_by_key(self, key: str) -> Submission | None:
        """The submission recorded with this key, or None (a bulk runner's resume check)."""
        key = _text("key", key)
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM ledger_submissions WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else _submission(row)

    def by_request_id(self, service_request_id: str) -> Submission | None:
        """The (first) submission that the city gave this service_request_id, or None."""
        service_request_id = _text("service_request_id", service_request_id)
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM ledger_submissions WHERE service_request_id = ? ORDER BY id LIMIT 1",
                (service_request_id,),
            ).fetchone()
        return None if row is None else _submission(row)

    def submissions(self, state: SubmissionState | None = None) -> list[Submission]:
        """Every submission (or those in *state*), in the order recorded."""
        with self._lock:
            if state is None:
                rows = self._db.execute("SELECT * FROM ledger_submissions ORDER BY id").fetchall()
            else:
                checked = _state("state", state, _STATES)
                rows = self._db.execute(
                    "SELECT * FROM ledger_submissions WHERE state = ? ORDER BY id", (checked,)
                ).fetchall()
        return [_submission(row) for row in rows]

    def in_flight(self) -> list[Submission]:
        """Submissions handed to the network with no outcome recorded (after a crash: they
        may exist at the city — look for them before sending again)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM ledger_submissions WHERE state = 'pending' "
                "AND sent_at IS NOT NULL ORDER BY id"
            ).fetchall()
        return [_submission(row) for row in rows]

    # --- statuses ----------------------------------------------------------------------------

    def record_status(self, request: ServiceRequest, *, observed_at: datetime) -> bool:
        """Record *request*'s status as seen at *observed_at*, if it changed.

        A change is a different status, status_notes or updated_datetime from the last
        observation of the same service_request_id (the first observation always counts).
        Unchanged observations are not stored, so tracking every hour does not grow the file.
        Record observations in time order: the comparison is with the latest one stored.

        Returns:
            Whether something changed (and a row was stored).

        Raises:
            InvalidRequestError: *request* is not a `ServiceRequest`, has no
                service_request_id (a token-only answer: use `record_token_resolved`), or
                *observed_at* is naive.
        """
        if not isinstance(request, ServiceRequest):
            raise InvalidRequestError(
                "request", f"must be a civic311.ServiceRequest, not {type(request).__name__}"
            )
        if not request.service_request_id:
            raise InvalidRequestError(
                "request", "has no service_request_id; only created requests can be tracked"
            )
        observed = _iso(_aware("observed_at", observed_at))
        status = None if request.status is None else str(request.status)
        updated = None if request.updated_datetime is None else _iso(request.updated_datetime)
        with self._write() as db:
            last = db.execute(
                "SELECT status, status_notes, updated_datetime FROM ledger_status "
                "WHERE service_request_id = ? ORDER BY observed_at DESC, id DESC LIMIT 1",
                (request.service_request_id,),
            ).fetchone()
            if last is not None and tuple(last) == (status, request.status_notes, updated):
                return False
            db.execute(
                "INSERT INTO ledger_status (service_request_id, status, status_notes, "
                "updated_datetime, observed_at, service_code, service_name) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    request.service_request_id,
                    status,
                    request.status_notes,
                    updated,
                    observed,
                    request.service_code,
                    request.service_name,
                ),
            )
        return True

    def history(self, service_request_id: str) -> list[StatusObservation]:
        """Every status change seen for this request, oldest first."""
        service_request_id = _text("service_request_id", service_request_id)
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM ledger_status WHERE service_request_id = ? ORDER BY observed_at, id",
                (service_request_id,),
            ).fetchall()
        return [_observation(row) for row in rows]

    def latest_status(self, service_request_id: str) -> StatusObservation | None:
        """The last status seen for this request, or None if it was never observed."""
        service_request_id = _text("service_request_id", service_request_id)
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM ledger_status WHERE service_request_id = ? "
                "ORDER BY observed_at DESC, id DESC LIMIT 1",
                (service_request_id,),
            ).fetchone()
        return None if row is None else _observation(row)

    def latest_statuses(self, *, closed: bool | None = None) -> list[StatusObservation]:
        """The latest observation of every tracked request, in the order first observed.

        With ``closed=True`` only requests the city considers finished (`Status.is_closed`:
        closed, fixed, duplicate…), with ``closed=False`` only the others.
        """
        if closed is not None and not isinstance(closed, bool):
            raise InvalidRequestError("closed", f"must be True, False or None, not {closed!r}")
        latest = self._latest_by_id()
        if closed is None:
            return list(latest.values())
        return [obs for obs in latest.values() if obs.is_closed == closed]

    def by_status(self, status: str) -> list[StatusObservation]:
        """The latest observations whose status equals *status*, ignoring case, spaces and
        dashes (``"In Progress"`` matches ``in_progress``).

        This compares the value the city sent. To ask "open or closed?" whatever words the
        city uses, use ``latest_statuses(closed=...)``.
        """
        wanted = Status(_text("status", status)).normalized
        return [
            obs
            for obs in self._latest_by_id().values()
            if obs.status is not None and obs.status.normalized == wanted
        ]

    def changed_since(self, when: datetime) -> list[StatusObservation]:
        """Status changes observed strictly after *when*, oldest first. Pass the
        ``observed_at`` of the last change you processed to get only newer ones."""
        since = _iso(_aware("when", when))
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM ledger_status WHERE observed_at > ? ORDER BY observed_at, id",
                (since,),
            ).fetchall()
        return [_observation(row) for row in rows]

    def tracked_ids(self, *, open_only: bool = False) -> list[str]:
        """Every service_request_id the ledger knows: those of submissions (in the order
        submitted), then those only observed (in the order first observed).

        With ``open_only=True``, ids whose latest status is closed are left out; an id never
        observed counts as open (nothing says it is finished).
        """
        if not isinstance(open_only, bool):
            raise InvalidRequestError("open_only", f"must be True or False, not {open_only!r}")
        with self._lock:
            submitted = self._db.execute(
                "SELECT service_request_id FROM ledger_submissions "
                "WHERE service_request_id IS NOT NULL ORDER BY id"
            ).fetchall()
            observed = self._db.execute(
                "SELECT service_request_id FROM ledger_status ORDER BY id"
            ).fetchall()
        ids = list(dict.fromkeys(row[0] for row in (*submitted, *observed)))
        if not open_only:
            return ids
        latest = self._latest_by_id()
        return [i for i in ids if i not in latest or not latest[i].is_closed]

    def _latest_by_id(self) -> dict[str, StatusObservation]:
        with self._lock:
            rows = self._db.execute(
                "SELECT s.* FROM ledger_status AS s WHERE s.id = ("
                "  SELECT t.id FROM ledger_status AS t"
                "  WHERE t.service_request_id = s.service_request_id"
                "  ORDER BY t.observed_at DESC, t.id DESC LIMIT 1"
                ") ORDER BY (SELECT min(f.id) FROM ledger_status AS f"
                "  WHERE f.service_request_id = s.service_request_id)"
            ).fetchall()
        return {row["service_request_id"]: _observation(row) for row in rows}

    # --- export ------------------------------------------------------------------------------

    def _export_rows(self) -> Iterable[dict[str, Any]]:
        latest = self._latest_by_id()
        for sub in self.submissions():
            rid = sub.service_request_id
            yield _export_row(sub, latest.get(rid) if rid else None)

    def export_csv(self, path_or_file: PathOrFile) -> int:
        """Write every submission with its latest status as CSV (`EXPORT_COLUMNS`, a header
        row first); return the number of rows. A path is created 0600 (or truncated)."""
        count = 0
        with _text_sink(path_or_file, newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            for row in self._export_rows():
                writer.writerow({k: _csv_cell(v) for k, v in row.items()})
                count += 1
        return count

    def export_jsonl(self, path_or_file: PathOrFile) -> int:
        """Write every submission with its latest status as JSON Lines, one object per line
        with the keys of `EXPORT_COLUMNS` (``request`` as an object); return the count."""
        count = 0
        with _text_sink(path_or_file, newline=None) as stream:
            for row in self._export_rows():
                stream.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
        return count
