"""The journal: ONE durable record of your submissions to 311 and of every status seen.

Cities tell residents to keep the number they were given and the date they reported. `Ledger`
keeps that, and more, in one store (a SQLite file by default; the storage sits behind one
small interface, `civic311._journal.store.JournalStore`)::

    with Ledger("reports.sqlite") as ledger:
        sid = ledger.record_submission(
            key=None, request=request, endpoint=client.endpoints[0], sent_at=now, receipt=receipt
        )
        ...
        client.track([receipt], ledger=ledger)        # records every status change it sees
        ledger.history(receipt.service_request_id)    # every status change, oldest first
        ledger.export_csv("my-311-reports.csv")

The `Outbox` (`civic311.outbox`) and bulk runs (`civic311.bulk`) are policies over this same
journal: one state machine, one content key (`content_key`), one claim-then-reconcile-then-send
algorithm (`Ledger.settle` / `Ledger.asettle`).

What it records:

- **every submission**: what was sent (`civic311.to_dict` of the `NewRequest`), when, to which
  endpoint, the receipt (id, token, service_notice, reconciled), when a token became an id, and
  the error if it failed. The api_key is never stored: a `NewRequest` holds none, any field
  named like a key (``api_key``, ``apikey``, ``key``…) is stripped from extras before writing,
  and api_key query values are redacted from endpoints and error texts;
- **every status change**: `record_status` stores status, status_notes and updated_datetime
  only when one of them differs from the last observation of that request, so tracking every
  hour does not grow the file;
- **per city**: every row belongs to an endpoint (the client's primary endpoint URL, its
  *scope*). Keys are unique per endpoint, and a request id is looked up per endpoint: city A's
  request "42" is never reported, or stored, as city B's.

Submission states (one machine for ledger, outbox and bulk):

=========  =============================================================================
pending    recorded, not yet answered; ``sent_at`` is None until handed to the network
           (a pending row *with* ``sent_at`` is in flight: the process may have died
           mid-send; it is looked for on the city before it is ever sent again)
sent       the city answered with a receipt (an id, a token, or neither for blackbox)
queued     it provably never reached a city (every endpoint down or declining); sendable
uncertain  the POST may have created a request and civic311 could not find it
failed     the city refused it (a 400, a 403…)
=========  =============================================================================

Claims. Before a row is sent, the run claims it in one atomic step (a token, its owner
``host:pid`` and a heartbeat). Any number of threads and processes can work on one file: each
row is sent by at most one of them. A row claimed by a live run is skipped with a message; a row
claimed by a run that died is taken over, and if it was in flight it is first looked for on the
city (excluding every request id the journal already holds, so a lost answer is never "found"
as another submission's request).

Storage. Tables are prefixed ``ledger_`` so the file can hold other things. Datetimes come back
timezone-aware (UTC). The schema is versioned (`MIGRATIONS`); opening an older file (a ledger
or an old outbox file) migrates it forward in one transaction; a file written by a newer
civic311 raises `LedgerSchemaError`, and a corrupt, read-only or foreign file `LedgerFileError`,
each naming the file.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, cast, get_args

import attrs

from civic311._journal import open_store
from civic311._journal.sqlite import MIGRATIONS, Migration
from civic311._journal.store import (
    JournalStore,
    NewRow,
    OutcomeRecord,
    Owner,
    StoredObservation,
    StoredReceipt,
    StoredRow,
    forget_token,
    new_token,
)
from civic311._secrets import SECRET_NAMES, redact_text
from civic311._wire.converter import from_dict, to_dict
from civic311.errors import (
    AllEndpointsFailedError,
    APIError,
    Civic311Error,
    DuplicateKeyError,
    InvalidRequestError,
    LedgerFileError,
    LedgerSchemaError,
    SubmissionUncertainError,
    TransportError,
)
from civic311.models import NewRequest, Receipt, ServiceRequest, Status

if TYPE_CHECKING:
    from civic311 import AsyncClient, Client

__all__ = [
    "EXPORT_COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "DuplicateKeyError",
    "JournalStore",
    "Ledger",
    "LedgerFileError",
    "LedgerSchemaError",
    "Migration",
    "Settled",
    "StatusObservation",
    "Submission",
    "SubmissionState",
    "content_key",
    "never_acted_on",
]

SubmissionState = Literal["pending", "sent", "queued", "uncertain", "failed"]
_STATES: frozenset[str] = frozenset(get_args(SubmissionState))
#: States an outcome can be recorded as (a row becomes "pending" only when it is created).
_OUTCOMES: frozenset[str] = _STATES - {"pending"}
#: States from which a row may be (re)handed to the network.
_SENDABLE: tuple[SubmissionState, ...] = ("pending", "queued", "uncertain")

#: The schema version this code writes.
SCHEMA_VERSION = MIGRATIONS[-1].version

#: Seconds after an ambiguous send before a request that still cannot be found is sent again.
DEFAULT_RESEND_AFTER = 3600.0

#: Seconds without a heartbeat after which a claim held on another host counts as abandoned.
#: (On this host, a claim's owner is alive exactly when its process is: no waiting.)
DEFAULT_STALE_AFTER = 600.0

#: Seconds between heartbeats of a claim whose send or look-up is still running (a call with
#: its retries and waits may outlast stale_after): well inside DEFAULT_STALE_AFTER, so
#: another host never takes over a claim whose run is alive.
HEARTBEAT_EVERY = DEFAULT_STALE_AFTER / 4

PathOrFile = str | os.PathLike[str] | IO[str]


# --- result models ---------------------------------------------------------------------------


@attrs.frozen
class Submission:
    """One submission as the journal holds it.

    Attributes:
        id: The journal's row id (what `record_submission` / `record_pending` returned).
        key: Your key or content hash, if you gave one (unique per endpoint).
        state: pending, sent, queued, uncertain or failed (module docstring).
        request: What was sent.
        endpoint: The endpoint (city) it belongs to (api_key values redacted).
        recorded_at: When the row was recorded.
        updated_at: When the row last changed.
        sent_at: When it was handed to the network; None while pending and not yet sent.
        receipt: The city's answer, once there is one. After `Ledger.record_token_resolved`
            it carries both the token and the service_request_id.
        receipt_at: When the receipt was recorded.
        token_resolved_at: When the token became a service_request_id.
        error: Why it failed or is uncertain (redacted text).
        local_id: The outbox's id for it, when it came through an `Outbox`.
        claimed_by: The run (``host:pid``) holding it for sending right now, if any.
        tries: How many times it was handed to the network.
        row_number: Its row number in the bulk file it came from, if it did.
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
    local_id: str | None = None
    claimed_by: str | None = None
    tries: int = 0
    row_number: int | None = None

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
        endpoint: The endpoint (city) the request belongs to ("" for observations stored
            by a civic311 older than the one journal, whose city is not known).
    """

    service_request_id: str
    status: Status | None
    status_notes: str | None
    updated_datetime: datetime | None
    observed_at: datetime
    service_code: str | None = None
    service_name: str | None = None
    endpoint: str = ""

    @property
    def is_closed(self) -> bool:
        """Whether the city considered the request finished at this observation."""
        return self.status is not None and self.status.is_closed


SettledOutcome = Literal["filed", "reconciled", "queued", "uncertain", "failed", "held", "settled"]


@attrs.frozen
class Settled:
    """What `Ledger.settle` did with one row.

    Attributes:
        submission_id: The row.
        outcome: ``filed`` (sent now, the city answered), ``reconciled`` (found on the city:
            an earlier send's answer was lost), ``queued`` (it never reached a city: every
            endpoint down), ``uncertain`` (may exist, not found; not sent again yet),
            ``failed`` (the city said no), ``held`` (another live run is sending it: left
            alone), ``settled`` (already sent or failed: nothing to do).
        receipt: The receipt, for filed and reconciled.
        error: The civic311 error the send ended with, for queued, uncertain and failed.
        detail: A sentence for people.
    """

    submission_id: int
    outcome: SettledOutcome
    receipt: Receipt | None = None
    error: Civic311Error | None = attrs.field(default=None, eq=False)
    detail: str | None = None


# --- helpers ---------------------------------------------------------------------------------


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


def _outcome_state(error: Civic311Error) -> SubmissionState:
    """The state a send that raised *error* leaves its row in."""
    if never_acted_on(error):
        return "queued"
    if isinstance(error, SubmissionUncertainError | AllEndpointsFailedError | TransportError):
        return "uncertain"
    return "failed"


def _alive(owner: Owner, token: str) -> bool | None:
    return owner.alive(token)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


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


_SQUASHED_SECRET_NAMES = frozenset(n.replace("_", "") for n in SECRET_NAMES)


def _is_secret_name(name: object) -> bool:
    # "api_key", "API-Key", "apiKey", "x_api_key", "key": compare without separators or case.
    if not isinstance(name, str):
        return False
    squashed = name.lower().replace("_", "").replace("-", "").replace(" ", "")
    return squashed in _SQUASHED_SECRET_NAMES or squashed.endswith("apikey") or squashed == "key"


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


#: Whether a stored request needs `_scrub`: only if `NewRequest` ever has a secret-named field
#: or extras (today it has neither, so each row's JSON skips a pass over its fields).
_NEEDS_SCRUB = any(
    _is_secret_name(field.name) or field.name == "extras" for field in attrs.fields(NewRequest)
)


@functools.lru_cache(maxsize=64)  # a run asks for the same few endpoints for every row
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


def _receipt(stored: StoredReceipt | None) -> Receipt | None:
    if stored is None:
        return None
    extras = json.loads(stored.extras_json) if stored.extras_json else {}
    return Receipt(
        service_request_id=stored.service_request_id,
        token=stored.token,
        service_notice=stored.service_notice,
        account_id=stored.account_id,
        reconciled=stored.reconciled,
        extras=extras,
    )


def _stored_receipt(receipt: Receipt) -> StoredReceipt:
    extras = _scrub(dict(receipt.extras))
    return StoredReceipt(
        service_request_id=receipt.service_request_id,
        token=receipt.token,
        service_notice=receipt.service_notice,
        account_id=receipt.account_id,
        reconciled=receipt.reconciled,
        extras_json=json.dumps(extras, ensure_ascii=False, default=str) if extras else None,
    )


def _request_of(row: StoredRow) -> NewRequest:
    """The stored request, or a `LedgerFileError` naming the row when it cannot be read."""
    try:
        request = from_dict(NewRequest, json.loads(row.request_json))
    except (ValueError, TypeError, Civic311Error) as exc:
        raise LedgerFileError(
            f"submission #{row.id}", f"its stored request cannot be read ({exc})"
        ) from None
    return request


def _submission(row: StoredRow) -> Submission:
    return Submission(
        id=row.id,
        key=row.key,
        state=row.state,
        request=_request_of(row),
        endpoint=row.scope,
        recorded_at=row.recorded_at,
        updated_at=row.updated_at,
        sent_at=row.sent_at,
        receipt=_receipt(row.receipt),
        receipt_at=row.receipt_at,
        token_resolved_at=row.token_resolved_at,
        error=row.error,
        local_id=row.local_id,
        claimed_by=row.claim_owner,
        tries=row.tries,
        row_number=row.source_row,
    )


def _readable(rows: Iterable[StoredRow]) -> list[Submission]:
    """The rows as submissions, leaving out (never failing on) one that cannot be read: one
    corrupt entry must not hide the others (`Ledger.unreadable` lists them)."""
    return [sub for sub in map(_maybe_submission, rows) if sub is not None]


def _maybe_submission(row: StoredRow) -> Submission | None:
    try:
        return _submission(row)
    except LedgerFileError:
        return None


def _observation(stored: StoredObservation) -> StatusObservation:
    return StatusObservation(
        service_request_id=stored.service_request_id,
        status=None if stored.status is None else Status(stored.status),
        status_notes=stored.status_notes,
        updated_datetime=stored.updated_datetime,
        observed_at=stored.observed_at,
        service_code=stored.service_code,
        service_name=stored.service_name,
        endpoint=stored.scope,
    )


# --- the one resume-and-reconcile algorithm --------------------------------------------------


@attrs.frozen
class _Send:
    """A settle step: submit this request (public `Client.submit`); reply with the Receipt or
    the civic311 error. *beat* refreshes the claim's heartbeat while the step runs."""

    request: NewRequest
    retry_unsafe: bool = False
    beat: Callable[[], object] | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class _Find:
    """A settle step: look for what a send at *sent_at* created (public
    `Client.find_submitted`), never taking an id in *exclude*."""

    request: NewRequest
    sent_at: datetime
    exclude: frozenset[str]
    beat: Callable[[], object] | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class _Pace:
    """A settle step: the send is about to start (a bulk run waits for its rate here)."""


_Step = _Send | _Find | _Pace


class _Heartbeats:
    """One daemon thread per process that refreshes the heartbeat of every claim whose send or
    look-up is running, every `HEARTBEAT_EVERY` seconds, so a long call (retries, waits for
    Retry-After, a slow city) never lets its claim look abandoned to another host. Sync and
    async drivers share it: a step registers its *beat* for as long as it runs (no thread per
    row, no write for a step shorter than the interval)."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._due: dict[int, tuple[float, Callable[[], object]]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._wakes_at = 0.0  # when the sleeping thread wakes up next (0: it is awake)

    @contextmanager
    def keep(self, beat: Callable[[], object] | None) -> Iterator[None]:
        if beat is None:
            yield
            return
        key = next(self._ids)
        due = time.monotonic() + HEARTBEAT_EVERY
        with self._wake:
            self._due[key] = (due, beat)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="civic311-heartbeats", daemon=True
                )
                self._thread.start()
            elif due < self._wakes_at:
                # Only when the thread would sleep past this beat: waking it for every step
                # (thousands a second in a bulk run) made it fight the event loop for the GIL.
                self._wake.notify()
        try:
            yield
        finally:
            with self._wake:
                self._due.pop(key, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                due = [(key, beat) for key, (at, beat) in self._due.items() if at <= now]
                for key, beat in due:
                    self._due[key] = (now + HEARTBEAT_EVERY, beat)
                if not due:
                    soonest = min((at for at, _ in self._due.values()), default=now + 60)
                    self._wakes_at = soonest
                    self._wake.wait(timeout=max(soonest - now, 0.001))
                    self._wakes_at = 0.0
                    continue
            for _, beat in due:
                # Best effort: a store closed meanwhile, a database briefly down. A claim
                # that misses beats only risks being judged stale, as before this existed.
                with contextlib.suppress(Exception):
                    beat()


_HEARTBEATS = _Heartbeats()


# --- the ledger ------------------------------------------------------------------------------


class Ledger:
    """The journal: your submissions to 311 and every status change seen (module docstring).

    Args:
        path: The SQLite file (created 0600 if missing, migrated forward if older; an old
            `Outbox` file is fine), a ``postgresql://`` URL (the journal in PostgreSQL, shared
            by workers on several machines: docs/scaling-out.md), or a `JournalStore`.

    Raises:
        LedgerSchemaError: the file was written by a newer civic311.
        LedgerFileError: the file is corrupt, read-only or not a ledger.

    Use it as a context manager, or call `close`. One `Ledger` may be shared by threads; for
    several processes, open one `Ledger` per process on the same file.
    """

    def __init__(self, path: str | os.PathLike[str] | JournalStore) -> None:
        if isinstance(path, str | os.PathLike):
            # A path opens SQLite, a postgresql:// URL PostgreSQL (the one place that decides).
            self._store: JournalStore = open_store(path, sqlite_migrations=MIGRATIONS)
            self.path = Path(self._store.location)  # for PostgreSQL, the URL sans password
        elif isinstance(path, JournalStore):
            self._store = path
            self.path = Path(path.location)
        else:
            raise InvalidRequestError("path", f"must be a file path, not {type(path).__name__}")

    # --- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the storage (safe to call twice)."""
        self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self._store.location!r})"

    @property
    def store(self) -> JournalStore:
        """The storage behind this journal."""
        return self._store

    @property
    def schema_version(self) -> int:
        """The schema version of the open file (always `SCHEMA_VERSION` once opened)."""
        return self._store.schema_version()

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

        The state, unless given, follows from what you pass: a *receipt* → ``sent``; an
        *error* alone → ``failed`` (pass ``state="uncertain"`` for a
        `SubmissionUncertainError`, ``state="queued"`` when it never reached the city);
        neither → ``pending`` and in flight, to be completed by `record_receipt` or
        `record_outcome`.

        Raises:
            DuplicateKeyError: *key* is already recorded for this endpoint.
            InvalidRequestError: a wrong type, a naive datetime, an unknown state.
        """
        request_json = self._request_json(request)
        key = _optional_text("key", key)
        scope = _redacted_endpoint(_text("endpoint", endpoint))
        sent = _aware("sent_at", sent_at)
        if receipt is not None and not isinstance(receipt, Receipt):
            raise InvalidRequestError(
                "receipt", f"must be a civic311.Receipt, not {type(receipt).__name__}"
            )
        error = _error_text(error)
        if state is None:
            state = "sent" if receipt is not None else "failed" if error is not None else "pending"
        state = _state("state", state, _STATES)
        row_id, _ = self._store.insert(
            NewRow(
                scope=scope,
                service_code=request.service_code,
                request_json=request_json,
                at=sent,
                key=key,
                state=state,
                sent_at=sent,
                receipt=None if receipt is None else _stored_receipt(receipt),
                error=error,
            )
        )
        return row_id

    def record_pending(
        self,
        *,
        key: str | None,
        request: NewRequest,
        endpoint: str,
        at: datetime,
        local_id: str | None = None,
    ) -> int:
        """Record a submission *before* sending it (state ``pending``, no ``sent_at``).

        Then either `settle` it (claim, send, record: the way the `Outbox` and bulk do), or,
        single-handed, `mark_in_flight` just before the POST and `record_outcome` after. A
        crash anywhere leaves a row that says how far it got.

        Raises:
            DuplicateKeyError: *key* is already recorded for this endpoint (see `find_by_key`),
                or *local_id* is recorded already (``field`` says which).
        """
        row_id, _ = self._store.insert(self._new_row(key, request, endpoint, at, local_id))
        return row_id

    def _new_row(
        self,
        key: str | None,
        request: NewRequest,
        endpoint: str | None,
        at: datetime,
        local_id: str | None = None,
        row_number: int | None = None,
    ) -> NewRow:
        """A row to insert; *endpoint* None means "no city yet" (adopted by the first client
        that settles it: old outbox entries)."""
        request_json = self._request_json(request)
        return NewRow(
            scope="" if endpoint is None else _redacted_endpoint(_text("endpoint", endpoint)),
            service_code=request.service_code,
            request_json=request_json,
            at=_aware("at", at),
            key=_optional_text("key", key),
            local_id=_optional_text("local_id", local_id),
            source_row=row_number,
        )

    def mark_in_flight(self, submission: int | str, *, at: datetime) -> None:
        """Mark a submission as handed to the network at *at* (state ``pending``, ``sent_at``
        set). *submission* is a row id (int) or a key (str).

        A ``queued`` or ``uncertain`` row may be marked again when it is re-sent; a ``sent``
        or ``failed`` one may not; nor one that a run is sending (it holds a claim).

        Raises:
            KeyError: no such submission.
            InvalidRequestError: the submission is already settled (sent or failed), or claimed.
        """
        now = _aware("at", at)
        row = self._locate(submission)
        if not self._store.mark_in_flight(row.id, token=None, at=now):
            raise InvalidRequestError(
                "submission", f"#{row.id} is being sent by another run ({row.claim_owner})"
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
            InvalidRequestError: a bad argument, or a run is sending it (it holds a claim).
        """
        checked = _state("state", state, _OUTCOMES)
        now = _aware("at", at)
        if receipt is not None and not isinstance(receipt, Receipt):
            raise InvalidRequestError(
                "receipt", f"must be a civic311.Receipt, not {type(receipt).__name__}"
            )
        error = _error_text(error)
        row = self._locate(submission)
        stored = None if receipt is None else _stored_receipt(receipt)
        if not self._store.record_outcome(
            row.id, token=None, state=checked, at=now, receipt=stored, error=error
        ):
            raise InvalidRequestError(
                "submission", f"#{row.id} is being sent by another run ({row.claim_owner})"
            )

    def record_receipt(self, submission_id: int, receipt: Receipt, at: datetime) -> None:
        """Record the city's receipt for a submission; its state becomes ``sent``.

        Raises:
            KeyError: no such submission.
        """
        row_id = _row_id("submission_id", submission_id)
        if not isinstance(receipt, Receipt):
            raise InvalidRequestError(
                "receipt", f"must be a civic311.Receipt, not {type(receipt).__name__}"
            )
        self.record_outcome(row_id, state="sent", at=at, receipt=receipt)

    def record_token_resolved(
        self, token: str, service_request_id: str, at: datetime, *, endpoint: str | None = None
    ) -> int:
        """Record that *token* became *service_request_id* at *at* (for *endpoint*'s rows, or
        any endpoint's); return how many submissions carried that token (0 if none)."""
        token = _text("token", token)
        service_request_id = _text("service_request_id", service_request_id)
        now = _aware("at", at)
        scope = None if endpoint is None else _redacted_endpoint(_text("endpoint", endpoint))
        return self._store.record_token_resolved(
            scope=scope, token=token, service_request_id=service_request_id, at=now
        )

    def _request_json(self, request: object) -> str:
        if not isinstance(request, NewRequest):
            raise InvalidRequestError(
                "request", f"must be a civic311.NewRequest, not {type(request).__name__}"
            )
        data = to_dict(request)
        return json.dumps(_scrub(data) if _NEEDS_SCRUB else data, ensure_ascii=False)

    def _locate(self, submission: object) -> StoredRow:
        if isinstance(submission, str):
            row = self._store.find(scope=None, key=submission)
        else:
            row = self._store.get(_row_id("submission", submission))
        if row is None:
            raise KeyError(f"no submission {submission!r} in the ledger")
        return row

    # --- submissions: reading ----------------------------------------------------------------

    def submission(self, submission_id: int) -> Submission | None:
        """The submission with this row id, or None."""
        row = self._store.get(_row_id("submission_id", submission_id))
        return None if row is None else _submission(row)

    def find_by_key(self, key: str, *, endpoint: str | None = None) -> Submission | None:
        """The submission recorded with this key (for *endpoint*, or the first for any
        endpoint), or None."""
        key = _text("key", key)
        scope = None if endpoint is None else _redacted_endpoint(_text("endpoint", endpoint))
        row = self._store.find(scope=scope, key=key)
        return None if row is None else _submission(row)

    def find_by_local_id(self, local_id: str) -> Submission | None:
        """The submission an `Outbox` stored under *local_id*, or None."""
        row = self._store.find(scope=None, local_id=_text("local_id", local_id))
        return None if row is None else _submission(row)

    def by_request_id(
        self, service_request_id: str, *, endpoint: str | None = None
    ) -> Submission | None:
        """The (first) submission the city gave this service_request_id (at *endpoint*, or
        at any endpoint), or None."""
        service_request_id = _text("service_request_id", service_request_id)
        scope = None if endpoint is None else _redacted_endpoint(_text("endpoint", endpoint))
        rows = self._store.rows(scope=scope, service_request_id=service_request_id)
        return _submission(rows[0]) if rows else None

    def submissions(
        self, state: SubmissionState | None = None, *, endpoint: str | None = None
    ) -> list[Submission]:
        """Every submission (or those in *state*, for *endpoint*), in the order recorded.
        A row whose stored request cannot be read is left out (see `unreadable`)."""
        states = None if state is None else [_state("state", state, _STATES)]
        scope = None if endpoint is None else _redacted_endpoint(_text("endpoint", endpoint))
        return _readable(self._store.rows(scope=scope, states=states))

    def unreadable(self) -> list[int]:
        """Ids of rows whose stored request cannot be read (a damaged entry): they are left
        out of every listing and never sent, and the others carry on."""
        return [row.id for row in self._store.rows() if _maybe_submission(row) is None]

    def in_flight(self) -> list[Submission]:
        """Submissions handed to the network with no outcome recorded (after a crash: they
        may exist at the city — `settle` looks for them before sending again)."""
        return _readable(self._store.rows(in_flight=True))

    # --- statuses ----------------------------------------------------------------------------

    def record_status(
        self, request: ServiceRequest, *, observed_at: datetime, endpoint: str = ""
    ) -> bool:
        """Record *request*'s status as seen at *observed_at* (at *endpoint*), if it changed.

        A change is a different status, status_notes or updated_datetime from the last
        observation of the same service_request_id at the same endpoint (the first
        observation always counts). Unchanged observations are not stored.

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
        observed = _aware("observed_at", observed_at)
        if not isinstance(endpoint, str):
            raise InvalidRequestError("endpoint", "must be a string")
        return self._store.record_status(
            StoredObservation(
                scope=_redacted_endpoint(endpoint),
                service_request_id=request.service_request_id,
                status=None if request.status is None else str(request.status),
                status_notes=request.status_notes,
                updated_datetime=request.updated_datetime,
                observed_at=observed,
                service_code=request.service_code,
                service_name=request.service_name,
            )
        )

    def history(
        self, service_request_id: str, *, endpoint: str | None = None
    ) -> list[StatusObservation]:
        """Every status change seen for this request (at *endpoint*, or anywhere), oldest
        first."""
        service_request_id = _text("service_request_id", service_request_id)
        scope = None if endpoint is None else _redacted_endpoint(endpoint)
        found = self._store.observations(scope=scope, service_request_id=service_request_id)
        return [_observation(o) for o in found]

    def latest_status(
        self, service_request_id: str, *, endpoint: str | None = None
    ) -> StatusObservation | None:
        """The last status seen for this request (at *endpoint*, or anywhere), or None."""
        history = self.history(service_request_id, endpoint=endpoint)
        return history[-1] if history else None

    def latest_statuses(
        self, *, closed: bool | None = None, endpoint: str | None = None
    ) -> list[StatusObservation]:
        """The latest observation of every tracked request, in the order first observed.

        With ``closed=True`` only requests the city considers finished (`Status.is_closed`:
        closed, fixed, duplicate…), with ``closed=False`` only the others.
        """
        if closed is not None and not isinstance(closed, bool):
            raise InvalidRequestError("closed", f"must be True, False or None, not {closed!r}")
        latest = self._latest(endpoint)
        if closed is None:
            return latest
        return [obs for obs in latest if obs.is_closed == closed]

    def by_status(self, status: str, *, endpoint: str | None = None) -> list[StatusObservation]:
        """The latest observations whose status equals *status*, ignoring case, spaces and
        dashes (``"In Progress"`` matches ``in_progress``).

        This compares the value the city sent. To ask "open or closed?" whatever words the
        city uses, use ``latest_statuses(closed=...)``.
        """
        wanted = Status(_text("status", status)).normalized
        return [
            obs
            for obs in self._latest(endpoint)
            if obs.status is not None and obs.status.normalized == wanted
        ]

    def changed_since(self, when: datetime) -> list[StatusObservation]:
        """Status changes observed strictly after *when*, oldest first. Pass the
        ``observed_at`` of the last change you processed to get only newer ones."""
        since = _aware("when", when)
        return [_observation(o) for o in self._store.observations(since=since)]

    def tracked_ids(self, *, open_only: bool = False, endpoint: str | None = None) -> list[str]:
        """Every service_request_id the ledger knows (for *endpoint*, or all): those of
        submissions (in the order submitted), then those only observed (in the order first
        observed).

        With ``open_only=True``, ids whose latest status is closed are left out; an id never
        observed counts as open (nothing says it is finished).
        """
        if not isinstance(open_only, bool):
            raise InvalidRequestError("open_only", f"must be True or False, not {open_only!r}")
        scope = None if endpoint is None else _redacted_endpoint(endpoint)
        submitted = [
            r.receipt.service_request_id
            for r in self._store.rows(scope=scope)
            if r.receipt is not None and r.receipt.service_request_id
        ]
        observed = [o.service_request_id for o in self._store.observations(scope=scope)]
        ids = list(dict.fromkeys([*submitted, *observed]))
        if not open_only:
            return ids
        closed = {o.service_request_id for o in self._latest(endpoint) if o.is_closed}
        return [i for i in ids if i not in closed]

    def _latest(self, endpoint: str | None) -> list[StatusObservation]:
        scope = None if endpoint is None else _redacted_endpoint(endpoint)
        found = self._store.observations(scope=scope, latest_only=True)
        return [_observation(o) for o in found]

    # --- the status store `Client.track` / `watch` use (civic311.tracking.StatusStore) ------

    def last_seen(
        self, endpoint: str, service_request_id: str
    ) -> tuple[str | None, str | None, datetime | None] | None:
        """(status, notes, updated_datetime) last seen of this request at *endpoint*."""
        seen = self.latest_status(service_request_id, endpoint=endpoint)
        if seen is None:
            return None
        status = str(seen.status) if seen.status is not None else None
        return (status, seen.status_notes, seen.updated_datetime)

    def record_seen(self, endpoint: str, request: ServiceRequest, observed_at: datetime) -> None:
        """Record a status seen at *endpoint* (kept only when it changed)."""
        self.record_status(request, observed_at=observed_at, endpoint=endpoint)

    def record_resolved(
        self, endpoint: str, token: str, service_request_id: str, at: datetime
    ) -> None:
        """Record that a token of *endpoint* became an id."""
        self.record_token_resolved(token, service_request_id, at, endpoint=endpoint)

    # --- settling: claim, reconcile, send, record (the one algorithm) ------------------------

    def settle(
        self,
        client: Client,
        submission_id: int,
        *,
        resend_after: float = DEFAULT_RESEND_AFTER,
        retry_unsafe: bool = False,
    ) -> Settled:
        """Bring one row to an outcome through *client*'s public API (module docstring).

        1. Claim it (one atomic step). Held by a live run: ``held``, left alone. Sent or
           failed already: ``settled``.
        2. Uncertain, or in flight under a run that died: look for it on the city
           (`Client.find_submitted`, excluding every id the journal holds for that city).
           Found: ``reconciled``. Not found and sent less than *resend_after* seconds ago:
           ``uncertain``, left for later.
        3. Otherwise mark it in flight, `Client.submit` it, record the outcome.
        """
        from civic311 import Client

        if not isinstance(client, Client):
            raise InvalidRequestError("client", "settle takes a civic311.Client (asettle: async)")
        return _drive(client, self._settle_flow(client, submission_id, resend_after, retry_unsafe))

    async def asettle(
        self,
        client: AsyncClient,
        submission_id: int,
        *,
        resend_after: float = DEFAULT_RESEND_AFTER,
        retry_unsafe: bool = False,
        pace: Callable[[], Any] | None = None,
    ) -> Settled:
        """`settle` through an `AsyncClient`; *pace* (awaited) runs just before a send."""
        from civic311 import AsyncClient

        if not isinstance(client, AsyncClient):
            raise InvalidRequestError("client", "asettle takes a civic311.AsyncClient")
        flow = self._settle_flow(client, submission_id, resend_after, retry_unsafe)
        return await _adrive(client, flow, pace)

    def _settle_flow(
        self,
        client: Client | AsyncClient,
        submission_id: int,
        resend_after: float,
        retry_unsafe: bool,
        token: str | None = None,
        *,
        sending: NewRequest | None = None,
        recorder: Callable[[OutcomeRecord], None] | None = None,
    ) -> Generator[_Step, Any, Settled]:
        """The algorithm of `settle`, as steps a sync or async driver runs. With *token*, the
        row was born claimed under it (`Outbox.submit`) and is not claimed again. With
        *sending* too, it was born in flight as well (`BatchingStore.insert_in_flight`, a bulk
        run): *sending*, the request it records, is sent at once. A *recorder* takes the
        outcome instead of the store (a bulk run's writer thread; it forgets the token once
        the outcome is written)."""
        store = self._store
        now = client.clock.now
        scope = _redacted_endpoint(client.endpoints[0])
        row_id = _row_id("submission_id", submission_id)
        born_claimed = token is not None
        if token is None:
            token = new_token()
        holding = born_claimed  # whether this run holds the row's claim right now
        handed_over = False  # whether the recorder now owns the token

        def beat() -> int:
            return store.heartbeat(token, now())

        def record(
            state: SubmissionState,
            receipt: StoredReceipt | None = None,
            error: str | None = None,
        ) -> None:
            nonlocal holding, handed_over
            if recorder is not None:
                recorder(OutcomeRecord(row_id, token, state, now(), receipt, error))
                handed_over = True
            else:
                store.record_outcome(
                    row_id, token=token, state=state, at=now(), receipt=receipt, error=error
                )
            holding = False  # recording the outcome released the claim (or it was lost)

        try:
            if sending is not None and born_claimed:
                outcome = yield _Send(sending, retry_unsafe, beat)
                return self._sent(row_id, outcome, record)
            if born_claimed:
                before = store.get(row_id)
                if before is None:
                    raise KeyError(f"no submission {row_id} in the ledger")
            else:
                claim = store.claim(
                    row_id,
                    token=token,
                    owner=Owner.me(),
                    at=now(),
                    states=_SENDABLE,
                    stale_after=DEFAULT_STALE_AFTER,
                    alive=_alive,
                    adopt_scope=scope,
                )
                if claim.outcome == "missing" or claim.row is None:
                    raise KeyError(f"no submission {row_id} in the ledger")
                holding = claim.outcome == "claimed"
                before = claim.row
                if claim.outcome == "settled":
                    return Settled(
                        row_id,
                        "settled",
                        _receipt(before.receipt),
                        detail=f"already {before.state}",
                    )
                if claim.outcome == "held":
                    return Settled(
                        row_id,
                        "held",
                        detail=f"being sent by another run ({claim.holder}); left to it",
                    )
            try:
                request = _request_of(before)
            except LedgerFileError as exc:
                record("failed", error=exc.reason)
                return Settled(row_id, "failed", error=exc, detail=str(exc))
            if before.state == "uncertain" or before.in_flight:
                # It may exist at the city: look before sending again (docs/retries.md).
                sent_at = before.sent_at or before.recorded_at
                found: ServiceRequest | None = yield _Find(
                    request, sent_at, store.held_ids(scope), beat
                )
                if found is not None:
                    receipt = Receipt(
                        service_request_id=found.service_request_id,
                        token=found.token,
                        service_notice=found.service_notice,
                        reconciled=True,
                    )
                    record("sent", receipt=_stored_receipt(receipt))
                    return Settled(row_id, "reconciled", receipt, detail="found on the server")
                if (now() - sent_at).total_seconds() < resend_after:
                    record("uncertain", error=before.error or "not found on the server yet")
                    return Settled(
                        row_id,
                        "uncertain",
                        detail="sent before, not found on the server yet; not sent again "
                        f"until {resend_after:g}s after that send (--resend-after)",
                    )
            yield _Pace()
            if not store.mark_in_flight(row_id, token=token, at=now()):
                holding = False
                return Settled(row_id, "held", detail="its claim was taken over; left to that run")
            outcome = yield _Send(request, retry_unsafe, beat)
            return self._sent(row_id, outcome, record)
        finally:
            # Interrupted while holding the claim (Ctrl-C, a cancelled task, an error mid-send):
            # drop it so the next run can take the row (and, if it was in flight, reconcile it
            # first). After an outcome the claim is already gone: no extra transaction.
            if not handed_over:
                forget_token(token)
            if holding:
                with contextlib.suppress(Civic311Error):  # best effort: a stale claim expires
                    store.release(row_id, token)

    @staticmethod
    def _sent(
        row_id: int,
        outcome: Receipt | Civic311Error,
        record: Callable[..., None],
    ) -> Settled:
        """Record what a send came back with (a receipt or the error) and say so."""
        if isinstance(outcome, Receipt):
            record("sent", receipt=_stored_receipt(outcome))
            kind: SettledOutcome = "reconciled" if outcome.reconciled else "filed"
            return Settled(row_id, kind, outcome)
        state = _outcome_state(outcome)
        text = _error_text(str(outcome))
        record(state, error=text)
        return Settled(row_id, cast(SettledOutcome, state), error=outcome, detail=text)

    # --- export ------------------------------------------------------------------------------

    def _export_rows(self) -> Iterable[dict[str, Any]]:
        latest = {(o.endpoint, o.service_request_id): o for o in self._latest(None)}
        for sub in self.submissions():
            rid = sub.service_request_id
            # Observations recorded without an endpoint (or by an older civic311) belong to
            # no known city: they stand in only when the submission's city has none.
            seen = latest.get((sub.endpoint, rid)) or latest.get(("", rid)) if rid else None
            yield _export_row(sub, seen)

    def export_csv(self, path_or_file: PathOrFile) -> int:
        """Write every submission with its latest status as CSV (`EXPORT_COLUMNS`, a header
        row first); return the number of rows. A path is created 0600 (or truncated).

        A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
        leading ``'``, so a spreadsheet shows it as text instead of running it as a formula
        (OWASP, "CSV Injection"): city fields and CSV input are not trusted."""
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


def _drive(client: Client, flow: Generator[_Step, Any, Settled]) -> Settled:
    """Run a settle flow through a `Client`'s public methods."""
    with contextlib.closing(flow):
        return _run_sync(client, flow)


def _run_sync(client: Client, flow: Generator[_Step, Any, Settled]) -> Settled:
    reply: Any = None
    while True:
        try:
            step = flow.send(reply)
        except StopIteration as done:
            result: Settled = done.value
            return result
        reply = None
        if isinstance(step, _Send):
            with _HEARTBEATS.keep(step.beat):
                try:
                    reply = client.submit(step.request, retry_unsafe=step.retry_unsafe)
                except Civic311Error as exc:
                    reply = exc
        elif isinstance(step, _Find):
            with _HEARTBEATS.keep(step.beat):
                reply = client.find_submitted(
                    step.request, sent_at=step.sent_at, exclude=step.exclude
                )


async def _adrive(
    client: AsyncClient,
    flow: Generator[_Step, Any, Settled],
    pace: Callable[[], Any] | None,
) -> Settled:
    """Run a settle flow through an `AsyncClient`'s public methods."""
    with contextlib.closing(flow):
        return await _run_async(client, flow, pace)


async def _run_async(
    client: AsyncClient,
    flow: Generator[_Step, Any, Settled],
    pace: Callable[[], Any] | None,
) -> Settled:
    reply: Any = None
    while True:
        try:
            step = flow.send(reply)
        except StopIteration as done:
            result: Settled = done.value
            return result
        reply = None
        if isinstance(step, _Send):
            with _HEARTBEATS.keep(step.beat):
                try:
                    reply = await client.submit(step.request, retry_unsafe=step.retry_unsafe)
                except Civic311Error as exc:
                    reply = exc
        elif isinstance(step, _Find):
            with _HEARTBEATS.keep(step.beat):
                reply = await client.find_submitted(
                    step.request, sent_at=step.sent_at, exclude=step.exclude
                )
        elif pace is not None:
            await pace()


#: The columns of `Ledger.export_csv` and the keys of `Ledger.export_jsonl`, in order. One row
#: per submission, joined with the latest status seen for its service_request_id:
#:
#: - submission_id, row_number (in the bulk file, when it came from one), key, state, endpoint,
#:   recorded_at, sent_at: the submission (`Submission`);
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
    "row_number",
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
        "row_number": sub.row_number,
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
        "queued": sub.state == "queued",
        "local_id": sub.local_id,
        "receipt_at": _when(sub.receipt_at),
        "token_resolved_at": _when(sub.token_resolved_at),
        "error": sub.error,
        "status": None if latest is None or latest.status is None else str(latest.status),
        "status_notes": latest.status_notes if latest else None,
        "updated_datetime": _when(latest.updated_datetime) if latest else None,
        "status_observed_at": _when(latest.observed_at) if latest else None,
        "request": to_dict(request),
    }


#: Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection":
#: https://owasp.org/www-community/attacks/CSV_Injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value  # a number is data, even a negative one
    if isinstance(value, dict):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text  # shown as text, never run (OWASP's rule)
    return text


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
