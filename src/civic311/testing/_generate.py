"""Seeded historical requests: a city with a past, for harvesting and tracking tests.

`FakeCity.generate_requests(n, start=…, end=…, burst=…)` lands here. The same store seed and
the same sequence of calls give the same requests: same ids, times, descriptions, places and
close times. A quarter of the requests never close on their own; the rest close between an hour
and three weeks after they were filed, so a window in the past is mostly closed and the last
days are mostly open. Lazy status evaluation (see `StoredRequest.status_at`) does the rest.

Built for speed: 100,000 requests take a second or two (plain loops, pre-computed tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from civic311.testing._model import AttributeValue, ServiceSpec, StoredRequest
from civic311.testing._store import CityStore

__all__ = ["generate"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Descriptions: plain text with what real reports contain - ampersands, angle brackets and
# non-ASCII letters (§10.27) - so that writers and parsers are exercised on every harvest.
_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "001": (
        "Deep pothole in the right lane",
        "Pothole near the crosswalk",
        "Several potholes after the frost",
        "Pothole & loose gravel on the shoulder",
        "Sinkhole forming by the storm drain",
    ),
    "002": (
        "Streetlight out for a week",
        "Light flickers all night",
        "Lamp on during the day",
        "Pole light dark at the corner",
    ),
    "003": (
        "Tags on the bus shelter",
        "Graffiti on the underpass wall",
        "Spray paint on the Café Müller shutters",
        "Graffiti <large> on the school fence",
    ),
    "004": (
        "Loud music after midnight",
        "Construction noise before 7am",
        "Barking dog all night",
        "Party at the Straße-Haus, very loud",
    ),
    "005": (
        "Recycling not collected on Tuesday",
        "Trash bins skipped on this street",
        "Bulk pick-up missed",
    ),
}
_STREETS = (
    "Chapel St",
    "Elm St",
    "Orange St",
    "Whitney Ave",
    "Crown St",
    "State St",
    "Dixwell Ave",
    "Ferry St",
    "Grand Ave",
    "Howard Ave",
)
# Zip codes with a leading zero (§10.15): a client that reads them as numbers loses it.
_ZIPCODES = ("06510", "06511", "06513", "06515", "06519")
_CLOSE_NOTES = (
    "Request resolved.",
    "Repaired by the crew.",
    "Duplicate of an earlier request.",
    "Could not locate the problem.",
    "Referred to the responsible agency.",
)
_CENTER_LAT = 41.3083
_CENTER_LONG = -72.9279
_OPEN_SHARE = 0.25
_MIN_CLOSE = 3600.0
_MAX_CLOSE = 21 * 86400.0


def _attributes(service: ServiceSpec, pick: float) -> dict[str, AttributeValue]:
    values: dict[str, AttributeValue] = {}
    for attribute in service.attributes:
        if not (attribute.variable and attribute.required):
            continue
        if attribute.values:
            key = attribute.values[int(pick * len(attribute.values))].key
            values[attribute.code] = (key,) if attribute.datatype == "multivaluelist" else key
        else:
            values[attribute.code] = "1" if attribute.datatype == "number" else "n/a"
    return values


def generate(
    store: CityStore,
    n: int,
    start: datetime,
    end: datetime,
    burst: tuple[datetime, int, float] | None,
) -> list[StoredRequest]:
    """Make *n* requests spread over [start, end), plus a burst, and store them (oldest first)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError("end must be after start")
    services: Sequence[ServiceSpec] = store.services()
    if not services:
        raise ValueError("the city has no services to generate requests for")
    rng = store.next_generation_rng()
    random = rng.random

    start_ts = start.timestamp()
    span = end.timestamp() - start_ts
    stamps = [start_ts + random() * span for _ in range(n)]
    if burst is not None:
        at, count, seconds = burst
        if at.tzinfo is None or count < 0 or seconds <= 0:
            raise ValueError("burst is (aware datetime, count >= 0, span_seconds > 0)")
        at_ts = at.timestamp()
        stamps.extend(at_ts + random() * seconds for _ in range(count))
    # Whole seconds: the wire format has no fractions, and equal stamps must stay equal.
    seconds_list = sorted(int(s) for s in stamps)

    first_id = store.reserve_ids(len(seconds_list))
    descriptions = [_DESCRIPTIONS.get(s.service_code) for s in services]
    attribute_sets = [[_attributes(s, k / 4) for k in range(4)] for s in services]
    n_services = len(services)
    records: list[StoredRequest] = []
    append = records.append
    for offset, ts in enumerate(seconds_list):
        index = int(random() * n_services)
        service = services[index]
        requested = _EPOCH + timedelta(seconds=ts)
        texts = descriptions[index]
        description = (
            texts[int(random() * len(texts))] if texts else f"{service.service_name} reported"
        )
        close_at = progress_at = None
        if random() >= _OPEN_SHARE:
            after = _MIN_CLOSE + random() * random() * (_MAX_CLOSE - _MIN_CLOSE)
            close_at = requested + timedelta(seconds=int(after))
            if random() < 0.5:
                progress_at = requested + timedelta(seconds=int(after / 2))
        service_request_id = str(first_id + offset)
        append(
            StoredRequest(
                service_request_id=service_request_id,
                service_code=service.service_code,
                service_name=service.service_name,
                requested_datetime=requested,
                description=description,
                lat=round(_CENTER_LAT + (random() - 0.5) * 0.05, 6),
                long=round(_CENTER_LONG + (random() - 0.5) * 0.06, 6),
                address=f"{int(random() * 1500) + 1} {_STREETS[int(random() * len(_STREETS))]}",
                zipcode=_ZIPCODES[int(random() * len(_ZIPCODES))],
                media_url=(
                    f"https://media.fakecity.test/{service_request_id}.jpg"
                    if random() < 0.1
                    else None
                ),
                attributes=attribute_sets[index][int(random() * 4)],
                agency_responsible=service.agency_responsible,
                service_notice=service.service_notice,
                close_at=close_at,
                close_notes=_CLOSE_NOTES[int(random() * len(_CLOSE_NOTES))],
                progress_at=progress_at,
                origin="generated",
            )
        )
    store.add_many(records)
    return records
