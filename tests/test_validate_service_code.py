"""``submit(validate=True)`` and ``civic311 submit`` refuse a service the city does not offer,
before anything is sent (issue 14.6), like bulk submit already did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

import civic311
from civic311 import InvalidRequestError, NewRequest
from civic311.cli._app import cli
from civic311.testing import FakeCity, Fault

UNKNOWN = NewRequest(service_code="999", lat=39.1, long=-86.5, description="no such service")
BATCH = NewRequest(service_code="004", lat=39.1, long=-86.5, description="loud music")


def _posts(city: FakeCity) -> int:
    return sum(1 for call in city.calls if call.method == "POST")


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_sync_validate_refuses_an_unknown_service(fmt: str) -> None:
    """Client.submit(validate=True) names service_code and the city's services; no POST."""
    city = FakeCity(seed=1)
    with (
        city.serve() as url,
        civic311.Client(url, format=fmt) as client,
        pytest.raises(InvalidRequestError) as caught,
    ):
        client.submit(UNKNOWN, validate=True)
    assert caught.value.field == "service_code"
    assert "'999' is not one of the city's 5 services (001, 002, 003, 004, 005)" in str(
        caught.value
    )
    assert _posts(city) == 0


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_async_validate_refuses_an_unknown_service(fmt: str) -> None:
    """AsyncClient.submit(validate=True) refuses the same way; no POST."""
    city = FakeCity(seed=1)

    async def run(url: str) -> None:
        async with civic311.AsyncClient(url, format=fmt) as client:
            await client.submit(UNKNOWN, validate=True)

    with city.serve() as url, pytest.raises(InvalidRequestError, match="not one of the city's"):
        anyio.run(run, url)
    assert _posts(city) == 0


def test_without_validate_the_city_decides() -> None:
    """validate=False sends as before: the city answers with its own error (an APIError)."""
    city = FakeCity(seed=1)
    with (
        city.serve() as url,
        civic311.Client(url) as client,
        pytest.raises(civic311.APIError),
    ):
        client.submit(UNKNOWN)
    assert _posts(city) == 1


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_city_without_definitions_still_takes_known_services(fmt: str) -> None:
    """Where every definition is an HTML 404 (6aika, real-servers A_definition_001), a listed
    service is filed and an unlisted one refused: the service list decides, not the 404."""
    city = FakeCity(seed=1)
    city.inject(Fault.status(404, body="html"), method="GET", path="services/*")
    with city.serve() as url, civic311.Client(url, format=fmt) as client:
        receipt = client.submit(BATCH, validate=True)
        with pytest.raises(InvalidRequestError, match="'999' is not one of"):
            client.submit(UNKNOWN, validate=True)
    assert receipt.token is not None
    assert _posts(city) == 1


def test_known_service_is_checked_once_per_hour() -> None:
    """The service list is read only when a definition is missing, and the answer is cached."""
    city = FakeCity(seed=1)
    city.inject(Fault.status(404, body="html"), method="GET", path="services/*")
    with city.serve() as url, civic311.Client(url) as client:
        client.submit(BATCH, validate=True)
        client.submit(BATCH, validate=True)
    gets = [call.path for call in city.calls if call.method == "GET"]
    assert len(gets) == 2  # one definition (404), one service list; the second submit: none


def _submit_args(url: str) -> list[str]:
    return [
        "--endpoint",
        url,
        "submit",
        "--service-code",
        "999",
        "--lat",
        "39.1",
        "--long",
        "-86.5",
        "--description",
        "no such service",
    ]


def test_cli_submit_refuses_an_unknown_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``civic311 submit`` with an unknown code exits 2 naming it; nothing is sent."""
    monkeypatch.setenv("CIVIC311_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.delenv("CIVIC311_API_KEY", raising=False)
    city = FakeCity(seed=1)
    with city.serve() as url:
        result = CliRunner().invoke(cli, _submit_args(url))
    assert result.exit_code == 2, result.output
    assert "service_code: '999' is not one of the city's 5 services" in result.stderr
    assert _posts(city) == 0


def test_cli_submit_refuses_an_unknown_service_as_a_process(tmp_path: Path) -> None:
    """The same through the installed console script, in a real process."""
    script = Path(sys.executable).with_name("civic311")
    if not script.exists():
        pytest.skip("the console script is not installed next to this Python")
    env = {**os.environ, "CIVIC311_LEDGER": str(tmp_path / "ledger.sqlite")}
    env.pop("CIVIC311_API_KEY", None)
    city = FakeCity(seed=1)
    with city.serve() as url:
        done = subprocess.run(
            [str(script), *_submit_args(url)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
    assert done.returncode == 2, done.stderr
    assert "'999' is not one of the city's 5 services" in done.stderr
    assert _posts(city) == 0
