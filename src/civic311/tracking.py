"""Tracking: what changed on the requests you filed. No I/O here.

`Client.track` refreshes a set of requests once; `Client.watch` keeps doing so and yields
each `StatusChange` as it happens, until every request is closed or a deadline passes. Both
run `watch_flow`, which:

- turns receipts and tokens into ids first (a token still pending is asked again next round);
- looks requests up in batches (`Client.get_requests`: comma-separated ids, URLs under 2,000
  characters);
- reports a change when a request's status, status_notes or updated_datetime differs from the
  last one seen (from the ledger, when one is given, so a watch resumed tomorrow does not
  report old news as new);
- waits ``interval`` seconds between rounds, growing by half each quiet round up to
  ``max_interval`` (no point asking every minute about a pothole nobody has touched for a week),
  back to ``interval`` after a change; a 429 waits what the city's Retry-After says, at least.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import attrs

from civic311._protocol import Sleep
from civic311.errors import (
    Civic311Error,
    InvalidRequestError,
    RateLimitedError,
    UntrackableReceiptError,
)
from civic311.models import Receipt, ServiceRequest, Status, TokenStatus

__all__ = [
    "Lookup",
    "Resolve",
    "StatusChange",
    "StatusStore",
    "Tracked",
    "split_items",
    "watch_flow",
]

#: What a request's state is, for change detection.
Seen = tuple[str | None, str | None, datetime | None]


@runtime_checkable
class StatusStore(Protocol):
    """Where `Client.track` / `Client.watch` keep what they saw (``ledger=``), so a watch
    resumed tomorrow reports only what changed since. `civic311.ledger.Ledger` is one.

    Every method takes the *endpoint* (the client's primary endpoint URL): a request id means
    something only at one city, and city A's request "42" is not city B's.
    """

    def last_seen(self, endpoint: str, service_request_id: str) -> Seen | None:
        """(status, status_notes, updated_datetime) last recorded for the request, or None."""
        ...

    def record_seen(self, endpoint: str, request: ServiceRequest, observed_at: datetime) -> None:
        """Record the request as seen at *observed_at* (a store may keep only changes)."""
        ...

    def record_resolved(
        self, endpoint: str, token: str, service_request_id: str, at: datetime
    ) -> None:
        """Record that the city turned *token* into *service_request_id*."""
        ...


@attrs.frozen
class StatusChange:
    """A request observed in a new state.

    Attributes:
        service_request_id: Which request.
        status: Its status now.
        previous: Its status when last seen (None the first time it is seen).
        status_notes: The city's notes now.
        updated_datetime: When the city last changed it.
        observed_at: When civic311 saw the change.
        request: The full request as the city answered.
        first_seen: True when this is the first observation (not a change from a known state).
    """

    service_request_id: str
    status: Status | None
    previous: Status | None
    status_notes: str | None
    updated_datetime: datetime | None
    observed_at: datetime
    request: ServiceRequest = attrs.field(eq=False, repr=False)
    first_seen: bool = False

    @property
    def closed(self) -> bool:
        """Whether the request is now finished."""
        return self.status is not None and self.status.is_closed


@attrs.frozen
class Tracked:
    """What one `Client.track` round found.

    Attributes:
        requests: The requests as the city answers now, in the order asked.
        changes: The ones that changed since last seen (or were seen for the first time).
        pending_tokens: Tokens the city has not turned into ids yet.
        missing: Ids the city did not return.
    """

    requests: tuple[ServiceRequest, ...]
    changes: tuple[StatusChange, ...]
    pending_tokens: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


@attrs.frozen
class Lookup:
    """A flow step: look these ids up (the driver replies with list[ServiceRequest])."""

    ids: tuple[str, ...]


@attrs.frozen
class Resolve:
    """A flow step: look this token up (the driver replies with a TokenStatus)."""

    token: str


def split_items(items: object) -> tuple[list[str], list[str]]:
    """(ids, tokens) of what was given to track: ids, receipts, or a mix.

    Raises:
        InvalidRequestError: not a sequence of ids and receipts.
        UntrackableReceiptError: a receipt with neither id nor token (blackbox).
    """
    if isinstance(items, str | Receipt):
        items = [items]
    if not isinstance(items, Sequence):
        raise InvalidRequestError("items", "must be ids or receipts (a list)")
    ids: list[str] = []
    tokens: list[str] = []
    for item in items:
        if isinstance(item, Receipt):
            if item.service_request_id:
                ids.append(item.service_request_id)
            elif item.token:
                tokens.append(item.token)
            else:
                raise UntrackableReceiptError(
                    "a receipt has neither service_request_id nor token (blackbox service): "
                    "it cannot be tracked"
                )
        elif isinstance(item, str) and item.strip():
            ids.append(item.strip())
        else:
            raise InvalidRequestError("items", f"not an id or a Receipt: {item!r}")
    return list(dict.fromkeys(ids)), list(dict.fromkeys(tokens))


def _state(request: ServiceRequest) -> Seen:
    return (
        str(request.status) if request.status is not None else None,
        request.status_notes,
        request.updated_datetime,
    )


def watch_flow(
    items: object,
    *,
    known: Callable[[str], Seen | None],
    now: Any,
    started: float,
    interval: float,
    max_interval: float,
    deadline: float | None,
    once: bool = False,
) -> Generator[Lookup | Resolve | Sleep | StatusChange, Any, Tracked]:
    """Refresh *items* until all are closed or *deadline* seconds pass (module docstring).

    *known* gives the last state seen of an id (from a ledger), or None; *now* returns the
    wall time.
    With ``once=True`` it makes one round (that is `Client.track`). Changes are yielded as
    they are found (the driver replies None); the last round's `Tracked` is returned.

    Raises:
        InvalidRequestError: bad items or intervals.
    """
    if interval <= 0 or max_interval < interval:
        raise InvalidRequestError("interval", "must be positive and at most max_interval")
    ids, tokens = split_items(items)
    last: dict[str, Seen | None] = {}
    wait = interval
    monotonic = started
    while True:
        still_pending: list[str] = []
        for token in tokens:
            try:
                status: TokenStatus = yield Resolve(token)
            except Civic311Error:
                still_pending.append(token)  # a 404 or a failure: ask again next round
                continue
            if status.service_request_id:
                ids.append(status.service_request_id)
            else:
                still_pending.append(token)
        tokens = still_pending
        found: list[ServiceRequest] = []
        rate_limited: float | None = None
        if ids:
            try:
                found = yield Lookup(tuple(ids))
            except RateLimitedError as exc:
                rate_limited = exc.retry_after or wait
        observed = now()
        changes: list[StatusChange] = []
        for request in found:
            rid = request.service_request_id
            if rid is None:
                continue
            state = _state(request)
            before = last[rid] if rid in last else known(rid)
            if before != state:
                change = StatusChange(
                    service_request_id=rid,
                    status=request.status,
                    previous=Status(before[0]) if before and before[0] else None,
                    status_notes=request.status_notes,
                    updated_datetime=request.updated_datetime,
                    observed_at=observed,
                    request=request,
                    first_seen=before is None,
                )
                changes.append(change)
                yield change
            last[rid] = state
        returned = {r.service_request_id for r in found}
        result = Tracked(
            requests=tuple(found),
            changes=tuple(changes),
            pending_tokens=tuple(tokens),
            missing=tuple(i for i in ids if i not in returned) if rate_limited is None else (),
        )
        open_left = [r for r in found if not r.is_closed]
        if once or (not tokens and ids and not open_left and rate_limited is None):
            return result
        wait = interval if changes else min(wait * 1.5, max_interval)
        pause = max(wait, rate_limited) if rate_limited is not None else wait
        if deadline is not None and monotonic + pause - started > deadline:
            return result
        monotonic = yield Sleep(pause)
