"""The endpoint pool: health states, circuit breaking, half-open probes, formats."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from civic311._resilience.pool import Endpoint, EndpointHealth, EndpointPool, EndpointState

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
A, B, C = "https://a.example/v2", "https://b.example/v2", "https://c.example/v2"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_pool(*urls: str, **kwargs: object) -> EndpointPool:
    return EndpointPool(list(urls or (A, B)), wall=T0, **kwargs)  # type: ignore[arg-type]


def fail(pool: EndpointPool, endpoint: Endpoint, now: float, times: int = 1) -> None:
    for _ in range(times):
        pool.record_failure(endpoint, error="ConnectError: refused", now=now, wall=at(now))


def health_of(pool: EndpointPool, index: int) -> EndpointHealth:
    return pool.health()[index]


def test_new_pool_offers_every_endpoint_in_order() -> None:
    """A fresh pool offers all endpoints, primary first, all up since creation."""
    pool = make_pool(A, B, C)
    assert [e.url for e in pool.candidates(0.0)] == [A, B, C]
    assert all(e.is_probe is False for e in pool.candidates(0.0))
    assert [(h.state, h.since) for h in pool.health()] == [(EndpointState.UP, T0)] * 3


def test_one_failure_degrades() -> None:
    """The first failure makes an endpoint degraded, still offered."""
    pool = make_pool()
    primary = pool.candidates(0.0)[0]
    fail(pool, primary, 1.0)
    health = health_of(pool, 0)
    assert (health.state, health.since, health.consecutive_failures) == (
        EndpointState.DEGRADED,
        at(1.0),
        1,
    )
    assert health.last_error == "ConnectError: refused"
    assert [e.url for e in pool.candidates(1.0)] == [A, B]


def test_k_failures_take_it_down_and_it_is_skipped() -> None:
    """failure_threshold consecutive failures mark it down; it is skipped while cooling."""
    pool = make_pool(failure_threshold=3, cooldown=30.0)
    primary = pool.candidates(0.0)[0]
    fail(pool, primary, 1.0, times=2)
    assert health_of(pool, 0).state is EndpointState.DEGRADED
    fail(pool, primary, 2.0)
    health = health_of(pool, 0)
    assert (health.state, health.since) == (EndpointState.DOWN, at(2.0))
    assert health.next_probe_at == at(32.0)
    assert [e.url for e in pool.candidates(2.0)] == [B]
    assert [e.url for e in pool.candidates(31.9)] == [B]


def test_state_value_compares_to_plain_strings() -> None:
    """EndpointState values are strings users can compare with "down"."""
    pool = make_pool(failure_threshold=1)
    fail(pool, pool.candidates(0.0)[0], 0.0)
    assert health_of(pool, 0).state == "down"
    assert health_of(pool, 1).state == "up"


def test_threshold_one_goes_straight_down() -> None:
    """With failure_threshold=1 the first failure is enough to go down."""
    pool = make_pool(failure_threshold=1)
    fail(pool, pool.candidates(0.0)[0], 0.0)
    assert health_of(pool, 0).state is EndpointState.DOWN


def test_success_resets_consecutive_failures() -> None:
    """A success between failures resets the count, so K is about failures in a row."""
    pool = make_pool(failure_threshold=3)
    primary = pool.candidates(0.0)[0]
    fail(pool, primary, 0.0, times=2)
    pool.record_success(primary, latency=0.1, now=1.0, wall=at(1.0))
    fail(pool, primary, 2.0, times=2)
    health = health_of(pool, 0)
    assert (health.state, health.consecutive_failures) == (EndpointState.DEGRADED, 2)
    assert (health.calls, health.failures) == (5, 4)


def test_degraded_recovers_on_success() -> None:
    """A success takes a degraded endpoint back up, with a new `since`."""
    pool = make_pool()
    primary = pool.candidates(0.0)[0]
    fail(pool, primary, 0.0)
    pool.record_success(primary, latency=0.2, now=5.0, wall=at(5.0))
    health = health_of(pool, 0)
    assert (health.state, health.since, health.consecutive_failures) == (
        EndpointState.UP,
        at(5.0),
        0,
    )
    assert health.last_error == "ConnectError: refused"  # kept for the record


def test_since_only_moves_on_state_change() -> None:
    """Repeated successes (or failures while down) keep the original `since`."""
    pool = make_pool(failure_threshold=1, cooldown=10.0)
    primary, secondary = pool.candidates(0.0)
    pool.record_success(secondary, latency=0.1, now=4.0, wall=at(4.0))
    assert health_of(pool, 1).since == T0
    fail(pool, primary, 1.0)
    fail(pool, primary, 2.0)
    assert health_of(pool, 0).since == at(1.0)


def test_cooled_down_endpoint_is_offered_as_a_single_probe() -> None:
    """After the cool-down one caller gets a half-open probe; others skip the endpoint."""
    pool = make_pool(failure_threshold=1, cooldown=30.0)
    fail(pool, pool.candidates(0.0)[0], 0.0)
    first = pool.candidates(30.0)
    assert [e.url for e in first] == [A, B]
    assert first[0].is_probe
    assert not first[1].is_probe
    assert [e.url for e in pool.candidates(30.0)] == [B]
    assert [e.url for e in pool.candidates(45.0)] == [B]


def test_probe_success_brings_it_back_up() -> None:
    """A successful probe makes the endpoint up and offered to everyone again."""
    pool = make_pool(failure_threshold=1, cooldown=30.0)
    fail(pool, pool.candidates(0.0)[0], 0.0)
    probe = pool.candidates(31.0)[0]
    pool.record_success(probe, latency=0.3, now=31.5, wall=at(31.5))
    health = health_of(pool, 0)
    assert (health.state, health.since, health.next_probe_at) == (EndpointState.UP, at(31.5), None)
    again = pool.candidates(32.0)
    assert [e.url for e in again] == [A, B]
    assert not again[0].is_probe


def test_probe_failure_goes_back_down_with_a_fresh_cooldown() -> None:
    """A failed probe keeps the endpoint down (same `since`) and restarts the cool-down."""
    pool = make_pool(failure_threshold=3, cooldown=30.0)
    primary = pool.candidates(0.0)[0]
    fail(pool, primary, 0.0, times=3)
    probe = pool.candidates(30.0)[0]
    assert probe.is_probe
    fail(pool, probe, 31.0)
    health = health_of(pool, 0)
    assert (health.state, health.since, health.next_probe_at) == (
        EndpointState.DOWN,
        at(0.0),
        at(61.0),
    )
    assert health.consecutive_failures == 4
    assert [e.url for e in pool.candidates(60.9)] == [B]
    assert pool.candidates(61.0)[0].is_probe


def test_unused_probe_can_be_released() -> None:
    """release() hands an unused probe to the next caller at once."""
    pool = make_pool(failure_threshold=1, cooldown=10.0)
    fail(pool, pool.candidates(0.0)[0], 0.0)
    probe = pool.candidates(10.0)[0]
    pool.release(probe)
    pool.release(probe)  # idempotent
    pool.release(pool.endpoints()[1])  # no-op for non-probes
    assert pool.candidates(10.0)[0].is_probe


def test_stale_release_does_not_free_a_newer_probe() -> None:
    """Releasing an expired probe's handle leaves the current prober's claim alone."""
    pool = make_pool(failure_threshold=1, cooldown=10.0, probe_timeout=5.0)
    fail(pool, pool.candidates(0.0)[0], 0.0)
    stale = pool.candidates(10.0)[0]
    current = pool.candidates(15.0)[0]  # the first probe expired after 5 s
    assert current.is_probe
    assert current.probe != stale.probe
    pool.release(stale)
    assert [e.url for e in pool.candidates(15.0)] == [B]


def test_forgotten_probe_expires() -> None:
    """A probe that never reports is offered again after probe_timeout."""
    pool = make_pool(failure_threshold=1, cooldown=10.0, probe_timeout=20.0)
    fail(pool, pool.candidates(0.0)[0], 0.0)
    assert pool.candidates(10.0)[0].is_probe
    assert [e.url for e in pool.candidates(29.9)] == [B]
    assert pool.candidates(30.0)[0].is_probe


def test_all_down_gives_no_candidates() -> None:
    """When every endpoint is down and cooling, candidates() is empty: fail fast."""
    pool = make_pool(failure_threshold=1, cooldown=30.0)
    for endpoint in pool.candidates(0.0):
        fail(pool, endpoint, 0.0)
    assert pool.candidates(1.0) == []
    assert [h.state for h in pool.health()] == [EndpointState.DOWN] * 2
    assert len(pool.candidates(30.0)) == 2


def test_all_down_with_probes_taken_gives_no_candidates() -> None:
    """Endpoints whose probe another caller holds are not offered either."""
    pool = make_pool(failure_threshold=1, cooldown=30.0)
    for endpoint in pool.candidates(0.0):
        fail(pool, endpoint, 0.0)
    assert all(e.is_probe for e in pool.candidates(30.0))
    assert pool.candidates(30.0) == []


def test_latency_is_an_exponentially_weighted_average() -> None:
    """latency_avg starts at the first sample, then moves by latency_alpha per sample."""
    pool = make_pool(latency_alpha=0.5)
    primary = pool.candidates(0.0)[0]
    assert health_of(pool, 0).latency_avg is None
    for latency in (1.0, 3.0, 2.0):
        pool.record_success(primary, latency=latency, now=0.0, wall=T0)
    assert health_of(pool, 0).latency_avg == pytest.approx(2.0)  # 1 → 2 → 2


def test_failures_do_not_count_as_latency() -> None:
    """Only successful calls feed the latency average."""
    pool = make_pool()
    primary = pool.candidates(0.0)[0]
    fail(pool, primary, 0.0)
    assert health_of(pool, 0).latency_avg is None


def test_format_switch_is_visible_in_health() -> None:
    """switch_format changes format_of() and shows as format_switched in health()."""
    pool = make_pool(format="json")
    primary, secondary = pool.candidates(0.0)
    pool.switch_format(primary, "xml")
    assert pool.format_of(primary) == "xml"
    assert pool.format_of(secondary) == "json"
    assert [(h.format, h.format_switched) for h in pool.health()] == [
        ("xml", True),
        ("json", False),
    ]
    pool.switch_format(primary, "json")
    assert health_of(pool, 0).format_switched is False


def test_per_endpoint_initial_formats() -> None:
    """format may be given per URL: a JSON primary and an XML-only mirror."""
    pool = make_pool(format=("json", "xml"))
    assert [h.format for h in pool.health()] == ["json", "xml"]
    assert not any(h.format_switched for h in pool.health())


def test_switch_to_unknown_format_is_refused() -> None:
    """Only "json" and "xml" are formats."""
    pool = make_pool()
    with pytest.raises(ValueError, match="fmt"):
        pool.switch_format(pool.candidates(0.0)[0], "yaml")


def test_foreign_endpoint_is_refused() -> None:
    """A handle from another pool (or a forged one) raises instead of corrupting state."""
    pool = make_pool()
    with pytest.raises(ValueError, match="does not belong"):
        pool.record_success(Endpoint(0, C), latency=0.1, now=0.0, wall=T0)
    with pytest.raises(ValueError, match="does not belong"):
        pool.format_of(Endpoint(5, A))


def test_probe_handles_compare_equal_to_plain_handles() -> None:
    """An Endpoint's probe ticket is not part of its identity."""
    assert Endpoint(0, A, probe=3) == Endpoint(0, A)
    assert hash(Endpoint(0, A, probe=3)) == hash(Endpoint(0, A))


def test_single_url_string_is_one_endpoint() -> None:
    """A lone URL string is one endpoint, not one per character."""
    pool = EndpointPool(A, wall=T0)
    assert [e.url for e in pool.candidates(0.0)] == [A]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"urls": []}, "urls", id="no-urls"),
        pytest.param({"urls": [A, ""]}, "urls", id="empty-url"),
        pytest.param({"urls": [A, A]}, "urls", id="repeated-url"),
        pytest.param({"format": "yaml"}, "format", id="bad-format"),
        pytest.param({"format": ("json",)}, "format", id="format-count-mismatch"),
        pytest.param({"format": ("json", "csv")}, "format", id="bad-format-in-list"),
        pytest.param({"failure_threshold": 0}, "failure_threshold", id="threshold-zero"),
        pytest.param({"cooldown": -1}, "cooldown", id="negative-cooldown"),
        pytest.param({"latency_alpha": 0}, "latency_alpha", id="alpha-zero"),
        pytest.param({"latency_alpha": 1.5}, "latency_alpha", id="alpha-above-one"),
        pytest.param({"probe_timeout": -1}, "probe_timeout", id="negative-probe-timeout"),
    ],
)
def test_invalid_arguments_name_the_field(kwargs: dict[str, object], field: str) -> None:
    """Bad pool configuration raises ValueError naming the argument."""
    arguments: dict[str, object] = {"urls": [A, B], "wall": T0, **kwargs}
    with pytest.raises(ValueError, match=field):
        EndpointPool(**arguments)  # type: ignore[arg-type]


def test_repr_hides_internal_state() -> None:
    """The repr shows configuration, not the lock or slots."""
    text = repr(make_pool())
    assert A in text
    assert "Lock" not in text


def test_concurrent_reports_are_all_counted() -> None:
    """Many threads choosing and reporting at once lose no update and break no invariant."""
    pool = make_pool(A, B, C, failure_threshold=2, cooldown=0.0)
    threads, iterations = 8, 300
    barrier = threading.Barrier(threads)
    probes_seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        barrier.wait()
        for i in range(iterations):
            now = float(i)
            candidates = pool.candidates(now)
            with lock:
                probes_seen.extend((e.index, e.probe) for e in candidates if e.is_probe)
            endpoint = candidates[0] if candidates else pool.endpoints()[0]
            if (seed + i) % 3 == 0:
                pool.record_failure(endpoint, error="boom", now=now, wall=at(now))
            else:
                pool.record_success(endpoint, latency=0.01, now=now, wall=at(now))
            for unused in candidates[1:]:
                pool.release(unused)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in workers)

    health = pool.health()
    assert sum(h.calls for h in health) == threads * iterations
    assert sum(h.failures for h in health) == sum(
        1 for seed in range(threads) for i in range(iterations) if (seed + i) % 3 == 0
    )
    # A probe ticket is never handed out twice for the same endpoint.
    assert len(probes_seen) == len(set(probes_seen))
    assert all(h.consecutive_failures >= 0 for h in health)


def test_concurrent_callers_get_exactly_one_probe() -> None:
    """Of many threads asking at once after the cool-down, exactly one gets the probe."""
    pool = make_pool(failure_threshold=1, cooldown=10.0)
    fail(pool, pool.candidates(0.0)[0], 0.0)
    threads = 16
    barrier = threading.Barrier(threads)
    got: list[list[Endpoint]] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        offered = pool.candidates(10.0)
        with lock:
            got.append(offered)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=30)
    assert len(got) == threads
    assert sum(1 for offered in got for e in offered if e.is_probe) == 1
    assert all(any(e.url == B for e in offered) for offered in got)
