"""httpcore's network backend with every socket operation bound by the exchange's deadline.

See `civic311._client.transport` (its module docstring). Apart from it because it subclasses
httpcore's classes: importing httpcore imports trio when installed, which `import civic311`
should not pay for; `transport.bound_exchanges` imports this module when a client is built.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpcore

from civic311._client._exchange import clamp

__all__ = ["DeadlineBackend"]


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
