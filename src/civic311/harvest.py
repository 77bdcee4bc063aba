"""Complete harvesting: every request in any span, each exactly once. No I/O here.

GeoReport v2 answers GET requests with at most about 1,000 requests, over at most 90 days, and
says nothing when it cut the answer short (spec §2.5; reference §10.29). `harvest_flow` walks
any span anyway, as `Client.iter_requests` and `AsyncClient.iter_requests` drive it:

1. The span is cut into windows of at most ``max_window_days`` (90) days, oldest first.
2. Each window is asked through `civic311._protocol.paged_flow`: pages the server names in its
   headers (``X-Next-Page-URL``, ``Link: rel="next"``, 6aika) or the profile's paging
   (``page``/``page_size``, ``limit``/``offset``) are followed, so a paged window is complete.
3. An answer that may be cut (it reached the cap, ``Profile.result_cap``, 1,000 unless the
   profile says otherwise, or the server says there is more) is **slid** when it is sorted
   newest first (the spec's default; detected from the rows, never assumed): everything newer
   than its oldest second is complete, so it is kept and the window is asked again ending at
   that second, ids seen twice dropped (issue 13: N/cap + 1 calls instead of halving's ~3×).
   An answer sorted otherwise is **halved**, and the halves asked in turn, older first.
4. What dates cannot separate is reported with a `HarvestWarning` that names the window, never
   silently cut: more than the cap within one second (sliding) or one minute (halving).
5. A server that ignores ``start_date``/``end_date`` answers the same rows for a part of a
   window as for the whole, rows outside the part included: the harvest notices, warns once,
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

import attrs

from civic311._protocol import Call, Collected, PageRule, list_requests_call, paged_flow
from civic311.errors import HarvestWarning, InvalidRequestError
from civic311.models import ServiceRequest

__all__ = [
    "MAX_CALLS_PER_WINDOW",
    "Emit",
    "HarvestWarning",
    "filter_sets",
    "harvest_flow",
    "keep",
]

#: The smallest window civic311 splits down to before it pages or warns.
MIN_WINDOW = timedelta(minutes=1)


@attrs.frozen
class Emit:
    """A flow step: hand these requests to the caller (the driver replies None)."""

    requests: tuple[ServiceRequest, ...]


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


def harvest_flow(
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
) -> Generator[Call[list[ServiceRequest]] | Emit, Any, int]:
    """The harvest of [*start*, *end*] (module docstring); returns how many were emitted.

    With ``split_capped=False`` capped windows are neither slid nor split, only reported.

    Raises:
        InvalidRequestError: naive or reversed datetimes, or a bad cap or window.
    """
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
        style=paging,  # type: ignore[arg-type]
        page_size=page_size,
        first_page=first_page,
        result_cap=result_cap,
        max_pages=max_pages,
    )
    codes, statuses = filter_sets(service_code, status)
    largest = timedelta(days=max_window_days)
    # The top-level windows, oldest first (the next one to ask is last).
    windows: list[tuple[datetime, datetime]] = []
    cursor = end
    while cursor > start:
        windows.append((max(start, cursor - largest), cursor))
        cursor -= largest
    if not windows:
        windows.append((start, end))
    emitted = 0
    # Ids already emitted whose requested_datetime lies within a second of an edge that a
    # later ask shares (windows share their boundary second: servers disagree on whether
    # end_date is inclusive; a slide re-asks its oldest second). Only rows near edges can
    # come twice, so memory stays flat however many requests the span holds.
    edge_seen: dict[str, datetime] = {}
    undated: set[str] = set()  # ids without requested_datetime: no window owns them
    dates_ignored = False

    def ask(lo: datetime, hi: datetime) -> Call[list[ServiceRequest]]:
        return list_requests_call(
            service_code=service_code,
            status=status,
            start_date=lo,
            end_date=hi,
            date_zone=date_zone,
            extra_params=extra_params,
        )

    def warn(message: str) -> None:
        warnings.warn(message, HarvestWarning, stacklevel=3)

    while windows:
        top_lo, top_hi = windows.pop()
        # Segments of this window still to ask, each with the ids of the capped answer it
        # came from (to notice a server answering the same rows whatever the dates).
        segments: list[tuple[datetime, datetime, frozenset[str] | None]] = [(top_lo, top_hi, None)]
        calls = 0
        while segments:
            lo, hi, parent = segments.pop()
            if calls >= max_calls_per_window:
                warn(
                    f"gave up on the window {top_lo.isoformat()} .. {top_hi.isoformat()} after "
                    f"{calls} calls: the server would not show it in fewer; requests in "
                    f"{lo.isoformat()} .. {hi.isoformat()} and {len(segments)} more part(s) "
                    "may be missing"
                )
                break
            got: Collected[ServiceRequest] = yield from paged_flow(
                ask(lo, hi), rule, _request_key
            )
            calls += got.pages
            rows = got.rows
            ids = frozenset(r.service_request_id or "" for r in rows)
            outside = any(
                r.requested_datetime is not None
                and not lo - _SECOND <= r.requested_datetime <= hi + _SECOND
                for r in rows
            )
            if got.cut and parent is not None and ids == parent and outside and not dates_ignored:
                dates_ignored = True
                warn(
                    f"the server answers the same {len(rows)} requests whatever the dates "
                    f"(asked {lo.isoformat()} .. {hi.isoformat()}): it ignores start_date and "
                    "end_date, so a harvest cannot see past what it shows; requests may be "
                    "missing"
                )
            # What to ask next, when this answer may be cut.
            slide_to: datetime | None = None
            if got.cut and split_capped and not dates_ignored:
                oldest = _newest_first(rows)
                middle = _floor_second(lo + (hi - lo) / 2)
                if oldest is not None:
                    # Sorted newest first: everything newer than its oldest second is here.
                    # Keep it, and ask again ending at that second (issue 13).
                    second = _floor_second(oldest)
                    if second + _SECOND < hi:
                        slide_to = second + _SECOND
                    else:
                        warn(
                            f"the server returned its cap of {len(rows)} requests within the "
                            f"second {second.isoformat()}: requests in that second may be "
                            "missing"
                        )
                        if second > lo:
                            slide_to = second
                    if slide_to is not None:
                        segments.append((lo, slide_to, ids))
                elif hi - lo > MIN_WINDOW and lo < middle < hi:
                    # Not sorted newest first: halve; the capped answer is dropped and each
                    # half asked in turn, older first.
                    segments.append((middle, hi, ids))
                    segments.append((lo, middle, ids))
                    continue
                else:
                    _warn_cut(warn, got, result_cap, lo, hi)
            elif got.cut and not dates_ignored:
                _warn_cut(warn, got, result_cap, lo, hi)
            batch: list[ServiceRequest] = []
            for request in rows:
                rid = request.service_request_id
                if rid is None or rid in edge_seen:
                    continue
                if not keep(request, lo, hi, codes, statuses):
                    continue
                when = request.requested_datetime
                if when is None:
                    if rid in undated:
                        continue
                    undated.add(rid)
                elif (
                    hi - when < _SECOND
                    or when - lo < _SECOND
                    or (slide_to is not None and when >= slide_to - _SECOND)
                ):
                    edge_seen[rid] = when
                batch.append(request)
            if batch:
                emitted += len(batch)
                yield Emit(tuple(batch))
        # Only the ids on this window's upper edge can come again (in the next window).
        edge_seen = {k: v for k, v in edge_seen.items() if top_hi - v < _SECOND}
    return emitted


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


def _request_key(request: ServiceRequest) -> str | None:
    return request.service_request_id
