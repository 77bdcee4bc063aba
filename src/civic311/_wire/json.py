"""JSON bytes → plain data, tolerant of what real servers send.

- a UTF-8 byte-order mark is skipped (Helsinki's discovery.json, reference §7);
- a JSONP wrapper ``callback(…)`` is unwrapped (reference §10.26; we never send ``callback``,
  but a proxy or a default can add it);
- a lone surrogate escape (``"x \\ud800 y"``, which no UTF-8 text can hold) decodes to U+FFFD,
  so no string from a city can crash sqlite, a file or a terminal later (issue 12 point 5);
- bare numbers with leading zeros, as in the spec's own example ``"service_code":001`` (invalid
  JSON, reference §2.1), are read as the strings they stand for, zeros kept.
"""

from __future__ import annotations

import json
import re
from typing import Any

from civic311._regex import on_first_use
from civic311.errors import DecodeError, snippet

__all__ = ["parse_json"]


# Rails writes JSONP as "/**/callback(…)" (Klarschiff and SeeClickFix run on Rails).
_jsonp = on_first_use(rb"^\s*(?:/\*\*/)?\s*[A-Za-z_$][\w$.]*\s*\((.*)\)\s*;?\s*$", re.DOTALL)
_number_with_zeros = on_first_use(r"-?0\d+(?:\.\d+)?")


def parse_json(body: bytes) -> Any:
    """Parse a JSON body.

    Raises:
        DecodeError: the body is not JSON (an HTML page, truncated JSON, invalid UTF-8).
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"body is not UTF-8 text ({exc.reason})", body=body) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as first:
        retry = _repair(body, text)
        if retry is not None:
            try:
                data = json.loads(retry)
            except json.JSONDecodeError:
                pass
            else:
                return _no_surrogates(data) if _has_surrogate_escape(retry) else data
        raise DecodeError(
            f"body is not valid JSON ({first.msg} at line {first.lineno} column {first.colno}): "
            f"{snippet(body)!r}",
            body=body,
        ) from first
    except RecursionError as exc:
        raise DecodeError("JSON nests too deeply to decode", body=body) from exc
    except ValueError as exc:  # e.g. an integer over Python's 4,300-digit conversion limit
        raise DecodeError(f"body is not usable JSON ({exc})", body=body) from exc
    # Only an escape can put a surrogate in decoded text (UTF-8 cannot): look only then, and
    # only past a backslash (a memchr; the regex over a 1 MB body cost ~7% of decoding it).
    return _no_surrogates(data) if _has_surrogate_escape(text) else data


_surrogate_escape = on_first_use(r"\\u[dD][89a-fA-F]")
_surrogate = on_first_use("[\ud800-\udfff]")


def _has_surrogate_escape(text: str) -> bool:
    """Whether *text* holds a ``\\uD800``-``\\uDFFF`` escape (JSON's only way to a surrogate)."""
    return "\\" in text and _surrogate_escape().search(text) is not None


def _no_surrogates(value: Any) -> Any:
    """*value* with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _surrogate().sub("\ufffd", value)
    if isinstance(value, list):
        return [_no_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_no_surrogates(k): _no_surrogates(v) for k, v in value.items()}
    return value


def _repair(body: bytes, text: str) -> str | None:
    match = _jsonp().match(body)
    if match:
        return match.group(1).decode("utf-8-sig", errors="replace")
    repaired = _quote_leading_zeros(text)
    return repaired if repaired != text else None


def _quote_leading_zeros(text: str) -> str:
    """Quote bare numbers like ``001`` outside string literals (never inside "9:00, …")."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        char = text[i]
        if in_string:
            out.append(char)
            if char == "\\":
                out.append(text[i + 1 : i + 2])
                i += 2
                continue
            if char == '"':
                in_string = False
            i += 1
            continue
        if char == '"':
            in_string = True
            out.append(char)
            i += 1
            continue
        if char in "-0":
            match = _number_with_zeros().match(text, i)
            previous = text[:i].rstrip()[-1:]
            if match and previous in (":", "[", ","):
                out.append(f'"{match.group(0)}"')
                i = match.end()
                continue
        out.append(char)
        i += 1
    return "".join(out)
