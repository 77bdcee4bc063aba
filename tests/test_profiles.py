"""Quirk profiles: validated, round-trippable data, and presets that match the reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from civic311 import profiles
from civic311.errors import InvalidRequestError
from civic311.profiles import PROFILES, Profile

FIELDS = [field.name for field in attrs.fields(Profile)]


def test_default_profile_is_the_spec() -> None:
    """Profile() is SPEC, named "spec", with the spec's defaults."""
    assert Profile() == Profile.SPEC == profiles.SPEC
    spec = Profile.SPEC
    assert spec.name == "spec"
    assert (spec.format, spec.date_style, spec.multivalue) == (None, "utc_z", "brackets")
    assert (spec.jurisdiction, spec.result_cap, spec.paging) == ("optional", 1000, "none")
    assert spec.max_window_days == 90
    assert spec.media == "url"


def test_field_names_are_the_agreed_ones() -> None:
    """The fields the client codes against exist, in the agreed order."""
    assert FIELDS == [
        "name",
        "format",
        "force_format",
        "date_style",
        "multivalue",
        "required_fields",
        "jurisdiction",
        "api_key_on_reads",
        "paths",
        "accept_encoding",
        "result_cap",
        "sort_order",
        "paging",
        "page_size",
        "first_page",
        "token_404_pending",
        "poll_interval",
        "max_poll_interval",
        "media",
        "max_media_bytes",
        "ignores_filters",
        "max_window_days",
        "extensions",
        "form_names",
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("format", "csv"),
        ("force_format", "yes"),
        ("date_style", "local"),
        ("multivalue", "comma"),
        ("required_fields", ("email", "fax")),
        ("required_fields", ("email", "email")),
        ("required_fields", "email"),
        ("jurisdiction", "sometimes"),
        ("api_key_on_reads", 1),
        ("paths", {"widgets": "w"}),
        ("paths", {"requests": "/issues/"}),
        ("paths", {"requests": "issues.json"}),
        ("paths", {"requests": ""}),
        ("paths", ["requests"]),
        ("accept_encoding", ""),
        ("result_cap", 0),
        ("result_cap", True),
        ("result_cap", 10.5),
        ("sort_order", "random"),
        ("paging", "cursor"),
        ("page_size", 0),
        ("first_page", 2),
        ("token_404_pending", None),
        ("poll_interval", 0),
        ("poll_interval", float("nan")),
        ("max_poll_interval", -1.0),
        ("media", "base64"),
        ("max_media_bytes", -5),
        ("ignores_filters", "false"),
        ("max_window_days", 0),
        ("extensions", "true"),
    ],
)
def test_bad_values_name_their_field(field: str, value: Any) -> None:
    """Every bad value is an InvalidRequestError (a ValueError) naming the field."""
    with pytest.raises(InvalidRequestError) as caught:
        Profile(**{field: value})
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_cross_field_checks() -> None:
    """max_poll_interval must not be below poll_interval; force_format needs a format."""
    with pytest.raises(InvalidRequestError, match="max_poll_interval: must be >="):
        Profile(poll_interval=5.0, max_poll_interval=1.0)
    with pytest.raises(InvalidRequestError, match="force_format"):
        Profile(force_format=True)


def test_whole_seconds_become_floats() -> None:
    """poll_interval=2 (as JSON gives it) is stored as 2.0."""
    profile = Profile(poll_interval=2, max_poll_interval=30)
    assert profile.poll_interval == 2.0
    assert isinstance(profile.poll_interval, float)


def test_profiles_are_frozen_hashable_and_paths_read_only() -> None:
    """A profile cannot be changed in place, hashes, and its paths mapping is read-only."""
    profile = Profile(paths={"requests": "issues"})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        profile.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        profile.paths["services"] = "x"  # type: ignore[index]
    assert hash(profile) == hash(Profile(paths={"requests": "issues"}))
    assert "paths={'requests': 'issues'}" in repr(profile)


def test_replace_validates() -> None:
    """replace() copies with changes and validates them."""
    assert profiles.CHICAGO.replace(page_size=100).page_size == 100
    with pytest.raises(InvalidRequestError, match="page_size"):
        profiles.CHICAGO.replace(page_size=-1)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_preset_round_trips_through_dict_and_json(name: str) -> None:
    """to_dict → from_dict and JSON text → from_json give an equal profile."""
    profile = PROFILES[name]
    data = profile.to_dict()
    assert set(data) == set(FIELDS)
    assert Profile.from_dict(data) == profile
    assert Profile.from_json(json.dumps(data)) == profile


def test_preset_names_are_their_keys() -> None:
    """PROFILES maps each preset's own name to it, and holds every module constant."""
    for name, profile in PROFILES.items():
        assert profile.name == name
    constants = {
        getattr(profiles, attr)
        for attr in profiles.__all__
        if isinstance(getattr(profiles, attr), Profile)
    }
    assert constants == set(PROFILES.values())


def test_from_dict_unknown_key_is_an_error_with_a_hint() -> None:
    """An unknown key (a typo) is refused, naming it and the closest known key."""
    with pytest.raises(InvalidRequestError, match=r"pagin \(did you mean paging\?\)") as caught:
        Profile.from_dict({"pagin": "page"})
    assert caught.value.field == "profile"


def test_from_dict_bad_value_names_the_field() -> None:
    """A bad value in the data is refused, naming the field."""
    with pytest.raises(InvalidRequestError) as caught:
        Profile.from_dict({"date_style": "local"})
    assert caught.value.field == "date_style"


def test_from_dict_base_starts_from_a_preset() -> None:
    """base names a preset; the other keys override it."""
    profile = Profile.from_dict({"base": "chicago", "name": "chicago-staging", "page_size": 100})
    assert profile == profiles.CHICAGO.replace(name="chicago-staging", page_size=100)
    with pytest.raises(InvalidRequestError, match="base: unknown preset 'atlantis'"):
        Profile.from_dict({"base": "atlantis"})


def test_from_dict_refuses_a_non_object() -> None:
    """Data that is not a mapping is refused."""
    with pytest.raises(InvalidRequestError, match="must be an object"):
        Profile.from_dict(["spec"])  # type: ignore[arg-type]


def test_from_json_reads_a_file_and_text(tmp_path: Path) -> None:
    """from_json takes a Path or a path string (BOM allowed) as well as JSON text."""
    path = tmp_path / "city.json"
    path.write_bytes(b'\xef\xbb\xbf{"name": "mine", "paging": "offset", "page_size": 200}')
    expected = Profile(name="mine", paging="offset", page_size=200)
    assert Profile.from_json(path) == expected
    assert Profile.from_json(str(path)) == expected
    assert Profile.from_json('  {"name": "mine", "paging": "offset", "page_size": 200}') == expected


def test_from_json_malformed_json_is_an_invalid_request() -> None:
    """Malformed JSON text is refused with the parser's reason."""
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        Profile.from_json('{"name": ')


def test_from_json_missing_file_raises_os_error(tmp_path: Path) -> None:
    """A path that does not exist is an OSError (an I/O problem, not a profile problem)."""
    with pytest.raises(FileNotFoundError):
        Profile.from_json(tmp_path / "missing.json")


# -- presets match the reference ----------------------------------------------------------------


def test_chicago_preset() -> None:
    """Chicago: no zone in query dates, page/page_size up to 500, extensions, token not 404."""
    chicago = profiles.CHICAGO
    assert chicago.date_style == "no_zone"
    assert (chicago.paging, chicago.page_size, chicago.first_page) == ("page", 500, 1)
    assert chicago.extensions is True
    assert chicago.token_404_pending is False
    assert set(chicago.required_fields) == {"lat_long", "address_string"}


def test_san_francisco_and_boston_presets() -> None:
    """SF: paging, extensions, a 404 token means pending; Boston: Connected Bits + extensions."""
    sf = profiles.SAN_FRANCISCO
    assert (sf.paging, sf.extensions, sf.token_404_pending) == ("page", True, True)
    assert profiles.BOSTON.extensions is True
    assert profiles.BOSTON.paging == profiles.CONNECTED_BITS.paging == "page"


def test_bloomington_preset() -> None:
    """uReport: page/page_size 1000 from page 1, one multipart media file."""
    ureport = profiles.BLOOMINGTON
    assert (ureport.paging, ureport.page_size, ureport.first_page) == ("page", 1000, 1)
    assert ureport.media == "multipart"


def test_fixmystreet_preset() -> None:
    """FixMyStreet: jurisdiction required, newest first, 1000 rows, re-filtered."""
    fms = profiles.FIXMYSTREET
    assert fms.jurisdiction == "required"
    assert (fms.sort_order, fms.result_cap, fms.ignores_filters) == ("newest_first", 1000, True)


def test_citysdk_presets() -> None:
    """Klarschiff requires email and description; Helsinki sends media[]; 6aika pages."""
    assert set(profiles.KLARSCHIFF.required_fields) == {"email", "description"}
    assert profiles.HELSINKI.media == "multipart_array"
    assert (profiles.SIXAIKA.paging, profiles.SIXAIKA.page_size) == ("page", 500)


def test_xml_only_presets() -> None:
    """Alexandria and D.C. force XML; Alexandria asks for identity encoding."""
    for preset in (profiles.ALEXANDRIA, profiles.WASHINGTON_DC, profiles.SEECLICKFIX):
        assert (preset.format, preset.force_format) == ("xml", True)
    assert profiles.ALEXANDRIA.accept_encoding == "identity"


def test_open311_adapter_repeats_list_attributes() -> None:
    """open311-adapter reads repeated attribute[c]=v."""
    assert profiles.OPEN311_ADAPTER.multivalue == "repeat"
