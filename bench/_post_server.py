"""A cheap GeoReport POST server for bench/bulk.py, run in its own process (not a script itself:
run_all skips ``_*``).

It answers every ``POST …/requests.json`` after a fixed delay with a one-receipt JSON list, and
counts the TCP connections it accepted. It is a bare asyncio `Protocol` (no HTTP framework, no
thread per request): a few tens of microseconds of CPU per request, so on a 2-core machine the
server is never what limits the client under test. The delay is a timer (``call_later``), not a
sleeping thread, so 32 requests wait at once at no cost. Running it in a separate process keeps
its work off the client's interpreter (no shared GIL).

``GET /_stats`` answers ``{"connections": N, "posts": M}`` and resets both counts (on a fresh
connection, which is not counted).

    python bench/_post_server.py LATENCY     # prints "PORT <n>" once listening
"""

from __future__ import annotations

import asyncio
import json
import sys

_HEAD_END = b"\r\n\r\n"


class _Counts:
    connections = 0
    posts = 0
    next_id = 1


class _Http(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection (as httpx sends them)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _Counts.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(_HEAD_END)
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            self._answer(head.split(" ", 2))

    def _answer(self, request_line: list[str]) -> None:
        method, path = request_line[0], request_line[1]
        if method == "GET" and path.startswith("/_stats"):
            _Counts.connections -= 1  # this very connection does not count
            body = json.dumps({"connections": _Counts.connections, "posts": _Counts.posts})
            _Counts.connections = 0
            _Counts.posts = 0
            self._send(200, body.encode())
            return
        if method != "POST":
            self._send(404, b'[{"code":404,"description":"not here"}]')
            return
        _Counts.posts += 1
        rid = _Counts.next_id
        _Counts.next_id += 1
        body = b'[{"service_request_id":"%d","service_notice":"","account_id":null}]' % rid
        self.loop.call_later(self.latency, self._send, 201, body)

    def _send(self, status: int, body: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        reason = {200: "OK", 201: "Created", 404: "Not Found"}[status]
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (status, reason.encode(), len(body), body)
        )


async def _serve(latency: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Http(latency), "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(float(sys.argv[1])))
