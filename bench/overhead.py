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

Goal: civic311 / raw httpx <= 1.15x, sync and async. The FakeCity server thread runs in this
process and shares the machine's cores (and this interpreter's GIL) with the client: most of
each round trip is the server's work, which dilutes the client's overhead in the ratio.

Then, to show where civic311's own time goes (figures without goals):

* the same pairs over ``httpx.MockTransport`` with a canned body - no socket, no server: the
  client's overhead alone;
* the cost of each stage of a civic311 call, in isolation;
* a what-if: the in-process pair again with `protocol.redact_url` given a fast path (patched
  in this process only), to size a proposed change outside the wire layer.

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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import httpx
from _common import banner, gc_paused, median, paired_ratio, parse_args, result

import civic311
from civic311.testing import FakeCity

GOAL = 1.15
#: Stripped from file names in profiles.
PREFIX = os.path.dirname(os.path.dirname(httpx.__file__)) + os.sep
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
    url: str, ids: list[str], blocks: int, per_block: int, profile: bool
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
        samples = await run_blocks_async(contenders, blocks, per_block)
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await civic(per_block, 0)
            profiler.disable()
            print_profile("civic311 AsyncClient.get_request (client thread only)", profiler)
        return samples


def print_profile(label: str, profiler: cProfile.Profile, top: int = 30) -> None:
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).sort_stats("cumulative")
    stats.print_stats(r"civic311|tenacity|httpx/_(client|models|urls)", top)
    print(f"\n-- profile: {label}")
    print("   (cProfile, by cumulative time, civic311/tenacity/httpx rows; inflates call costs)")
    for line in stream.getvalue().splitlines():
        if line.strip() and not line.lstrip().startswith(("List reduced", "Ordered by")):
            print("   " + line.replace(PREFIX, ""))


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


def in_process_sync(number: int, repeats: int = 7) -> tuple[float, float, float]:
    """Best per-call seconds of civic311, civic311 with the what-if patch, and raw httpx,
    measured in turn within each repeat."""
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

        best = [float("inf")] * 3
        for _ in range(repeats):
            base = per_call(civic, number, repeats=1)
            with fast_redact_patched():
                fast = per_call(civic, number, repeats=1)
            theirs = per_call(plain, number, repeats=1)
            best = [min(b, t) for b, t in zip(best, (base, fast, theirs), strict=True)]
        return best[0], best[1], best[2]


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
        for name, fn in (("civic", civic), ("plain", plain)):
            for _ in range(3):
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
    import tenacity

    from civic311._protocol import (
        Settings,
        build_request,
        get_request_call,
        read_response,
        redact_url,
    )

    call = get_request_call("600001")
    settings = Settings()
    request = build_request(call, MOCK_BASE, "json", settings, None)
    response = httpx.Response(200, content=CANNED, request=request)
    now = datetime.now(timezone.utc)
    raw = httpx.Client()

    def one_attempt() -> None:
        for attempt in tenacity.Retrying(stop=tenacity.stop_after_attempt(4)):
            with attempt:
                pass

    async def one_async_attempt() -> None:
        async for attempt in tenacity.AsyncRetrying(stop=tenacity.stop_after_attempt(4)):
            with attempt:
                pass

    async def async_retrying(count: int) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(count):
                await one_async_attempt()
            best = min(best, (time.perf_counter() - start) / count)
        return best

    rows = [
        ("protocol.build_request", lambda: build_request(call, MOCK_BASE, "json", settings)),
        ("  raw: httpx.Client.build_request", lambda: raw.build_request("GET", str(request.url))),
        ("protocol.redact_url (twice per call)", lambda: redact_url(request.url)),
        (
            "protocol.read_response (1 request)",
            lambda: read_response(call, response, CANNED, "json", now),
        ),
        ("  raw: json.loads", lambda: json.loads(CANNED)),
        ("tenacity.Retrying, one attempt", one_attempt),
    ]
    raw.close()
    for label, fn in rows:
        print(f"   {label:<40}{per_call(fn, number) * 1e6:>8.1f}us")
    took = asyncio.run(async_retrying(number))
    print(f"   {'tenacity.AsyncRetrying, one attempt':<40}{took * 1e6:>8.1f}us")


def fast_redact_url(url: str | httpx.URL) -> str:
    """The proposed fast path: no re-parse of an `httpx.URL`, nothing to do without a secret."""
    from urllib.parse import urlencode

    from civic311._protocol import SECRET_NAMES

    parsed = url if isinstance(url, httpx.URL) else httpx.URL(str(url))
    query = parsed.query.lower()
    if not any(name.encode() in query for name in SECRET_NAMES):
        return str(parsed)
    params = [
        (k, "***" if k.lower() in SECRET_NAMES else v) for k, v in parsed.params.multi_items()
    ]
    return str(parsed.copy_with(query=urlencode(params).encode("ascii")))


@contextmanager
def fast_redact_patched() -> Iterator[None]:
    """`fast_redact_url` in place of `protocol.redact_url` everywhere (this process only)."""
    patched = [m for m in list(sys.modules.values()) if _has_redact(m)]
    saved = [(m, m.redact_url) for m in patched]
    try:
        for module in patched:
            module.redact_url = fast_redact_url
        yield
    finally:
        for module, original in saved:
            module.redact_url = original


def _has_redact(module: object) -> bool:
    return getattr(module, "__name__", "").startswith("civic311") and hasattr(module, "redact_url")


def breakdown(number: int) -> None:
    print("\n-- where the time goes: in process, httpx.MockTransport, canned 1-request body")
    ours, fast, theirs = in_process_sync(number)
    print(f"   sync:  civic311 {ours * 1e6:.1f}us, httpx {theirs * 1e6:.1f}us per call")
    result("overhead.inprocess_sync_vs_httpx", ours / theirs, "x", None)
    aours, atheirs = asyncio.run(in_process_async(number))
    print(f"   async: civic311 {aours * 1e6:.1f}us, httpx {atheirs * 1e6:.1f}us per call")
    result("overhead.inprocess_async_vs_httpx", aours / atheirs, "x", None)
    print("\n   stages of one civic311 call, each alone:")
    stages(number)
    print(
        f"\n   what-if: redact_url fast path (proposed for protocol.py): civic311 "
        f"{fast * 1e6:.1f}us instead of {ours * 1e6:.1f}us per call, httpx {theirs * 1e6:.1f}us"
    )
    result("overhead.inprocess_sync_whatif_fast_redact", fast / theirs, "x", None)


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
            if not met_sync or args.profile:
                if not met_sync:
                    print("\nMISSED: sync overhead over the goal; where the client's time goes:")
                profiler = cProfile.Profile()
                profiler.enable()
                contenders["civic311 Client"](per_block, 0)
                profiler.disable()
                print_profile("civic311 Client.get_request (client thread only)", profiler)

        print("\n-- async")
        asamples = asyncio.run(async_samples(url, ids, blocks, per_block, profile=False))
        met_async = report(
            asamples, "civic311 AsyncClient", "httpx.AsyncClient", "overhead.async_vs_httpx"
        )
        if not met_async or args.profile:
            if not met_async:
                print("\nMISSED: async overhead over the goal; where the client's time goes:")
            asyncio.run(async_samples(url, ids, 1, per_block, profile=True))

    breakdown(300 if args.quick else 1_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
