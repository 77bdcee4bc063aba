"""What users hold: the GeoReport v2 models.

Field names are the spec's wire names (`service_code`, `service_request_id`, `lat`, `long`,
`requested_datetime`…), so a developer who knows the spec knows the models. The models carry
no wire concerns: XML, JSON, renames and quirks live in `civic311._wire`.

Conventions:

- ids, codes, keys and zipcodes are `str` (never int-cast: "001" and "06510" keep their zeros,
  reference §10.13, §10.15);
- datetimes are timezone-aware `datetime`;
- values a server may extend are open types: `Status`, `ServiceType` and `AttributeDatatype`
  are `str` subclasses that accept anything and still answer the questions that matter
  (`Status("Fixed").is_closed` is True);
- fields the spec does not name are kept in `extras`, never dropped, never fatal (§10.19).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import attrs

from civic311._w3c import format_datetime
from civic311.errors import ErrorDetail, InvalidRequestError
from civic311.media import MediaFile

__all__ = [
    "Attribute",
    "AttributeDatatype",
    "AttributeValue",
    "ErrorDetail",
    "NewRequest",
    "Receipt",
    "Service",
    "ServiceDefinition",
    "ServiceRequest",
    "ServiceType",
    "Status",
    "TokenStatus",
]


def _norm(value: str) -> str:
    return value.strip().lower().replace(" ", "_").replace("-", "_")


class Status(str):
    """A request's status: any value a server sends, kept as sent.

    The spec knows ``open`` and ``closed``; servers send ``submitted`` (Baltimore),
    ``Received`` (Accela), ``fixed``, ``in_progress``, ``duplicate``… (FixMyStreet, reference
    §10.21). `is_closed` answers the one question every caller has.
    """

    __slots__ = ()

    OPEN: ClassVar[Status]
    CLOSED: ClassVar[Status]

    #: Statuses that mean the city is done with the request (normalised: lower case, ``_``).
    #: FixMyStreet's extended set (reference §8.7) and Klarschiff's (§8.5) included.
    CLOSED_VALUES: ClassVar[frozenset[str]] = frozenset(
        {
            "closed",
            "fixed",
            "resolved",
            "completed",
            "complete",
            "done",
            "duplicate",
            "no_further_action",
            "not_councils_responsibility",
            "not_responsible",
            "unable_to_fix",
            "internal_referral",
            "cancelled",
            "canceled",
            "rejected",
            "processed",
            "archived",
        }
    )

    @property
    def normalized(self) -> str:
        """The value in lower case with ``_`` for spaces and dashes (``"In Progress"`` →
        ``"in_progress"``)."""
        return _norm(self)

    @property
    def is_closed(self) -> bool:
        """Whether the city considers the request finished (closed, fixed, duplicate…)."""
        return _norm(self) in self.CLOSED_VALUES

    @property
    def is_open(self) -> bool:
        """The opposite of `is_closed`: anything not known to be finished is still open."""
        return not self.is_closed


Status.OPEN = Status("open")
Status.CLOSED = Status("closed")


class ServiceType(str):
    """How a service answers a POST: ``realtime`` (an id), ``batch`` (a token) or
    ``blackbox`` (neither) — spec §3.1. Unknown values are kept."""

    __slots__ = ()

    REALTIME: ClassVar[ServiceType]
    BATCH: ClassVar[ServiceType]
    BLACKBOX: ClassVar[ServiceType]

    @property
    def gives_token(self) -> bool:
        """A batch service answers a POST with a token to exchange for an id later."""
        return _norm(self) == "batch"

    @property
    def gives_id(self) -> bool:
        """A realtime service answers a POST with the service_request_id at once."""
        return _norm(self) == "realtime"


ServiceType.REALTIME = ServiceType("realtime")
ServiceType.BATCH = ServiceType("batch")
ServiceType.BLACKBOX = ServiceType("blackbox")


class AttributeDatatype(str):
    """An attribute's datatype (spec §3.3): string, number, datetime, text, singlevaluelist,
    multivaluelist. Servers add their own (uReport emits whatever is configured); kept as sent."""

    __slots__ = ()

    KNOWN: ClassVar[frozenset[str]] = frozenset(
        {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}
    )

    @property
    def is_list(self) -> bool:
        """Whether values must be keys from the attribute's `values`."""
        return _norm(self) in {"singlevaluelist", "multivaluelist"}

    @property
    def is_multi(self) -> bool:
        """Whether several values may be chosen (sent as ``attribute[code][]``)."""
        return _norm(self) == "multivaluelist"


_STRING = AttributeDatatype("string")


def _extras() -> Any:
    return attrs.field(factory=dict, hash=False, kw_only=True, repr=False)


@attrs.frozen
class Service:
    """A service type a city accepts reports for (GET services, spec §2.1)."""

    service_code: str
    service_name: str | None = None
    description: str | None = None
    metadata: bool = False
    type: ServiceType | None = None
    keywords: tuple[str, ...] = ()
    group: str | None = None
    extras: Mapping[str, Any] = _extras()


@attrs.frozen
class AttributeValue:
    """One option of a list attribute: send `key`, show `name`."""

    key: str
    name: str | None = None


def _attribute_order(attr: Attribute) -> tuple[int, int]:
    # Spec §3.3: "1 is shown first". Missing orders go last, keeping the server's sequence
    # (a stable sort), since order may be missing or duplicated (reference §10.38).
    return (0, attr.order) if attr.order is not None else (1, 0)


def _sorted_attributes(attributes: Sequence[Attribute]) -> tuple[Attribute, ...]:
    return tuple(sorted(attributes, key=_attribute_order))


@attrs.frozen
class Attribute:
    """A question a service asks when a request is filed (spec §3.3)."""

    code: str
    datatype: AttributeDatatype = _STRING
    required: bool = False
    variable: bool = True
    description: str | None = None
    datatype_description: str | None = None
    order: int | None = None
    values: tuple[AttributeValue, ...] = ()
    extras: Mapping[str, Any] = _extras()

    def value_keys(self) -> frozenset[str]:
        """The keys a list attribute accepts."""
        return frozenset(v.key for v in self.values)


@attrs.frozen
class ServiceDefinition:
    """The attributes a service asks for (GET services/{code}, spec §2.2), sorted by `order`."""

    service_code: str
    attributes: tuple[Attribute, ...] = attrs.field(default=(), converter=_sorted_attributes)
    extras: Mapping[str, Any] = _extras()

    def attribute(self, code: str) -> Attribute | None:
        """The attribute with this code, if the service defines it."""
        for attr in self.attributes:
            if attr.code == code:
                return attr
        return None


@attrs.frozen
class ServiceRequest:
    """A service request as a city reports it (GET requests, spec §2.5, §3.4).

    `service_request_id` is None only for requests the city has not created yet (Baltimore's
    token-only answers, reference §10.4); such a request carries its `token` instead.
    """

    service_request_id: str | None
    status: Status | None = None
    status_notes: str | None = None
    service_name: str | None = None
    service_code: str | None = None
    description: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    requested_datetime: datetime | None = None
    updated_datetime: datetime | None = None
    expected_datetime: datetime | None = None
    address: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None
    token: str | None = None
    extras: Mapping[str, Any] = _extras()

    @property
    def is_closed(self) -> bool:
        """Whether the city considers this request finished."""
        return self.status is not None and self.status.is_closed


@attrs.frozen
class Receipt:
    """What a city answers to a POST (spec §3.6).

    A realtime service gives `service_request_id`; a batch service gives a `token` (exchange
    it with `wait_for_id`); a blackbox service may give neither, and that is success.

    `reconciled` says how civic311 came by it: the POST's answer was lost (a timeout, a
    dropped connection, a 502) and civic311 found the request it had created on the server
    instead of sending it again. (A request waiting in a `civic311.outbox.Outbox` has no receipt
    yet: the outbox's `OutboxEntry` says where it stands.)
    """

    service_request_id: str | None = None
    token: str | None = None
    service_notice: str | None = None
    account_id: str | None = None
    reconciled: bool = attrs.field(default=False, kw_only=True)
    extras: Mapping[str, Any] = _extras()

    @property
    def tracking_id(self) -> str | None:
        """The id if there is one, else the token: the best handle to follow the request."""
        return self.service_request_id or self.token


@attrs.frozen
class TokenStatus:
    """The answer to GET tokens/{token} (spec §2.4): an id, or None while still pending."""

    token: str
    service_request_id: str | None = None
    extras: Mapping[str, Any] = _extras()

    @property
    def pending(self) -> bool:
        """The city has not created the request yet; ask again later."""
        return self.service_request_id is None


# --- NewRequest -------------------------------------------------------------------------------

#: Spec §3.4: "limited to 4,000 characters".
MAX_DESCRIPTION = 4000

_AttrValue = str | tuple[str, ...]


def _attribute_text(value: object, field: str) -> str:
    """A number, boolean or datetime attribute value as the text a form carries.

    open311-adapter's ``number`` attribute (reference/real-servers/B_definition_POT) is
    naturally given as ``7``; asking for ``"7"`` made the caller convert (issue 11 point 11).
    Booleans are ``true``/``false``, numbers plain decimals (never exponents, never nan or
    inf), datetimes W3C in UTC (§10.28). `civic311.validation` then checks the text against
    the attribute's datatype, as for a string.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequestError(field, f"must be a finite number, got {value!r}")
        from decimal import Decimal  # here: `decimal` costs `import civic311` ~1 ms

        # The shortest round-tripping digits (repr), written without an exponent.
        text = format(Decimal(repr(value)), "f")
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, datetime):
        try:
            return format_datetime(value)
        except InvalidRequestError as exc:
            raise InvalidRequestError(field, str(exc).split(": ", 1)[-1]) from None
    raise InvalidRequestError(
        field,
        "must be a string, a number, a boolean, a datetime or a sequence of strings, "
        f"not {type(value).__name__}",
    )


def _freeze_attributes(value: object) -> dict[str, _AttrValue]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRequestError(
            "attributes", f"must be a mapping of code to value, not {type(value).__name__}"
        )
    frozen: dict[str, _AttrValue] = {}
    for code, item in value.items():
        if not isinstance(code, str) or not code.strip():
            raise InvalidRequestError("attributes", f"codes must be non-empty strings: {code!r}")
        field = f"attributes[{code}]"
        _utf8("attributes", code)
        if isinstance(item, str):
            _utf8(field, item)
            frozen[code] = item
        elif isinstance(item, Sequence) and not isinstance(item, bytes | bytearray):
            values = tuple(
                _attribute_text(v, field) if isinstance(v, int) and not isinstance(v, bool) else v
                for v in item
            )
            bad = [v for v in values if not isinstance(v, str)]
            if bad:
                raise InvalidRequestError(
                    field, f"list values must be strings (keys), got {type(bad[0]).__name__}"
                )
            for text in values:
                _utf8(field, text)
            frozen[code] = values
        else:
            frozen[code] = _attribute_text(item, field)
    return frozen


def _freeze_media(value: object) -> tuple[MediaFile, ...]:
    if value is None:
        return ()
    if isinstance(value, MediaFile):
        return (value,)
    if isinstance(value, str | bytes | bytearray | memoryview) or not isinstance(value, Sequence):
        raise InvalidRequestError(
            "media",
            f"must be a MediaFile or a list of them, not {type(value).__name__} "
            "(build one with MediaFile.from_path, from_bytes or from_file)",
        )
    files = tuple(value)
    for index, item in enumerate(files):
        if not isinstance(item, MediaFile):
            raise InvalidRequestError(
                f"media[{index}]",
                f"must be a civic311.MediaFile, not {type(item).__name__} "
                "(build one with MediaFile.from_path, from_bytes or from_file)",
            )
    return files


def _media_url(value: str, field: str) -> str:
    url = value.strip()
    if not url:
        raise InvalidRequestError(field, "must not be empty")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InvalidRequestError(field, f"must be an http(s) URL, got {url!r}")
    if any(c.isspace() for c in url):
        raise InvalidRequestError(field, f"must not contain spaces, got {url!r}")
    return url


def _freeze_media_url(value: object) -> str | tuple[str, ...] | None:
    # One URL stays a str, several become a tuple; blank means "not given" (spec §1.5), the
    # way every other optional text field of a NewRequest treats it.
    if value is None:
        return None
    if isinstance(value, str):
        return _media_url(value, "media_url") if value.strip() else None
    if isinstance(value, bytes | bytearray) or not isinstance(value, Sequence):
        raise InvalidRequestError(
            "media_url", f"must be a URL or a list of URLs, not {type(value).__name__}"
        )
    urls: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidRequestError(
                f"media_url[{index}]", f"must be a string, not {type(item).__name__}"
            )
        urls.append(_media_url(item, f"media_url[{index}]"))
    if not urls:
        return None
    return urls[0] if len(urls) == 1 else tuple(urls)


def _utf8(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(
            name, f"holds characters that cannot be sent as UTF-8 ({exc.reason})"
        ) from None


def _optional_text(name: str) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, str):
            raise InvalidRequestError(name, f"must be a string, not {type(value).__name__}")
        if value is not None:
            _utf8(name, value)

    return attrs.field(default=None, validator=check, kw_only=True)


def _coordinate(name: str, bound: float) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequestError(name, f"must be a number, not {type(value).__name__}")
        if not math.isfinite(value) or not -bound <= value <= bound:
            raise InvalidRequestError(name, f"must be within ±{bound:g}, got {value!r}")

    return attrs.field(default=None, validator=check, kw_only=True)


@attrs.frozen
class NewRequest:
    """A service request to file (POST requests, spec §2.3, §3.5). It checks itself when built.

    Rules (each failure raises `InvalidRequestError` naming the field):

    - `service_code` is a non-empty string;
    - a location is given: `lat` and `long` together, or `address_string`, or `address_id`;
    - `lat` is within ±90 and `long` within ±180;
    - `attributes` maps codes to a string, or a sequence of strings for multivaluelist; a
      number, boolean or datetime is taken too and kept as its form text (``7`` → ``"7"``,
      ``True`` → ``"true"``, datetimes W3C in UTC), which ``validate=True`` checks against
      the attribute's datatype;
    - `description` is at most 4,000 characters (spec §3.4).

    Attribute values are the option *keys* for list attributes (spec §3.5).

    Media, two ways (reference §10.36):

    - `media_url`: the URL of a photo hosted elsewhere (the spec's way). Give one URL, or a
      list of several for cities that take repeated ``media_url`` fields (FixMyStreet, §3.5).
      Each must be an http(s) URL. One URL is kept as a ``str``, several as a ``tuple``;
      an empty string means none (spec §1.5).
    - `media`: files to upload (`civic311.media.MediaFile`; a single one or a list), for cities
      that take ``multipart/form-data`` (Bloomington one ``media`` part, §8.6; Helsinki and
      6aika several ``media[]`` parts, §8.5). `civic311.validation.validate` does not check
      them against the city: the client refuses what the city's profile cannot take.
    """

    service_code: str = attrs.field()
    lat: float | None = _coordinate("lat", 90.0)
    long: float | None = _coordinate("long", 180.0)
    address_string: str | None = _optional_text("address_string")
    address_id: str | None = _optional_text("address_id")
    description: str | None = _optional_text("description")
    email: str | None = _optional_text("email")
    device_id: str | None = _optional_text("device_id")
    account_id: str | None = _optional_text("account_id")
    first_name: str | None = _optional_text("first_name")
    last_name: str | None = _optional_text("last_name")
    phone: str | None = _optional_text("phone")
    media_url: str | tuple[str, ...] | None = attrs.field(
        default=None, converter=_freeze_media_url, kw_only=True
    )
    attributes: Mapping[str, _AttrValue] = attrs.field(
        factory=dict, converter=_freeze_attributes, kw_only=True, hash=False
    )
    media: tuple[MediaFile, ...] = attrs.field(factory=tuple, converter=_freeze_media, kw_only=True)

    @service_code.validator
    def _check_code(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str):
            raise InvalidRequestError(
                "service_code", f"must be a string, not {type(value).__name__}"
            )
        if not value.strip():
            raise InvalidRequestError("service_code", "is required and must not be empty")
        _utf8("service_code", value)

    def __attrs_post_init__(self) -> None:
        if (self.lat is None) != (self.long is None):
            missing = "long" if self.long is None else "lat"
            raise InvalidRequestError(missing, "lat and long must be sent together (spec §3.5)")
        has_point = self.lat is not None
        if not (has_point or _given(self.address_string) or _given(self.address_id)):
            raise InvalidRequestError(
                "location",
                "a location is required: lat and long, or address_string, or address_id "
                "(spec §3.5)",
            )
        if self.description is not None and len(self.description) > MAX_DESCRIPTION:
            raise InvalidRequestError(
                "description",
                f"is {len(self.description)} characters; the spec allows {MAX_DESCRIPTION}",
            )


def _given(value: str | None) -> bool:
    return value is not None and value.strip() != ""
