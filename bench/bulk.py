"""Bulk throughput: rows per second against a city that takes 50 ms per POST.

A FakeCity served on 127.0.0.1 answers every POST after 50 ms of (real) latency. `bulk.submit_all`
files N rows at concurrency 1, 8 and 32; each run is set beside the ideal, rows x latency /
concurrency, the time a client with no overhead of its own would need. The ratio says what
civic311's own work (validation, the ledger's four writes per row, the HTTP exchange) adds.

Then several workers on ONE PostgreSQL journal (docs/scaling-out.md): 1, 2 and 4 processes
each run `bulk.submit_all` on the same rows at concurrency 8, as workers on several machines
would; claims split the rows between them. The ideal is rows x latency / (workers x 8). The
journal is ``$CIVIC311_BENCH_POSTGRES_URL`` when set, else a pgserver started for the run (each
configuration gets a fresh schema). The time runs from the first worker's start to the last
worker's end, as each worker reports them (interpreter start-up excluded).

    python bench/bulk.py [--quick] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
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


WORKER_CONCURRENCY = 8


async def _worker(url: str, journal: str, count: int, tag: str) -> None:
    """One worker process: file *count* rows tagged *tag* into *journal*; print its times."""
    batch = rows(count, tag)
    async with civic311.AsyncClient(url, timeout=10) as client:
        with Ledger(journal) as ledger:
            started = time.time()
            summary = await bulk.submit_all(
                client, batch, ledger=ledger, concurrency=WORKER_CONCURRENCY, validate=False
            )
            ended = time.time()
    print(json.dumps({"start": started, "end": ended, "counts": summary.counts()}))


def _postgres(quick: bool, url: str) -> float:
    """1, 2 and 4 workers on one PostgreSQL journal; return the worst ratio to the ideal."""
    import psycopg

    plan = {1: 160, 2: 320, 4: 640} if quick else {1: 400, 2: 800, 4: 1600}
    base = os.environ.get("CIVIC311_BENCH_POSTGRES_URL")
    with contextlib.ExitStack() as stack:
        if not base:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs: "XDG_RUNTIME_DIR is not set"
                import pgserver

            data = stack.enter_context(tempfile.TemporaryDirectory(prefix="c311bench"))
            server = pgserver.get_server(data, cleanup_mode="stop")
            stack.callback(server.cleanup)
            base = str(server.get_uri())
        print()
        print(
            f"bulk workers on one PostgreSQL journal, {WORKER_CONCURRENCY} in flight each, "
            f"{LATENCY * 1000:.0f} ms per POST"
        )
        print(f"  {'workers':>7} {'rows':>6} {'time':>8} {'rows/s':>8} {'ideal':>8} {'ratio':>6}")
        worst = 0.0
        for workers, count in plan.items():
            schema = f"bench_{workers}_{os.getpid()}"
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                conn.execute(f"CREATE SCHEMA {schema}")
            sep = "&" if "?" in base else "?"
            journal = f"{base}{sep}options=-csearch_path%3D{schema}"
            procs = [
                subprocess.Popen(
                    [sys.executable, __file__, "--worker", url, journal, str(count), f"w{workers}"],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for _ in range(workers)
            ]
            reports = []
            for proc in procs:
                out, _ = proc.communicate(timeout=600)
                if proc.returncode != 0:
                    raise SystemExit(f"a worker failed (exit {proc.returncode})")
                reports.append(json.loads(out.strip().splitlines()[-1]))
            elapsed = max(r["end"] for r in reports) - min(r["start"] for r in reports)
            filed = sum(r["counts"].get("filed", 0) for r in reports)
            if filed != count:
                raise SystemExit(f"{filed} rows filed by {workers} workers, expected {count}")
            ideal = count * LATENCY / (workers * WORKER_CONCURRENCY)
            ratio = elapsed / ideal
            worst = max(worst, ratio)
            print(
                f"  {workers:>7} {count:>6} {elapsed:>7.2f}s {count / elapsed:>8.1f} "
                f"{ideal:>7.2f}s {ratio:>5.2f}x"
            )
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
        print("  (each row filed once: the workers' filed counts add up to the rows)")
    return worst


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, journal, count, tag = sys.argv[2:6]
        asyncio.run(_worker(url, journal, int(count), tag))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite runs only")
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
        if not args.no_postgres:
            pg_worst = _postgres(args.quick, url)
            print(f"RESULT bulk_postgres_workers_worst_ratio_to_ideal {pg_worst:.2f} info")


if __name__ == "__main__":
    main()
