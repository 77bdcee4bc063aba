"""The bundled registry of known GeoReport v2 cities, with their quirk profiles.

Each `City` says where a city's endpoints are (production and test), its ``jurisdiction_id``,
which `civic311.profiles.Profile` its server needs, how far the entry can be trusted
(`City.status`), where the facts come from, and other ways a resident can reach the city::

    from civic311 import cities

    chicago = cities.get("chicago")               # by key, name or alias; any case or accents
    chicago.endpoints("test")                     # ["http://test311api.cityofchicago.org/…"]
    chicago.profile.paging                        # "page"
    cities.search("koln")                         # [City(key='koeln', name='Köln', …)]
    cities.register(cities.City(key="springfield", name="Springfield", …))  # your own

The entries come from the reference (georeport-v2.md §9: the Open311 server list, the
open311status monitor, client issue trackers) and date from 2014-2021. Nobody has checked them
since, so almost all are ``"questioned"``: `check_usable` warns (`CityStatusWarning`) before
such a city is used, and refuses a ``"retired"`` one (`RetiredCityError`) unless asked not to.
Prefer a city's discovery document when it has one (`civic311.discovery`).

Registry fields (``registry.json``, one object per city, the same as `City`):

* ``key`` - a slug (``"san-francisco"``); ``name``; ``aliases`` (other names it is known by).
* ``country`` (English name), ``region`` (state, province, Land; or null).
* ``production`` / ``test`` - base URLs, primary first (failover order).
* ``jurisdiction_id`` - to send, or null (spec §1.3).
* ``formats`` - ``"json"`` and/or ``"xml"``: XML always (spec §1.2); JSON unless it is known
  to be missing or broken there.
* ``discovery_url`` - the city's Service Discovery document, or null.
* ``api_key`` - who needs a key: ``"post"`` (the spec: submissions only), ``"all"`` (reads
  too), ``"none"``, ``"unknown"``; ``api_key_url`` - where to ask for one.
* ``profile`` - a preset name from `civic311.profiles.PROFILES`, or an inline profile object
  (`Profile.from_dict`, which may start from a preset with ``"base"``).
* ``status`` - ``"active"``, ``"questioned"`` or ``"retired"``; ``status_reason`` says why.
* ``source`` - where the facts come from; ``notes`` - quirks worth knowing.
* ``channels`` - other ways in: ``web``, ``phone``, ``social`` (null where not known);
  ``contact`` - the discovery document's contact text, when known.

The JSON is read on first use, not when `civic311` is imported.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
import unicodedata
import warnings
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from civic311.errors import (
    CityStatusWarning,
    InvalidRequestError,
    RetiredCityError,
    UnknownCityError,
)
from civic311.profiles import PROFILES, Profile

__all__ = [
    "ApiKeyPolicy",
    "Channels",
    "City",
    "CityStatus",
    "CityStatusWarning",
    "Environment",
    "RetiredCityError",
    "UnknownCityError",
    "all_cities",
    "check_usable",
    "get",
    "register",
    "search",
    "unregister",
]

ApiKeyPolicy = Literal["post", "all", "none", "unknown"]
CityStatus = Literal["active", "questioned", "retired"]
Environment = Literal["production", "test"]
FormatName = Literal["json", "xml"]

_API_KEY_POLICIES = ("post", "all", "none", "unknown")
_STATUSES = ("active", "questioned", "retired")
_ENVIRONMENTS = ("production", "test")


# -- the model ---------------------------------------------------------------------------------


def _fail(attribute: attrs.Attribute[Any], message: str) -> InvalidRequestError:
    return InvalidRequestError(attribute.name, message)


def _text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _fail(attribute, f"must be a non-empty string, got {value!r}")


_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _slug(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        raise _fail(
            attribute, f"must be a slug of lower-case letters, digits and '-', got {value!r}"
        )


def _optional_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _text(instance, attribute, value)


def _one_of(*allowed: str) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in allowed:
            raise _fail(attribute, f"must be one of {', '.join(allowed)}, got {value!r}")

    return check


def _tuple(value: object) -> object:
    if isinstance(value, list):
        return tuple(value)
    return value


def _texts(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(attribute, f"must be a list of non-empty strings, got {value!r}")


def _check_url(field: str, url: object, *, base: bool = False) -> None:
    if not isinstance(url, str):
        raise InvalidRequestError(field, f"must be a URL string, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError(field, f"must be an http(s) URL with a host, got {url!r}")
    if base and (parts.query or parts.fragment):
        raise InvalidRequestError(field, f"a base URL must not carry a query or fragment: {url!r}")


def _base_urls(value: object) -> object:
    """Base URLs without a trailing slash (both spellings mean the same base, spec §1.1)."""
    if isinstance(value, list | tuple):
        return tuple(v.strip().rstrip("/") if isinstance(v, str) else v for v in value)
    return value


def _urls(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple):
        raise _fail(attribute, f"must be a list of URLs, got {value!r}")
    for url in value:
        _check_url(attribute.name, url, base=True)
    if len(set(value)) != len(value):
        raise _fail(attribute, f"lists a URL twice: {list(value)!r}")


def _optional_url(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _check_url(attribute.name, value)


def _formats(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        not isinstance(value, tuple)
        or not value
        or not set(value) <= {"json", "xml"}
        or len(set(value)) != len(value)
    ):
        raise _fail(attribute, f"must list 'json' and/or 'xml' once each, got {value!r}")


def _profile(value: object) -> object:
    """A preset name or an inline profile object becomes a `Profile`."""
    if isinstance(value, str):
        if value not in PROFILES:
            known = ", ".join(sorted(PROFILES))
            raise InvalidRequestError("profile", f"unknown preset {value!r}; known: {known}")
        return PROFILES[value]
    if isinstance(value, Mapping):
        return Profile.from_dict(value)
    return value


def _check_profile(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Profile):
        raise _fail(attribute, f"must be a Profile, a preset name or a profile object: {value!r}")


@attrs.frozen(kw_only=True)
class Channels:
    """Other ways to reach a city than its API, each None when not known.

    Attributes:
        web: A web form or 311 portal URL.
        phone: A phone number (``"311"`` where the city runs a 311 line).
        social: A social-media account or page.
    """

    web: str | None = attrs.field(default=None, validator=_optional_url)
    phone: str | None = attrs.field(default=None, validator=_optional_text)
    social: str | None = attrs.field(default=None, validator=_optional_text)

    def describe(self) -> list[str]:
        """``["web: https://…", "phone: 311"]``: the known channels, for messages."""
        return [
            f"{name}: {value}"
            for name, value in (("web", self.web), ("phone", self.phone), ("social", self.social))
            if value is not None
        ]


def _channels(value: object) -> object:
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"web", "phone", "social"})
        if unknown:
            raise InvalidRequestError(
                "channels", f"unknown key(s) {', '.join(unknown)}; known: web, phone, social"
            )
        return Channels(**value)
    if value is None:
        return Channels()
    return value


@attrs.frozen(kw_only=True)
class City:
    """One GeoReport v2 city (or vendor platform) in the registry. See the module docstring
    for what each field means; `from_dict` reads the registry's JSON form."""

    key: str = attrs.field(validator=_slug)
    name: str = attrs.field(validator=_text)
    country: str = attrs.field(validator=_text)
    production: tuple[str, ...] = attrs.field(converter=_base_urls, validator=_urls)
    region: str | None = attrs.field(default=None, validator=_optional_text)
    aliases: tuple[str, ...] = attrs.field(default=(), converter=_tuple, validator=_texts)
    test: tuple[str, ...] = attrs.field(default=(), converter=_base_urls, validator=_urls)
    jurisdiction_id: str | None = attrs.field(default=None, validator=_optional_text)
    formats: tuple[FormatName, ...] = attrs.field(
        default=("json", "xml"), converter=_tuple, validator=_formats
    )
    discovery_url: str | None = attrs.field(default=None, validator=_optional_url)
    api_key: ApiKeyPolicy = attrs.field(default="unknown", validator=_one_of(*_API_KEY_POLICIES))
    api_key_url: str | None = attrs.field(default=None, validator=_optional_url)
    profile: Profile = attrs.field(
        default=Profile.SPEC, converter=_profile, validator=_check_profile
    )
    status: CityStatus = attrs.field(default="questioned", validator=_one_of(*_STATUSES))
    status_reason: str | None = attrs.field(default=None, validator=_optional_text)
    source: tuple[str, ...] = attrs.field(default=(), converter=_tuple, validator=_texts)
    channels: Channels = attrs.field(factory=Channels, converter=_channels)
    contact: str | None = attrs.field(default=None, validator=_optional_text)
    notes: str | None = attrs.field(default=None, validator=_optional_text)

    def __attrs_post_init__(self) -> None:
        if not self.production:
            raise InvalidRequestError("production", f"{self.key}: needs at least one base URL")
        if self.status != "active" and self.status_reason is None:
            raise InvalidRequestError(
                "status_reason", f"{self.key}: a {self.status} entry must say why"
            )
        if not isinstance(self.channels, Channels):
            raise InvalidRequestError("channels", f"must be Channels, got {self.channels!r}")

    def endpoints(self, environment: Environment = "production") -> list[str]:
        """The base URLs of *environment*, primary first (the failover order).

        Raises:
            InvalidRequestError: *environment* is not "production" or "test", or the city
                lists no endpoint for it.
        """
        if environment not in _ENVIRONMENTS:
            raise InvalidRequestError(
                "environment", f"must be 'production' or 'test', got {environment!r}"
            )
        urls = list(self.production if environment == "production" else self.test)
        if not urls:
            raise InvalidRequestError(
                "environment",
                f"{self.name} ({self.key}) lists no {environment} endpoint; "
                f"production: {', '.join(self.production)}",
            )
        return urls

    def other_channels(self) -> list[str]:
        """Other ways to reach the city (``["web: https://…", "phone: 311"]``), for messages
        such as `civic311.errors.AllEndpointsFailedError`'s."""
        return self.channels.describe()

    def to_dict(self) -> dict[str, Any]:
        """The registry's JSON form (the profile in full); `from_dict` of it gives an equal
        city."""
        return {
            "key": self.key,
            "name": self.name,
            "aliases": list(self.aliases),
            "country": self.country,
            "region": self.region,
            "production": list(self.production),
            "test": list(self.test),
            "jurisdiction_id": self.jurisdiction_id,
            "formats": list(self.formats),
            "discovery_url": self.discovery_url,
            "api_key": self.api_key,
            "api_key_url": self.api_key_url,
            "profile": self.profile.to_dict(),
            "status": self.status,
            "status_reason": self.status_reason,
            "source": list(self.source),
            "channels": {
                "web": self.channels.web,
                "phone": self.channels.phone,
                "social": self.channels.social,
            },
            "contact": self.contact,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> City:
        """A city from its JSON form (a registry entry, or your own).

        Raises:
            InvalidRequestError: an unknown key, a missing required key (``key``, ``name``,
                ``country``, ``production``) or a bad value; the message names the field.
        """
        if not isinstance(data, Mapping):
            raise InvalidRequestError("city", f"must be an object, got {type(data).__name__}")
        known = {field.name for field in attrs.fields(City)}
        unknown = sorted(str(k) for k in data if k not in known)
        where = f" (city {data.get('key')!r})" if isinstance(data.get("key"), str) else ""
        if unknown:
            raise InvalidRequestError("city", f"unknown key(s) {', '.join(unknown)}{where}")
        missing = [k for k in ("key", "name", "country", "production") if k not in data]
        if missing:
            raise InvalidRequestError(missing[0], f"is required{where}")
        try:
            return cls(**data)
        except InvalidRequestError as exc:
            if not where:
                raise
            message = str(exc).removeprefix(f"{exc.field}: ")
            raise InvalidRequestError(exc.field, f"{message}{where}") from exc
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError("city", f"{exc}{where}") from exc


# -- the registry ------------------------------------------------------------------------------

_lock = threading.RLock()
_cities: dict[str, City] | None = None  # by key, in registry order; None until first use


def _fold(text: str) -> str:
    """Case- and accent-insensitive form: ``"Köln"`` → ``"koln"``, ``"Gießen"`` → ``"giessen"``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip()


def _load_bundled() -> dict[str, City]:
    text = resources.files(__name__).joinpath("registry.json").read_text(encoding="utf-8")
    document = json.loads(text)
    loaded: dict[str, City] = {}
    for entry in document["cities"]:
        city = City.from_dict(entry)
        _check_unique(loaded, city, replace=False)
        loaded[city.key] = city
    return loaded


def _registry() -> dict[str, City]:
    global _cities
    with _lock:
        if _cities is None:
            _cities = _load_bundled()
        return _cities


def _names(city: City) -> Iterable[str]:
    yield city.key
    yield city.name
    yield from city.aliases


def _check_unique(cities: Mapping[str, City], city: City, *, replace: bool) -> None:
    if city.key in cities and not replace:
        raise InvalidRequestError(
            "key", f"a city {city.key!r} is already registered; pass replace=True to replace it"
        )
    taken = {_fold(n): other.key for other in cities.values() for n in _names(other)}
    for name in _names(city):
        owner = taken.get(_fold(name))
        if owner is not None and owner != city.key:
            raise InvalidRequestError(
                "name", f"{name!r} already names the registered city {owner!r}"
            )


def all_cities() -> list[City]:
    """Every registered city: the bundled ones in registry order, then your own."""
    with _lock:
        return list(_registry().values())


def get(key_or_name: str) -> City:
    """The city with this key, name or alias, ignoring case and accents.

    ``get("chicago")``, ``get("Köln")``, ``get("koeln")`` and ``get("Cologne")`` all work.

    Raises:
        UnknownCityError: no such city; the error lists close matches.
    """
    if not isinstance(key_or_name, str):
        raise InvalidRequestError(
            "city", f"must be a city key or name, not {type(key_or_name).__name__}"
        )
    wanted = _fold(key_or_name)
    with _lock:
        cities = _registry()
        exact = cities.get(key_or_name.strip())
        if exact is not None:
            return exact
        for city in cities.values():
            if any(_fold(name) == wanted for name in _names(city)):
                return city
        raise UnknownCityError(key_or_name, _suggest(wanted, cities.values()))


def _suggest(wanted: str, cities: Iterable[City]) -> list[str]:
    by_name: dict[str, str] = {}
    for city in cities:
        for name in _names(city):
            by_name.setdefault(_fold(name), city.key)
    keys: list[str] = []
    close = difflib.get_close_matches(wanted, list(by_name), n=5, cutoff=0.6)
    partial = [name for name in by_name if wanted and (wanted in name or name in wanted)]
    for name in [*close, *partial]:
        if by_name[name] not in keys:
            keys.append(by_name[name])
    return keys[:5]


def search(text: str) -> list[City]:
    """Cities whose key, name, alias, country, region or jurisdiction_id contains *text*,
    ignoring case and accents (``search("koln")`` finds Köln); every city for ``""``."""
    wanted = _fold(text)
    found: list[City] = []
    for city in all_cities():
        haystack = [*_names(city), city.country, city.region or "", city.jurisdiction_id or ""]
        if any(wanted in _fold(item) for item in haystack):
            found.append(city)
    return found


def register(city: City, *, replace: bool = False) -> City:
    """Add your own city to the registry for this process (nothing is written to disk).

    Raises:
        InvalidRequestError: *city* is not a `City`, its key is taken (unless *replace*), or
            one of its names or aliases already names another city.
    """
    if not isinstance(city, City):
        raise InvalidRequestError(
            "city", f"must be a civic311.cities.City, got {type(city).__name__}"
        )
    with _lock:
        cities = _registry()
        _check_unique(cities, city, replace=replace)
        cities[city.key] = city
    return city


def unregister(key: str) -> City:
    """Remove a city (yours or a bundled one) from the registry for this process; returns it.

    Raises:
        UnknownCityError: no city has this key.
    """
    with _lock:
        cities = _registry()
        if key not in cities:
            raise UnknownCityError(key, _suggest(_fold(key), cities.values()))
        return cities.pop(key)


def check_usable(city: City, *, allow_retired: bool = False) -> None:
    """Warn or refuse before *city* is used, by its registry status.

    * ``"active"``: nothing.
    * ``"questioned"``: a `CityStatusWarning` with the reason.
    * ``"retired"``: `RetiredCityError`, or with ``allow_retired=True`` a `CityStatusWarning`.

    The warning points at the caller of the function that called this one (a
    ``Client.for_city(...)`` line).

    Raises:
        RetiredCityError: the city is retired and *allow_retired* is False.
    """
    if city.status == "active":
        return
    if city.status == "retired" and not allow_retired:
        raise RetiredCityError(city, key=city.key, name=city.name, reason=city.status_reason)
    reason = f": {city.status_reason}" if city.status_reason else ""
    advice = (
        "it may be gone; trying it anyway as allow_retired=True asks"
        if city.status == "retired"
        else "check it answers before relying on it"
    )
    warnings.warn(
        CityStatusWarning(
            f"{city.name} ({city.key}) is {city.status} in the registry{reason} ({advice})"
        ),
        stacklevel=3,
    )
