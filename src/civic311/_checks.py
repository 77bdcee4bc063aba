"""Argument checks shared by every layer: endpoint URLs and seconds. No I/O.

`endpoint_url` is the one place an endpoint URL is parsed (issue 12 point 6, issue 14
point 5): whatever it accepts, httpx can send to, so a bad URL is an `InvalidRequestError` in
the constructor, never an ``httpx.InvalidURL`` or ``UnicodeError`` on every later call.
"""

from __future__ import annotations

import re
import warnings
from urllib.parse import urlsplit

import httpx

from civic311._regex import on_first_use
from civic311.errors import Civic311Warning, InvalidRequestError

__all__ = ["check_seconds", "endpoint_url"]


#: C0 controls, DEL and C1 controls: CR/LF in a URL is header injection (CWE-113), and no
#: control character belongs in one (WHATWG URL: "forbidden" and C0-control code points).
_control = on_first_use(r"[\x00-\x1f\x7f-\x9f]")


#: Resource documents a base URL is often given with by mistake: the base URL ends before
#: them (``…/open311/v2/services.json`` → ``…/open311/v2``).
_document = on_first_use(r"/(services|discovery)\.(json|xml)$", re.IGNORECASE)


#: RFC 1035 §2.3.4: a label is at most 63 octets, a name at most 253 characters written out.
_MAX_LABEL = 63
_MAX_HOST = 253


def endpoint_url(url: object, field: str = "endpoint") -> str:
    """*url* checked as a GeoReport v2 base URL, without a trailing slash.

    A trailing ``services.json`` or ``discovery.json`` (``.xml`` too) is trimmed with a
    `Civic311Warning`: the base URL is the part before it.

    Raises:
        InvalidRequestError: naming *field*: not a string, not http(s), no host, a control
            character (CR/LF…) or space, a query or fragment, a host label over 63 characters,
            or anything else httpx cannot send to.
    """
    if not isinstance(url, str):
        raise InvalidRequestError(field, f"must be a URL string, not {type(url).__name__}")
    text = url.strip()
    if _control().search(text) or " " in text:
        raise InvalidRequestError(
            field, f"must not hold spaces or control characters (CR, LF, tab…): {text!r}"
        )
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InvalidRequestError(field, f"must be an http(s) URL, got {text!r}")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise InvalidRequestError(field, f"must not carry a query or fragment: {text!r}")
    _check_host(parts.hostname or "", text, field)
    try:
        parsed = httpx.URL(text)
        parsed.host.encode("idna")  # what httpx will send (an IDN host is encoded then)
        _ = parts.port  # an out-of-range port (over 65535) raises here
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise InvalidRequestError(field, f"is not a usable URL: {text!r} ({exc})") from None
    if not parsed.host:
        raise InvalidRequestError(field, f"must name a host, got {text!r}")
    base = text.rstrip("/")
    document = _document().search(base)
    if document is not None:
        trimmed = base[: document.start()].rstrip("/")
        hint = (
            " (for a discovery document, use Client.from_discovery)"
            if document.group(1).lower() == "discovery"
            else ""
        )
        warnings.warn(
            f"{field} {base!r} ends in {document.group(0)[1:]!r}; using the base URL "
            f"{trimmed!r}{hint}",
            Civic311Warning,
            stacklevel=4,
        )
        base = trimmed
    return base


def _check_host(host: str, text: str, field: str) -> None:
    if not host:
        raise InvalidRequestError(field, f"must name a host, got {text!r}")
    if len(host) > _MAX_HOST or any(len(label) > _MAX_LABEL for label in host.split(".")):
        raise InvalidRequestError(
            field,
            f"has a host name longer than DNS allows (labels of at most {_MAX_LABEL} "
            f"characters, {_MAX_HOST} in all): {text[:120]!r}…",
        )


def check_seconds(value: object, field: str) -> float:
    """*value* as seconds ≥ 0, or an `InvalidRequestError` naming *field*."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != value  # NaN
        or value < 0
    ):
        raise InvalidRequestError(field, f"must be seconds ≥ 0, got {value!r}")
    return float(value)
