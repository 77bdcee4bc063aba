"""Bulk throughput: rows per second against a city that takes 50 ms per POST.

A FakeCity served on 127.0.0.1 answers every POST after 50 ms of (real) latency. `bulk.submit_all`
files N rows at concurrency 1, 8 and 32; each run is set beside the ideal, rows x latency /
concurrency, the time a client with no overhead of its own would need. The ratio says what
civic311's own work (validation, the ledger's four writes per row, the HTTP exchange) adds.

    python bench/bulk.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import civic311
from civic311 import bulk
from civic311.ledger import Ledger
from civic311.testing import FakeCity, Fault

LATENCY = 0.05


def rows(count: int, tag: str) -> list[bulk.Row]:
    lines = ["service_code,lat,long,description"]
    lines += [f"001,39.{n:05d},-86.5,Bulk bench {tag} {n}" for n in range(count)]
    return list(bulk.read_rows(_text("\n".join(lines) + "\n")))


def _text(text: str) -> object:
    import io

    return io.StringIO(text)


async def run(url: str, count: int, concurrency: int, folder: Path) -> float:
    batch = rows(count, f"c{concurrency}")
    async with civic311.AsyncClient(url, timeout=10) as client:
        with Ledger(folder / f"ledger-{concurrency}.sqlite") as ledger:
            started = time.perf_counter()
            summary = await bulk.submit_all(
                client, batch, ledger=ledger, concurrency=concurrency, validate=False
            )
            elapsed = time.perf_counter() - started
    if summary.counts() != {"filed": count}:
        raise SystemExit(f"unexpected outcomes: {summary.counts()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows")
    args = parser.parse_args()
    plan = {1: 40, 8: 200, 32: 640} if args.quick else {1: 100, 8: 600, 32: 2000}
    city = FakeCity(seed=1)
    print(f"bulk submit_all against FakeCity with {LATENCY * 1000:.0f} ms per POST (loopback)")
    print(f"  {'concurrency':>11} {'rows':>6} {'time':>8} {'rows/s':>8} {'ideal':>8} {'ratio':>6}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp, city.serve() as url:
        city.inject(Fault.latency(LATENCY), method="POST")
        for concurrency, count in plan.items():
            elapsed = asyncio.run(run(url, count, concurrency, Path(tmp)))
            ideal = count * LATENCY / concurrency
            ratio = elapsed / ideal
            worst = max(worst, ratio) if concurrency > 1 else worst
            print(
                f"  {concurrency:>11} {count:>6} {elapsed:>7.2f}s {count / elapsed:>8.1f} "
                f"{ideal:>7.2f}s {ratio:>5.2f}x"
            )
    print("  (ideal = rows x latency / concurrency; the server's threads share the 2 cores)")
    print(f"RESULT bulk_worst_ratio_to_ideal {worst:.2f} info")


if __name__ == "__main__":
    main()
