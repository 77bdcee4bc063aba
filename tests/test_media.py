"""Media: MediaFile checks itself, NewRequest carries files and URLs, and the form layer sends
them per the city's media style (reference §10.36: media_url, Bloomington's single ``media``,
Helsinki/6aika ``media[]``, FixMyStreet's repeated ``media_url``)."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import httpx
import pytest

from civic311 import InvalidRequestError, NewRequest, from_dict, to_dict
from civic311._wire.form import (
    MediaStyle,
    encode_form,
    media_parts,
    media_urls,
    multipart_data,
    new_request_fields,
)
from civic311.media import MAX_MEDIA_BYTES, MediaFile
from civic311.testing import Dialect, FakeCity

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 13


def photo(name: str = "pothole.jpg", data: bytes = JPEG) -> MediaFile:
    return MediaFile.from_bytes(data, name)


def request(**overrides: Any) -> NewRequest:
    fields: dict[str, Any] = {"service_code": "001", "lat": 41.3, "long": -72.9}
    fields.update(overrides)
    return NewRequest(**fields)


# --- MediaFile ------------------------------------------------------------------------------


def test_from_bytes_guesses_the_content_type_from_the_name() -> None:
    """from_bytes takes the type from the file name, or octet-stream when it cannot tell."""
    assert photo().content_type == "image/jpeg"
    assert MediaFile.from_bytes(PNG, "a.png").content_type == "image/png"
    assert MediaFile.from_bytes(b"x", "README").content_type == "application/octet-stream"
    assert MediaFile.from_bytes(b"x", "a.jpg", "image/webp").content_type == "image/webp"


def test_from_bytes_accepts_bytearray_and_memoryview() -> None:
    """Mutable buffers are copied into immutable bytes."""
    buffer = bytearray(JPEG)
    media = MediaFile.from_bytes(buffer, "a.jpg")
    buffer[0] = 0
    assert media.content == JPEG
    assert MediaFile.from_bytes(memoryview(JPEG), "a.jpg").content == JPEG


def test_repr_shows_the_size_not_the_bytes() -> None:
    """A MediaFile's repr names the file and its size, never dumps its content."""
    text = repr(MediaFile.from_bytes(b"\x00secret-bytes\x00", "a.bin"))
    assert "secret" not in text
    assert "<14 bytes>" in text
    assert "a.bin" in text
    assert "secret" not in repr(request(media=MediaFile.from_bytes(b"secret", "a.jpg")))


def test_size_property_and_equality() -> None:
    """size is the byte count; two files with the same name, bytes and type are equal."""
    assert photo().size == len(JPEG)
    assert photo() == photo()
    assert photo() != photo(data=JPEG + b"\x00")
    assert hash(photo()) == hash(photo())


def test_from_path_reads_the_file_and_names_it(tmp_path: Path) -> None:
    """from_path reads the bytes and uses the path's last part as the file name."""
    path = tmp_path / "crack.png"
    path.write_bytes(PNG)
    media = MediaFile.from_path(path)
    assert (media.filename, media.content, media.content_type) == ("crack.png", PNG, "image/png")
    assert MediaFile.from_path(str(path)).content == PNG


def test_from_path_refuses_a_missing_file_naming_it(tmp_path: Path) -> None:
    """A path that cannot be read is an InvalidRequestError naming media and the path."""
    with pytest.raises(InvalidRequestError, match=r"nothere\.jpg") as caught:
        MediaFile.from_path(tmp_path / "nothere.jpg")
    assert caught.value.field == "media"


def test_from_path_refuses_a_file_over_the_cap_before_reading(tmp_path: Path) -> None:
    """The size cap is checked on the file's size, with the default 10 MiB and a custom one."""
    path = tmp_path / "big.jpg"
    path.write_bytes(b"x" * 100)
    with pytest.raises(InvalidRequestError, match=r"big\.jpg: 100 bytes is over the limit of 99"):
        MediaFile.from_path(path, max_bytes=99)
    assert MediaFile.from_path(path, max_bytes=100).size == 100
    assert MAX_MEDIA_BYTES == 10 * 1024 * 1024


def test_from_file_reads_a_binary_file_object(tmp_path: Path) -> None:
    """from_file reads from the current position; the name comes from .name when present."""
    path = tmp_path / "sub" / "night.jpg"
    path.parent.mkdir()
    path.write_bytes(JPEG)
    with path.open("rb") as fh:
        media = MediaFile.from_file(fh)
    assert (media.filename, media.content, media.content_type) == ("night.jpg", JPEG, "image/jpeg")
    stream = io.BytesIO(b"HEAD" + PNG)
    stream.seek(4)
    assert MediaFile.from_file(stream, "x.png").content == PNG


def test_from_file_needs_a_name_when_the_object_has_none() -> None:
    """A BytesIO has no name, so from_file asks for filename= clearly."""
    with pytest.raises(InvalidRequestError, match="filename="):
        MediaFile.from_file(io.BytesIO(JPEG))


def test_from_file_refuses_text_mode_files(tmp_path: Path) -> None:
    """A text-mode file (or one whose read() gives str) is refused with a hint to use 'rb'."""
    path = tmp_path / "notes.txt"
    path.write_text("hello", encoding="utf-8")
    with path.open(encoding="utf-8") as fh, pytest.raises(InvalidRequestError, match="'rb'"):
        MediaFile.from_file(fh)
    with pytest.raises(InvalidRequestError, match="'rb'"):
        MediaFile.from_file(io.StringIO("hello"), "a.txt")

    class Texty:
        def read(self, size: int) -> str:
            return "text"

    with pytest.raises(InvalidRequestError, match="binary mode"):
        MediaFile.from_file(Texty(), "a.txt")


def test_from_file_refuses_non_file_objects() -> None:
    """Bytes or a path given to from_file point the caller to the right constructor."""
    with pytest.raises(InvalidRequestError, match="from_bytes"):
        MediaFile.from_file(JPEG, "a.jpg")


def test_from_file_stops_reading_past_the_cap() -> None:
    """An endless or huge stream is refused after max_bytes + 1 bytes, not swallowed."""

    class Endless(io.RawIOBase):
        def __init__(self) -> None:
            self.asked: list[int] = []

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            self.asked.append(size)
            return b"x" * size

    stream = Endless()
    with pytest.raises(InvalidRequestError, match="over the limit of 1000"):
        MediaFile.from_file(stream, "a.bin", max_bytes=1000)
    assert stream.asked == [1001]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"filename": "a.jpg", "content": b""}, "a.jpg: the file is empty"),
        ({"filename": "", "content": JPEG}, "filename must not be empty"),
        ({"filename": "dir/a.jpg", "content": JPEG}, "bare file name"),
        ({"filename": "C:\\photos\\a.jpg", "content": JPEG}, "bare file name"),
        ({"filename": "a\r\n.jpg", "content": JPEG}, "control characters"),
        ({"filename": 5, "content": JPEG}, "filename must be a string"),
        ({"filename": "a.jpg", "content": "text"}, "content must be bytes, not str"),
        ({"filename": "a.jpg", "content": JPEG, "content_type": "jpeg"}, "not a media type"),
        ({"filename": "a.jpg", "content": JPEG, "content_type": "image/jpeg\r\nX: y"}, "media"),
    ],
)
def test_media_file_checks_itself(kwargs: dict[str, Any], match: str) -> None:
    """A MediaFile refuses empty content, paths, control characters and bad types, naming media."""
    with pytest.raises(InvalidRequestError, match=match) as caught:
        MediaFile(**kwargs)
    assert caught.value.field == "media"


def test_max_bytes_must_be_a_positive_int() -> None:
    """A nonsense cap is refused as max_bytes."""
    with pytest.raises(InvalidRequestError) as caught:
        MediaFile.from_bytes(JPEG, "a.jpg", max_bytes=0)
    assert caught.value.field == "max_bytes"


def test_media_file_pickles() -> None:
    """A MediaFile survives pickling (task queues, process pools)."""
    assert pickle.loads(pickle.dumps(photo())) == photo()


# --- NewRequest.media and media_url ---------------------------------------------------------


def test_new_request_media_accepts_one_file_or_a_list() -> None:
    """media takes a single MediaFile or a list of them and keeps a tuple; default is empty."""
    assert request().media == ()
    assert request(media=photo()).media == (photo(),)
    assert request(media=[photo(), photo("b.jpg")]).media == (photo(), photo("b.jpg"))
    assert request(media=None).media == ()


@pytest.mark.parametrize(
    ("media", "field"),
    [
        ("pothole.jpg", "media"),
        (JPEG, "media"),
        (5, "media"),
        ([("pothole.jpg", JPEG, "image/jpeg")], "media[0]"),
        ([photo(), "b.jpg"], "media[1]"),
    ],
)
def test_new_request_media_refuses_anything_but_media_files(media: object, field: str) -> None:
    """Paths, bytes and tuples are refused with a hint to build a MediaFile."""
    with pytest.raises(InvalidRequestError, match="MediaFile") as caught:
        request(media=media)
    assert caught.value.field == field


def test_new_request_media_url_one_or_several() -> None:
    """One URL stays a str (trimmed), several become a tuple, blank means none."""
    assert request(media_url=" http://x.test/a.jpg ").media_url == "http://x.test/a.jpg"
    assert request(media_url=["https://x.test/a.jpg"]).media_url == "https://x.test/a.jpg"
    several = request(media_url=["https://x.test/a.jpg", "https://x.test/b.jpg"])
    assert several.media_url == ("https://x.test/a.jpg", "https://x.test/b.jpg")
    assert request(media_url="").media_url is None
    assert request(media_url=[]).media_url is None


@pytest.mark.parametrize(
    ("media_url", "field"),
    [
        ("ftp://x.test/a.jpg", "media_url"),
        ("x.test/a.jpg", "media_url"),
        ("javascript:alert(1)", "media_url"),
        ("http://", "media_url"),
        ("http://x.test/a b.jpg", "media_url"),
        (5, "media_url"),
        (b"http://x.test/a.jpg", "media_url"),
        (["https://x.test/a.jpg", ""], "media_url[1]"),
        (["https://x.test/a.jpg", 5], "media_url[1]"),
        (["file:///etc/passwd"], "media_url[0]"),
    ],
)
def test_new_request_media_url_must_be_http_urls(media_url: object, field: str) -> None:
    """Each media_url is a non-empty http(s) URL; anything else names media_url."""
    with pytest.raises(InvalidRequestError) as caught:
        request(media_url=media_url)
    assert caught.value.field == field


def test_to_dict_round_trips_media_as_base64() -> None:
    """to_dict writes files as filename, content_type and base64 content; from_dict reads them."""
    original = request(
        media=[photo(), MediaFile.from_bytes(PNG, "b.png")],
        media_url=["https://x.test/1.jpg", "https://x.test/2.jpg"],
    )
    data = json.loads(json.dumps(to_dict(original)))
    assert data["media"][0] == {
        "filename": "pothole.jpg",
        "content_type": "image/jpeg",
        "content_base64": "/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==",
    }
    assert data["media_url"] == ["https://x.test/1.jpg", "https://x.test/2.jpg"]
    assert from_dict(NewRequest, data) == original


def test_from_dict_without_media_and_with_one_url() -> None:
    """Older dicts without media read back with none; a single media_url stays a str."""
    data = to_dict(request(media_url="https://x.test/1.jpg"))
    del data["media"]
    assert from_dict(NewRequest, data) == request(media_url="https://x.test/1.jpg")


@pytest.mark.parametrize(
    ("media", "field"),
    [
        ([{"filename": "a.jpg", "content_base64": "not base64!"}], "media[0]"),
        ([{"filename": "a.jpg"}], "media[0]"),
        (["a.jpg"], "media[0]"),
        (5, "media"),
        ([{"filename": "a.jpg", "content_base64": ""}], "media"),
        ([{"filename": "../a.jpg", "content_base64": "eA=="}], "media"),
    ],
)
def test_from_dict_refuses_broken_media(media: object, field: str) -> None:
    """Malformed media data, or data breaking MediaFile's rules, is invalid input naming media."""
    data = to_dict(request())
    data["media"] = media
    with pytest.raises(InvalidRequestError) as caught:
        from_dict(NewRequest, data)
    assert caught.value.field.startswith(field)


# --- the form contract ----------------------------------------------------------------------


STYLES: tuple[MediaStyle, ...] = ("url", "url_repeat", "multipart", "multipart_array")


def test_one_media_url_stays_in_new_request_fields() -> None:
    """A single media_url is a plain field where it always was, and media_parts adds nothing."""
    req = request(media_url="https://x.test/a.jpg", description="hole")
    fields = new_request_fields(req)
    assert fields[-2:] == [("description", "hole"), ("media_url", "https://x.test/a.jpg")]
    for style in STYLES:
        assert media_parts(req, style=style, max_bytes=100) == ([], [])


def test_several_media_urls_are_repeated_by_url_repeat_only() -> None:
    """Several URLs leave new_request_fields and come back repeated under url_repeat (FMS)."""
    urls = ("https://x.test/a.jpg", "https://x.test/b.jpg")
    req = request(media_url=urls)
    assert "media_url" not in dict(new_request_fields(req))
    fields, files = media_parts(req, style="url_repeat", max_bytes=100)
    assert fields == [("media_url", urls[0]), ("media_url", urls[1])]
    assert files == []
    for style in ("url", "multipart", "multipart_array"):
        with pytest.raises(InvalidRequestError, match="this city takes one media_url") as caught:
            media_parts(req, style=style, max_bytes=100)  # type: ignore[arg-type]
        assert caught.value.field == "media_url"


@pytest.mark.parametrize("style", STYLES)
def test_every_url_is_sent_exactly_once(style: MediaStyle) -> None:
    """new_request_fields + media_parts fields never send a URL twice, whatever the style."""
    for urls in ((), ("https://x.test/a",), ("https://x.test/a", "https://x.test/b")):
        req = request(media_url=urls)
        try:
            extra, _ = media_parts(req, style=style, max_bytes=100)
        except InvalidRequestError:
            continue
        sent = [v for k, v in new_request_fields(req) + extra if k == "media_url"]
        assert sent == list(urls)


def test_multipart_sends_one_file_as_media() -> None:
    """Bloomington's style sends a single file in a part named media (§8.6)."""
    req = request(media=photo())
    assert media_parts(req, style="multipart", max_bytes=1000) == (
        [],
        [("media", ("pothole.jpg", JPEG, "image/jpeg"))],
    )


def test_multipart_refuses_several_files_naming_the_style() -> None:
    """Bloomington takes one file: two are refused before sending, naming the style."""
    req = request(media=[photo(), photo("b.jpg")])
    with pytest.raises(InvalidRequestError, match=r"'multipart'.*got 2") as caught:
        media_parts(req, style="multipart", max_bytes=1000)
    assert caught.value.field == "media"


def test_multipart_array_sends_every_file_as_media_brackets() -> None:
    """Helsinki/6aika's style sends each file in a media[] part, in order (§8.5)."""
    req = request(media=[photo(), MediaFile.from_bytes(PNG, "b.png")])
    _, files = media_parts(req, style="multipart_array", max_bytes=1000)
    assert files == [
        ("media[]", ("pothole.jpg", JPEG, "image/jpeg")),
        ("media[]", ("b.png", PNG, "image/png")),
    ]


@pytest.mark.parametrize("style", ["url", "url_repeat"])
def test_url_styles_refuse_files(style: MediaStyle) -> None:
    """A city that takes no uploads gets a clear error telling the caller to host the file."""
    with pytest.raises(InvalidRequestError, match="takes no uploads") as caught:
        media_parts(request(media=photo()), style=style, max_bytes=1000)
    assert caught.value.field == "media"
    assert "host the file and give media_url" in str(caught.value)


def test_no_uploads_error_says_how_to_turn_them_on() -> None:
    """The error names the profiles (and the Profile option) for a city that takes files."""
    with pytest.raises(InvalidRequestError) as caught:
        media_parts(request(media=photo()), style="url", max_bytes=1000)
    text = str(caught.value)
    assert 'profile="bloomington"' in text
    assert 'profile="helsinki"' in text
    assert 'media="multipart_array"' in text
    assert "docs/photos.md" in text


def test_files_over_the_total_cap_are_refused() -> None:
    """The files' total size is checked against the city's max_bytes."""
    req = request(media=[photo(), photo("b.jpg")])
    limit = 2 * len(JPEG) - 1
    with pytest.raises(InvalidRequestError, match=f"over this city's limit of {limit}") as caught:
        media_parts(req, style="multipart_array", max_bytes=limit)
    assert caught.value.field == "media"
    assert media_parts(req, style="multipart_array", max_bytes=limit + 1)[1]


def test_media_parts_checks_its_arguments() -> None:
    """An unknown style or a bad max_bytes is refused by name."""
    with pytest.raises(InvalidRequestError) as caught:
        media_parts(request(), style="base64", max_bytes=10)  # type: ignore[arg-type]
    assert caught.value.field == "style"
    with pytest.raises(InvalidRequestError) as caught:
        media_parts(request(), style="url", max_bytes=-1)
    assert caught.value.field == "max_bytes"


def test_media_urls_lists_none_one_or_several() -> None:
    """media_urls gives a request's URLs as a tuple whatever their number."""
    assert media_urls(request()) == ()
    assert media_urls(request(media_url="https://x.test/a")) == ("https://x.test/a",)
    assert media_urls(request(media_url=["https://x.test/a", "https://x.test/b"])) == (
        "https://x.test/a",
        "https://x.test/b",
    )


def test_multipart_data_groups_repeated_names_in_order() -> None:
    """multipart_data turns pairs into httpx's data= dict, repeats as ordered lists."""
    pairs = [("a", "1"), ("attribute[C][]", "x"), ("b", "2"), ("attribute[C][]", "y")]
    assert multipart_data(pairs) == {"a": "1", "attribute[C][]": ["x", "y"], "b": "2"}


# --- the contract, end to end, against FakeCity ---------------------------------------------


def _post(city: FakeCity, req: NewRequest, style: MediaStyle) -> httpx.Response:
    """POST *req* the way the contract says a client must: urlencoded or multipart."""
    extra, files = media_parts(req, style=style, max_bytes=MAX_MEDIA_BYTES)
    fields = new_request_fields(req) + extra
    with httpx.Client(transport=city.transport(), base_url=city.base_url) as http:
        if files:
            return http.post("requests.json", data=multipart_data(fields), files=files)
        return http.post(
            "requests.json",
            content=encode_form(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )


def test_contract_uploads_reach_a_city_byte_for_byte() -> None:
    """Files sent per the contract arrive whole: FakeCity's SHA-256 matches, in order."""
    import hashlib

    city = FakeCity(dialect=Dialect(media="array"))  # the default takes none, like the spec
    files = [photo(), MediaFile.from_bytes(PNG + b"\r\n--boundary\r\n", "b.png")]
    req = request(media=files, attributes={"DEPTH": "7"}, description="Große Lücke")
    response = _post(city, req, "multipart_array")
    assert response.status_code == 200, response.text
    [stored] = city.created
    assert [m.sha256 for m in stored.media] == [
        hashlib.sha256(f.content).hexdigest() for f in files
    ]
    assert [(m.field, m.filename, m.content_type) for m in stored.media] == [
        ("media[]", "pothole.jpg", "image/jpeg"),
        ("media[]", "b.png", "image/png"),
    ]
    assert stored.description == "Große Lücke"
    assert stored.attributes == {"DEPTH": "7"}


def test_contract_single_media_reaches_a_bloomington_city() -> None:
    """The multipart style's one ``media`` part is what a uReport-like city accepts."""
    city = FakeCity(dialect=Dialect.ureport())
    assert _post(city, request(media=photo()), "multipart").status_code == 200
    assert [m.field for m in city.created[0].media] == ["media"]


def test_contract_repeated_media_urls_reach_a_city() -> None:
    """url_repeat sends every URL; the city keeps them all, the first as media_url."""
    city = FakeCity()
    urls = ("https://x.test/a.jpg", "https://x.test/b.jpg")
    assert _post(city, request(media_url=urls), "url_repeat").status_code == 200
    [stored] = city.created
    assert (stored.media_url, stored.media_urls) == (urls[0], urls)
