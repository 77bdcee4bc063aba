"""serve(): loopback only, clean stops that release the port and every connection, mirrors."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest

from civic311.testing import CityStore, FakeCity, Fault, VirtualClock

from .fakecity_helpers import POTHOLE, body


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def test_serve_binds_loopback_and_yields_base_url(city: FakeCity) -> None:
    """serve() yields http://127.0.0.1:PORT/open311/v2 and answers there."""
    with city.serve() as url:
        parts = urlsplit(url)
        assert (parts.scheme, parts.hostname, parts.path) == ("http", "127.0.0.1", "/open311/v2")
        assert httpx.get(f"{url}/services.json").status_code == 200


def test_stop_releases_the_port(city: FakeCity) -> None:
    """After the block the port refuses connections and can be bound again at once."""
    with city.serve() as url:
        httpx.get(f"{url}/services.json")
        port = _port(url)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/services.json")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_serve_on_a_given_port_again(city: FakeCity) -> None:
    """serve(port=...) can reuse the port a previous server just released."""
    with city.serve() as url:
        port = _port(url)
    with city.serve(port=port) as again:
        assert _port(again) == port
        assert httpx.get(f"{again}/services.json").status_code == 200


def test_stop_closes_hung_connections(city: FakeCity) -> None:
    """Leaving serve() ends a hung request at once: the client sees the connection close."""
    city.inject(Fault.hang())
    errors: list[BaseException] = []

    def call(url: str) -> None:
        try:
            httpx.get(f"{url}/services.json", timeout=5.0)
        except httpx.HTTPError as exc:
            errors.append(exc)

    with city.serve() as url:
        worker = threading.Thread(target=call, args=(url,))
        worker.start()
        deadline = time.monotonic() + 2.0
        while not city.calls:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        started = time.monotonic()
    worker.join(2.0)
    assert not worker.is_alive()
    assert time.monotonic() - started < 1.0
    assert isinstance(errors[0], httpx.RemoteProtocolError)


def test_stop_closes_idle_keep_alive_connections(city: FakeCity) -> None:
    """A client's pooled keep-alive connection does not keep a stopped server alive."""
    with httpx.Client(timeout=1.0) as client:
        with city.serve() as url:
            assert client.get(f"{url}/services.json").status_code == 200
        with pytest.raises(httpx.ConnectError):
            client.get(f"{url}/services.json")


def test_concurrent_posts_get_unique_ids(city: FakeCity) -> None:
    """Eight threads filing 10 reports each over serve() get 80 distinct ids."""
    ids: list[str] = []
    lock = threading.Lock()

    def file(url: str) -> None:
        with httpx.Client(base_url=url, timeout=2.0) as client:
            for _ in range(10):
                [item] = body(client.post("requests.json", data=POTHOLE))
                with lock:
                    ids.append(item["service_request_id"])

    with city.serve() as url:
        workers = [threading.Thread(target=file, args=(url,)) for _ in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(5.0)
    assert len(ids) == 80
    assert len(set(ids)) == 80
    assert city.count_created() == 80


def test_primary_and_mirror_share_one_store(clock: VirtualClock) -> None:
    """Two servers over one store: what is filed on one is read on the other; ids never clash."""
    primary = FakeCity(clock=clock)
    mirror = FakeCity(store=primary.store, clock=clock)
    with primary.serve() as a, mirror.serve() as b:
        assert a != b
        [first] = body(httpx.post(f"{a}/requests.json", data=POTHOLE))
        [second] = body(httpx.post(f"{b}/requests.json", data=POTHOLE))
        assert first["service_request_id"] != second["service_request_id"]
        [seen] = body(httpx.get(f"{b}/requests/{first['service_request_id']}.json"))
        assert seen["description"] == "Big hole"
        primary.down()  # faults and outages are per server, the data is shared
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{a}/services.json")
        assert len(body(httpx.get(f"{b}/requests.json"))) == 2
        primary.up()
    assert primary.count_created() == mirror.count_created() == 2


def test_mirror_can_differ_in_dialect_and_key(clock: VirtualClock) -> None:
    """A mirror shares data but has its own dialect, api_key and faults."""
    store = CityStore(seed=5)
    primary = FakeCity(store=store, clock=clock, api_key="a")
    mirror = FakeCity(store=store, clock=clock, api_key="b")
    primary.inject(Fault.status(503))
    with httpx.Client(transport=mirror.transport(), base_url=mirror.base_url) as http:
        assert http.post("requests.json", data={**POTHOLE, "api_key": "b"}).status_code == 200
    assert len(primary.requests) == 1
    with pytest.raises(ValueError, match="store"):
        FakeCity(store=store, services=[])


def test_head_and_unknown_methods(city: FakeCity) -> None:
    """Over serve() every HTTP method reaches the city (405 where not allowed)."""
    with city.serve() as url:
        assert httpx.request("PUT", f"{url}/requests.json").status_code == 405
        head = httpx.head(f"{url}/services.json")
        assert head.status_code == 405
        assert head.content == b""


def test_internal_errors_are_visible_over_serve(
    city: FakeCity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug inside the city answers 500 naming the error, not a silent disconnect."""

    def broken(*args: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(city, "respond", broken)
    with city.serve() as url:
        response = httpx.get(f"{url}/services.json")
    assert response.status_code == 500
    assert "RuntimeError('boom')" in response.text


def test_oversized_and_malformed_bodies(city: FakeCity) -> None:
    """A body over 1 MB is refused with 413 and bad chunk framing with 400, over serve()."""
    heads = {
        b"Content-Length: 1048577\r\n\r\n": b"HTTP/1.1 413",
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n": b"HTTP/1.1 400",
    }
    with city.serve() as url:
        for head, answer in heads.items():
            with socket.create_connection(("127.0.0.1", _port(url)), timeout=2) as sock:
                sock.sendall(b"POST /open311/v2/requests.json HTTP/1.1\r\nHost: x\r\n" + head)
                assert sock.recv(100).startswith(answer)
