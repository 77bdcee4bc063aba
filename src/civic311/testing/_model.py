"""What a FakeCity knows: its services (with definitions) and the requests filed with it.

These are the *server's* records, not the client's models: plain frozen attrs classes with the
spec's wire names (reference §3), so a test can read `city.get("600001").service_code` and
compare it with what a client sent.

* `ServiceSpec` - one entry of GET services (§3.1) plus how the fake city treats it:
  `close_after` (seconds until a new request closes), `service_notice`, `agency_responsible`.
* `AttributeSpec` / `ValueSpec` - the service definition (§3.2, §3.3).
* `StoredRequest` - one service request as stored. Its status is not a field: a request has a
  scheduled close time and reads evaluate it against the city's clock (`status_at(now)`), so
  letting a `VirtualClock` run is how requests get closed.
* `StoredMedia` - what the city kept of one uploaded file: name, type, size and SHA-256 (the
  bytes themselves are not kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Literal

import attrs

__all__ = [
    "ATTRIBUTE_DATATYPES",
    "AttributeSpec",
    "Datatype",
    "Origin",
    "ServiceSpec",
    "ServiceType",
    "StoredMedia",
    "StoredRequest",
    "ValueSpec",
    "default_services",
]

Datatype = Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
ServiceType = Literal["realtime", "batch", "blackbox"]
#: How a stored request came to be: filed through POST requests, made by `generate_requests`,
#: or put there directly by a test with `FakeCity.add_request`.
Origin = Literal["post", "generated", "added"]

ATTRIBUTE_DATATYPES: tuple[Datatype, ...] = (
    "string",
    "number",
    "datetime",
    "text",
    "singlevaluelist",
    "multivaluelist",
)
_LIST_TYPES = ("singlevaluelist", "multivaluelist")


@attrs.frozen
class ValueSpec:
    """One option of a list attribute: `key` is what clients send, `name` what users see."""

    key: str
    name: str


def _values(items: Iterable[ValueSpec]) -> tuple[ValueSpec, ...]:
    items = tuple(items)
    for item in items:
        if not isinstance(item, ValueSpec):
            raise TypeError(f"values must hold ValueSpec, got {type(item).__name__}")
    return items


@attrs.frozen
class AttributeSpec:
    """One attribute of a service definition (reference §3.3).

    `variable=False` marks an informational attribute: it is shown to the user and must not
    be sent back. List datatypes need `values`.
    """

    code: str
    datatype: Datatype = attrs.field(validator=attrs.validators.in_(ATTRIBUTE_DATATYPES))
    description: str
    required: bool = False
    variable: bool = True
    order: int | None = None
    datatype_description: str | None = None
    values: tuple[ValueSpec, ...] = attrs.field(default=(), converter=_values)

    def __attrs_post_init__(self) -> None:
        if self.datatype in _LIST_TYPES and not self.values:
            raise ValueError(f"attribute {self.code!r}: a {self.datatype} needs values")

    @property
    def keys(self) -> frozenset[str]:
        """The value keys a client may send for this attribute."""
        return frozenset(v.key for v in self.values)


def _attributes(items: Iterable[AttributeSpec]) -> tuple[AttributeSpec, ...]:
    items = tuple(items)
    for item in items:
        if not isinstance(item, AttributeSpec):
            raise TypeError(f"attributes must hold AttributeSpec, got {type(item).__name__}")
    return items


@attrs.frozen
class ServiceSpec:
    """A service the fake city offers (reference §3.1), and how the city handles its requests.

    * `type` - ``realtime`` (POST answers an id), ``batch`` (POST answers a token, §2.4) or
      ``blackbox`` (POST answers neither; the request is still stored).
    * `close_after` - seconds after which a newly filed request closes (None: never).
    * `metadata` is derived: true exactly when the service has attributes.
    """

    service_code: str
    service_name: str
    type: ServiceType = attrs.field(
        default="realtime", validator=attrs.validators.in_(("realtime", "batch", "blackbox"))
    )
    description: str | None = None
    keywords: str | None = None
    group: str | None = None
    attributes: tuple[AttributeSpec, ...] = attrs.field(default=(), converter=_attributes)
    close_after: float | None = 3 * 86400.0
    service_notice: str | None = None
    agency_responsible: str | None = None

    @property
    def metadata(self) -> bool:
        """True when the service has a definition worth fetching (it has attributes)."""
        return bool(self.attributes)

    def attribute(self, code: str) -> AttributeSpec | None:
        """The attribute with this code, or None."""
        for attribute in self.attributes:
            if attribute.code == code:
                return attribute
        return None


AttributeValue = str | tuple[str, ...]


@attrs.frozen
class StoredMedia:
    """One file uploaded with a POST (multipart ``media`` / ``media[]``, reference §8.2, §8.5,
    §8.6), as the city records it: enough to check what a client sent, not the bytes.

    * `field` - the part's name as sent (``media`` or ``media[]``).
    * `url` - where the city says the file is: ``{base}/media/{id}/{n}`` (n from 1), *base*
      being the city's base URL as the client reached it (``http://fakecity.test/open311/v2``
      in process, ``http://127.0.0.1:PORT/open311/v2`` when served). It is also among the
      request's `media_urls`. The city does not serve the file back.
    """

    field: str
    filename: str
    content_type: str
    size: int
    sha256: str
    url: str


@attrs.frozen(eq=False)
class StoredRequest:
    """One service request as the fake city stores it.

    Fields use the spec's wire names (§3.4, §3.5). `attributes` holds what the client sent,
    decoded (``{"SURFACE": ("brick", "metal")}``), including codes the service does not know.
    The status is computed: see `status_at`, `status_notes_at` and `updated_at`.

    * `close_at` - when the request closes (None: it stays open until `FakeCity.close_request`).
    * `progress_at` - when a "work in progress" status note appears (None: never).
    * `visible_from` - a batch request is not listed until its token has been processed.
    * `token` - the token handed out for a batch service, else None.
    * `media_urls` - for a request filed by POST, every media URL it came with: those of
      uploaded files first (files take precedence, v2.1 draft §8.2), then each ``media_url``
      field as sent (FixMyStreet repeats it, §3.5). `media_url`, the one the spec's GET shows,
      is the first of them. Added and generated requests have only `media_url`.
    * `media` - the files uploaded with the POST (`StoredMedia`), in order.
    """

    service_request_id: str
    service_code: str
    service_name: str
    requested_datetime: datetime
    description: str | None = None
    lat: float | None = None
    long: float | None = None
    address: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    media_url: str | None = None
    email: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    attributes: Mapping[str, AttributeValue] = attrs.field(factory=dict)
    agency_responsible: str | None = None
    service_notice: str | None = None
    close_at: datetime | None = None
    close_notes: str = "Request resolved."
    progress_at: datetime | None = None
    progress_notes: str = "Assigned to a crew."
    token: str | None = None
    visible_from: datetime | None = None
    jurisdiction_id: str | None = None
    origin: Origin = "added"
    media_urls: tuple[str, ...] = ()
    media: tuple[StoredMedia, ...] = ()

    def status_at(self, now: datetime) -> Literal["open", "closed"]:
        """``closed`` once `close_at` has passed on *now*, else ``open``."""
        if self.close_at is not None and now >= self.close_at:
            return "closed"
        return "open"

    def status_notes_at(self, now: datetime) -> str | None:
        """The status notes a reader sees at *now* (None before any change)."""
        if self.close_at is not None and now >= self.close_at:
            return self.close_notes
        if self.progress_at is not None and now >= self.progress_at:
            return self.progress_notes
        return None

    def updated_at(self, now: datetime) -> datetime:
        """The last modification seen at *now*: for closed requests, the close time (§3.4)."""
        if self.close_at is not None and now >= self.close_at:
            return self.close_at
        if self.progress_at is not None and now >= self.progress_at:
            return self.progress_at
        return self.requested_datetime

    def visible_at(self, now: datetime) -> bool:
        """False while a batch request waits for its token to be processed."""
        return self.visible_from is None or now >= self.visible_from

    @property
    def expected_datetime(self) -> datetime | None:
        """The scheduled close time, which the city publishes as its expected date."""
        return self.close_at

    def __repr__(self) -> str:
        return (
            f"StoredRequest(service_request_id={self.service_request_id!r}, "
            f"service_code={self.service_code!r}, "
            f"requested_datetime={self.requested_datetime.isoformat()!r}, origin={self.origin!r})"
        )


_DAY = 86400.0


def default_services() -> list[ServiceSpec]:
    """The default city's catalogue: one service of each kind the reference describes.

    * ``001`` Pothole (realtime) - attributes of the free-text datatypes, one informational.
    * ``002`` Streetlight out (realtime) - an optional `singlevaluelist` with numeric keys.
    * ``003`` Graffiti removal (realtime) - a *required* `multivaluelist`.
    * ``004`` Noise complaint (batch) - POST answers a token, no metadata.
    * ``005`` Missed trash pick-up (blackbox) - POST answers neither id nor token.
    """
    return [
        ServiceSpec(
            service_code="001",
            service_name="Pothole",
            type="realtime",
            description="A hole or depression in the surface of a street.",
            keywords="pothole, road, street",
            group="streets",
            close_after=2 * _DAY,
            service_notice="The City will inspect the location within two business days.",
            agency_responsible="Department of Public Works",
            attributes=(
                AttributeSpec(
                    code="SAFETY",
                    datatype="string",
                    description="If the pothole is a danger to traffic, also call 911.",
                    variable=False,
                    order=1,
                ),
                AttributeSpec(
                    code="DEPTH",
                    datatype="number",
                    description="About how deep is it, in centimetres?",
                    order=2,
                    datatype_description="A number, e.g. 7.5",
                ),
                AttributeSpec(
                    code="LANE",
                    datatype="string",
                    description="Which lane is it in?",
                    order=3,
                ),
                AttributeSpec(
                    code="NOTICED",
                    datatype="datetime",
                    description="When did you first notice it?",
                    order=4,
                    datatype_description="ISO 8601, e.g. 2026-01-01T08:00:00Z",
                ),
                AttributeSpec(
                    code="DETAILS",
                    datatype="text",
                    description="Anything else the crew should know?",
                    order=5,
                ),
            ),
        ),
        ServiceSpec(
            service_code="002",
            service_name="Streetlight out",
            type="realtime",
            description="A streetlight that is out, flickering or on during the day.",
            keywords="light, streetlight, lamp",
            group="streets",
            close_after=5 * _DAY,
            service_notice="Streetlights are usually repaired within a week.",
            agency_responsible="Street Lighting Division",
            attributes=(
                AttributeSpec(
                    code="LIGHTTYPE",
                    datatype="singlevaluelist",
                    description="What kind of light is it?",
                    order=1,
                    values=(
                        ValueSpec("123", "Street light on a pole"),
                        ValueSpec("124", "Alley light"),
                        ValueSpec("125", "Park path light"),
                    ),
                ),
            ),
        ),
        ServiceSpec(
            service_code="003",
            service_name="Graffiti removal",
            type="realtime",
            description="Graffiti on public property.",
            keywords="graffiti, vandalism, paint",
            group="sanitation",
            close_after=7 * _DAY,
            agency_responsible="Graffiti Abatement",
            attributes=(
                AttributeSpec(
                    code="SURFACE",
                    datatype="multivaluelist",
                    description="What is the graffiti on? Choose all that apply.",
                    required=True,
                    order=1,
                    values=(
                        ValueSpec("brick", "Brick or stone"),
                        ValueSpec("metal", "Metal"),
                        ValueSpec("wood", "Wood"),
                        ValueSpec("glass", "Glass"),
                    ),
                ),
                AttributeSpec(
                    code="OFFENSIVE",
                    datatype="singlevaluelist",
                    description="Is it offensive?",
                    required=False,
                    order=2,
                    values=(ValueSpec("Y", "Yes"), ValueSpec("N", "No")),
                ),
            ),
        ),
        ServiceSpec(
            service_code="004",
            service_name="Noise complaint",
            type="batch",
            description="Loud music, parties, construction out of hours.",
            keywords="noise, music, party",
            group="quality of life",
            close_after=1 * _DAY,
            agency_responsible="Environmental Health",
        ),
        ServiceSpec(
            service_code="005",
            service_name="Missed trash pick-up",
            type="blackbox",
            description="Household trash or recycling that was not collected on schedule.",
            keywords="trash, garbage, recycling",
            group="sanitation",
            close_after=2 * _DAY,
            agency_responsible="Sanitation",
        ),
    ]
