"""The durable outbox: a report is written to disk before it is sent, and never lost after.

`Outbox` keeps every submission made through it in a SQLite file (standard library ``sqlite3``,
WAL journal, file mode 0600). ``client.submit(request, outbox=outbox)``:

1. stores the request (state ``queued``) and commits, before anything is sent;
2. marks it ``sending`` with the time, commits, and POSTs it with the client's duplicate-safe
   rules (`Client.submit`);
3. records the outcome:

   ==================================  ==========  ==========================================
   what happened                       state       what the caller gets
   ==================================  ==========  ==========================================
   the city filed it                   sent        the `Receipt` (with ``local_id``)
   every endpoint refused or was down  queued      ``Receipt(queued=True, local_id=…)``
   outcome unknown, not found          uncertain   ``Receipt(queued=True, local_id=…)``
   the city said no (400, 403, 404…)   failed      the `APIError`, raised
   ==================================  ==========  ==========================================

`Outbox.flush` (or `Outbox.aflush` with an `AsyncClient`) works through ``queued``,
``sending`` and ``uncertain`` entries, oldest first, with the same duplicate safety:

- ``queued``: sent now. If every endpoint is still down, flushing stops (order is kept).
- ``sending`` (the process died between marking and recording) and ``uncertain``: the request
  may exist, so civic311 first *looks for it* on the server (the reconcile rule of
  docs/retries.md). Found: ``sent``. Not found: re-sent only once ``resend_after`` seconds
  (default one hour) have passed since it was sent — long enough for any batch server to have
  shown it — and otherwise left for a later flush.

Every state change is its own committed transaction, so killing the process at any instant
loses nothing, and a later flush picks up exactly where it stopped. Two processes flushing the
same file do not both send an entry: each claims it with a conditional update first.

The api_key is never stored: entries hold the `NewRequest` (`civic311.to_dict`) and the receipt.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Generator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from civic311._client.base import check_seconds
from civic311._sqlite import connect
from civic311._wire.converter import from_dict, to_dict
from civic311.errors import (
    AllEndpointsFailedError,
    APIError,
    Civic311Error,
    InvalidRequestError,
    SubmissionUncertainError,
    TransportError,
)
from civic311.models import NewRequest, Receipt, ServiceRequest

if TYPE_CHECKING:
    from civic311._client.async_client import AsyncClient
    from civic311._client.client import Client

__all__ = ["Find", "FlushReport", "Outbox", "OutboxEntry", "OutboxState", "OutboxStep", "Send"]

OutboxState = Literal["queued", "sending", "sent", "uncertain", "failed"]
SendState = Literal["sent", "queued", "uncertain", "failed"]

#: Seconds after an ambiguous send before an entry that still cannot be found is re-sent.
DEFAULT_RESEND_AFTER = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    local_id     TEXT PRIMARY KEY,
    created_at   TEXT NOT NULL,
    state        TEXT NOT NULL,
    request      TEXT NOT NULL,
    sent_at      TEXT,
    receipt      TEXT,
    last_error   TEXT,
    tries        INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, created_at);
"""

_PENDING: tuple[OutboxState, ...] = ("queued", "sending", "uncertain")


@attrs.frozen
class OutboxEntry:
    """One request in the outbox, as stored.

    Attributes:
        local_id: The outbox's id for it (the `Receipt.local_id` the caller got).
        created_at: When it was stored.
        state: queued, sending, sent, uncertain or failed (module docstring).
        request: The request itself.
        sent_at: When it was last handed to the network, if ever.
        receipt: The city's receipt once sent.
        last_error: Why it is not sent yet (redacted text).
        tries: How many times it was handed to the network.
    """

    local_id: str
    created_at: datetime
    state: OutboxState
    request: NewRequest
    sent_at: datetime | None = None
    receipt: Receipt | None = None
    last_error: str | None = None
    tries: int = 0


@attrs.frozen
class FlushReport:
    """What one flush did, by local id."""

    sent: tuple[str, ...] = ()
    reconciled: tuple[str, ...] = ()
    queued: tuple[str, ...] = ()
    uncertain: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()

    @property
    def done(self) -> int:
        """How many entries were settled (sent or reconciled)."""
        return len(self.sent) + len(self.reconciled)


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat()


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def never_acted_on(error: Civic311Error | None) -> bool:
    """Whether a failed submission provably created nothing: every attempt was refused before
    it reached a server, or answered 429/503 (the server declined to act)."""
    if isinstance(error, TransportError):
        return not error.sent
    if isinstance(error, APIError):
        return error.status_code in (429, 503)
    if isinstance(error, AllEndpointsFailedError):
        return all(never_acted_on(attempt.error) for attempt in error.attempts)
    return False


class Outbox:
    """A durable queue of reports in a SQLite file (see the module docstring).

    Args:
        path: The database file; created with mode 0600 if missing. The same file can hold
            the `Ledger`.
        resend_after: Seconds after an ambiguous send before a request that still cannot be
            found on the server is sent again.

    Use it as a context manager, or call `close`.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, resend_after: float = DEFAULT_RESEND_AFTER
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise InvalidRequestError("path", f"must be a file path, not {type(path).__name__}")
        self.path = Path(path)
        self.resend_after = check_seconds(resend_after, "resend_after")
        self._db = connect(self.path)
        self._lock = threading.Lock()
        with self._db:
            self._db.executescript(_SCHEMA)

    # --- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r})"

    # --- reading -----------------------------------------------------------------------------

    def get(self, local_id: str) -> OutboxEntry:
        """The entry with this local id.

        Raises:
            KeyError: no such entry (a `LookupError`, named in the message).
        """
        row = self._db.execute("SELECT * FROM outbox WHERE local_id = ?", (local_id,)).fetchone()
        if row is None:
            raise KeyError(f"no outbox entry {local_id!r}")
        return _entry(row)

    def entries(self, state: OutboxState | None = None) -> list[OutboxEntry]:
        """Every entry (or those in *state*), oldest first."""
        if state is None:
            rows = self._db.execute("SELECT * FROM outbox ORDER BY created_at, rowid")
        else:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE state = ? ORDER BY created_at, rowid", (state,)
            )
        return [_entry(row) for row in rows]

    def pending(self) -> list[OutboxEntry]:
        """Entries not settled yet (queued, sending, uncertain), oldest first."""
        rows = self._db.execute(
            "SELECT * FROM outbox WHERE state IN (?, ?, ?) ORDER BY created_at, rowid", _PENDING
        )
        return [_entry(row) for row in rows]

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def __iter__(self) -> Iterator[OutboxEntry]:
        return iter(self.entries())

    # --- writing (each change its own committed transaction) ---------------------------------

    def add(self, request: NewRequest, *, now: datetime) -> str:
        """Store *request* as ``queued`` and return its local id."""
        if not isinstance(request, NewRequest):
            raise InvalidRequestError(
                "request", f"must be a civic311.NewRequest, not {type(request).__name__}"
            )
        local_id = uuid.uuid4().hex
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO outbox (local_id, created_at, state, request, updated_at) "
                "VALUES (?, ?, 'queued', ?, ?)",
                (local_id, _iso(now), json.dumps(to_dict(request)), _iso(now)),
            )
        return local_id

    def claim(self, local_id: str, *, now: datetime, states: tuple[OutboxState, ...]) -> bool:
        """Mark an entry ``sending`` if it is still in one of *states*; False if another
        process got there first."""
        marks = ",".join("?" * len(states))
        with self._lock, self._db:
            cursor = self._db.execute(
                f"UPDATE outbox SET state = 'sending', sent_at = ?, tries = tries + 1, "  # noqa: S608 - placeholders only
                f"updated_at = ? WHERE local_id = ? AND state IN ({marks})",
                (_iso(now), _iso(now), local_id, *states),
            )
        return cursor.rowcount == 1

    def record(
        self,
        local_id: str,
        state: OutboxState,
        *,
        now: datetime,
        receipt: Receipt | None = None,
        error: str | None = None,
    ) -> None:
        """Record an entry's new state (and its receipt or last error)."""
        with self._lock, self._db:
            self._db.execute(
                "UPDATE outbox SET state = ?, receipt = coalesce(?, receipt), last_error = ?, "
                "updated_at = ? WHERE local_id = ?",
                (
                    state,
                    json.dumps(to_dict(receipt)) if receipt is not None else None,
                    error,
                    _iso(now),
                    local_id,
                ),
            )

    # --- flushing ----------------------------------------------------------------------------

    def flush(self, client: Client) -> FlushReport:
        """Send what is pending through a `Client`, oldest first (module docstring)."""
        from civic311._client.client import Client

        if not isinstance(client, Client):
            raise InvalidRequestError("client", "flush takes a civic311.Client (aflush for async)")
        report: FlushReport = client._run_outbox(self._flush_flow(client.clock.now))
        return report

    async def aflush(self, client: AsyncClient) -> FlushReport:
        """`flush` through an `AsyncClient`."""
        from civic311._client.async_client import AsyncClient

        if not isinstance(client, AsyncClient):
            raise InvalidRequestError("client", "aflush takes a civic311.AsyncClient")
        report: FlushReport = await client._run_outbox(self._flush_flow(client.clock.now))
        return report

    def _flush_flow(self, now: Any) -> Generator[OutboxStep, Any, FlushReport]:
        report: dict[str, list[str]] = {k: [] for k in attrs.fields_dict(FlushReport)}
        for entry in self.pending():
            if entry.state == "queued":
                state, _ = yield from self.send_flow(
                    entry.local_id, entry.request, now, ("queued",)
                )
                report[state].append(entry.local_id)
                if state == "queued":
                    break  # every endpoint is down: keep the order, try again later
                continue
            # sending (interrupted) or uncertain: the request may exist; look before sending.
            sent_at = entry.sent_at or entry.created_at
            found = yield Find(entry.request, sent_at)
            if found is not None:
                self.record(entry.local_id, "sent", now=now(), receipt=_found_receipt(found))
                report["reconciled"].append(entry.local_id)
                continue
            if (now() - sent_at).total_seconds() < self.resend_after:
                self.record(entry.local_id, "uncertain", now=now(), error=entry.last_error)
                report["uncertain"].append(entry.local_id)
                continue
            state, _ = yield from self.send_flow(
                entry.local_id, entry.request, now, ("sending", "uncertain")
            )
            report[state].append(entry.local_id)
        return FlushReport(**{k: tuple(v) for k, v in report.items()})

    def send_flow(
        self,
        local_id: str,
        request: NewRequest,
        now: Any,
        states: tuple[OutboxState, ...],
        retry_unsafe: bool = False,
    ) -> Generator[OutboxStep, Any, tuple[SendState, Receipt | Civic311Error | None]]:
        """Claim, send and record one entry: the state it ended in, and the send's outcome."""
        if not self.claim(local_id, now=now(), states=states):
            return "uncertain", None  # another flusher holds it
        outcome: Receipt | Civic311Error = yield Send(request, retry_unsafe)
        if isinstance(outcome, Receipt):
            self.record(local_id, "sent", now=now(), receipt=outcome)
            return "sent", outcome
        text = str(outcome)
        if never_acted_on(outcome):
            self.record(local_id, "queued", now=now(), error=text)
            return "queued", outcome
        if isinstance(outcome, SubmissionUncertainError | AllEndpointsFailedError | TransportError):
            self.record(local_id, "uncertain", now=now(), error=text)
            return "uncertain", outcome
        self.record(local_id, "failed", now=now(), error=text)
        return "failed", outcome


@attrs.frozen
class Send:
    """An outbox step: submit this request; reply with the Receipt or the civic311 error."""

    request: NewRequest
    retry_unsafe: bool = False


@attrs.frozen
class Find:
    """An outbox step: look for the request a send at *sent_at* may have created."""

    request: NewRequest
    sent_at: datetime


OutboxStep = Send | Find


def _found_receipt(found: ServiceRequest) -> Receipt:
    return Receipt(service_request_id=found.service_request_id, token=found.token, reconciled=True)


def _entry(row: sqlite3.Row) -> OutboxEntry:
    created = _parse(row["created_at"])
    assert created is not None
    return OutboxEntry(
        local_id=row["local_id"],
        created_at=created,
        state=row["state"],
        request=from_dict(NewRequest, json.loads(row["request"])),
        sent_at=_parse(row["sent_at"]),
        receipt=from_dict(Receipt, json.loads(row["receipt"])) if row["receipt"] else None,
        last_error=row["last_error"],
        tries=row["tries"],
    )
