"""Response-time statistics: how long does the city take, per service?

Feed it harvested `ServiceRequest`s (a list, or a generator straight from
`Client.iter_requests`: one pass, nothing is kept but counters and durations)::

    stats, total = summarize(client.iter_requests(start_date=..., end_date=...))
    print(format_table(stats, total=total))

For each service_code (with the service_name when the city gave one):

- **count, open, closed**: closed is `Status.is_closed` (closed, fixed, duplicate…); every
  other request, including one with no status, is open;
- **median and 90th percentile time to close**: ``updated_datetime - requested_datetime`` of
  the closed requests that have both. GeoReport v2 has no "closed at" field; a closed request's
  last update is the best stand-in (a later note on a closed request would stretch it). A
  negative duration (updated before requested: bad data) is left out and counted in
  ``anomalies``. Percentiles interpolate linearly between the nearest ranks (the "inclusive"
  method of Excel's PERCENTILE.INC and numpy's default), so the median of an even count is the
  mean of the middle two;
- **closed by expected_datetime**: among closed requests that have an expected_datetime (and an
  updated_datetime to compare it with), the share closed no later than expected.

Memory. Counters are per service; the percentiles need the durations themselves, so each service
keeps one 8-byte integer (microseconds, in an ``array``) per closed request with a duration —
about 8 MB per million closed requests, and nothing for open ones. No request object is kept.
Duplicates are not detected (that would mean remembering every id): pass each request once,
as `iter_requests` does.

Pure code: no I/O, no clock.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from datetime import timedelta

import attrs

from civic311.errors import InvalidRequestError
from civic311.models import ServiceRequest

__all__ = [
    "ServiceStats",
    "StatsCollector",
    "format_duration",
    "format_table",
    "percentile",
    "service_stats",
    "summarize",
]

#: The service_name `StatsCollector.total` gives the all-services row.
TOTAL_NAME = "All services"

_MICROSECOND = timedelta(microseconds=1)


@attrs.frozen
class ServiceStats:
    """Response-time statistics of one service (or of all of them: `StatsCollector.total`).

    Attributes:
        service_code: The service; None for requests that named none (and for the total row).
        service_name: The service's name, as the first request that gave one said it.
        count: Requests seen.
        open: Requests not closed (`Status.is_closed` False, or no status at all).
        closed: Requests the city considers finished.
        median_to_close: The median time to close, or None when no closed request had both
            datetimes.
        p90_to_close: The 90th percentile time to close (nine in ten closed within it).
        durations: Closed requests with a usable duration (the sample behind the percentiles).
        anomalies: Closed requests whose updated_datetime is before their requested_datetime;
            left out of the percentiles.
        with_expected: Closed requests with both an expected_datetime and an updated_datetime.
        closed_by_expected: Those of them closed no later than their expected_datetime.
    """

    service_code: str | None
    service_name: str | None
    count: int
    open: int
    closed: int
    median_to_close: timedelta | None
    p90_to_close: timedelta | None
    durations: int = 0
    anomalies: int = 0
    with_expected: int = 0
    closed_by_expected: int = 0

    @property
    def share_closed_by_expected(self) -> float | None:
        """The share (0 to 1) of closed requests with an expected_datetime that were closed by
        it; None when none had one."""
        if not self.with_expected:
            return None
        return self.closed_by_expected / self.with_expected


def percentile(sorted_values: Sequence[int], q: float) -> float:
    """The *q*-quantile (0 ≤ q ≤ 1) of ascending *sorted_values*, interpolating linearly
    between the nearest ranks (Hyndman & Fan type 7).

    Raises:
        InvalidRequestError: *q* out of range or no values.
    """
    if not 0.0 <= q <= 1.0:
        raise InvalidRequestError("q", f"must be between 0 and 1, got {q!r}")
    if not sorted_values:
        raise InvalidRequestError("sorted_values", "must not be empty")
    position = (len(sorted_values) - 1) * q
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def _duration(sorted_micros: Sequence[int], q: float) -> timedelta | None:
    if not sorted_micros:
        return None
    return timedelta(microseconds=round(percentile(sorted_micros, q)))


class _Tally:
    """The running counters of one service."""

    __slots__ = (
        "anomalies",
        "closed",
        "closed_by_expected",
        "count",
        "durations",
        "name",
        "with_expected",
    )

    def __init__(self) -> None:
        self.name: str | None = None
        self.count = 0
        self.closed = 0
        self.anomalies = 0
        self.with_expected = 0
        self.closed_by_expected = 0
        # Signed 64-bit microseconds: ±292,000 years, and 8 bytes each (see module docstring).
        self.durations: array[int] = array("q")

    def add(self, request: ServiceRequest) -> None:
        self.count += 1
        if self.name is None and request.service_name:
            self.name = request.service_name
        if not request.is_closed:
            return
        self.closed += 1
        requested, updated = request.requested_datetime, request.updated_datetime
        if requested is not None and updated is not None:
            took = updated - requested
            if took < timedelta(0):
                self.anomalies += 1
            else:
                self.durations.append(took // _MICROSECOND)
        expected = request.expected_datetime
        if expected is not None and updated is not None:
            self.with_expected += 1
            if updated <= expected:
                self.closed_by_expected += 1

    def stats(self, code: str | None, name: str | None, durations: Sequence[int]) -> ServiceStats:
        ordered = sorted(durations)
        return ServiceStats(
            service_code=code,
            service_name=name,
            count=self.count,
            open=self.count - self.closed,
            closed=self.closed,
            median_to_close=_duration(ordered, 0.5),
            p90_to_close=_duration(ordered, 0.9),
            durations=len(ordered),
            anomalies=self.anomalies,
            with_expected=self.with_expected,
            closed_by_expected=self.closed_by_expected,
        )


class StatsCollector:
    """Accumulates requests one at a time; `stats` and `total` may be asked at any point.

    `service_stats` and `summarize` are the one-call forms; use the collector to feed requests
    as they arrive (a long harvest with a progress bar) or from several sources.
    """

    def __init__(self) -> None:
        self._tallies: dict[str | None, _Tally] = {}

    def add(self, request: ServiceRequest) -> None:
        """Count one request."""
        if not isinstance(request, ServiceRequest):
            raise InvalidRequestError(
                "requests", f"must hold civic311.ServiceRequest, not {type(request).__name__}"
            )
        tally = self._tallies.get(request.service_code)
        if tally is None:
            tally = self._tallies[request.service_code] = _Tally()
        tally.add(request)

    def update(self, requests: Iterable[ServiceRequest]) -> None:
        """Count every request of *requests* (one pass)."""
        if isinstance(requests, ServiceRequest | str | bytes) or not isinstance(requests, Iterable):
            raise InvalidRequestError(
                "requests",
                f"must be an iterable of civic311.ServiceRequest, not {type(requests).__name__}",
            )
        for request in requests:
            self.add(request)

    def stats(self) -> list[ServiceStats]:
        """One row per service: most requests first, then by service_code (None last)."""
        rows = [
            tally.stats(code, tally.name, tally.durations) for code, tally in self._tallies.items()
        ]
        rows.sort(key=lambda s: (-s.count, s.service_code is None, s.service_code or ""))
        return rows

    def total(self) -> ServiceStats:
        """One row for every service together (service_code None, service_name
        ``"All services"``); its percentiles are over all durations, not an average of the
        services' percentiles."""
        whole = _Tally()
        pooled: array[int] = array("q")
        for tally in self._tallies.values():
            whole.count += tally.count
            whole.closed += tally.closed
            whole.anomalies += tally.anomalies
            whole.with_expected += tally.with_expected
            whole.closed_by_expected += tally.closed_by_expected
            pooled.extend(tally.durations)
        return whole.stats(None, TOTAL_NAME, pooled)


def service_stats(requests: Iterable[ServiceRequest]) -> list[ServiceStats]:
    """Per-service statistics of *requests* (any iterable, read once), most requests first."""
    collector = StatsCollector()
    collector.update(requests)
    return collector.stats()


def summarize(requests: Iterable[ServiceRequest]) -> tuple[list[ServiceStats], ServiceStats]:
    """`service_stats` and the all-services total row, from one pass over *requests*."""
    collector = StatsCollector()
    collector.update(requests)
    return collector.stats(), collector.total()


# --- plain-text formatting -------------------------------------------------------------------


def format_duration(value: timedelta | None) -> str:
    """A duration as people read it, to two units: ``2d 4h``, ``5h 12m``, ``12m``, ``45s``;
    ``-`` for None. The smaller unit is rounded (``1d 23h 50m`` → ``2d 0h``)."""
    if value is None:
        return "-"
    if not isinstance(value, timedelta):
        raise InvalidRequestError("value", f"must be a timedelta, not {type(value).__name__}")
    seconds = value.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    # Round at the displayed unit first, then split: rounding can carry into the next unit
    # (23h 59m 40s is "1d 0h", not "24h 0m").
    if seconds >= 86_400 - 1_800:
        days, hours = divmod(round(seconds / 3600), 24)
        return f"{sign}{days}d {hours}h"
    if seconds >= 3_600 - 30:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{sign}{hours}h {minutes}m"
    if seconds >= 59.5:
        return f"{sign}{round(seconds / 60)}m"
    return f"{sign}{round(seconds)}s"


def _share(stats: ServiceStats) -> str:
    share = stats.share_closed_by_expected
    if share is None:
        return "-"
    return f"{share:.0%} of {stats.with_expected}"


_HEADERS = ("code", "service", "count", "open", "closed", "median", "p90", "by expected", "anom.")
#: Which columns are numbers (right-aligned); the others are text (left-aligned).
_NUMERIC = (False, False, True, True, True, True, True, True, True)


def format_table(stats: Iterable[ServiceStats], *, total: ServiceStats | None = None) -> str:
    """*stats* as a plain-text table with aligned columns (and a total row, if given).

    Columns: code, service, count, open, closed, median and p90 time to close, the share
    closed by expected_datetime (``83% of 12``), and anomalies. Missing values are ``-``.
    """
    body = [_cells(s) for s in stats]
    rows: list[tuple[str, ...]] = [_HEADERS, *body]
    if total is not None:
        rows.append(("TOTAL", *_cells(total)[1:]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]
    lines = [_line(row, widths) for row in rows]
    rule = "  ".join("-" * w for w in widths)
    lines.insert(1, rule)
    if total is not None:
        lines.insert(len(lines) - 1, rule)
    return "\n".join(lines)


def _cells(s: ServiceStats) -> tuple[str, ...]:
    return (
        s.service_code if s.service_code is not None else "-",
        s.service_name or "-",
        str(s.count),
        str(s.open),
        str(s.closed),
        format_duration(s.median_to_close),
        format_duration(s.p90_to_close),
        _share(s),
        str(s.anomalies),
    )


def _line(row: tuple[str, ...], widths: list[int]) -> str:
    cells = (
        cell.rjust(width) if numeric else cell.ljust(width)
        for cell, width, numeric in zip(row, widths, _NUMERIC, strict=True)
    )
    return "  ".join(cells).rstrip()
