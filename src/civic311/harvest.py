"""Complete harvesting: every request in any span, each exactly once. No I/O here.

GeoReport v2 answers GET requests with at most about 1,000 requests, over at most 90 days, and
says nothing when it cut the answer short (spec §2.5; reference §10.29). A `Harvest` walks
any span anyway, one window's flow at a time, as `Client.iter_requests` and
`AsyncClient.iter_requests` drive it:

1. The harvest walks back from *end* to *start*; each ask spans the most the server allows
   (``max_window_days``, 90) below what is done.
2. Each span is asked through `civic311._protocol.paged_flow`: pages the server names in its
   headers (``X-Next-Page-URL``, ``Link: rel="next"``, 6aika) or the profile's paging
   (``page``/``page_size``, ``limit``/``offset``) are followed, so a paged window is complete.
3. An answer that may be cut (it reached the cap, ``Profile.result_cap``, 1,000 unless the
   profile says otherwise, or the server says there is more) is **slid** when it is sorted
   newest first (the spec's default; detected from the rows, never assumed): everything newer
   than its oldest second is complete, so it is kept and the next ask ends at that second,
   ids seen twice dropped (issue 13: N/cap + 1 calls; halving took about three times as many).
   An answer sorted otherwise is **halved**, and the halves asked in turn, older first.
4. What dates cannot separate is reported with a `HarvestWarning` that names the window, never
   silently cut: more than the cap within one second (sliding) or one minute (halving).
5. A server that ignores ``start_date``/``end_date`` answers rows none of which lie in the
   span asked, or the same rows for a part of a span as for the whole, rows outside the part
   included: the harvest notices, warns once,
   and stops sliding and splitting (issue 11 point 8: such a server made one day cost 4,095
   calls). Every window also has a budget of calls (`MAX_CALLS_PER_WINDOW`).
6. Every answer is re-filtered to its window and filters (servers that ignore filters, FMS;
   reference §10.30), items without an id are skipped (not created yet, §10.5), and a request
   seen near an edge is not emitted again by the next ask (windows share their boundary
   second, since servers disagree on whether ``end_date`` is inclusive).

Memory stays flat however long the span: the flow holds one answer at a time, plus the ids on
the window edges.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Generator, Sequence
from datetime import datetime, timedelta
from typing import Any

from civic311._protocol import (
    Call,
    Collected,
    Flow,
    PageRule,
    list_requests_call,
    paged_flow,
    request_key,
)
from civic311.errors import HarvestWarning, InvalidRequestError
from civic311.models import ServiceRequest

__all__ = ["MAX_CALLS_PER_WINDOW", "Harvest", "HarvestWarning", "filter_sets", "keep"]

#: The smallest window civic311 splits down to before it pages or warns.
MIN_WINDOW = timedelta(minutes=1)


def filter_sets(
    service_code: str | Sequence[str] | None, status: str | Sequence[str] | None
) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """The service_code and status filters as lower-case sets for `keep` (None: no filter)."""

    def norm(value: str | Sequence[str] | None) -> frozenset[str] | None:
        if value is None:
            return None
        parts = value.split(",") if isinstance(value, str) else list(value)
        return frozenset(p.strip().lower() for p in parts if p.strip()) or None

    return norm(service_code), norm(status)


def keep(
    request: ServiceRequest,
    start: datetime,
    end: datetime,
    codes: frozenset[str] | None,
    statuses: frozenset[str] | None,
) -> bool:
    """Whether *request* belongs to the window [start, end] and the filters (re-filtering)."""
    when = request.requested_datetime
    if when is not None and not start <= when <= end:
        return False
    if codes is not None and (request.service_code or "").lower() not in codes:
        return False
    if statuses is not None:
        status = request.status
        if status is None:
            return False
        wanted_closed = "closed" in statuses
        wanted_open = "open" in statuses
        plain = status.normalized in statuses
        if not (plain or (wanted_closed and status.is_closed) or (wanted_open and status.is_open)):
            return False
    return True


#: How many calls one top-level window (``max_window_days``) may take before the harvest
#: gives up on it with a warning: 2,000 answers of 1,000 rows by sliding is two million
#: requests in 90 days, far beyond any city on record, while a server that defeats every
#: strategy cannot hold a harvest for ever (issue 11 point 8: 4,095 calls for one day).
MAX_CALLS_PER_WINDOW = 2_000

_SECOND = timedelta(seconds=1)


def _floor_second(when: datetime) -> datetime:
    return when.replace(microsecond=0)


def _newest_first(rows: Sequence[ServiceRequest]) -> datetime | None:
    """The oldest requested_datetime of *rows* when they are sorted newest first (the spec's
    default order, FixMyStreet's and FakeCity's), else None. Every row must be dated."""
    oldest: datetime | None = None
    for row in rows:
        when = row.requested_datetime
        if when is None or (oldest is not None and when > oldest):
            return None
        oldest = when
    return oldest


Batch = tuple[ServiceRequest, ...]


class Harvest:
    """The harvest of [*start*, *end*] (module docstring), as a stream of flows.

    Each `next_batch` is a flow (`civic311._protocol.Flow`: it yields calls, never anything
    else) that returns the next answer's requests not seen before, or None once the span is
    done; where the walk stands, and the ids on its edges, live here between flows.
    `emitted` counts the requests returned so far.

    With ``split_capped=False`` capped windows are neither slid nor split, only reported.

    Raises:
        InvalidRequestError: naive or reversed datetimes, or a bad cap, window or paging.
    """

    def __init__(
        self,
        *,
        start: datetime,
        end: datetime,
        service_code: str | Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
        result_cap: int = 1000,
        max_window_days: int = 90,
        paging: str = "none",
        page_size: int | None = None,
        first_page: int = 1,
        date_zone: bool = True,
        extra_params: Sequence[tuple[str, str]] = (),
        max_pages: int = 10_000,
        split_capped: bool = True,
        max_calls_per_window: int = MAX_CALLS_PER_WINDOW,
    ) -> None:
        for name, value in (("start_date", start), ("end_date", end)):
            if not isinstance(value, datetime):
                raise InvalidRequestError(name, f"must be a datetime, not {type(value).__name__}")
            if value.tzinfo is None or value.utcoffset() is None:
                raise InvalidRequestError(name, f"{value.isoformat()} is naive; give it a timezone")
        if end < start:
            raise InvalidRequestError("end_date", "is before start_date")
        if result_cap < 1 or max_window_days < 1:
            raise InvalidRequestError("profile", "result_cap and max_window_days must be positive")
        if paging not in ("none", "page", "offset"):
            raise InvalidRequestError("paging", f"unknown paging strategy {paging!r}")
        rule = PageRule(
            style=paging,  # type: ignore[arg-type]  # checked just above
            page_size=page_size,
            first_page=first_page,
            result_cap=result_cap,
            max_pages=max_pages,
        )
        self._walk = _walk(
            start=start,
            end=end,
            service_code=service_code,
            status=status,
            result_cap=result_cap,
            max_window_days=max_window_days,
            rule=rule,
            date_zone=date_zone,
            extra_params=tuple(extra_params),
            split_capped=split_capped,
            max_calls_per_window=max_calls_per_window,
        )
        self.emitted = 0

    def next_batch(self) -> Flow[Batch | None]:
        """The next answer's requests not seen before (never empty), or None when done."""
        reply: Any = None
        failure: Exception | None = None
        while True:
            try:
                step = self._walk.throw(failure) if failure else self._walk.send(reply)
            except StopIteration:
                return None
            if isinstance(step, tuple):
                self.emitted += len(step)
                return step
            try:
                reply, failure = (yield step), None
            except Exception as exc:  # a failed call: the walk sees it where it asked
                reply, failure = None, exc


def _walk(
    *,
    start: datetime,
    end: datetime,
    service_code: str | Sequence[str] | None,
    status: str | Sequence[str] | None,
    result_cap: int,
    max_window_days: int,
    rule: PageRule,
    date_zone: bool,
    extra_params: tuple[tuple[str, str], ...],
    split_capped: bool,
    max_calls_per_window: int,
) -> Generator[Call[list[ServiceRequest]] | Batch, Any, None]:
    """The harvest's walk: yields the calls to make and each batch of new requests."""
    codes, statuses = filter_sets(service_code, status)
    largest = timedelta(days=max_window_days)
    windows = max(1, -(-(end - start) // largest))
    budget = max_calls_per_window * windows
    state = _Harvest(codes, statuses)

    def ask(lo: datetime, hi: datetime) -> Call[list[ServiceRequest]]:
        return list_requests_call(
            service_code=service_code,
            status=status,
            start_date=lo,
            end_date=hi,
            date_zone=date_zone,
            extra_params=extra_params,
        )

    def fetch(lo: datetime, hi: datetime) -> Generator[Any, Any, Collected[ServiceRequest]]:
        got: Collected[ServiceRequest] = yield from paged_flow(ask(lo, hi), rule, request_key)
        state.calls += got.pages
        return got

    # The frontier moves from *end* back to *start*: everything newer than ``hi`` is done.
    # Each ask spans the most the server allows (max_window_days) below ``hi``; an answer that
    # fits finishes its span, a capped one sorted newest first finishes everything newer than
    # its oldest second, and the next ask ends there (a slide, issue 13). So every call but the
    # last brings about a full answer: N/cap + 1 calls, not N/cap + one per 90-day window.
    hi = end
    parent: int | None = None  # the fingerprint of the capped answer before this ask
    first = True
    while first or hi > start:
        first = False
        if state.calls >= budget:
            state.warn(
                f"gave up after {state.calls} calls, the budget for {windows} window(s) of "
                f"{max_window_days} days: requests from {start.isoformat()} to "
                f"{hi.isoformat()} may be missing"
            )
            break
        lo = max(start, hi - largest)
        got = yield from fetch(lo, hi)
        rows = got.rows
        ids = _fingerprint(rows)
        if got.cut and not state.dates_ignored and _ignores_dates(rows, ids, parent, lo, hi):
            state.dates_ignored = True
            state.warn(
                f"the server answers the same {len(rows)} requests whatever the dates (asked "
                f"{lo.isoformat()} .. {hi.isoformat()}): it ignores start_date and end_date, "
                "so a harvest cannot see past what it shows; requests may be missing"
            )
        if not got.cut or state.dates_ignored or not split_capped:
            if got.cut and not state.dates_ignored:
                _warn_cut(state.warn, got, result_cap, lo, hi)
            batch = state.take(rows, lo, hi, None)
            del rows, got  # hold one answer at a time: peak memory stays flat (bench/harvest.py)
            if batch:
                yield batch
            del batch
            hi, parent = lo, None
            continue
        oldest = _newest_first(rows)
        if oldest is None:
            # Not sorted newest first: halve this span until each part fits (older first).
            del rows, got
            yield from _halve(state, fetch, lo, hi, ids, result_cap)
            hi, parent = lo, None
            continue
        # Sorted newest first: everything newer than its oldest second is here. Keep it, and
        # ask again ending at that second; the ids seen in it are dropped (issue 13).
        second = _floor_second(oldest)
        if second + _SECOND < hi:
            # Never below this ask's start: rows older than it came from a server that does
            # not honour start_date, and the next ask (its own span) settles that.
            slide_to = max(second + _SECOND, lo)
        else:
            state.warn(
                f"the server returned its cap of {len(rows)} requests within the second "
                f"{second.isoformat()}: requests in that second may be missing"
            )
            slide_to = max(second, lo)
        batch = state.take(rows, lo, hi, slide_to)
        del rows, got
        if batch:
            yield batch
        del batch
        state.prune(slide_to)
        hi, parent = slide_to, ids
        if hi <= lo and lo == start:
            break


class _Harvest:
    """What a harvest remembers between answers: ids near edges, counts, warnings."""

    def __init__(self, codes: frozenset[str] | None, statuses: frozenset[str] | None) -> None:
        self.codes = codes
        self.statuses = statuses
        # Ids already emitted whose requested_datetime lies within a second of an edge a
        # later ask shares (asks share their boundary second, since servers disagree on
        # whether end_date is inclusive; a slide re-asks its oldest second). Only rows near
        # edges can come twice, so memory stays flat however many requests the span holds.
        self.edge_seen: dict[str, datetime] = {}
        self.undated: set[str] = set()  # ids without requested_datetime: no window owns them
        self.emitted = 0
        self.calls = 0
        self.dates_ignored = False

    def warn(self, message: str) -> None:
        warnings.warn(message, HarvestWarning, stacklevel=4)

    def take(
        self,
        rows: Sequence[ServiceRequest],
        lo: datetime,
        hi: datetime,
        slide_to: datetime | None,
    ) -> tuple[ServiceRequest, ...]:
        """The rows of an answer for [lo, hi] not emitted before, re-filtered."""
        batch: list[ServiceRequest] = []
        for request in rows:
            rid = request.service_request_id
            if rid is None or rid in self.edge_seen:
                continue
            if not keep(request, lo, hi, self.codes, self.statuses):
                continue
            when = request.requested_datetime
            if when is None:
                if rid in self.undated:
                    continue
                self.undated.add(rid)
            elif (
                hi - when < _SECOND
                or when - lo < _SECOND
                or (slide_to is not None and when >= slide_to - _SECOND)
            ):
                self.edge_seen[rid] = when
            batch.append(request)
        self.emitted += len(batch)
        return tuple(batch)

    def prune(self, hi: datetime) -> None:
        """Forget edge ids newer than any later ask can return (asks end at or below *hi*)."""
        if len(self.edge_seen) > 64:
            limit = hi + _SECOND
            self.edge_seen = {k: v for k, v in self.edge_seen.items() if v <= limit}


def _fingerprint(rows: Sequence[ServiceRequest]) -> int:
    """The ids of an answer as one number: equal answers, equal numbers (and the rest is
    vanishingly unlikely to collide); a whole id set would be a second answer in memory."""
    return hash(frozenset(r.service_request_id or "" for r in rows))


def _ignores_dates(
    rows: Sequence[ServiceRequest],
    ids: int,
    parent: int | None,
    lo: datetime,
    hi: datetime,
) -> bool:
    """Whether a capped answer for [lo, hi] shows a server ignoring start_date/end_date: no row
    inside the span at all, or the very rows of the bigger span before it with some outside
    this one (a server honouring dates answers a part with rows of that part)."""
    dated = [r.requested_datetime for r in rows if r.requested_datetime is not None]
    if not dated:
        return False
    outside = [not lo - _SECOND <= when <= hi + _SECOND for when in dated]
    if all(outside):
        return True
    return parent is not None and ids == parent and any(outside)


def _halve(
    state: _Harvest,
    fetch: Callable[[datetime, datetime], Generator[Any, Any, Collected[ServiceRequest]]],
    lo: datetime,
    hi: datetime,
    ids: int,
    result_cap: int,
) -> Generator[Any, Any, None]:
    """Harvest [lo, hi], whose answer was capped and not sorted newest first, by halves."""
    segments: list[tuple[datetime, datetime, int]] = []
    middle = _floor_second(lo + (hi - lo) / 2)
    if hi - lo > MIN_WINDOW and lo < middle < hi:
        segments = [(middle, hi, ids), (lo, middle, ids)]
    else:
        segments = []
        _warn_cut(state.warn, Collected([], 1, capped=True), result_cap, lo, hi)
    while segments:
        part_lo, part_hi, parent = segments.pop()
        got = yield from fetch(part_lo, part_hi)
        part_ids = _fingerprint(got.rows)
        if (
            got.cut
            and not state.dates_ignored
            and _ignores_dates(got.rows, part_ids, parent, part_lo, part_hi)
        ):
            state.dates_ignored = True
            state.warn(
                f"the server answers the same {len(got.rows)} requests whatever the dates "
                f"(asked {part_lo.isoformat()} .. {part_hi.isoformat()}): it ignores "
                "start_date and end_date, so a harvest cannot see past what it shows; "
                "requests may be missing"
            )
        middle = _floor_second(part_lo + (part_hi - part_lo) / 2)
        if got.cut and not state.dates_ignored:
            if part_hi - part_lo > MIN_WINDOW and part_lo < middle < part_hi:
                segments.append((middle, part_hi, part_ids))
                segments.append((part_lo, middle, part_ids))
                continue
            _warn_cut(state.warn, got, result_cap, part_lo, part_hi)
        batch = state.take(got.rows, part_lo, part_hi, None)
        del got
        if batch:
            yield batch
        del batch


def _warn_cut(
    warn: Callable[[str], None],
    got: Collected[ServiceRequest],
    result_cap: int,
    lo: datetime,
    hi: datetime,
) -> None:
    why = got.reason or f"returned its cap of {result_cap} requests"
    warn(
        f"the server {why} for the window {lo.isoformat()} .. {hi.isoformat()} and cannot "
        "page: requests in that window may be missing"
    )
