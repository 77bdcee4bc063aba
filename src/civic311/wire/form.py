"""`NewRequest` → the ``application/x-www-form-urlencoded`` body of POST requests (spec §2.3).

- UTF-8, declared in the Content-Type (spec §1.2; reference §10.27 — Köln, Gießen, Helsinki);
- ``attribute[CODE]=value`` for single values; for several values the spec's
  ``attribute[CODE][]=v1&attribute[CODE][]=v2`` ("brackets"), or repeated ``attribute[CODE]=v``
  ("repeat") for servers built on open311-adapter (reference §3.5, §10.34);
- empty fields are omitted, never sent empty (spec §1.5; Chicago and Baltimore choke on them,
  §10.32);
- coordinates in plain decimal notation, never exponent form.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

from civic311.models import NewRequest

__all__ = ["FORM_CONTENT_TYPE", "MultivalueStyle", "encode_form", "new_request_fields"]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"

MultivalueStyle = Literal["brackets", "repeat"]

_TEXT_FIELDS = (
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "description",
    "media_url",
)


def _number(value: float) -> str:
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def new_request_fields(
    request: NewRequest, *, multivalue: MultivalueStyle = "brackets"
) -> list[tuple[str, str]]:
    """The form fields of *request*, in spec order, without credentials."""
    fields: list[tuple[str, str]] = [("service_code", request.service_code)]
    if request.lat is not None and request.long is not None:
        fields += [("lat", _number(request.lat)), ("long", _number(request.long))]
    for name in _TEXT_FIELDS:
        value = getattr(request, name)
        if value is not None and value.strip():
            fields.append((name, value))
    for code, value in request.attributes.items():
        if isinstance(value, str):
            if value.strip():
                fields.append((f"attribute[{code}]", value))
            continue
        key = f"attribute[{code}][]" if multivalue == "brackets" else f"attribute[{code}]"
        fields += [(key, item) for item in value if item.strip()]
    return fields


def encode_form(fields: list[tuple[str, str]]) -> bytes:
    """URL-encode *fields* as UTF-8."""
    return urlencode(fields, encoding="utf-8").encode("ascii")
