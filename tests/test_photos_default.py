"""Photos (issue 14.3): civic311's default and FakeCity's default agree (no uploads, as in the
spec), and the error says how to turn uploads on for a city that takes them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

import civic311
from civic311 import InvalidRequestError, MediaFile, NewRequest
from civic311.cli._app import cli
from civic311.testing import Dialect, FakeCity

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 2 + b"\xff\xd9"
PHOTO = MediaFile.from_bytes(JPEG, "pothole.jpg")
REPORT = NewRequest(service_code="001", lat=39.1, long=-86.5, description="hole", media=[PHOTO])


def _advice(error: InvalidRequestError) -> None:
    assert error.field == "media"
    assert "takes no uploads" in str(error)
    assert 'profile="bloomington"' in str(error)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_sync_defaults_agree(fmt: str) -> None:
    """Default Client, default FakeCity: a file is refused locally with the advice; no call."""
    city = FakeCity()
    with (
        city.serve() as url,
        civic311.Client(url, format=fmt) as client,
        pytest.raises(InvalidRequestError) as caught,
    ):
        client.submit(REPORT)
    _advice(caught.value)
    assert city.calls == []


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_async_defaults_agree(fmt: str) -> None:
    """The same with AsyncClient."""
    city = FakeCity()

    async def run(url: str) -> None:
        async with civic311.AsyncClient(url, format=fmt) as client:
            await client.submit(REPORT)

    with city.serve() as url, pytest.raises(InvalidRequestError) as caught:
        anyio.run(run, url)
    _advice(caught.value)
    assert city.calls == []


def test_default_fakecity_refuses_what_a_spec_city_refuses() -> None:
    """A client that forces files on the default FakeCity gets the spec city's 400."""
    city = FakeCity()
    with (
        city.serve() as url,
        civic311.Client(url, profile="helsinki") as client,
        pytest.raises(civic311.BadRequestError, match="takes no file uploads"),
    ):
        client.submit(REPORT)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_following_the_advice_uploads(fmt: str) -> None:
    """With the profile the error names, a city that takes files gets the bytes intact."""
    city = FakeCity(dialect=Dialect(media="single"))

    async def run(url: str) -> str | None:
        async with civic311.AsyncClient(url, format=fmt, profile="bloomington") as client:
            return (await client.submit(REPORT)).service_request_id

    with city.serve() as url:
        with civic311.Client(url, format=fmt, profile="bloomington") as client:
            first = client.submit(REPORT).service_request_id
        second = anyio.run(run, url)
    for request_id in (first, second):
        stored = city.get(request_id or "")
        assert stored is not None
        assert [m.sha256 for m in stored.media] == [hashlib.sha256(JPEG).hexdigest()]


def test_cli_photo_needs_a_profile_that_takes_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``civic311 submit --photo`` exits 2 with the advice; with --profile it uploads."""
    monkeypatch.setenv("CIVIC311_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.delenv("CIVIC311_API_KEY", raising=False)
    photo = tmp_path / "pothole.jpg"
    photo.write_bytes(JPEG)
    city = FakeCity(dialect=Dialect(media="array"))
    submit = [
        "submit",
        "--service-code",
        "001",
        "--lat",
        "39.1",
        "--long",
        "-86.5",
        "--description",
        "hole",
        "--photo",
        str(photo),
    ]
    with city.serve() as url:
        refused = CliRunner().invoke(cli, ["--endpoint", url, *submit])
        filed = CliRunner().invoke(cli, ["--endpoint", url, "--profile", "helsinki", *submit])
    assert refused.exit_code == 2
    assert 'profile="helsinki"' in refused.stderr
    assert filed.exit_code == 0, filed.output
    assert [m.filename for m in city.created[0].media] == ["pothole.jpg"]


def test_cli_photo_as_a_process(tmp_path: Path) -> None:
    """The console script: --photo at a spec city exits 2 naming the profiles, sends nothing."""
    import os
    import subprocess
    import sys

    script = Path(sys.executable).with_name("civic311")
    if not script.exists():
        pytest.skip("the console script is not installed next to this Python")
    photo = tmp_path / "pothole.jpg"
    photo.write_bytes(JPEG)
    city = FakeCity()
    env = {**os.environ, "CIVIC311_LEDGER": str(tmp_path / "ledger.sqlite")}
    env.pop("CIVIC311_API_KEY", None)
    with city.serve() as url:
        done = subprocess.run(
            [
                str(script),
                "--endpoint",
                url,
                "submit",
                "--service-code",
                "001",
                "--lat",
                "39.1",
                "--long",
                "-86.5",
                "--photo",
                str(photo),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
    assert done.returncode == 2, done.stderr
    assert "takes no uploads" in done.stderr
    assert 'profile="bloomington"' in done.stderr
    assert [c for c in city.calls if c.method == "POST"] == []
