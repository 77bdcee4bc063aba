"""Harvest: HTTP calls against the N/cap + 1 floor, and peak memory, for 12,500 and 100,000.

A FakeCity capped at 1,000 requests per answer (sorted newest first, as the spec's default)
holds N requests over three years (plus a burst of 2,500 in one hour). `Client.iter_requests`
harvests the whole span; the script counts HTTP calls, compares them with the floor of
N/cap + 1 calls (every answer full, one more to see the end; issue 13), and measures the
harvest's peak traced memory (tracemalloc, started after the city is built, so the city's own
store is not counted; the results are counted, not kept). Memory must not grow with N: the
harvest holds one answer at a time. A second run with the city sorting oldest first shows the
halving fallback.

    python bench/harvest.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from datetime import datetime, timedelta, timezone

import civic311
from civic311.testing import FakeCity, VirtualClock

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
SPAN = timedelta(days=3 * 365)


CAP = 1000


def harvest(count: int, sort: str = "desc") -> tuple[int, int, int, float]:
    """(requests harvested, HTTP calls, peak bytes, seconds) for a city of *count* requests."""
    clock = VirtualClock(start=NOW)
    city = FakeCity(seed=42, clock=clock, result_cap=CAP, sort=sort)  # type: ignore[arg-type]
    city.generate_requests(
        count, start=NOW - SPAN, end=NOW, burst=(NOW - timedelta(days=400), 2_500, 3600.0)
    )
    calls = 0

    def count_call(event: civic311.AttemptEvent) -> None:
        nonlocal calls
        calls += 1

    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    harvested = 0
    with civic311.Client(
        city.base_url, transport=city.transport(), clock=clock, on_attempt=count_call
    ) as client:
        for _ in client.iter_requests(start_date=NOW - SPAN - timedelta(days=1), end_date=NOW):
            harvested += 1
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    expected = len(city.requests)
    if harvested != expected:
        raise SystemExit(f"harvested {harvested} of {expected} requests")
    return harvested, calls, peak, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,500 and 12,500 instead")
    args = parser.parse_args()
    # Plus the burst of 2,500: 12,500 and 100,000 requests in all, the sizes issue 13 names
    # (3,500 and 12,500 with --quick).
    sizes = (1_000, 10_000) if args.quick else (10_000, 97_500)
    print("harvest of a FakeCity capped at 1,000 per answer, 3 years, burst of 2,500 in 1 hour")
    print(
        f"  {'order':>6} {'requests':>9} {'HTTP calls':>10} {'floor':>6} {'per call':>9} "
        f"{'vs floor':>8} {'peak memory':>12} {'time':>8}"
    )
    peaks = []
    totals = []
    per_call = 0.0
    for sort in ("desc", "asc"):
        for size in sizes if sort == "desc" else sizes[:1]:
            harvested, calls, peak, seconds = harvest(size, sort)
            floor = harvested // CAP + 1
            if sort == "desc":
                peaks.append(peak)
                totals.append(harvested)
                per_call = harvested / calls
            print(
                f"  {sort:>6} {harvested:>9,} {calls:>10,} {floor:>6,} "
                f"{harvested / calls:>9.0f} {calls / floor:>7.2f}x "
                f"{peak / 2**20:>10.1f} MB {seconds:>7.1f}s"
            )
    growth = peaks[1] / peaks[0]
    met = "met" if growth < 2.0 else "missed"
    print(
        f"  peak memory grows {growth:.2f}x from {totals[0]:,} to {totals[1]:,} requests "
        f"({totals[1] / totals[0]:.1f}x)"
    )
    print(f"RESULT harvest_memory_growth {growth:.2f} goal<2 {met}")
    met = "met" if per_call >= 950 else "missed"
    print(f"RESULT harvest_requests_per_call {per_call:.0f} goal>=950 {met}")


if __name__ == "__main__":
    main()
