"""Plain data → the lists and objects each operation expects, whatever the server wrapped.

Servers differ in the outermost layer only (reference §4.2, §10.1, §10.6, §10.9, §10.10): a
Spark array, an object wrapped in its plural name (FixMyStreet), a bare object where the spec
has an array of one (the v2.1 swagger), or nothing at all. These helpers peel that layer off and
leave the records for the converter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from civic311.errors import DecodeError

__all__ = ["items", "one_object"]


_ONLY_DICTS = frozenset({dict})


def items(data: Any, names: Sequence[str], what: str) -> list[dict[str, Any]]:
    """The records of a list answer.

    Args:
        data: Decoded JSON, or XML with its root dropped.
        names: Wrapper keys to look through, e.g. ``("service_requests", "requests", "request")``.
        what: What is being read, for error messages ("services").

    Raises:
        DecodeError: the data is not a list of objects, however unwrapped.
    """
    if data is None or data == "":
        return []  # <services/>, <services></services>, an empty root (reference §10.7)
    if isinstance(data, dict):
        for name in names:
            if name in data and isinstance(data[name], list | dict | type(None)):
                return items(data[name], names, what)
        return [data]  # a bare object where an array of one was due (reference §10.1, §10.6)
    if isinstance(data, list):
        if _ONLY_DICTS.issuperset(map(type, data)):
            return data  # every record an object already: the usual case, checked in C
        records: list[dict[str, Any]] = []
        for index, record in enumerate(data):
            if record is None:
                records.append({})  # <request/> or null: an empty record (blackbox, §10.3)
            elif isinstance(record, dict):
                records.append(record)
            else:
                raise DecodeError(f"{what}[{index}] is {type(record).__name__}, expected an object")
        return records
    raise DecodeError(f"{what}: expected a list of objects, got {type(data).__name__}")


def one_object(data: Any, names: Sequence[str], what: str) -> dict[str, Any]:
    """The single record of an object answer (a service definition, a discovery document).

    Accepts the object itself, an array of one (reference §10.10) and a wrapper object.
    """
    if isinstance(data, dict):
        for name in names:
            inner = data.get(name)
            if isinstance(inner, dict) and len(data) == 1:
                return one_object(inner, names, what)
        return data
    if isinstance(data, list) and len(data) == 1:
        return one_object(data[0], names, what)
    found = f"a list of {len(data)}" if isinstance(data, list) else type(data).__name__
    raise DecodeError(f"{what}: expected one object, got {found}")
