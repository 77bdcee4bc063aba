"""The durable outbox: stored before sending, queued while the city is down, never doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import civic311
from civic311 import NewRequest
from civic311._resilience import RetryPolicy
from civic311.outbox import Outbox
from civic311.testing import FakeCity, Fault, VirtualClock

SECRET = "sk-outbox-SECRET-42"


def pothole(n: int) -> NewRequest:
    return NewRequest(
        service_code="001", lat=37.7 + n / 10_000, long=-122.4, description=f"Pothole #{n}"
    )


def client_for(city: FakeCity, clock: VirtualClock, **extra: object) -> civic311.Client:
    return civic311.Client(
        city.base_url,
        transport=city.transport(),
        clock=clock,
        api_key=SECRET,
        retry=RetryPolicy.no_wait(attempts=2),
        **extra,  # type: ignore[arg-type]
    )


def test_file_is_private_and_holds_no_key(tmp_path: Path) -> None:
    """The outbox file is created 0600 and never stores the api_key."""
    clock = VirtualClock()
    city = FakeCity(clock=clock, api_key=SECRET)
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as outbox, client_for(city, clock) as client:
        entry = outbox.submit(client, pothole(1))
        assert entry.receipt is not None
        assert entry.receipt.service_request_id is not None
        assert outbox.get(entry.local_id).state == "sent"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for file in tmp_path.iterdir():
        assert SECRET.encode() not in file.read_bytes()


def test_city_down_queues_and_flush_sends_oldest_first(tmp_path: Path) -> None:
    """With every endpoint down the request is queued; flush files queued ones in order."""
    clock = VirtualClock()
    city = FakeCity(clock=clock, api_key=SECRET)
    with Outbox(tmp_path / "o.sqlite") as outbox, client_for(city, clock) as client:
        city.down()
        entries = [outbox.submit(client, pothole(n)) for n in range(3)]
        assert all(e.state == "queued" and e.receipt is None for e in entries)
        assert [e.state for e in outbox.pending()] == ["queued"] * 3
        assert city.count_created() == 0
        city.up()
        clock.advance(60)  # past the circuit's cool-down
        report = outbox.flush(client)
        assert report.sent == tuple(e.local_id for e in entries)
        assert outbox.pending() == []
    assert [r.description for r in city.created] == [f"Pothole #{n}" for n in range(3)]


def test_flush_stops_while_the_city_is_still_down(tmp_path: Path) -> None:
    """A flush against a down city keeps every entry queued and in order."""
    clock = VirtualClock()
    city = FakeCity(clock=clock)
    with Outbox(tmp_path / "o.sqlite") as outbox, client_for(city, clock) as client:
        city.down()
        for n in range(3):
            outbox.submit(client, pothole(n))
        report = outbox.flush(client)
        assert len(report.queued) == 1  # the first one, then it stopped
        assert [e.state for e in outbox.pending()] == ["queued"] * 3


def test_ambiguous_post_with_outbox_is_reconciled(tmp_path: Path) -> None:
    """A POST whose answer is lost is found on the server, not sent twice."""
    clock = VirtualClock()
    city = FakeCity(clock=clock)
    city.inject(Fault.drop_after_create(), times=1, method="POST")
    with Outbox(tmp_path / "o.sqlite") as outbox, client_for(city, clock) as client:
        entry = outbox.submit(client, pothole(7))
        assert entry.receipt is not None
        assert entry.receipt.reconciled
        assert outbox.get(entry.local_id).state == "sent"
    assert city.count_created() == 1


def test_uncertain_entry_is_looked_for_before_being_resent(tmp_path: Path) -> None:
    """An uncertain entry is reconciled on flush when found, and re-sent only after the grace."""
    clock = VirtualClock()
    city = FakeCity(clock=clock)
    # the POST times out, and the reconcile look-ups fail too: the outcome stays unknown
    city.inject(Fault.hang(), times=1, method="POST")
    city.inject(Fault.status(500), times=None, method="GET")
    with (
        Outbox(tmp_path / "o.sqlite", resend_after=600) as outbox,
        client_for(city, clock, reconcile_wait=2) as client,
    ):
        entry = outbox.submit(client, pothole(1))
        assert entry.state == "uncertain"
        local_id = entry.local_id
        assert outbox.get(local_id).state == "uncertain"
        assert city.count_created() == 0  # FakeCity's hang never created it
        report = outbox.flush(client)  # still cannot look: stays uncertain, nothing sent
        assert report.uncertain == (local_id,)
        city.clear_faults()
        clock.advance(30)
        report = outbox.flush(client)  # can look now, not found, grace not over: wait
        assert report.uncertain == (local_id,)
        clock.advance(600)
        report = outbox.flush(client)  # grace over: sent
        assert report.sent == (local_id,)
    assert city.count_created() == 1


def test_fatal_refusal_is_recorded_and_raised(tmp_path: Path) -> None:
    """A request the city refuses (bad service_code) is marked failed and the error raised."""
    clock = VirtualClock()
    city = FakeCity(clock=clock)
    with Outbox(tmp_path / "o.sqlite") as outbox, client_for(city, clock) as client:
        with pytest.raises(civic311.NotFoundError):
            outbox.submit(client, NewRequest(service_code="999", address_id="1"))
        (entry,) = outbox.entries()
        assert entry.state == "failed"
        assert "404" in (entry.last_error or "")


def test_async_client_uses_the_outbox(tmp_path: Path) -> None:
    """Outbox.asubmit and Outbox.aflush with an AsyncClient behave like the sync pair."""
    clock = VirtualClock()
    city = FakeCity(clock=clock)

    async def run() -> None:
        async with civic311.AsyncClient(
            city.base_url,
            transport=city.transport(),
            clock=clock,
            retry=RetryPolicy.no_wait(attempts=2),
        ) as client:
            with Outbox(tmp_path / "o.sqlite") as outbox:
                city.down()
                entry = await outbox.asubmit(client, pothole(1))
                assert entry.state == "queued"
                city.up()
                clock.advance(60)
                report = await outbox.aflush(client)
                assert report.sent == (entry.local_id,)

    asyncio.run(run())
    assert city.count_created() == 1


def test_outbox_refuses_bad_arguments(tmp_path: Path) -> None:
    """Bad paths, options, requests and clients raise InvalidRequestError naming them."""
    with pytest.raises(civic311.InvalidRequestError, match="path"):
        Outbox(5)  # type: ignore[arg-type]
    with pytest.raises(civic311.InvalidRequestError, match="resend_after"):
        Outbox(tmp_path / "o.sqlite", resend_after=-1)
    clock = VirtualClock()
    with Outbox(tmp_path / "o.sqlite") as outbox:
        with pytest.raises(civic311.InvalidRequestError, match="request"):
            outbox.add("pothole", now=clock.now())  # type: ignore[arg-type]
        with pytest.raises(civic311.InvalidRequestError, match="aflush"):
            outbox.flush(object())  # type: ignore[arg-type]
        with pytest.raises(KeyError, match="no outbox entry"):
            outbox.get("nope")
        with pytest.raises(civic311.InvalidRequestError, match="asubmit"):
            outbox.submit(object(), pothole(1))  # type: ignore[arg-type]
        with (
            civic311.Client("https://x.example/v2") as client,
            pytest.raises(civic311.InvalidRequestError, match="request"),
        ):
            outbox.submit(client, "pothole")  # type: ignore[arg-type]
        assert len(outbox) == 0  # nothing stored for a refused request


FLUSHER = textwrap.dedent(
    """
    import sys
    import civic311
    import civic311.outbox
    from civic311._resilience import RetryPolicy

    url, path = sys.argv[1], sys.argv[2]
    with civic311.outbox.Outbox(path, resend_after=0) as outbox:
        with civic311.Client(url, retry=RetryPolicy.no_wait(attempts=2), timeout=5) as client:
            print("flushing", flush=True)
            outbox.flush(client)
    print("done", flush=True)
    """
)


@pytest.mark.slow
def test_flush_survives_being_killed_mid_flush(tmp_path: Path) -> None:
    """Kill -9 a flushing process halfway; a second flush files every request exactly once."""
    count = 24
    city = FakeCity(seed=3)  # real clock: a separate process shares no virtual time
    path = tmp_path / "o.sqlite"
    script = tmp_path / "flusher.py"
    script.write_text(FLUSHER)
    with city.serve() as url:
        # The city is down while the reports are made: each one waits in the outbox.
        city.down()
        with (
            Outbox(path, resend_after=0) as outbox,
            civic311.Client(url, retry=None, timeout=1) as client,
        ):
            for n in range(count):
                assert outbox.submit(client, pothole(n)).state == "queued"
            assert [e.state for e in outbox.entries()] == ["queued"] * count
        city.up()
        city.inject(Fault.latency(0.05), method="POST")
        child = subprocess.Popen(
            [sys.executable, str(script), url, str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while city.count_created() < count // 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(timeout=10)
            assert child.stdout is not None
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        filed_before = city.count_created()
        assert 0 < filed_before < count, filed_before
        city.clear_faults()
        with (
            Outbox(path, resend_after=0) as outbox,
            civic311.Client(url, reconcile_wait=0.5) as client,
        ):
            pending = len(outbox.pending())
            assert pending > 0
            report = outbox.flush(client)
            assert outbox.pending() == []
            assert report.done == pending
    descriptions = sorted(r.description or "" for r in city.created)
    assert descriptions == sorted(f"Pothole #{n}" for n in range(count))


def test_transport_refused_through_a_real_port_queues(tmp_path: Path) -> None:
    """A refused loopback connection counts as never sent, so the request is queued."""
    with (
        Outbox(tmp_path / "o.sqlite") as outbox,
        civic311.Client("http://127.0.0.1:9/open311/v2", retry=None, timeout=1) as client,
    ):
        entry = outbox.submit(client, pothole(1))
        assert entry.state == "queued"
        assert outbox.get(entry.local_id).state == "queued"
