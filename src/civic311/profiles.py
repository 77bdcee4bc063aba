"""Quirk profiles: how one GeoReport v2 server deviates from the spec, as plain data.

The spec (reference §1-§7) is one thing; the servers in the wild (§8-§10) are many. Instead of
a client subclass per city, civic311 describes each server with a `Profile`: which format to
prefer, how to write query dates, how to encode list attributes, how it pages, what it
requires in practice, how its tokens behave. The client reads the profile; the profile never
does anything by itself::

    from civic311.profiles import CHICAGO, Profile

    CHICAGO.date_style                      # "no_zone": Chicago gets dates without the Z
    mine = Profile.from_dict({"base": "chicago", "name": "chicago-staging", "page_size": 100})
    Profile.from_json("my-city.json")       # the same, from a file (or from JSON text)

`Profile.SPEC` is the spec to the letter and the default. The named presets below
(`PROFILES` maps names to them) are built only from what the reference records; each choice
cites its source. Where the reference is silent, a preset keeps the spec's default.

Profiles are validated when built: a bad value raises `civic311.errors.InvalidRequestError`
(which is a `ValueError`) naming the field, and `from_dict` / `from_json` also refuse unknown
keys, so a typo in a profile file is an error, not a silently ignored setting.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import attrs

from civic311.errors import InvalidRequestError

__all__ = [
    "ACCELA",
    "ALEXANDRIA",
    "BLOOMINGTON",
    "BOSTON",
    "CHICAGO",
    "CONNECTED_BITS",
    "FIXMYSTREET",
    "FORM_FIELD_NAMES",
    "HELSINKI",
    "KLARSCHIFF",
    "MARK_A_SPOT",
    "OPEN311_ADAPTER",
    "PATH_KEYS",
    "PROFILES",
    "REQUIRED_FIELD_NAMES",
    "SAN_FRANCISCO",
    "SEECLICKFIX",
    "SIXAIKA",
    "SPEC",
    "TORONTO",
    "WASHINGTON_DC",
    "Profile",
]

#: Resources whose path segment a profile may rename (``{"requests": "issues"}``).
PATH_KEYS = frozenset({"services", "requests", "tokens", "discovery"})

#: The `NewRequest` fields a profile may declare required in practice (reference §10.35).
#: ``lat_long`` stands for the pair ``lat`` + ``long``.
REQUIRED_FIELD_NAMES = frozenset(
    {"email", "description", "address_string", "lat_long", "first_name", "last_name", "phone"}
)

_FORMATS = ("json", "xml")
_DATE_STYLES = ("utc_z", "no_zone")
_MULTIVALUE = ("brackets", "repeat")
_JURISDICTION = ("optional", "required", "forbidden")
_SORT_ORDERS = ("newest_first", "oldest_first", "unknown")
_PAGING = ("none", "page", "offset")
_MEDIA = ("url", "url_repeat", "multipart", "multipart_array")


# -- validators: each raises InvalidRequestError (a ValueError) that names the field ----------


def _fail(attribute: attrs.Attribute[Any], message: str) -> InvalidRequestError:
    return InvalidRequestError(attribute.name, message)


def _one_of(*allowed: object) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise _fail(attribute, f"must be one of {choices}, got {value!r}")

    return check


def _text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _fail(attribute, f"must be a non-empty string, got {value!r}")


def _optional_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _text(instance, attribute, value)


def _flag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise _fail(attribute, f"must be true or false, got {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        raise _fail(attribute, f"must be a positive whole number, got {value!r}")


def _optional_positive_int(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None:
        _positive_int(instance, attribute, value)


def _first_page(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not _is_int(value) or value not in (0, 1):
        raise _fail(attribute, f"must be 0 or 1 (the number of the first page), got {value!r}")


def _positive_seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not 0 < value < float("inf")
    ):
        raise _fail(attribute, f"must be a positive number of seconds, got {value!r}")


def _seconds(value: object) -> object:
    """Whole seconds from JSON (``2``) become floats; anything else is left to the validator."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _required_fields(value: object) -> object:
    if isinstance(value, list | tuple):
        return tuple(value)
    return value


def _check_required_fields(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple):
        raise _fail(attribute, f"must be a list of field names, got {value!r}")
    unknown = [v for v in value if v not in REQUIRED_FIELD_NAMES]
    if unknown:
        known = ", ".join(sorted(REQUIRED_FIELD_NAMES))
        raise _fail(attribute, f"unknown field name(s) {unknown!r}; known: {known}")
    if len(set(value)) != len(value):
        raise _fail(attribute, f"lists a field twice: {list(value)!r}")


def _paths(value: object) -> object:
    if isinstance(value, Mapping):
        return MappingProxyType(dict(value))
    return value


#: The POST form fields a profile may rename (`Profile.form_names`): what `NewRequest` sends.
FORM_FIELD_NAMES = frozenset(
    {
        "lat",
        "long",
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
    }
)


def _check_form_names(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Mapping):
        raise _fail(attribute, f"must be a mapping of field to the server's name, got {value!r}")
    for key, name in value.items():
        if key not in FORM_FIELD_NAMES:
            known = ", ".join(sorted(FORM_FIELD_NAMES))
            raise _fail(attribute, f"unknown form field {key!r}; known: {known}")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\[\]-]*", name):
            raise _fail(attribute, f"{key!r} must be renamed to a plain field name, got {name!r}")


def _check_paths(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Mapping):
        raise _fail(attribute, f"must be a mapping of resource to path, got {value!r}")
    for key, path in value.items():
        if key not in PATH_KEYS:
            known = ", ".join(sorted(PATH_KEYS))
            raise _fail(attribute, f"unknown resource {key!r}; known: {known}")
        if (
            not isinstance(path, str)
            or not path.strip()
            or path != path.strip().strip("/")
            or any(c in path for c in "?#.")
        ):
            raise _fail(
                attribute,
                f"{key!r} must be a path segment such as 'issues' (no leading or trailing '/', "
                f"no '?', '#' or '.'), got {path!r}",
            )


@attrs.frozen(kw_only=True)
class Profile:
    """How one GeoReport v2 server deviates from the spec. Every default is the spec's.

    Attributes:
        name: A label for messages and the registry (``"chicago"``).
        format: The preferred format; None leaves it to the client's ``format`` option.
        force_format: Never fall back to the other format (XML-only servers whose ``.json`` is
            broken: Alexandria, D.C., reference §9).
        date_style: Query datetimes as ``…T00:00:00Z`` (``utc_z``, spec §6.1) or without a
            zone (``no_zone``; open311status does so for Chicago, §6.2). Never fractions
            (Toronto, Chicago and Bloomington choke on them, §6.2).
        multivalue: ``attribute[c][]=v`` (``brackets``, the spec §3.5) or repeated
            ``attribute[c]=v`` (``repeat``, open311-adapter).
        required_fields: `NewRequest` fields the server requires in practice (§10.35), from
            `REQUIRED_FIELD_NAMES`; ``lat_long`` means both coordinates.
        jurisdiction: Whether ``jurisdiction_id`` is ``optional`` (spec §1.3), ``required``
            even on a single-jurisdiction server (FixMyStreet, §8.7), or ``forbidden``.
        api_key_on_reads: Send the api_key on GETs too (Baltimore, open311status #129).
        paths: Resource renames, keys from `PATH_KEYS` (``{"requests": "issues"}``; FixMyStreet's
            client needed such overrides for West Berkshire, field notes §4.2).
        form_names: POST form fields the server knows under another name, keys from
            `FORM_FIELD_NAMES` (6aika reads ``address``, not the spec's ``address_string``:
            an address-only report got a 500, reference/real-servers/A_post_address_string_only).
        accept_encoding: An Accept-Encoding header to send instead of httpx's (``"identity"``
            for Alexandria's broken deflate, §10.37).
        result_cap: The most rows one GET requests answer holds (a page, when paging); an
            answer of exactly this size may have been cut (spec §2.5: 1000).
        sort_order: How GET requests orders its answer, when known (FixMyStreet: newest first).
        paging: The paging extension (§8.1): ``none``, ``page`` (``page`` + ``page_size``) or
            ``offset`` (``limit`` + ``offset``).
        page_size: The page size to ask for when paging (None: the server's default).
        first_page: The number of the first page (1; some servers count from 0).
        token_404_pending: A 404 on ``tokens/{t}`` means "not yet" (San Francisco, field notes
            §3 "Tokens"), not "no such token".
        poll_interval: The first wait between token look-ups in ``wait_for_id``; it doubles.
        max_poll_interval: The longest wait between token look-ups.
        media: How a file goes with a POST (§10.36): ``url`` (one ``media_url``, the spec),
            ``url_repeat`` (``media_url`` repeated), ``multipart`` (a multipart ``media`` part),
            ``multipart_array`` (multipart ``media[]`` parts, the v2.1 draft). The default is
            ``url``, as in the spec: files are refused before sending until a profile says
            the city takes them (FakeCity's default dialect takes none either; docs/photos.md).
        max_media_bytes: The largest upload to attempt.
        ignores_filters: Re-filter GET requests answers client-side (§10.30; FixMyStreet's
            client does, §6.2).
        max_window_days: The longest ``start_date``..``end_date`` span to ask for (§2.5: 90).
        extensions: Send ``extensions=true`` on GET requests (Chicago, SF, Boston, §8.1.5).
    """

    #: The spec to the letter; the default profile. Set below the class.
    SPEC: ClassVar[Profile]

    name: str = attrs.field(default="spec", validator=_text)
    format: Literal["json", "xml"] | None = attrs.field(
        default=None, validator=_one_of(None, *_FORMATS)
    )
    force_format: bool = attrs.field(default=False, validator=_flag)
    date_style: Literal["utc_z", "no_zone"] = attrs.field(
        default="utc_z", validator=_one_of(*_DATE_STYLES)
    )
    multivalue: Literal["brackets", "repeat"] = attrs.field(
        default="brackets", validator=_one_of(*_MULTIVALUE)
    )
    required_fields: tuple[str, ...] = attrs.field(
        default=(), converter=_required_fields, validator=_check_required_fields
    )
    jurisdiction: Literal["optional", "required", "forbidden"] = attrs.field(
        default="optional", validator=_one_of(*_JURISDICTION)
    )
    api_key_on_reads: bool = attrs.field(default=False, validator=_flag)
    paths: Mapping[str, str] = attrs.field(
        factory=dict,
        converter=_paths,
        validator=_check_paths,
        hash=False,
        repr=lambda paths: repr(dict(paths)),
    )
    accept_encoding: str | None = attrs.field(default=None, validator=_optional_text)
    result_cap: int = attrs.field(default=1000, validator=_positive_int)
    sort_order: Literal["newest_first", "oldest_first", "unknown"] = attrs.field(
        default="unknown", validator=_one_of(*_SORT_ORDERS)
    )
    paging: Literal["none", "page", "offset"] = attrs.field(
        default="none", validator=_one_of(*_PAGING)
    )
    page_size: int | None = attrs.field(default=None, validator=_optional_positive_int)
    first_page: int = attrs.field(default=1, validator=_first_page)
    token_404_pending: bool = attrs.field(default=True, validator=_flag)
    poll_interval: float = attrs.field(default=0.5, converter=_seconds, validator=_positive_seconds)
    max_poll_interval: float = attrs.field(
        default=10.0, converter=_seconds, validator=_positive_seconds
    )
    media: Literal["url", "url_repeat", "multipart", "multipart_array"] = attrs.field(
        default="url", validator=_one_of(*_MEDIA)
    )
    max_media_bytes: int = attrs.field(default=10 * 1024 * 1024, validator=_positive_int)
    ignores_filters: bool = attrs.field(default=False, validator=_flag)
    max_window_days: int = attrs.field(default=90, validator=_positive_int)
    extensions: bool = attrs.field(default=False, validator=_flag)
    form_names: Mapping[str, str] = attrs.field(
        factory=dict,
        converter=_paths,
        validator=_check_form_names,
        hash=False,
        repr=lambda names: repr(dict(names)),
    )

    def __attrs_post_init__(self) -> None:
        # Checks across fields.
        if self.max_poll_interval < self.poll_interval:
            raise InvalidRequestError(
                "max_poll_interval",
                f"must be >= poll_interval ({self.poll_interval}), got {self.max_poll_interval}",
            )
        if self.force_format and self.format is None:
            raise InvalidRequestError(
                "force_format", "needs a format to force: set format to 'json' or 'xml'"
            )

    # -- building and saving -----------------------------------------------------------------

    def replace(self, **changes: Any) -> Profile:
        """A copy with some fields changed (validated): ``CHICAGO.replace(page_size=100)``."""
        return attrs.evolve(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready data; `from_dict` of it gives an equal profile."""
        data: dict[str, Any] = {}
        for field in attrs.fields(Profile):
            value = getattr(self, field.name)
            if field.name in ("paths", "form_names"):
                value = dict(value)
            elif field.name == "required_fields":
                value = list(value)
            data[field.name] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """Build a profile from plain data, such as a parsed JSON file.

        Keys are the field names. One more key, ``base``, names a preset in `PROFILES` to start
        from; the other keys override it (``{"base": "chicago", "page_size": 100}``). Keys not
        given keep the base's value (the spec's, without a base).

        Raises:
            InvalidRequestError: an unknown key (a typo is an error, not a silent default),
                an unknown base, or a bad value; the message names the field.
        """
        if not isinstance(data, Mapping):
            raise InvalidRequestError(
                "profile", f"must be an object of settings, got {type(data).__name__}"
            )
        known = {field.name for field in attrs.fields(Profile)}
        unknown = sorted(str(key) for key in data if key not in known and key != "base")
        if unknown:
            import difflib  # only for a misspelt key: not loaded by `import civic311`

            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, [*known, "base"], n=1)
                hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
            raise InvalidRequestError(
                "profile",
                f"unknown key(s) {', '.join(hints)}; known keys: base, " + ", ".join(sorted(known)),
            )
        base = SPEC
        if "base" in data:
            base_name = data["base"]
            if not isinstance(base_name, str) or base_name not in PROFILES:
                raise InvalidRequestError(
                    "base", f"unknown preset {base_name!r}; known: {', '.join(sorted(PROFILES))}"
                )
            base = PROFILES[base_name]
        changes = {key: value for key, value in data.items() if key != "base"}
        try:
            return attrs.evolve(base, **changes)
        except InvalidRequestError:
            raise
        except (TypeError, ValueError) as exc:  # pragma: no cover - validators catch first
            raise InvalidRequestError("profile", str(exc)) from exc

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> Profile:
        """Build a profile from JSON text, or from a JSON file when given a path.

        A string starting with ``{`` is read as JSON text; any other string, or a
        `pathlib.Path`, names a file (UTF-8).

        Raises:
            InvalidRequestError: the JSON is malformed, or `from_dict` refuses it.
            OSError: the file cannot be read.
        """
        if isinstance(source, str) and source.lstrip().startswith("{"):
            text, where = source, "profile JSON"
        else:
            path = Path(source)
            text, where = path.read_text(encoding="utf-8-sig"), str(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(
                "profile", f"{where} is not valid JSON ({exc.msg} at line {exc.lineno})"
            ) from exc
        return cls.from_dict(data)


SPEC = Profile()
Profile.SPEC = SPEC

# -- presets -----------------------------------------------------------------------------------
# Each choice cites the reference (georeport-v2.md §n) or the field notes; anything not cited
# is the spec's default. Servers in §9 that share a platform share a preset.

#: Chicago (reference §8.3, docs at Chicago/open311-api-docs).
CHICAGO = Profile(
    name="chicago",
    # open311status strips the Z from start_date/end_date for Chicago (`requests_omit_timezone`,
    # §6.2); Chicago also 500ed on fractional seconds (open311status #92), which no style sends.
    date_style="no_zone",
    # Docs mark lat, long *and* address_string required for POST (§3.5, §10.35).
    required_fields=("lat_long", "address_string"),
    # page + page_size, default 50, max 500 (§8.1.1); ask for the max, one-based pages.
    paging="page",
    page_size=500,
    first_page=1,
    result_cap=500,
    # A pending token answers with the token and no id, not a 404 (§2.4, §10.4).
    token_404_pending=False,
    # extensions=true adds extended_attributes and notes (§8.1.5, §8.3).
    extensions=True,
)

#: The Connected Bits / "spot reporters" platform (Boston, Baltimore, Brookline, Grand Rapids;
#: reference §8.4): `page` and `page_size` (open311.github.io #16, field notes §3 "Pagination").
#: open311status expects 50 rows per call from this family (§9 notes, uncertain): ask nothing,
#: treat 50 rows as a possibly cut answer.
CONNECTED_BITS = Profile(name="connected_bits", paging="page", result_cap=50)

#: Boston: Connected Bits, plus `extensions=true` and notes (Extensions page, §8.1).
BOSTON = CONNECTED_BITS.replace(name="boston", extensions=True)

#: San Francisco (reference §8.1, §9).
SAN_FRANCISCO = Profile(
    name="san_francisco",
    # page/page_size and extensions=true (Extensions page, §8.1.1, §8.1.5).
    paging="page",
    extensions=True,
    # open311status reads 50 per call from SF (§9 notes, uncertain).
    result_cap=50,
    # 404 for a token whose request does not exist yet (open311-ios #207, field notes §3).
    token_404_pending=True,
)

#: Bloomington uReport (reference §8.6).
BLOOMINGTON = Profile(
    name="bloomington",
    # page_size default 1000 and one-based pages (page=0 reads as 1), `Open311Controller.php`.
    # Note: a page past the end repeats the last page (uReport #31); the pager must notice.
    paging="page",
    page_size=1000,
    first_page=1,
    result_cap=1000,
    # "supports a single media upload during POST" (open311.github.io #49), multipart `media`.
    media="multipart",
)

#: FixMyStreet as a GeoReport server, e.g. Zürich (reference §8.7).
FIXMYSTREET = Profile(
    name="fixmystreet",
    # jurisdiction_id is mandatory on the requests endpoints even though FMS serves one body;
    # without it FMS answers an HTML error page (§5.2, §8.7).
    jurisdiction="required",
    # Up to OPEN311_LIMIT (1000) rows, newest first, no 90-day default window (§8.7). The
    # client always sends both dates, so max_window_days keeps the spec's 90: harmless here.
    result_cap=1000,
    sort_order="newest_first",
    # FMS filters `confirmed >= start_date` and `< end_date` (an exclusive end, §6.2), and its
    # own client re-filters what it fetches: re-filter to get the spec's inclusive window.
    ignores_filters=True,
)

#: Klarschiff CitySDK (Rostock, Schwerin; reference §8.5).
KLARSCHIFF = Profile(
    name="klarschiff",
    # POST requires email and description (klarschiff-citysdk README, §3.5, §10.35). Its
    # `media` is a base64 string, which no media style here sends: media stays a URL.
    required_fields=("email", "description"),
)

#: Helsinki palautews, CitySDK (reference §8.5).
HELSINKI = Profile(
    name="helsinki",
    # The swagger marks description required and takes files as multipart media[] (§8.5,
    # v2.1 draft §8.2; codeforamerica/three PR #9 names Helsinki among multipart servers).
    required_fields=("description",),
    media="multipart_array",
)

#: 6aika issue-reporting (Turku; reference §8.5, §8.1.1).
SIXAIKA = Profile(
    name="sixaika",
    # page_size (or per_page) default 100, max 500; ask for the max (`issues/api/pagination.py`).
    paging="page",
    page_size=500,
    first_page=1,
    result_cap=500,
    # The `media` extension takes multipart files named `media`, repeatable (§8.5).
    media="multipart",
    # It reads `address`, not the spec's `address_string`: an address-only report got a 500
    # (reference/real-servers/A_post_address_string_only, issue 11 point 10).
    form_names={"address_string": "address"},
)

#: Mark-a-Spot (Bonn; reference §8.8). The Drupal-8 module answers at most `limit` rows,
#: default 25 (max 50), and documents no offset to page with: so no paging, and 25 rows may
#: be a cut answer. Whether the live Drupal-7 servers share this is uncertain (§12).
MARK_A_SPOT = Profile(name="mark_a_spot", result_cap=25)

#: Toronto, Lagan CRM (reference §9): page/page_size (Extensions page, §8.1.1). It refuses
#: milliseconds in dates (open311status #4), which no date style sends.
TORONTO = Profile(name="toronto", paging="page")

#: Alexandria, VA (reference §9): XML only, and `deflate` in Accept-Encoding breaks it
#: (`Zlib::DataError`; open311status sends an empty Accept-Encoding, §10.37).
ALEXANDRIA = Profile(name="alexandria", format="xml", force_format=True, accept_encoding="identity")

#: Washington, D.C. (reference §9): XML only (open311status, codeforamerica/three); its
#: discovery.json was not JSON (open311_java #15). Submissions answer tokens.
WASHINGTON_DC = Profile(name="washington_dc", format="xml", force_format=True)

#: mySociety open311-adapter (reference §3.5): list attributes as repeated `attribute[c]=v`.
OPEN311_ADAPTER = Profile(name="open311_adapter", multivalue="repeat")

#: SeeClickFix (reference §8.9, field notes §3): its JSON is "not compatible with the
#: standard", so open311_java forces XML; it supports `page` (open311.github.io #16).
SEECLICKFIX = Profile(name="seeclickfix", format="xml", force_format=True, paging="page")

#: The Accela Open311 adapter (reference §8.9): jurisdiction_id required, limit/offset paging.
ACCELA = Profile(name="accela", jurisdiction="required", paging="offset")

#: Every preset by name.
PROFILES: Mapping[str, Profile] = MappingProxyType(
    {
        profile.name: profile
        for profile in (
            SPEC,
            ACCELA,
            ALEXANDRIA,
            BLOOMINGTON,
            BOSTON,
            CHICAGO,
            CONNECTED_BITS,
            FIXMYSTREET,
            HELSINKI,
            KLARSCHIFF,
            MARK_A_SPOT,
            OPEN311_ADAPTER,
            SAN_FRANCISCO,
            SEECLICKFIX,
            SIXAIKA,
            TORONTO,
            WASHINGTON_DC,
        )
    }
)
