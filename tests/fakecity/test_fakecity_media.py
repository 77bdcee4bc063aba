"""FakeCity takes media: multipart/form-data uploads per `Dialect.media` (Bloomington's single
``media``, Helsinki/6aika ``media[]`` or repeated ``media``), and repeated ``media_url`` fields
(FixMyStreet), reference §10.36."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from civic311.testing import Dialect, FakeCity, _wire

from .fakecity_helpers import POTHOLE, body, spec_errors, text, xml

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
# Bytes that look like multipart framing must come through untouched.
TRICKY = b"\r\n--not-the-boundary\r\n\r\n\x00\xff--\r"


def base(http: httpx.Client) -> str:
    """The city's base URL as this client reaches it."""
    return str(http.base_url).rstrip("/")


def manual(parts: list[bytes], boundary: str = "Bound4ry-XYZ") -> tuple[bytes, dict[str, str]]:
    """A hand-written multipart body from raw parts (headers + blank line + content)."""
    delimiter = f"--{boundary}".encode()
    payload = b"".join(delimiter + b"\r\n" + part + b"\r\n" for part in parts)
    payload += delimiter + b"--\r\n"
    return payload, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def field(name: str, value: str) -> bytes:
    """One text part."""
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()


def upload(name: str, filename: str, content: bytes, ctype: str = "image/jpeg") -> bytes:
    """One file part."""
    head = (
        f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        f"Content-Type: {ctype}\r\n\r\n"
    )
    return head.encode() + content


def post_files(http: httpx.Client, files: list[Any], **data: Any) -> httpx.Response:
    """POST the pothole report with *files* as multipart/form-data."""
    return http.post("requests.json", data={**POTHOLE, **data}, files=files)


@pytest.fixture(autouse=True)
def takes_uploads(city: FakeCity) -> None:
    """These tests are about a city that takes files: the default dialect takes none (like the
    spec and civic311's spec profile), so the city here takes any number (``array``)."""
    city.dialect = Dialect(media="array")


def test_the_default_city_takes_no_uploads() -> None:
    """A default FakeCity answers a file with a 400, as a spec city would: the default agrees
    with civic311's spec profile, which sends none."""
    assert Dialect().media == "none"
    assert Dialect.spec().media == "none"
    assert Dialect.sixaika().media == "array"
    assert Dialect.ureport().media == "single"


# --- accepted uploads -----------------------------------------------------------------------


def test_one_upload_is_stored_and_becomes_the_media_url(http: httpx.Client, city: FakeCity) -> None:
    """A media part is kept as name, type, size and SHA-256; its URL under the city is media_url."""
    response = post_files(http, [("media", ("pothole.jpg", JPEG, "image/jpeg"))])
    assert response.status_code == 200, response.text
    [item] = body(response)
    stored = city.get(item["service_request_id"])
    assert stored is not None
    [media] = stored.media
    assert (media.field, media.filename, media.content_type) == (
        "media",
        "pothole.jpg",
        "image/jpeg",
    )
    assert (media.size, media.sha256) == (len(JPEG), hashlib.sha256(JPEG).hexdigest())
    url = f"{base(http)}/media/{stored.service_request_id}/1"
    assert media.url == url
    assert (stored.media_url, stored.media_urls) == (url, (url,))
    assert stored.description == "Big hole"  # the text fields came through too


def test_the_media_url_is_published_by_get_requests(http: httpx.Client, city: FakeCity) -> None:
    """GET requests/{id} shows the upload's URL as media_url, in both formats."""
    [item] = body(post_files(http, [("media", ("a.jpg", JPEG, "image/jpeg"))]))
    rid = item["service_request_id"]
    expected = f"{base(http)}/media/{rid}/1"
    assert body(http.get(f"requests/{rid}.json"))[0]["media_url"] == expected
    request = xml(http.get(f"requests/{rid}.xml")).find("request")
    assert request is not None
    assert text(request, "media_url") == expected


@pytest.mark.parametrize("name", ["media[]", "media"])
def test_array_city_takes_several_files_in_order(
    http: httpx.Client, city: FakeCity, name: str
) -> None:
    """The default ("array") city takes media[] parts or repeated media parts, in order."""
    files = [
        (name, ("a.jpg", JPEG, "image/jpeg")),
        (name, ("b.bin", TRICKY, "application/octet-stream")),
    ]
    assert post_files(http, files).status_code == 200
    [stored] = city.created
    assert [(m.field, m.filename, m.size) for m in stored.media] == [
        (name, "a.jpg", len(JPEG)),
        (name, "b.bin", len(TRICKY)),
    ]
    assert stored.media[1].sha256 == hashlib.sha256(TRICKY).hexdigest()
    assert [u.rsplit("/", 1)[1] for u in stored.media_urls] == ["1", "2"]


def test_uploads_come_before_media_url_fields(http: httpx.Client, city: FakeCity) -> None:
    """With both, files take precedence (v2.1 draft): media_url is the upload's, the URL kept."""
    response = post_files(
        http, [("media[]", ("a.jpg", JPEG, "image/jpeg"))], media_url="https://x.test/p.jpg"
    )
    assert response.status_code == 200
    [stored] = city.created
    assert stored.media_url == stored.media[0].url
    assert stored.media_urls == (stored.media[0].url, "https://x.test/p.jpg")


def test_multipart_fields_are_read_like_a_form(http: httpx.Client, city: FakeCity) -> None:
    """Attributes (brackets), UTF-8 text and api_key work in a multipart body too."""
    city.api_key = "secret"
    response = http.post(
        "requests.json",
        data={
            "service_code": "003",
            "address_string": "Kauppatori, Helsinki",
            "description": "Töhryjä seinässä",
            "attribute[SURFACE][]": ["brick", "metal"],
            "api_key": "secret",
        },
        files=[("media[]", ("a.jpg", JPEG, "image/jpeg"))],
    )
    assert response.status_code == 200, response.text
    [stored] = city.created
    assert stored.attributes == {"SURFACE": ("brick", "metal")}
    assert stored.description == "Töhryjä seinässä"


def test_multipart_without_files_is_a_plain_report(http: httpx.Client, city: FakeCity) -> None:
    """A multipart POST with text fields only files a request with no media."""
    payload, headers = manual([field(k, v) for k, v in POTHOLE.items()])
    assert http.post("requests.json", content=payload, headers=headers).status_code == 200
    [stored] = city.created
    assert (stored.media, stored.media_url, stored.media_urls) == ((), None, ())


def test_boundary_is_case_sensitive_and_may_be_quoted(http: httpx.Client, city: FakeCity) -> None:
    """A mixed-case, quoted boundary is honoured exactly (RFC 2046 §5.1.1)."""
    payload, _ = manual(
        [*(field(k, v) for k, v in POTHOLE.items()), upload("media", "a.jpg", JPEG)],
        boundary="AbC'()+_,-./:=?x",
    )
    headers = {"Content-Type": 'multipart/form-data; boundary="AbC\'()+_,-./:=?x"'}
    response = http.post("requests.json", content=payload, headers=headers)
    assert response.status_code == 200, response.text
    assert city.created[0].media[0].sha256 == hashlib.sha256(JPEG).hexdigest()


def test_preamble_and_epilogue_are_ignored(http: httpx.Client, city: FakeCity) -> None:
    """Text before the first boundary and after the last one is not part of the form."""
    payload, headers = manual([field(k, v) for k, v in POTHOLE.items()])
    payload = b"preamble\r\n" + payload + b"epilogue"
    assert http.post("requests.json", content=payload, headers=headers).status_code == 200
    assert city.created[0].description == "Big hole"


# --- repeated media_url ---------------------------------------------------------------------


def test_repeated_media_url_fields_are_all_kept(http: httpx.Client, city: FakeCity) -> None:
    """FixMyStreet-style repeated media_url: the first is media_url, all are in media_urls."""
    urls = ["https://x.test/1.jpg", "https://x.test/2.jpg", "https://x.test/3.jpg"]
    response = http.post("requests.json", data={**POTHOLE, "media_url": urls})
    assert response.status_code == 200
    [stored] = city.created
    assert stored.media_url == urls[0]
    assert stored.media_urls == tuple(urls)
    assert stored.media == ()


def test_one_media_url_is_kept_as_before(http: httpx.Client, city: FakeCity) -> None:
    """A single media_url (the spec's field) is stored and shown as sent."""
    http.post("requests.json", data={**POTHOLE, "media_url": " https://x.test/1.jpg "})
    [stored] = city.created
    assert (stored.media_url, stored.media_urls) == (
        "https://x.test/1.jpg",
        ("https://x.test/1.jpg",),
    )


# --- what each dialect refuses --------------------------------------------------------------


def test_single_city_takes_one_media_part(http: httpx.Client, city: FakeCity) -> None:
    """A Bloomington-like city (media="single") takes one file in "media"."""
    city.dialect = Dialect.ureport()
    assert city.dialect.media == "single"
    assert post_files(http, [("media", ("a.jpg", JPEG, "image/jpeg"))]).status_code == 200
    assert len(city.created[0].media) == 1


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            [("media", ("a.jpg", JPEG, "image/jpeg")), ("media", ("b.jpg", JPEG, "image/jpeg"))],
            "this city takes one file in media, got 2",
        ),
        ([("media[]", ("a.jpg", JPEG, "image/jpeg"))], "unexpected file field 'media[]'"),
    ],
)
def test_single_city_refuses_several_files_or_media_brackets(
    http: httpx.Client, city: FakeCity, files: list[Any], message: str
) -> None:
    """media="single" answers 400 for two files or a media[] part, and stores nothing."""
    city.dialect = Dialect.spec().replace(media="single")
    response = post_files(http, files)
    assert response.status_code == 400
    assert any(message in d for _, d in spec_errors(response, "json"))
    assert city.created == []


def test_city_without_uploads_refuses_files(http: httpx.Client, city: FakeCity) -> None:
    """media="none" answers 400 to a file, pointing to media_url."""
    city.dialect = Dialect(media="none")
    response = post_files(http, [("media", ("a.jpg", JPEG, "image/jpeg"))])
    assert response.status_code == 400
    assert spec_errors(response, "json") == [
        (400, "this city takes no file uploads; give media_url instead")
    ]
    assert city.created == []


def test_unknown_file_fields_are_refused(http: httpx.Client, city: FakeCity) -> None:
    """A file in a field the city does not read (FMS's photo1) is a 400, not silently dropped."""
    response = post_files(http, [("photo1", ("a.jpg", JPEG, "image/jpeg"))])
    assert response.status_code == 400
    assert "unexpected file field 'photo1'" in spec_errors(response, "json")[0][1]


def test_empty_files_are_refused(http: httpx.Client, city: FakeCity) -> None:
    """An uploaded file with no bytes is a 400."""
    response = post_files(http, [("media", ("a.jpg", b"", "image/jpeg"))])
    assert response.status_code == 400
    assert "'a.jpg' is empty" in spec_errors(response, "json")[0][1]


def test_media_option_is_checked() -> None:
    """Dialect.media takes none, single or array only."""
    with pytest.raises(ValueError, match="media"):
        Dialect(media="many")  # type: ignore[arg-type]


# --- malformed bodies -----------------------------------------------------------------------


def _sent(http: httpx.Client, payload: bytes, ctype: str) -> httpx.Response:
    return http.post("requests.json", content=payload, headers={"Content-Type": ctype})


GOOD = "multipart/form-data; boundary=Bound4ry-XYZ"


@pytest.mark.parametrize(
    ("payload", "ctype", "message"),
    [
        (manual([field("service_code", "001")])[0], "multipart/form-data", "boundary"),
        (manual([field("service_code", "001")])[0], "multipart/form-data; boundary=", "boundary"),
        (b"--Bound4ry-XYZ\r\n" + field("a", "b"), GOOD, "no closing boundary"),
        (b"no delimiter at all", GOOD, "no opening boundary"),
        (manual([b"X-Nothing: here\r\n\r\nvalue"])[0], GOOD, "no Content-Disposition"),
        (manual([b"\r\nheaderless"])[0], GOOD, "no headers"),
        (manual([b'Content-Disposition: form-data; name="a"'])[0], GOOD, "no blank line"),
        (manual([b"Content-Disposition: attachment\r\n\r\nx"])[0], GOOD, "form-data with a name"),
        (manual([b'Content-Disposition: form-data; name="a"\r\n\r\n\xff'])[0], GOOD, "not UTF-8"),
        (manual([b"Bad header line\r\n\r\nx"])[0], GOOD, "malformed header"),
        (b"--Bound4ry-XYZgarbage\r\n", GOOD, "not followed by a line break"),
    ],
)
def test_malformed_multipart_is_a_400(
    http: httpx.Client, city: FakeCity, payload: bytes, ctype: str, message: str
) -> None:
    """A broken multipart body is refused with a 400 that says what is wrong; nothing is stored."""
    response = _sent(http, payload, ctype)
    assert response.status_code == 400
    [(code, description)] = spec_errors(response, "json")
    assert code == 400
    assert message in description
    assert city.created == []


def test_too_many_parts_is_a_400(http: httpx.Client, city: FakeCity) -> None:
    """More than 256 parts is refused (a bounded parser)."""
    payload, headers = manual([field(f"f{i}", "x") for i in range(300)])
    response = http.post("requests.json", content=payload, headers=headers)
    assert response.status_code == 400
    assert "more than 256 parts" in spec_errors(response, "json")[0][1]


def test_a_body_over_the_cap_is_a_413(city: FakeCity, monkeypatch: pytest.MonkeyPatch) -> None:
    """A multipart body over MAX_MULTIPART_BYTES is refused with 413 before parsing."""
    monkeypatch.setattr(_wire, "MAX_MULTIPART_BYTES", 1000)
    with httpx.Client(transport=city.transport(), base_url=city.base_url) as http:
        response = post_files(http, [("media", ("a.jpg", b"x" * 2000, "image/jpeg"))])
    assert response.status_code == 413
    assert city.created == []


def test_other_content_types_are_still_refused(http: httpx.Client) -> None:
    """Only urlencoded and multipart/form-data bodies are POST forms."""
    response = _sent(http, b'{"service_code": "001"}', "application/json")
    assert response.status_code == 400
    assert "multipart/form-data" in spec_errors(response, "json")[0][1]


async def _async_upload(city: FakeCity) -> httpx.Response:
    async with httpx.AsyncClient(transport=city.transport(), base_url=city.base_url) as http:
        return await http.post(
            "requests.json", data=POTHOLE, files=[("media", ("a.jpg", JPEG, "image/jpeg"))]
        )


@pytest.mark.anyio
async def test_async_clients_upload_too(city: FakeCity) -> None:
    """The in-process transport takes multipart uploads from httpx.AsyncClient as well."""
    response = await _async_upload(city)
    assert response.status_code == 200
    assert city.created[0].media[0].sha256 == hashlib.sha256(JPEG).hexdigest()
