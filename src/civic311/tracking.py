"""Tracking: what changed on the requests you filed. No I/O here.

`Client.track` refreshes a set of requests once; `Client.watch` keeps doing so and yields
each `StatusChange` as it happens, until every request is closed or a deadline passes. Both
drive a `Watch`, one flow per round (and one per pause between rounds), which:

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

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from civic311._protocol import Flow, Sleep, get_token_call
from civic311.errors import (
    Civic311Error,
    InvalidRequestError,
    RateLimitedError,
    UntrackableReceiptError,
)
from civic311.models import Receipt, ServiceRequest, Status, TokenStatus

__all__ = [
    "StatusChange",
    "StatusStore",
    "Tracked",
    "Watch",
    "split_items",
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


class Watch:
    """Tracking of *items* (module docstring), as a stream of flows: `round` and `pause`.

    `round` is a flow (`civic311._protocol.Flow`) that resolves tokens, looks the ids up
    through *lookup* (a flow, composed with ``yield from``) and returns the `Tracked` of that
    round; `pause` is the flow between rounds, which returns False instead of waiting when
    every request is closed or the *deadline* (seconds after *started*) would pass first. The
    last states seen, the tokens still pending and the growing interval live here between
    flows. *known* gives the last state seen of an id before this watch (from a ledger), or
    None; *now* returns the wall time. Tokens a round turned into ids are listed in
    `resolved` (token, id) until `take_resolved` hands them over.

    Raises:
        InvalidRequestError: bad items or intervals.
        UntrackableReceiptError: a receipt with neither id nor token.
    """

    def __init__(
        self,
        items: object,
        *,
        lookup: Callable[[Sequence[str]], Flow[list[ServiceRequest]]],
        known: Callable[[str], Seen | None],
        now: Callable[[], datetime],
        started: float,
        interval: float,
        max_interval: float,
        deadline: float | None,
    ) -> None:
        if interval <= 0 or max_interval < interval:
            raise InvalidRequestError("interval", "must be positive and at most max_interval")
        self._ids, self._tokens = split_items(items)
        self._lookup = lookup
        self._known = known
        self._now = now
        self._started = self._monotonic = started
        self._interval = self._wait = interval
        self._max_interval = max_interval
        self._deadline = deadline
        self._last: dict[str, Seen | None] = {}
        self._rate_limited: float | None = None
        self.resolved: list[tuple[str, str]] = []

    def take_resolved(self) -> list[tuple[str, str]]:
        """The (token, id) pairs resolved since the last call, and forget them."""
        taken, self.resolved = self.resolved, []
        return taken

    def round(self) -> Flow[Tracked]:
        """One round: tokens to ids, ids looked up in batches, changes since last seen."""
        still_pending: list[str] = []
        for token in self._tokens:
            try:
                status: TokenStatus = yield get_token_call(token)
            except Civic311Error:
                still_pending.append(token)  # a 404 or a failure: ask again next round
                continue
            if status.service_request_id:
                self._ids.append(status.service_request_id)
                self.resolved.append((status.token, status.service_request_id))
            else:
                still_pending.append(token)
        self._tokens = still_pending
        found: list[ServiceRequest] = []
        self._rate_limited = None
        if self._ids:
            try:
                found = yield from self._lookup(tuple(self._ids))
            except RateLimitedError as exc:
                self._rate_limited = exc.retry_after or self._wait
        observed = self._now()
        changes: list[StatusChange] = []
        for request in found:
            rid = request.service_request_id
            if rid is None:
                continue
            state = _state(request)
            before = self._last[rid] if rid in self._last else self._known(rid)
            if before != state:
                changes.append(
                    StatusChange(
                        service_request_id=rid,
                        status=request.status,
                        previous=Status(before[0]) if before and before[0] else None,
                        status_notes=request.status_notes,
                        updated_datetime=request.updated_datetime,
                        observed_at=observed,
                        request=request,
                        first_seen=before is None,
                    )
                )
            self._last[rid] = state
        returned = {r.service_request_id for r in found}
        missing = (
            ()
            if self._rate_limited is not None
            else tuple(i for i in self._ids if i not in returned)
        )
        return Tracked(
            requests=tuple(found),
            changes=tuple(changes),
            pending_tokens=tuple(self._tokens),
            missing=missing,
        )

    def pause(self, tracked: Tracked) -> Flow[bool]:
        """Wait before the next round; False (at once) when there is none to wait for.

        Done when every request is closed and no token is pending, or when the wait would end
        past the deadline. The wait is *interval* after a round with changes, else half as
        long again as the last, up to *max_interval*; at least the Retry-After of a 429.
        """
        open_left = [r for r in tracked.requests if not r.is_closed]
        if not self._tokens and self._ids and not open_left and self._rate_limited is None:
            return False
        if tracked.changes:
            self._wait = self._interval
        else:
            self._wait = min(self._wait * 1.5, self._max_interval)
        pause = self._wait
        if self._rate_limited is not None:
            pause = max(pause, self._rate_limited)
        if self._deadline is not None and self._monotonic + pause - self._started > self._deadline:
            return False
        self._monotonic = yield Sleep(pause)
        return True
