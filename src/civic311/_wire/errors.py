"""Error bodies, in every shape the reference has seen (§5.2, §10.22), → `ErrorDetail` lists.

=================================  ===========================================
shape                              who sends it
=================================  ===========================================
``[{"code", "description"}]``      the spec (JSON)
``<errors><error>…</error>``       the spec (XML)
``{"errors": {…}}`` or ``[…]``     FixMyStreet's update receiver
``{"error": {"code", "message"}}`` Mark-a-Spot
``{"code", "detail"}``             6aika (``detail`` may be a field → messages map)
``[{"description"}]`` (no code)    Bloomington uReport
``<error_messages>…``              Klarschiff
=================================  ===========================================

Anything else (an HTML page, plain text) gives an empty list; the caller keeps the raw body.
"""

from __future__ import annotations

from typing import Any

from civic311.models import ErrorDetail

__all__ = ["error_details"]

_TEXT_KEYS = ("description", "message", "detail", "error", "msg")


def _text(value: Any, depth: int = 0) -> str:
    if value is None or depth > _MAX_DEPTH:
        return ""
    if isinstance(value, dict):
        # 6aika: {"detail": {"field": ["message", …]}} → "field: message; …"
        return "; ".join(f"{k}: {_text(v, depth + 1)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_text(v, depth + 1) for v in value)
    return str(value).strip()


def _code(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _one(record: dict[str, Any]) -> ErrorDetail | None:
    if "error" in record and isinstance(record["error"], dict) and len(record) == 1:
        return _one(record["error"])
    for key in _TEXT_KEYS:
        if key in record and not (key == "error" and isinstance(record[key], dict)):
            return ErrorDetail(code=_code(record.get("code")), description=_text(record[key]))
    if "code" in record:
        return ErrorDetail(code=_code(record["code"]), description="")
    return None


#: Error shapes nest three levels at most (``{"errors": [{"error": {…}}]}``); deeper is noise.
_MAX_DEPTH = 8


def error_details(data: Any, _depth: int = 0) -> list[ErrorDetail]:
    """Every error entry found in decoded error-body *data*; [] when it has no known shape."""
    if _depth > _MAX_DEPTH:
        return []
    if isinstance(data, list):
        found = []
        for entry in data:
            found.extend(error_details(entry, _depth + 1))
        return found
    if not isinstance(data, dict):
        return []
    for wrapper in ("errors", "error_messages", "error_message"):
        if wrapper in data and isinstance(data[wrapper], list | dict):
            return error_details(data[wrapper], _depth + 1)
    if "error" in data and isinstance(data["error"], list):
        return error_details(data["error"], _depth + 1)
    one = _one(data)
    return [one] if one is not None else []
