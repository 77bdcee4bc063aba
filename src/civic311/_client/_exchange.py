"""The exchange deadline of the current thread's call (sync client), shared by
`civic311._client.transport` and the httpcore network backend in `civic311._client._network`.

Its own module so that the backend, which imports httpcore, can load after start-up (see
`transport.bound_exchanges`) without an import cycle.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

__all__ = ["EXCHANGE_DEADLINE", "clamp"]

#: The monotonic time (``time.monotonic``) the current thread's exchange must end by, if any.
EXCHANGE_DEADLINE: ContextVar[float | None] = ContextVar("civic311_exchange", default=None)


def clamp(timeout: float | None) -> tuple[float | None, bool]:
    """The timeout for one socket operation: at most the exchange's time left (and whether
    that, rather than httpx's own timeout, is what bounds it)."""
    deadline = EXCHANGE_DEADLINE.get()
    if deadline is None:
        return timeout, False
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the exchange's deadline passed")
    if timeout is None or left < timeout:
        return left, True
    return timeout, False
