"""Security tests (DESIGN promise 6): hostile XML is refused, bodies are capped, credentials
never follow a redirect to another host, the api_key never shows (reprs, errors, logs, the
Outbox and Ledger files, the CLI), and TLS verification is always on.

Every server here is on 127.0.0.1, every loop is bounded in count and time, and every thread
started here is stopped before its test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import inspect
import io
import json
import logging
import re
import socket
import ssl
import sysconfig
import threading
import time
import traceback
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

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
from civic311.outbox import Outbox
from civic311.testing import FakeCity, Fault, VirtualClock

from helpers import ASYNC_BACKENDS, Both, run_async

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

    def __init__(self, certfile: Path, bodies: dict[str, bytes] | None = None) -> None:
        super().__init__()
        self.bodies = bodies or {}  # path suffix → body; SERVICES_JSON otherwise
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
            path = self.read_head(tls).split(b" ")[1].decode()
            body = next(
                (b for suffix, b in self.bodies.items() if path.endswith(suffix)), SERVICES_JSON
            )
            tls.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
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


@pytest.mark.parametrize("flavor", ["sync", *ASYNC_BACKENDS])
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

        run_async(go, flavor)

    started = time.perf_counter()
    peak = _traced_peak(run)
    assert time.perf_counter() - started < 10
    assert stream.given <= CAP + 2 * len(GigaStream.CHUNK)
    assert peak < 3 * CAP


@pytest.mark.parametrize("flavor", ["sync", *ASYNC_BACKENDS])
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

        message = run_async(go, flavor)
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
        assert box.submit(client, report(1)).state == "sent"
        for n, mode in enumerate(("refuse", "timeout-post"), start=2):
            switch.mode = mode
            assert box.submit(client, report(n)).state in ("queued", "uncertain")
            clock.advance(120)  # past the endpoint's cooldown
        switch.mode = "city"
        city.inject(Fault.status(500, body="error"), times=10, method="POST")
        box.submit(client, report(4))
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
        box.submit(bad, report(5))  # failed: the city refuses the key
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


# --- 6. hostile answers: error documents with 2xx, echoed keys (issue 12) ---------------------


class Scripted:
    """A GeoReport server on 127.0.0.1 that answers every request with one scripted answer.

    *body* may be a function of the request's form and query (to echo what it was sent, the
    api_key included). Each answer is counted; the server stops at the end of the block.
    """

    def __init__(
        self,
        body: bytes | Callable[[dict[str, str]], bytes],
        *,
        status: int = 200,
        content_type: str = "application/json; charset=utf-8",
        base_path: str = "/open311/v2",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.headers = headers or {}
        self.body = body
        self.status = status
        self.content_type = content_type
        self.base_path = base_path
        self.seen: list[tuple[str, str]] = []

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(min(length, 1 << 20)).decode("utf-8", "replace")
        fields = dict(parse_qsl(urlsplit(handler.path).query)) | dict(parse_qsl(raw))
        self.seen.append((handler.command, handler.path))
        body = self.body(fields) if callable(self.body) else self.body
        handler.send_response(self.status)
        handler.send_header("Content-Type", self.content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        for name, value in self.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on a free port of 127.0.0.1; yield the base URL."""
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5

            def do_GET(self) -> None:
                scripted._answer(self)

            def do_POST(self) -> None:
                scripted._answer(self)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}{self.base_path}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
            assert not thread.is_alive()


def run_on(flavor: str, url: str, method: str, *args: Any, **options: Any) -> Any:
    """Call *method* on a Client or AsyncClient (by *flavor*) for *url*; return the result and
    the client's endpoint health."""
    options = {"retry": None, "timeout": 5, "reconcile_wait": 0.0, **options}
    if flavor == "sync":
        with Client(url, **options) as client:
            try:
                return getattr(client, method)(*args)
            finally:
                run_on.health = client.health()  # type: ignore[attr-defined]

    async def go() -> Any:
        async with AsyncClient(url, **options) as client:
            try:
                return await getattr(client, method)(*args)
            finally:
                run_on.health = client.health()  # type: ignore[attr-defined]

    return asyncio.run(go())


def echo(template: str) -> Callable[[dict[str, str]], bytes]:
    """A body built from *template* with ``{key}`` replaced by the api_key the server got,
    JSON-escaped (``{key_json}``) or as XML text (``{key_xml}``)."""

    def body(fields: dict[str, str]) -> bytes:
        key = fields.get("api_key", "")
        return (
            template.replace("{key_json}", json.dumps(key)[1:-1])
            .replace("{key_xml}", html.escape(key))
            .replace("{key}", key)
            .encode()
        )

    return body


#: (name, body, expected error class): the six error shapes seen in the wild, and more, as a
#: city answers them with HTTP 200 — each echoing the key it refused.
ERROR_DOCUMENTS_200: list[tuple[str, Callable[[dict[str, str]], bytes], type[APIError]]] = [
    (
        "fixmystreet-field-map",
        echo('{"errors":{"api_key":"Invalid api_key {key_json}"}}'),
        civic311.ForbiddenError,
    ),
    (
        "spec-list",
        echo('[{"code":403,"description":"Invalid api_key received: {key_json}"}]'),
        civic311.ForbiddenError,
    ),
    (
        "fixmystreet-record",
        echo('{"errors":{"code":400,"description":"Bad request: lat {key_json}"}}'),
        civic311.BadRequestError,
    ),
    (
        "mark-a-spot",
        echo('{"error":{"code":400,"message":"service_code missing; key {key_json}"}}'),
        civic311.BadRequestError,
    ),
    (
        "6aika",
        echo('{"code":403,"detail":["Invalid API key {key_json}"]}'),
        civic311.ForbiddenError,
    ),
    (
        "ureport",
        echo('[{"description":"Invalid api_key {key_json}"}]'),
        civic311.ForbiddenError,
    ),
    (
        "errors-list",
        echo('{"errors":["no such service","key {key_json}"]}'),
        civic311.BadRequestError,
    ),
    (
        "xml-errors",
        echo(
            '<?xml version="1.0"?><errors><error><code>403</code>'
            "<description>Invalid api_key {key_xml}</description></error></errors>"
        ),
        civic311.ForbiddenError,
    ),
]


def _said_by(error: BaseException) -> str:
    """Everything an error shows: text, repr, body, parsed errors, attributes, cause chain."""
    return "\n".join(
        [
            _everything_said(error),
            repr(getattr(error, "errors", "")),
            getattr(error, "body", b"").decode("utf-8", "replace"),
        ]
    )


@pytest.mark.parametrize("flavor", ["sync", "async"])
@pytest.mark.parametrize(
    ("name", "body", "expected"), ERROR_DOCUMENTS_200, ids=[e[0] for e in ERROR_DOCUMENTS_200]
)
def test_error_document_with_200_is_a_refusal_not_a_receipt(
    flavor: str, name: str, body: Callable[[dict[str, str]], bytes], expected: type[APIError]
) -> None:
    """A POST answered 200 with an error document raises the APIError its codes imply: no
    Receipt, one attempt, the endpoint still up, and the echoed key nowhere in the error."""
    xml = name.startswith("xml")
    server = Scripted(body, content_type="text/xml" if xml else "application/json")
    with server.serve() as url, pytest.raises(APIError) as caught:
        run_on(
            flavor,
            url,
            "submit",
            REQUEST,
            api_key=KEY,
            format="xml" if xml else "json",
            retry=civic311.RetryPolicy(attempts=3),
        )
    error = caught.value
    assert type(error) is expected
    assert error.http_status == 200
    assert error.status_code == (403 if expected is civic311.ForbiddenError else 400)
    assert error.errors, "the parsed error entries are kept"
    assert len(server.seen) == 1, "a refusal is not retried"
    assert [h.state.value for h in run_on.health] == ["up"]  # type: ignore[attr-defined]
    assert not leaks(_said_by(error))
    assert "***" in _said_by(error)


@pytest.mark.parametrize("flavor", ["sync", "async"])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_error_document_with_200_on_a_read_is_an_api_error(flavor: str, fmt: str) -> None:
    """A GET answered 200 with an error document raises too (never an empty list)."""
    body = (
        b'<?xml version="1.0"?><errors><error><code>404</code><description>unknown jurisdiction'
        b"</description></error></errors>"
        if fmt == "xml"
        else b'[{"code":404,"description":"unknown jurisdiction"}]'
    )
    with Scripted(body).serve() as url, pytest.raises(civic311.NotFoundError) as caught:
        run_on(flavor, url, "list_requests", format=fmt)
    assert caught.value.http_status == 200
    assert "unknown jurisdiction" in str(caught.value)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_answers_that_look_like_errors_but_carry_data_are_data(fmt: str) -> None:
    """A receipt or request list that merely has a description field is not an error."""
    json_body = b'[{"service_request_id":"7","description":"error: pothole","code":"x"}]'
    xml_body = (
        b"<service_requests><request><service_request_id>7</service_request_id>"
        b"<description>error</description></request></service_requests>"
    )
    with Scripted(xml_body if fmt == "xml" else json_body).serve() as url:
        receipt = run_on("sync", url, "submit", REQUEST, api_key=KEY, format=fmt)
    assert receipt.service_request_id == "7"


def test_cli_exits_1_on_an_error_document_with_200(tmp_path: Path) -> None:
    """civic311 submit against an XML <errors> 200 exits 1 (refused), not 3 (unreachable),
    and prints no spelling of the echoed key, with --json or --debug."""
    group = _click_group()
    from click.testing import CliRunner

    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    body = echo(
        '<?xml version="1.0"?><errors><error><code>403</code>'
        "<description>Invalid api_key {key_xml} ({key_json})</description></error></errors>"
    )
    submit = ["submit", "--service-code", "001", "--lat", "41.3", "--long", "-72.9"]
    with Scripted(body, content_type="text/xml").serve() as url:
        common = ["--endpoint", url, "--api-key-file", str(key_file)]
        common += ["--ledger", str(tmp_path / "l.sqlite"), "--format", "xml"]
        plain = CliRunner().invoke(group, [*common, *submit])
        as_json = CliRunner().invoke(group, ["--json", *common, *submit])
        debug = CliRunner().invoke(group, ["--debug", *common, *submit])
    for result in (plain, as_json):
        assert result.exit_code == 1, result.output
        assert "ForbiddenError" in result.output + result.stderr
        assert not leaks(result.output + result.stderr)
    assert isinstance(debug.exception, civic311.ForbiddenError)
    traced = "".join(traceback.format_exception(debug.exception))
    assert not leaks(traced + debug.output)


# --- 7. the one masking rule (issue 11 point 14, issue 12 points 3 and 8) -------------------


def test_short_keys_are_masked_only_where_they_stand_as_values() -> None:
    """api_key="test" leaves "a test service" and "get_token" alone, masks api_key=test."""
    from civic311._secrets import mask_text

    assert mask_text("This is a test service", "test") == "This is a test service"
    assert mask_text("GET /tokens/get_token.json", "test") == "GET /tokens/get_token.json"
    assert mask_text("POST a?api_key=test&x=1", "test") == "POST a?api_key=***&x=1"
    assert mask_text('{"api_key": "test"}', "test") == '{"api_key": "***"}'
    assert mask_text("<key>test</key>", "test") == "<key>***</key>"
    assert mask_text("test", "test") == "***"


def test_long_keys_are_masked_everywhere_in_every_spelling() -> None:
    """A key of 8+ characters is masked inside words too, raw, URL-, form-, JSON-, XML-escaped."""
    from civic311._secrets import mask_bytes, mask_text

    key = 'k"e\\y/+é&<7f3a9c'
    spellings = [
        key,
        quote(key, safe=""),
        quote_plus(key),
        json.dumps(key)[1:-1],
        json.dumps(key, ensure_ascii=False)[1:-1],
        json.dumps(key)[1:-1].replace("/", "\\/"),
        html.escape(key),
        repr(json.dumps(key))[2:-2],
    ]
    for spelling in spellings:
        text = f"x{spelling}y and {spelling}"
        assert spelling not in mask_text(text, key), spelling
        assert spelling.encode() not in mask_bytes(text.encode(), key), spelling


def test_cli_short_key_does_not_corrupt_output(tmp_path: Path) -> None:
    """With api_key "test", the CLI prints a city's "test" words as they are."""
    group = _click_group()
    from click.testing import CliRunner

    key_file = tmp_path / "key.txt"
    key_file.write_text("test\n")
    key_file.chmod(0o600)
    body = (
        b'[{"service_code":"001","service_name":"Pothole","description":"This is a test service"}]'
    )
    with Scripted(body).serve() as url:
        result = CliRunner().invoke(
            group, ["--json", "--endpoint", url, "--api-key-file", str(key_file), "services"]
        )
    assert result.exit_code == 0, result.output
    assert "This is a test service" in result.output


def test_cli_masks_a_json_escaped_key_in_json_output(tmp_path: Path) -> None:
    """A key holding '"' and '\\' that a city echoes in a field never shows in --json output,
    raw or JSON-escaped (issue 12 point 8)."""
    group = _click_group()
    from click.testing import CliRunner

    key = 'quo"te\\back/slash-7f3a'
    key_file = tmp_path / "key.txt"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    body = json.dumps(
        [{"service_request_id": "1", "status": "open", "status_notes": f"you sent {key}"}]
    ).encode()
    with Scripted(body).serve() as url:
        result = CliRunner().invoke(
            group,
            ["--json", "--endpoint", url, "--api-key-file", str(key_file), "request", "1"],
        )
    assert result.exit_code == 0, result.output
    assert "you sent ***" in result.output
    for spelling in (key, json.dumps(key)[1:-1], quote(key, safe="")):
        assert spelling not in result.output + result.stderr


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_echoed_key_absent_from_debug_log_of_an_error_document(
    flavor: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The DEBUG log of a call refused by a 200 error document echoing the key holds no key."""
    caplog.set_level(logging.DEBUG)
    body = echo('{"errors":{"api_key":"bad key {key_json}"}}')
    with Scripted(body).serve() as url, pytest.raises(civic311.ForbiddenError):
        run_on(flavor, url, "submit", REQUEST, api_key=KEY)
    texts = _log_texts(caplog.records)
    assert any("attempt" in text for text in texts)
    assert [text for text in texts if leaks(text)] == []


class EchoThenFlood(_Loopback):
    """Answers 200 with the request's form (api_key and all) echoed, then an endless body."""

    def serve(self, conn: socket.socket) -> None:
        head = self.read_head(conn)
        _, _, rest = head.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        while len(rest) < length:
            chunk = conn.recv(4096)
            if not chunk:
                break
            rest += chunk
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        conn.sendall(b"Connection: close\r\n\r\n")
        conn.sendall(b'{"echo": "' + rest + b'", "pad": "')
        with contextlib.suppress(OSError):
            for _ in range(64):
                conn.sendall(b"x" * 16384)


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_echoed_key_absent_from_response_too_large_body(flavor: str) -> None:
    """ResponseTooLargeError.body (the first KiB) never holds the key a city echoed."""
    with EchoThenFlood() as server:
        url = f"http://127.0.0.1:{server.port}/open311/v2"
        with pytest.raises(Civic311Error) as caught:
            run_on(flavor, url, "submit", REQUEST, api_key=KEY, max_response_bytes=4096)
    error = caught.value
    too_large = [
        e
        for e in (error, error.__cause__, getattr(error, "__context__", None))
        if isinstance(e, ResponseTooLargeError)
    ]
    attempts = getattr(error, "attempts", [])
    too_large += [a.error for a in attempts if isinstance(a.error, ResponseTooLargeError)]
    assert too_large, f"expected a ResponseTooLargeError, got {error!r}"
    for found in too_large:
        assert b"api_key=***" in found.body
        assert not leaks(found.body.decode("utf-8", "replace"))
    assert not leaks(_everything_said(error))


def test_html_error_page_is_named_by_its_title_not_its_markup() -> None:
    """An HTML error page is named by status and <title> in the message; the body stays."""
    page = (
        b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>body{}</style>"
        b"</head><body><center><h1>502 Bad Gateway</h1></center><hr>nginx</body></html>"
    )
    for status in (502, 200):
        server = Scripted(page, status=status, content_type="text/html")
        with server.serve() as url, pytest.raises(Civic311Error) as caught:
            run_on("sync", url, "get_request", "1")
        error = caught.value
        if isinstance(error, civic311.AllEndpointsFailedError):
            error = error.last_error  # type: ignore[assignment]
        text = str(error)
        assert f"HTTP {status}" in text
        assert "'502 Bad Gateway'" in text
        assert "<center>" not in text
        assert "style" not in text
        assert error.body == page  # type: ignore[union-attr]


# --- 8. downgrades: discovery, redirects, the https upgrade (issue 12 point 4) ---------------

_DISCOVERIES = iter(range(10**6))


def _discovery(*urls: str) -> bytes:
    """A discovery document listing *urls* as GeoReport v2 production JSON endpoints."""
    return json.dumps(
        {
            "endpoints": [
                {
                    "specification": "http://wiki.open311.org/GeoReport_v2",
                    "url": url,
                    "type": "production",
                    "formats": ["application/json"],
                }
                for url in urls
            ]
        }
    ).encode()


def _from_discovery(flavor: str, url: str, hosts: Hosts, **options: Any) -> tuple[str, ...]:
    """The endpoints of a client built by from_discovery (sync or async), after one submit
    (whose errors are ignored: what matters is where it went)."""
    options = {"transport": httpx.MockTransport(hosts), "retry": None, **options}
    options["reconcile_wait"] = 0.0
    if flavor == "sync":
        with Client.from_discovery(url, **options) as client:
            with contextlib.suppress(Civic311Error):
                client.submit(REQUEST)
            return client.endpoints

    async def go() -> tuple[str, ...]:
        async with await AsyncClient.from_discovery(url, **options) as client:
            with contextlib.suppress(Civic311Error):
                await client.submit(REQUEST)
            return client.endpoints

    return asyncio.run(go())


def _document_host(body: bytes) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(".json") and "discovery" in request.url.path:
            return httpx.Response(200, content=body)
        return httpx.Response(200, json=[{"service_request_id": "1"}])

    return handler


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_discovery_over_https_never_yields_http_endpoints(flavor: str) -> None:
    """A document read over https that lists http endpoints yields them over https (warned);
    the POST and its key never travel over plain http."""
    doc = _discovery("http://api.city.example/open311/v2")
    hosts = Hosts({"city.example": _document_host(doc), "api.city.example": _document_host(doc)})
    url = f"https://city.example/open311/discovery-{next(_DISCOVERIES)}.json"
    with pytest.warns(civic311.Civic311Warning, match="plain-http endpoint"):
        endpoints = _from_discovery(flavor, url, hosts, api_key=KEY)
    assert endpoints == ("https://api.city.example/open311/v2",)
    assert all(url.startswith("https://") for _, _, url, _ in hosts.seen)
    assert hosts.saw_key("api.city.example")


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_discovery_redirected_from_https_to_http_is_refused(flavor: str) -> None:
    """A discovery URL given as https that redirects to http is refused before the http
    request is sent; no endpoint it names is ever asked."""
    doc = _discovery("http://evil.example/open311/v2")
    hosts = Hosts(
        {
            "city.example": lambda request: (
                _redirect(302, "http://city.example/open311/discovery.json")(request)
                if request.url.scheme == "https"
                else httpx.Response(200, content=doc)
            ),
            "evil.example": _document_host(doc),
        }
    )
    url = f"https://city.example/open311/discovery-{next(_DISCOVERIES)}.json"
    with pytest.raises(TransportError) as caught:
        _from_discovery(flavor, url, hosts, api_key=KEY)
    assert "https to plain http" in str(caught.value)
    assert caught.value.sent is False
    assert [scheme for _, _, scheme, _ in hosts.seen if scheme.startswith("http://")] == []
    assert "evil.example" not in hosts.hosts()


def test_get_discovery_refuses_a_document_read_after_a_downgrade() -> None:
    """get_discovery over a caller's own httpx client (no downgrade hook installed) refuses a
    document whose https fetch ended on plain http (what TLS vouched for is not what came back)."""
    hosts = Hosts(
        {
            "city.example": lambda request: (
                _redirect(301, "http://city.example/d.json")(request)
                if request.url.scheme == "https"
                else httpx.Response(200, content=_discovery("http://city.example/v2"))
            )
        }
    )
    with (
        httpx.Client(transport=httpx.MockTransport(hosts)) as http,
        civic311.Client("https://city.example", http_client=http) as client,
        pytest.raises(DecodeError, match="redirected to plain http"),
    ):
        client.get_discovery("https://city.example/d.json", cache=None)


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_plain_http_document_gets_no_key_on_plain_http_endpoints(flavor: str) -> None:
    """From a document read over http, an api_key goes to no plain-http endpoint: they are
    dropped beside https ones (warned), refused when alone, kept when there is no key."""
    mixed = _discovery("http://a.example/v2", "https://b.example/v2")
    alone = _discovery("http://a.example/v2")
    hosts = Hosts(
        {
            "city.example": lambda request: httpx.Response(
                200, content=mixed if "mixed" in request.url.path else alone
            ),
            "a.example": _document_host(b""),
            "b.example": _document_host(b""),
        }
    )
    n = next(_DISCOVERIES)
    with pytest.warns(civic311.Civic311Warning, match="never travels unencrypted"):
        kept = _from_discovery(flavor, f"http://city.example/mixed-{n}.json", hosts, api_key=KEY)
    assert kept == ("https://b.example/v2",)
    with pytest.raises(InvalidRequestError) as caught:
        _from_discovery(flavor, f"http://city.example/alone-{n}.json", hosts, api_key=KEY)
    assert caught.value.field == "api_key"
    assert "Client(endpoint, api_key=" in str(caught.value)
    assert not hosts.saw_key("a.example")
    assert _from_discovery(flavor, f"http://city.example/alone-{n}.json", hosts) == (
        "http://a.example/v2",
    )


def test_get_redirect_from_https_to_http_is_refused(both: Both) -> None:
    """A GET redirected from https to http is refused before anything goes over http."""
    hosts = Hosts(
        {
            "city.example": lambda request: (
                _redirect(301, "http://city.example/open311/v2/services.json")(request)
                if request.url.scheme == "https"
                else httpx.Response(200, content=SERVICES_JSON)
            )
        }
    )
    with pytest.raises(TransportError, match="https to plain http"):
        both(hosts, "list_services", client={"retry": None})
    assert [url for _, _, url, _ in hosts.seen] == ["https://city.example/open311/v2/services.json"]


@pytest.mark.parametrize(
    ("start", "location", "followed"),
    [
        (
            "http://city.example:8080/open311/v2",
            "https://city.example:8443/open311/v2/requests.json",
            False,
        ),
        (
            "http://city.example:8080/open311/v2",
            "https://city.example:8080/open311/v2/requests.json",
            True,
        ),
        ("http://city.example/open311/v2", "https://city.example/open311/v2/requests.json", True),
        (
            "http://city.example/open311/v2",
            "https://city.example:8443/open311/v2/requests.json",
            False,
        ),
    ],
    ids=["other-port", "same-port", "default-ports", "default-to-other"],
)
def test_post_https_upgrade_keeps_the_port(
    both: Both, start: str, location: str, followed: bool
) -> None:
    """A POST follows an http→https upgrade only to the same port (or 80 → 443)."""
    hosts = Hosts(
        {
            "city.example": lambda request: (
                _redirect(301, location)(request)
                if request.url.scheme == "http"
                else httpx.Response(200, json=[{"service_request_id": "5"}])
            )
        }
    )
    options = {"endpoints": start, "api_key": KEY, "retry": None, "reconcile_wait": 0.0}
    if followed:
        assert both(hosts, "submit", REQUEST, client=options).service_request_id == "5"
    else:
        with pytest.raises(Civic311Error):
            both(hosts, "submit", REQUEST, client=options)
    posts = [url for method, _, url, _ in hosts.seen if method == "POST"]
    assert len(posts) == (2 if followed else 1)


# --- 9. lone surrogates (issue 12 point 5) -----------------------------------------------------

SURROGATE_JSON = (
    b'[{"service_request_id":"1","status":"open","status_notes":"x \\ud800 y",'
    b'"description":"\\udfff","service_name":"ok \\ud83d\\ude00"}]'
)


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_lone_surrogates_decode_to_replacement_characters(flavor: str, tmp_path: Path) -> None:
    """A city's lone surrogate escapes arrive as U+FFFD (pairs stay whole), and tracking them
    into a ledger (sqlite) works."""
    with Scripted(SURROGATE_JSON).serve() as url, Ledger(tmp_path / "l.sqlite") as ledger:
        request = run_on(flavor, url, "get_request", "1")
        if flavor == "sync":
            with Client(url, retry=None, timeout=5) as client:
                tracked = client.track(["1"], ledger=ledger)
        else:

            async def go() -> Any:
                async with AsyncClient(url, retry=None, timeout=5) as client:
                    return await client.track(["1"], ledger=ledger)

            tracked = asyncio.run(go())
        assert tracked
        assert "\ufffd" in repr(ledger.history("1"))
    assert request.status_notes == "x \ufffd y"
    assert request.description == "\ufffd"
    assert request.service_name == "ok \U0001f600"


def test_lone_surrogates_do_not_crash_the_cli(tmp_path: Path) -> None:
    """civic311 request on a city sending lone surrogates prints them as U+FFFD, exit 0."""
    group = _click_group()
    from click.testing import CliRunner

    with Scripted(SURROGATE_JSON).serve() as url:
        for mode in ([], ["--json"]):
            result = CliRunner().invoke(
                group,
                [*mode, "--endpoint", url, "--ledger", str(tmp_path / "l.db"), "request", "1"],
            )
            assert result.exit_code == 0, result.output + result.stderr
            assert "\ufffd" in result.output


# --- 10. endpoint URLs (issue 12 point 6, issue 14 point 5) ---------------------------------

BAD_ENDPOINTS = {
    "crlf": "https://city.example/open311/v2\r\nX-Injected: 1",
    "lf-in-host": "https://city.exa\nmple/open311/v2",
    "tab": "https://city.example/open\t311/v2",
    "nul": "https://city.example/\x00/v2",
    "del": "https://city.example/\x7f/v2",
    "long-label": f"https://{'a' * 300}.example/open311/v2",
    "long-host": "https://" + ".".join(["a" * 60] * 5) + "/v2",
    "space": "https://city example/open311/v2",
    "bad-port": "https://city.example:99999/open311/v2",
    "no-host": "https:///open311/v2",
    "ftp": "ftp://city.example/open311/v2",
    "query": "https://city.example/open311/v2?x=1",
    "bad-idna": "https://xn--a.example/v2",
    "empty-label": "https://city..example/v2",
}


@pytest.mark.parametrize("cls", [Client, AsyncClient])
@pytest.mark.parametrize("name", list(BAD_ENDPOINTS))
def test_bad_endpoint_urls_are_refused_in_the_constructor(
    cls: type[Client] | type[AsyncClient], name: str
) -> None:
    """CR/LF, control characters, a 300-character label and any URL httpx cannot send to are
    an InvalidRequestError in the constructor, never an httpx error on a call."""
    with pytest.raises(InvalidRequestError) as caught:
        cls(BAD_ENDPOINTS[name])
    assert caught.value.field == "endpoint"
    assert "\r" not in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("cls", [Client, AsyncClient])
@pytest.mark.parametrize("document", ["services.json", "services.xml", "discovery.json"])
def test_base_url_ending_in_a_document_is_trimmed_with_a_warning(
    cls: type[Client] | type[AsyncClient], document: str
) -> None:
    """A base URL given with services.json or discovery.json is trimmed, with a warning."""
    with pytest.warns(civic311.Civic311Warning, match="using the base URL"):
        client = cls(f"https://city.example/open311/v2/{document}")
    assert client.endpoints == ("https://city.example/open311/v2",)
    if isinstance(client, Client):
        client.close()
    else:
        asyncio.run(client.aclose())


NGINX_404 = (
    b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not "
    b"Found</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize("flavor", ["sync", "async"])
@pytest.mark.parametrize("status", [404, 200])
def test_wrong_base_url_says_where_the_base_url_usually_ends(flavor: str, status: int) -> None:
    """A services list answered by a 404 or an HTML page asks whether the base URL is right."""
    server = Scripted(NGINX_404, status=status, content_type="text/html")
    with server.serve() as url, pytest.raises(Civic311Error) as caught:
        run_on(flavor, url.replace("/open311/v2", ""), "list_services")
    error = caught.value
    if isinstance(error, civic311.AllEndpointsFailedError):
        error = error.last_error  # type: ignore[assignment]
    assert isinstance(error, civic311.NotFoundError if status == 404 else DecodeError)
    assert "is this the GeoReport v2 base URL? it usually ends in …/open311/v2" in str(error)
    assert "'404 Not Found'" in str(error)


# --- 11. TLS: ca_bundle replaces, extra_ca adds (issue 12 point 10) --------------------------


def _ca_count(client: Client) -> int:
    return int(_ssl_context(client).cert_store_stats()["x509_ca"])


def test_ca_bundle_replaces_the_public_roots_and_extra_ca_adds_to_them() -> None:
    """ca_bundle trusts only its CAs; extra_ca trusts the public roots and its CAs."""
    certs = _certdata()
    with Client(BASE) as default:
        default_context = _ssl_context(default)
    public = int(httpx.create_ssl_context().cert_store_stats()["x509_ca"])
    assert public > 10
    with Client(BASE, ca_bundle=str(certs / "pycacert.pem")) as replaced:
        assert _ca_count(replaced) == 1
    with Client(BASE, extra_ca=str(certs / "pycacert.pem")) as added:
        assert _ca_count(added) == public + 1
    assert default_context.verify_mode == ssl.CERT_REQUIRED


def test_bad_extra_ca_is_refused(tmp_path: Path) -> None:
    """A missing or empty extra_ca raises InvalidRequestError naming extra_ca."""
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    for bad in (tmp_path / "missing.pem", empty):
        for cls in (Client, AsyncClient):
            with pytest.raises(InvalidRequestError) as caught:
                cls(BASE, extra_ca=str(bad))
            assert caught.value.field == "extra_ca"


@pytest.mark.parametrize("option", ["ca_bundle", "extra_ca"])
@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_from_discovery_honours_the_tls_options(option: str, flavor: str) -> None:
    """Real TLS on 127.0.0.1: from_discovery fetches the document trusting ca_bundle or
    extra_ca, and the client it makes trusts the same."""
    certs = _certdata()
    with TLSServer(certs / "allsans.pem") as server:
        base = f"https://127.0.0.1:{server.port}/open311/v2"
        server.bodies = {"discovery.json": _discovery(base)}
        url = f"https://127.0.0.1:{server.port}/d{next(_DISCOVERIES)}/discovery.json"
        options = {option: str(certs / "pycacert.pem"), "retry": None, "timeout": 5}
        if flavor == "sync":
            with Client.from_discovery(url, **options) as client:
                services = client.list_services()
        else:

            async def go() -> list[Any]:
                async with await AsyncClient.from_discovery(url, **options) as client:
                    return await client.list_services()

            services = asyncio.run(go())
        with pytest.raises(TransportError):
            Client.from_discovery(url.replace("/d", "/e"), retry=None, timeout=5)
    assert server.errors == []
    assert [s.service_code for s in services] == ["001"]


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_probe_calls_every_endpoint_and_a_wrong_url_is_not_up(flavor: str) -> None:
    """probe() asks each endpoint for its services: a real city is up, a wrong base URL (an
    nginx 404) is not, and its last error says what the base URL usually ends in."""
    city = FakeCity(seed=3)
    wrong = Scripted(NGINX_404, status=404, content_type="text/html", base_path="")
    with city.serve() as good, wrong.serve() as bad:
        if flavor == "sync":
            with Client([good, bad], timeout=5) as client:
                before = client.health()
                report = client.probe()
        else:

            async def go() -> tuple[Any, Any]:
                async with AsyncClient([good, bad], timeout=5) as client:
                    return client.health(), await client.probe()

            before, report = asyncio.run(go())
    assert [h.state.value for h in before] == ["up", "up"]  # remembered state: nothing asked
    assert [h.state.value for h in report] == ["up", "degraded"]
    assert "usually ends in …/open311/v2" in (report[1].last_error or "")
    assert len(wrong.seen) == 1


def test_cli_health_shows_a_wrong_url_as_not_up() -> None:
    """civic311 health against a wrong base URL fails and does not report it "up"."""
    group = _click_group()
    from click.testing import CliRunner

    wrong = Scripted(NGINX_404, status=404, content_type="text/html", base_path="")
    with wrong.serve() as bad:
        result = CliRunner().invoke(group, ["--json", "--endpoint", bad, "health"])
    assert result.exit_code == 1, result.output
    shown = json.loads(result.stdout)
    assert shown["ok"] is False
    assert [e["state"] for e in shown["endpoints"]] == ["degraded"]
    assert "is this the GeoReport v2 base URL" in result.stderr


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_redirect_to_an_unusable_host_is_a_transport_error(flavor: str) -> None:
    """A GET redirected to a host label of 300 characters is a TransportError (never sent),
    not a bare UnicodeError from the IDNA codec."""
    target = f"http://{'a' * 300}.example/open311/v2/services.json"
    server = Scripted(b"", status=302, headers={"Location": target})
    with server.serve() as url, pytest.raises(TransportError) as caught:
        run_on(flavor, url, "list_services")
    assert caught.value.sent is False
    # Sync: the IDNA codec's UnicodeError, mapped; async: anyio's resolver refuses the name.
    assert ("not a usable URL" if flavor == "sync" else "could not connect") in str(caught.value)


def test_build_request_maps_an_unusable_url_to_invalid_request() -> None:
    """build_request on a base URL httpx refuses raises InvalidRequestError, not InvalidURL."""
    with pytest.raises(InvalidRequestError) as caught:
        build_request(list_services_call(), "https://city.example/a\nb", "json", Settings())
    assert caught.value.field == "endpoint"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bulk_and_outbox_never_count_a_200_refusal_as_filed(fmt: str, tmp_path: Path) -> None:
    """Bulk marks a row refused by a 200 error document failed, and the Outbox marks it
    failed, never filed or sent; neither stores the key the city echoed."""
    from civic311 import bulk

    body = (
        echo(
            '<?xml version="1.0"?><errors><error><code>403</code>'
            "<description>Invalid api_key {key_xml}</description></error></errors>"
        )
        if fmt == "xml"
        else echo('{"errors":{"api_key":"Invalid api_key {key_json}"}}')
    )
    rows = list(
        bulk.read_rows(
            io.StringIO("service_code,lat,long,description\n001,41.3,-72.9,pothole\n"),
            format="csv",
        )
    )
    ledger_path, outbox_path = tmp_path / "ledger.sqlite", tmp_path / "outbox.sqlite"

    async def run(url: str) -> Any:
        async with AsyncClient(url, api_key=KEY, format=fmt, retry=None, timeout=5) as client:
            with Ledger(ledger_path) as ledger:
                return await bulk.submit_all(client, rows, ledger=ledger, validate=False)

    with Scripted(body).serve() as url:
        summary = asyncio.run(run(url))
        with (
            Outbox(outbox_path) as box,
            Client(url, api_key=KEY, format=fmt, retry=None, timeout=5) as client,
            pytest.raises(civic311.ForbiddenError),
        ):
            box.submit(client, REQUEST)
        with Outbox(outbox_path) as box:
            states = [entry.state for entry in box.entries()]
    assert [r.outcome for r in summary.results] == ["failed"]
    assert states == ["failed"]
    _assert_no_key_in_files(ledger_path)
    _assert_no_key_in_files(outbox_path)


@pytest.mark.parametrize(
    "body",
    [
        b'{"code": 201, "message": "request received"}',
        b'[{"code": "200", "description": "ok"}]',
        b'[{"status": "open", "description": "no id, but not an error either"}]',
    ],
    ids=["success-code", "success-list", "status-record"],
)
def test_documents_with_success_codes_are_not_refusals(body: bytes) -> None:
    """A 2xx status document whose codes are all 2xx, or a record with a status, is no error
    document (it may be an odd answer, but not a refusal)."""
    from civic311._wire.errors import error_document

    assert error_document(json.loads(body)) is False
