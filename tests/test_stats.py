"""Response-time statistics: per-service counts, time to close, and a plain table."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from civic311 import InvalidRequestError, ServiceRequest, Status
from civic311.stats import (
    ServiceStats,
    StatsCollector,
    format_duration,
    format_table,
    percentile,
    service_stats,
    summarize,
)

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)


def req(
    code: str | None,
    *,
    status: str | None = "open",
    took: timedelta | None = None,
    expected_in: timedelta | None = None,
    name: str | None = None,
    n: int = 0,
) -> ServiceRequest:
    """A request filed at T0 (+n minutes) and last updated *took* later."""
    requested = T0 + timedelta(minutes=n)
    return ServiceRequest(
        service_request_id=f"{code}-{n}",
        service_code=code,
        service_name=name,
        status=None if status is None else Status(status),
        requested_datetime=requested,
        updated_datetime=None if took is None else requested + took,
        expected_datetime=None if expected_in is None else requested + expected_in,
    )


def by_code(stats: list[ServiceStats]) -> dict[str | None, ServiceStats]:
    return {s.service_code: s for s in stats}


def test_counts_open_and_closed_per_service_sorted_by_count() -> None:
    """Each service gets count/open/closed; rows come most requests first."""
    requests = [
        req("A", status="open", n=1),
        req("B", status="closed", took=timedelta(hours=1), n=2),
        req("B", status="Fixed", took=timedelta(hours=2), n=3),
        req("B", status="in_progress", n=4),
        req("A", status="duplicate", took=timedelta(hours=3), n=5),
        req("C", status=None, n=6),
    ]
    stats = service_stats(requests)
    assert [s.service_code for s in stats] == ["B", "A", "C"]
    rows = by_code(stats)
    assert (rows["B"].count, rows["B"].open, rows["B"].closed) == (3, 1, 2)
    assert (rows["A"].count, rows["A"].open, rows["A"].closed) == (2, 1, 1)
    assert (rows["C"].count, rows["C"].open, rows["C"].closed) == (1, 1, 0)  # no status: open


def test_ties_are_ordered_by_code_with_missing_codes_last() -> None:
    """Equal counts sort by service_code; requests without a code form their own last row."""
    stats = service_stats([req(None, n=1), req("b", n=2), req("a", n=3)])
    assert [s.service_code for s in stats] == ["a", "b", None]


def test_median_and_p90_interpolate_between_ranks() -> None:
    """Median and 90th percentile of 1..10 hours are 5.5h and 9.1h (linear interpolation)."""
    requests = [req("A", status="closed", took=timedelta(hours=h), n=h) for h in range(1, 11)]
    (row,) = service_stats(requests)
    assert row.median_to_close == timedelta(hours=5, minutes=30)
    assert row.p90_to_close == timedelta(hours=9, minutes=6)
    assert row.durations == 10


def test_one_duration_is_its_own_median_and_p90() -> None:
    """A single closed request gives the same median and p90."""
    (row,) = service_stats([req("A", status="closed", took=timedelta(days=2), n=1)])
    assert row.median_to_close == row.p90_to_close == timedelta(days=2)


def test_negative_durations_are_anomalies_not_data() -> None:
    """Updated before requested is counted as an anomaly and left out of the percentiles."""
    requests = [
        req("A", status="closed", took=timedelta(hours=-5), n=1),
        req("A", status="closed", took=timedelta(hours=4), n=2),
        req("A", status="closed", took=timedelta(0), n=3),
    ]
    (row,) = service_stats(requests)
    assert row.anomalies == 1
    assert row.durations == 2
    assert row.median_to_close == timedelta(hours=2)


def test_missing_datetimes_and_open_requests_give_no_duration() -> None:
    """Closed requests without updated_datetime, and open ones, add no duration."""
    requests = [
        req("A", status="closed", took=None, n=1),
        req("A", status="open", took=timedelta(hours=1), n=2),
    ]
    (row,) = service_stats(requests)
    assert row.closed == 1
    assert row.durations == 0
    assert row.median_to_close is None
    assert row.p90_to_close is None


def test_share_closed_by_expected_among_those_that_have_one() -> None:
    """The share counts closed requests with an expected_datetime: on time over all of them."""
    requests = [
        req("A", status="closed", took=timedelta(hours=1), expected_in=timedelta(hours=2), n=1),
        req("A", status="closed", took=timedelta(hours=3), expected_in=timedelta(hours=2), n=2),
        req("A", status="closed", took=timedelta(hours=2), expected_in=timedelta(hours=2), n=3),
        req("A", status="closed", took=timedelta(hours=9), n=4),  # no expected: not counted
        req("A", status="open", expected_in=timedelta(hours=1), n=5),  # open: not counted
    ]
    (row,) = service_stats(requests)
    assert (row.with_expected, row.closed_by_expected) == (3, 2)
    assert row.share_closed_by_expected == pytest.approx(2 / 3)
    (none,) = service_stats([req("B", status="closed", took=timedelta(hours=1))])
    assert none.share_closed_by_expected is None


def test_service_name_is_the_first_one_given() -> None:
    """The service_name comes from the first request that carries one."""
    requests = [req("A", n=1), req("A", name="Potholes", n=2), req("A", name="Other", n=3)]
    assert service_stats(requests)[0].service_name == "Potholes"


def test_total_pools_every_duration() -> None:
    """The total row sums counts and takes percentiles over all durations together."""
    requests = [
        *(req("A", status="closed", took=timedelta(hours=1), n=i) for i in range(3)),
        req("B", status="closed", took=timedelta(hours=100), n=9),
        req("B", status="open", n=10),
        req("B", status="closed", took=timedelta(hours=-1), n=11),
    ]
    stats, total = summarize(requests)
    assert len(stats) == 2
    assert total.service_code is None
    assert total.service_name == "All services"
    assert (total.count, total.open, total.closed, total.anomalies) == (6, 1, 5, 1)
    assert total.durations == 4
    # Pooled median of [1, 1, 1, 100] hours is 1h, not the mean of the two services' medians.
    assert total.median_to_close == timedelta(hours=1)


def test_one_pass_over_a_generator_keeps_no_request() -> None:
    """A generator is read once and no request object is kept (memory bounded by services)."""
    refs: list[weakref.ref[ServiceRequest]] = []

    def harvest() -> Iterator[ServiceRequest]:
        for n in range(2_000):
            r = req(f"S{n % 5}", status="closed" if n % 2 else "open", took=timedelta(hours=1), n=n)
            refs.append(weakref.ref(r))
            yield r

    stats = service_stats(harvest())
    gc.collect()
    assert sum(s.count for s in stats) == 2_000
    assert all(ref() is None for ref in refs)


def test_collector_can_be_fed_one_request_at_a_time() -> None:
    """StatsCollector accepts requests as they arrive and answers at any point."""
    collector = StatsCollector()
    collector.add(req("A", status="closed", took=timedelta(hours=2), n=1))
    assert collector.stats()[0].count == 1
    collector.update([req("A", n=2), req("B", n=3)])
    assert [s.count for s in collector.stats()] == [2, 1]
    assert collector.total().count == 3


def test_empty_input_gives_no_rows_and_an_empty_total() -> None:
    """No requests: no service rows, and a total of zeros with no durations."""
    stats, total = summarize([])
    assert stats == []
    assert (total.count, total.median_to_close, total.share_closed_by_expected) == (0, None, None)


@pytest.mark.parametrize("bad", [None, 5, "requests", [object()], [{"status": "open"}]])
def test_bad_input_is_refused_naming_requests(bad: object) -> None:
    """Anything but an iterable of ServiceRequest raises InvalidRequestError('requests')."""
    with pytest.raises(InvalidRequestError) as caught:
        service_stats(bad)  # type: ignore[arg-type]
    assert caught.value.field == "requests"


def test_percentile_helper_and_its_limits() -> None:
    """percentile interpolates linearly and refuses q outside [0, 1] or no values."""
    assert percentile([0, 10], 0.5) == 5
    assert percentile([1, 2, 3, 4], 0.0) == 1
    assert percentile([1, 2, 3, 4], 1.0) == 4
    with pytest.raises(InvalidRequestError):
        percentile([1], 1.5)
    with pytest.raises(InvalidRequestError):
        percentile([], 0.5)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (timedelta(0), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=12, seconds=10), "12m"),
        (timedelta(hours=5, minutes=12), "5h 12m"),
        (timedelta(hours=23, minutes=59, seconds=40), "1d 0h"),
        (timedelta(days=2, hours=4, minutes=10), "2d 4h"),
        (timedelta(days=40, hours=1), "40d 1h"),
        (timedelta(hours=-3), "-3h 0m"),
    ],
)
def test_durations_read_like_people_write_them(value: timedelta | None, text: str) -> None:
    """format_duration gives two units at most, rounding the smaller one."""
    assert format_duration(value) == text


def test_table_aligns_columns_and_shows_the_total() -> None:
    """format_table gives a header, a rule, one aligned line per service and a TOTAL row."""
    requests = [
        req("POT", name="Pothole", status="closed", took=timedelta(days=2, hours=4), n=1),
        req("POT", name="Pothole", status="open", n=2),
        req("LIGHT-LONG-CODE", name="Streetlight out", status="open", n=3),
    ]
    stats, total = summarize(requests)
    table = format_table(stats, total=total)
    lines = table.splitlines()
    assert lines[0].split() == [
        "code",
        "service",
        "count",
        "open",
        "closed",
        "median",
        "p90",
        "by",
        "expected",
        "anom.",
    ]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].startswith("POT ")
    assert "2d 4h" in lines[2]
    assert lines[-1].startswith("TOTAL")
    # Right-aligned numbers: the count column ends at the same place on every data line.
    count_end = lines[0].index("count") + len("count")
    for line in (lines[2], lines[3], lines[-1]):
        assert line[count_end - 1].isdigit()
        assert line[count_end] == " "


def test_table_without_rows_is_just_the_header() -> None:
    """An empty table still has its header and rule."""
    assert len(format_table([]).splitlines()) == 2
