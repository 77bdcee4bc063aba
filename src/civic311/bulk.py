"""Bulk submission and tracking for scripts: many reports from a file, each filed exactly once.

Input is CSV or JSON Lines with these columns (all optional but ``service_code`` and a
location; see `NewRequest`):

    service_code, lat, long, address_string, address_id, description, email, first_name,
    last_name, phone, media_url, attribute.CODE

``attribute.CODE`` gives the value of attribute CODE. For a multivaluelist, repeat the column
(``attribute.SURFACE,attribute.SURFACE``) or separate values with ``|`` (``wall|fence``). In JSON
Lines an attribute may also be a list, and an ``attributes`` object is accepted. An optional
key column (``key_column=``) names each row; without it a row is keyed by a hash of its content,
so the same row in a re-run is recognised.

`read_rows` parses a file into `Row`s, one per data row, each with its 1-based row number and
either a `NewRequest` or the reason it is not one; a file with unknown columns is refused
whole (a typo such as ``descripton`` would otherwise drop data silently).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

import attrs

from civic311.errors import Civic311Error, InvalidRequestError
from civic311.models import NewRequest
from civic311.wire.converter import to_dict

__all__ = ["COLUMNS", "Row", "read_rows", "row_key"]

#: The NewRequest columns a bulk file may have (besides ``attribute.CODE`` and the key column).
COLUMNS = (
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "description",
    "email",
    "first_name",
    "last_name",
    "phone",
    "media_url",
)

_ATTRIBUTE = "attribute."
_MULTI_SEPARATOR = "|"

InputFormat = Literal["csv", "jsonl"]


@attrs.frozen
class Row:
    """One data row of a bulk file.

    Attributes:
        number: 1-based data row number (the header is not counted; in JSON Lines, the line).
        key: The row's key: the key column's value, or a hash of the row's content.
        request: The request, when the row is valid as far as the file can tell.
        error: Why the row is not a request, naming the column.
    """

    number: int
    key: str
    request: NewRequest | None = None
    error: str | None = None


def row_key(request: NewRequest) -> str:
    """A stable key for *request*: the first 24 hex digits of the SHA-256 of its content."""
    canonical = json.dumps(to_dict(request), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


def _number(value: str, column: str) -> float | None:
    text = value.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidRequestError(column, f"{value!r} is not a number") from None


def _request(values: Mapping[str, Any]) -> NewRequest:
    """A NewRequest from one row's plain values (strings, or lists for attributes)."""
    fields: dict[str, Any] = {}
    attributes: dict[str, str | list[str]] = {}
    for column, value in values.items():
        if column.startswith(_ATTRIBUTE):
            code = column[len(_ATTRIBUTE) :]
            items = value if isinstance(value, list) else [value]
            parts = [
                part.strip()
                for item in items
                for part in str(item).split(_MULTI_SEPARATOR)
                if part.strip()
            ]
            if not parts:
                continue
            repeated = isinstance(value, list) or _MULTI_SEPARATOR in str(value)
            attributes[code] = parts if repeated or len(parts) > 1 else parts[0]
        elif column in ("lat", "long"):
            fields[column] = (
                value if isinstance(value, int | float) else _number(str(value), column)
            )
        elif value is not None and str(value).strip():
            fields[column] = str(value).strip()
    return NewRequest(**fields, attributes=attributes)


def _csv_rows(text: TextIO, key_column: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    _check_columns(header, key_column)
    for number, cells in enumerate(reader, start=1):
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if len(cells) > len(header):
            yield number, {"__error__": f"row has {len(cells)} cells, the header {len(header)}"}
            continue
        values: dict[str, Any] = {}
        for column, cell in zip(header, cells, strict=False):
            if column in values and column.startswith(_ATTRIBUTE):
                previous = values[column]
                values[column] = [*(previous if isinstance(previous, list) else [previous]), cell]
            else:
                values[column] = cell
        yield number, values


def _jsonl_rows(text: TextIO, key_column: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, {"__error__": f"not JSON ({exc.msg} at column {exc.colno})"}
            continue
        if not isinstance(record, dict):
            yield number, {"__error__": f"a JSON object is needed, not {type(record).__name__}"}
            continue
        nested = record.pop("attributes", None)
        if isinstance(nested, dict):
            for code, value in nested.items():
                record[f"{_ATTRIBUTE}{code}"] = value
        elif nested is not None:
            yield number, {"__error__": "attributes must be an object of code → value"}
            continue
        try:
            _check_columns(list(record), key_column)
        except InvalidRequestError as exc:
            yield number, {"__error__": str(exc)}
            continue
        yield number, record


def _check_columns(columns: Sequence[str], key_column: str | None) -> None:
    known = set(COLUMNS) | ({key_column} if key_column else set())
    unknown = [c for c in columns if c not in known and not c.startswith(_ATTRIBUTE)]
    if unknown:
        raise InvalidRequestError(
            "columns",
            f"unknown column(s) {', '.join(map(repr, unknown))}; the columns are "
            f"{', '.join(COLUMNS)} and attribute.CODE"
            + (f", and the key column {key_column!r}" if key_column else ""),
        )
    if key_column and key_column not in columns:
        raise InvalidRequestError("key_column", f"no column {key_column!r} in the file")


def read_rows(
    source: str | os.PathLike[str] | TextIO,
    *,
    format: InputFormat | None = None,
    key_column: str | None = None,
) -> Iterator[Row]:
    """The rows of a CSV or JSON Lines bulk file (module docstring), lazily.

    Args:
        source: A path, or an open text file.
        format: ``"csv"`` or ``"jsonl"``; by default from the file name (``.jsonl``/``.ndjson``
            is JSON Lines, anything else CSV).
        key_column: A column whose value names each row (must be unique); by default rows
            are keyed by a hash of their content.

    Raises:
        InvalidRequestError: the file has unknown columns, or the key column is missing.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        fmt = format or ("jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv")
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from _rows(handle, fmt, key_column)
        return
    if not isinstance(source, io.TextIOBase) and not hasattr(source, "read"):
        raise InvalidRequestError("source", "must be a path or an open text file")
    yield from _rows(source, format or "csv", key_column)


def _rows(text: TextIO, fmt: InputFormat, key_column: str | None) -> Iterator[Row]:
    if fmt not in ("csv", "jsonl"):
        raise InvalidRequestError("format", f'must be "csv" or "jsonl", got {fmt!r}')
    records = _csv_rows(text, key_column) if fmt == "csv" else _jsonl_rows(text, key_column)
    seen_keys: set[str] = set()
    for number, values in records:
        given_key = str(values.pop(key_column, "") or "").strip() if key_column else ""
        if "__error__" in values:
            yield Row(number, given_key or f"row-{number}", error=values["__error__"])
            continue
        try:
            request = _request(values)
        except (Civic311Error, TypeError, ValueError) as exc:
            yield Row(number, given_key or f"row-{number}", error=str(exc))
            continue
        key = given_key or row_key(request)
        if key_column and not given_key:
            yield Row(number, f"row-{number}", error=f"{key_column}: empty key")
            continue
        if key in seen_keys:
            what = f"{key_column} {key!r}" if given_key else "the same content as an earlier row"
            yield Row(number, key, error=f"duplicate row: {what}")
            continue
        seen_keys.add(key)
        yield Row(number, key, request=request)
