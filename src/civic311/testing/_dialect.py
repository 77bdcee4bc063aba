"""Dialects: the ways real GeoReport v2 servers differ from the spec, one switch each.

A `FakeCity` speaks the spec by default (`Dialect()`). Each field of `Dialect` turns on one
deviation documented in the reference, so a client's handling of it can be tested end to end::

    city = FakeCity(dialect=Dialect(wrapped_json=True, string_booleans=True))
    city = FakeCity(dialect=Dialect.chicago())                 # a named preset
    city = FakeCity(dialect=Dialect.sixaika().replace(paging="none"))  # a preset, adjusted
    city.dialect = Dialect.xml_only()                          # switch at run time

Presets bundle what the reference records for one server family: `spec`, `xml_only`
(Washington D.C., Alexandria), `chicago`, `sf`, `sixaika` (6aika / Turku), `fixmystreet`,
`open311_adapter`, `markaspot`, `ureport` (Bloomington).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

__all__ = ["Dialect", "ErrorShape", "Paging"]

ErrorShape = Literal["spec", "code_detail", "fms", "markaspot", "description_only"]
Paging = Literal["none", "page", "offset"]

_in = attrs.validators.in_


def _formats(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError("formats must be a tuple such as ('xml', 'json')")
    formats = tuple(str(v) for v in value)
    if "xml" not in formats or not set(formats) <= {"xml", "json"}:
        raise ValueError(
            "formats must include 'xml' (required by the spec, §1.2) and may add 'json'"
        )
    return formats


@attrs.frozen
class Dialect:
    """How a FakeCity deviates from the spec. Every default is the spec's behaviour.

    **Formats and shapes**

    * **formats** - ``("xml", "json")``; ``("xml",)`` answers ``.json`` with 404 ``text/plain``
      "Bad extension" like open311-adapter (§5.2); XML-only cities in §9.
    * **wrapped_json** - JSON lists and the definition wrapped in an object:
      ``{"services": […]}``, ``{"service_requests": […]}``, ``{"service_definition": {…}}``
      (FixMyStreet, §8.7, §10.9).
    * **string_booleans** - JSON booleans as strings, with mixed case: ``"true"`` and ``"False"``
      (§10.16), to exercise case-insensitive parsing.
    * **numeric_ids** - JSON ids, tokens and value keys that are all digits (without a leading
      zero) written as numbers: ``"service_request_id": 638344``, ``"key": 123`` (§2.3, §10.13).
    * **requests_root** - the XML root of request lists: ``service_requests`` or ``requests``
      (6aika, §8.5).
    * **omit_empty** - leave out empty fields instead of writing ``<x/>`` / ``null`` (6aika
      omits null coordinates).
    * **xml_content_type** / **json_content_type** - the Content-Type headers (FixMyStreet sends
      ``application/xml``).
    * **datetime_style** - ``"z"`` (``2026-01-01T00:00:00Z``) or ``"offset"``
      (``2026-01-01T02:00:00+02:00``, PHP ``date('c')``) with **utc_offset_minutes**.
    * **error_shape** - error bodies (§5, §10.22): ``spec`` (``[{"code","description"}]``,
      ``<errors><error>``), ``code_detail`` (6aika ``{"code","detail"}``), ``fms``
      (``{"errors": {"code","description"}}``), ``markaspot`` (``{"error": {"code","message"}}``),
      ``description_only`` (uReport ``[{"description"}]``).

    **Behaviour**

    * **post_status** - HTTP status of a successful POST (6aika answers 201, §8.5).
    * **post_full_record** - POST answers the whole request record, not just the id
      (6aika, Bloomington).
    * **token_404_while_pending** - a token that has no id yet answers 404 (San Francisco) instead
      of the token without an id (Chicago, §2.4).
    * **idless_pending** - a batch request whose token is still pending is listed by
      GET requests *without* a service_request_id (Chicago, §8.3, §10.5) instead of not at all.
    * **idless_every** - additionally drop the id of every request whose numeric id is a multiple
      of this number in GET requests lists (0: never). For harvest tests that must skip them.
    * **media** - the file uploads a POST may carry as ``multipart/form-data`` (reference §10.36):
      ``array`` (any number of files in ``media[]`` or repeated ``media`` parts: Helsinki,
      6aika, the v2.1 draft, §8.2, §8.5), ``single`` (at most one file, in a part named
      ``media``: Bloomington, §8.6), or ``none`` (no uploads: a file is a 400; the default,
      as in the spec and civic311's spec profile). Repeated
      ``media_url`` fields (FixMyStreet, §3.5) are accepted whatever this says.
    * **multivalue** - POST attribute lists: ``brackets`` (``attribute[c][]=v``, the spec) or
      ``repeat`` (repeated ``attribute[c]=v``, open311-adapter, §3.5).
    * **paging** - ``none`` (the spec: a 1000-row cap and no paging), ``page`` (``page`` from 1,
      ``page=0`` read as 1, ``page_size``), or ``offset`` (``limit``/``offset``); page sizes default
      to **page_size_default** and are clipped to **page_size_max** (§8.1).
    * **repeat_last_page** - a page past the end answers the last page again instead of ``[]``.
    * **ignore_filters** - GET requests ignores ``start_date``, ``end_date`` and ``status`` and
      applies no date window (§6.2, §10.30).
    * **default_window_days** - the window GET requests uses when no date is given (90 in the
      spec; None: no window, FixMyStreet).
    * **max_span_days** - the longest start..end span allowed, else 400 (90; None: any).
    """

    formats: tuple[str, ...] = attrs.field(default=("xml", "json"), converter=_formats)
    wrapped_json: bool = False
    string_booleans: bool = False
    numeric_ids: bool = False
    requests_root: str = attrs.field(
        default="service_requests", validator=_in(("service_requests", "requests"))
    )
    omit_empty: bool = False
    xml_content_type: str = "text/xml; charset=utf-8"
    json_content_type: str = "application/json; charset=utf-8"
    datetime_style: Literal["z", "offset"] = attrs.field(
        default="z", validator=_in(("z", "offset"))
    )
    utc_offset_minutes: int = 0
    error_shape: ErrorShape = attrs.field(
        default="spec",
        validator=_in(("spec", "code_detail", "fms", "markaspot", "description_only")),
    )
    post_status: int = 200
    post_full_record: bool = False
    token_404_while_pending: bool = False
    idless_pending: bool = False
    idless_every: int = 0
    # "none" like the GeoReport v2 spec (only media_url, §3.5) and like civic311's spec
    # profile, so a test against the default FakeCity meets what a spec city does (issue 14.3).
    media: Literal["none", "single", "array"] = attrs.field(
        default="none", validator=_in(("none", "single", "array"))
    )
    multivalue: Literal["brackets", "repeat"] = attrs.field(
        default="brackets", validator=_in(("brackets", "repeat"))
    )
    paging: Paging = attrs.field(default="none", validator=_in(("none", "page", "offset")))
    page_size_default: int = 50
    page_size_max: int = 500
    repeat_last_page: bool = False
    ignore_filters: bool = False
    default_window_days: int | None = 90
    max_span_days: int | None = 90

    def replace(self, **changes: Any) -> Dialect:
        """A copy with some options changed: ``Dialect.chicago().replace(paging="none")``."""
        return attrs.evolve(self, **changes)

    @property
    def json_enabled(self) -> bool:
        """Whether ``.json`` URLs are served."""
        return "json" in self.formats

    # -- presets -----------------------------------------------------------------------------

    @classmethod
    def spec(cls) -> Dialect:
        """The GeoReport v2 spec, to the letter (the default)."""
        return cls()

    @classmethod
    def xml_only(cls) -> Dialect:
        """XML only: ``.json`` is a 404 ``text/plain`` "Bad extension" (§1.2: JSON is optional)."""
        return cls(formats=("xml",))

    @classmethod
    def chicago(cls) -> Dialect:
        """Chicago (§8.3): ``page``/``page_size`` paging (50, max 500), pending requests listed
        without an id, pending tokens answered with the token alone."""
        return cls(paging="page", page_size_default=50, page_size_max=500, idless_pending=True)

    @classmethod
    def sf(cls) -> Dialect:
        """San Francisco: ``page``/``page_size`` paging and a 404 for a token still pending."""
        return cls(paging="page", token_404_while_pending=True)

    @classmethod
    def sixaika(cls) -> Dialect:
        """6aika issue-reporting (Turku, §8.5): POST answers 201 with the full record, XML list
        root ``<requests>``, ``{"code","detail"}`` errors, null coordinates omitted, ``+HH:MM``
        dates, ``page_size`` paging (default 100, max 500)."""
        return cls(
            post_status=201,
            post_full_record=True,
            media="array",  # the `media` extension: repeatable multipart files (§8.5)
            requests_root="requests",
            error_shape="code_detail",
            omit_empty=True,
            datetime_style="offset",
            utc_offset_minutes=120,
            paging="page",
            page_size_default=100,
            page_size_max=500,
        )

    @classmethod
    def fixmystreet(cls) -> Dialect:
        """FixMyStreet as a server (§8.7): wrapped JSON, ``"false"`` string booleans,
        ``application/xml``, ``{"errors": {…}}``, no 90-day default window or span limit."""
        return cls(
            wrapped_json=True,
            string_booleans=True,
            xml_content_type="application/xml; charset=utf-8",
            error_shape="fms",
            default_window_days=None,
            max_span_days=None,
        )

    @classmethod
    def open311_adapter(cls) -> Dialect:
        """mySociety open311-adapter (§3.5, §5.2): repeated ``attribute[c]=v`` for lists."""
        return cls(multivalue="repeat")

    @classmethod
    def markaspot(cls) -> Dialect:
        """Mark-a-Spot (§8.8): ``{"error": {"code","message"}}``, string booleans, ``limit``
        paging (default 25, max 50), ``+HH:MM`` dates."""
        return cls(
            error_shape="markaspot",
            string_booleans=True,
            paging="offset",
            page_size_default=25,
            page_size_max=50,
            datetime_style="offset",
            utc_offset_minutes=60,
        )

    @classmethod
    def ureport(cls) -> Dialect:
        """Bloomington uReport (§8.6): ``[{"description"}]`` errors, POST answers the full
        record and takes one uploaded file in ``media``, ``page``/``page_size`` paging
        (default 1000)."""
        return cls(
            media="single",
            error_shape="description_only",
            post_full_record=True,
            paging="page",
            page_size_default=1000,
            page_size_max=1000,
        )
