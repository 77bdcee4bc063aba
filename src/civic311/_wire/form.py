"""`NewRequest` → the ``application/x-www-form-urlencoded`` body of POST requests (spec §2.3).

- UTF-8, declared in the Content-Type (spec §1.2; reference §10.27 — Köln, Gießen, Helsinki);
- ``attribute[CODE]=value`` for single values; for several values the spec's
  ``attribute[CODE][]=v1&attribute[CODE][]=v2`` ("brackets"), or repeated ``attribute[CODE]=v``
  ("repeat") for servers built on open311-adapter (reference §3.5, §10.34);
- empty fields are omitted, never sent empty (spec §1.5; Chicago and Baltimore choke on them,
  §10.32);
- coordinates in plain decimal notation, never exponent form.

Media (reference §10.36) comes in two parts, so that the spec's plain case stays a plain
urlencoded POST:

- `new_request_fields` sends a request's ``media_url`` when it has **one** (the spec's field,
  §3.5) and leaves it out when it has several;
- `media_parts` gives what a city's media style adds: the repeated ``media_url`` fields of a
  request with several URLs, and the files to upload.

``new_request_fields(r) + media_parts(r, …)[0]`` is therefore always the complete list of text
fields, each URL exactly once; when `media_parts` returns files, the POST is
``multipart/form-data`` (httpx ``data=multipart_data(fields), files=files``), else the usual
urlencoded body (`encode_form`).
"""

from __future__ import annotations

from typing import Literal, TypeAlias
from urllib.parse import urlencode

from civic311.errors import InvalidRequestError
from civic311.models import NewRequest

__all__ = [
    "FORM_CONTENT_TYPE",
    "MEDIA_STYLES",
    "FilePart",
    "MediaStyle",
    "MultivalueStyle",
    "encode_form",
    "media_parts",
    "media_urls",
    "multipart_data",
    "new_request_fields",
]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"

MultivalueStyle = Literal["brackets", "repeat"]

#: How a city takes media with a POST (reference §10.36):
#:
#: - ``"url"``: one ``media_url`` field, no uploads (the spec, §3.5);
#: - ``"url_repeat"``: ``media_url`` repeated once per URL, no uploads (FixMyStreet, §3.5, §8.7);
#: - ``"multipart"``: one uploaded file in a part named ``media`` (Bloomington uReport, §8.6);
#: - ``"multipart_array"``: any number of files in parts named ``media[]`` (Helsinki, 6aika,
#:   the v2.1 draft, §8.2, §8.5).
#:
#: The multipart styles take one ``media_url`` too.
MediaStyle = Literal["url", "url_repeat", "multipart", "multipart_array"]
MEDIA_STYLES: tuple[MediaStyle, ...] = ("url", "url_repeat", "multipart", "multipart_array")

#: One file for httpx ``files=``: ``(field name, (filename, content, content type))``.
FilePart: TypeAlias = tuple[str, tuple[str, bytes, str]]

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
)


def _number(value: float) -> str:
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def media_urls(request: NewRequest) -> tuple[str, ...]:
    """Every media URL of *request*: none, one or several (`NewRequest.media_url` holds one
    URL as a ``str`` and several as a ``tuple``)."""
    value = request.media_url
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    return tuple(value)


def new_request_fields(
    request: NewRequest, *, multivalue: MultivalueStyle = "brackets"
) -> list[tuple[str, str]]:
    """The form fields of *request*, in spec order, without credentials.

    ``media_url`` is among them when the request has exactly one; with several it is left out,
    because how several go depends on the city: add ``media_parts(request, …)[0]``, which
    repeats them (or refuses, for a city that takes one). Files (`NewRequest.media`) are never
    form fields: `media_parts` returns them.
    """
    fields: list[tuple[str, str]] = [("service_code", request.service_code)]
    if request.lat is not None and request.long is not None:
        fields += [("lat", _number(request.lat)), ("long", _number(request.long))]
    for name in _TEXT_FIELDS:
        value = getattr(request, name)
        if value is not None and value.strip():
            fields.append((name, value))
    urls = media_urls(request)
    if len(urls) == 1:
        fields.append(("media_url", urls[0]))
    for code, value in request.attributes.items():
        if isinstance(value, str):
            if value.strip():
                fields.append((f"attribute[{code}]", value))
            continue
        key = f"attribute[{code}][]" if multivalue == "brackets" else f"attribute[{code}]"
        fields += [(key, item) for item in value if item.strip()]
    return fields


def media_parts(
    request: NewRequest, *, style: MediaStyle, max_bytes: int
) -> tuple[list[tuple[str, str]], list[FilePart]]:
    """What a city's media *style* adds to `new_request_fields`: ``(fields, files)``.

    - *fields*: the ``media_url`` fields `new_request_fields` left out, i.e. every URL of a
      request with several, repeated (``"url_repeat"``); empty when it has one or none (that one
      is already in `new_request_fields`).
    - *files*: the request's `MediaFile` s for httpx ``files=``, as
      ``(name, (filename, content, content_type))``; the name is ``media`` for
      ``"multipart"`` (Bloomington, §8.6) and ``media[]`` for ``"multipart_array"`` (Helsinki,
      6aika, §8.2, §8.5). Empty for a request without files.

    Send ``new_request_fields(request) + fields``, urlencoded when *files* is empty and as
    ``multipart/form-data`` otherwise. Everything is checked here, before any network call.

    Raises:
        InvalidRequestError: several URLs for a city that takes one (field ``media_url``); files
            for a ``"url"``/``"url_repeat"`` city, several files for a ``"multipart"`` city, or
            files totalling more than *max_bytes* (field ``media``); a bad *style* or
            *max_bytes*.
    """
    if style not in MEDIA_STYLES:
        raise InvalidRequestError(
            "style", f"must be one of {', '.join(MEDIA_STYLES)}, not {style!r}"
        )
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise InvalidRequestError("max_bytes", f"must be a positive int, got {max_bytes!r}")
    urls = media_urls(request)
    fields: list[tuple[str, str]] = []
    if len(urls) > 1:
        if style != "url_repeat":
            raise InvalidRequestError(
                "media_url",
                f"this city takes one media_url (media style {style!r}); got {len(urls)}",
            )
        # FixMyStreet reads several photos from repeated media_url fields (reference §3.5).
        fields = [("media_url", url) for url in urls]
    files = request.media
    if not files:
        return fields, []
    if style in ("url", "url_repeat"):
        # GeoReport v2 itself takes only media_url (spec §3.5), so the spec profile sends no
        # files; say how to turn uploads on for a city that takes them (issue 14.3).
        raise InvalidRequestError(
            "media",
            f"this city takes no uploads (its profile's media style is {style!r}, as in the "
            "GeoReport v2 spec); host the file and give media_url, or, if the city takes "
            'files, give its profile: Client(url, profile="bloomington") for one file, '
            'profile="helsinki" for several, or profile=civic311.Profile(name="mycity", '
            'media="multipart_array") (docs/photos.md)',
        )
    if style == "multipart" and len(files) > 1:
        # Bloomington: "a single media upload during POST service request" (reference §8.6).
        raise InvalidRequestError(
            "media",
            f"this city takes one file (media style 'multipart'); got {len(files)}: "
            + ", ".join(f.filename for f in files),
        )
    total = sum(f.size for f in files)
    if total > max_bytes:
        raise InvalidRequestError(
            "media",
            f"{', '.join(f.filename for f in files)}: {total} bytes in all is over this "
            f"city's limit of {max_bytes} bytes",
        )
    name = "media" if style == "multipart" else "media[]"
    return fields, [(name, (f.filename, f.content, f.content_type)) for f in files]


def multipart_data(fields: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """*fields* as httpx's multipart ``data=`` wants them: a dict, repeated names as lists.

    Order is kept within a name (``attribute[C][]`` values, repeated ``media_url``) and names
    come in the order they first appear.
    """
    data: dict[str, str | list[str]] = {}
    for name, value in fields:
        current = data.get(name)
        if current is None:
            data[name] = value
        elif isinstance(current, list):
            current.append(value)
        else:
            data[name] = [current, value]
    return data


def encode_form(fields: list[tuple[str, str]]) -> bytes:
    """URL-encode *fields* as UTF-8."""
    return urlencode(fields, encoding="utf-8").encode("ascii")
