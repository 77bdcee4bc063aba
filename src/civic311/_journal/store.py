"""The journal's storage interface: the one thing a SQLite file or a PostgreSQL database must do.

civic311 keeps ONE durable record of submissions and observed statuses (the journal; `Ledger`
and `Outbox` are views over it, bulk is a policy over it). Everything that touches storage goes
through `JournalStore`, so a second store (PostgreSQL, issue 15) is one class, written against
this page, with no change above it. `civic311._journal.sqlite.SQLiteStore` is the embedded
default and the reference implementation.

The model
=========

A **row** is one submission: a `NewRequest` (stored as canonical JSON text, no api_key), the
**scope** it belongs to (the client's primary endpoint URL with api_key values redacted — "which
city"), an optional **key** (a bulk row's key, a content hash, your own id), an optional
**local_id** (an outbox entry's id), a **state**, and the city's receipt once there is one.
``(scope, key)`` is unique when key is given; ``local_id`` is unique when given. Ids the city
gives (``service_request_id``) and status observations are also per scope: city A's request
"42" is not city B's request "42".

The state machine (one, for outbox, ledger and bulk)::

                claim, POST starts              the city answered
    pending ─────────────────────► in flight ────────────────────► sent      (final)
    (sent_at NULL)                 (pending,  ──── it refused ────► failed    (final)
       ▲                            sent_at)  ──── never reached ─► queued
       │                               │      ──── unknown ───────► uncertain
    created                            │ the run died: its claim goes stale
                                       ▼
    queued ─── claim ───► send again (it provably never reached a city)
    uncertain, stale in flight ─── claim ───► RECONCILE: look for it on the city, never
        taking an id the journal already holds; found → sent; not found and younger than
        resend_after → uncertain (claim released); older → send again

States are strings: ``pending`` (``sent_at`` NULL: recorded, never handed to the network;
``sent_at`` set: in flight, the POST may or may not have reached the city), ``sent``,
``queued``, ``uncertain``, ``failed``.

Claims
======

Before anything is sent for a row, a run **claims** it: one atomic step that succeeds for
exactly one caller however many threads, processes (or machines) race for it. A claim is a
random ``token`` plus an ``owner`` (``host:pid``) and a heartbeat time. Only the holder of the
token may mark the row in flight and record its outcome; recording the outcome releases the
claim. A claim held by a live owner is never taken: the other run skips the row and says so.
A claim whose owner is dead (same host and the pid is gone, or the heartbeat is older than
``stale_after`` seconds) is taken over, and the row, if it was in flight, is reconciled before
anything is sent again.

Who is alive is decided by the caller's ``alive`` callback (`Owner.alive` by default), so every
store uses the same rule.

Datetimes cross this interface timezone-aware (UTC); how a store keeps them is its own business
(SQLite: fixed-width ISO 8601 text, so they sort as text).

Errors
======

A store raises only civic311 errors: `DuplicateKeyError` for a taken ``(scope, key)``,
`LedgerSchemaError` for a schema newer than the code, `LedgerFileError` (naming the file or the
URL without its password) for anything the storage itself refuses — corrupt, read-only, not a
journal, unreachable. Never a raw ``sqlite3`` or ``psycopg`` error.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

import attrs

__all__ = [
    "BatchingStore",
    "ClaimOutcome",
    "ClaimResult",
    "JournalStore",
    "NewRow",
    "OutcomeRecord",
    "Owner",
    "StoredObservation",
    "StoredReceipt",
    "StoredRow",
    "StoredState",
]

StoredState = Literal["pending", "sent", "queued", "uncertain", "failed"]
ClaimOutcome = Literal["claimed", "held", "settled", "missing"]

#: Claim tokens of this process that are still being worked on. A claim whose owner is this
#: very process but whose token is not here was abandoned (an exception escaped between claim
#: and outcome): it is as stale as a dead process's.
_LIVE_TOKENS: set[str] = set()


@attrs.frozen
class Owner:
    """Who holds a claim: a host name and a process id (``"host:pid"`` in storage)."""

    host: str
    pid: int

    @classmethod
    def me(cls) -> Owner:
        """This process."""
        return cls(socket.gethostname(), os.getpid())

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"

    @classmethod
    def parse(cls, text: str) -> Owner:
        """The owner stored as ``host:pid`` (an unparsable text is a dead owner, pid 0)."""
        host, _, pid = text.rpartition(":")
        return cls(host, int(pid)) if pid.isdigit() else cls(text, 0)

    def alive(self, token: str) -> bool | None:
        """Whether the run holding *token* is alive: True/False when this host can tell (the
        pid exists; for this very process, the token is still in use), None when it cannot
        (another host: the store falls back on the heartbeat's age)."""
        if self.host != socket.gethostname() or os.name == "nt":
            # Another host's processes cannot be seen from here; and on Windows os.kill(pid,
            # 0) would send CTRL_C_EVENT instead of asking (Python docs, os.kill).
            return None
        if self.pid == os.getpid():
            return token in _LIVE_TOKENS
        if self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # it exists, under another user
        return True


def new_token() -> str:
    """A fresh claim token, registered as live in this process until `forget_token`."""
    token = uuid.uuid4().hex
    _LIVE_TOKENS.add(token)
    return token


def forget_token(token: str) -> None:
    """The work under *token* is over (its outcome recorded, or abandoned)."""
    _LIVE_TOKENS.discard(token)


@attrs.frozen
class StoredReceipt:
    """A city's receipt as the journal keeps it (no outbox fields: those are row columns)."""

    service_request_id: str | None = None
    token: str | None = None
    service_notice: str | None = None
    account_id: str | None = None
    reconciled: bool = False
    extras_json: str | None = None


@attrs.frozen
class NewRow:
    """A row to insert. *request_json* is canonical JSON of the request, secrets removed."""

    scope: str
    service_code: str
    request_json: str
    at: datetime
    key: str | None = None
    local_id: str | None = None
    state: StoredState = "pending"
    sent_at: datetime | None = None
    receipt: StoredReceipt | None = None
    error: str | None = None
    source_row: int | None = None  # the row's number in the bulk file it came from


@attrs.frozen
class StoredRow:
    """One row as stored (see the module docstring for the meaning of each part)."""

    id: int
    scope: str
    key: str | None
    local_id: str | None
    state: StoredState
    service_code: str
    request_json: str
    recorded_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    receipt: StoredReceipt | None
    receipt_at: datetime | None
    token_resolved_at: datetime | None
    error: str | None
    claim_token: str | None = None
    claim_owner: str | None = None
    heartbeat_at: datetime | None = None
    tries: int = 0  # how many times it was marked in flight
    source_row: int | None = None  # the row's number in the bulk file it came from

    @property
    def in_flight(self) -> bool:
        """Handed to the network with no outcome recorded."""
        return self.state == "pending" and self.sent_at is not None


@attrs.frozen
class ClaimResult:
    """What `JournalStore.claim` did.

    Attributes:
        outcome: ``claimed`` (the caller now holds the row), ``held`` (a live run holds it),
            ``settled`` (it is in none of the states asked for: nothing to do), ``missing``.
        row: The row as it was *before* this claim (so the caller sees whether it was in
            flight under a dead run), or None when missing.
        holder: For ``held``: the live owner (``host:pid``).
    """

    outcome: ClaimOutcome
    row: StoredRow | None = None
    holder: str | None = None


@attrs.frozen
class StoredObservation:
    """A status observation of one request in one scope."""

    scope: str
    service_request_id: str
    status: str | None
    status_notes: str | None
    updated_datetime: datetime | None
    observed_at: datetime
    service_code: str | None = None
    service_name: str | None = None


@runtime_checkable
class JournalStore(Protocol):
    """Durable storage for the journal. Every method is one transaction: it either happens
    whole or not at all, and what it returns was true inside that transaction.

    Thread safety: one store object may be used by several threads at once. Several stores
    (processes, machines) may open the same storage at once; the atomicity promises below hold
    across all of them.
    """

    #: The file path, or the URL without its password: for messages.
    location: str

    # --- lifecycle -----------------------------------------------------------------------

    def schema_version(self) -> int:
        """The schema version of the open storage (migrated to the newest on open: opening
        creates the schema if absent and applies every missing migration in one transaction,
        or raises `LedgerSchemaError` for a newer schema, leaving it untouched)."""
        ...

    def close(self) -> None:
        """Release the connection(s). Safe to call twice."""
        ...

    # --- submissions ---------------------------------------------------------------------

    def insert(
        self, row: NewRow, *, claim: tuple[str, Owner] | None = None, if_absent: bool = False
    ) -> tuple[int, bool]:
        """Insert *row*; return ``(row id, created)``.

        Atomic get-or-create: if ``row.key`` is given and ``(row.scope, row.key)`` exists, then
        with *if_absent* the existing id comes back with ``created=False``, and without it
        `DuplicateKeyError` is raised; nothing is changed either way. With *claim* (a token and
        its owner) a created row is born claimed by it, in the same transaction, so no other
        run can take it between insert and claim.
        """
        ...

    def get(self, row_id: int) -> StoredRow | None:
        """The row with this id, or None."""
        ...

    def find(
        self, *, scope: str | None, key: str | None = None, local_id: str | None = None
    ) -> StoredRow | None:
        """The row with this key in *scope* (any scope when None: the oldest match), or with
        this local_id. Exactly one of *key* / *local_id* is given."""
        ...

    def rows(
        self,
        *,
        scope: str | None = None,
        states: Collection[StoredState] | None = None,
        in_flight: bool | None = None,
        service_request_id: str | None = None,
        token: str | None = None,
    ) -> list[StoredRow]:
        """Rows matching every filter given (None: no filter), oldest first (by id)."""
        ...

    def held_ids(self, scope: str) -> frozenset[str]:
        """Every service_request_id a row of *scope* holds. Reconciliation excludes them, so a
        lost answer is never "found" as another submission's request."""
        ...

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
        """Claim a row for sending: ONE atomic step (SQLite: ``BEGIN IMMEDIATE`` read-decide-
        write; PostgreSQL: ``SELECT … FOR UPDATE`` in one transaction).

        It succeeds when the row is in one of *states* and unclaimed, or claimed by an owner
        that is dead: ``alive(owner, token)`` is False, or None and the claim's heartbeat is
        older than *stale_after* seconds before *at*. It sets the claim (token, owner,
        heartbeat = *at*) and nothing else: the state is unchanged. A row whose scope is
        empty (a legacy outbox entry, which did not know its city) is given *adopt_scope*.
        """
        ...

    def heartbeat(self, token: str, at: datetime) -> int:
        """Refresh the heartbeat of every row claimed under *token*; return how many."""
        ...

    def mark_in_flight(self, row_id: int, *, token: str | None, at: datetime) -> bool:
        """The POST is about to start: state ``pending`` with ``sent_at`` = *at*.

        Only the claim's holder may (``token`` must match the row's claim; ``None`` only for
        an unclaimed row — the single-writer `Ledger.mark_in_flight`); False if not held.
        Rows in ``sent`` or ``failed`` are never marked (`InvalidRequestError`).
        """
        ...

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
        """Record how a send (or a reconciliation) ended, and release the claim.

        Conditional on the claim: with a *token*, only if the row is still claimed under it
        (False otherwise, nothing changed: a run whose claim was taken over never overwrites
        the newer run's outcome); with None, only if the row is unclaimed. A receipt's
        service_request_id, once stored, is kept when a later receipt has none.
        """
        ...

    def release(self, row_id: int, token: str) -> bool:
        """Drop the claim *token* holds on the row without changing anything else."""
        ...

    def record_token_resolved(
        self, *, scope: str | None, token: str, service_request_id: str, at: datetime
    ) -> int:
        """Store that *token* became *service_request_id* on every row of *scope* (any scope
        when None) that carries the token and no other id; return how many rows."""
        ...

    # --- statuses ------------------------------------------------------------------------

    def record_status(self, observation: StoredObservation) -> bool:
        """Store *observation* if it differs (status, notes, updated_datetime) from the latest
        one of the same request in the same scope; return whether it was stored. Atomic: two
        writers observing the same change store it once."""
        ...

    def observations(
        self,
        *,
        scope: str | None = None,
        service_request_id: str | None = None,
        since: datetime | None = None,
        latest_only: bool = False,
    ) -> list[StoredObservation]:
        """Observations matching the filters, oldest first (``observed_at``, then insertion).
        *since* is exclusive. With *latest_only*, only the latest of each (scope, request),
        ordered by when that request was first observed."""
        ...


@attrs.frozen
class OutcomeRecord:
    """One outcome for `BatchingStore.record_outcomes`: the arguments of
    `JournalStore.record_outcome` for one row."""

    row_id: int
    token: str | None
    state: StoredState
    at: datetime
    receipt: StoredReceipt | None = None
    error: str | None = None


@runtime_checkable
class BatchingStore(JournalStore, Protocol):
    """A `JournalStore` that can also write many rows in one transaction, for bulk runs
    (issue 13: one commit per batch instead of three per row). Same promises as the single-row
    methods; a store without these methods is used row by row.
    """

    def insert_in_flight(
        self, rows: Sequence[tuple[NewRow, str]], *, owner: Owner, at: datetime
    ) -> list[int | None]:
        """Insert each keyed row (with its claim token), claimed by *owner*, recorded at *at*
        and already in flight (``pending``, ``sent_at`` = *at*, one try; ``row.at`` is not
        used): the record a POST needs before it
        starts, in ONE durable transaction. A row whose ``(scope, key)`` exists is left alone
        (None in its place); the others' ids come back in order. A crash after this commit and
        before a POST leaves the row in flight under a dead owner: the next run looks for it on
        the city before sending it again (never a duplicate)."""
        ...

    def unsend(self, row_id: int, token: str) -> bool:
        """Undo `insert_in_flight`'s "in flight" for a row whose POST certainly never started
        (the run was cancelled before sending): back to never sent, the claim dropped. Only
        while *token* still holds it and no outcome is recorded."""
        ...

    def record_outcomes(self, outcomes: Sequence[OutcomeRecord], *, durable: bool) -> int:
        """`JournalStore.record_outcome` for each, in ONE transaction; how many were
        recorded (an outcome whose token no longer holds its row is not). With *durable*
        False the commit may be lost to a power cut (never to a killed process): a lost
        outcome leaves its row in flight, which the next run reconciles."""
        ...

    def existing_keys(self, scope: str, keys: Sequence[str]) -> dict[str, int]:
        """The id of each of *keys* already recorded in *scope* (absent keys are left out)."""
        ...
