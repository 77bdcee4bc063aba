"""FakeCity on a real socket: a `ThreadingHTTPServer` bound to 127.0.0.1.

`FakeCity.serve()` starts one of these and stops it at the end of its ``with`` block. What it
adds over the standard library server:

* **down / up** - `pause()` closes the listening socket (new connections are refused) and every
  open connection; `resume()` binds the same port again (``SO_REUSEADDR``).
* **clean stop** - every connection is tracked, so `stop()` can shut down idle keep-alive
  connections and hung requests, then join the handler threads (bounded wait).
* **faults on the wire** - hang (hold the connection), latency (sleep), truncated bodies (with
  the full or the honest Content-Length), dropped connections (see `_faults`).

Only the loopback interface is ever bound.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from civic311.testing._incoming import Incoming

if TYPE_CHECKING:
    from civic311.testing._handler import CityHandler

__all__ = ["LoopbackServer"]

HOST = "127.0.0.1"
_MAX_BODY = 1024 * 1024  # a urlencoded report is a few KB; refuse anything absurd
_POLL = 0.02  # seconds between checks while a request hangs
_JOIN_TIMEOUT = 2.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 refuses connections when a client opens dozens at
    # once (bulk runs at concurrency 32): a real city's front end queues far more.
    request_queue_size = 128
    block_on_close = False

    def __init__(self, owner: LoopbackServer, port: int) -> None:
        self.owner = owner
        super().__init__((HOST, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"fakecity-conn-{client_address[1]}",
            daemon=True,
        )
        self.owner.track_thread(thread)
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients vanishing mid-answer is routine here (timeouts, fault tests): stay quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers; we always send a length
    server_version = "FakeCity/1.0"
    # Answer in one TCP segment where possible: headers and body are buffered and flushed
    # together, and Nagle is off, so a small answer never waits for a delayed ACK (~40 ms).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner.track_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.owner.untrack_connection(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log on stderr during test runs

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > _MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, headers: Any, body: bytes, length: int | None = None) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _serve(self) -> None:
        owner = self.server.owner
        plain = [("Content-Type", "text/plain; charset=utf-8")]
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(400, plain, b"Malformed request body framing")
            return
        if body is None:
            self.close_connection = True
            self._send(413, plain, b"Request body too large")
            return
        incoming = Incoming(
            method=self.command.upper(),
            target=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        plan = owner.city.plan(incoming)
        closed = owner.closed_event()
        if plan.delay and closed.wait(plan.delay):
            self.close_connection = True
            return
        try:
            reply = plan.run()
        except Exception as exc:
            # A bug in the fake city must not look like a network fault: say so, loudly.
            self.close_connection = True
            self._send(500, plain, f"FakeCity internal error: {exc!r}".encode())
            return
        if plan.action == "hang":
            release = owner.city.faults.release_event()
            while not (release.wait(_POLL) or closed.is_set()):
                pass
            self.close_connection = True
            return
        if reply is None or plan.action == "drop":
            self.close_connection = True
            return
        if plan.truncate == "full_length":
            self.close_connection = True
            self._send(
                reply.status, reply.headers, reply.body[: len(reply.body) // 2], len(reply.body)
            )
            return
        if plan.truncate == "honest":
            self._send(reply.status, reply.headers, reply.body[: len(reply.body) // 2])
            return
        self._send(reply.status, reply.headers, reply.body)

    def do_GET(self) -> None:
        self._serve()

    # BaseHTTPRequestHandler dispatches on do_<METHOD>; every method goes to the city.
    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET


class LoopbackServer:
    """One served FakeCity: a listening socket on 127.0.0.1 and its connection threads."""

    def __init__(self, city: CityHandler, port: int = 0) -> None:
        self.city = city
        self.port = port
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._loop: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()  # set while paused or stopped: hung requests end

    def closed_event(self) -> threading.Event:
        """The event that ends hangs and latency sleeps of current connections."""
        with self._lock:
            return self._closed

    def track_connection(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def untrack_connection(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def track_thread(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    def start(self) -> None:
        """Bind (the port given, or a free one) and start accepting."""
        server = _Server(self, self.port)
        self.port = server.server_address[1]
        loop = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"fakecity-{self.port}",
            daemon=True,
        )
        with self._lock:
            self._server = server
            self._loop = loop
            self._closed = threading.Event()
        loop.start()

    def pause(self) -> None:
        """Stop listening (connection refused) and close every open connection."""
        with self._lock:
            server, loop = self._server, self._loop
            self._server = self._loop = None
            self._closed.set()
            connections = list(self._connections)
        if server is not None:
            server.shutdown()
            server.server_close()
        if loop is not None:
            loop.join(_JOIN_TIMEOUT)
        for conn in connections:
            # shutdown() wakes a handler blocked reading the next keep-alive request; the
            # handler thread then closes the socket itself (no fd is closed under its feet).
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def resume(self) -> None:
        """Listen again on the same port."""
        with self._lock:
            running = self._server is not None
        if not running:
            self.start()

    def stop(self) -> None:
        """Stop for good: close everything and wait (bounded) for handler threads to end."""
        self.pause()
        with self._lock:
            threads = list(self._threads)
            self._threads.clear()
        for thread in threads:
            thread.join(_JOIN_TIMEOUT)
