"""Complete harvesting: every request in any span, each exactly once. No I/O here.

GeoReport v2 answers GET requests with at most about 1,000 requests, over at most 90 days, and
says nothing when it cut the answer short (spec §2.5; reference §10.29). A `Harvest` walks
any span anyway, one window's flow at a time, as `Client.iter_requests` and
`AsyncClient.iter_requests` drive it:

1. The span is cut into windows of at most ``max_window_days`` (90) days, oldest first.
2. A window whose answer reaches the server's cap (``Profile.result_cap``, 1,000 unless the
   profile says otherwise) was probably cut: it is split in half, and the halves asked in turn,
   until each answer fits.
3. A window of one minute that still reaches the cap is a burst the server cannot show by
   dates alone: it is paged through where the profile says the server pages, and otherwise
   reported with a `HarvestWarning` that names the window, never silently cut.
4. Where the profile says the server pages (``page``/``page_size`` or ``limit``/``offset``),
   each window is paged through until a short or empty page, or a page that repeats the
   previous one (some servers answer the last page again for any page past the end).
5. Every answer is re-filtered to its window and filters (servers that ignore filters, FMS;
   reference §10.30), items without an id are skipped (not created yet, §10.5), and a request
   seen in one window is not emitted again by the next (windows share their boundary second,
   since servers disagree on whether ``end_date`` is inclusive).

Memory stays flat however long the span: the flow holds one answer at a time, plus the ids on
the current boundary.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime, timedelta

from civic311._protocol import Call, Flow, list_requests_call
from civic311.errors import HarvestWarning, InvalidRequestError
from civic311.models import ServiceRequest

__all__ = ["Harvest", "HarvestWarning", "filter_sets", "keep"]

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


class Harvest:
    """The harvest of [*start*, *end*] (module docstring), as a stream of flows.

    Each `next_batch` is a flow (`civic311._protocol.Flow`: it yields calls, never anything
    else) that returns the next window's requests, or None once the span is done; the
    windows still to ask and the ids on the current boundary live here between flows.
    `emitted` counts the requests returned so far.

    With ``split_capped=False`` (a server that ignores date filters answers every window the
    same) capped windows are not split, only reported.

    Raises:
        InvalidRequestError: naive or reversed datetimes, or a bad cap or window.
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
        self._service_code = service_code
        self._status = status
        self._codes, self._statuses = filter_sets(service_code, status)
        self._result_cap = result_cap
        self._paging = paging
        self._page_size = page_size
        self._first_page = first_page
        self._date_zone = date_zone
        self._extra_params = tuple(extra_params)
        self._max_pages = max_pages
        self._split_capped = split_capped
        largest = timedelta(days=max_window_days)
        # The windows still to ask, as a stack: the next one to ask is last.
        self._pending: list[tuple[datetime, datetime]] = []
        cursor = end
        while cursor > start:
            self._pending.append((max(start, cursor - largest), cursor))
            cursor -= largest
        if not self._pending:
            self._pending.append((start, end))
        self.emitted = 0
        self._boundary: set[str] = set()  # ids already emitted at the current window's start
        self._undated: set[str] = set()  # ids without requested_datetime: no window owns them

    def _ask(
        self, lo: datetime, hi: datetime, page: Sequence[tuple[str, str]] = ()
    ) -> Call[list[ServiceRequest]]:
        return list_requests_call(
            service_code=self._service_code,
            status=self._status,
            start_date=lo,
            end_date=hi,
            date_zone=self._date_zone,
            extra_params=(*self._extra_params, *page),
        )

    def next_batch(self) -> Flow[tuple[ServiceRequest, ...] | None]:
        """The next window's requests not seen before (never empty), or None when done."""
        while self._pending:
            lo, hi = self._pending.pop()
            if self._paging == "none":
                found: list[ServiceRequest] = yield self._ask(lo, hi)
                capped = len(found) >= self._result_cap
                if capped and hi - lo > MIN_WINDOW and self._split_capped:
                    middle = lo + (hi - lo) / 2
                    self._pending.append((middle, hi))
                    self._pending.append((lo, middle))
                    continue
                if capped:
                    warnings.warn(
                        f"the server returned its cap of {self._result_cap} requests for the "
                        f"window {lo.isoformat()} .. {hi.isoformat()} and cannot page: "
                        "requests in that window may be missing",
                        HarvestWarning,
                        stacklevel=2,
                    )
                pages = [found]
            else:
                pages = yield from self._pages(lo, hi)
            batch = self._fresh(pages, lo, hi)
            if batch:
                self.emitted += len(batch)
                return tuple(batch)
        return None

    def _pages(self, lo: datetime, hi: datetime) -> Flow[list[list[ServiceRequest]]]:
        """Every page of the window [lo, hi], where the profile says the server pages."""
        pages: list[list[ServiceRequest]] = []
        previous: list[str] | None = None
        for number in range(self._max_pages):
            params = _page_params(self._paging, number, self._page_size, self._first_page)
            page: list[ServiceRequest] = yield self._ask(lo, hi, params)
            ids = [r.service_request_id or "" for r in page]
            if not page or ids == previous:
                break  # empty, or the last page answered again
            pages.append(page)
            previous = ids
            if self._page_size is not None and len(page) < self._page_size:
                break
        else:
            warnings.warn(
                f"stopped paging the window {lo.isoformat()} .. {hi.isoformat()} after "
                f"{self._max_pages} pages",
                HarvestWarning,
                stacklevel=2,
            )
        return pages

    def _fresh(
        self, pages: list[list[ServiceRequest]], lo: datetime, hi: datetime
    ) -> list[ServiceRequest]:
        """The window's requests that belong to it and were not emitted before."""
        batch: list[ServiceRequest] = []
        next_boundary: set[str] = set()
        seen_here: set[str] = set()
        for page in pages:
            for request in page:
                rid = request.service_request_id
                if rid is None or rid in self._boundary or rid in seen_here:
                    continue
                if not keep(request, lo, hi, self._codes, self._statuses):
                    continue
                when = request.requested_datetime
                if when is None:
                    if rid in self._undated:
                        continue
                    self._undated.add(rid)
                elif hi - when < timedelta(seconds=1):
                    next_boundary.add(rid)
                seen_here.add(rid)
                batch.append(request)
        self._boundary = next_boundary
        return batch


def _page_params(
    paging: str, number: int, page_size: int | None, first_page: int
) -> list[tuple[str, str]]:
    """The query parameters of page *number* (0-based) in the profile's paging strategy."""
    if paging == "page":
        params = [("page", str(first_page + number))]
        if page_size is not None:
            params.append(("page_size", str(page_size)))
        return params
    if paging == "offset":
        size = page_size or 100
        return [("limit", str(size)), ("offset", str(number * size))]
    raise InvalidRequestError("paging", f"unknown paging strategy {paging!r}")
