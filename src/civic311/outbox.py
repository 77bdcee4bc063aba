"""The durable outbox: a report is written to disk before it is sent, and never lost after.

`Outbox` is a view over the journal (`civic311.ledger.Ledger`): its entries are journal rows
with a ``local_id``, kept in the same SQLite file, moved through the same state machine by the
same claim-reconcile-send algorithm (`Ledger.settle`) as bulk runs. It drives every send through
the client's public API only::

    with civic311.outbox.Outbox("reports.sqlite") as outbox, civic311.Client(url) as client:
        entry = outbox.submit(client, request)    # stored first, then sent
        if entry.state == "queued":               # the city could not be reached
            ...                                   # nothing is lost: a later flush sends it
        outbox.flush(client)

``outbox.submit(client, request)`` (``await outbox.asubmit(...)`` with an `AsyncClient`):

1. checks the request (`Client.prepare`), stores it and claims it, in one transaction, before
   anything is sent;
2. marks it in flight and POSTs it with the client's duplicate-safe rules (`Client.submit`);
3. records the outcome:

   ==================================  ==========  ==========================================
   what happened                       state       what the caller gets
   ==================================  ==========  ==========================================
   the city filed it                   sent        the `OutboxEntry`, with its receipt
   every endpoint refused or was down  queued      the `OutboxEntry` (state queued)
   outcome unknown, not found          uncertain   the `OutboxEntry` (state uncertain)
   the city said no (400, 403, 404…)   failed      the `APIError`, raised
   ==================================  ==========  ==========================================

`Outbox.flush` (or `Outbox.aflush` with an `AsyncClient`) works through the client's city's
``queued``, ``sending`` and ``uncertain`` entries, oldest first, each claimed in one atomic
step first, so any number of threads and processes flushing one file send an entry at most
once; an entry another live run holds is left to it (`FlushReport.held`):

- ``queued``: sent now. If every endpoint is still down, flushing stops (order is kept).
- ``sending`` (the process died mid-send) and ``uncertain``: the request may exist, so civic311
  first *looks for it* on the server (the reconcile rule of docs/retries.md), never taking a
  request id the journal holds for another entry. Found: ``sent``. Not found: re-sent only once
  ``resend_after`` seconds (default one hour) have passed since it was sent, and otherwise
  left for a later flush.

Entries belong to the city (the client's primary endpoint) they were submitted to; a flush
sends only its client's city's entries. Entries from an outbox file of an older civic311, which
did not record the city, are adopted by the first client that flushes them.

The api_key is never stored: entries hold the `NewRequest` (`civic311.to_dict`) and the receipt.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import attrs

from civic311._journal.store import JournalStore, Owner, StoredRow, new_token
from civic311.errors import InvalidRequestError, LedgerFileError
from civic311.ledger import (
    DEFAULT_RESEND_AFTER,
    Ledger,
    Settled,
    _adrive,
    _drive,
    _redacted_endpoint,
    _request_of,
    _submission,
)
from civic311.models import NewRequest, Receipt

if TYPE_CHECKING:
    from civic311 import AsyncClient, Client

__all__ = ["FlushReport", "Outbox", "OutboxEntry", "OutboxState"]

OutboxState = Literal["queued", "sending", "sent", "uncertain", "failed"]


@attrs.frozen
class OutboxEntry:
    """One request in the outbox, as stored.

    Attributes:
        local_id: The outbox's id for it.
        created_at: When it was stored.
        state: queued, sending, sent, uncertain or failed (module docstring).
        request: The request itself.
        sent_at: When it was last handed to the network, if ever.
        receipt: The city's receipt once sent.
        last_error: Why it is not sent yet (redacted text).
        tries: How many times it was handed to the network.
        endpoint: The city (primary endpoint) it is for; "" until a flush adopts an entry
            of an older outbox file.
    """

    local_id: str
    created_at: datetime
    state: OutboxState
    request: NewRequest
    sent_at: datetime | None = None
    receipt: Receipt | None = None
    last_error: str | None = None
    tries: int = 0
    endpoint: str = ""


@attrs.frozen
class FlushReport:
    """What one flush did, by local id."""

    sent: tuple[str, ...] = ()
    reconciled: tuple[str, ...] = ()
    queued: tuple[str, ...] = ()
    uncertain: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    held: tuple[str, ...] = ()

    @property
    def done(self) -> int:
        """How many entries were settled (sent or reconciled)."""
        return len(self.sent) + len(self.reconciled)


def _outbox_state(row: StoredRow) -> OutboxState:
    # The one machine's states, in the outbox's words: a row never handed to the network is
    # waiting (queued); one in flight is sending.
    if row.state == "pending":
        return "sending" if row.sent_at is not None else "queued"
    return row.state


def _entry(row: StoredRow) -> OutboxEntry:
    sub = _submission(row)
    return OutboxEntry(
        local_id=row.local_id or "",
        created_at=row.recorded_at,
        state=_outbox_state(row),
        request=sub.request,
        sent_at=row.sent_at,
        receipt=sub.receipt,
        last_error=row.error,
        tries=row.tries,
        endpoint=row.scope,
    )


#: How the outcome of settling an entry is counted in a `FlushReport`.
_REPORTED = {
    "filed": "sent",
    "reconciled": "reconciled",
    "queued": "queued",
    "uncertain": "uncertain",
    "failed": "failed",
    "held": "held",
}


class Outbox:
    """A durable queue of reports, a view over the journal (see the module docstring).

    Args:
        path: The journal's SQLite file (created 0600 if missing; an old outbox or ledger
            file is migrated forward), a ``postgresql://`` URL (one outbox shared by several
            app servers), a `JournalStore`, or an open `Ledger` to share.
        resend_after: Seconds after an ambiguous send before a request that still cannot be
            found on the server is sent again.

    Raises:
        LedgerFileError: the file is corrupt, read-only or not a journal.

    Use it as a context manager, or call `close`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | JournalStore | Ledger,
        *,
        resend_after: float = DEFAULT_RESEND_AFTER,
    ) -> None:
        if not isinstance(path, str | os.PathLike | Ledger | JournalStore):
            raise InvalidRequestError("path", f"must be a file path, not {type(path).__name__}")
        self.resend_after = _seconds(resend_after, "resend_after")
        self._owns_ledger = not isinstance(path, Ledger)
        self._ledger = path if isinstance(path, Ledger) else Ledger(path)
        self.path = self._ledger.path

    # --- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the journal (unless it was a `Ledger` given to share)."""
        if self._owns_ledger:
            self._ledger.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Outbox({self._ledger.store.location!r})"

    @property
    def ledger(self) -> Ledger:
        """The journal this outbox is a view of."""
        return self._ledger

    # --- reading -----------------------------------------------------------------------------

    def get(self, local_id: str) -> OutboxEntry:
        """The entry with this local id.

        Raises:
            KeyError: no such entry (a `LookupError`, named in the message).
            LedgerFileError: the entry is stored but cannot be read.
        """
        row = self._ledger.store.find(scope=None, local_id=local_id)
        if row is None:
            raise KeyError(f"no outbox entry {local_id!r}")
        return _entry(row)

    def _rows(self, states: tuple[str, ...] | None = None) -> list[StoredRow]:
        rows = [r for r in self._ledger.store.rows() if r.local_id is not None]
        if states is not None:
            rows = [r for r in rows if _outbox_state(r) in states]
        return rows

    def entries(self, state: OutboxState | None = None) -> list[OutboxEntry]:
        """Every entry (or those in *state*), oldest first. An entry that cannot be read is
        left out (the others are not blocked by it)."""
        return _readable_entries(self._rows(None if state is None else (state,)))

    def pending(self) -> list[OutboxEntry]:
        """Entries not settled yet (queued, sending, uncertain), oldest first."""
        return _readable_entries(self._rows(("queued", "sending", "uncertain")))

    def __len__(self) -> int:
        return len(self._rows())

    def __iter__(self) -> Iterator[OutboxEntry]:
        return iter(self.entries())

    # --- writing -----------------------------------------------------------------------------

    def add(self, request: NewRequest, *, now: datetime, endpoint: str | None = None) -> str:
        """Store *request* as ``queued`` (for *endpoint*'s city; without one, the first
        client that flushes it adopts it) and return its local id."""
        if not isinstance(request, NewRequest):
            raise InvalidRequestError(
                "request", f"must be a civic311.NewRequest, not {type(request).__name__}"
            )
        local_id = uuid.uuid4().hex
        self._ledger.store.insert(self._ledger._new_row(None, request, endpoint, now, local_id))
        return local_id

    def _add_claimed(self, client: Client | AsyncClient, request: NewRequest) -> tuple[int, str]:
        """Store *request* for *client*'s city, born claimed by this run (one transaction)."""
        local_id = uuid.uuid4().hex
        row = self._ledger._new_row(
            None, request, client.endpoints[0], client.clock.now(), local_id
        )
        token = new_token()
        row_id, _ = self._ledger.store.insert(row, claim=(token, Owner.me()))
        return row_id, token

    # --- submitting --------------------------------------------------------------------------

    def submit(
        self,
        client: Client,
        request: NewRequest,
        *,
        retry_unsafe: bool = False,
        validate: bool = False,
    ) -> OutboxEntry:
        """Store *request*, then send it through *client* (module docstring).

        Returns:
            The entry: ``sent`` with its receipt, or ``queued``/``uncertain`` to be flushed.

        Raises:
            APIError: the city refused it (the entry is ``failed``).
            InvalidRequestError: a bad request, refused before anything is stored.
        """
        from civic311 import Client

        if not isinstance(client, Client):
            raise InvalidRequestError("client", "submit takes a civic311.Client (asubmit: async)")
        request = client.prepare(request, validate=validate)
        row_id, token = self._add_claimed(client, request)
        flow = self._ledger._settle_flow(
            client, row_id, self.resend_after, retry_unsafe, token=token
        )
        return self._result(row_id, _drive(client, flow))

    async def asubmit(
        self,
        client: AsyncClient,
        request: NewRequest,
        *,
        retry_unsafe: bool = False,
        validate: bool = False,
    ) -> OutboxEntry:
        """`submit` through an `AsyncClient`."""
        from civic311 import AsyncClient

        if not isinstance(client, AsyncClient):
            raise InvalidRequestError("client", "asubmit takes a civic311.AsyncClient")
        request = await client.prepare(request, validate=validate)
        row_id, token = self._add_claimed(client, request)
        flow = self._ledger._settle_flow(
            client, row_id, self.resend_after, retry_unsafe, token=token
        )
        return self._result(row_id, await _adrive(client, flow, None))

    def _result(self, row_id: int, settled: Settled) -> OutboxEntry:
        if settled.outcome == "failed" and settled.error is not None:
            raise settled.error
        row = self._ledger.store.get(row_id)
        assert row is not None  # rows are never deleted
        return _entry(row)

    # --- flushing ----------------------------------------------------------------------------

    def flush(self, client: Client) -> FlushReport:
        """Send what is pending for *client*'s city, oldest first (module docstring)."""
        from civic311 import Client

        if not isinstance(client, Client):
            raise InvalidRequestError("client", "flush takes a civic311.Client (aflush for async)")
        report: dict[str, list[str]] = {k: [] for k in attrs.fields_dict(FlushReport)}
        for row in self._flushable(client):
            flow = self._ledger._settle_flow(client, row.id, self.resend_after, False)
            if self._count(report, row, _drive(client, flow)):
                break
        return FlushReport(**{k: tuple(v) for k, v in report.items()})

    async def aflush(self, client: AsyncClient) -> FlushReport:
        """`flush` through an `AsyncClient`."""
        from civic311 import AsyncClient

        if not isinstance(client, AsyncClient):
            raise InvalidRequestError("client", "aflush takes a civic311.AsyncClient")
        report: dict[str, list[str]] = {k: [] for k in attrs.fields_dict(FlushReport)}
        for row in self._flushable(client):
            flow = self._ledger._settle_flow(client, row.id, self.resend_after, False)
            if self._count(report, row, await _adrive(client, flow, None)):
                break
        return FlushReport(**{k: tuple(v) for k, v in report.items()})

    def _flushable(self, client: Client | AsyncClient) -> list[StoredRow]:
        scope = _redacted_endpoint(client.endpoints[0])
        return [
            row
            for row in self._rows(("queued", "sending", "uncertain"))
            if row.scope in (scope, "")
        ]

    @staticmethod
    def _count(report: dict[str, list[str]], row: StoredRow, settled: Settled) -> bool:
        """Count *settled* in the report; whether flushing should stop (the city is down)."""
        bucket = _REPORTED.get(settled.outcome)
        if bucket is not None:
            report[bucket].append(row.local_id or "")
        return settled.outcome == "queued"


def _readable_entries(rows: list[StoredRow]) -> list[OutboxEntry]:
    entries: list[OutboxEntry] = []
    for row in rows:
        try:
            _request_of(row)
        except LedgerFileError:
            continue  # one damaged entry does not hide the others (Ledger.unreadable)
        entries.append(_entry(row))
    return entries


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise InvalidRequestError(name, f"must be seconds ≥ 0, not {value!r}")
    if value == float("inf"):
        raise InvalidRequestError(name, "must be finite")
    return float(value)
