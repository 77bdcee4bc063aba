"""The edge between httpx and civic311: capped body reads and transport-error mapping.

The one place httpx's exceptions become civic311's (as httpx maps httpcore's): every
`TransportError` says whether the request may have reached the server, which is what decides
whether a POST may be sent again (promise 3).
"""

from __future__ import annotations

import httpx

from civic311._protocol import scrub_text
from civic311._secrets import mask_bytes
from civic311.errors import ResponseTooLargeError, TransportError

__all__ = ["BodyCap", "EncodingBroken", "aread_body", "read_body", "transport_error"]


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
    body with *secret* masked)."""
    cap = BodyCap(response, limit, secret)
    for chunk in response.iter_bytes():
        cap.add(chunk)
    return cap.body()


async def aread_body(response: httpx.Response, limit: int, secret: str | None = None) -> bytes:
    """`read_body` for an async response."""
    cap = BodyCap(response, limit, secret)
    async for chunk in response.aiter_bytes():
        cap.add(chunk)
    return cap.body()
