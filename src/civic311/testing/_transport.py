"""FakeCity in process: one object that is both an httpx sync and async transport.

::

    transport = city.transport()
    httpx.Client(transport=transport, base_url=city.base_url)
    httpx.AsyncClient(transport=transport, base_url=city.base_url)

No sockets, no threads: each request is answered by calling the city directly. Faults that
need a network are mapped onto the exceptions httpx would raise (see `civic311.testing._faults`):
`city.down()` → `httpx.ConnectError`, `Fault.hang()` → `httpx.ReadTimeout`, `Fault.reset()` and
`Fault.drop_after_create()` → `httpx.RemoteProtocolError`. Waiting (`Fault.latency`, a hang's
read timeout) happens on the city's clock, so with a `VirtualClock` it costs no real time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import httpx

from civic311.testing._incoming import Incoming
from civic311.testing._render import Reply

if TYPE_CHECKING:
    from civic311.testing._handler import CityHandler, Planned

__all__ = ["FakeCityTransport"]

# The message httpcore uses when a server closes a connection without answering.
DISCONNECTED = "Server disconnected without sending a response."


def _read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout")
    if isinstance(timeout, dict):
        value = timeout.get("read")
        if isinstance(value, (int, float)):
            return float(value)
    return None


class FakeCityTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Serves a `FakeCity` to `httpx.Client` and `httpx.AsyncClient` without a network.

    Typed against `_handler.CityHandler`, so this module does not import the city it serves."""

    def __init__(self, city: CityHandler) -> None:
        self.city = city

    def __repr__(self) -> str:
        return f"FakeCityTransport({self.city!r})"

    def _incoming(self, request: httpx.Request, body: bytes) -> Incoming:
        return Incoming(
            method=request.method.upper(),
            target=request.url.raw_path.decode("ascii"),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )

    def _start(self, request: httpx.Request, body: bytes) -> Planned:
        if self.city.is_down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return self.city.plan(self._incoming(request, body))

    def _finish(self, request: httpx.Request, plan: Planned) -> httpx.Response:
        reply = plan.run()
        if plan.action == "hang":
            raise httpx.ReadTimeout("timed out", request=request)
        if reply is None or plan.action == "drop":
            raise httpx.RemoteProtocolError(DISCONNECTED, request=request)
        if plan.truncate is not None:
            # In process there is no connection to cut: always the honest variant.
            reply = Reply(reply.status, reply.headers, reply.body[: len(reply.body) // 2])
        headers = list(reply.headers)
        if not any(k.lower() == "content-length" for k, _ in headers):
            headers.append(("Content-Length", str(len(reply.body))))
        return httpx.Response(
            reply.status, headers=headers, stream=_OnceStream(reply.body), request=request
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer *request* (sync)."""
        plan = self._start(request, request.read())
        if plan.delay:
            self.city.clock.sleep(plan.delay)
        if plan.action == "hang":
            timeout = _read_timeout(request)
            if timeout is not None:
                self.city.clock.sleep(timeout)  # the client waits out its read timeout
        return self._finish(request, plan)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer *request* (async)."""
        plan = self._start(request, await request.aread())
        if plan.delay:
            await self.city.clock.asleep(plan.delay)
        if plan.action == "hang":
            timeout = _read_timeout(request)
            if timeout is not None:
                await self.city.clock.asleep(timeout)
        return self._finish(request, plan)


class _OnceStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that is handed over once and then let go, as from a socket.

    httpx's own ``ByteStream`` keeps the whole body for as long as the response lives, and a
    response lives until the garbage collector breaks its cycle with its stream: in process,
    a harvest's old answers piled up and bench/harvest.py measured FakeCity's memory, not the
    client's."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        body, self._body = self._body, b""
        if body:
            yield body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body, self._body = self._body, b""
        if body:
            yield body
