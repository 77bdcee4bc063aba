"""The edge between httpx and civic311: capped, deadline-bound body reads and error mapping.

The one place httpx's exceptions become civic311's (as httpx maps httpcore's): every
`TransportError` says whether the request may have reached the server, which is what decides
whether a POST may be sent again (promise 3).

**Every exchange is bounded in time, body included** (issue 11.7). httpx's timeouts bound each
socket operation, not the exchange: a server that sends one byte every half second (headers or
body) resets the read timeout forever. So the client bounds the whole exchange by the time left
before the call's deadline:

- `AsyncClient`: an anyio cancel scope (`anyio.fail_after`) around send and body read, which
  works on asyncio and trio alike (`adeadline_scope`).
- `Client`: no cancel scopes in threads, so `deadline_scope` records the exchange's deadline in
  a context variable, and (a) every socket operation of an httpx client civic311 created is
  given at most the time left (`DeadlineBackend`, wrapping httpcore's network backend: trickled
  headers and bodies alike), and (b) the body read checks the wall clock between chunks (which
  also bounds transports civic311 did not create, one chunk late at worst).

Either way the deadline surfaces as a builtin `TimeoutError`, which the client turns into a
`TransportError` (`deadline_error`).
"""

from __future__ import annotations

import contextlib
import math
import ssl
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import anyio
import httpcore
import httpx

from civic311._protocol import scrub_text
from civic311._secrets import mask_bytes
from civic311.errors import ResponseTooLargeError, TransportError

__all__ = [
    "BodyCap",
    "DeadlineBackend",
    "EncodingBroken",
    "abound_exchanges",
    "adeadline_scope",
    "aread_body",
    "bound_exchanges",
    "deadline_error",
    "deadline_scope",
    "read_body",
    "transport_error",
]

#: The monotonic time (``time.monotonic``) the current thread's exchange must end by, if any.
_EXCHANGE_DEADLINE: ContextVar[float | None] = ContextVar("civic311_exchange", default=None)

#: However little time a call has left, an exchange gets at least this long (seconds): a call
#: on a virtual clock may sit exactly at its deadline, and real I/O cannot take zero time.
MIN_EXCHANGE = 0.1


def _bound(seconds: float | None) -> float | None:
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(seconds, MIN_EXCHANGE)


def adeadline_scope(seconds: float | None) -> contextlib.AbstractContextManager[Any]:
    """A cancel scope that ends the exchange after *seconds* with `TimeoutError` (async)."""
    return anyio.fail_after(_bound(seconds))


@contextlib.contextmanager
def deadline_scope(seconds: float | None) -> Iterator[None]:
    """Bound the exchange inside to *seconds* (sync): see the module docstring."""
    bound = _bound(seconds)
    token = _EXCHANGE_DEADLINE.set(None if bound is None else time.monotonic() + bound)
    try:
        yield
    finally:
        _EXCHANGE_DEADLINE.reset(token)


def _past_deadline() -> bool:
    deadline = _EXCHANGE_DEADLINE.get()
    return deadline is not None and time.monotonic() >= deadline


def _clamp(timeout: float | None) -> tuple[float | None, bool]:
    """The timeout for one socket operation: at most the exchange's time left (and whether
    that, rather than httpx's own timeout, is what bounds it)."""
    deadline = _EXCHANGE_DEADLINE.get()
    if deadline is None:
        return timeout, False
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the exchange's deadline passed")
    if timeout is None or left < timeout:
        return left, True
    return timeout, False


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write ends by the exchange's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        bound, clamped = _clamp(timeout)
        try:
            return self._inner.read(max_bytes, bound)
        except httpcore.ReadTimeout:
            if clamped:
                raise TimeoutError("the exchange's deadline passed while reading") from None
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        bound, clamped = _clamp(timeout)
        try:
            self._inner.write(buffer, bound)
        except httpcore.WriteTimeout:
            if clamped:
                raise TimeoutError("the exchange's deadline passed while sending") from None
            raise

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bound, _ = _clamp(timeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, bound))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend, with every stream bound by the exchange's deadline."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        bound, _ = _clamp(timeout)
        return _DeadlineStream(
            self._inner.connect_tcp(host, port, bound, local_address, socket_options)
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - civic311 speaks TCP
        bound, _ = _clamp(timeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, bound, socket_options))

    def sleep(self, seconds: float) -> None:  # pragma: no cover - httpcore's retries only
        self._inner.sleep(seconds)


def _assign_reserving(pool: Any, assign: Any) -> Any:
    """Run httpcore's *assign* (``_assign_requests_to_connections``) with every idle connection
    already assigned to a waiting request hidden from it, so it is not assigned again.

    httpcore 1.0 hands each queued request the first available connection, and a connection
    stays "available" until its request starts on it, a few loop iterations later: several
    requests entering the pool at once all get the same idle connection, and all but one then
    wait on it for a whole round trip while other connections sit idle. At concurrency 32 that
    cut bulk's throughput by half or more once the loop was busy (issue 13: 20 of 32
    connections idle, 28 of 32 requests on the other 12)."""
    connections = pool._connections
    reserved = [
        r.connection for r in pool._requests if r.connection is not None and r.connection.is_idle()
    ]
    if not reserved:
        return assign()
    hidden = {id(connection) for connection in reserved}
    pool._connections = [c for c in connections if id(c) not in hidden]
    try:
        return assign()
    finally:
        pool._connections.extend(reserved)


class _ReservingAsyncPool(httpcore.AsyncConnectionPool):
    """httpcore's async pool that never gives one idle connection to two requests
    (`_assign_reserving`)."""

    def _assign_requests_to_connections(self) -> Any:
        return _assign_reserving(self, super()._assign_requests_to_connections)


class _ReservingPool(httpcore.ConnectionPool):
    """httpcore's pool that never gives one idle connection to two requests
    (`_assign_reserving`)."""

    def _assign_requests_to_connections(self) -> Any:
        return _assign_reserving(self, super()._assign_requests_to_connections)


def _reserving_pools(client: httpx.Client | httpx.AsyncClient) -> None:
    # Only httpcore's plain pools become the reserving ones (same state, one method more);
    # proxies and pools of any other shape are left as they are.
    transports: list[object] = [getattr(client, "_transport", None)]
    transports += list(getattr(client, "_mounts", {}).values())
    can_swap = hasattr(httpcore.AsyncConnectionPool, "_assign_requests_to_connections")
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        if can_swap and type(pool) is httpcore.AsyncConnectionPool:
            pool.__class__ = _ReservingAsyncPool
        elif can_swap and type(pool) is httpcore.ConnectionPool:
            pool.__class__ = _ReservingPool


def bound_exchanges(client: httpx.Client) -> None:
    """Put `DeadlineBackend` under the connection pools of an httpx client civic311 created,
    and make those pools give one idle connection to one request only (`_assign_reserving`).

    httpx offers no public hook for the network backend, so this reaches into its transports
    (``_pool._network_backend``, httpcore's ConnectionPool and proxies alike); a transport of
    another shape is left alone, and the body read's wall-clock check still bounds it.
    """
    _reserving_pools(client)
    transports: list[object] = [getattr(client, "_transport", None)]
    transports += list(getattr(client, "_mounts", {}).values())
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend) and not isinstance(
            backend, DeadlineBackend
        ):
            pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]


def abound_exchanges(client: httpx.AsyncClient) -> None:
    """Set up an httpx async client civic311 created: its exchanges run inside
    `adeadline_scope` (nothing to add for that); its pool never gives one idle connection to
    two requests (`_assign_reserving`)."""
    _reserving_pools(client)


def deadline_error(method: str, url: str, seconds: float | None) -> TransportError:
    """The `TransportError` for an exchange the call's deadline cut short.

    Marked as possibly sent: the request may have reached the server (a POST is reconciled).
    """
    took = f" ({seconds:.1f}s)" if seconds is not None and math.isfinite(seconds) else ""
    return TransportError(
        f"the call's deadline{took} passed before the answer was complete "
        "(RetryPolicy.deadline bounds the whole exchange, body included)",
        method=method,
        url=url,
        sent=True,
        cause_name="TimeoutError",
    )


class EncodingBroken(Exception):
    """The body's Content-Encoding could not be decoded (the answer's status is kept)."""

    def __init__(self, status_code: int | None) -> None:
        super().__init__(f"undecodable Content-Encoding on an HTTP {status_code} answer")
        self.status_code = status_code


#: httpx errors raised before a single byte of the request left this machine.
NEVER_SENT: tuple[type[httpx.HTTPError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)

_WHAT: tuple[tuple[type[httpx.HTTPError], str], ...] = (
    (httpx.ConnectTimeout, "connect timed out"),
    (httpx.ConnectError, "could not connect"),
    (httpx.PoolTimeout, "no free connection in the pool"),
    (httpx.ReadTimeout, "no answer within the read timeout"),
    (httpx.WriteTimeout, "timed out sending the request"),
    (httpx.RemoteProtocolError, "connection dropped or broken answer"),
    (httpx.ReadError, "connection failed while reading the answer"),
    (httpx.WriteError, "connection failed while sending"),
    (httpx.TooManyRedirects, "too many redirects"),
)


def transport_error(
    exc: httpx.HTTPError, method: str, url: str, secret: str | None = None
) -> TransportError:
    """The civic311 `TransportError` for an httpx failure on *url* (already redacted).

    httpx's message may quote the URL, and with it a key sent on reads: it is redacted here,
    in the httpx exception too, since it travels on as the `TransportError`'s cause and shows
    in formatted tracebacks (DESIGN promise 6).
    """
    what = next((text for cls, text in _WHAT if isinstance(exc, cls)), "transport failure")
    detail = scrub_text(str(exc).strip(), secret)
    if exc.args and detail != str(exc).strip():
        exc.args = (detail, *exc.args[1:])
    return TransportError(
        f"{what} ({type(exc).__name__}{': ' + detail if detail else ''})",
        method=method,
        url=url,
        sent=not isinstance(exc, NEVER_SENT),
        cause_name=type(exc).__name__,
    )


class BodyCap:
    """Accumulates a body and stops at *limit* bytes (DESIGN promise 6: sizes are capped)."""

    def __init__(self, response: httpx.Response, limit: int, secret: str | None = None) -> None:
        self._response = response
        self._limit = limit
        self._secret = secret
        self._parts: list[bytes] = []
        self._size = 0
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            self._refuse(f"declares {int(declared):,} bytes")

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._limit:
            self._parts.append(chunk[:1024])  # the error keeps the body's first KiB
            self._refuse(f"passed {self._limit:,} bytes")
        self._parts.append(chunk)

    def body(self) -> bytes:
        return b"".join(self._parts)

    def _refuse(self, what: str) -> None:
        url = str(self._response.request.url.copy_with(query=None))
        raise ResponseTooLargeError(
            f"{self._response.request.method} {url} → HTTP {self._response.status_code}: "
            f"the body {what}, over the cap of {self._limit:,} bytes (max_response_bytes); "
            "reading stopped",
            # The first KiB may echo the key (issue 12 point 3): masked like any error body.
            body=mask_bytes(b"".join(self._parts)[:1024], self._secret),
            url=url,
            status_code=self._response.status_code,
        )


def read_body(response: httpx.Response, limit: int, secret: str | None = None) -> bytes:
    """Read a streamed *response* body, raising `ResponseTooLargeError` past *limit* (its
    body with *secret* masked), and `TimeoutError` once the exchange's deadline
    (`deadline_scope`) has passed."""
    cap = BodyCap(response, limit, secret)
    for chunk in response.iter_bytes():
        if _past_deadline():
            raise TimeoutError("the exchange's deadline passed while reading the body")
        cap.add(chunk)
    return cap.body()


async def aread_body(response: httpx.Response, limit: int, secret: str | None = None) -> bytes:
    """`read_body` for an async response (bounded by `adeadline_scope` instead)."""
    cap = BodyCap(response, limit, secret)
    async for chunk in response.aiter_bytes():
        cap.add(chunk)
    return cap.body()
