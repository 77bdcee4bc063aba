"""What a newcomer types is understood (issue 14.8): ``format="XML"`` and CLI choices in any
case; ``--city chicgo`` answers with the command that finds the city; the package's URLs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import click
import pytest
from click.testing import CliRunner

import civic311
from civic311 import InvalidRequestError, UnknownCityError
from civic311.cli._app import cli
from civic311.testing import FakeCity

ROOT = Path(__file__).parent.parent
CONSOLE_SCRIPT = Path(sys.executable).with_name("civic311")


@pytest.fixture
def served() -> Iterator[tuple[FakeCity, str]]:
    city = FakeCity(seed=2)
    with city.serve() as url:
        yield city, url


@pytest.mark.parametrize("spelling", ["XML", "Xml", " xml "])
def test_sync_client_takes_format_in_any_case(served: tuple[FakeCity, str], spelling: str) -> None:
    """Client(format="XML") asks for XML."""
    _, url = served
    events: list[civic311.AttemptEvent] = []
    with civic311.Client(url, format=spelling, on_attempt=events.append) as client:
        assert client.format == "xml"
        assert len(client.list_services()) == 5
    assert [e.format for e in events] == ["xml"]


@pytest.mark.parametrize("spelling", ["JSON", "Json"])
def test_async_client_takes_format_in_any_case(served: tuple[FakeCity, str], spelling: str) -> None:
    """AsyncClient(format="JSON") asks for JSON."""
    _, url = served
    events: list[civic311.AttemptEvent] = []

    async def run() -> int:
        async with civic311.AsyncClient(url, format=spelling, on_attempt=events.append) as client:
            assert client.format == "json"
            return len(await client.list_services())

    assert anyio.run(run) == 5
    assert [e.format for e in events] == ["json"]


@pytest.mark.parametrize("bad", ["yaml", "XMLX", 3, b"xml"])
def test_other_formats_are_still_refused(bad: object) -> None:
    """Anything but json/xml (in any case) is an InvalidRequestError naming format."""
    with pytest.raises(InvalidRequestError, match="format"):
        civic311.Client("http://127.0.0.1:9/open311/v2", format=bad)  # type: ignore[arg-type]


def _choices(command: click.Command, path: str = "civic311") -> Iterator[tuple[str, str]]:
    for param in command.params:
        if isinstance(param.type, click.Choice):
            yield f"{path} {param.name}", str(param.type.case_sensitive)
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _choices(sub, f"{path} {name}")


def test_every_cli_choice_ignores_case() -> None:
    """Every option of the civic311 command that takes a choice takes it in any case."""
    found = dict(_choices(cli))
    assert "civic311 format_" in found
    assert "civic311 fake-city dialect" in found
    assert {name: flag for name, flag in found.items() if flag != "False"} == {}


def test_cli_format_in_capitals(served: tuple[FakeCity, str]) -> None:
    """``civic311 --format XML services`` asks the city for XML."""
    _, url = served
    result = CliRunner().invoke(cli, ["--format", "XML", "--endpoint", url, "--json", "health"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["endpoints"][0]["format"] == "xml"


def test_unknown_city_in_python_points_at_python() -> None:
    """The library's error keeps the Python advice and the suggestion."""
    with pytest.raises(UnknownCityError) as caught:
        civic311.Client.for_city("chicgo")
    assert caught.value.suggestions == ["chicago"]
    assert "civic311.cities.search()" in str(caught.value)


def test_cli_unknown_city_suggests_the_command(tmp_path: Path) -> None:
    """``civic311 --city chicgo services`` suggests chicago and ``civic311 cities chic``."""
    result = CliRunner().invoke(cli, ["--city", "chicgo", "services"])
    assert result.exit_code == 2
    assert "did you mean chicago?" in result.stderr
    assert "`civic311 cities chic`" in result.stderr
    assert "civic311.cities" not in result.stderr


def test_cli_unknown_city_as_a_process(tmp_path: Path) -> None:
    """The same from the installed console script: one line, exit 2, no Python in it."""
    if not CONSOLE_SCRIPT.exists():
        pytest.skip("the console script is not installed next to this Python")
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "--city", "chicgo", "services"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "CIVIC311_LEDGER": str(tmp_path / "l.sqlite")},
    )
    assert done.returncode == 2
    assert "civic311 cities chic" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is Python 3.11+")
def test_pyproject_names_the_project_urls() -> None:
    """pyproject.toml has Homepage, Documentation, Source, Issues and Changelog URLs."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    urls = project["urls"]
    assert set(urls) >= {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
    assert all(url.startswith("https://") for url in urls.values())
    assert urls["Changelog"].endswith("/CHANGELOG.md")
    assert (ROOT / "CHANGELOG.md").exists()
    assert (ROOT / "LICENSE").exists()


def test_cli_choices_in_capitals_as_a_process(served: tuple[FakeCity, str], tmp_path: Path) -> None:
    """``civic311 --format XML … health`` from the console script asks for XML, exit 0."""
    if not CONSOLE_SCRIPT.exists():
        pytest.skip("the console script is not installed next to this Python")
    _, url = served
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "--format", "XML", "--endpoint", url, "--json", "health"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "CIVIC311_LEDGER": str(tmp_path / "l.sqlite")},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["endpoints"][0]["format"] == "xml"
