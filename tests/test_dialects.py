"""Dialects of the real servers (issue 11 point 10): renamed form fields, and 6aika's whole
request in answer to a POST, read the same from XML and JSON. Loopback HTTP, both formats,
both clients; replayed captures where the captures show it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import pytest

import civic311
from civic311.profiles import SIXAIKA, Profile
from civic311.testing import Dialect, FakeCity, VirtualClock

UTC = timezone.utc
NOW = datetime(2026, 12, 5, tzinfo=UTC)


@pytest.fixture(params=["json", "xml"])
def fmt(request: pytest.FixtureRequest) -> str:
    """Each test with this fixture runs in both formats."""
    return str(request.param)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Each test with this fixture runs with Client and with AsyncClient."""
    return str(request.param)


def submit(url: str, kind: str, fmt: str, request: civic311.NewRequest, **options: Any) -> Any:
    """Submit *request* with a sync or an async client."""
    if kind == "sync":
        with civic311.Client(url, format=fmt, **options) as client:  # type: ignore[arg-type]
            return client.submit(request)

    async def main() -> Any:
        async with civic311.AsyncClient(url, format=fmt, **options) as client:  # type: ignore[arg-type]
            return await client.submit(request)

    return asyncio.run(main())


ADDRESS_ONLY = civic311.NewRequest(
    service_code="001", address_string="Aleksanterinkatu 1", description="x"
)


def test_the_sixaika_profile_sends_address_not_address_string(kind: str, fmt: str) -> None:
    """profile="sixaika" sends an address-only report's address as `address`, which a
    6aika-like city reads; the spec's address_string is not sent."""
    city = FakeCity(seed=1, clock=VirtualClock(start=NOW), dialect=Dialect.sixaika())
    with city.serve() as url:
        receipt = submit(url, kind, fmt, ADDRESS_ONLY, profile="sixaika", clock=city.clock)
    assert receipt.service_request_id
    stored = city.store.get(receipt.service_request_id)
    assert stored is not None
    assert stored.address == "Aleksanterinkatu 1"


def test_without_the_rename_a_6aika_city_refuses_an_address_only_report(kind: str) -> None:
    """The spec's address_string alone is not an address to a 6aika-like city: an error."""
    city = FakeCity(seed=1, clock=VirtualClock(start=NOW), dialect=Dialect.sixaika())
    with city.serve() as url, pytest.raises(civic311.BadRequestError, match="address"):
        submit(url, kind, "json", ADDRESS_ONLY, clock=city.clock, retry=None)


def test_form_names_are_validated_and_round_trip() -> None:
    """form_names takes known fields to plain names; a typo or odd name is refused by name."""
    assert SIXAIKA.form_names == {"address_string": "address"}
    mine = Profile.from_dict({"base": "sixaika", "form_names": {"email": "mail"}})
    assert Profile.from_dict(mine.to_dict()) == mine
    with pytest.raises(civic311.InvalidRequestError, match="form_names"):
        Profile(form_names={"adress_string": "address"})
    with pytest.raises(civic311.InvalidRequestError, match="form_names"):
        Profile(form_names={"email": "e mail&x=1"})


def test_renamed_fields_reach_the_wire() -> None:
    """A rename applies to the form as sent; attributes and other fields are untouched."""
    from civic311._protocol import submit_call

    request = civic311.NewRequest(
        service_code="001",
        lat=1.5,
        long=2.5,
        address_string="Main St 1",
        attributes={"address_string": "kept"},
    )
    call = submit_call(request, form_names={"address_string": "address", "lat": "latitude"})
    assert call.form is not None
    names = [name for name, _ in call.form]
    assert "address" in names
    assert "latitude" in names
    assert "address_string" not in names
    assert ("attribute[address_string]", "kept") in call.form


_SIXAIKA_POST = {"json": "A_post_latlong.json.txt", "xml": "A_post_latlong.xml.txt"}


def test_6aika_post_answer_extras_read_the_same_from_xml_and_json(kind: str) -> None:
    """6aika's captured 201 with the whole request: Receipt.extras holds lat as a float and
    the empty address as None, in XML as in JSON."""
    from real_server_replay import load, replay

    extras = {}
    for fmt in ("json", "xml"):

        def route(method: str, path: str, query: list[tuple[str, str]], f: str = fmt) -> Any:
            if method == "POST" and path == f"/api/georeport/v2/requests.{f}":
                return load(_SIXAIKA_POST[f])
            return None

        request = civic311.NewRequest(service_code="001", lat=60.17, long=24.94, description="x")
        with replay(route) as (url, seen):
            receipt = submit(url + "/api/georeport/v2", kind, fmt, request)
        assert dict(parse_qsl(seen[0].body.decode()))["service_code"] == "001"
        assert receipt.service_request_id
        extras[fmt] = {k: v for k, v in receipt.extras.items() if k != "description"}
    assert {k: type(v) for k, v in extras["json"].items()} == {
        k: type(v) for k, v in extras["xml"].items()
    }
    same = ("lat", "long", "address", "media_url", "service_code", "status", "status_notes")
    assert [extras["json"][k] for k in same] == [extras["xml"][k] for k in same]
    assert extras["json"]["lat"] == 60.17
    assert extras["json"]["address"] is None
    assert isinstance(extras["xml"]["long"], float)


# --- 11.11: number attributes take numbers ---------------------------------------------------

_ADAPTER = {
    ("GET", "/services/POT"): "B_definition_POT",
    ("POST", "/requests"): "B_post_POT_with_attrs",
}


def _adapter_route(fmt: str) -> Any:
    from real_server_replay import load

    def route(method: str, path: str, query: list[tuple[str, str]]) -> Any:
        name = _ADAPTER.get((method, path.removesuffix(f".{fmt}")))
        return load(f"{name}.{fmt}.txt") if name else None

    return route


def _pothole(**attributes: Any) -> civic311.NewRequest:
    return civic311.NewRequest(
        service_code="POT", lat=51.5, long=-0.1, description="x", attributes=attributes
    )


def _submit_validated(url: str, kind: str, fmt: str, request: civic311.NewRequest) -> Any:
    if kind == "sync":
        with civic311.Client(url, format=fmt, api_key="k", retry=None) as client:  # type: ignore[arg-type]
            return client.submit(request, validate=True)

    async def main() -> Any:
        async with civic311.AsyncClient(url, format=fmt, api_key="k", retry=None) as client:  # type: ignore[arg-type]
            return await client.submit(request, validate=True)

    return asyncio.run(main())


def test_a_number_attribute_takes_a_number(kind: str, fmt: str) -> None:
    """attributes={"depth": 7} for open311-adapter's `number` attribute is validated and sent
    as attribute[depth]=7 (captured definition and answer replayed)."""
    from real_server_replay import replay

    with replay(_adapter_route(fmt)) as (url, seen):
        receipt = _submit_validated(url, kind, fmt, _pothole(depth=7, shape="circle"))
    assert receipt.service_request_id in ("24", "25")
    (post,) = [s for s in seen if s.method == "POST"]
    form = dict(parse_qsl(post.body.decode()))
    assert form["attribute[depth]"] == "7"


def test_a_boolean_for_a_number_attribute_is_refused_by_validate(kind: str) -> None:
    """validate=True checks converted values by datatype: True is no number, nothing is sent."""
    from real_server_replay import replay

    with (
        replay(_adapter_route("json")) as (url, seen),
        pytest.raises(civic311.ValidationFailedError, match="depth"),
    ):
        _submit_validated(url, kind, "json", _pothole(depth=True))
    assert all(s.method == "GET" for s in seen)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (7, "7"),
        (-2.5, "-2.5"),
        (3.0, "3"),
        (1e22, "10000000000000000000000"),
        (1e-25, "0.0000000000000000000000001"),
        (True, "true"),
        (False, "false"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05Z"),
    ],
)
def test_number_boolean_and_datetime_values_become_form_text(value: object, text: str) -> None:
    """Ints, floats, bools and datetimes become the text a form carries."""
    assert _pothole(a=value).attributes["a"] == text


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), datetime(2026, 1, 1), b"7", None])  # noqa: DTZ001
def test_bad_attribute_values_are_refused_naming_the_attribute(bad: object) -> None:
    """nan, inf, naive datetimes and other types raise InvalidRequestError naming the code."""
    with pytest.raises(civic311.InvalidRequestError, match=r"attributes\[a\]"):
        _pothole(a=bad)
