"""The edge between httpx and civic311: capped, deadline-bound body reads and error mapping.

The one place httpx's exceptions become civic311's (as httpx maps httpcore's): every
`TransportError` says whether the request may have reached the server, which is what decides
whether a POST may be sent again (promise 3).

**Every exchange is bounded in time, body included** (issue 11.7). httpx's timeouts bound each
socket operation, not the exchange: a server that sends one byte every half second (headers or
body) resets the read timeout forever. So the client bounds the whole exchange by the time left
before the call's deadline:

- `AsyncClient`: a cancel scope around send and body read (`adeadline_scope`): asyncio's own
  `asyncio.timeout` on asyncio, anyio's `fail_after` on trio.
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
import functools
import math
import time
from collections.abc import Callable
from typing import Any

import httpx
import sniffio

from civic311._client._exchange import EXCHANGE_DEADLINE
from civic311._protocol import scrub_text
from civic311._secrets import mask_bytes
from civic311.errors import ResponseTooLargeError, TransportError

__all__ = [
    "BodyCap",
    "EncodingBroken",
    "abound_exchanges",
    "adeadline_scope",
    "aread_body",
    "bound_exchanges",
    "deadline_error",
    "deadline_scope",
    "read_body",
    "read_cookies_when_set",
    "transport_error",
]

#: However little time a call has left, an exchange gets at least this long (seconds): a call
#: on a virtual clock may sit exactly at its deadline, and real I/O cannot take zero time.
MIN_EXCHANGE = 0.1


def _bound(seconds: float | None) -> float | None:
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(seconds, MIN_EXCHANGE)


def adeadline_scope(seconds: float | None) -> contextlib.AbstractAsyncContextManager[Any]:
    """A cancel scope that ends the exchange after *seconds* with `TimeoutError` (async).

    On asyncio (Python 3.11+) that is `asyncio.timeout`, which costs 4 us to enter and leave
    where `anyio.fail_after` costs 11 (bench/overhead.py; it is on every call's path); on trio,
    or before 3.11, anyio's. Both raise the builtin `TimeoutError` at the deadline. sniffio
    names the library running this task (trio in guest mode on an asyncio loop too).
    """
    bound = _bound(seconds)
    if sniffio.current_async_library() == "asyncio":
        timeout = _asyncio_timeout()
        if timeout is not None:
            return timeout(bound)
    return _AnyioDeadline(bound)


@functools.cache
def _asyncio_timeout() -> (
    Callable[[float | None], contextlib.AbstractAsyncContextManager[Any]] | None
):
    """`asyncio.timeout` (new in Python 3.11), looked up on first use: asyncio is already loaded
    when a task runs on it, and `import civic311` does not load it (issue 13)."""
    import asyncio

    return getattr(asyncio, "timeout", None)


class _AnyioDeadline:
    """`anyio.fail_after` (a plain context manager) entered with ``async with``."""

    def __init__(self, seconds: float | None) -> None:
        # Imported here: anyio costs ~20 ms at start-up, and only the AsyncClient needs it.
        import anyio

        self._scope = anyio.fail_after(seconds)

    async def __aenter__(self) -> None:
        self._scope.__enter__()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return self._scope.__exit__(*exc_info)


class deadline_scope:  # named as a function: it is used like one (contextlib.closing too)
    """Bound the exchange inside to *seconds* (sync): see the module docstring.

    A class rather than a `contextlib.contextmanager` generator: it is entered on every call,
    and a generator-based manager costs about 2 us more to enter and leave (bench/overhead.py).
    """

    __slots__ = ("_deadline", "_token")

    def __init__(self, seconds: float | None) -> None:
        bound = _bound(seconds)
        self._deadline = None if bound is None else time.monotonic() + bound

    def __enter__(self) -> None:
        self._token = EXCHANGE_DEADLINE.set(self._deadline)

    def __exit__(self, *exc_info: object) -> None:
        EXCHANGE_DEADLINE.reset(self._token)


def _past_deadline() -> bool:
    deadline = EXCHANGE_DEADLINE.get()
    return deadline is not None and time.monotonic() >= deadline


def bound_exchanges(client: httpx.Client) -> None:
    """Set up an httpx client civic311 created: every socket operation ends by the exchange's
    deadline (`DeadlineBackend`), and its pools give one idle connection to one request only
    (`civic311._client._network.prepare_pools`)."""
    # Imported here, not at the top: httpcore imports trio whenever it is installed (~50 ms,
    # httpcore/_synchronization.py), and `import civic311` should not pay for that. httpx
    # itself imports httpcore only when it builds a transport, which has happened by now.
    from civic311._client._network import prepare_pools

    prepare_pools(client, bound=True)


def abound_exchanges(client: httpx.AsyncClient) -> None:
    """Set up an httpx async client civic311 created: its exchanges run inside
    `adeadline_scope` (nothing to add for that); its pools give one idle connection to one
    request only (`civic311._client._network.prepare_pools`)."""
    from civic311._client._network import prepare_pools  # httpcore, on first client

    prepare_pools(client, bound=False)


class _SetCookies(httpx.Cookies):
    """httpx's cookie store, reading an answer's cookies only when it sets some.

    httpx hands every response to `http.cookiejar` (`httpx.Cookies.extract_cookies`), which
    first builds a `urllib.request.Request` and an `email` message of the headers: 14 us of
    every call (bench/overhead.py), for answers that almost never set a cookie. Without a
    ``Set-Cookie`` or ``Set-Cookie2`` header the jar stores nothing (``make_cookies`` in
    http/cookiejar.py returns no cookies), so skipping it changes nothing; an answer that sets
    one is read as before (SeeClickFix offers a guid cookie, cities/registry.json).
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


def read_cookies_when_set(client: httpx.Client | httpx.AsyncClient) -> None:
    """Give an httpx client civic311 created a `_SetCookies` store over the same jar.

    httpx offers no public way (its ``cookies`` setter copies into a plain `httpx.Cookies`), so
    this replaces ``_cookies``; an httpx that keeps its cookies otherwise is left alone.
    """
    cookies = getattr(client, "_cookies", None)
    if type(cookies) is httpx.Cookies:
        client._cookies = _SetCookies(cookies.jar)


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
