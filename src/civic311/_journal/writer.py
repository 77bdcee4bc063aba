"""`JournalWriter`: one thread that does a bulk run's journal writes, in batches, off the loop.

A bulk run at concurrency 32 made three SQLite commits per row on the event loop, each with a
full fsync, while the loop had POSTs to drive: the loop, not the disk, was the limit (issue 13;
the other half of the cost was httpcore's pool, see `civic311._client._network`). Here:

* new rows' pre-send records gather on the loop for a few milliseconds or a number of rows
  (``gather_for``, ``batch_size``) and go to this thread as ONE batch, written in one durable
  transaction (`BatchingStore.insert_in_flight`: each row created claimed and in flight in one
  statement); rows arriving while a commit runs form the next batch (group commit);
* outcomes are fire-and-forget: they ride along with the next batch (or `close`) and are
  written without an fsync (`BatchingStore.record_outcomes` with ``durable=False``). A killed
  process loses none of them (WAL); a power cut may, leaving those rows in flight, which the
  next run reconciles: looked for on the city first, never filed twice. A row's claim token
  stays live until its outcome is committed, so no other run in this process takes it over;
* the loop only appends to a list and puts one item on a queue per batch (each wake-up of this
  thread costs the loop the GIL at its next system call), and wakes on a future the thread
  resolves (``call_soon_threadsafe``).

`close` waits for every queued write and re-raises the first error a write met.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from datetime import datetime
from typing import Any

import attrs

from civic311._journal.store import BatchingStore, NewRow, OutcomeRecord, Owner, forget_token

__all__ = ["JournalWriter"]


@attrs.define
class _Admit:
    row: NewRow
    token: str
    at: datetime
    future: asyncio.Future[int | None]


@attrs.define
class _Unsend:
    token: str
    row_id: int | None = None


_Job = list[_Admit | OutcomeRecord] | _Unsend | None


class JournalWriter:
    """The writer thread of one bulk run over *store* (module docstring). Create it inside the
    running event loop that awaits `admit`."""

    def __init__(
        self, store: BatchingStore, owner: Owner, *, batch_size: int = 1, gather_for: float = 0.0
    ) -> None:
        self._store = store
        self._owner = owner
        self._batch_size = max(1, batch_size)
        self._gather_for = gather_for
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._batch: list[_Admit | OutcomeRecord] = []
        self._flush_due: asyncio.Handle | None = None
        # Written by the loop (a run cancelled while its insert was queued), read by the thread.
        self._abandoned: set[str] = set()
        self._inserted: dict[str, int] = {}  # the thread's own: token → row id
        self._failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="civic311-journal-writer", daemon=True
        )
        self._thread.start()

    async def admit(self, row: NewRow, token: str, at: datetime) -> int | None:
        """Record *row* claimed under *token* and in flight since *at* (durably, before this
        returns); its id, or None when its key is recorded already (nothing written).

        Admissions gather for up to *gather_for* seconds or *batch_size* rows, whichever comes
        first, and go to the thread as one batch with the outcomes queued meanwhile."""
        future: asyncio.Future[int | None] = self._loop.create_future()
        self._batch.append(_Admit(row, token, at, future))
        if len(self._batch) >= self._batch_size:
            self._flush()
        elif self._flush_due is None:
            if self._gather_for > 0:
                self._flush_due = self._loop.call_later(self._gather_for, self._flush)
            else:
                self._flush_due = self._loop.call_soon(self._flush)
        try:
            return await future
        except asyncio.CancelledError:
            # Nothing was sent: if the insert lands (or landed), undo its "in flight".
            self._abandoned.add(token)
            self._queue.put(_Unsend(token))
            raise

    def abandon(self, row_id: int, token: str) -> None:
        """The row `admit` recorded under *token* will not be sent after all (the run was
        cancelled before its POST started): queue undoing its "in flight" and its claim."""
        self._abandoned.add(token)
        self._queue.put(_Unsend(token, row_id))

    def record(self, outcome: OutcomeRecord) -> None:
        """Queue *outcome*, written without an fsync with the next batch of admissions (or at
        `close`): nothing waits for it. Its claim token is forgotten once written."""
        self._batch.append(outcome)

    def close(self) -> None:
        """Write everything queued, stop the thread; raise the first error a write met."""
        self._flush()
        self._queue.put(None)
        self._thread.join()
        if self._failure is not None:
            raise self._failure

    # --- loop side ---------------------------------------------------------------------------

    def _flush(self) -> None:
        # One queue item per batch, not one per row: each put wakes the thread, which then
        # takes the GIL from the loop at its next system call (a send, a poll).
        if self._flush_due is not None:
            self._flush_due.cancel()
            self._flush_due = None
        batch, self._batch = self._batch, []
        live = [
            item for item in batch if not (isinstance(item, _Admit) and item.future.cancelled())
        ]
        if live:
            self._queue.put(live)

    def _call(self, fn: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(fn, *args)

    def _deliver(self, future: asyncio.Future[int | None], value: int | None) -> None:
        if not future.done():
            future.set_result(value)

    def _fail(self, future: asyncio.Future[int | None], error: BaseException) -> None:
        if not future.done():
            future.set_exception(error)

    # --- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            jobs: list[_Job] = [self._queue.get()]
            while not self._queue.empty():  # only this thread takes from the queue
                jobs.append(self._queue.get_nowait())
            stop = any(job is None for job in jobs)
            self._handle(jobs)

    def _handle(self, jobs: list[_Job]) -> None:
        items = [item for job in jobs if isinstance(job, list) for item in job]
        outcomes = [item for item in items if isinstance(item, OutcomeRecord)]
        admits = [item for item in items if isinstance(item, _Admit)]
        unsends = [job for job in jobs if isinstance(job, _Unsend)]
        if outcomes:
            self._write_outcomes(outcomes)
        if admits:
            self._write_admits(admits)
        for unsend in unsends:
            self._unsend(unsend.token, unsend.row_id)

    def _write_outcomes(self, outcomes: list[OutcomeRecord]) -> None:
        try:
            self._store.record_outcomes(outcomes, durable=False)
        except BaseException as exc:
            self._failure = self._failure or exc
        finally:
            for outcome in outcomes:
                if outcome.token is not None:
                    self._inserted.pop(outcome.token, None)
                    forget_token(outcome.token)

    def _write_admits(self, admits: list[_Admit]) -> None:
        # One sent_at for the batch, the latest admission: still before every one of these
        # POSTs, which start only after this commit (reconciliation looks for what a send
        # created from sent_at minus five minutes on, so sent_at must not be later).
        at = max(admit.at for admit in admits)
        try:
            ids = self._store.insert_in_flight(
                [(admit.row, admit.token) for admit in admits], owner=self._owner, at=at
            )
        except BaseException as exc:
            self._failure = self._failure or exc
            for admit in admits:
                self._call(self._fail, admit.future, exc)
            return
        for admit, row_id in zip(admits, ids, strict=True):
            if row_id is not None:
                self._inserted[admit.token] = row_id
            if admit.token in self._abandoned:
                self._unsend(admit.token)
            else:
                self._call(self._deliver, admit.future, row_id)

    def _unsend(self, token: str, row_id: int | None = None) -> None:
        """The run that admitted *token*'s row was cancelled before sending it."""
        inserted = self._inserted.pop(token, None)
        row_id = inserted if row_id is None else row_id
        try:
            if row_id is not None:
                self._store.unsend(row_id, token)
        except BaseException as exc:
            self._failure = self._failure or exc
        finally:
            forget_token(token)
