"""``civic311 submit``: file one report, record it in the ledger, and (optionally) wait for its id.

Before anything is sent, the description is read for wording that sounds like an emergency
(`civic311.triage`, a heuristic: a list of English phrases, which misses some emergencies and
flags some non-emergencies). When it finds some, a person at a terminal is asked to confirm;
``--yes`` files anyway; a script without ``--yes`` is refused (exit 2) with the advice to call
911, because 311 may not read the report for days.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

import civic311.cli._state as _state
from civic311.cli._errors import USAGE
from civic311.cli._state import State, now

if TYPE_CHECKING:
    from civic311.models import NewRequest, Receipt
    from civic311.triage import Signal

__all__ = ["emergency_gate", "parse_attributes", "submit"]

pass_state = click.make_pass_decorator(State)


def parse_attributes(items: tuple[str, ...]) -> dict[str, str | list[str]]:
    """``CODE=VALUE`` options as a NewRequest's attributes; a CODE given twice or more becomes
    a list (a multivaluelist's values)."""
    attributes: dict[str, str | list[str]] = {}
    for item in items:
        code, sep, value = item.partition("=")
        code = code.strip()
        if not sep or not code:
            raise click.BadParameter(
                f"{item!r} is not CODE=VALUE (e.g. --attribute DEPTH=7.5)",
                param_hint="'--attribute'",
            )
        previous = attributes.get(code)
        if previous is None:
            attributes[code] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            attributes[code] = [previous, value]
    return attributes


def _labels(signals: list[Signal]) -> str:
    from civic311.triage import CATEGORY_LABELS

    categories = list(dict.fromkeys(s.category for s in signals))
    words = ", ".join(repr(s.text) for s in signals[:3])
    return f"{', '.join(CATEGORY_LABELS.get(c, c) for c in categories)}: {words}"


def emergency_gate(state: State, description: str | None, *, yes: bool) -> None:
    """Stop a report that reads like an emergency unless the person confirms it is not one."""
    from civic311.triage import check

    signals = check(description, "ignore")
    if not signals:
        return
    what = _labels(signals)
    if yes:
        state.out.warn(
            f"the description sounds like an emergency ({what}); filing anyway (--yes). "
            "If it is one, call 911 or your local emergency number."
        )
        return
    if _state.stdin_is_interactive():
        question = (
            f"This sounds like an emergency ({what}). Call 911 or your local emergency "
            "number. Still file a 311 report?"
        )
        if click.confirm(question, default=False, err=True):
            return
        state.out.note("Not filed.")
        raise click.exceptions.Exit(USAGE)
    state.out.error(
        f"the description sounds like an emergency ({what}). 311 is not for emergencies: "
        "call 911 or your local emergency number. This check is a heuristic; if it is not "
        "an emergency, run again with --yes to file the report. Nothing was sent."
    )
    raise click.exceptions.Exit(USAGE)


def _build(
    options: dict[str, Any], attributes: tuple[str, ...], photos: tuple[Path, ...]
) -> NewRequest:
    from civic311.media import MediaFile
    from civic311.models import NewRequest

    media = [MediaFile.from_path(photo) for photo in photos]
    media_urls = list(options.pop("media_urls"))
    return NewRequest(
        **options,
        media_url=media_urls or None,
        attributes=parse_attributes(attributes),
        media=media,
    )


def _describe(receipt: Receipt | None, queued_as: str | None = None) -> list[str]:
    lines: list[str] = []
    if receipt is None:
        lines.append(
            f"Queued in the outbox as {queued_as}: the city could not be reached (or the "
            "outcome is unknown). Nothing is lost; it is sent when the outbox is flushed."
        )
        return lines
    if receipt.service_request_id:
        how = " (its answer was lost; found on the server, not sent twice)"
        how = how if receipt.reconciled else ""
        lines.append(f"Filed: service request {receipt.service_request_id}{how}")
    elif receipt.token:
        lines.append(
            f"Filed: the city answered with token {receipt.token}; it becomes a request id "
            f"later (`civic311 token {receipt.token}`, or --wait)."
        )
    else:
        lines.append("Filed: this service gives no request id (a blackbox service); keep the date.")
    if receipt.service_notice:
        lines.append(f"Notice: {receipt.service_notice}")
    if receipt.account_id:
        lines.append(f"Account: {receipt.account_id}")
    return lines


@click.command(short_help="File a report (recorded in the ledger).")
@click.option("--service-code", required=True, metavar="CODE", help="The service (see `services`).")
@click.option("--lat", type=float, help="Latitude (WGS84); with --long.")
@click.option("--long", "long_", type=float, help="Longitude (WGS84); with --lat.")
@click.option("--address", metavar="TEXT", help="The address, if not --lat/--long.")
@click.option("--address-id", metavar="ID", help="The city's address id.")
@click.option("--description", metavar="TEXT", help="What is wrong (up to 4,000 characters).")
@click.option("--email", metavar="EMAIL")
@click.option("--first-name", metavar="NAME")
@click.option("--last-name", metavar="NAME")
@click.option("--phone", metavar="PHONE")
@click.option(
    "--media-url", "media_urls", multiple=True, metavar="URL", help="A photo's URL (repeatable)."
)
@click.option(
    "--attribute",
    "attributes",
    multiple=True,
    metavar="CODE=VALUE",
    help="An answer to the service's question CODE (repeatable; repeat a CODE for each value "
    "of a multivaluelist).",
)
@click.option(
    "--photo",
    "photos",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="PATH",
    help="A photo to upload, for cities that take files (repeatable).",
)
@click.option(
    "--validate/--no-validate",
    default=True,
    show_default=True,
    help="Check the answers against the service's definition before sending.",
)
@click.option(
    "--wait/--no-wait",
    default=False,
    show_default=True,
    help="For a batch service's token, wait until the city gives the request id.",
)
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    metavar="S",
    help="How long --wait waits.",
)
@click.option(
    "--outbox",
    "outbox_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Store the report in this outbox file first; if the city is down it waits there.",
)
@click.option(
    "--yes", "-y", is_flag=True, help="File even if the description sounds like an emergency."
)
@pass_state
def submit(
    state: State,
    service_code: str,
    lat: float | None,
    long_: float | None,
    address: str | None,
    address_id: str | None,
    description: str | None,
    email: str | None,
    first_name: str | None,
    last_name: str | None,
    phone: str | None,
    media_urls: tuple[str, ...],
    attributes: tuple[str, ...],
    photos: tuple[Path, ...],
    validate: bool,
    wait: bool,
    wait_timeout: float,
    outbox_path: Path | None,
    yes: bool,
) -> None:
    """File a service request, and record it in the ledger.

    A location is required: --lat and --long, or --address, or --address-id. The report is
    sent once: when the answer is lost it is looked for on the server, never re-sent blindly.

    Descriptions that sound like an emergency (fire, gas, someone hurt…) are caught by a
    heuristic word list: at a terminal you are asked to confirm; in a script the report is
    refused unless --yes is given. 311 is not for emergencies: call 911.
    """
    from civic311.errors import (
        AllEndpointsFailedError,
        APIError,
        SubmissionUncertainError,
        TransportError,
        WaitTimeoutError,
    )

    request = _build(
        {
            "service_code": service_code,
            "lat": lat,
            "long": long_,
            "address_string": address,
            "address_id": address_id,
            "description": description,
            "email": email,
            "first_name": first_name,
            "last_name": last_name,
            "phone": phone,
            "media_urls": media_urls,
        },
        attributes,
        photos,
    )
    emergency_gate(state, request.description, yes=yes)
    client = state.client()
    ledger = state.ledger()
    outbox = None
    if outbox_path is not None:
        from civic311.outbox import Outbox

        outbox = Outbox(outbox_path.expanduser())
    with client:
        endpoint = client.endpoints[0]
        sent_at = now()
        queued_as: str | None = None  # the outbox entry, while it waits there
        receipt: Receipt | None
        try:
            if outbox is not None:
                entry = outbox.submit(client, request, validate=validate)
                receipt = entry.receipt if entry.state == "sent" else None
                queued_as = None if entry.state == "sent" else entry.local_id
            else:
                receipt = client.submit(request, validate=validate)
        except SubmissionUncertainError as exc:
            ledger.record_submission(
                key=None,
                request=request,
                endpoint=endpoint,
                sent_at=sent_at,
                error=str(exc),
                state="uncertain",
            )
            raise
        except (APIError, AllEndpointsFailedError, TransportError) as exc:
            ledger.record_submission(
                key=None, request=request, endpoint=endpoint, sent_at=sent_at, error=str(exc)
            )
            raise
        finally:
            if outbox is not None:
                outbox.close()
        submission_id = ledger.record_submission(
            key=None,
            request=request,
            endpoint=endpoint,
            sent_at=sent_at,
            receipt=receipt,
            state="queued" if receipt is None else None,
        )
        if not state.json:
            for line in _describe(receipt, queued_as):
                state.out.text(line)
            state.out.text(f"Recorded in the ledger as #{submission_id}: {ledger.path}")
        request_id = receipt.service_request_id if receipt is not None else None
        waited: WaitTimeoutError | None = None
        if wait and receipt is not None and request_id is None and receipt.token:
            if not state.json:
                state.out.note(f"waiting up to {_state.seconds(wait_timeout)} for the id…")
            try:
                request_id = client.wait_for_id(receipt, timeout=wait_timeout)
            except WaitTimeoutError as exc:
                waited = exc
            else:
                ledger.record_token_resolved(receipt.token, request_id, now(), endpoint=endpoint)
                if not state.json:
                    state.out.text(f"Token {receipt.token} → service request {request_id}")
    if state.json:
        state.out.json(
            {
                "receipt": receipt,
                "queued_as": queued_as,
                "service_request_id": request_id,
                "ledger": {"path": str(ledger.path), "submission": submission_id},
            }
        )
    if waited is not None:
        raise waited
