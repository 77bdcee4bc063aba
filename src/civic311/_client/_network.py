"""httpcore's network backend with every socket operation bound by the exchange's deadline, and
connection pools that never give one idle connection to two requests (`prepare_pools`).

See `civic311._client.transport` (its module docstring). Apart from it because it subclasses
httpcore's classes: importing httpcore imports trio when installed, which `import civic311`
should not pay for; `transport.bound_exchanges` imports this module when a client is built.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpcore
import httpx

from civic311._client._exchange import clamp

__all__ = ["DeadlineBackend", "prepare_pools"]


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write ends by the exchange's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        bound, clamped = clamp(timeout)
        try:
            return self._inner.read(max_bytes, bound)
        except httpcore.ReadTimeout:
            if clamped:
                raise TimeoutError("the exchange's deadline passed while reading") from None
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        bound, clamped = clamp(timeout)
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
        bound, _ = clamp(timeout)
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
        bound, _ = clamp(timeout)
        return _DeadlineStream(
            self._inner.connect_tcp(host, port, bound, local_address, socket_options)
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - civic311 speaks TCP
        bound, _ = clamp(timeout)
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


def prepare_pools(client: httpx.Client | httpx.AsyncClient, *, bound: bool) -> None:
    """Make the connection pools of an httpx client civic311 created give one idle connection
    to one request only (`_assign_reserving`), and with *bound* (the sync client) put
    `DeadlineBackend` under them, so every socket operation ends by the exchange's deadline.

    httpx offers no public hook for either, so this reaches into its transports (``_pool``):
    only httpcore's plain pools become the reserving ones (same state, one method more), the
    backend goes under httpcore's pools and proxies alike, and a transport of another shape is
    left alone (the body read's wall-clock check still bounds it).
    """
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    can_swap = hasattr(httpcore.AsyncConnectionPool, "_assign_requests_to_connections")
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        if can_swap and type(pool) is httpcore.AsyncConnectionPool:
            pool.__class__ = _ReservingAsyncPool
        elif can_swap and type(pool) is httpcore.ConnectionPool:
            pool.__class__ = _ReservingPool
        backend = getattr(pool, "_network_backend", None)
        if (
            bound
            and isinstance(backend, httpcore.NetworkBackend)
            and not isinstance(backend, DeadlineBackend)
        ):
            pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]
