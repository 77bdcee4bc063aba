"""``civic311 demo``: the whole job, end to end, against two real loopback servers.

A primary and a mirror `FakeCity` share one store (two front ends of the same city) and serve
on 127.0.0.1. The demo lists services, reads a definition, files a noise complaint (a batch
service, so the city answers with a token), takes the primary down, and carries on: the client
fails over to the mirror, turns the token into a request id, and follows the request until the
city closes it. Time is virtual (a `VirtualClock` shared by the client and the city), so a
day of city work passes in a moment; the HTTP is real.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TextIO

import civic311
from civic311 import RetryPolicy
from civic311.testing import FakeCity, VirtualClock

__all__ = ["run_demo"]

#: How often the demo asks about the request while following it (virtual seconds).
FOLLOW_EVERY = 4 * 3600.0


def run_demo(*, seed: int, out: TextIO) -> int:
    """Run the demo, writing a transcript to *out*; returns the exit code."""

    def say(text: str = "") -> None:
        out.write(text + "\n")
        out.flush()

    clock = VirtualClock(start=datetime.now(timezone.utc).replace(microsecond=0))
    primary = FakeCity(seed=seed, clock=clock, token_delay=90.0, token_lookups=1)
    mirror = FakeCity(store=primary.store, clock=clock, token_delay=90.0, token_lookups=1)
    events: list[civic311.AttemptEvent] = []
    with primary.serve() as primary_url, mirror.serve() as mirror_url:
        say("civic311 demo: one city, two front ends on 127.0.0.1, time is virtual")
        say(f"  primary  {primary_url}")
        say(f"  mirror   {mirror_url}")
        say()
        with civic311.Client(
            [primary_url, mirror_url],
            clock=clock,
            timeout=5.0,
            retry=RetryPolicy(attempts=4, deadline=30.0),
            on_attempt=events.append,
        ) as client:
            services = client.list_services()
            say(f"1. The city offers {len(services)} services:")
            for service in services:
                say(f"     {service.service_code}  {service.service_name:<22} {service.type}")
            graffiti = next(s for s in services if s.service_code == "003")
            definition = client.get_service_definition(graffiti.service_code)
            say(f"2. {graffiti.service_name} asks:")
            for attribute in definition.attributes:
                need = "required" if attribute.required else "optional"
                say(f"     {attribute.code:<10} {attribute.datatype:<16} {need}")
            noise = next(s for s in services if s.type == "batch")
            report = civic311.NewRequest(
                service_code=noise.service_code,
                lat=39.1653,
                long=-86.5264,
                description="Amplified music past midnight, every night this week.",
            )
            receipt = client.submit(report)
            say(
                f"3. Filed a {noise.service_name.lower() if noise.service_name else 'report'} "
                f"({noise.type}): the city answered with token {receipt.token}"
            )
            primary.down()
            say("4. The primary goes down: connections to it are now refused.")
            events.clear()
            request_id = client.wait_for_id(receipt, timeout=600)
            refused = sum(1 for e in events if e.outcome != "ok")
            answered = len(events) - refused
            say(
                f"5. Token {receipt.token} became request {request_id} after {answered} "
                "look-ups answered by the mirror; the primary refused "
                f"{refused} attempts (3 before it was marked down, then one probe per cool-down)"
            )
            health = {h.url: h for h in client.health()}
            say(
                f"6. Health: primary {health[primary_url].state.value}, "
                f"mirror {health[mirror_url].state.value}"
            )
            say(f"7. Following request {request_id}, asking every {FOLLOW_EVERY / 3600:g} hours:")
            checks = 0
            seen: tuple[object, ...] = ()
            while True:
                request = client.get_request(request_id)
                checks += 1
                if (request.status, request.status_notes) != seen:
                    seen = (request.status, request.status_notes)
                    when = request.updated_datetime or request.requested_datetime
                    stamp = when.strftime("%Y-%m-%d %H:%M UTC") if when else "?"
                    notes = f": {request.status_notes}" if request.status_notes else ""
                    say(f"     {stamp}  {request.status}{notes}")
                if request.is_closed or checks >= 20:
                    break
                clock.sleep(FOLLOW_EVERY)
        filed = primary.count_created(description=report.description)
        say()
        times = "once" if filed == 1 else f"{filed} times"
        say(
            f"Done: the report was filed {times} and followed to '{request.status}' in "
            f"{checks} status checks, through the primary's outage."
        )
    return 0 if filed == 1 and request.is_closed else 1
