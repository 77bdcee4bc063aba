"""Regular expressions compiled on first use, not at import.

``import civic311`` compiled 23 patterns at start-up (issue 13: about 2 ms of it), most of them
for error paths a program may never take. `on_first_use` defers each to its first call::

    _link = on_first_use(r"<([^>]*)>")
    ...
    _link().findall(header)   # compiled here, once; later calls return the same pattern
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import AnyStr

__all__ = ["on_first_use"]


def on_first_use(pattern: AnyStr, flags: int = 0) -> Callable[[], re.Pattern[AnyStr]]:
    """A function that returns *pattern* compiled with *flags*, compiling it on its first call."""
    return functools.cache(functools.partial(re.compile, pattern, flags))
