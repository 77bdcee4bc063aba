"""``civic311 bulk submit`` and ``civic311 bulk track``: many reports from a file, each once.

Both run `civic311.bulk` on an `AsyncClient`, with the ledger as the memory between runs: a
re-run of the same file skips what was filed, reconciles what was in flight, and sends the
rest. The progress bar (rich) is drawn on stderr only when it is a terminal and --json is off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from civic311.cli._errors import CITY_ERROR, OK, UNREACHABLE, USAGE
from civic311.cli._output import when
from civic311.cli._state import State

if TYPE_CHECKING:
    from rich.table import Table

    from civic311.bulk import BulkSummary, Row, RowResult
    from civic311.tracking import StatusChange, Tracked

__all__ = ["bulk", "exit_code_of"]

pass_state = click.make_pass_decorator(State)

#: Outcomes in the order a summary lists them.
OUTCOMES = ("filed", "reconciled", "skipped", "valid", "queued", "uncertain", "failed", "invalid")


def exit_code_of(summary: BulkSummary) -> int:
    """2 if a row is invalid (fix the file), else 1 if the city refused a row or its outcome is
    uncertain, else 3 if rows are queued because the city could not be reached, else 0."""
    counts = summary.counts()
    if counts.get("invalid"):
        return USAGE
    if counts.get("failed") or counts.get("uncertain"):
        return CITY_ERROR
    if counts.get("queued"):
        return UNREACHABLE
    return OK


@click.group(short_help="File and track many reports from a file.")
def bulk() -> None:
    """File many reports from a CSV or JSON Lines file, and track them."""


#: Seconds between progress lines when stderr is not a terminal (a log, CI, cron).
PROGRESS_EVERY = 5.0


class _Tally:
    """Rows done so far, by outcome: what the progress shows and what Ctrl-C reports."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.counts: dict[str, int] = {}

    def add(self, result: RowResult) -> None:
        self.done += 1
        self.counts[result.outcome] = self.counts.get(result.outcome, 0) + 1

    @property
    def filed(self) -> int:
        return self.counts.get("filed", 0) + self.counts.get("reconciled", 0)

    @property
    def failed(self) -> int:
        return sum(self.counts.get(o, 0) for o in ("failed", "invalid", "uncertain"))

    def line(self) -> str:
        return f"{self.done}/{self.total} rows: {self.filed} filed, {self.failed} failed"


@contextmanager
def _progress(state: State, tally: _Tally, label: str) -> Iterator[Callable[[RowResult], None]]:
    """A callback for each row's result: on a terminal it advances a bar showing n/total and
    the filed/failed counts; off a terminal (a log) it prints that line every few seconds."""
    if state.json:
        yield tally.add
        return
    if not state.out.stderr.isatty():
        last = [time.monotonic()]

        def log(result: RowResult) -> None:
            tally.add(result)
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY and tally.done < tally.total:
                last[0] = now
                state.out.note(f"{label.lower()}: {tally.line()}")

        yield log
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    with Progress(*columns, console=state.out.err_console, transient=True) as progress:
        task = progress.add_task(label, total=tally.total, counts="")

        def advance(result: RowResult) -> None:
            tally.add(result)
            progress.update(task, advance=1, counts=f"{tally.filed} filed, {tally.failed} failed")

        yield advance


def _key(key: str) -> str:
    """A row's key for a table: a content hash cut to its first digits (enough to tell rows
    apart; the ledger and --json hold it whole)."""
    return key[:15] + "…" if key.startswith("sha256:") else key


def _show(state: State, table: Table) -> None:
    """Print a table: as rich draws it at a terminal; in a pipe or a file, each line without
    the trailing blanks that pad it to the table's width (logs and diffs stay clean)."""
    if state.out.stdout.isatty():
        state.out.show(table)
        return
    console = state.out.console
    with console.capture() as captured:
        console.print(table)
    for line in captured.get().splitlines():
        state.out.text(line.rstrip())


def _show_summary(state: State, summary: BulkSummary) -> None:
    counts = summary.counts()
    verb = "checked (dry run, nothing sent)" if summary.dry_run else "processed"
    state.out.text(
        f"{len(summary.results)} rows {verb}: "
        + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts.get(o))
    )
    # Filed rows first, blackbox ones (no id, no token) included by their row number ...
    filed = [
        r
        for r in summary.results
        if r.outcome in ("filed", "reconciled")
        or (r.outcome == "skipped" and (r.service_request_id or r.token))
    ]
    if filed and not summary.dry_run:
        _show(
            state,
            state.out.table(
                ["row", "key", "outcome", "request id", "token"],
                [
                    (
                        r.number,
                        _key(r.key),
                        r.outcome,
                        r.service_request_id or ("-" if r.token else "(none: a blackbox service)"),
                        r.token,
                    )
                    for r in filed
                ],
                title="Filed",
            ),
        )
    # ... then the problems, last, where a person reading the end of the output sees them.
    problems: list[RowResult] = [
        r for r in summary.results if r.outcome in ("failed", "invalid", "uncertain", "queued")
    ]
    if problems:
        _show(
            state,
            state.out.table(
                ["row", "key", "outcome", "why"],
                [(r.number, _key(r.key), r.outcome, r.detail) for r in problems],
                title="Rows that need attention",
            ),
        )


def _warn_emergencies(state: State, rows: list[Row]) -> None:
    """Name the rows whose description sounds like an emergency (a heuristic; never blocks)."""
    from civic311.triage import check

    flagged = [
        str(row.number)
        for row in rows
        if row.request is not None and check(row.request.description, "ignore")
    ]
    if flagged:
        shown = ", ".join(flagged[:10]) + (
            f" and {len(flagged) - 10} more" if len(flagged) > 10 else ""
        )
        state.out.warn(
            f"row(s) {shown} sound like an emergency (a heuristic word check). 311 is not for "
            "emergencies: if one is, call 911 or your local emergency number."
        )


@bulk.command("submit", short_help="File every row of FILE once (resumable).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key-column",
    metavar="C",
    help="A column that names each row (unique); by default rows are keyed by their content.",
)
@click.option(
    "--input-format",
    type=click.Choice(["csv", "jsonl"], case_sensitive=False),
    help="The file's format [default: from its name; .jsonl/.ndjson is JSON Lines].",
)
@click.option(
    "--encoding",
    metavar="E",
    help="The file's encoding (latin-1, cp1252…) [default: from its byte order mark, else UTF-8].",
)
@click.option("--dry-run", is_flag=True, help="Check every row (and the city's definitions) only.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    metavar="N",
    help="Reports in flight at once.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    metavar="R",
    help="At most R reports started per second [default: no limit].",
)
@click.option(
    "--resend-after",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    metavar="S",
    help="A row whose earlier send had an unknown outcome and is still not found on the "
    "server is sent again only after this many seconds.",
)
@click.option(
    "--validate/--no-validate",
    default=True,
    show_default=True,
    help="Check rows against the city's services and definitions first.",
)
@pass_state
def bulk_submit(
    state: State,
    file: Path,
    key_column: str | None,
    input_format: Literal["csv", "jsonl"] | None,
    encoding: str | None,
    dry_run: bool,
    concurrency: int,
    rate: float | None,
    resend_after: float,
    validate: bool,
) -> None:
    """File every row of FILE once, recording each in the ledger before it is sent.

    Columns: service_code, lat, long, address_string, address_id, description, email,
    first_name, last_name, phone, media_url, and attribute.CODE (repeat the column, or
    separate values with |, for a multivaluelist). The file is UTF-8 (or UTF-16/32 with a byte
    order mark, as spreadsheets save them); give another encoding with --encoding. Run it
    again after a crash or an outage: rows already filed are skipped, rows in flight are looked
    for on the server first, and rows another run is filing right now are left to it.

    Exit code: 2 if a row is invalid, else 1 if the city refused a row or its outcome is
    uncertain, else 3 if rows are queued because the city was unreachable, else 0.
    """
    from civic311 import bulk as bulk_api

    rows = list(
        bulk_api.read_rows(file, format=input_format, key_column=key_column, encoding=encoding)
    )
    _warn_emergencies(state, rows)
    ledger = state.ledger()

    async def run(on_row: Callable[[RowResult], None]) -> BulkSummary:
        async with state.async_client() as client:
            return await bulk_api.submit_all(
                client,
                rows,
                ledger=ledger,
                concurrency=concurrency,
                rate=rate,
                dry_run=dry_run,
                validate=validate,
                resend_after=resend_after,
                on_row=on_row,
            )

    tally = _Tally(len(rows))
    try:
        with _progress(state, tally, "Checking" if dry_run else "Filing") as advance:
            summary = asyncio.run(run(advance))
    except KeyboardInterrupt:
        if dry_run:
            state.out.error("interrupted: nothing was sent")
        else:
            state.out.error(
                f"interrupted after {tally.done} of {tally.total} rows ({tally.filed} filed). "
                "Run the same command again to resume: nothing will be filed twice."
            )
        raise click.exceptions.Exit(130) from None
    if state.json:
        state.out.json(
            {
                "file": str(file),
                "dry_run": summary.dry_run,
                "ok": summary.ok,
                "counts": summary.counts(),
                "results": summary.results,
                "ledger": str(state.ledger_path),  # a URL without its password
            }
        )
    else:
        _show_summary(state, summary)
    code = exit_code_of(summary)
    if code:
        raise click.exceptions.Exit(code)


def _show_change(state: State, change: StatusChange) -> None:
    before = f"{change.previous} → " if change.previous is not None else ""
    notes = f": {change.status_notes}" if change.status_notes else ""
    state.out.text(
        f"{when(change.observed_at)}  {change.service_request_id}  "
        f"{before}{change.status or '?'}{notes}"
    )


@bulk.command("track", short_help="Refresh what the ledger filed; record changes.")
@pass_state
def bulk_track(state: State) -> None:
    """Refresh every request filed through the ledger once: resolve tokens, look the ids up,
    and record (and print) what changed since last time."""
    from civic311 import bulk as bulk_api

    ledger = state.ledger()

    async def run() -> Tracked:
        async with state.async_client() as client:
            return await bulk_api.track_all(client, ledger=ledger)

    tracked = asyncio.run(run())
    if state.json:
        state.out.json(
            {
                "requests": len(tracked.requests),
                "open": sum(1 for r in tracked.requests if not r.is_closed),
                "closed": sum(1 for r in tracked.requests if r.is_closed),
                "changes": list(tracked.changes),
                "pending_tokens": list(tracked.pending_tokens),
                "missing": list(tracked.missing),
            }
        )
        return
    for change in tracked.changes:
        _show_change(state, change)
    closed = sum(1 for r in tracked.requests if r.is_closed)
    state.out.text(
        f"{len(tracked.requests)} requests: {len(tracked.requests) - closed} open, {closed} "
        f"closed; {len(tracked.changes)} changed since last seen"
    )
    if tracked.pending_tokens:
        state.out.text(f"Tokens still pending: {', '.join(tracked.pending_tokens)}")
    if tracked.missing:
        state.out.text(f"Not found at the city: {', '.join(tracked.missing)}")
