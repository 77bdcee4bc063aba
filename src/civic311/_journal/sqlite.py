"""The journal in a SQLite file: `SQLiteStore`, the embedded default `JournalStore`.

Standard library ``sqlite3``, WAL journal, ``synchronous=FULL``, file mode 0600, a busy timeout
so several processes share one file (`civic311._sqlite.connect`). Every method is one
``BEGIN IMMEDIATE`` … ``COMMIT`` transaction (IMMEDIATE takes the write lock up front, so a
read-decide-write such as a claim cannot interleave with another process's: SQLite's own advice
for read-modify-write, https://www.sqlite.org/lang_transaction.html). One connection is shared
by the threads of a process under a lock.

Tables are prefixed ``ledger_`` so the file can hold other things; the schema is versioned in
``ledger_schema_version`` (one row per applied migration; not ``PRAGMA user_version``, which is
file-wide). Datetimes are fixed-width UTC ISO 8601 text, so they sort as text.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar, cast

import attrs

import civic311._sqlite
from civic311._journal.store import (
    ClaimResult,
    NewRow,
    OutcomeRecord,
    Owner,
    StoredObservation,
    StoredReceipt,
    StoredRow,
    StoredState,
)
from civic311._sqlite import connect
from civic311.errors import (
    DuplicateKeyError,
    InvalidRequestError,
    LedgerFileError,
    LedgerSchemaError,
)

__all__ = ["MIGRATIONS", "Migration", "SQLiteStore"]

#: Keys per ``IN (…)`` of `SQLiteStore.existing_keys`: far below SQLite's limit of bound
#: variables (999 before 3.32, https://www.sqlite.org/limits.html#max_variable_number).
_KEYS_PER_QUERY = 500

#: Rows per multi-row statement of the batch writes: at most 12 values each, so a chunk stays
#: within the 999 bound variables of SQLite before 3.32.
_ROWS_PER_STATEMENT = 80

_T = TypeVar("_T")


def _chunks(items: Sequence[_T], size: int = _ROWS_PER_STATEMENT) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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


def _v3(db: sqlite3.Connection) -> None:
    """One journal (issue 10): keys unique per endpoint (scope), claims (token, owner,
    heartbeat), a unique local_id for outbox entries, the bulk file's row number, how many
    times a row was sent, statuses per endpoint, and the entries
    of the old ``outbox`` table moved in (they did not know their endpoint: the first client
    that flushes them adopts them)."""
    _run(
        db,
        """
        CREATE TABLE ledger_submissions_v3 (
            id                 INTEGER PRIMARY KEY AUTOINCREMENT,
            endpoint           TEXT NOT NULL,
            key                TEXT,
            local_id           TEXT UNIQUE,
            state              TEXT NOT NULL,
            service_code       TEXT NOT NULL,
            request            TEXT NOT NULL,
            recorded_at        TEXT NOT NULL,
            sent_at            TEXT,
            service_request_id TEXT,
            token              TEXT,
            service_notice     TEXT,
            account_id         TEXT,
            reconciled         INTEGER NOT NULL DEFAULT 0,
            receipt_extras     TEXT,
            receipt_at         TEXT,
            token_resolved_at  TEXT,
            error              TEXT,
            updated_at         TEXT NOT NULL,
            tries              INTEGER NOT NULL DEFAULT 0,
            source_row         INTEGER,
            claim_token        TEXT,
            claim_owner        TEXT,
            heartbeat_at       TEXT,
            UNIQUE (endpoint, key)
        );
        INSERT INTO ledger_submissions_v3 (
            id, endpoint, key, local_id, state, service_code, request, recorded_at, sent_at,
            service_request_id, token, service_notice, account_id, reconciled, receipt_extras,
            receipt_at, token_resolved_at, error, updated_at
        )
        SELECT
            id, endpoint, key, local_id, state, service_code, request, recorded_at, sent_at,
            service_request_id, token, service_notice, account_id, reconciled, receipt_extras,
            receipt_at, token_resolved_at, error, updated_at
        FROM ledger_submissions;
        DROP TABLE ledger_submissions;
        ALTER TABLE ledger_submissions_v3 RENAME TO ledger_submissions;
        CREATE INDEX ledger_submissions_request_id
            ON ledger_submissions (endpoint, service_request_id);
        CREATE INDEX ledger_submissions_token ON ledger_submissions (token);
        CREATE INDEX ledger_submissions_state ON ledger_submissions (state, id);
        CREATE INDEX ledger_submissions_claim ON ledger_submissions (claim_token);
        ALTER TABLE ledger_status ADD COLUMN endpoint TEXT NOT NULL DEFAULT '';
        UPDATE ledger_status SET endpoint = coalesce((
            SELECT s.endpoint FROM ledger_submissions AS s
            WHERE s.service_request_id = ledger_status.service_request_id
            ORDER BY s.id LIMIT 1), '');
        DROP INDEX ledger_status_by_id;
        CREATE INDEX ledger_status_by_id
            ON ledger_status (endpoint, service_request_id, observed_at)
        """,
    )
    _rekey_bulk_rows(db)
    old_outbox = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"
    ).fetchone()
    if old_outbox is None:
        return
    # The old outbox's states map onto the one machine: queued (never sent, or sent to no
    # endpoint) → queued when it was tried, pending otherwise; sending (the process died
    # mid-send) → pending in flight; the rest keep their names.
    rows = db.execute("SELECT * FROM outbox ORDER BY created_at, rowid").fetchall()
    for row in rows:
        state = row["state"]
        sent_at = row["sent_at"]
        if state == "sending":
            state = "pending"
            sent_at = sent_at or row["created_at"]
        elif state == "queued" and not row["tries"]:
            state = "pending"
        receipt = _json_object(row["receipt"])
        service_code = _json_object(row["request"]).get("service_code") or ""
        db.execute(
            "INSERT INTO ledger_submissions (endpoint, local_id, state, service_code, request, "
            "recorded_at, sent_at, service_request_id, token, service_notice, account_id, "
            "reconciled, receipt_at, error, updated_at, tries) "
            "VALUES ('', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["local_id"],
                state,
                str(service_code),
                row["request"],
                _iso(_parse_text(row["created_at"])),
                None if sent_at is None else _iso(_parse_text(sent_at)),
                receipt.get("service_request_id"),
                receipt.get("token"),
                receipt.get("service_notice"),
                receipt.get("account_id"),
                int(bool(receipt.get("reconciled"))),
                _iso(_parse_text(row["updated_at"])) if receipt else None,
                row["last_error"],
                _iso(_parse_text(row["updated_at"])),
                int(row["tries"] or 0),
            ),
        )
    db.execute("DROP TABLE outbox")


def _rekey_bulk_rows(db: sqlite3.Connection) -> None:
    """Bulk rows keyed by the old ``bulk.row_key`` (24 hex digits of another hash of the same
    content) get the one content key (``ledger.content_key``), so a re-run after the upgrade
    still recognises them and never files them again. Keys a caller chose are left alone:
    only a key equal to the old hash of the row's own stored request is rewritten."""
    rows = db.execute(
        "SELECT id, key, request FROM ledger_submissions WHERE length(key) = 24"
    ).fetchall()
    for row in rows:
        content = _json_object(row["request"])
        old = json.dumps(content, sort_keys=True, ensure_ascii=False)
        if hashlib.sha256(old.encode("utf-8")).hexdigest()[:24] != row["key"]:
            continue
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        new = "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        db.execute("UPDATE OR IGNORE ledger_submissions SET key = ? WHERE id = ?", (new, row["id"]))


def _json_object(text: object) -> dict[str, Any]:
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


#: The schema's history, oldest first. Append; never edit a released step.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "submissions and status observations", _v1),
    Migration(2, "keys and states for bulk runs; nullable sent_at; receipt extras", _v2),
    Migration(3, "one journal: keys per endpoint, claims, statuses per endpoint, outbox in", _v3),
)

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS ledger_schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL
)
"""


def _iso(value: datetime) -> str:
    # Fixed width (always microseconds, always +00:00) so stored datetimes sort as text.
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else _iso(value)


def _parse_text(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _parse(value: str | None) -> datetime | None:
    return None if value is None else _parse_text(value)


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


def _file_error(path: str, exc: sqlite3.Error) -> LedgerFileError:
    """What a raw sqlite3 error means for the person holding the file."""
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        reason = "it is read-only (civic311 must write to it; check its permissions)"
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        reason = f"it is not a SQLite ledger or it is corrupt ({text})"
    elif "locked" in text or "busy" in text:
        waited = civic311._sqlite.BUSY_TIMEOUT  # read now: tests shorten it
        reason = f"another process kept it locked for over {waited:g} s ({text}); try again later"
    elif "unable to open" in text:
        reason = f"it cannot be opened ({text}; is it a directory, or is its folder missing?)"
    else:
        reason = text
    return LedgerFileError(path, reason)


def _stored_receipt(row: sqlite3.Row) -> StoredReceipt | None:
    if row["receipt_at"] is None:
        return None
    return StoredReceipt(
        service_request_id=row["service_request_id"],
        token=row["token"],
        service_notice=row["service_notice"],
        account_id=row["account_id"],
        reconciled=bool(row["reconciled"]),
        extras_json=row["receipt_extras"],
    )


def _row(row: sqlite3.Row) -> StoredRow:
    return StoredRow(
        id=int(row["id"]),
        scope=row["endpoint"],
        key=row["key"],
        local_id=row["local_id"],
        state=cast(StoredState, row["state"]),
        service_code=row["service_code"],
        request_json=row["request"],
        recorded_at=_parse_text(row["recorded_at"]),
        updated_at=_parse_text(row["updated_at"]),
        sent_at=_parse(row["sent_at"]),
        receipt=_stored_receipt(row),
        receipt_at=_parse(row["receipt_at"]),
        token_resolved_at=_parse(row["token_resolved_at"]),
        error=row["error"],
        claim_token=row["claim_token"],
        claim_owner=row["claim_owner"],
        heartbeat_at=_parse(row["heartbeat_at"]),
        tries=int(row["tries"]),
        source_row=row["source_row"],
    )


def _observation(row: sqlite3.Row) -> StoredObservation:
    return StoredObservation(
        scope=row["endpoint"],
        service_request_id=row["service_request_id"],
        status=row["status"],
        status_notes=row["status_notes"],
        updated_datetime=_parse(row["updated_datetime"]),
        observed_at=_parse_text(row["observed_at"]),
        service_code=row["service_code"],
        service_name=row["service_name"],
    )


class SQLiteStore:
    """The journal in one SQLite file (module docstring; semantics in `JournalStore`).

    Raises:
        LedgerSchemaError: the file was written by a newer civic311 (it is left untouched).
        LedgerFileError: the file is not a SQLite ledger, is corrupt, or cannot be written.
    """

    def __init__(self, path: Path, migrations: tuple[Migration, ...] = MIGRATIONS) -> None:
        self.path = path
        self.location = str(path)
        self._lock = threading.RLock()
        try:
            self._db = connect(path)
        except OSError as exc:
            raise LedgerFileError(self.location, exc.strerror or str(exc)) from None
        except sqlite3.Error as exc:
            raise _file_error(self.location, exc) from None
        try:
            _migrate(self._db, self.location, migrations)
        except sqlite3.Error as exc:
            self._db.close()
            raise _file_error(self.location, exc) from None
        except BaseException:
            self._db.close()
            raise

    # --- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            if not durable:
                # WAL with synchronous=NORMAL: the commit is atomic and survives a killed
                # process, only a power loss or an OS crash may roll it back (no fsync until
                # the next FULL commit or checkpoint: https://www.sqlite.org/pragma.html#pragma_synchronous).
                self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                if not durable:
                    self._db.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            yield self._db

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.ProgrammingError:
            raise  # a closed store used again: the caller's bug, not the file's
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as exc:
            raise _file_error(self.location, exc) from None

    # --- lifecycle ---------------------------------------------------------------------------

    def schema_version(self) -> int:
        with self._read() as db:
            return _current_version(db)

    def close(self) -> None:
        self._db.close()

    # --- submissions -------------------------------------------------------------------------

    def insert(
        self, row: NewRow, *, claim: tuple[str, Owner] | None = None, if_absent: bool = False
    ) -> tuple[int, bool]:
        receipt = row.receipt
        at = _iso(row.at)
        with self._write() as db:
            if row.key is not None:
                found = db.execute(
                    "SELECT id FROM ledger_submissions WHERE endpoint = ? AND key = ?",
                    (row.scope, row.key),
                ).fetchone()
                if found is not None:
                    if if_absent:
                        return int(found["id"]), False
                    raise DuplicateKeyError(row.key, int(found["id"]))
            if row.local_id is not None:
                taken = db.execute(
                    "SELECT id FROM ledger_submissions WHERE local_id = ?", (row.local_id,)
                ).fetchone()
                if taken is not None:
                    raise DuplicateKeyError(row.local_id, int(taken["id"]), field="local_id")
            cursor = db.execute(
                "INSERT INTO ledger_submissions (endpoint, key, local_id, state, service_code, "
                "request, recorded_at, sent_at, error, updated_at, claim_token, claim_owner, "
                "heartbeat_at, source_row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.scope,
                    row.key,
                    row.local_id,
                    row.state,
                    row.service_code,
                    row.request_json,
                    at,
                    _iso_or_none(row.sent_at),
                    row.error,
                    at,
                    None if claim is None else claim[0],
                    None if claim is None else str(claim[1]),
                    None if claim is None else at,
                    row.source_row,
                ),
            )
            row_id = int(cursor.lastrowid or 0)
            if receipt is not None:
                self._store_receipt(db, row_id, receipt, at)
            return row_id, True

    def insert_in_flight(
        self, rows: Sequence[tuple[NewRow, str]], *, owner: Owner, at: datetime
    ) -> list[int | None]:
        for row, _ in rows:
            if row.key is None or row.local_id is not None or row.receipt is not None:
                raise InvalidRequestError("row", "insert_in_flight takes keyed rows only")
        now, holder = _iso(at), str(owner)
        ids: dict[str, int] = {}
        # One multi-row statement per chunk, and the ids read back by claim token (unique per
        # row) as one text: this runs on bulk's writer thread, where each statement step
        # gives the GIL away and takes it back from the busy event loop (issue 13).
        with self._write() as db:
            for chunk in _chunks(rows):
                values = ",".join(["(?, ?, 'pending', ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)"] * len(chunk))
                args: list[object] = []
                for row, token in chunk:
                    args += (row.scope, row.key, row.service_code, row.request_json)
                    args += (now, now, now, token, holder, now, row.source_row)
                db.execute(
                    "INSERT INTO ledger_submissions (endpoint, key, state, service_code, "  # noqa: S608 - fixed text, placeholders only
                    "request, recorded_at, sent_at, updated_at, tries, claim_token, "
                    "claim_owner, heartbeat_at, source_row) "
                    f"VALUES {values} ON CONFLICT (endpoint, key) DO NOTHING",
                    args,
                )
                tokens = [token for _, token in chunk]
                marks = ",".join("?" * len(tokens))
                found = db.execute(
                    "SELECT group_concat(claim_token || ' ' || id) FROM ledger_submissions "  # noqa: S608 - fixed text, placeholders only
                    f"WHERE claim_token IN ({marks})",
                    tokens,
                ).fetchone()[0]
                for pair in (found or "").split(","):
                    if pair:
                        token, _, row_id = pair.partition(" ")
                        ids[token] = int(row_id)
        return [ids.get(token) for _, token in rows]

    def unsend(self, row_id: int, token: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE ledger_submissions SET sent_at = NULL, tries = max(tries - 1, 0), "
                "claim_token = NULL, claim_owner = NULL, heartbeat_at = NULL "
                "WHERE id = ? AND claim_token = ? AND state = 'pending'",
                (row_id, token),
            )
            return cursor.rowcount == 1

    def record_outcomes(self, outcomes: Sequence[OutcomeRecord], *, durable: bool) -> int:
        # One UPDATE … FROM (VALUES …) per chunk (see insert_in_flight); the receipt's columns
        # as `_store_receipt` writes them, the rest as `record_outcome`; only while the claim
        # holds.
        if sqlite3.sqlite_version_info < (3, 33, 0):  # no UPDATE … FROM before 3.33
            recorded = 0
            for o in outcomes:
                recorded += self.record_outcome(
                    o.row_id,
                    token=o.token,
                    state=o.state,
                    at=o.at,
                    receipt=o.receipt,
                    error=o.error,
                )
            return recorded
        with self._write(durable=durable) as db:
            # total_changes, not rowcount: the sqlite3 module reports -1 for a statement that
            # starts with WITH.
            before = db.total_changes
            for chunk in _chunks(outcomes):
                args: list[object] = []
                for o in chunk:
                    r = o.receipt
                    args += (o.row_id, o.token, o.state, o.error, _iso(o.at), r is not None)
                    if r is None:
                        args += (None, None, None, None, 0, None)
                    else:
                        args += (r.service_request_id, r.token, r.service_notice)
                        args += (r.account_id, int(r.reconciled), r.extras_json)
                values = ",".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
                db.execute(
                    "WITH v (v_id, v_claim, v_state, v_error, v_at, v_has_receipt, v_srid, v_token, "  # noqa: S608, E501 - fixed text, placeholders only
                    f"v_notice, v_account, v_reconciled, v_extras) AS (VALUES {values}) "
                    "UPDATE ledger_submissions SET state = v.v_state, error = v.v_error, "
                    "updated_at = v.v_at, sent_at = coalesce(sent_at, v.v_at), claim_token = NULL, "
                    "claim_owner = NULL, heartbeat_at = NULL, "
                    "service_request_id = CASE WHEN v.v_has_receipt "
                    "THEN coalesce(v.v_srid, service_request_id) ELSE service_request_id END, "
                    "token = CASE WHEN v.v_has_receipt THEN v.v_token ELSE token END, "
                    "service_notice = CASE WHEN v.v_has_receipt THEN v.v_notice "
                    "ELSE service_notice END, "
                    "account_id = CASE WHEN v.v_has_receipt THEN v.v_account ELSE account_id END, "
                    "reconciled = CASE WHEN v.v_has_receipt THEN v.v_reconciled "
                    "ELSE reconciled END, "
                    "receipt_extras = CASE WHEN v.v_has_receipt THEN v.v_extras "
                    "ELSE receipt_extras END, "
                    "receipt_at = CASE WHEN v.v_has_receipt THEN v.v_at ELSE receipt_at END "
                    "FROM v WHERE ledger_submissions.id = v.v_id "
                    "AND ledger_submissions.claim_token IS v.v_claim",
                    args,
                )
            return db.total_changes - before

    def existing_keys(self, scope: str, keys: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        with self._read() as db:
            for chunk in _chunks(keys, _KEYS_PER_QUERY):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT key, id FROM ledger_submissions WHERE endpoint = ? AND key IN ({marks})"  # noqa: S608, E501 - fixed text, placeholders only
                for row in db.execute(sql, (scope, *chunk)):
                    found[row[0]] = int(row[1])
        return found

    @staticmethod
    def _store_receipt(
        db: sqlite3.Connection, row_id: int, receipt: StoredReceipt, at: str
    ) -> None:
        db.execute(
            "UPDATE ledger_submissions SET service_request_id = coalesce(?, service_request_id), "
            "token = ?, service_notice = ?, account_id = ?, reconciled = ?, receipt_extras = ?, "
            "receipt_at = ? WHERE id = ?",
            (
                receipt.service_request_id,
                receipt.token,
                receipt.service_notice,
                receipt.account_id,
                int(receipt.reconciled),
                receipt.extras_json,
                at,
                row_id,
            ),
        )

    def get(self, row_id: int) -> StoredRow | None:
        with self._read() as db:
            found = db.execute(
                "SELECT * FROM ledger_submissions WHERE id = ?", (row_id,)
            ).fetchone()
        return None if found is None else _row(found)

    def find(
        self, *, scope: str | None, key: str | None = None, local_id: str | None = None
    ) -> StoredRow | None:
        args: list[str | None]
        if local_id is not None:
            sql, args = "local_id = ?", [local_id]
        else:
            sql, args = "key = ?", [key]
        if scope is not None:
            sql += " AND endpoint = ?"
            args.append(scope)
        with self._read() as db:
            found = db.execute(
                f"SELECT * FROM ledger_submissions WHERE {sql} ORDER BY id LIMIT 1",  # noqa: S608 - fixed text, placeholders only
                args,
            ).fetchone()
        return None if found is None else _row(found)

    def rows(
        self,
        *,
        scope: str | None = None,
        states: Collection[StoredState] | None = None,
        in_flight: bool | None = None,
        service_request_id: str | None = None,
        token: str | None = None,
    ) -> list[StoredRow]:
        where: list[str] = []
        args: list[object] = []
        if scope is not None:
            where.append("endpoint = ?")
            args.append(scope)
        if states is not None:
            wanted = list(states)
            where.append(f"state IN ({','.join('?' * len(wanted))})" if wanted else "0")
            args.extend(wanted)
        if in_flight is not None:
            flight = "(state = 'pending' AND sent_at IS NOT NULL)"
            where.append(flight if in_flight else f"NOT {flight}")
        if service_request_id is not None:
            where.append("service_request_id = ?")
            args.append(service_request_id)
        if token is not None:
            where.append("token = ?")
            args.append(token)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._read() as db:
            found = db.execute(
                f"SELECT * FROM ledger_submissions{clause} ORDER BY id",  # noqa: S608 - fixed text, placeholders only
                args,
            ).fetchall()
        return [_row(r) for r in found]

    def held_ids(self, scope: str) -> frozenset[str]:
        with self._read() as db:
            found = db.execute(
                "SELECT service_request_id FROM ledger_submissions "
                "WHERE endpoint = ? AND service_request_id IS NOT NULL",
                (scope,),
            ).fetchall()
        return frozenset(r[0] for r in found)

    def claim(
        self,
        row_id: int,
        *,
        token: str,
        owner: Owner,
        at: datetime,
        states: Collection[StoredState],
        stale_after: float,
        alive: Callable[[Owner, str], bool | None],
        adopt_scope: str | None = None,
    ) -> ClaimResult:
        with self._write() as db:
            found = db.execute(
                "SELECT * FROM ledger_submissions WHERE id = ?", (row_id,)
            ).fetchone()
            if found is None:
                return ClaimResult("missing")
            row = _row(found)
            if row.state not in states:
                return ClaimResult("settled", row)
            if row.claim_token is not None and row.claim_token != token:
                holder = Owner.parse(row.claim_owner or "")
                live = alive(holder, row.claim_token)
                if live is None:  # another host: only the heartbeat can tell
                    beat = row.heartbeat_at
                    live = beat is not None and (at - beat).total_seconds() < stale_after
                if live:
                    return ClaimResult("held", row, str(holder))
            db.execute(
                "UPDATE ledger_submissions SET claim_token = ?, claim_owner = ?, "
                "heartbeat_at = ?, endpoint = CASE WHEN endpoint = '' AND ? IS NOT NULL "
                "THEN ? ELSE endpoint END WHERE id = ?",
                (token, str(owner), _iso(at), adopt_scope, adopt_scope, row_id),
            )
            return ClaimResult("claimed", row)

    def heartbeat(self, token: str, at: datetime) -> int:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE ledger_submissions SET heartbeat_at = ? WHERE claim_token = ?",
                (_iso(at), token),
            )
            return int(cursor.rowcount)

    def mark_in_flight(self, row_id: int, *, token: str | None, at: datetime) -> bool:
        now = _iso(at)
        with self._write() as db:
            found = db.execute(
                "SELECT state, claim_token FROM ledger_submissions WHERE id = ?", (row_id,)
            ).fetchone()
            if found is None:
                raise KeyError(f"no submission #{row_id} in the ledger")
            if found["state"] in ("sent", "failed"):
                raise InvalidRequestError(
                    "submission", f"#{row_id} is already {found['state']}; it cannot be sent again"
                )
            if found["claim_token"] != token:
                return False
            db.execute(
                "UPDATE ledger_submissions SET state = 'pending', sent_at = ?, updated_at = ?, "
                "tries = tries + 1, heartbeat_at = CASE WHEN claim_token IS NULL THEN NULL "
                "ELSE ? END WHERE id = ?",
                (now, now, now, row_id),
            )
            return True

    def record_outcome(
        self,
        row_id: int,
        *,
        token: str | None,
        state: StoredState,
        at: datetime,
        receipt: StoredReceipt | None = None,
        error: str | None = None,
    ) -> bool:
        now = _iso(at)
        with self._write() as db:
            found = db.execute(
                "SELECT claim_token FROM ledger_submissions WHERE id = ?", (row_id,)
            ).fetchone()
            if found is None:
                raise KeyError(f"no submission #{row_id} in the ledger")
            if found["claim_token"] != token:
                return False
            db.execute(
                "UPDATE ledger_submissions SET state = ?, error = ?, updated_at = ?, "
                "sent_at = coalesce(sent_at, ?), claim_token = NULL, claim_owner = NULL, "
                "heartbeat_at = NULL WHERE id = ?",
                (state, error, now, now, row_id),
            )
            if receipt is not None:
                self._store_receipt(db, row_id, receipt, now)
            return True

    def release(self, row_id: int, token: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE ledger_submissions SET claim_token = NULL, claim_owner = NULL, "
                "heartbeat_at = NULL WHERE id = ? AND claim_token = ?",
                (row_id, token),
            )
            return cursor.rowcount == 1

    def record_token_resolved(
        self, *, scope: str | None, token: str, service_request_id: str, at: datetime
    ) -> int:
        now = _iso(at)
        sql = (
            "UPDATE ledger_submissions SET service_request_id = ?, token_resolved_at = ?, "
            "updated_at = ? WHERE token = ? AND "
            "(service_request_id IS NULL OR service_request_id = ?)"
        )
        args: list[object] = [service_request_id, now, now, token, service_request_id]
        if scope is not None:
            sql += " AND endpoint = ?"
            args.append(scope)
        with self._write() as db:
            return int(db.execute(sql, args).rowcount)

    # --- statuses ----------------------------------------------------------------------------

    def record_status(self, observation: StoredObservation) -> bool:
        updated = _iso_or_none(observation.updated_datetime)
        with self._write() as db:
            last = db.execute(
                "SELECT status, status_notes, updated_datetime FROM ledger_status "
                "WHERE endpoint = ? AND service_request_id = ? "
                "ORDER BY observed_at DESC, id DESC LIMIT 1",
                (observation.scope, observation.service_request_id),
            ).fetchone()
            if last is not None and tuple(last) == (
                observation.status,
                observation.status_notes,
                updated,
            ):
                return False
            db.execute(
                "INSERT INTO ledger_status (endpoint, service_request_id, status, status_notes, "
                "updated_datetime, observed_at, service_code, service_name) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    observation.scope,
                    observation.service_request_id,
                    observation.status,
                    observation.status_notes,
                    updated,
                    _iso(observation.observed_at),
                    observation.service_code,
                    observation.service_name,
                ),
            )
            return True

    def observations(
        self,
        *,
        scope: str | None = None,
        service_request_id: str | None = None,
        since: datetime | None = None,
        latest_only: bool = False,
    ) -> list[StoredObservation]:
        where: list[str] = []
        args: list[object] = []
        if scope is not None:
            where.append("s.endpoint = ?")
            args.append(scope)
        if service_request_id is not None:
            where.append("s.service_request_id = ?")
            args.append(service_request_id)
        if since is not None:
            where.append("s.observed_at > ?")
            args.append(_iso(since))
        if latest_only:
            where.append(
                "s.id = (SELECT t.id FROM ledger_status AS t WHERE t.endpoint = s.endpoint "
                "AND t.service_request_id = s.service_request_id "
                "ORDER BY t.observed_at DESC, t.id DESC LIMIT 1)"
            )
            order = (
                "(SELECT min(f.id) FROM ledger_status AS f WHERE f.endpoint = s.endpoint "
                "AND f.service_request_id = s.service_request_id)"
            )
        else:
            order = "s.observed_at, s.id"
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._read() as db:
            found = db.execute(
                f"SELECT s.* FROM ledger_status AS s{clause} ORDER BY {order}",  # noqa: S608 - fixed text, placeholders only
                args,
            ).fetchall()
        return [_observation(r) for r in found]
