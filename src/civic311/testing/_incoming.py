"""`Incoming`: one HTTP request as a transport (in-process or loopback) hands it to the city.

Its own small module so that the transports sit below `FakeCity` and import it without a loop.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs


@attrs.frozen
class Incoming:
    """A request as either transport hands it to the city."""

    method: str
    target: str  # the raw request target: percent-encoded path + "?" + query
    headers: Mapping[str, str]  # lower-case names
    body: bytes
