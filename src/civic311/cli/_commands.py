"""The sub-commands that read: cities, services, definition, token, request, requests, harvest,
discover, health, watch, stats; and the local ones, demo and fake-city."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from civic311.cli._output import when
from civic311.cli._state import AwareDateTime, State

if TYPE_CHECKING:
    from civic311.models import ServiceRequest

__all__ = [
    "cities",
    "definition",
    "demo",
    "discover",
    "fake_city",
    "harvest",
    "health",
    "request",
    "requests",
    "services",
    "stats",
    "token",
    "watch",
]

pass_state = click.make_pass_decorator(State)


def _short(text: str | None, limit: int = 60) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _codes(values: Sequence[str]) -> str | list[str] | None:
    return list(values) if values else None


# --- the registry ----------------------------------------------------------------------------


@click.command(short_help="The registry's cities, or those matching QUERY.")
@click.argument("query", required=False, default="")
@pass_state
def cities(state: State, query: str) -> None:
    """List the bundled registry's cities, or those matching QUERY.

    QUERY matches a key, name, alias, country, region or jurisdiction_id, ignoring case and
    accents ("koln" finds Köln). Entries date from 2014-2021 and most are "questioned":
    check a city answers before relying on it.
    """
    from civic311 import cities as registry

    found = registry.search(query) if query else registry.all_cities()
    if state.json:
        state.out.json([city.to_dict() for city in found])
        return
    if not found:
        state.out.note(f"No city in the registry matches {query!r}.")
        return
    rows = [
        (
            city.key,
            city.name,
            ", ".join(part for part in (city.region, city.country) if part),
            city.status,
            city.api_key,
            city.production[0],
        )
        for city in found
    ]
    state.out.show(
        state.out.table(
            ["key", "name", "where", "status", "api key", "endpoint"],
            rows,
            title=f"{len(found)} {'city' if len(found) == 1 else 'cities'}",
        )
    )


# --- services --------------------------------------------------------------------------------


@click.command(short_help="The services the city takes reports for.")
@pass_state
def services(state: State) -> None:
    """List the services the city accepts reports for."""
    with state.client() as client:
        found = client.list_services()
    if state.json:
        state.out.json(found)
        return
    rows = [
        (
            s.service_code,
            s.service_name,
            s.type,
            s.group,
            "yes" if s.metadata else "no",
            _short(s.description),
        )
        for s in found
    ]
    state.out.show(
        state.out.table(
            ["code", "name", "type", "group", "attributes", "description"],
            rows,
            title=f"{len(found)} services",
        )
    )


@click.command(short_help="The questions service CODE asks.")
@click.argument("code")
@pass_state
def definition(state: State, code: str) -> None:
    """Show the questions (attributes) service CODE asks when a report is filed.

    Answer them with `civic311 submit --attribute CODE=VALUE`; for list attributes send the
    value's key, and repeat the option for each value of a multivaluelist.
    """
    with state.client() as client:
        found = client.get_service_definition(code)
    if state.json:
        state.out.json(found)
        return
    if not found.attributes:
        state.out.text(f"Service {code} asks nothing beyond the location and description.")
        return
    rows = []
    for attribute in found.attributes:
        need = "required" if attribute.required else "optional"
        if not attribute.variable:
            need = "information"
        values = ", ".join(f"{v.key}={v.name}" if v.name else v.key for v in attribute.values) or (
            attribute.datatype_description or None
        )
        rows.append(
            (
                attribute.order,
                attribute.code,
                attribute.datatype,
                need,
                attribute.description,
                values,
            )
        )
    state.out.show(
        state.out.table(
            ["#", "code", "datatype", "need", "question", "values"],
            rows,
            title=f"Service {code} asks:",
        )
    )


# --- one request, many requests --------------------------------------------------------------


@click.command(short_help="A batch TOKEN's request id, or pending.")
@click.argument("token_value", metavar="TOKEN")
@pass_state
def token(state: State, token_value: str) -> None:
    """Look a batch service's TOKEN up: its service request id, or still pending."""
    with state.client() as client:
        status = client.get_token(token_value)
    if state.json:
        state.out.json({**state_dict(status), "pending": status.pending})
        return
    if status.pending:
        state.out.text(f"Token {status.token} is still pending: the city has no request id yet.")
    else:
        state.out.text(f"Token {status.token} → service request {status.service_request_id}")


def state_dict(model: Any) -> dict[str, Any]:
    """A model as JSON-ready data (`civic311.to_dict`)."""
    from civic311.cli._output import jsonable

    result: dict[str, Any] = jsonable(model)
    return result


def _request_lines(found: ServiceRequest) -> list[tuple[str, object]]:
    location = (
        f"{found.lat}, {found.long}" if found.lat is not None and found.long is not None else None
    )
    return [
        ("id", found.service_request_id or f"(token {found.token})"),
        ("status", found.status),
        ("notes", found.status_notes),
        ("service", f"{found.service_code or '-'} {found.service_name or ''}".strip()),
        ("description", found.description),
        ("address", found.address),
        ("location", location),
        ("requested", when(found.requested_datetime)),
        ("updated", when(found.updated_datetime)),
        ("expected", when(found.expected_datetime)),
        ("agency", found.agency_responsible),
        ("notice", found.service_notice),
        ("media", found.media_url),
    ]


@click.command(short_help="One request as the city has it now.")
@click.argument("service_request_id", metavar="ID")
@pass_state
def request(state: State, service_request_id: str) -> None:
    """Show service request ID as the city has it now."""
    with state.client() as client:
        found = client.get_request(service_request_id)
    if state.json:
        state.out.json(found)
        return
    rows = [(name, value) for name, value in _request_lines(found) if value not in (None, "-")]
    table = state.out.table(["field", "value"], rows)
    table.show_header = False
    state.out.show(table)


_FILTERS = [
    click.option(
        "--service-code",
        "service_codes",
        multiple=True,
        metavar="CODE",
        help="Only this service (repeatable).",
    ),
    click.option(
        "--status",
        "statuses",
        multiple=True,
        metavar="STATUS",
        help="Only this status: open, closed, or the city's own word (repeatable).",
    ),
]


def _filters(function: Any) -> Any:
    for option in reversed(_FILTERS):
        function = option(function)
    return function


_DATETIME_HELP = "ISO 8601 with a zone: 2026-01-01T00:00:00Z or …-05:00 (naive times are refused)."


@click.command(short_help="Requests matching filters (up to ~1,000).")
@_filters
@click.option("--start", type=AwareDateTime(), help=f"Requested on or after. {_DATETIME_HELP}")
@click.option("--end", type=AwareDateTime(), help=f"Requested on or before. {_DATETIME_HELP}")
@pass_state
def requests(
    state: State,
    service_codes: tuple[str, ...],
    statuses: tuple[str, ...],
    start: datetime | None,
    end: datetime | None,
) -> None:
    """List service requests matching the filters.

    Without dates the city answers its most recent 90 days, and at most about 1,000
    requests: use `civic311 harvest` for a complete list over any span.
    """
    with state.client() as client:
        found = client.list_requests(
            service_code=_codes(service_codes),
            status=_codes(statuses),
            start_date=start,
            end_date=end,
        )
    if state.json:
        state.out.json(found)
        return
    rows = [
        (
            r.service_request_id,
            r.status,
            r.service_name or r.service_code,
            when(r.requested_datetime),
            when(r.updated_datetime),
            _short(r.address or r.description, 50),
        )
        for r in found
    ]
    state.out.show(
        state.out.table(
            ["id", "status", "service", "requested", "updated", "where / what"],
            rows,
            title=f"{len(found)} requests",
        )
    )


@click.command(short_help="Every request of a span, as JSON Lines.")
@click.option("--start", type=AwareDateTime(), required=True, help=_DATETIME_HELP)
@click.option("--end", type=AwareDateTime(), required=True, help=_DATETIME_HELP)
@_filters
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.jsonl",
    help="Write here instead of stdout.",
)
@pass_state
def harvest(
    state: State,
    start: datetime,
    end: datetime,
    service_codes: tuple[str, ...],
    statuses: tuple[str, ...],
    output: Path | None,
) -> None:
    """Every request between --start and --end, each once, as JSON Lines.

    Walks the span in windows the city can answer completely (splitting windows it caps),
    so any span works. One `civic311.to_dict` object per line: feed it to `civic311 stats
    --from-file`, or to any tool that reads JSON Lines.
    """
    count = 0
    with state.client() as client:
        found = client.iter_requests(
            start_date=start,
            end_date=end,
            service_code=_codes(service_codes),
            status=_codes(statuses),
        )
        if output is None:
            for item in found:
                state.out.json_line(item)
                count += 1
            state.out.note(f"harvested {count} requests")
            return
        with output.open("w", encoding="utf-8") as sink:
            for item in found:
                sink.write(json.dumps(state_dict(item), ensure_ascii=False) + "\n")
                count += 1
    if state.json:
        state.out.json({"output": str(output), "count": count})
    else:
        state.out.text(f"Wrote {count} requests to {output}")


# --- discovery and health --------------------------------------------------------------------


@click.command(short_help="A discovery document's GeoReport endpoints.")
@click.argument("url")
@click.option(
    "--environment",
    type=click.Choice(["production", "test"], case_sensitive=False),
    default="production",
    show_default=True,
    help="Which endpoints to choose.",
)
@pass_state
def discover(state: State, url: str, environment: Literal["production", "test"]) -> None:
    """Read a city's Service Discovery document at URL and show its GeoReport v2 endpoints.

    The chosen endpoints can be given to --endpoint (primary first).
    """
    import civic311
    from civic311.discovery import choose_endpoints, discovery_root
    from civic311.errors import DecodeError

    # Fetched through a client, so the document is read like any answer (User-Agent, size cap).
    with civic311.Client(discovery_root(url), timeout=state.timeout or 10.0) as client:
        document = client.get_discovery(url)
    problem: DecodeError | None = None
    try:
        chosen = choose_endpoints(document, environment=environment)
    except DecodeError as exc:
        chosen, problem = [], exc
    if state.json:
        state.out.json(
            {
                "url": url,
                "changeset": document.changeset,
                "contact": document.contact,
                "key_service": document.key_service,
                "endpoints": document.endpoints,
                "chosen": [{"url": u, "format": f} for u, f in chosen],
                "extras": document.extras,
            }
        )
    else:
        for label, value in (
            ("contact", document.contact),
            ("api keys", document.key_service),
            ("changed", when(document.changeset) if document.changeset else None),
        ):
            if value:
                state.out.text(f"{label}: {value}")
        rows = [
            (e.type, e.specification, e.url, ", ".join(e.formats), when(e.changeset))
            for e in document.endpoints
        ]
        state.out.show(
            state.out.table(
                ["type", "specification", "url", "formats", "changed"],
                rows,
                title=f"{len(rows)} endpoints listed",
            )
        )
        if chosen:
            state.out.text(f"GeoReport v2 {environment} endpoints, primary first:")
            for chosen_url, fmt in chosen:
                state.out.text(f"  {chosen_url}  ({fmt})")
            flags = " ".join(f"--endpoint {u}" for u, _ in chosen)
            state.out.text(f"Use them: civic311 {flags} services")
    if problem is not None:
        raise problem


@click.command(short_help="Probe the city; show each endpoint's health.")
@pass_state
def health(state: State) -> None:
    """Ask the city for its services, then show each endpoint's health.

    Up, degraded (recent failures) or down (skipped until a cool-down passes), since when,
    the failures seen, the average latency and the format in use. Exits 3 when no endpoint
    answered.
    """
    from civic311.errors import Civic311Error

    error: Civic311Error | None = None
    with state.client() as client:
        try:
            client.list_services()
        except Civic311Error as exc:
            error = exc
        report = client.probe()  # each endpoint asked: a wrong base URL is not "up"
    if state.json:
        state.out.json(
            {"ok": error is None, "error": str(error) if error else None, "endpoints": report}
        )
    else:
        rows = [
            (
                h.url,
                h.state.value,
                when(h.since),
                f"{h.consecutive_failures} ({h.failures}/{h.calls})",
                f"{h.latency_avg * 1000:.0f} ms" if h.latency_avg is not None else None,
                h.format + (" (switched)" if h.format_switched else ""),
                _short(h.last_error, 70),
            )
            for h in report
        ]
        state.out.show(
            state.out.table(
                ["endpoint", "state", "since", "failing (all)", "latency", "format", "last error"],
                rows,
            )
        )
    if error is not None:
        raise error


# --- following requests ----------------------------------------------------------------------


@click.command(short_help="Follow requests until closed.")
@click.argument("ids", metavar="ID...", nargs=-1, required=True)
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    metavar="S",
    help="Seconds between look-ups (longer while nothing changes, up to an hour).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="S",
    help="Stop after this many seconds [default: when every request is closed].",
)
@pass_state
def watch(state: State, ids: tuple[str, ...], interval: float, timeout: float | None) -> None:
    """Follow requests until the city closes them all, printing each change.

    Every status seen is recorded in the ledger, so a later watch reports only what changed
    since. With --json, one JSON object per change (JSON Lines).
    """
    ledger = state.ledger()
    latest: dict[str, bool] = {}
    with state.client() as client:
        changes = client.watch(
            list(ids),
            interval=interval,
            max_interval=max(interval, 3600.0),
            timeout=timeout,
            ledger=ledger,
        )
        for change in changes:
            latest[change.service_request_id] = change.closed
            if state.json:
                state.out.json_line(change)
                continue
            before = f"{change.previous} → " if change.previous is not None else ""
            notes = f": {change.status_notes}" if change.status_notes else ""
            state.out.text(
                f"{when(change.observed_at)}  {change.service_request_id}  "
                f"{before}{change.status or '?'}{notes}"
            )
    still_open = [i for i in ids if not latest.get(i, False)]
    if still_open and not state.json:
        state.out.note(f"not closed yet: {', '.join(still_open)}")


# --- statistics ------------------------------------------------------------------------------


def _from_file(path: Path) -> Iterator[ServiceRequest]:
    from civic311._wire.converter import from_dict
    from civic311.errors import Civic311Error, InvalidRequestError
    from civic311.models import ServiceRequest

    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield from_dict(ServiceRequest, json.loads(line))
            except (ValueError, TypeError, Civic311Error) as exc:
                raise InvalidRequestError(
                    "--from-file", f"{path}:{number}: not a harvested request ({exc})"
                ) from None


@click.command(short_help="Time to close, per service.")
@click.option("--start", type=AwareDateTime(), help=f"Harvest from here. {_DATETIME_HELP}")
@click.option("--end", type=AwareDateTime(), help="Harvest up to here.")
@_filters
@click.option(
    "--from-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE.jsonl",
    help="Requests harvested before (`civic311 harvest --output`), instead of asking the city.",
)
@pass_state
def stats(
    state: State,
    start: datetime | None,
    end: datetime | None,
    service_codes: tuple[str, ...],
    statuses: tuple[str, ...],
    from_file: Path | None,
) -> None:
    """How long the city takes, per service: counts, open and closed, median and 90th
    percentile time to close, and how often it met its expected date.

    Harvests --start to --end from the city, or reads --from-file.
    """
    from civic311.stats import format_table, summarize

    if from_file is not None:
        if start is not None or end is not None:
            raise click.UsageError("give --from-file or --start/--end, not both")
        summary = summarize(_from_file(from_file))
    else:
        if start is None or end is None:
            raise click.UsageError("give --start and --end (a harvest), or --from-file")
        with state.client() as client:
            summary = summarize(
                client.iter_requests(
                    start_date=start,
                    end_date=end,
                    service_code=_codes(service_codes),
                    status=_codes(statuses),
                )
            )
    per_service, total = summary
    if state.json:
        state.out.json({"services": per_service, "total": total})
    else:
        state.out.text(format_table(per_service, total=total))


# --- the demo --------------------------------------------------------------------------------


@click.command(short_help="The whole job against local fake cities.")
@click.option("--seed", type=int, default=311, show_default=True, help="The fake city's seed.")
@pass_state
def demo(state: State, seed: int) -> None:
    """File and follow a report against two local FakeCity servers, through an outage.

    Needs no city and no network: both servers run on 127.0.0.1 and time is virtual.
    """
    import io

    from civic311.cli.demo import run_demo

    if state.json:
        transcript = io.StringIO()
        code = run_demo(seed=seed, out=transcript)
        state.out.json({"ok": code == 0, "transcript": transcript.getvalue().splitlines()})
    else:
        code = run_demo(seed=seed, out=state.out.stdout.text_io())
    if code:
        raise click.exceptions.Exit(code)


# --- a city on this machine ------------------------------------------------------------------


def _fault_option(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    from civic311.testing._command import parse_fault

    try:
        return [parse_fault(value) for value in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


#: `civic311.testing._command.DIALECTS`'s names, spelt out so --help imports no FakeCity (a test
#: keeps the two lists equal).
_DIALECT_NAMES = [
    "spec",
    "xml-only",
    "chicago",
    "sf",
    "sixaika",
    "fixmystreet",
    "open311-adapter",
    "markaspot",
    "ureport",
]


@click.command("fake-city", short_help="Serve a FakeCity on 127.0.0.1 until Ctrl-C.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default="a free port",
    help="The port to listen on.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds ids and history.")
@click.option(
    "--dialect",
    type=click.Choice(_DIALECT_NAMES, case_sensitive=False),
    default="spec",
    show_default=True,
    help="Speak like a real server (civic311.testing.Dialect's presets).",
)
@click.option(
    "--uploads",
    type=click.Choice(["none", "single", "array"], case_sensitive=False),
    help="The file uploads the city takes [default: the dialect's; spec: none].",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND[:ARG][,times=N][,method=M][,path=GLOB]",
    callback=_fault_option,
    help="Misbehave (repeatable): status:503,times=2 / latency:0.5 / flaky:0.2 / "
    "drop-after-create / maintenance / hang / truncated / reset.",
)
@click.option(
    "--requests",
    "history",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="N",
    help="Generate N past requests (for requests, harvest, stats).",
)
@click.option(
    "--token-delay",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    metavar="S",
    help="Seconds before a batch service's token becomes a request id.",
)
@click.option(
    "--stop-after",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="Stop after S seconds [default: at Ctrl-C].",
)
@pass_state
def fake_city(
    state: State,
    port: int,
    seed: int,
    dialect: str,
    uploads: str | None,
    faults: list[Any],
    history: int,
    token_delay: float,
    stop_after: float | None,
) -> None:
    """Serve a FakeCity, a GeoReport v2 city for trying civic311 and for tests, on 127.0.0.1.

    The base URL is the first line on stdout; point any command at it in another terminal:

    \b
      civic311 fake-city --port 8311
      civic311 --endpoint http://127.0.0.1:8311/open311/v2 services

    It keeps everything in memory and stops at Ctrl-C (exit 0). Also runs without the cli
    extra as `python -m civic311.testing` (same options).
    """
    import sys

    from civic311.testing._command import build_city, serve_forever

    city = build_city(
        seed=seed,
        dialect=dialect,
        uploads=uploads,
        faults=faults,
        requests=history,
        token_delay=token_delay,
    )
    code = serve_forever(city, port=port, out=sys.stdout, err=sys.stderr, stop_after=stop_after)
    if code:
        raise click.exceptions.Exit(code)
