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

`error_document` tells whether a body served with a 2xx status is one of those documents all
the same (issue 12 points 1 and 2: ``200 {"errors":{"api_key":"Invalid api_key"}}`` had been
taken for an empty receipt), and `implied_status` which refusal its codes mean. Recognition is
strict: a document that carries any GeoReport data field is data, not an error.
"""

from __future__ import annotations

from typing import Any

from civic311.models import ErrorDetail

__all__ = ["error_details", "error_document", "implied_status"]

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
    if record and all(isinstance(v, str | list) for v in record.values()):
        # FixMyStreet, 6aika: a field → message(s) map ({"api_key": "Invalid api_key"}).
        return ErrorDetail(code=None, description=_text(record))
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
            if isinstance(entry, str) and entry.strip():
                found.append(ErrorDetail(code=None, description=entry.strip()))  # ["message"]
            else:
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


#: Keys an error record may have; a record with any other key is not an error record.
_ERROR_KEYS = frozenset({"code", "description", "message", "detail", "error", "msg"})
#: Fields of GeoReport data: a document holding one is an answer, never an error document.
_DATA_KEYS = frozenset(
    {
        "service_request_id",
        "token",
        "service_code",
        "service_name",
        "service_notice",
        "account_id",
        "requested_datetime",
        "attributes",
        "endpoints",
        "discovery",
    }
)
#: XML roots of error documents (spec §5.1; Klarschiff's error_messages, §5.2).
ERROR_ROOTS = frozenset({"errors", "error", "error_messages"})


def _error_record(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and set(value) <= _ERROR_KEYS
        and any(k in value for k in ("description", "message", "detail", "error", "msg"))
    )


def error_document(data: Any, root: str | None = None) -> bool:
    """Whether decoded *data* (XML root *root*) is an error document, whatever its status.

    The six shapes seen in the wild (module docstring): the spec's list (``[{"code",
    "description"}]``, ``<errors>``), ``{"errors": {…} or […]}`` (FixMyStreet), ``{"error":
    {"code", "message"}}`` (Mark-a-Spot), ``{"code", "detail"}`` (6aika) and ``[{"description"}]``
    (uReport), plus Klarschiff's ``error_messages``. A document whose codes are all 2xx or 3xx
    (``{"code": 201, "message": "received"}``) reports success, not an error.
    """
    if not _error_shape(data, root):
        return False
    codes = [d.code for d in error_details(data) if d.code and d.code.isdigit()]
    return not codes or not all(200 <= int(code) < 400 for code in codes)


def _error_shape(data: Any, root: str | None) -> bool:
    if root is not None:
        return root in ERROR_ROOTS
    if isinstance(data, list):
        return bool(data) and all(_error_record(entry) for entry in data)
    if not isinstance(data, dict) or not data or _DATA_KEYS & set(data):
        return False
    for wrapper in ("errors", "error_messages"):
        if wrapper in data and set(data) <= {wrapper, "code", "status", "message"}:
            return isinstance(data[wrapper], list | dict | str)
    if "error" in data and set(data) <= {"error", "code", "status"}:
        return isinstance(data["error"], dict | list | str)
    return _error_record(data) and "code" in data


def implied_status(details: list[ErrorDetail]) -> int:
    """The HTTP status an error document's entries imply (for one served with a 2xx).

    A 4xx code is taken at its word (401 and 403 both mean the key, spec §5.1); an entry
    that names the api_key means 403; anything else is the spec's catch-all 400. A 5xx code is
    read as 400 too: the server did answer, and deliberately, so it is a refusal to report,
    not an outage to retry or fail over from.
    """
    codes = []
    for detail in details:
        code = (detail.code or "").strip()
        if code.isdigit() and 400 <= int(code) < 500:
            codes.append(int(code))
    if any(code in (401, 403) for code in codes):
        return 403
    if codes:
        return codes[0]
    said = " ".join(detail.description.lower() for detail in details)
    if "api_key" in said or "api key" in said or "apikey" in said:
        return 403
    return 400
