"""Security tests (DESIGN promise 6): hostile XML is refused, bodies are capped, credentials
never follow a redirect to another host, the api_key never shows (reprs, errors, logs, the
Outbox and Ledger files, the CLI), and TLS verification is always on.

Every server here is on 127.0.0.1, every loop is bounded in count and time, and every thread
started here is stopped before its test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import logging
import socket
import ssl
import sysconfig
import threading
import time
import traceback
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

import civic311
from civic311 import (
    APIError,
    AsyncClient,
    Civic311Error,
    Client,
    DecodeError,
    InvalidRequestError,
    NewRequest,
    Outbox,
    Profile,
    ResponseTooLargeError,
    ServiceRequest,
    Status,
    TransportError,
)
from civic311._protocol import (
    Settings,
    build_request,
    get_request_call,
    get_token_call,
    list_requests_call,
    list_services_call,
    read_response,
    service_definition_call,
    submit_call,
)
from civic311._wire import decode
from civic311.discovery import parse_discovery
from civic311.ledger import Ledger
from civic311.testing import FakeCity, Fault, VirtualClock

from helpers import Both

BASE = "https://city.example/open311/v2"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: The api_key: "/" and "+" make its URL-encoded, form-encoded and JSON-escaped spellings
#: differ from it, and every spelling counts as a leak.
KEY = "sEcReT/kEy+7f3a9c"
KEY_SPELLINGS = (
    KEY,
    quote(KEY, safe=""),
    quote_plus(KEY),
    KEY.replace("/", "\\/"),
)
KEY_ON_READS = Profile(name="key-on-reads", api_key_on_reads=True)


def leaks(text: str) -> bool:
    """Whether *text* holds the api_key in any spelling."""
    return any(spelling in text for spelling in KEY_SPELLINGS)


REQUEST = NewRequest(service_code="001", lat=41.3, long=-72.9, description="pothole")
SERVICES_JSON = b'[{"service_code": "001", "service_name": "Pothole"}]'

#: Seconds any server thread here may live.
THREAD_LIFETIME = 30.0


# --- loopback servers ------------------------------------------------------------------------


class _Loopback:
    """A listening socket on 127.0.0.1 and one thread serving it, stopped on exit."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.done = threading.Event()  # the thread has ended
        self.served = threading.Event()  # a connection has been answered and closed
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._loop, name=type(self).__name__, daemon=True)
        self._deadline = time.monotonic() + THREAD_LIFETIME

    def __enter__(self) -> _Loopback:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(timeout=10)
        self.sock.close()
        assert not self._thread.is_alive(), "server thread did not stop"

    def _loop(self) -> None:
        try:
            while not self.stop.is_set() and time.monotonic() < self._deadline:
                try:
                    conn, _ = self.sock.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                self.connections += 1
                conn.settimeout(5)
                try:
                    self.serve(conn)
                except (OSError, ssl.SSLError):
                    pass
                finally:
                    conn.close()
                    self.served.set()
        except BaseException as exc:  # surfaced by the test, never lost in a thread
            self.errors.append(exc)
        finally:
            self.done.set()

    def serve(self, conn: socket.socket) -> None:
        """Answer one connection (here: close it at once)."""

    @staticmethod
    def read_head(conn: socket.socket) -> bytes:
        """The request line and headers (bounded)."""
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


class CountingServer(_Loopback):
    """Counts connections and answers none: proof that nobody dialled out."""


class StreamingServer(_Loopback):
    """Streams an endless body (up to 1 GiB or its lifetime) until the client hangs up."""

    CHUNK = b"0," * 32768  # 64 KiB

    def __init__(self, *, declared_length: int | None = None, limit: int = 1 << 30) -> None:
        super().__init__()
        self.declared_length = declared_length
        self.limit = limit
        self.sent = 0

    def serve(self, conn: socket.socket) -> None:
        self.read_head(conn)
        framing = (
            f"Content-Length: {self.declared_length}\r\n"
            if self.declared_length is not None
            else "Transfer-Encoding: chunked\r\n"
        )
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + framing.encode()
            + b"\r\n"
        )
        chunk = self.CHUNK
        if self.declared_length is None:
            chunk = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            conn.sendall(b"1\r\n[\r\n")
        else:
            conn.sendall(b"[")
        while self.sent < self.limit and not self.stop.is_set():
            if time.monotonic() > self._deadline:
                return
            conn.sendall(chunk)  # raises once the client has closed the connection
            self.sent += len(chunk)


class TLSServer(_Loopback):
    """Serves a services list over TLS with *certfile* (certificate and key)."""

    def __init__(self, certfile: Path) -> None:
        super().__init__()
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(certfile)
        self.handshakes = 0
        self.refused = 0

    def serve(self, conn: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.refused += 1
            return
        with tls:
            self.handshakes += 1
            self.read_head(tls)
            tls.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(SERVICES_JSON)}\r\n\r\n".encode()
                + SERVICES_JSON
            )


# --- 1. hostile XML --------------------------------------------------------------------------


def _hostile_documents(port: int, secret_file: Path) -> dict[str, bytes]:
    """XML bodies that would expand, read a file or dial out if a parser let them."""
    url = f"http://127.0.0.1:{port}"
    file_url = secret_file.as_uri()
    laughs = "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' if i else '<!ENTITY l0 "lol">' for i in range(10)
    )
    blob = "x" * 50_000
    root = "<services><service><service_code>{}</service_code></service></services>"
    return {
        "billion-laughs": f"<!DOCTYPE s [{laughs}]>{root.format('&l9;')}".encode(),
        "quadratic-blowup": (
            f'<!DOCTYPE s [<!ENTITY a "{blob}">]>{root.format("&a;" * 10_000)}'.encode()
        ),
        "external-file-entity": (
            f'<!DOCTYPE s [<!ENTITY x SYSTEM "{file_url}">]>{root.format("&x;")}'.encode()
        ),
        "external-http-entity": (
            f'<!DOCTYPE s [<!ENTITY x SYSTEM "{url}/x">]>{root.format("&x;")}'.encode()
        ),
        "public-http-entity": (
            f'<!DOCTYPE s [<!ENTITY x PUBLIC "-//X//Y" "{url}/p">]>{root.format("&x;")}'.encode()
        ),
        "parameter-entity-http": (
            f'<!DOCTYPE s [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]>{root.format("1")}'.encode()
        ),
        "parameter-entity-file": (
            f'<!DOCTYPE s [<!ENTITY % p SYSTEM "{file_url}"> %p;]>{root.format("1")}'.encode()
        ),
        "parameter-entity-internal": (
            b"<!DOCTYPE s [<!ENTITY % p \"<!ENTITY x 'y'>\"> %p;]>" + root.format("&x;").encode()
        ),
        "unparsed-entity": (
            f'<!DOCTYPE s [<!NOTATION n SYSTEM "{url}/n"><!ENTITY x SYSTEM "{url}/x" NDATA n>]>'
            f"{root.format('1')}".encode()
        ),
        "external-dtd-with-reference": (
            f'<!DOCTYPE s SYSTEM "{url}/d.dtd">{root.format("&x;")}'.encode()
        ),
        "error-body-entity": (
            f'<!DOCTYPE e [<!ENTITY x SYSTEM "{file_url}">]>'
            "<errors><error><code>400</code><description>&x;</description></error></errors>"
        ).encode(),
    }


def _inert_documents(port: int, secret_file: Path) -> dict[str, bytes]:
    """XML bodies that name outside resources but declare no entity: they may be read, but
    nothing outside may be fetched."""
    url = f"http://127.0.0.1:{port}"
    return {
        "external-dtd": (
            f'<!DOCTYPE s SYSTEM "{url}/d.dtd"><services><service><service_code>1'
            "</service_code></service></services>"
        ).encode(),
        "xinclude": (
            '<services xmlns:xi="http://www.w3.org/2001/XInclude"><service><service_code>1'
            f'</service_code><xi:include href="{secret_file.as_uri()}" parse="text"/>'
            f'<xi:include href="{url}/inc" parse="text"/></service></services>'
        ).encode(),
        "xml-stylesheet": (
            f'<?xml-stylesheet href="{url}/s.xsl"?><services><service><service_code>1'
            "</service_code></service></services>"
        ).encode(),
    }


SECRET_MARKER = "TOP-SECRET-FILE-CONTENT-4b1d"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A local file whose content must never reach a parsed value or a message."""
    path = tmp_path / "secret.txt"
    path.write_text(SECRET_MARKER)
    return path


def _calls() -> list[Any]:
    return [
        list_services_call(),
        service_definition_call("x"),
        submit_call(REQUEST),
        get_token_call("t"),
        get_request_call("1"),
        list_requests_call(),
    ]


def _everything_said(exc: BaseException, seen: set[int] | None = None) -> str:
    """Every text an error carries: message, repr, args, body, nested attempts."""
    # An error's last attempt holds the error itself (issue 11.9): visit each error once.
    seen = set() if seen is None else seen
    if id(exc) in seen:
        return ""
    seen.add(id(exc))
    parts = [str(exc), repr(exc), repr(exc.args)]
    for name in ("body", "url", "detail", "method"):
        value = getattr(exc, name, None)
        if value is not None:
            parts.append(value.decode("utf-8", "replace") if isinstance(value, bytes) else value)
    for attempt in getattr(exc, "attempts", ()):
        parts.append(repr(attempt))
        if attempt.error is not None:
            parts.append(_everything_said(attempt.error, seen))
    request = getattr(exc, "request", None)
    if isinstance(request, NewRequest):
        parts.append(repr(request))
    return "\n".join(parts)


def test_hostile_xml_is_refused_on_every_response_path(secret_file: Path) -> None:
    """Entities in any XML answer, any operation and status, are refused, never expanded."""
    with CountingServer() as server:
        documents = _hostile_documents(server.port, secret_file)
        for name, body in documents.items():
            for fmt in ("xml", "json"):  # a .json answer that is XML is sniffed and parsed too
                with pytest.raises(DecodeError, match=r"hostile XML|not well-formed"):
                    decode(body, fmt)
                for call in _calls():
                    request = build_request(call, BASE, fmt, Settings())
                    for status in (200, 201, 400, 404, 500):
                        response = httpx.Response(status, content=body, request=request)
                        started = time.perf_counter()
                        with pytest.raises(Civic311Error) as caught:
                            read_response(call, response, body, fmt, NOW)
                        assert time.perf_counter() - started < 1.0, name
                        error = caught.value
                        if 200 <= status < 300:
                            assert isinstance(error, DecodeError), (name, status)
                        else:
                            assert isinstance(error, APIError), (name, status)
                            assert error.errors == [], (name, status)
                        said = _everything_said(error)
                        assert SECRET_MARKER not in said, name
                        assert "lollollol" not in said, name
                        assert "x" * 1000 not in str(error), name
            with pytest.raises(DecodeError):
                parse_discovery(body)
    assert server.connections == 0


def test_inert_outside_references_are_never_followed(secret_file: Path) -> None:
    """External DTD, XInclude and stylesheet references are never fetched or read."""
    with CountingServer() as server:
        for body in _inert_documents(server.port, secret_file).values():
            for fmt in ("xml", "json"):
                for call in _calls():
                    request = build_request(call, BASE, fmt, Settings())
                    response = httpx.Response(200, content=body, request=request)
                    try:
                        result, _ = read_response(call, response, body, fmt, NOW)
                    except Civic311Error as exc:
                        said = _everything_said(exc)
                    else:
                        models = result if isinstance(result, list) else [result]
                        said = repr(models) + repr([civic311.to_dict(m) for m in models])
                    assert SECRET_MARKER not in said
    assert server.connections == 0


def test_hostile_xml_through_both_clients(both: Both, secret_file: Path) -> None:
    """Both clients refuse hostile XML on every operation, reading no file, dialling nowhere."""
    with CountingServer() as server:
        documents = _hostile_documents(server.port, secret_file)
        operations: list[tuple[str, tuple[Any, ...]]] = [
            ("list_services", ()),
            ("get_service_definition", ("001",)),
            ("submit", (REQUEST,)),
            ("get_token", ("t",)),
            ("get_request", ("1",)),
            ("list_requests", ()),
        ]
        for body in (documents["billion-laughs"], documents["external-file-entity"]):
            for method, args in operations:
                with pytest.raises(Civic311Error) as caught:
                    both(
                        lambda _request, body=body: httpx.Response(
                            200, content=body, headers={"Content-Type": "text/xml"}
                        ),
                        method,
                        *args,
                        client={"format": "xml", "retry": None, "reconcile_wait": 0.0},
                    )
                assert SECRET_MARKER not in _everything_said(caught.value)
    assert server.connections == 0


# --- 2. the body cap -------------------------------------------------------------------------

CAP = 1024 * 1024
GIB = 1 << 30


class GigaStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A 1 GiB body made on the fly, one reused 64 KiB chunk at a time; counts what it gave."""

    CHUNK = b"0," * 32768

    def __init__(self, total: int = GIB) -> None:
        self.total = total
        self.given = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"["
        while self.given < self.total:
            self.given += len(self.CHUNK)
            yield self.CHUNK

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self:
            yield chunk

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def _traced_peak(action: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_gigabyte_stream_is_stopped_at_the_cap(flavor: str) -> None:
    """A 1 GiB streamed body is read only up to the cap, in under 3x the cap of memory."""
    stream = GigaStream()

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream, headers={"Content-Type": "application/json"})

    options: dict[str, Any] = {
        "transport": httpx.MockTransport(handler),
        "max_response_bytes": CAP,
        "retry": None,
    }

    def run() -> None:
        if flavor == "sync":
            with Client(BASE, **options) as client, pytest.raises(ResponseTooLargeError):
                client.list_services()
            return

        async def go() -> None:
            async with AsyncClient(BASE, **options) as client:
                with pytest.raises(ResponseTooLargeError):
                    await client.list_services()

        asyncio.run(go())

    started = time.perf_counter()
    peak = _traced_peak(run)
    assert time.perf_counter() - started < 10
    assert stream.given <= CAP + 2 * len(GigaStream.CHUNK)
    assert peak < 3 * CAP


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_huge_declared_length_is_refused_at_once(flavor: str) -> None:
    """A body that declares a huge Content-Length is refused before a byte of it is read."""
    stream = GigaStream()

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream, headers={"Content-Length": str(10**12)})

    options: dict[str, Any] = {
        "transport": httpx.MockTransport(handler),
        "max_response_bytes": CAP,
        "retry": None,
    }
    if flavor == "sync":
        with Client(BASE, **options) as client, pytest.raises(ResponseTooLargeError) as caught:
            client.list_services()
        message = str(caught.value)
    else:

        async def go() -> str:
            async with AsyncClient(BASE, **options) as client:
                with pytest.raises(ResponseTooLargeError) as inner:
                    await client.list_services()
                return str(inner.value)

        message = asyncio.run(go())
    assert stream.given == 0
    assert "declares 1,000,000,000,000 bytes" in message


@pytest.mark.parametrize("declared", [None, 10**12], ids=["chunked-endless", "huge-length"])
def test_endless_body_over_a_real_socket_is_cut_at_the_cap(declared: int | None) -> None:
    """Over a real socket an endless body is cut at the cap, in bounded time and memory."""
    with StreamingServer(declared_length=declared) as server:
        endpoint = f"http://127.0.0.1:{server.port}/open311/v2"

        def run() -> None:
            with (
                Client(endpoint, max_response_bytes=CAP, retry=None, timeout=10) as client,
                pytest.raises(ResponseTooLargeError),
            ):
                client.list_services()

        started = time.perf_counter()
        peak = _traced_peak(run)
        assert server.served.wait(15), "the server kept streaming after the client left"
        assert time.perf_counter() - started < 20
    assert server.errors == []
    assert server.connections == 1
    assert server.sent < 64 * 1024 * 1024  # kernel buffers at most, never the 1 GiB
    if declared is not None:
        assert server.sent < 16 * 1024 * 1024
    assert peak < 3 * CAP


# --- 3. redirects ----------------------------------------------------------------------------


class Hosts:
    """A MockTransport handler for several hosts; records what each host was sent."""

    def __init__(self, routes: dict[str, Callable[[httpx.Request], httpx.Response]]) -> None:
        self.routes = routes
        self.seen: list[tuple[str, str, str, bytes]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.seen.append((request.method, request.url.host, str(request.url), body))
        assert len(self.seen) < 50
        return self.routes[request.url.host](request)

    def hosts(self) -> set[str]:
        return {host for _, host, _, _ in self.seen}

    def saw_key(self, host: str) -> bool:
        return any(
            leaks(url) or leaks(body.decode("utf-8", "replace"))
            for _, h, url, body in self.seen
            if h == host
        )


def _redirect(status: int, location: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(status, headers={"Location": location})


REDIRECTS = (301, 302, 303, 307, 308)
EVIL = "https://evil.example/open311/v2/requests.json"


@pytest.mark.parametrize("status", REDIRECTS)
def test_post_never_follows_a_redirect_to_another_host(both: Both, status: int) -> None:
    """A POST redirected to another host is not followed; that host sees nothing."""
    hosts = Hosts(
        {
            "city.example": lambda request: (
                _redirect(status, EVIL)(request)
                if request.method == "POST"
                else httpx.Response(200, json=[])
            ),
            "evil.example": lambda _request: httpx.Response(200, json=[{"token": "t"}]),
        }
    )
    with pytest.raises(Civic311Error):
        both(
            hosts,
            "submit",
            REQUEST,
            client={"api_key": KEY, "retry": None, "reconcile_wait": 0.0},
        )
    assert "evil.example" not in hosts.hosts()
    assert hosts.saw_key("city.example")  # the key went where it was meant to go


def test_post_follows_only_a_same_host_https_upgrade(both: Both) -> None:
    """A POST follows only a same-host http→https redirect, and no redirect after it."""
    hosts = Hosts(
        {
            "city.example": lambda request: (
                _redirect(301, "https://city.example/open311/v2/requests.json")(request)
                if request.url.scheme == "http"
                else _redirect(302, EVIL)(request)
            ),
            "evil.example": lambda _request: httpx.Response(200, json=[{"token": "t"}]),
        }
    )
    with pytest.raises(Civic311Error):
        both(
            hosts,
            "submit",
            REQUEST,
            client={
                "endpoints": "http://city.example/open311/v2",
                "api_key": KEY,
                "retry": None,
                "reconcile_wait": 0.0,
            },
        )
    posts = [url for method, _, url, _ in hosts.seen if method == "POST"]
    assert posts == [
        "http://city.example/open311/v2/requests.json",
        "https://city.example/open311/v2/requests.json",
    ]
    assert "evil.example" not in hosts.hosts()


@pytest.mark.parametrize("status", REDIRECTS)
def test_get_with_key_on_reads_never_follows_a_redirect(both: Both, status: int) -> None:
    """A GET carrying the api_key follows no redirect; the second host sees nothing."""
    hosts = Hosts(
        {
            "city.example": _redirect(status, "https://evil.example/open311/v2/services.json"),
            "evil.example": lambda _request: httpx.Response(200, content=SERVICES_JSON),
        }
    )
    with pytest.raises(Civic311Error):
        both(
            hosts,
            "list_services",
            client={"api_key": KEY, "profile": KEY_ON_READS, "retry": None},
        )
    assert hosts.hosts() == {"city.example"}
    assert hosts.saw_key("city.example")


def test_plain_get_may_follow_a_redirect_without_the_key(both: Both) -> None:
    """A GET without the key on it may follow a redirect, and the key does not travel."""
    hosts = Hosts(
        {
            "city.example": _redirect(302, "https://mirror.example/open311/v2/services.json"),
            "mirror.example": lambda _request: httpx.Response(200, content=SERVICES_JSON),
        }
    )
    services = both(hosts, "list_services", client={"api_key": KEY, "retry": None})
    assert [s.service_code for s in services] == ["001"]
    assert hosts.hosts() == {"city.example", "mirror.example"}
    assert not hosts.saw_key("city.example")
    assert not hosts.saw_key("mirror.example")


# --- 4. the api_key never shows --------------------------------------------------------------


def _url_echo(status: int) -> Callable[[httpx.Request], httpx.Response]:
    """An error page quoting the request URL, query and all (Express: "Cannot GET /x?…")."""
    return lambda request: httpx.Response(
        status,
        text=f"<html><body><pre>Cannot {request.method} {request.url}</pre></body></html>",
        headers={"Content-Type": "text/html"},
    )


def _form_echo(request: httpx.Request) -> httpx.Response:
    """A 400 that quotes the form it was sent (api_key=… included)."""
    return httpx.Response(400, text=f"Bad request: {request.read().decode()}")


def _key_echo(*, escaped: bool) -> Callable[[httpx.Request], httpx.Response]:
    """A 403 JSON error quoting the key it refused, plainly or as PHP's json_encode writes
    it (``/`` escaped as ``\\/``)."""
    said = KEY.replace("/", "\\/") if escaped else KEY
    body = f'[{{"code": 403, "description": "Invalid api_key {said}"}}]'
    return lambda _request: httpx.Response(
        403, text=body, headers={"Content-Type": "application/json"}
    )


def _raise(kind: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise kind(f"failed talking to {request.url}", request=request)

    return handler


def _post_times_out_reads_fail(request: httpx.Request) -> httpx.Response:
    if request.method == "POST":
        raise httpx.ReadTimeout(f"timed out reading {request.url}", request=request)
    raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)


def _huge(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, stream=GigaStream(4 * CAP))


def _ok(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=SERVICES_JSON)


MIRROR = "https://mirror.example/open311/v2"

Handler = Callable[[httpx.Request], httpx.Response]

#: (name, handler, method, args, client options): calls that fail in every way a call can.
FAILURES: list[tuple[str, Handler, str, tuple[Any, ...], dict[str, Any]]] = [
    ("connect-error", _raise(httpx.ConnectError), "list_services", (), {}),
    ("read-timeout", _raise(httpx.ReadTimeout), "get_request", ("1",), {}),
    ("protocol-error", _raise(httpx.RemoteProtocolError), "list_requests", (), {}),
    ("too-many-redirects", _raise(httpx.TooManyRedirects), "get_token", ("t",), {}),
    (
        "all-endpoints-failed",
        _raise(httpx.ConnectError),
        "list_services",
        (),
        {"endpoints": [BASE, MIRROR], "retry": civic311.RetryPolicy()},
    ),
    ("api-error-page-echoes-url", _url_echo(404), "get_service_definition", ("001",), {}),
    ("server-error-page-echoes-url", _url_echo(503), "list_services", (), {}),
    ("html-200-echoes-url", _url_echo(200), "list_services", (), {}),
    (
        "garbage-200",
        lambda _r: httpx.Response(200, content=b'{"not": "closed'),
        "list_services",
        (),
        {},
    ),
    ("too-large", _huge, "list_requests", (), {"max_response_bytes": CAP}),
    (
        "submit-uncertain",
        _post_times_out_reads_fail,
        "submit",
        (REQUEST,),
        {"reconcile_wait": 1.0},
    ),
    ("submit-refused", _raise(httpx.ConnectError), "submit", (REQUEST,), {}),
    ("submit-400", _url_echo(400), "submit", (REQUEST,), {}),
    ("submit-400-echoes-form", _form_echo, "submit", (REQUEST,), {}),
    ("403-json-echoes-key", _key_echo(escaped=False), "list_services", (), {}),
    ("403-json-echoes-key-php-escaped", _key_echo(escaped=True), "list_services", (), {}),
]


def _client_options(extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "api_key": KEY,
        "profile": KEY_ON_READS,
        "retry": None,
        "clock": VirtualClock(start=NOW),
        **extra,
    }


def _fail(
    both: Both, name: str, events: list[civic311.AttemptEvent] | None = None
) -> Civic311Error:
    _, handler, method, args, extra = next(f for f in FAILURES if f[0] == name)
    options = _client_options(extra)
    if events is not None:
        options["on_attempt"] = events.append
    with pytest.raises(Civic311Error) as caught:
        both(handler, method, *args, client=options)
    return caught.value


@pytest.mark.parametrize("name", [f[0] for f in FAILURES])
def test_api_key_absent_from_every_error(both: Both, name: str) -> None:
    """No error or attempt event of a failing call holds the api_key, even when echoed."""
    events: list[civic311.AttemptEvent] = []
    error = _fail(both, name, events)
    assert events, "the on_attempt hook saw no attempt"
    said = "\n".join(
        [_everything_said(error)]
        + [repr(event) for event in events]
        + [_everything_said(event.error) for event in events if event.error is not None]
    )
    assert [line for line in said.splitlines() if leaks(line)] == []


@pytest.mark.parametrize("name", [f[0] for f in FAILURES])
def test_api_key_absent_from_formatted_tracebacks(both: Both, name: str) -> None:
    """A logged traceback of a failing call (cause chain included) holds no api_key."""
    error = _fail(both, name)
    logged = "".join(traceback.format_exception(error))
    assert [line for line in logged.splitlines() if leaks(line)] == []


def test_api_key_absent_from_reprs() -> None:
    """Client, AsyncClient, their Settings and profile show at most that a key is set."""
    with Client(BASE, api_key=KEY, profile=KEY_ON_READS) as client:
        shown = [repr(client), str(client), repr(client._settings), repr(client.profile)]
    async_client = AsyncClient(BASE, api_key=KEY, profile=KEY_ON_READS)
    try:
        shown += [repr(async_client), str(async_client), repr(async_client._settings)]
    finally:
        asyncio.run(async_client.aclose())
    shown.append(repr(Settings(api_key=KEY)))
    for text in shown:
        assert not leaks(text)


def test_api_key_absent_from_endpoint_health() -> None:
    """Endpoint health after failed calls with the key on reads holds no api_key."""
    with Client(
        [BASE, MIRROR],
        transport=httpx.MockTransport(_raise(httpx.ConnectError)),
        **_client_options({"retry": civic311.RetryPolicy()}),
    ) as client:
        for _ in range(3):
            with contextlib.suppress(Civic311Error):
                client.list_services()
        health = client.health()
    assert any(h.last_error for h in health)
    assert not leaks(repr(health))
    assert not leaks(str([h.last_error for h in health]))


def _run_everything(both: Both) -> None:
    """Succeeding and failing calls, with the key on reads and in POST forms."""
    hosts = Hosts({"city.example": _ok})
    both(hosts, "list_services", client=_client_options({}))
    for name, *_ in FAILURES:
        with contextlib.suppress(Civic311Error):
            _fail(both, name)


def _log_texts(records: list[logging.LogRecord]) -> list[str]:
    texts = []
    formatter = logging.Formatter()
    for record in records:
        texts.append(f"{record.name}: {record.getMessage()}")
        if record.exc_info:
            texts.append(formatter.formatException(record.exc_info))
    return texts


def test_api_key_absent_from_civic311_logs(both: Both, caplog: pytest.LogCaptureFixture) -> None:
    """civic311's own log records, at DEBUG, never hold the api_key."""
    caplog.set_level(logging.DEBUG, logger="civic311")
    _run_everything(both)
    records = [r for r in caplog.records if r.name.startswith("civic311")]
    assert records, "civic311 logged nothing at DEBUG; the check would be empty"
    leaked = [text for text in _log_texts(records) if leaks(text)]
    assert leaked == []


def test_api_key_absent_from_all_logs(both: Both, caplog: pytest.LogCaptureFixture) -> None:
    """No log record at DEBUG, from any logger (httpx's too), holds the api_key."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="civic311")
    _run_everything(both)
    leaked = [text for text in _log_texts(caplog.records) if leaks(text)]
    assert leaked == []


def _db_bytes(path: Path) -> dict[str, bytes]:
    files = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(f"{path}{suffix}")
        if candidate.exists():
            files[candidate.name] = candidate.read_bytes()
    assert files, f"no database files at {path}"
    return files


def _assert_no_key_in_files(path: Path) -> None:
    needles = [
        spelling.encode(encoding)
        for spelling in KEY_SPELLINGS
        for encoding in ("utf-8", "utf-16-le", "utf-16-be")
    ]
    for name, data in _db_bytes(path).items():
        for needle in needles:
            assert needle not in data, name


class Switch(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """FakeCity's transport, or a failure whose message quotes the URL, by *mode*."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.mode = "city"

    def _fail(self, request: httpx.Request) -> None:
        if self.mode == "refuse":
            raise httpx.ConnectError(f"connection refused: {request.url}", request=request)
        if self.mode == "refuse-post" and request.method == "POST":
            raise httpx.ConnectError(f"connection refused: {request.url}", request=request)
        if self.mode == "timeout-post" and request.method == "POST":
            raise httpx.ReadTimeout(f"timed out reading {request.url}", request=request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._fail(request)
        response: httpx.Response = self.inner.handle_request(request)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._fail(request)
        response: httpx.Response = await self.inner.handle_async_request(request)
        return response


def test_api_key_absent_from_outbox_files(tmp_path: Path) -> None:
    """The Outbox's SQLite files (db, -wal, -shm) never hold the api_key."""
    clock = VirtualClock(start=NOW)
    city = FakeCity(seed=5, clock=clock, api_key=KEY)
    switch = Switch(city.transport())
    path = tmp_path / "outbox.sqlite"
    options: dict[str, Any] = {
        "api_key": KEY,
        "profile": KEY_ON_READS,
        "clock": clock,
        "reconcile_wait": 1.0,
        "retry": civic311.RetryPolicy(attempts=2),
    }

    def report(n: int) -> NewRequest:
        return NewRequest(service_code="001", lat=41.3, long=-72.9, description=f"hole {n}")

    with Outbox(path) as box, Client(city.base_url, transport=switch, **options) as client:
        assert not client.submit(report(1), outbox=box).queued  # sent
        for n, mode in enumerate(("refuse", "timeout-post"), start=2):
            switch.mode = mode
            assert client.submit(report(n), outbox=box).queued  # queued, then uncertain
            clock.advance(120)  # past the endpoint's cooldown
        switch.mode = "city"
        city.inject(Fault.status(500, body="error"), times=10, method="POST")
        client.submit(report(4), outbox=box)
        city.clear_faults()
        clock.advance(7200)
        box.flush(client)
        states = {entry.state for entry in box.entries()}
        _assert_no_key_in_files(path)
        assert not any(leaks(repr(entry)) for entry in box.entries())
        assert not leaks(repr(box))
    with (
        Outbox(path) as box,
        Client(city.base_url, transport=city.transport(), **{**options, "api_key": "wrong"}) as bad,
        pytest.raises(civic311.ForbiddenError),
    ):
        bad.submit(report(5), outbox=box)  # failed: the city refuses the key
    with Outbox(path) as box:
        states |= {entry.state for entry in box.entries()}
    assert {"sent", "failed"} <= states
    _assert_no_key_in_files(path)


def test_api_key_absent_from_ledger_files(tmp_path: Path) -> None:
    """The Ledger's SQLite files never hold the api_key, after a bulk run or otherwise."""
    from civic311 import bulk

    clock = VirtualClock(start=NOW)
    city = FakeCity(seed=6, clock=clock, api_key=KEY)
    switch = Switch(city.transport())
    path = tmp_path / "ledger.sqlite"

    def rows(tag: str) -> list[bulk.Row]:
        text = "service_code,lat,long,description\n" + "".join(
            f"001,41.{i},-72.9,{tag} report {i}\n" for i in range(3)
        )
        return list(bulk.read_rows(io.StringIO(text), format="csv"))

    async def run() -> None:
        async with AsyncClient(
            city.base_url,
            transport=switch,
            api_key=KEY,
            profile=KEY_ON_READS,
            clock=clock,
            reconcile_wait=1.0,
            retry=civic311.RetryPolicy(attempts=2),
        ) as client:
            with Ledger(path) as ledger:
                for mode in ("refuse-post", "timeout-post", "city"):
                    switch.mode = mode
                    await bulk.submit_all(client, rows(mode), ledger=ledger, concurrency=2)
                    _assert_no_key_in_files(path)
                    clock.advance(120)  # past the endpoint's cooldown
                states = {submission.state for submission in ledger.submissions()}
                assert {"queued", "uncertain", "sent"} <= states

    asyncio.run(run())
    with Ledger(path) as ledger:
        ledger.record_submission(
            key=None,
            request=REQUEST,
            endpoint=f"{BASE}?api_key={KEY}",
            sent_at=NOW,
            error=f"GET {BASE}/requests.json?api_key={KEY} → HTTP 500",
        )
        ledger.record_status(
            ServiceRequest(
                service_request_id="9",
                status=Status("open"),
                extras={"api_key": KEY, "apiKey": KEY, "key": KEY},
            ),
            observed_at=NOW,
        )
        _assert_no_key_in_files(path)
        assert not leaks(repr(ledger))
    _assert_no_key_in_files(path)


def _click_group() -> Any:
    """The ``civic311`` click group, wherever civic311.cli keeps it."""
    click = pytest.importorskip("click")
    import importlib

    for module in ("civic311.cli._app", "civic311.cli"):
        try:
            found = importlib.import_module(module)
        except ImportError:
            continue
        groups = [v for v in vars(found).values() if isinstance(v, click.Group)]
        groups.sort(key=lambda group: (getattr(group, "name", "") != "cli", -len(group.params)))
        if groups:
            return groups[0]
    pytest.skip("civic311.cli has no click command group yet: the CLI check waits for it")


def _option_names(command: Any) -> set[str]:
    return {opt for param in command.params for opt in getattr(param, "opts", ())}


def test_api_key_absent_from_cli_output(tmp_path: Path) -> None:
    """The CLI's services and a failing submit never print the api_key."""
    group = _click_group()
    from click.testing import CliRunner

    if not {"--endpoint", "--api-key-file"} <= _option_names(group):
        pytest.skip("the click CLI has no --endpoint/--api-key-file options to test with")
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    ledger = tmp_path / "ledger.sqlite"
    runner = CliRunner()
    common = ["--api-key-file", str(key_file), "--ledger", str(ledger)]

    def output(result: Any) -> str:
        text = result.output
        with contextlib.suppress(ValueError, AttributeError):
            text += result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            text += "".join(traceback.format_exception(result.exception))
        return text

    city = FakeCity(seed=7, api_key=KEY)
    with city.serve() as url:
        listed = runner.invoke(group, ["--endpoint", url, *common, "services"])
        assert listed.exit_code == 0, output(listed)
        assert "001" in listed.output
        assert not leaks(output(listed))
    submit = group.commands.get("submit")
    if submit is None or not {"--service-code", "--lat", "--long"} <= _option_names(submit):
        pytest.skip("the click CLI's submit takes no --service-code/--lat/--long to test with")
    refusing = FakeCity(seed=8, api_key="another-key")
    with refusing.serve() as url:
        failed = runner.invoke(
            group,
            [
                "--endpoint",
                url,
                *common,
                "submit",
                "--service-code",
                "001",
                "--lat",
                "41.3",
                "--long",
                "-72.9",
            ],
        )
    assert failed.exit_code not in (0, 2), output(failed)  # refused by the city, not a usage error
    assert not leaks(output(failed))
    if ledger.exists():
        _assert_no_key_in_files(ledger)


# --- 5. TLS ----------------------------------------------------------------------------------


def _ssl_context(client: Client | AsyncClient) -> ssl.SSLContext:
    """The SSLContext of the httpx client civic311 made (httpx → transport → pool)."""
    transport = client._http._transport
    pool = getattr(transport, "_pool", None)
    context = getattr(pool, "_ssl_context", None)
    assert isinstance(context, ssl.SSLContext), (
        "httpx's internals moved: find the SSLContext of client._http's transport"
    )
    return context


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_tls_verification_cannot_be_turned_off(cls: type[Client] | type[AsyncClient]) -> None:
    """The clients take no verify switch: verify=False is a TypeError, not a silent opt-out."""
    parameters = inspect.signature(cls).parameters
    assert not {"verify", "insecure", "ssl_verify", "verify_ssl"} & set(parameters)
    with pytest.raises(TypeError):
        cls(BASE, verify=False)


@pytest.mark.parametrize("cls", [Client, AsyncClient])
@pytest.mark.parametrize("bundle", ["default", "ca_bundle"])
def test_clients_verify_certificates(cls: type[Client] | type[AsyncClient], bundle: str) -> None:
    """civic311's httpx client requires valid certificates and checks host names."""
    certifi = pytest.importorskip("certifi")
    options = {"ca_bundle": certifi.where()} if bundle == "ca_bundle" else {}
    client = cls(BASE, **options)
    try:
        context = _ssl_context(client)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname is True
        if bundle == "ca_bundle":
            assert context.cert_store_stats()["x509_ca"] > 10
    finally:
        if isinstance(client, Client):
            client.close()
        else:
            asyncio.run(client.aclose())


def test_bad_ca_bundle_is_refused(tmp_path: Path) -> None:
    """A missing, empty, non-PEM or directory ca_bundle raises InvalidRequestError."""
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    for bad in (tmp_path / "missing.pem", junk, empty, tmp_path):
        for cls in (Client, AsyncClient):
            with pytest.raises(InvalidRequestError) as caught:
                cls(BASE, ca_bundle=str(bad))
            assert caught.value.field == "ca_bundle", bad


def _certdata() -> Path:
    """CPython's own test certificates (a CA, and a server certificate for 127.0.0.1)."""
    for folder in ("test/certdata", "test"):
        path = Path(sysconfig.get_paths()["stdlib"]) / folder
        if (path / "allsans.pem").exists() and (path / "pycacert.pem").exists():
            return path
    pytest.skip("CPython's test certificates (test/certdata) are not installed here")


def test_untrusted_certificate_is_refused_on_loopback() -> None:
    """Real TLS on 127.0.0.1: an unknown CA is refused, and trusted once given as ca_bundle."""
    certs = _certdata()
    with TLSServer(certs / "allsans.pem") as server:
        endpoint = f"https://127.0.0.1:{server.port}/open311/v2"
        with Client(endpoint, retry=None, timeout=5) as client:
            with pytest.raises(TransportError) as caught:
                client.list_services()
            assert caught.value.sent is False
        with Client(
            endpoint, retry=None, timeout=5, ca_bundle=str(certs / "pycacert.pem")
        ) as trusting:
            services = trusting.list_services()
    assert server.errors == []
    assert [s.service_code for s in services] == ["001"]
    assert server.refused >= 1
    assert server.handshakes == 1
