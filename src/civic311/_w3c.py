"""W3C datetimes (the ISO 8601 profile GeoReport v2 uses, spec §6): read as servers write
them, written as every server accepts them. A leaf: the converter, validation and discovery
share it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from civic311._regex import on_first_use
from civic311.errors import InvalidRequestError

__all__ = ["format_datetime", "parse_datetime"]


_w3c = on_first_use(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


#: The shape nearly every server writes (``2010-04-14T06:37:38-08:00``, or ``…Z``). These take
#: a fast path through `datetime.fromisoformat` (C); anything else, and anything that path
#: refuses (a 13th month, a 24-hour offset), is left to the general parser below.
_common = on_first_use(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)?")


_fromisoformat = datetime.fromisoformat

#: Zone suffix (as matched, None for none) → tzinfo. Bounded: the pattern admits a few thousand
#: spellings at most, and a server uses one or two (datetime decoding is a hot path).
_ZONES: dict[str | None, timezone] = {}


def _zone(zone: str | None) -> timezone:
    if zone is None or zone in "Zz":
        tz = timezone.utc
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        tz = timezone(sign * offset) if offset else timezone.utc
    _ZONES[zone] = tz
    return tz


def parse_datetime(text: str) -> datetime:
    """Parse a W3C/ISO 8601 datetime as servers write it; always timezone-aware.

    No zone is read as UTC (the spec requires one, §6.1; Chicago-style servers omit it).

    Raises:
        ValueError: not a datetime in any form servers use.
    """
    stripped = text.strip()
    common = _common().fullmatch(stripped)
    if common is not None:
        try:
            if common.group(1) == "Z":  # Python 3.10's fromisoformat does not read "Z"
                return _fromisoformat(stripped[:19]).replace(tzinfo=timezone.utc)
            if common.group(1) is None:
                return _fromisoformat(stripped).replace(tzinfo=timezone.utc)
            return _fromisoformat(stripped)  # ±HH:MM; a zero offset gives timezone.utc
        except ValueError:
            pass  # out of range: the general path below raises its own error
    match = _w3c().match(stripped)
    if not match:
        raise ValueError(f"not a W3C datetime: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    tz = _ZONES.get(zone) or _zone(zone)
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=tz,
        )
    except ValueError as exc:
        raise ValueError(f"not a W3C datetime: {text!r} ({exc})") from None


def format_datetime(value: datetime, *, zone: bool = True) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC, no fractions — what every server accepts (§10.28).

    With ``zone=False`` the ``Z`` is left off (a profile option for servers that refuse it).

    Raises:
        InvalidRequestError: *value* is naive; civic311 will not guess its zone.
    """
    if not isinstance(value, datetime):
        raise InvalidRequestError("datetime", f"must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequestError(
            "datetime",
            f"{value.isoformat()} is naive; give it a timezone (e.g. tzinfo=timezone.utc)",
        )
    text = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return text + "Z" if zone else text
