"""submit(validate=True) and media uploads through the client, against FakeCity on loopback."""

from __future__ import annotations

import hashlib

import pytest

import civic311
from civic311 import MediaFile, NewRequest, ValidationFailedError
from civic311.testing import Dialect, FakeCity

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"


def test_validate_lists_every_problem_before_sending() -> None:
    """validate=True fetches the definition and names every broken attribute; nothing is sent."""
    city = FakeCity(seed=8)
    bad = NewRequest(
        service_code="003",
        address_string="1 Main St",
        attributes={"OFFENSIVE": "perhaps", "COLOUR": "red"},
    )
    with (
        city.serve() as url,
        civic311.Client(url) as client,
        pytest.raises(ValidationFailedError) as caught,
    ):
        client.submit(bad, validate=True)
    codes = [p.code for p in caught.value.problems]
    assert codes == ["SURFACE", "OFFENSIVE", "COLOUR"]
    assert "SURFACE" in str(caught.value)
    assert [c.method for c in city.calls] == ["GET"]


def test_validate_drops_informational_attributes_and_sends() -> None:
    """A valid request is sent, without the informational (variable=false) attribute."""
    city = FakeCity(seed=8)
    with city.serve() as url, civic311.Client(url) as client:
        definition = client.get_service_definition("001")
        info = next(a.code for a in definition.attributes if not a.variable)
        request = NewRequest(service_code="001", lat=39.1, long=-86.5, attributes={"DEPTH": "12"})
        receipt = client.submit(request, validate=True)
    stored = city.get(receipt.service_request_id or "")
    assert stored is not None
    assert info not in stored.attributes
    assert stored.attributes["DEPTH"] == "12"


@pytest.mark.parametrize(
    ("profile", "dialect", "files"),
    [("bloomington", Dialect(media="single"), 1), ("helsinki", Dialect(media="array"), 3)],
)
def test_photos_are_uploaded_as_the_city_takes_them(
    profile: str, dialect: Dialect, files: int
) -> None:
    """Files go as one multipart media part or several media[] parts, intact."""
    city = FakeCity(seed=9, dialect=dialect)
    photos = [
        MediaFile.from_bytes(JPEG + bytes([n]), f"p{n}.jpg", "image/jpeg") for n in range(files)
    ]
    request = NewRequest(
        service_code="001", lat=39.1, long=-86.5, description="Photos attached", media=photos
    )
    with city.serve() as url, civic311.Client(url, profile=profile) as client:
        receipt = client.submit(request)
    stored = city.get(receipt.service_request_id or "")
    assert stored is not None
    assert [m.sha256 for m in stored.media] == [
        hashlib.sha256(p.content).hexdigest() for p in photos
    ]


def test_a_city_that_takes_one_file_refuses_two_before_sending() -> None:
    """Two photos for a single-upload city fail locally, naming the media style."""
    city = FakeCity(seed=9)
    photos = [MediaFile.from_bytes(JPEG, f"p{n}.jpg") for n in range(2)]
    with (
        civic311.Client(city.base_url, transport=city.transport(), profile="bloomington") as c,
        pytest.raises(civic311.InvalidRequestError, match="media"),
    ):
        c.submit(NewRequest(service_code="001", lat=1.0, long=1.0, media=photos))
    assert city.calls == []
