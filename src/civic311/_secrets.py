"""Key redaction: the one place that decides what of a secret is hidden, and how.

Every path that could show the api_key goes through here: error messages and bodies
(`mask_bytes`, `mask_text`), URLs in errors, logs and health (`redact_url`, `redact_text`),
the CLI's streams (`Masker`) and the journal's stored columns (`mask_text`). docs/security.md
lists each path and the test that covers it.

What is masked (issue 11 point 14, issue 12 points 3 and 8):

- the value of a secret-named parameter in a URL or form (``api_key=…``, ``apikey=…``,
  ``key=…``, ``token_secret=…``), whatever the value;
- the key itself, in every spelling an output can give it: raw, percent-encoded (a URL),
  form-encoded (a POST body), JSON-escaped (``"`` and ``\\`` escaped, ``/`` as PHP's ``\\/``,
  non-ASCII as ``\\uXXXX``), and XML/HTML-escaped (``&amp;``…);
- a key of `MIN_INNER_LENGTH` characters or more wherever it occurs, even inside a word; a
  shorter key only where it stands as a value: after ``=``, or as a whole quoted string,
  element text or text. A four-letter key such as ``test`` is a word as well as a key:
  masking it everywhere printed "This is a \\*\\*\\* service" and "get_to\\*\\*\\*en".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote, quote_plus, urlencode

import httpx

from civic311._regex import on_first_use

__all__ = [
    "MASK",
    "MIN_INNER_LENGTH",
    "SECRET_NAMES",
    "Masker",
    "mask_bytes",
    "mask_text",
    "redact_text",
    "redact_url",
    "spellings",
]

#: What a secret is replaced with, everywhere.
MASK = "***"

#: Query and form names whose values never reach a log, repr, error message or stored row.
SECRET_NAMES = frozenset({"api_key", "apikey", "key", "token_secret"})

#: Keys at least this long are masked even inside a word: a random key that long does not
#: occur by chance in prose, while a short one ("test", "demo") does (issue 11 point 14).
MIN_INNER_LENGTH = 8

_NAMES = "|".join(sorted(SECRET_NAMES))


_secret_in_query = on_first_use(rb"(?:^|&)(?:" + _NAMES.encode() + rb")=", re.IGNORECASE)
_secret_in_text = on_first_use(r"(?i)\b(" + _NAMES + r")=([^&\s'\"<>]+)")
_secret_in_bytes = on_first_use(rb"(?i)\b(" + _NAMES.encode() + rb")=([^&\s'\"<>]+)")


# Where a short key stands as a value: after "=" (a form or query field), or as a whole quoted
# string, element text or text.
_VALUE_BEFORE = r"(?<=[=\"'>])"
_VALUE_AFTER = r"(?=$|[&\"'<\s;,)\]}])"


def spellings(secret: str) -> list[str]:
    """Every spelling of *secret* an output can hold, longest first.

    Echoes come raw, percent-encoded (in a URL), form-encoded (in a POST body), escaped inside
    a JSON string (PHP writes ``/`` as ``\\/``; ``ensure_ascii`` writes ``\\uXXXX``), or
    escaped in XML or HTML text; and any of those shown again by ``repr`` or escaped twice.
    """
    import html  # here, not at the top: html.entities costs `import civic311` ~1 ms

    escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
    ascii_escaped = json.dumps(secret)[1:-1]
    found = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        escaped,
        ascii_escaped,
        escaped.replace("/", "\\/"),
        ascii_escaped.replace("/", "\\/"),
        html.escape(secret, quote=True),
        html.escape(secret, quote=False),
        # JSON-escaped text shown again with repr() or escaped twice (a body inside a log).
        json.dumps(escaped, ensure_ascii=False)[1:-1],
        json.dumps(ascii_escaped)[1:-1],
        repr(secret)[1:-1],  # an error's repr quotes its text with Python's escapes
        repr(escaped)[1:-1],
        repr(ascii_escaped)[1:-1],
    }
    return sorted((s for s in found if s), key=len, reverse=True)


def _pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    long_parts: list[str] = []
    short_parts: list[str] = []
    for secret in {s for s in secrets if s}:
        parts = long_parts if len(secret) >= MIN_INNER_LENGTH else short_parts
        parts.extend(re.escape(spelling) for spelling in spellings(secret))
    alternatives = []
    if long_parts:
        alternatives.append("|".join(sorted(set(long_parts), key=len, reverse=True)))
    if short_parts:
        shorts = "|".join(sorted(set(short_parts), key=len, reverse=True))
        alternatives.append(f"{_VALUE_BEFORE}(?:{shorts}){_VALUE_AFTER}")
        alternatives.append(f"^(?:{shorts})$")  # the whole text
    if not alternatives:
        return None
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


class Masker:
    """Masks a fixed set of secrets (the CLI's, a client's) in text; compiled once."""

    def __init__(self, secrets: Sequence[str | None] = ()) -> None:
        self.secrets = tuple(s for s in secrets if s)
        self._text = _pattern(self.secrets)
        self._bytes = (
            re.compile(self._text.pattern.encode("utf-8")) if self._text is not None else None
        )

    def text(self, text: str) -> str:
        """*text* with every secret masked, and secret-named ``name=value`` values too."""
        if self._text is not None:
            text = self._text.sub(MASK, text)
        return redact_text(text)

    def bytes(self, body: bytes) -> bytes:
        """`text` for a raw body (invalid UTF-8 stays as it is)."""
        if self._bytes is not None:
            body = self._bytes.sub(MASK.encode(), body)
        return _secret_in_bytes().sub(rb"\1=***", body)


_MASKERS: dict[str, Masker] = {}


def _masker(secret: str) -> Masker:
    masker = _MASKERS.get(secret)
    if masker is None:
        if len(_MASKERS) > 64:  # keys of many clients in one process: stay bounded
            _MASKERS.clear()
        masker = _MASKERS[secret] = Masker([secret])
    return masker


def mask_text(text: str, secret: str | None = None) -> str:
    """*text* with *secret* (in any spelling) and ``api_key=…``-style values masked.

    The journal calls this for what it stores (error columns, last_error).
    """
    if secret:
        return _masker(secret).text(text)
    return redact_text(text)


def mask_bytes(body: bytes, secret: str | None = None) -> bytes:
    """`mask_text` for a raw response body."""
    if secret:
        return _masker(secret).bytes(body)
    return _secret_in_bytes().sub(rb"\1=***", body)


def redact_text(text: str) -> str:
    """*text* with ``api_key=…``-style values replaced by ``***`` (texts that quote a URL)."""
    return _secret_in_text().sub(r"\1=***", text)


def redact_url(url: str | httpx.URL) -> str:
    """*url* with the values of secret query parameters replaced by ``***``."""
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    query = parsed.query
    if not query or not _secret_in_query().search(query):
        return str(parsed)  # the common case: nothing to hide, no re-parsing
    params = [(k, MASK if k.lower() in SECRET_NAMES else v) for k, v in parsed.params.multi_items()]
    return str(parsed.copy_with(query=urlencode(params).encode("ascii")))
