"""Soak: 1,000 submissions through AsyncClient while 30% of everything fails.

A primary and a mirror FakeCity share one store on 127.0.0.1. Both inject a seeded 30% of
faults of every kind: refused answers, 500/502/503/429 with and without Retry-After, HTML
maintenance pages, truncated bodies, resets, hangs, and the ambiguous POST (the request is
created, then the connection drops). Every submission goes through an Outbox. At the end the
faults stop and the outbox is flushed, and the city's store is compared with what was sent:

- filed: receipts the city gave directly;
- reconciled: ambiguous POSTs found on the server instead of being re-sent;
- queued: requests that waited in the outbox (then flushed);
- lost: sent but not on the server (must be 0);
- duplicated: on the server more than once (must be 0).

Second part: the extra cost of a dead primary (one that accepts connections and never answers)
on the first call and on the hundredth, against a client that talks to the mirror alone.

    python bench/soak.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import civic311
import civic311.outbox
from civic311._resilience import RetryPolicy
from civic311.testing import FakeCity, Fault

FAULT_KINDS = (
    Fault.status(500),
    Fault.status(502),
    Fault.status(503, retry_after="0"),
    Fault.status(503, body="empty"),
    Fault.status(429, retry_after="0"),
    Fault.maintenance(),
    Fault.truncated(),
    Fault.truncated(advertise_full_length=False),
    Fault.reset(),
    Fault.hang(),
    Fault.drop_after_create(),
)

POLICY = RetryPolicy(attempts=6, deadline=20.0, initial_wait=0.02, max_wait=0.2)


def report(n: int) -> civic311.NewRequest:
    return civic311.NewRequest(
        service_code="001",
        lat=39.0 + n / 100_000,
        long=-86.5,
        description=f"Soak pothole #{n}",
    )


async def soak(count: int, concurrency: int) -> dict[str, float]:
    primary = FakeCity(seed=7)
    mirror = FakeCity(store=primary.store)
    with (
        tempfile.TemporaryDirectory() as tmp,
        primary.serve() as primary_url,
        mirror.serve() as mirror_url,
    ):
        primary.inject(Fault.flaky(0.3, faults=FAULT_KINDS, seed=1))
        mirror.inject(Fault.flaky(0.3, faults=FAULT_KINDS, seed=2))
        outcomes: Counter[str] = Counter()
        gate = asyncio.Semaphore(concurrency)
        started = time.perf_counter()
        with civic311.outbox.Outbox(Path(tmp) / "soak.sqlite", resend_after=0) as outbox:
            async with civic311.AsyncClient(
                [primary_url, mirror_url],
                retry=POLICY,
                timeout=0.5,
                reconcile_wait=2.0,
                cooldown=1.0,
            ) as client:

                async def one(n: int) -> None:
                    async with gate:
                        try:
                            entry = await outbox.asubmit(client, report(n))
                        except civic311.Civic311Error as exc:  # refused by the city: counted
                            outcomes[f"error {type(exc).__name__}"] += 1
                            return
                    if entry.state != "sent":
                        outcomes["queued"] += 1
                    elif entry.receipt is not None and entry.receipt.reconciled:
                        outcomes["reconciled"] += 1
                    else:
                        outcomes["filed"] += 1

                await asyncio.gather(*(one(n) for n in range(count)))
            busy = time.perf_counter() - started
            primary.clear_faults()
            mirror.clear_faults()
            # The storm is over: a fresh client flushes. Requests now show at once, so a short
            # reconcile budget is enough to tell "created" from "never arrived".
            async with civic311.AsyncClient(
                [primary_url, mirror_url], retry=POLICY, reconcile_wait=0.05
            ) as flusher:
                flushes = 0
                while outbox.pending() and flushes < 10:
                    flush = await outbox.aflush(flusher)
                    outcomes["flushed: sent"] += len(flush.sent)
                    outcomes["flushed: reconciled"] += len(flush.reconciled)
                    flushes += 1
            left = len(outbox.pending())
        wall = time.perf_counter() - started
        on_server = Counter(r.description for r in primary.created)
        sent = {report(n).description for n in range(count)}
        lost = sum(1 for d in sent if on_server[d] == 0)
        duplicated = sum(1 for d in sent if on_server[d] > 1)
    for name, value in sorted(outcomes.items()):
        print(f"  {name:<24} {value:6d}")
    print(f"  {'still pending':<24} {left:6d}")
    print(f"  {'lost':<24} {lost:6d}   (must be 0)")
    print(f"  {'duplicated on the server':<24} {duplicated:6d}   (must be 0)")
    print(f"  wall time {wall:.1f} s ({busy:.1f} s submitting, concurrency {concurrency})")
    return {"lost": lost, "duplicated": duplicated, "left": left, "wall": wall}


async def dead_primary_cost(calls: int) -> tuple[float, float]:
    mirror = FakeCity(seed=8)
    dead = FakeCity(store=mirror.store)
    with dead.serve() as dead_url, mirror.serve() as mirror_url:
        dead.inject(Fault.hang())  # accepts, never answers: the expensive kind of dead
        async with (
            civic311.AsyncClient(mirror_url) as alone,
            civic311.AsyncClient([dead_url, mirror_url], timeout=1.0, retry=POLICY) as both,
        ):
            request_id = (await alone.submit(report(0))).service_request_id or ""
            baseline, with_dead = [], []
            for _ in range(calls):
                t = time.perf_counter()
                await alone.get_request(request_id)
                baseline.append(time.perf_counter() - t)
                t = time.perf_counter()
                await both.get_request(request_id)
                with_dead.append(time.perf_counter() - t)
        dead.clear_faults()
    base = statistics.median(baseline)
    return with_dead[0] - base, with_dead[calls - 1] - base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 submissions instead of 1,000")
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    count = args.count or (200 if args.quick else 1000)
    print(f"soak: {count} submissions, 30% faults of {len(FAULT_KINDS)} kinds on both servers")
    figures = asyncio.run(soak(count, args.concurrency))
    first, hundredth = asyncio.run(dead_primary_cost(100))
    print("dead primary (hangs; client timeout 1.0 s), extra latency over the mirror alone:")
    print(f"  first call      {first * 1000:8.1f} ms")
    print(f"  hundredth call  {hundredth * 1000:8.1f} ms   (should be about zero)")
    ok = figures["lost"] == 0 and figures["duplicated"] == 0 and figures["left"] == 0
    print(
        f"RESULT soak_lost {figures['lost']:.0f} goal=0 "
        f"{'met' if figures['lost'] == 0 else 'missed'}"
    )
    print(
        f"RESULT soak_duplicated {figures['duplicated']:.0f} goal=0 "
        f"{'met' if figures['duplicated'] == 0 else 'missed'}"
    )
    print(
        f"RESULT dead_primary_100th_ms {hundredth * 1000:.1f} goal<=5 "
        f"{'met' if hundredth < 0.005 else 'missed'}"
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
