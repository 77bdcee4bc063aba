"""Per-call overhead: civic311 against raw httpx, over real loopback HTTP.

A `FakeCity` is served on 127.0.0.1 (``city.serve()``); each contender GETs
``requests/{id}.json`` for a rotation of known ids:

* sync: ``civic311.Client(url).get_request(id)`` against ``httpx.Client`` GET plus
  ``json.loads`` of the body (the least any client does with the answer);
* async: ``civic311.AsyncClient`` against ``httpx.AsyncClient`` (sequential awaits).

Both keep one connection alive. Calls run in short blocks that alternate between the
contenders (AB BA AB ...) so drift hits both alike; the figure per contender is the median over
blocks of the mean time per call, and the ratio is the median of the ratios of paired blocks
(steadier than the ratio of medians when other processes load the machine; both are shown).

Goal: civic311 / raw httpx <= 1.10x, sync and async (issue 13). The FakeCity server thread
runs in this process and shares the machine's cores (and this interpreter's GIL) with the
client: most of each round trip is the server's work, which dilutes the client's overhead in
the ratio.

Then, to show where civic311's own time goes (figures without goals):

* the same pairs over ``httpx.MockTransport`` with a canned body - no socket, no server: the
  client's overhead alone;
* the cost of each stage of a civic311 call, in isolation, next to what raw httpx does instead;
* with ``--profile`` (or when a goal is missed): cProfile over 2,000 calls, over loopback and
  in process, sync and async.

    .venv/bin/python bench/overhead.py [--quick] [--repeats N] [--profile]
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

import httpx
from _common import banner, gc_paused, median, paired_ratio, parse_args, result

import civic311
from civic311.testing import FakeCity

GOAL = 1.10
#: Calls each profile covers (issue 13: cProfile over 2,000 calls).
PROFILE_CALLS = 2_000
#: Stripped from file names in profiles: site-packages, and where civic311 is imported from.
PREFIXES = (
    os.path.dirname(os.path.dirname(httpx.__file__)) + os.sep,
    os.path.dirname(os.path.dirname(civic311.__file__)) + os.sep,
)
#: Each timing loop stops after this many seconds (once it has 4 blocks), however many it was asked.
BUDGET = 30.0


def make_city(n: int) -> tuple[FakeCity, list[str]]:
    """A city with *n* historical requests, and their ids."""
    city = FakeCity(seed=7)
    end = datetime.now(timezone.utc) - timedelta(hours=1)
    records = city.generate_requests(n, start=end - timedelta(days=30), end=end)
    return city, [r.service_request_id for r in records]


Contender = Callable[[int, int], None]


def sync_contenders(
    url: str, ids: list[str]
) -> tuple[civic311.Client, httpx.Client, dict[str, Contender]]:
    client = civic311.Client(url)
    raw = httpx.Client(headers={"Accept": "application/json"})

    def civic(count: int, offset: int) -> None:
        for i in range(count):
            client.get_request(ids[(offset + i) % len(ids)])

    def plain(count: int, offset: int) -> None:
        for i in range(count):
            response = raw.get(f"{url}/requests/{ids[(offset + i) % len(ids)]}.json")
            response.raise_for_status()
            json.loads(response.content)

    return client, raw, {"civic311 Client": civic, "httpx.Client": plain}


def run_blocks(
    contenders: dict[str, Contender], blocks: int, per_block: int
) -> dict[str, list[float]]:
    """Alternate blocks of *per_block* calls; return seconds per call for each block."""
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up: connections, caches, first-call imports
        contenders[name](max(per_block // 4, 10), 0)
    deadline = time.monotonic() + BUDGET
    for block in range(blocks):
        order = names if block % 2 == 0 else names[::-1]
        for name in order:
            with gc_paused():
                start = time.perf_counter()
                contenders[name](per_block, block * per_block)
                samples[name].append((time.perf_counter() - start) / per_block)
        if time.monotonic() > deadline and block >= 3:
            print(f"   (time budget reached after {block + 1} blocks)")
            break
    return samples


async def run_blocks_async(
    contenders: dict[str, Callable[[int, int], Awaitable[None]]], blocks: int, per_block: int
) -> dict[str, list[float]]:
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for name in names:
        await contenders[name](max(per_block // 4, 10), 0)
    deadline = time.monotonic() + BUDGET
    for block in range(blocks):
        order = names if block % 2 == 0 else names[::-1]
        for name in order:
            with gc_paused():
                start = time.perf_counter()
                await contenders[name](per_block, block * per_block)
                samples[name].append((time.perf_counter() - start) / per_block)
        if time.monotonic() > deadline and block >= 3:
            print(f"   (time budget reached after {block + 1} blocks)")
            break
    return samples


async def async_samples(
    url: str, ids: list[str], blocks: int, per_block: int
) -> dict[str, list[float]]:
    async with (
        civic311.AsyncClient(url) as client,
        httpx.AsyncClient(headers={"Accept": "application/json"}) as raw,
    ):

        async def civic(count: int, offset: int) -> None:
            for i in range(count):
                await client.get_request(ids[(offset + i) % len(ids)])

        async def plain(count: int, offset: int) -> None:
            for i in range(count):
                response = await raw.get(f"{url}/requests/{ids[(offset + i) % len(ids)]}.json")
                response.raise_for_status()
                json.loads(response.content)

        contenders = {"civic311 AsyncClient": civic, "httpx.AsyncClient": plain}
        return await run_blocks_async(contenders, blocks, per_block)


def print_profile(label: str, profiler: cProfile.Profile, top: int = 30) -> None:
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).sort_stats("cumulative")
    stats.print_stats(r"civic311|anyio|asyncio/timeouts|httpx/_(client|models|urls)", top)
    print(f"\n-- profile: {label}")
    print("   (cProfile, by cumulative time, civic311/anyio/httpx rows; inflates call costs)")
    for line in stream.getvalue().splitlines():
        if line.strip() and not line.lstrip().startswith(("List reduced", "Ordered by")):
            for prefix in PREFIXES:
                line = line.replace(prefix, "")
            print("   " + line)


def report(samples: dict[str, list[float]], ours: str, theirs: str, name: str) -> bool:
    for label in (ours, theirs):
        values = samples[label]
        print(
            f"   {label:<22}{median(values) * 1e6:>9.1f}us/call  "
            f"(blocks: min {min(values) * 1e6:.1f}, max {max(values) * 1e6:.1f}, n={len(values)})"
        )
    ratio = paired_ratio(samples[ours], samples[theirs])
    extra = (median(samples[ours]) - median(samples[theirs])) * 1e6
    print(
        f"   ratio: {ratio:.2f}x as the median of paired blocks "
        f"({median(samples[ours]) / median(samples[theirs]):.2f}x as the ratio of medians); "
        f"civic311 adds {extra:.1f}us per call"
    )
    met = result(name, ratio, "x", GOAL)
    result(f"{name}_added_us", extra, "us", None)
    return met


# --- where the time goes (no socket, no server) ----------------------------------------------

CANNED = json.dumps(
    [
        {
            "service_request_id": "600001",
            "status": "open",
            "service_name": "Pothole",
            "service_code": "001",
            "description": "Deep pothole in the right lane",
            "requested_datetime": "2026-01-05T10:00:00-05:00",
            "updated_datetime": "2026-01-05T11:00:00-05:00",
            "address": "1 Chapel St",
            "lat": 41.3,
            "long": -72.9,
        }
    ]
).encode()
MOCK_BASE = "http://127.0.0.1:8311/open311/v2"


def per_call(fn: Callable[[], object], number: int, repeats: int = 5) -> float:
    """Best-of-*repeats* seconds per call of *fn* (timeit style, collector paused)."""
    best = float("inf")
    for _ in range(repeats):
        with gc_paused():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best = min(best, (time.perf_counter() - start) / number)
    return best


def in_process_sync(number: int, repeats: int = 7) -> tuple[float, float]:
    """Best per-call seconds of civic311 and raw httpx, measured in turn within each repeat."""
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=CANNED, headers=JSON_TYPE)
    )
    with (
        civic311.Client(MOCK_BASE, transport=transport) as client,
        httpx.Client(transport=transport) as raw,
    ):

        def civic() -> None:
            client.get_request("600001")

        def plain() -> None:
            response = raw.get(f"{MOCK_BASE}/requests/600001.json")
            response.raise_for_status()
            json.loads(response.content)

        best = [float("inf")] * 2
        for _ in range(repeats):
            ours = per_call(civic, number, repeats=1)
            theirs = per_call(plain, number, repeats=1)
            best = [min(b, t) for b, t in zip(best, (ours, theirs), strict=True)]
        return best[0], best[1]


async def in_process_async(number: int) -> tuple[float, float]:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=CANNED, headers=JSON_TYPE)

    transport = httpx.MockTransport(handler)
    async with (
        civic311.AsyncClient(MOCK_BASE, transport=transport) as client,
        httpx.AsyncClient(transport=transport) as raw,
    ):

        async def civic() -> None:
            await client.get_request("600001")

        async def plain() -> None:
            response = await raw.get(f"{MOCK_BASE}/requests/600001.json")
            response.raise_for_status()
            json.loads(response.content)

        best: dict[str, float] = {}
        for _ in range(3):  # in turn within each repeat, as the sync pair
            for name, fn in (("civic", civic), ("plain", plain)):
                with gc_paused():
                    start = time.perf_counter()
                    for _ in range(number):
                        await fn()
                    took = (time.perf_counter() - start) / number
                best[name] = min(best.get(name, took), took)
        return best["civic"], best["plain"]


JSON_TYPE = {"Content-Type": "application/json"}


def stages(number: int) -> None:
    """The cost of each stage of a civic311 call, against what raw httpx does instead."""
    import anyio

    from civic311._client.transport import _SetCookies, adeadline_scope, deadline_scope
    from civic311._protocol import (
        Settings,
        build_request,
        get_request_call,
        read_response,
    )

    call = get_request_call("600001")
    settings = Settings()
    request = build_request(call, MOCK_BASE, "json", settings, None)
    response = httpx.Response(200, content=CANNED, request=request)
    now = datetime.now(timezone.utc)
    raw = httpx.Client()
    client = civic311.Client(MOCK_BASE)
    ours_cookies, raw_cookies = _SetCookies(), httpx.Cookies()

    def sync_scope() -> None:
        with deadline_scope(30.0):
            pass

    async def scopes(count: int) -> tuple[float, float]:
        async def ours() -> None:
            async with adeadline_scope(30.0):
                pass

        async def anyio_scope() -> None:
            with anyio.fail_after(30.0):  # noqa: ASYNC100 - the cost of the scope alone
                pass

        best = [float("inf")] * 2
        for _ in range(5):
            for index, fn in enumerate((ours, anyio_scope)):
                start = time.perf_counter()
                for _ in range(count):
                    await fn()
                best[index] = min(best[index], (time.perf_counter() - start) / count)
        return best[0], best[1]

    rows = [
        ("protocol.get_request_call", lambda: get_request_call("600001")),
        ("protocol.build_request", lambda: build_request(call, MOCK_BASE, "json", settings)),
        ("  raw: httpx.Client.build_request", lambda: raw.build_request("GET", str(request.url))),
        (
            "protocol.read_response (1 request)",
            lambda: read_response(call, response, CANNED, "json", now),
        ),
        ("  raw: json.loads", lambda: json.loads(CANNED)),
        ("cookies of an answer without Set-Cookie", lambda: ours_cookies.extract_cookies(response)),
        ("  raw: httpx.Cookies.extract_cookies", lambda: raw_cookies.extract_cookies(response)),
        ("CallRun: build, endpoint, format", lambda: _bookkeeping(client, call)),
        ("client._timeout_within", lambda: client._timeout_within(30.0)),
        ("transport.deadline_scope (sync)", sync_scope),
    ]
    raw.close()
    for label, fn in rows:
        print(f"   {label:<40}{per_call(fn, number) * 1e6:>8.1f}us")
    client.close()
    ours, theirs = asyncio.run(scopes(number))
    print(f"   {'transport.adeadline_scope (asyncio)':<40}{ours * 1e6:>8.1f}us")
    print(f"   {'  was: anyio.fail_after':<40}{theirs * 1e6:>8.1f}us")


def _bookkeeping(client: civic311.Client, call: object) -> None:
    run = client._run(call)  # type: ignore[arg-type]
    endpoint = run.next_endpoint()
    assert endpoint is not None
    run.format_for(endpoint)
    run.succeeded(endpoint, "json", "json", 0.001)


def profile_calls(calls: int, url: str | None, ids: list[str]) -> None:
    """cProfile over *calls* get_request calls: over loopback when *url* is given (the server
    thread is not profiled), else in process through httpx.MockTransport; sync, then async."""
    where = "loopback" if url is not None else "in process"
    base = url or MOCK_BASE
    pick = ids if url is not None else ["600001"]

    def transport() -> dict[str, object]:
        if url is not None:
            return {}
        return {"transport": httpx.MockTransport(lambda r: httpx.Response(200, content=CANNED))}

    with civic311.Client(base, **transport()) as client:  # type: ignore[arg-type]
        client.get_request(pick[0])
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(calls):
            client.get_request(pick[i % len(pick)])
        profiler.disable()
    print_profile(f"{where}: {calls:,} x civic311 Client.get_request", profiler)

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=CANNED)

    async def run_async() -> cProfile.Profile:
        options = {} if url is not None else {"transport": httpx.MockTransport(handler)}
        async with civic311.AsyncClient(base, **options) as client:  # type: ignore[arg-type]
            await client.get_request(pick[0])
            profiler = cProfile.Profile()
            profiler.enable()
            for i in range(calls):
                await client.get_request(pick[i % len(pick)])
            profiler.disable()
        return profiler

    profiler = asyncio.run(run_async())
    print_profile(f"{where}: {calls:,} x civic311 AsyncClient.get_request", profiler)


def breakdown(number: int, profile: bool) -> None:
    print("\n-- where the time goes: in process, httpx.MockTransport, canned 1-request body")
    ours, theirs = in_process_sync(number)
    print(f"   sync:  civic311 {ours * 1e6:.1f}us, httpx {theirs * 1e6:.1f}us per call")
    result("overhead.inprocess_sync_vs_httpx", ours / theirs, "x", None)
    aours, atheirs = asyncio.run(in_process_async(number))
    print(f"   async: civic311 {aours * 1e6:.1f}us, httpx {atheirs * 1e6:.1f}us per call")
    result("overhead.inprocess_async_vs_httpx", aours / atheirs, "x", None)
    print("\n   stages of one civic311 call, each alone:")
    stages(number)
    if profile:
        profile_calls(PROFILE_CALLS, None, [])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    calls = 400 if args.quick else 2_000
    blocks = args.repeats or (8 if args.quick else 40)
    per_block = max(calls // blocks, 1)
    banner(f"overhead: get_request over loopback HTTP, {blocks} x {per_block} calls per contender")
    print(
        f"   note: the FakeCity server thread shares this process's {os.cpu_count()} cores and "
        "GIL with the client; most of each round trip is server time"
    )

    city, ids = make_city(500)
    with city.serve() as url:
        print(f"   FakeCity at {url}, {len(ids)} requests")

        client, raw, contenders = sync_contenders(url, ids)
        with client, raw:
            # Same answer both ways, or the comparison means nothing.
            model = client.get_request(ids[0])
            body = raw.get(f"{url}/requests/{ids[0]}.json").json()
            assert model.service_request_id == ids[0] == str(body[0]["service_request_id"])
            print("\n-- sync")
            sync = run_blocks(contenders, blocks, per_block)
            met_sync = report(sync, "civic311 Client", "httpx.Client", "overhead.sync_vs_httpx")

        print("\n-- async")
        asamples = asyncio.run(async_samples(url, ids, blocks, per_block))
        met_async = report(
            asamples, "civic311 AsyncClient", "httpx.AsyncClient", "overhead.async_vs_httpx"
        )
        profile = args.profile or not (met_sync and met_async)
        if profile:
            if not (met_sync and met_async):
                print("\nMISSED: overhead over the goal; where the client's time goes:")
            profile_calls(PROFILE_CALLS if not args.quick else 400, url, ids)

    breakdown(300 if args.quick else 1_000, profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
