"""Bulk submission and tracking for scripts: many reports from a file, each filed exactly once.

    rows = bulk.read_rows("reports.csv")
    with Ledger("civic311.sqlite") as ledger:
        summary = asyncio.run(bulk.submit_all(client, rows, ledger=ledger, concurrency=8))

Input is CSV or JSON Lines with these columns (all optional but ``service_code`` and a
location; see `NewRequest`):

    service_code, lat, long, address_string, address_id, description, email, first_name,
    last_name, phone, media_url, attribute.CODE

``attribute.CODE`` gives the value of attribute CODE. For a multivaluelist, repeat the column
(``attribute.SURFACE,attribute.SURFACE``) or separate values with ``|`` (``wall|fence``). In JSON
Lines an attribute may also be a list, and an ``attributes`` object is accepted. An optional
key column (``key_column=``) names each row; without it a row is keyed by a hash of its content,
so the same row in a re-run is recognised.

`read_rows` parses a file into `Row`s, one per data row, each with its 1-based row number and
either a `NewRequest` or the reason it is not one; a file with unknown columns is refused
whole (a typo such as ``descripton`` would otherwise drop data silently).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

import attrs

from civic311._clock import Clock
from civic311._journal.store import BatchingStore, NewRow, Owner, forget_token, new_token
from civic311._journal.writer import JournalWriter
from civic311.errors import Civic311Error, InvalidRequestError
from civic311.ledger import Ledger, Settled, _adrive, _redacted_endpoint, content_key
from civic311.models import NewRequest, Receipt, Service
from civic311.tracking import StatusChange, Tracked

if TYPE_CHECKING:
    from civic311 import AsyncClient

__all__ = [
    "COLUMNS",
    "MAX_FIELD_BYTES",
    "BulkSummary",
    "Row",
    "RowResult",
    "read_rows",
    "row_key",
    "submit_all",
    "track_all",
]

#: The NewRequest columns a bulk file may have (besides ``attribute.CODE`` and the key column).
COLUMNS = (
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "description",
    "email",
    "first_name",
    "last_name",
    "phone",
    "media_url",
)

_ATTRIBUTE = "attribute."
_MULTI_SEPARATOR = "|"

InputFormat = Literal["csv", "jsonl"]


@attrs.frozen
class Row:
    """One data row of a bulk file.

    Attributes:
        number: 1-based data row number (the header is not counted; in JSON Lines, the line).
        key: The row's key: the key column's value, or a hash of the row's content.
        request: The request, when the row is valid as far as the file can tell.
        error: Why the row is not a request, naming the column.
    """

    number: int
    key: str
    request: NewRequest | None = None
    error: str | None = None


def row_key(request: NewRequest) -> str:
    """A stable key for *request*'s content: the journal's one content key
    (`civic311.ledger.content_key`), so a row and the same report recorded elsewhere in the
    journal are recognised as one."""
    return content_key(request)


def _number(value: str, column: str) -> float | None:
    text = value.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidRequestError(column, f"{value!r} is not a number") from None


def _request(values: Mapping[str, Any]) -> NewRequest:
    """A NewRequest from one row's plain values (strings, or lists for attributes)."""
    fields: dict[str, Any] = {}
    attributes: dict[str, str | list[str]] = {}
    for column, value in values.items():
        if column.startswith(_ATTRIBUTE):
            code = column[len(_ATTRIBUTE) :]
            items = value if isinstance(value, list) else [value]
            parts = [
                part.strip()
                for item in items
                for part in str(item).split(_MULTI_SEPARATOR)
                if part.strip()
            ]
            if not parts:
                continue
            repeated = isinstance(value, list) or _MULTI_SEPARATOR in str(value)
            attributes[code] = parts if repeated or len(parts) > 1 else parts[0]
        elif column in ("lat", "long"):
            fields[column] = (
                value if isinstance(value, int | float) else _number(str(value), column)
            )
        elif value is not None and str(value).strip():
            fields[column] = str(value).strip()
    if not fields.get("service_code"):
        raise InvalidRequestError(
            "service_code",
            "is empty: every row needs the code of the service it reports to "
            "(`civic311 services` lists them)",
        )
    return NewRequest(**fields, attributes=attributes)


def _csv_rows(text: TextIO, key_column: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
    if csv.field_size_limit() < MAX_FIELD_BYTES:
        csv.field_size_limit(MAX_FIELD_BYTES)  # process-wide; only ever raised
    reader = csv.reader(text)
    try:
        yield from _csv_records(reader, key_column)
    except csv.Error as exc:
        # The csv module's own refusals (a cell over the limit, a NUL byte…), naming the row.
        row = max(reader.line_num - 1, 1)
        raise InvalidRequestError(
            "file", f"row {row} (line {reader.line_num}) cannot be read as CSV: {exc}"
        ) from None


def _csv_records(
    reader: Iterator[list[str]], key_column: str | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    _check_columns(header, key_column)
    for number, cells in enumerate(reader, start=1):
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if len(cells) > len(header):
            yield number, {"__error__": f"row has {len(cells)} cells, the header {len(header)}"}
            continue
        values: dict[str, Any] = {}
        for column, cell in zip(header, cells, strict=False):
            if column in values and column.startswith(_ATTRIBUTE):
                previous = values[column]
                values[column] = [*(previous if isinstance(previous, list) else [previous]), cell]
            else:
                values[column] = cell
        yield number, values


def _jsonl_rows(text: TextIO, key_column: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, {"__error__": f"not JSON ({exc.msg} at column {exc.colno})"}
            continue
        if not isinstance(record, dict):
            yield number, {"__error__": f"a JSON object is needed, not {type(record).__name__}"}
            continue
        nested = record.pop("attributes", None)
        if isinstance(nested, dict):
            for code, value in nested.items():
                record[f"{_ATTRIBUTE}{code}"] = value
        elif nested is not None:
            yield number, {"__error__": "attributes must be an object of code → value"}
            continue
        try:
            _check_columns(list(record), key_column)
        except InvalidRequestError as exc:
            yield number, {"__error__": str(exc)}
            continue
        yield number, record


def _check_columns(columns: Sequence[str], key_column: str | None) -> None:
    known = set(COLUMNS) | ({key_column} if key_column else set())
    unknown = [c for c in columns if c not in known and not c.startswith(_ATTRIBUTE)]
    if unknown:
        raise InvalidRequestError(
            "columns",
            f"unknown column(s) {', '.join(map(repr, unknown))}; the columns are "
            f"{', '.join(COLUMNS)} and attribute.CODE"
            + (f", and the key column {key_column!r}" if key_column else ""),
        )
    if key_column and key_column not in columns:
        raise InvalidRequestError("key_column", f"no column {key_column!r} in the file")


#: The largest cell a bulk file may hold: the size cap civic311 puts on a city's answer (10 MiB,
#: `Client`'s ``max_response_bytes`` default), far above the csv module's 128 KiB default, so a
#: long description or an inline attribute is read, not refused as "field larger than limit".
MAX_FIELD_BYTES = 10 * 1024 * 1024

#: Byte order marks, longest first (a UTF-32 LE mark starts like a UTF-16 LE one).
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _decode(data: bytes, encoding: str | None, fmt: InputFormat, name: str) -> str:
    """The file's text: in *encoding* when given, else from its byte order mark (UTF-8,
    UTF-16, UTF-32), else UTF-8. Bytes that do not decode are refused, naming the row."""
    chosen = encoding
    if chosen is None:
        chosen = next((codec for bom, codec in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(chosen)
    except LookupError:
        raise InvalidRequestError(
            "encoding", f"{encoding!r} is not an encoding Python knows"
        ) from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        where = f"row {line - 1} (line {line})" if fmt == "csv" and line > 1 else f"line {line}"
        hint = (
            "give its encoding with --encoding (encoding= in Python), e.g. --encoding latin-1 "
            "or --encoding cp1252, or save the file as UTF-8"
        )
        raise InvalidRequestError(
            "encoding",
            f"{name}: {where} is not {chosen} (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); {hint}",
        ) from None


def read_rows(
    source: str | os.PathLike[str] | TextIO,
    *,
    format: InputFormat | None = None,
    key_column: str | None = None,
    encoding: str | None = None,
) -> Iterator[Row]:
    """The rows of a CSV or JSON Lines bulk file (module docstring), lazily.

    Args:
        source: A path, or an open text file.
        format: ``"csv"`` or ``"jsonl"``; by default from the file name (``.jsonl``/``.ndjson``
            is JSON Lines, anything else CSV).
        key_column: A column whose value names each row (must be unique); by default rows
            are keyed by a hash of their content.
        encoding: The file's encoding (a path only). By default a byte order mark decides
            (UTF-8, UTF-16 or UTF-32, as spreadsheets save them), and without one the file
            must be UTF-8: other bytes are refused, naming the row, never guessed.

    Raises:
        InvalidRequestError: the file has unknown columns, the key column is missing, its
            bytes are not in its encoding, or a cell is over `MAX_FIELD_BYTES`.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        fmt = format or ("jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv")
        text = _decode(path.read_bytes(), encoding, fmt, str(path))
        yield from _rows(io.StringIO(text, newline=""), fmt, key_column)
        return
    if not isinstance(source, io.TextIOBase) and not hasattr(source, "read"):
        raise InvalidRequestError("source", "must be a path or an open text file")
    yield from _rows(source, format or "csv", key_column)


def _rows(text: TextIO, fmt: InputFormat, key_column: str | None) -> Iterator[Row]:
    if fmt not in ("csv", "jsonl"):
        raise InvalidRequestError("format", f'must be "csv" or "jsonl", got {fmt!r}')
    records = _csv_rows(text, key_column) if fmt == "csv" else _jsonl_rows(text, key_column)
    seen_keys: set[str] = set()
    for number, values in records:
        given_key = str(values.pop(key_column, "") or "").strip() if key_column else ""
        if "__error__" in values:
            yield Row(number, given_key or f"row-{number}", error=values["__error__"])
            continue
        try:
            request = _request(values)
        except (Civic311Error, TypeError, ValueError) as exc:
            yield Row(number, given_key or f"row-{number}", error=str(exc))
            continue
        key = given_key or row_key(request)
        if key_column and not given_key:
            yield Row(number, f"row-{number}", error=f"{key_column}: empty key")
            continue
        if key in seen_keys:
            what = f"{key_column} {key!r}" if given_key else "the same content as an earlier row"
            yield Row(number, key, error=f"duplicate row: {what}")
            continue
        seen_keys.add(key)
        yield Row(number, key, request=request)


# --- submitting and tracking in bulk --------------------------------------------------------

Outcome = Literal[
    "filed", "reconciled", "queued", "uncertain", "skipped", "failed", "invalid", "valid"
]


@attrs.frozen
class RowResult:
    """What became of one row.

    Attributes:
        number: The row's number in the file.
        key: The row's key (its ledger key).
        outcome: ``filed`` (the city took it now), ``reconciled`` (a send whose answer was lost
            was found on the server), ``queued`` (every endpoint was down; a later run sends
            it), ``uncertain`` (the outcome is unknown and it was not found; not re-sent),
            ``skipped`` (already in the ledger from an earlier run), ``failed`` (the city said
            no), ``invalid`` (the row breaks the file format or the service definition), or
            ``valid`` (a dry run's verdict on a good row).
        detail: Why, for every outcome but filed and valid.
        service_request_id: The city's id, once known.
        token: The city's token, for batch services.
    """

    number: int
    key: str
    outcome: Outcome
    detail: str | None = None
    service_request_id: str | None = None
    token: str | None = None


@attrs.frozen
class BulkSummary:
    """Every row's result, in file order."""

    results: tuple[RowResult, ...]
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        """How many rows ended each way."""
        counted: dict[str, int] = {}
        for result in self.results:
            counted[result.outcome] = counted.get(result.outcome, 0) + 1
        return counted

    @property
    def ok(self) -> bool:
        """No row failed, is invalid, or is uncertain."""
        return not any(r.outcome in ("failed", "invalid", "uncertain") for r in self.results)

    def problems(self) -> list[RowResult]:
        """The rows that need a person: failed, invalid, uncertain."""
        return [r for r in self.results if r.outcome in ("failed", "invalid", "uncertain")]


#: How many new rows (as a share of the concurrency) are recorded ahead of a free send slot.
#: Recording is batched on a writer thread (civic311._journal.writer); rows recorded ahead
#: are ready the moment a POST ends, as raw httpx's next request is, instead of waiting for
#: the next batch's commit while their connection sits idle (and httpcore's pool work grows
#: with idle connections: issue 13). The price: a crash leaves up to this many more rows
#: recorded in flight that never left; the next run looks for them on the city first and
#: sends them after ``resend_after`` (never twice).
LOOKAHEAD = 0.5

#: Seconds new rows wait to be recorded together (see `JournalWriter.admit`).
GATHER_FOR = 0.005


class _Pacer:
    """At most *rate* starts per second, on the client's clock (None: no limit)."""

    def __init__(self, rate: float | None, clock: Clock) -> None:
        self._gap = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._next = clock.monotonic()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self._gap:
            return
        async with self._lock:
            now = self._clock.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._gap
        if delay > 0:
            await self._clock.asleep(delay)


async def submit_all(
    client: AsyncClient,
    rows: Iterable[Row],
    *,
    ledger: Ledger,
    concurrency: int = 8,
    rate: float | None = None,
    dry_run: bool = False,
    validate: bool = True,
    resend_after: float = 3600.0,
    on_row: Callable[[RowResult], None] | None = None,
) -> BulkSummary:
    """File every valid row once, resumably (docs/bulk.md).

    1. Every row is checked first: the file's own rules (`read_rows`), the city's required
       fields, and, with *validate*, the service's definition (each definition is fetched
       once). A dry run stops here and files nothing.
    2. Each row is recorded in the journal (*ledger*) under its key for the client's city,
       once, and settled the journal's one way (`Ledger.asettle`): claimed in one atomic
       step, so any number of runs on one ledger file each row at most once (a row another
       live run holds is skipped, saying so); already sent or failed: skipped; recorded but
       never sent, or queued by a run that could not reach the city: sent; in flight when a
       run died, or uncertain: first looked for on the server (`AsyncClient.find_submitted`,
       never taking a request id the journal holds for another row): found, reconciled; not
       found, sent again only once *resend_after* seconds have passed since that send.
    3. Rows are sent with at most *concurrency* in flight and at most *rate* starting per
       second. Each row is marked in flight (durably) before its POST and its outcome recorded
       after, so a crash, a kill or Ctrl-C at any moment leaves the ledger saying how far each
       row got. On a SQLite ledger new rows are recorded in flight in batches on a writer
       thread, up to half the concurrency ahead of a free send slot, and outcomes are written
       without an fsync: a crash can leave rows in flight whose POST never left (or whose
       outcome a power cut lost); the next run looks for each on the city first, so none is
       ever filed twice (a Ctrl-C puts rows recorded ahead back to never sent).

    Raises:
        InvalidRequestError: bad arguments (the rows' own problems are results, not errors).
    """
    from civic311 import AsyncClient

    if not isinstance(client, AsyncClient):
        raise InvalidRequestError("client", "submit_all takes a civic311.AsyncClient")
    if not isinstance(ledger, Ledger):
        raise InvalidRequestError("ledger", "submit_all needs a civic311.ledger.Ledger")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidRequestError("concurrency", f"must be a whole number ≥ 1, got {concurrency!r}")
    if rate is not None and (isinstance(rate, bool) or not rate > 0):
        raise InvalidRequestError("rate", f"must be positive or None, got {rate!r}")
    all_rows = list(rows)
    results: dict[int, RowResult] = {}

    def done(result: RowResult) -> None:
        results[result.number] = result
        if on_row is not None:
            on_row(result)

    sendable = await _checked(client, all_rows, validate=validate, done=done)
    if dry_run:
        for row, _ in sendable:
            done(RowResult(row.number, row.key, "valid"))
        return BulkSummary(tuple(results[r.number] for r in all_rows), dry_run=True)

    gate = asyncio.Semaphore(concurrency)
    pacer = _Pacer(rate, client.clock)
    endpoint = client.endpoints[0]
    store = ledger.store
    writer: JournalWriter | None = None
    known: Mapping[str, int] = {}
    if isinstance(store, BatchingStore) and sendable:
        # Rows an earlier run recorded take the journal's one settle path (claim, reconcile…);
        # new ones are recorded in batches by a writer thread (civic311._journal.writer).
        known = store.existing_keys(_redacted_endpoint(endpoint), [row.key for row, _ in sendable])
        # Admissions gather for a few milliseconds (hidden by the rows recorded ahead) or a
        # quarter of the rows recorded ahead: far fewer wake-ups of the writer thread, each of
        # which costs the event loop the GIL at its next system call.
        writer = JournalWriter(
            store,
            Owner.me(),
            batch_size=max(1, int(concurrency * LOOKAHEAD / 2)),
            gather_for=GATHER_FOR,
        )

    # New rows are recorded up to LOOKAHEAD x concurrency ahead of their send.
    window = asyncio.Semaphore(concurrency + max(1, int(concurrency * LOOKAHEAD)))

    # Each new row's record is built before the first send: work done while POSTs are in
    # flight delays them all (the loop is the bottleneck at concurrency 32), work done before
    # delays only itself.
    fresh: dict[int, NewRow] = {}
    if writer is not None:
        start = client.clock.now()
        fresh = {
            row.number: ledger._new_row(row.key, request, endpoint, start, row_number=row.number)
            for row, request in sendable
            if row.key not in known and not request.media
        }

    async def one(row: Row, request: NewRequest) -> None:
        new = fresh.get(row.number)
        if writer is not None and new is not None:
            async with window:
                result = await _file_new_row(
                    client, ledger, writer, row, request, new, pacer, resend_after, gate
                )
        else:
            async with gate:
                result = await _file_row(
                    client, ledger, row, request, endpoint, pacer, resend_after
                )
        done(result)

    tasks = [asyncio.ensure_future(one(row, request)) for row, request in sendable]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        # Stop the other rows too (each drops its claim), so none is left half-recorded
        # behind the caller's back; then the writer writes what they recorded.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        if writer is not None:
            writer.close()
    return BulkSummary(tuple(results[r.number] for r in all_rows))


async def _checked(
    client: AsyncClient,
    rows: Sequence[Row],
    *,
    validate: bool,
    done: Callable[[RowResult], None],
) -> list[tuple[Row, NewRequest]]:
    """The rows fit to send (as they will be sent); the others are reported invalid.

    Each request is checked the way `AsyncClient.submit` would (`AsyncClient.prepare`). With
    *validate*, the city's service list is read once: a row for a service the city does not
    offer is invalid, and each row for a service with metadata (spec §2.2) is checked against
    its definition (read once; the client caches it).
    """
    services: dict[str, Service] | None = None
    if validate and any(row.request is not None for row in rows):
        services = {s.service_code: s for s in await client.list_services()}
    good: list[tuple[Row, NewRequest]] = []
    for row in rows:
        if row.request is None:
            done(RowResult(row.number, row.key, "invalid", row.error))
            continue
        request = row.request
        try:
            with_definition = False
            if services is not None:
                service = services.get(request.service_code)
                if service is None:
                    raise InvalidRequestError(
                        "service_code",
                        f"{request.service_code!r} is not one of the city's "
                        f"{len(services)} services",
                    )
                with_definition = service.metadata
            request = await client.prepare(request, validate=with_definition)
        except Civic311Error as exc:
            done(RowResult(row.number, row.key, "invalid", str(exc)))
            continue
        good.append((row, request))
    return good


async def _file_row(
    client: AsyncClient,
    ledger: Ledger,
    row: Row,
    request: NewRequest,
    endpoint: str,
    pacer: _Pacer,
    resend_after: float,
) -> RowResult:
    """Record the row (once: a re-run finds it by key), then settle it the journal's one way
    (`Ledger.asettle`: claim, reconcile if it may exist, send, record)."""
    new = ledger._new_row(row.key, request, endpoint, client.clock.now(), row_number=row.number)
    # A new row is born claimed by this run, in the insert's own transaction (one commit, not
    # two, per row); a row from an earlier run is claimed by the settle step as usual.
    token = new_token()
    row_id, created = ledger.store.insert(new, claim=(token, Owner.me()), if_absent=True)
    if not created:
        forget_token(token)
        settled = await ledger.asettle(client, row_id, resend_after=resend_after, pace=pacer.wait)
        return _row_result(row, settled)
    flow = ledger._settle_flow(client, row_id, resend_after, False, token=token)
    return _row_result(row, await _adrive(client, flow, pacer.wait))


async def _file_new_row(
    client: AsyncClient,
    ledger: Ledger,
    writer: JournalWriter,
    row: Row,
    request: NewRequest,
    new: NewRow,
    pacer: _Pacer,
    resend_after: float,
    gate: asyncio.Semaphore,
) -> RowResult:
    """A row no earlier run recorded: recorded claimed and in flight in one write, batched
    with the other rows admitted meanwhile (`JournalWriter.admit`), then sent as soon as a
    send slot (*gate*) frees and the rate allows; its outcome is queued to the writer. Rows
    another run recorded in the meantime take `_file_row`'s path."""
    token = new_token()
    row_id = await writer.admit(new, token, client.clock.now())
    if row_id is None:
        forget_token(token)
        async with gate:
            return await _file_row(
                client, ledger, row, request, client.endpoints[0], pacer, resend_after
            )
    try:
        await gate.acquire()
    except BaseException:
        writer.abandon(row_id, token)  # cancelled before its POST: not in flight after all
        raise
    try:
        try:
            # The rate paces the POSTs themselves, as on `_file_row`'s path (sent_at, recorded
            # before, is then a little early: a wider reconciliation window, never narrower).
            await pacer.wait()
        except BaseException:
            writer.abandon(row_id, token)
            raise
        record = writer.record
        flow = ledger._settle_flow(
            client, row_id, resend_after, False, token=token, sending=request, recorder=record
        )
        return _row_result(row, await _adrive(client, flow, None))
    finally:
        gate.release()


def _row_result(row: Row, settled: Settled) -> RowResult:
    receipt = settled.receipt
    rid = receipt.service_request_id if receipt else None
    token = receipt.token if receipt else None
    if settled.outcome == "settled":
        return RowResult(
            row.number, row.key, "skipped", f"{settled.detail} in an earlier run", rid, token
        )
    if settled.outcome == "held":
        return RowResult(
            row.number,
            row.key,
            "skipped",
            f"{settled.detail} (another civic311 run on this ledger is filing it right now; "
            "it is not filed twice)",
        )
    outcome: Outcome = settled.outcome
    detail = None if outcome == "filed" else settled.detail
    if outcome == "uncertain" and "--resend-after" not in (detail or ""):
        detail = (
            f"{detail}; the next run looks for it on the server first, and sends it again "
            "only after --resend-after seconds (resend_after=)"
        )
    return RowResult(row.number, row.key, outcome, detail, rid, token)


async def track_all(
    client: AsyncClient,
    *,
    ledger: Ledger,
    on_change: Callable[[StatusChange], None] | None = None,
) -> Tracked:
    """Refresh the status of every request the ledger holds for *client*'s city (its primary
    endpoint; another city's requests are left alone, even with the same ids), resolve pending
    tokens, and record what changed; see `AsyncClient.track`."""
    items: list[str | Receipt] = []
    for submission in ledger.submissions(endpoint=client.endpoints[0]):
        if submission.receipt is None or submission.state != "sent":
            continue
        if submission.receipt.service_request_id:
            items.append(submission.receipt.service_request_id)
        elif submission.receipt.token:
            items.append(submission.receipt)
    if not items:
        return Tracked(requests=(), changes=())
    tracked = await client.track(items, ledger=ledger)
    if on_change is not None:
        for change in tracked.changes:
            on_change(change)
    return tracked
