"""The bundled city registry: every entry valid, look-ups, your own cities, status checks."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import pytest

from civic311 import cities
from civic311._protocol import Civic311Warning
from civic311.cities import (
    City,
    CityStatusWarning,
    RetiredCityError,
    UnknownCityError,
    check_usable,
)
from civic311.errors import Civic311Error, InvalidRequestError
from civic311.profiles import PROFILES, Profile

ENTRY_KEYS = {
    "key",
    "name",
    "aliases",
    "country",
    "region",
    "production",
    "test",
    "jurisdiction_id",
    "formats",
    "discovery_url",
    "api_key",
    "api_key_url",
    "profile",
    "status",
    "status_reason",
    "source",
    "channels",
    "contact",
    "notes",
}

#: The servers of reference §9, by registry key.
REFERENCE_SECTION_9 = {
    "ottawa",
    "quebec",
    "surrey",
    "toronto",
    "zurich",
    "giessen",
    "bonn",
    "rostock",
    "schwerin",
    "bruehl",
    "annaberg-buchholz",
    "siegburg",
    "koeln",
    "zaragoza",
    "helsinki",
    "turku",
    "lamia",
    "lisboa",
    "greenwich",
    "baltimore",
    "bloomington",
    "boston",
    "brookline",
    "chicago",
    "columbus-in",
    "gilbert",
    "grand-rapids",
    "peoria",
    "philadelphia",
    "san-francisco",
    "washington-dc",
    "alexandria",
    "seeclickfix",
}


def raw_entries() -> list[dict[str, Any]]:
    """The registry file's entries, as JSON."""
    text = resources.files("civic311.cities").joinpath("registry.json").read_text("utf-8")
    entries = json.loads(text)["cities"]
    assert isinstance(entries, list)
    return entries


def make_city(**fields: Any) -> City:
    """A minimal user city, fields overridden."""
    values: dict[str, Any] = {
        "key": "springfield",
        "name": "Springfield",
        "country": "United States",
        "production": ["https://311.springfield.example/open311/v2/"],
        "status": "active",
    }
    values.update(fields)
    return City(**values)


@pytest.fixture
def springfield() -> Iterator[City]:
    """A registered user city, removed afterwards."""
    city = cities.register(make_city())
    try:
        yield city
    finally:
        cities.unregister("springfield")


# -- the registry file --------------------------------------------------------------------------


def test_registry_covers_reference_section_9() -> None:
    """One entry per server of reference §9, no more, no fewer."""
    assert {entry["key"] for entry in raw_entries()} == REFERENCE_SECTION_9


@pytest.mark.parametrize("entry", raw_entries(), ids=lambda e: str(e["key"]))
def test_every_entry_has_the_schema(entry: dict[str, Any]) -> None:
    """Each entry has exactly the documented keys, with values of the documented kinds."""
    assert set(entry) == ENTRY_KEYS
    for key in ("key", "name", "country"):
        assert isinstance(entry[key], str)
        assert entry[key].strip()
    for key in ("region", "jurisdiction_id", "discovery_url", "api_key_url", "contact", "notes"):
        assert entry[key] is None or (isinstance(entry[key], str) and entry[key].strip())
    assert entry["production"], "needs a production URL"
    assert set(entry["formats"]) <= {"json", "xml"}
    assert entry["formats"]
    assert entry["api_key"] in {"post", "all", "none", "unknown"}
    assert entry["status"] in {"active", "questioned", "retired"}
    assert set(entry["channels"]) == {"web", "phone", "social"}
    assert entry["source"], "every entry cites where its facts come from"
    assert all(isinstance(s, str) and s.strip() for s in entry["source"])


@pytest.mark.parametrize("entry", raw_entries(), ids=lambda e: str(e["key"]))
def test_every_url_is_http_with_a_host(entry: dict[str, Any]) -> None:
    """Base, discovery, key-request and web URLs all parse as http(s) with a host."""
    urls = [*entry["production"], *entry["test"]]
    urls += [u for u in (entry["discovery_url"], entry["api_key_url"]) if u]
    if entry["channels"]["web"]:
        urls.append(entry["channels"]["web"])
    for url in urls:
        parts = urlsplit(url)
        assert parts.scheme in ("http", "https"), url
        assert parts.hostname, url
    for url in entry["production"] + entry["test"]:
        assert not urlsplit(url).query, url
    if entry["discovery_url"]:
        assert entry["discovery_url"].rsplit("/", 1)[-1] in ("discovery.json", "discovery.xml")


@pytest.mark.parametrize("entry", raw_entries(), ids=lambda e: str(e["key"]))
def test_every_entry_loads_with_its_profile(entry: dict[str, Any]) -> None:
    """Every entry builds a City, its profile resolves, and to_dict round-trips."""
    city = City.from_dict(entry)
    assert isinstance(city.profile, Profile)
    if isinstance(entry["profile"], str):
        assert entry["profile"] in PROFILES
        assert city.profile is PROFILES[entry["profile"]]
    assert City.from_dict(city.to_dict()) == city


def test_not_active_entries_say_why() -> None:
    """Every questioned or retired entry has a reason."""
    for city in cities.all_cities():
        if city.status != "active":
            assert city.status_reason, city.key


def test_keys_names_and_aliases_are_unique() -> None:
    """No two entries share a key, a name or an alias (ignoring case and accents)."""
    seen: dict[str, str] = {}
    for entry in raw_entries():
        for name in [entry["key"], entry["name"], *entry["aliases"]]:
            folded = cities._fold(name)
            assert seen.setdefault(folded, entry["key"]) == entry["key"], name


def test_status_is_honest() -> None:
    """Nothing is claimed active without a check; PublicStuff and old SeeClickFix are retired."""
    by_status: dict[str, set[str]] = {}
    for city in cities.all_cities():
        by_status.setdefault(city.status, set()).add(city.key)
    assert by_status.get("active", set()) == set()
    assert by_status["retired"] == {"philadelphia", "seeclickfix"}


def test_registry_is_not_loaded_by_import() -> None:
    """import civic311 (and civic311.cities) reads no JSON until the registry is used."""
    code = (
        "import civic311, civic311.cities as c\n"
        "assert c._cities is None\n"
        "c.get('chicago')\n"
        "assert c._cities is not None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- look-ups -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("chicago", "chicago"),
        ("CHICAGO", "chicago"),
        ("Köln", "koeln"),
        ("koln", "koeln"),
        ("Cologne", "koeln"),
        ("Gießen", "giessen"),
        ("giessen", "giessen"),
        ("San Francisco", "san-francisco"),
        (" washington-dc ", "washington-dc"),
        ("Washington, D.C.", "washington-dc"),
        ("Zurich", "zurich"),
    ],
)
def test_get_by_key_name_or_alias(query: str, key: str) -> None:
    """get() finds a city by key, name or alias, ignoring case and accents."""
    assert cities.get(query).key == key


def test_get_unknown_city_suggests_close_matches() -> None:
    """An unknown city raises UnknownCityError (a LookupError) with suggestions."""
    with pytest.raises(UnknownCityError, match="did you mean chicago") as caught:
        cities.get("chicgo")
    assert isinstance(caught.value, LookupError)
    assert isinstance(caught.value, Civic311Error)
    assert caught.value.suggestions[0] == "chicago"
    assert caught.value.query == "chicgo"


def test_get_refuses_a_non_string() -> None:
    """get(42) is an InvalidRequestError, not a crash."""
    with pytest.raises(InvalidRequestError, match="city"):
        cities.get(42)  # type: ignore[arg-type]


def test_search_is_case_and_accent_insensitive() -> None:
    """search() matches part of a key, name, alias, country, region or jurisdiction_id."""
    assert [c.key for c in cities.search("koln")] == ["koeln"]
    assert {c.key for c in cities.search("canada")} == {"ottawa", "quebec", "surrey", "toronto"}
    assert [c.key for c in cities.search("sfgov")] == ["san-francisco"]
    assert "rostock" in {c.key for c in cities.search("MECKLENBURG")}
    assert cities.search("atlantis") == []
    assert len(cities.search("")) == len(cities.all_cities())


def test_all_cities_in_registry_order() -> None:
    """all_cities() lists the bundled entries in file order."""
    assert [c.key for c in cities.all_cities()][:2] == ["ottawa", "quebec"]


# -- the City model ----------------------------------------------------------------------------


def test_endpoints_by_environment() -> None:
    """endpoints() gives production or test base URLs, primary first, without trailing slash."""
    rostock = cities.get("rostock")
    assert rostock.endpoints() == [
        "https://geo.sv.rostock.de/citysdk",
        "https://www.klarschiff-hro.de/backoffice/citysdk",
    ]
    assert rostock.endpoints("test") == ["https://demo.klarschiff-hro.de/citysdk"]


def test_endpoints_without_test_or_bad_environment() -> None:
    """No test endpoint, or an unknown environment, is an InvalidRequestError naming it."""
    with pytest.raises(InvalidRequestError, match="lists no test endpoint"):
        cities.get("surrey").endpoints("test")
    with pytest.raises(InvalidRequestError, match="environment"):
        cities.get("chicago").endpoints("staging")  # type: ignore[arg-type]


def test_other_channels_are_readable_strings() -> None:
    """other_channels() lists known channels as "kind: value"; unknown ones are left out."""
    assert cities.get("chicago").other_channels() == ["web: https://311.chicago.gov", "phone: 311"]
    assert cities.get("columbus-in").other_channels() == []


def test_inline_profile_in_an_entry() -> None:
    """An inline profile object (with a base) resolves to a Profile."""
    baltimore = cities.get("baltimore")
    assert baltimore.profile.name == "baltimore"
    assert baltimore.profile.api_key_on_reads is True
    assert baltimore.profile.paging == "page"  # from its connected_bits base


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"key": "Spring Field"}, "key"),
        ({"production": []}, "production"),
        ({"production": ["ftp://x.example/v2"]}, "production"),
        ({"production": ["https://x.example/v2?api_key=1"]}, "production"),
        ({"test": ["https://a.example/v2", "https://a.example/v2/"]}, "test"),
        ({"formats": ["csv"]}, "formats"),
        ({"api_key": "sometimes"}, "api_key"),
        ({"status": "gone"}, "status"),
        ({"status": "questioned"}, "status_reason"),
        ({"profile": "atlantis"}, "profile"),
        ({"profile": {"pagin": "page"}}, "profile"),
        ({"channels": {"fax": "1"}}, "channels"),
        ({"channels": {"web": "not a url"}}, "web"),
        ({"discovery_url": "discovery.json"}, "discovery_url"),
    ],
)
def test_bad_city_fields_name_the_field(fields: dict[str, Any], field: str) -> None:
    """A bad City value is an InvalidRequestError naming the field."""
    with pytest.raises(InvalidRequestError) as caught:
        make_city(**fields)
    assert caught.value.field == field


def test_from_dict_unknown_and_missing_keys() -> None:
    """from_dict refuses unknown keys and names a missing required one."""
    data = make_city().to_dict()
    with pytest.raises(InvalidRequestError, match=r"unknown key\(s\) population"):
        City.from_dict({**data, "population": 1})
    del data["production"]
    with pytest.raises(InvalidRequestError, match="production: is required"):
        City.from_dict(data)


# -- your own cities ----------------------------------------------------------------------------


def test_register_and_unregister(springfield: City) -> None:
    """A registered city is found like a bundled one, until unregistered."""
    assert cities.get("Springfield") is springfield
    assert springfield in cities.all_cities()
    assert springfield.endpoints() == ["https://311.springfield.example/open311/v2"]


def test_register_duplicate_key_needs_replace(springfield: City) -> None:
    """Registering a taken key is an error unless replace=True."""
    other = make_city(name="Springfield, IL")
    with pytest.raises(InvalidRequestError, match="replace=True"):
        cities.register(other)
    cities.register(other, replace=True)
    assert cities.get("springfield").name == "Springfield, IL"


def test_register_refuses_a_name_taken_by_another_city() -> None:
    """A new city may not reuse another city's name or alias."""
    with pytest.raises(InvalidRequestError, match="chicago"):
        cities.register(make_city(key="chi", name="Chicago"))
    with pytest.raises(InvalidRequestError, match="koeln"):
        cities.register(make_city(aliases=["Cologne"]))
    with pytest.raises(InvalidRequestError, match=r"must be a civic311\.cities\.City"):
        cities.register({"key": "x"})  # type: ignore[arg-type]


def test_unregister_unknown_key() -> None:
    """Unregistering an unknown key raises UnknownCityError."""
    with pytest.raises(UnknownCityError):
        cities.unregister("atlantis")


def test_unregister_a_bundled_city_for_this_process() -> None:
    """A bundled city can be removed and put back."""
    alexandria = cities.unregister("alexandria")
    try:
        with pytest.raises(UnknownCityError):
            cities.get("alexandria")
    finally:
        cities.register(alexandria)
    assert cities.get("alexandria") == alexandria


# -- status checks ------------------------------------------------------------------------------


def for_city(city: City, *, allow_retired: bool = False) -> City:
    """Stands in for Client.for_city: the warning must point at *its* caller."""
    check_usable(city, allow_retired=allow_retired)
    return city


def test_active_city_is_used_silently() -> None:
    """An active entry passes without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for_city(make_city())


def test_questioned_city_warns_at_the_callers_line() -> None:
    """A questioned entry warns with CityStatusWarning (a Civic311Warning) and its reason."""
    chicago = cities.get("chicago")
    with pytest.warns(CityStatusWarning, match="questioned in the registry") as record:
        for_city(chicago)
    assert issubclass(CityStatusWarning, Civic311Warning)
    assert issubclass(CityStatusWarning, UserWarning)
    assert record[0].filename == __file__


def test_retired_city_is_refused_unless_allowed() -> None:
    """A retired entry raises RetiredCityError; allow_retired=True warns instead."""
    philadelphia = cities.get("philadelphia")
    with pytest.raises(RetiredCityError, match="allow_retired=True") as caught:
        for_city(philadelphia)
    assert caught.value.city is philadelphia
    assert isinstance(caught.value, Civic311Error)
    with pytest.warns(CityStatusWarning, match="retired"):
        for_city(philadelphia, allow_retired=True)
