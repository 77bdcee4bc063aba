"""Faults, observed from a plain httpx client over transport() and over serve()."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

import httpx
import pytest

from civic311.testing import FakeCity, Fault, VirtualClock

from .fakecity_helpers import POTHOLE, body, spec_errors


def _wait_for(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    """Poll a callable until it is true, for at most *seconds* (tiny real sleeps)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_status_503_with_retry_after_then_recovers(http: httpx.Client, city: FakeCity) -> None:
    """A 503 with Retry-After seconds and an HTML body, for `times` requests, then normal."""
    city.inject(Fault.status(503, retry_after="2"), times=2)
    for _ in range(2):
        response = http.get("services.json")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "2"
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "<html>" in response.text
    assert http.get("services.json").status_code == 200
    assert city.faults.active == []


def test_status_429_with_http_date_and_empty_body(http: httpx.Client, city: FakeCity) -> None:
    """A 429 may carry Retry-After as an HTTP date and no body at all."""
    when = datetime(2026, 1, 1, 0, 0, 2, tzinfo=timezone.utc)
    city.inject(Fault.status(429, retry_after=when, body="empty"), times=1)
    response = http.get("requests.json")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "Thu, 01 Jan 2026 00:00:02 GMT"
    assert response.content == b""


@pytest.mark.parametrize("code", [500, 502])
@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_status_with_error_body(http: httpx.Client, city: FakeCity, code: int, fmt: str) -> None:
    """A 5xx can carry a spec error body in the requested format."""
    city.inject(Fault.status(code, body="error"), times=1)
    response = http.get(f"services.{fmt}")
    assert response.status_code == code
    assert spec_errors(response, fmt)[0][0] == code


def test_status_text_body(http: httpx.Client, city: FakeCity) -> None:
    """A status fault can answer text/plain (a proxy's one-liner)."""
    city.inject(Fault.status(502, body="text"), times=1)
    response = http.get("services.json")
    assert (response.status_code, response.headers["content-type"]) == (
        502,
        "text/plain; charset=utf-8",
    )


def test_status_fault_does_not_process_a_post(http: httpx.Client, city: FakeCity) -> None:
    """A POST answered by a status fault is not stored (it never reached the city)."""
    city.inject(Fault.status(503), times=1)
    assert http.post("requests.json", data=POTHOLE).status_code == 503
    assert city.count_created() == 0


def test_maintenance_page_is_html_with_200(http: httpx.Client, city: FakeCity) -> None:
    """The maintenance fault answers HTTP 200 text/html, which is not JSON."""
    city.inject(Fault.maintenance(), times=1)
    response = http.get("requests.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "maintenance" in response.text
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_truncated_body(http: httpx.Client, city: FakeCity, mode: str) -> None:
    """serve(): full Content-Length then close is a protocol error; transport(): a cut body."""
    city.inject(Fault.truncated(), times=1)
    if mode == "serve":
        with pytest.raises(httpx.RemoteProtocolError):
            http.get("services.json")
    else:
        response = http.get("services.json")
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)
    assert http.get("services.json").status_code == 200


def test_truncated_with_honest_length(http: httpx.Client, city: FakeCity) -> None:
    """truncated(advertise_full_length=False) delivers half a document with a matching length."""
    full = http.get("services.xml").content
    city.inject(Fault.truncated(advertise_full_length=False), times=1)
    response = http.get("services.xml")
    assert response.status_code == 200
    assert response.content == full[: len(full) // 2]
    assert response.headers["content-length"] == str(len(full) // 2)


def test_truncated_post_was_created(http: httpx.Client, city: FakeCity) -> None:
    """A truncated POST answer still means the request was filed."""
    city.inject(Fault.truncated(advertise_full_length=False), times=1, method="POST")
    response = http.post("requests.json", data=POTHOLE)
    assert response.status_code == 200
    assert city.count_created() == 1


def test_latency(http: httpx.Client, city: FakeCity, clock: VirtualClock, mode: str) -> None:
    """serve() sleeps for real (tiny here); transport() sleeps the city's virtual clock."""
    seconds = 0.05 if mode == "serve" else 30.0
    city.inject(Fault.latency(seconds), times=1)
    before = clock.monotonic()
    assert http.get("services.json").status_code == 200
    if mode == "transport":
        assert clock.monotonic() - before == 30.0
    else:
        assert clock.monotonic() == before


def test_hang_times_out_and_processes_nothing(
    http: httpx.Client, city: FakeCity, clock: VirtualClock, mode: str
) -> None:
    """A hung POST gives the client a read timeout and stores nothing."""
    city.inject(Fault.hang(), times=1)
    with pytest.raises(httpx.ReadTimeout):
        http.post("requests.json", data=POTHOLE, timeout=0.1)
    assert city.count_created() == 0
    if mode == "transport":
        assert clock.monotonic() == pytest.approx(0.1)  # the client's read timeout, virtually
    assert http.get("services.json").status_code == 200


def test_hang_is_released_when_the_fault_is_cleared(city: FakeCity) -> None:
    """serve(): a hung connection is closed (no answer) as soon as clear_faults() is called."""
    city.inject(Fault.hang())
    outcome: list[BaseException] = []
    with city.serve() as url:

        def call() -> None:
            try:
                httpx.get(f"{url}/services.json", timeout=5.0)
            except httpx.HTTPError as exc:
                outcome.append(exc)

        worker = threading.Thread(target=call)
        worker.start()
        _wait_for(lambda: any(c.fault == "hang" for c in city.calls))
        started = time.monotonic()
        city.clear_faults()
        worker.join(2.0)
        assert not worker.is_alive()
        assert time.monotonic() - started < 1.0
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.RemoteProtocolError)


def test_reset_drops_without_processing(http: httpx.Client, city: FakeCity) -> None:
    """reset() closes the connection with no answer and does not store a POST."""
    city.inject(Fault.reset(), times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("requests.json", data=POTHOLE)
    assert city.count_created() == 0


def test_drop_after_create_is_the_ambiguous_post(http: httpx.Client, city: FakeCity) -> None:
    """drop_after_create stores the POSTed request, then drops the connection unanswered."""
    city.inject(Fault.drop_after_create(), times=1)
    assert http.get("services.json").status_code == 200  # GETs pass and do not use it up
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("requests.json", data={**POTHOLE, "description": "ambiguous"})
    assert city.count_created(description="ambiguous") == 1
    request_id = city.created[0].service_request_id
    # The client can reconcile: the request is there to be found.
    listed = body(http.get("requests.json"))
    assert [i["service_request_id"] for i in listed] == [request_id]
    assert http.post("requests.json", data=POTHOLE).status_code == 200


def test_down_and_up(city: FakeCity, mode: str) -> None:
    """down() refuses connections (same port over serve()); up() serves again."""
    if mode == "transport":
        with httpx.Client(transport=city.transport(), base_url=city.base_url) as http:
            city.down()
            with pytest.raises(httpx.ConnectError):
                http.get("services.json")
            city.up()
            assert http.get("services.json").status_code == 200
        return
    with city.serve() as url, httpx.Client(base_url=url, timeout=1.0) as http:
        assert http.get("services.json").status_code == 200  # a pooled keep-alive connection
        city.down()
        assert city.is_down
        with pytest.raises(httpx.ConnectError):
            http.get("services.json")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/services.json")
        city.up()
        assert http.get("services.json").status_code == 200


def test_serve_while_down_starts_refusing(city: FakeCity) -> None:
    """A server started while the city is down refuses until up()."""
    city.down()
    with city.serve() as url:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/services.json")
        city.up()
        assert httpx.get(f"{url}/services.json").status_code == 200


def _pattern(city: FakeCity, http: httpx.Client, n: int) -> list[str]:
    outcomes = []
    for _ in range(n):
        try:
            outcomes.append(str(http.get("services.json").status_code))
        except httpx.TransportError as exc:
            outcomes.append(type(exc).__name__)
    return outcomes


def test_flaky_is_seeded(http: httpx.Client, city: FakeCity, clock: VirtualClock) -> None:
    """flaky(fraction, seed) fails a reproducible subset of requests with the listed faults."""
    city.inject(Fault.flaky(0.4, [Fault.status(503), Fault.reset()], seed=11))
    first = _pattern(city, http, 30)
    assert set(first) == {"200", "503", "RemoteProtocolError"}
    again = FakeCity(clock=clock)
    again.inject(Fault.flaky(0.4, [Fault.status(503), Fault.reset()], seed=11))
    with httpx.Client(transport=again.transport(), base_url=again.base_url) as other:
        assert _pattern(again, other, 30) == first


def test_flaky_times_counts_failures(http: httpx.Client, city: FakeCity) -> None:
    """With times=3 a flaky fault fails exactly three requests, then is gone."""
    entry = city.inject(Fault.flaky(0.5, [Fault.status(500)], seed=2), times=3)
    outcomes = _pattern(city, http, 40)
    assert outcomes.count("500") == 3
    assert entry.hits == 3
    assert entry.remaining == 0


def test_faults_scoped_by_method_and_path(http: httpx.Client, city: FakeCity) -> None:
    """method= and path= (exact or glob) limit where a fault applies."""
    city.inject(Fault.status(500), method="POST")
    city.inject(Fault.status(502), path="requests/*")
    assert http.get("services.json").status_code == 200
    assert http.get("requests.json").status_code == 200
    assert http.get("requests/600001.json").status_code == 502
    assert http.post("requests.json", data=POTHOLE).status_code == 500
    city.clear_faults()
    assert http.post("requests.json", data=POTHOLE).status_code == 200


def test_first_injected_fault_wins(http: httpx.Client, city: FakeCity) -> None:
    """When two faults match, the earlier one applies until it is used up."""
    city.inject(Fault.status(503), times=1)
    city.inject(Fault.status(500), times=1)
    assert [http.get("services.json").status_code for _ in range(3)] == [503, 500, 200]


def test_remove_one_fault(http: httpx.Client, city: FakeCity) -> None:
    """faults.remove() takes one injected fault off the board."""
    entry = city.inject(Fault.status(503))
    city.inject(Fault.status(500), path="services/*")
    city.faults.remove(entry)
    assert http.get("services.json").status_code == 200
    assert http.get("services/001.json").status_code == 500


def test_calls_record_faults_and_statuses(http: httpx.Client, city: FakeCity) -> None:
    """city.calls lists each request seen with its resource path, status and fault."""
    city.inject(Fault.status(503), times=1)
    http.get("services.json")
    http.get("services/001.json", params={"jurisdiction_id": "x"})
    calls = city.calls
    assert [(c.method, c.path, c.status, c.fault) for c in calls] == [
        ("GET", "services", 503, "status"),
        ("GET", "services/001", 200, None),
    ]
    assert calls[1].query == "jurisdiction_id=x"
    city.clear_calls()
    assert city.calls == []


def test_fault_constructors_validate() -> None:
    """Fault constructors refuse nonsense arguments."""
    with pytest.raises(ValueError, match="status"):
        Fault.status(42)
    with pytest.raises(ValueError, match="latency"):
        Fault.latency(-1)
    with pytest.raises(ValueError, match="fraction"):
        Fault.flaky(1.5)
    with pytest.raises(ValueError, match="non-flaky"):
        Fault.flaky(0.5, [Fault.flaky(0.1)])
    assert Fault.status(503, retry_after=2.0).retry_after == "2"
    city = FakeCity()
    with pytest.raises(ValueError, match="times"):
        city.inject(Fault.hang(), times=0)
