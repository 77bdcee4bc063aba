"""Bulk throughput: rows per second against a city that takes 50 ms per POST.

The goal (issue 13): ``bulk.submit_all`` with its journal on SQLite, as a user runs it, files
2,000 rows at concurrency 32 at >= 90% of the throughput of raw ``httpx.AsyncClient`` POSTing the
same 2,000 forms at concurrency 32, against the same server in the same run. The server is
``bench/_post_server.py`` in its own process: a bare asyncio protocol that answers each POST after
50 ms on a timer, cheap enough per request that it is not what limits either side on a 2-core
machine (FakeCity's threaded server costs far more per request). Both sides get the same pool
(civic311's: 100 connections, all kept alive). Each round runs raw httpx, civic311 without a
ledger (``AsyncClient.submit`` under a semaphore) and ``bulk.submit_all`` with a ledger, each in
a fresh event loop; the goal's ratio is the median over rounds of bulk / raw, paired by round.
The server counts the connections each run opened.

Then, as information: ``bulk.submit_all`` at concurrency 1, 8 and 32 against the ideal, rows x
latency / concurrency, the time a client with no overhead of its own would need; and several
workers on ONE PostgreSQL journal (docs/scaling-out.md): 1, 2 and 4 processes each run
``bulk.submit_all`` on the same rows at concurrency 8, as workers on several machines would;
claims split the rows between them. The ideal is rows x latency / (workers x 8). The journal is
``$CIVIC311_BENCH_POSTGRES_URL`` when set, else a pgserver started for the run (each
configuration gets a fresh schema). The time runs from the first worker's start to the last
worker's end, as each worker reports them (interpreter start-up excluded).

    python bench/bulk.py [--quick] [--no-postgres] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import civic311
from civic311 import bulk
from civic311.ledger import Ledger

LATENCY = 0.05


def rows(count: int, tag: str) -> list[bulk.Row]:
    lines = ["service_code,lat,long,description"]
    lines += [f"001,39.{n:05d},-86.5,Bulk bench {tag} {n}" for n in range(count)]
    return list(bulk.read_rows(_text("\n".join(lines) + "\n")))


def _text(text: str) -> object:
    import io

    return io.StringIO(text)


async def run(url: str, count: int, concurrency: int, folder: Path, tag: str = "") -> float:
    batch = rows(count, f"c{concurrency}{tag}")
    async with civic311.AsyncClient(url, timeout=10) as client:
        with Ledger(folder / f"ledger-{concurrency}{tag}.sqlite") as ledger:
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


@contextlib.contextmanager
def _post_server(latency: float) -> Iterator[str]:
    """bench/_post_server.py in its own process; yields its base URL."""
    script = Path(__file__).with_name("_post_server.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(latency)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if not line or line[0] != "PORT":
            raise SystemExit("the POST server did not start")
        yield f"http://127.0.0.1:{line[1]}/open311/v2"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _server_stats(url: str) -> dict[str, int]:
    """The connections and POSTs the server saw since the last call (and reset them)."""
    import httpx

    origin = url.split("/open311", 1)[0]
    stats: dict[str, int] = httpx.get(f"{origin}/_stats").json()
    return stats


def _forms(batch: list[bulk.Row]) -> list[tuple[tuple[str, str], ...]]:
    """The form civic311 POSTs for each row (its own encoding, built before the clock starts)."""
    from civic311._protocol import submit_call

    return [submit_call(row.request).form for row in batch if row.request is not None]


async def _raw_httpx(url: str, batch: list[bulk.Row], concurrency: int) -> float:
    """Raw ``httpx.AsyncClient`` POSTing the same forms at *concurrency*: the peer."""
    import httpx

    forms = _forms(batch)
    target = f"{url}/requests.json"
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)  # civic311's
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as http:

        async def one(form: tuple[tuple[str, str], ...]) -> None:
            async with gate:
                response = await http.post(target, data=dict(form))
                response.raise_for_status()
                response.json()

        started = time.perf_counter()
        await asyncio.gather(*(one(form) for form in forms))
        return time.perf_counter() - started


async def _civic311_no_ledger(url: str, batch: list[bulk.Row], concurrency: int) -> float:
    """``AsyncClient.submit`` for each row at *concurrency*, no journal."""
    requests = [row.request for row in batch if row.request is not None]
    gate = asyncio.Semaphore(concurrency)
    async with civic311.AsyncClient(url, timeout=10) as client:

        async def one(request: civic311.NewRequest) -> None:
            async with gate:
                await client.submit(request)

        started = time.perf_counter()
        await asyncio.gather(*(one(request) for request in requests))
        return time.perf_counter() - started


def _vs_raw(quick: bool, profile: bool) -> None:
    """The goal: bulk with a SQLite ledger vs raw httpx, 2,000 rows at concurrency 32."""
    count, concurrency = (640, 32) if quick else (2000, 32)
    rounds = 2 if quick else 5
    ideal = count * LATENCY / concurrency
    samples: dict[str, list[float]] = {"raw": [], "bare": [], "bulk": []}
    connections: dict[str, list[int]] = {"raw": [], "bare": [], "bulk": []}
    print(
        f"bulk vs raw httpx: {count} rows, concurrency {concurrency}, "
        f"{LATENCY * 1000:.0f} ms per POST, bench/_post_server.py in its own process"
    )
    with tempfile.TemporaryDirectory() as tmp, _post_server(LATENCY) as url:
        for round_ in range(rounds):
            tag = f"r{round_}"
            batch = rows(count, tag)
            runs: dict[str, Callable[[], Awaitable[float]]] = {
                "raw": functools.partial(_raw_httpx, url, batch, concurrency),
                "bare": functools.partial(_civic311_no_ledger, url, batch, concurrency),
                "bulk": functools.partial(run, url, count, concurrency, Path(tmp), tag=tag),
            }
            for name, make in runs.items():
                _server_stats(url)
                if name == "bulk" and profile and round_ == rounds - 1:
                    import cProfile
                    import pstats

                    profiler = cProfile.Profile()
                    elapsed = profiler.runcall(asyncio.run, make())
                    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
                else:
                    elapsed = asyncio.run(make())
                stats = _server_stats(url)
                if stats["posts"] != count:
                    raise SystemExit(f"{name}: the server saw {stats['posts']} POSTs, not {count}")
                samples[name].append(elapsed)
                connections[name].append(stats["connections"])
    print(f"  {'client':>28} {'median':>8} {'rows/s':>8} {'vs ideal':>9} {'connections':>12}")
    labels = {
        "raw": "raw httpx.AsyncClient",
        "bare": "civic311, no ledger",
        "bulk": "civic311 bulk, SQLite ledger",
    }
    for name, label in labels.items():
        middle = statistics.median(samples[name])
        print(
            f"  {label:>28} {middle:>7.2f}s {count / middle:>8.1f} {ideal / middle:>8.0%} "
            f"{'/'.join(map(str, connections[name])):>12}"
        )
    print(f"  (ideal {ideal:.2f}s = rows x latency / concurrency; {rounds} rounds, interleaved)")
    vs_raw = statistics.median(r / b for r, b in zip(samples["raw"], samples["bulk"], strict=True))
    bare = statistics.median(r / b for r, b in zip(samples["raw"], samples["bare"], strict=True))
    raw_ideal = statistics.median(ideal / r for r in samples["raw"])
    met = "met" if vs_raw >= 0.9 else "missed"
    print(f"RESULT bulk.vs_raw_httpx {vs_raw * 100:.1f}% >=90% {met}")
    print(f"RESULT bulk.no_ledger_vs_raw_httpx {bare * 100:.1f}% - info")
    print(f"RESULT bulk.raw_httpx_vs_ideal {raw_ideal * 100:.1f}% - info")
    print(f"RESULT bulk.connections_opened {max(connections['bulk'])} - info")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, journal, count, tag = sys.argv[2:6]
        asyncio.run(_worker(url, journal, int(count), tag))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite runs only")
    parser.add_argument("--profile", action="store_true", help="profile the last bulk run")
    parser.add_argument("--goal-only", action="store_true", help="only the vs-raw-httpx goal")
    args = parser.parse_args()
    _vs_raw(args.quick, args.profile)
    if args.goal_only:
        return
    plan = {1: 40, 8: 200, 32: 640} if args.quick else {1: 100, 8: 600, 32: 2000}
    print()
    print(f"bulk submit_all with {LATENCY * 1000:.0f} ms per POST (bench/_post_server.py)")
    print(f"  {'concurrency':>11} {'rows':>6} {'time':>8} {'rows/s':>8} {'ideal':>8} {'ratio':>6}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp, _post_server(LATENCY) as url:
        for concurrency, count in plan.items():
            elapsed = asyncio.run(run(url, count, concurrency, Path(tmp)))
            ideal = count * LATENCY / concurrency
            ratio = elapsed / ideal
            worst = max(worst, ratio) if concurrency > 1 else worst
            print(
                f"  {concurrency:>11} {count:>6} {elapsed:>7.2f}s {count / elapsed:>8.1f} "
                f"{ideal:>7.2f}s {ratio:>5.2f}x"
            )
        print("  (ideal = rows x latency / concurrency)")
        print(f"RESULT bulk_worst_ratio_to_ideal {worst:.2f} info")
        if not args.no_postgres:
            pg_worst = _postgres(args.quick, url)
            print(f"RESULT bulk_postgres_workers_worst_ratio_to_ideal {pg_worst:.2f} info")


if __name__ == "__main__":
    main()
