"""``civic311 ledger``: what you sent, and what the city said since (`civic311.ledger`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from civic311.cli._output import when
from civic311.cli._state import AwareDateTime, State

if TYPE_CHECKING:
    from civic311.ledger import StatusObservation, Submission, SubmissionState

__all__ = ["ledger"]

pass_state = click.make_pass_decorator(State)

_STATES = ("pending", "sent", "queued", "uncertain", "failed")


@click.group(short_help="Your record of submissions and statuses.")
def ledger() -> None:
    """Your record of every submission and every status seen.

    The file is --ledger, else $CIVIC311_LEDGER, else
    $XDG_DATA_HOME/civic311/ledger.sqlite (~/.local/share/civic311/ledger.sqlite).
    """


Entry = tuple["Submission | None", "str | None", "StatusObservation | None"]


def _entries(
    state: State,
    submission_state: SubmissionState | None,
    status: str | None,
    changed_since: datetime | None,
) -> list[Entry]:
    book = state.ledger()
    # A request id means something at one city only: statuses are matched by (endpoint, id);
    # those recorded without an endpoint (older files) stand in when the city has none.
    latest = {(o.endpoint, o.service_request_id): o for o in book.latest_statuses()}
    entries: list[Entry] = []
    listed: set[tuple[str, str]] = set()
    for sub in book.submissions(submission_state):
        rid = sub.service_request_id
        obs = (latest.get((sub.endpoint, rid)) or latest.get(("", rid))) if rid else None
        entries.append((sub, rid, obs))
        if obs is not None:
            listed.add((obs.endpoint, obs.service_request_id))
    if submission_state is None:
        # Requests only watched (not filed from here) are in the ledger too.
        entries.extend((None, key[1], obs) for key, obs in latest.items() if key not in listed)
    if status is not None:
        matching = {o.service_request_id for o in book.by_status(status)}
        entries = [e for e in entries if e[1] in matching]
    if changed_since is not None:
        changed = {o.service_request_id for o in book.changed_since(changed_since)}
        entries = [e for e in entries if e[1] in changed]
    return entries


def _short(text: str | None, limit: int = 40) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@ledger.command("list", short_help="Submissions with their latest status.")
@click.option(
    "--status",
    metavar="S",
    help="Only requests whose latest status is S (the city's word; case and spaces ignored).",
)
@click.option(
    "--changed-since",
    type=AwareDateTime(),
    metavar="DT",
    help="Only requests whose status changed after DT (ISO 8601 with a zone).",
)
@click.option(
    "--state",
    "submission_state",
    type=click.Choice(_STATES, case_sensitive=False),
    help="Only submissions in this state.",
)
@pass_state
def ledger_list(
    state: State,
    status: str | None,
    changed_since: datetime | None,
    submission_state: SubmissionState | None,
) -> None:
    """List submissions (and requests watched) with their latest status."""
    entries = _entries(state, submission_state, status, changed_since)
    if state.json:
        state.out.json(
            [
                {"submission": sub, "service_request_id": rid, "latest_status": obs}
                for sub, rid, obs in entries
            ]
        )
        return
    if not entries:
        state.out.note(f"Nothing in the ledger matches ({state.ledger_path}).")
        return
    rows: list[tuple[Any, ...]] = []
    for sub, rid, obs in entries:
        rows.append(
            (
                sub.id if sub else None,
                sub.state if sub else "watched",
                sub.request.service_code if sub else obs.service_code if obs else None,
                rid or (sub.token if sub else None),
                obs.status if obs else None,
                when(sub.sent_at if sub else None),
                when(obs.observed_at if obs else None),
                _short(sub.request.description if sub else None),
            )
        )
    state.out.show(
        state.out.table(
            ["#", "state", "service", "id / token", "status", "sent", "seen", "description"],
            rows,
            title=f"{len(rows)} in {state.ledger_path}",
        )
    )


@ledger.command("export", short_help="Export as CSV or JSON Lines.")
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["csv", "jsonl"], case_sensitive=False),
    default="csv",
    show_default=True,
    help="CSV (a header row first) or JSON Lines.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="F",
    help="Write here (created 0600) instead of stdout.",
)
@pass_state
def ledger_export(
    state: State, export_format: Literal["csv", "jsonl"], output: Path | None
) -> None:
    """Export every submission with its latest status (for a spreadsheet, or your records)."""
    book = state.ledger()
    export = book.export_csv if export_format == "csv" else book.export_jsonl
    if output is None:
        export(state.out.stdout.text_io())
        state.out.stdout.flush()
        return
    count = export(output)
    if state.json:
        state.out.json({"output": str(output), "format": export_format, "count": count})
    else:
        state.out.text(f"Wrote {count} submissions to {output}")
