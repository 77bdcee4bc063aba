"""The `civic311` command line, against FakeCity served on 127.0.0.1."""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import civic311
import civic311.outbox
from civic311 import cities
from civic311.cli import main
from civic311.cli._app import cli
from civic311.cli._output import Scrubbed, jsonable
from civic311.cli._state import default_ledger_path
from civic311.ledger import Ledger
from civic311.testing import Dialect, FakeCity

KEY = "k3y-SeCrEt-0d1e-9f7a"
CONSOLE_SCRIPT = Path(sys.executable).with_name("civic311")
NOW = datetime.now(timezone.utc)
START = (NOW - timedelta(days=120)).strftime("%Y-%m-%dT%H:%M:%SZ")  # harvests: any span
RECENT = (NOW - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")  # requests: ≤ 90 days
END = (NOW + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real user data dir, no ambient key: the ledger is a temp file."""
    monkeypatch.delenv("CIVIC311_API_KEY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    ledger = tmp_path / "ledger.sqlite"
    monkeypatch.setenv("CIVIC311_LEDGER", str(ledger))
    return ledger


@pytest.fixture
def city() -> FakeCity:
    return FakeCity(seed=7, api_key=KEY)


@pytest.fixture
def url(city: FakeCity) -> Iterator[str]:
    with city.serve() as base:
        yield base


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "api-key"
    path.write_text(KEY + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def testville() -> Iterator[cities.City]:
    """A registry city whose endpoint refuses connections, with other channels."""
    city = cities.City(
        key="testville",
        name="Testville",
        country="Nowhere",
        production=(closed_url(),),
        status="active",
        channels={"web": "https://testville.example/311", "phone": "311"},
    )
    cities.register(city)
    try:
        yield city
    finally:
        cities.unregister("testville")


def closed_url() -> str:
    """A loopback URL nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/open311/v2"


def run(*args: str, input: str | None = None) -> Result:
    """Run the command in process; stdout and stderr stay apart."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def at(url: str, *args: str) -> list[str]:
    """Global options for *url* with a short timeout, then *args*."""
    return ["--endpoint", url, "--timeout", "5", *args]


def no_key(result: Result | subprocess.CompletedProcess[str]) -> None:
    assert KEY not in result.stdout
    assert KEY not in result.stderr


def submit_args(*extra: str) -> list[str]:
    return [
        "submit",
        "--service-code",
        "001",
        "--lat",
        "39.16",
        "--long",
        "-86.52",
        "--description",
        "Deep pothole in the right lane",
        *extra,
    ]


# --- the group -------------------------------------------------------------------------------


def test_no_command_prints_usage_on_stdout_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """`civic311` alone prints the help (with every command) on stdout and exits 2."""
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("cities", "services", "submit", "bulk", "ledger", "stats", "demo"):
        assert command in out


def test_help_documents_exit_codes_key_and_ledger() -> None:
    """--help has the exit-code table, where the key comes from, and where the ledger lives."""
    result = run("--help")
    assert result.exit_code == 0
    for text in ("Exit codes", "3  no endpoint", "CIVIC311_API_KEY", "XDG_DATA_HOME"):
        assert text in result.stdout


def test_version() -> None:
    """--version prints civic311's version."""
    result = run("--version")
    assert result.exit_code == 0
    assert civic311.__version__ in result.stdout


def test_usage_error_exits_2() -> None:
    """An unknown option is a click usage error: exit 2."""
    result = run("services", "--no-such-option")
    assert result.exit_code == 2
    assert "no-such-option" in result.stderr


def test_command_needing_a_city_without_one_exits_2() -> None:
    """A command that talks to a city, given neither --city nor --endpoint, exits 2 and says so."""
    result = run("services")
    assert result.exit_code == 2
    assert "--city NAME" in result.stderr
    assert "--endpoint URL" in result.stderr


def test_unknown_city_exits_2() -> None:
    """An unknown --city is an input error: one line naming close matches, exit 2."""
    result = run("--city", "bloomingtn", "services")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: UnknownCityError:")
    assert "bloomington" in result.stderr
    assert "Traceback" not in result.stderr


# --- cities ----------------------------------------------------------------------------------


def test_cities_lists_the_registry() -> None:
    """`cities` lists every bundled city in a table."""
    result = run("cities")
    assert result.exit_code == 0
    assert "bloomington" in result.stdout
    assert f"{len(cities.all_cities())} cities" in result.stdout


def test_cities_query_as_json() -> None:
    """`--json cities koln` finds Köln, as the registry's JSON form."""
    result = run("--json", "cities", "koln")
    assert result.exit_code == 0
    found = json.loads(result.stdout)
    assert [c["key"] for c in found] == ["koeln"]
    assert found[0]["production"]


def test_cities_without_match_says_so() -> None:
    """A query that matches nothing says so on stderr and exits 0."""
    result = run("cities", "atlantis-under-the-sea")
    assert result.exit_code == 0
    assert "No city" in result.stderr
    assert result.stdout == ""


# --- services and definitions ----------------------------------------------------------------


def test_services_table(url: str) -> None:
    """`services` shows the city's services."""
    result = run(*at(url, "services"))
    assert result.exit_code == 0, result.stderr
    assert "Pothole" in result.stdout
    assert "5 services" in result.stdout


def test_services_json_in_xml(url: str) -> None:
    """`--json --format xml services` asks in XML and prints `to_dict` JSON."""
    result = run("--json", "--format", "xml", *at(url, "services"))
    assert result.exit_code == 0, result.stderr
    services = json.loads(result.stdout)
    assert [s["service_code"] for s in services] == ["001", "002", "003", "004", "005"]
    assert services[0]["service_name"] == "Pothole"


def test_definition_shows_attributes_and_values(url: str) -> None:
    """`definition 003` lists its attributes, which are required, and list values."""
    result = run(*at(url, "definition", "003"))
    assert result.exit_code == 0, result.stderr
    assert "SURFACE" in result.stdout
    assert "required" in result.stdout
    assert "brick=Brick or stone" in result.stdout


def test_definition_json(url: str) -> None:
    """`--json definition 002` parses as the ServiceDefinition's dict."""
    result = run("--json", *at(url, "definition", "002"))
    assert result.exit_code == 0, result.stderr
    definition = json.loads(result.stdout)
    assert definition["service_code"] == "002"
    assert definition["attributes"][0]["code"] == "LIGHTTYPE"


def test_definition_of_unknown_service_exits_1(url: str) -> None:
    """The city's 404 for an unknown service is exit 1, one line on stderr."""
    result = run(*at(url, "definition", "999"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: NotFoundError:")
    assert len(result.stderr.strip().splitlines()) == 1


# --- submit ----------------------------------------------------------------------------------


def test_submit_files_and_records_in_the_ledger(
    city: FakeCity, url: str, key_file: Path, env: Path
) -> None:
    """`submit` files once, prints the id, and records the submission in the ledger."""
    result = run("--api-key-file", str(key_file), *at(url, *submit_args("--attribute", "DEPTH=7")))
    assert result.exit_code == 0, result.stderr
    assert city.count_created() == 1
    request_id = city.created[0].service_request_id
    assert f"Filed: service request {request_id}" in result.stdout
    assert str(env) in result.stdout
    with Ledger(env) as ledger:
        [submission] = ledger.submissions()
    assert submission.state == "sent"
    assert submission.service_request_id == request_id
    assert submission.endpoint == url
    no_key(result)


def test_submit_json(city: FakeCity, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--json submit` prints the receipt and the ledger entry as JSON; the env key works."""
    monkeypatch.setenv("CIVIC311_API_KEY", KEY)
    result = run("--json", *at(url, *submit_args()))
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["receipt"]["service_request_id"] == city.created[0].service_request_id
    assert answer["service_request_id"] == city.created[0].service_request_id
    assert answer["ledger"]["submission"] == 1
    no_key(result)


def test_submit_repeated_attribute_is_a_multivaluelist(
    city: FakeCity, url: str, key_file: Path
) -> None:
    """Repeating --attribute CODE=… sends every value of a multivaluelist."""
    result = run(
        "--api-key-file",
        str(key_file),
        *at(
            url,
            "submit",
            "--service-code",
            "003",
            "--address",
            "12 Elm St",
            "--attribute",
            "SURFACE=brick",
            "--attribute",
            "SURFACE=wood",
            "--attribute",
            "OFFENSIVE=N",
        ),
    )
    assert result.exit_code == 0, result.stderr
    assert city.created[0].attributes["SURFACE"] == ("brick", "wood")
    assert city.created[0].address == "12 Elm St"


def test_submit_rejected_by_the_definition_exits_2_and_sends_nothing(
    city: FakeCity, url: str, key_file: Path, env: Path
) -> None:
    """Local validation against the definition fails before the POST: exit 2, nothing filed."""
    result = run(
        "--api-key-file",
        str(key_file),
        *at(url, *submit_args("--attribute", "DEPTH=very")),
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ValidationFailedError:")
    assert "DEPTH" in result.stderr
    assert city.count_created() == 0
    with Ledger(env) as ledger:
        assert ledger.submissions() == []


def test_submit_without_validation_lets_the_city_decide(
    city: FakeCity, url: str, key_file: Path
) -> None:
    """--no-validate skips the definition check; the city's own 400 is exit 1."""
    result = run(
        "--api-key-file",
        str(key_file),
        *at(
            url,
            "submit",
            "--service-code",
            "003",
            "--address",
            "12 Elm St",
            "--no-validate",
        ),
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: BadRequestError:")
    assert city.count_created() == 0


def test_submit_bad_attribute_syntax_exits_2(url: str) -> None:
    """--attribute without '=' is a usage error."""
    result = run(*at(url, *submit_args("--attribute", "DEPTH")))
    assert result.exit_code == 2
    assert "CODE=VALUE" in result.stderr


def test_submit_without_location_exits_2(city: FakeCity, url: str) -> None:
    """A request without a location is refused locally, naming the field."""
    result = run(*at(url, "submit", "--service-code", "001", "--description", "pothole"))
    assert result.exit_code == 2
    assert "location" in result.stderr
    assert city.count_created() == 0


def test_submit_refused_by_the_city_exits_1_and_is_recorded(
    city: FakeCity, url: str, env: Path
) -> None:
    """Without the api key the city answers 403: exit 1, and the ledger records the failure."""
    result = run(*at(url, *submit_args()))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ForbiddenError:")
    assert "No api key was given" in result.stderr
    with Ledger(env) as ledger:
        [submission] = ledger.submissions()
    assert submission.state == "failed"
    assert "403" in (submission.error or "")


def test_submit_wait_turns_the_token_into_an_id(
    city: FakeCity, url: str, key_file: Path, env: Path
) -> None:
    """--wait polls a batch service's token until the city gives an id, and records it."""
    result = run(
        "--api-key-file",
        str(key_file),
        *at(
            url,
            "submit",
            "--service-code",
            "004",
            "--address",
            "1 Main St",
            "--description",
            "Music too loud",
            "--wait",
            "--wait-timeout",
            "10",
        ),
    )
    assert result.exit_code == 0, result.stderr
    created = city.created[0]
    assert f"token {created.token}" in result.stdout
    assert f"→ service request {created.service_request_id}" in result.stdout
    with Ledger(env) as ledger:
        [submission] = ledger.submissions()
    assert submission.service_request_id == created.service_request_id
    assert submission.token_resolved_at is not None


def test_submit_photo(tmp_path: Path, url: str, key_file: Path) -> None:
    """--photo uploads a file where the profile takes uploads."""
    city = FakeCity(seed=1, api_key=KEY, dialect=Dialect(media="array"))  # default: no uploads
    photo = tmp_path / "pothole.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with city.serve() as base:
        result = run(
            "--api-key-file",
            str(key_file),
            "--profile",
            "helsinki",
            *at(base, *submit_args("--photo", str(photo), "--no-validate")),
        )
    assert result.exit_code == 0, result.stderr
    assert [m.filename for m in city.created[0].media] == ["pothole.jpg"]


def test_submit_missing_photo_exits_2(url: str) -> None:
    """A --photo path that does not exist is a usage error."""
    result = run(*at(url, *submit_args("--photo", "/no/such/photo.jpg")))
    assert result.exit_code == 2
    assert "photo.jpg" in result.stderr


def test_submit_with_outbox_queues_when_the_city_is_down(
    tmp_path: Path, key_file: Path, env: Path
) -> None:
    """With --outbox and every endpoint down, the report waits in the outbox (exit 0)."""
    result = run(
        "--api-key-file",
        str(key_file),
        *at(closed_url(), *submit_args("--no-validate", "--outbox", str(tmp_path / "out.db"))),
    )
    assert result.exit_code == 0, result.stderr
    assert "Queued in the outbox" in result.stdout
    with Ledger(env) as ledger:
        [submission] = ledger.submissions()
    assert submission.state == "queued"
    with civic311.outbox.Outbox(tmp_path / "out.db") as outbox:
        assert [e.state for e in outbox.entries()] == ["queued"]


def test_submit_unreachable_exits_3_with_the_citys_other_channels(
    testville: cities.City, env: Path
) -> None:
    """When no endpoint answers: exit 3, one error line, and where else to report."""
    result = run("--city", "testville", "--timeout", "2", *submit_args("--no-validate"))
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    # One endpoint: the refusal itself, not a wrapper (issue 11.9).
    assert lines[0].startswith("error: TransportError: POST http://127.0.0.1:")
    assert "Connection refused" in lines[0]
    assert "Other ways to reach the city:" in lines
    assert "  web: https://testville.example/311" in lines
    assert "  phone: 311" in lines
    assert "Traceback" not in result.stderr
    with Ledger(env) as ledger:
        assert [s.state for s in ledger.submissions()] == ["failed"]


def test_unreachable_without_known_channels_says_so() -> None:
    """Exit 3 for a bare --endpoint says no other channel is known."""
    result = run(*at(closed_url(), "services"))
    assert result.exit_code == 3
    assert "No other way to reach this city is known" in result.stderr


# --- the emergency check ---------------------------------------------------------------------

EMERGENCY = "There is smoke pouring out of the house next door"


def test_emergency_refused_when_not_interactive(city: FakeCity, url: str, key_file: Path) -> None:
    """An emergency-sounding description without --yes, off a terminal: exit 2, nothing sent."""
    result = run(
        "--api-key-file",
        str(key_file),
        *at(
            url,
            "submit",
            "--service-code",
            "001",
            "--address",
            "1 Main St",
            "--description",
            EMERGENCY,
        ),
    )
    assert result.exit_code == 2
    assert "call 911" in result.stderr
    assert "--yes" in result.stderr
    assert "heuristic" in result.stderr
    assert city.count_created() == 0


def test_emergency_yes_files_anyway(city: FakeCity, url: str, key_file: Path) -> None:
    """--yes files the report, with a warning on stderr."""
    result = run(
        "--api-key-file",
        str(key_file),
        *at(
            url,
            "submit",
            "--service-code",
            "001",
            "--address",
            "1 Main St",
            "--description",
            EMERGENCY,
            "--yes",
        ),
    )
    assert result.exit_code == 0, result.stderr
    assert "sounds like an emergency" in result.stderr
    assert city.count_created() == 1


@pytest.mark.parametrize(("answer", "code", "filed"), [("y\n", 0, 1), ("n\n", 2, 0), ("\n", 2, 0)])
def test_emergency_prompt_at_a_terminal(
    city: FakeCity,
    url: str,
    key_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    code: int,
    filed: int,
) -> None:
    """At a terminal the person is asked; only "y" files (the default is no)."""
    monkeypatch.setattr("civic311.cli._state.stdin_is_interactive", lambda: True)
    result = run(
        "--api-key-file",
        str(key_file),
        *at(
            url,
            "submit",
            "--service-code",
            "001",
            "--address",
            "1 Main St",
            "--description",
            EMERGENCY,
        ),
        input=answer,
    )
    assert result.exit_code == code, result.stderr
    assert "This sounds like an emergency" in result.stderr
    assert "Call 911 or your local emergency number. Still file a 311 report? [y/N]" in (
        result.stderr
    )
    assert city.count_created() == filed


# --- tokens and requests ---------------------------------------------------------------------


def test_token_pending_then_resolved(city: FakeCity, url: str, key_file: Path) -> None:
    """`token T` says pending first, then gives the id (also as JSON)."""
    result = run(
        "--json",
        "--api-key-file",
        str(key_file),
        *at(url, "submit", "--service-code", "004", "--address", "1 Main St"),
    )
    token = json.loads(result.stdout)["receipt"]["token"]
    first = run(*at(url, "token", token))
    assert first.exit_code == 0, first.stderr
    assert "still pending" in first.stdout
    second = run("--json", *at(url, "token", token))
    answer = json.loads(second.stdout)
    assert answer["token"] == token
    assert answer["service_request_id"] == city.created[0].service_request_id
    assert answer["pending"] is False


def test_request_shows_one_request(city: FakeCity, url: str) -> None:
    """`request ID` shows its status and description; --json parses."""
    stored = city.add_request("002", description="Lamp flickers", address="5 Oak Ave")
    result = run(*at(url, "request", stored.service_request_id))
    assert result.exit_code == 0, result.stderr
    assert "Lamp flickers" in result.stdout
    assert "open" in result.stdout
    as_json = json.loads(run("--json", *at(url, "request", stored.service_request_id)).stdout)
    assert as_json["service_request_id"] == stored.service_request_id
    assert as_json["address"] == "5 Oak Ave"


def test_request_unknown_exits_1(url: str) -> None:
    """An id the city does not know is its 404: exit 1."""
    result = run(*at(url, "request", "424242"))
    assert result.exit_code == 1
    assert "NotFoundError" in result.stderr


def test_requests_with_filters(city: FakeCity, url: str) -> None:
    """`requests` passes --service-code, --status and zoned dates to the city."""
    city.add_request("001", description="open pothole")
    city.add_request("001", description="fixed pothole", closed=True)
    city.add_request("002", description="lamp")
    result = run(
        "--json",
        *at(url, "requests", "--service-code", "001", "--status", "closed", "--start", RECENT),
    )
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert [r["description"] for r in found] == ["fixed pothole"]
    table = run(*at(url, "requests", "--service-code", "001"))
    assert "2 requests" in table.stdout


@pytest.mark.parametrize("value", ["2026-01-01T00:00:00", "2026-01-01", "yesterday"])
def test_naive_or_bad_datetimes_are_refused(url: str, value: str) -> None:
    """A datetime without a zone (or no datetime at all) is a usage error: exit 2."""
    result = run(*at(url, "requests", "--start", value))
    assert result.exit_code == 2
    assert "--start" in result.stderr
    assert ("no timezone" in result.stderr) or ("not an ISO 8601" in result.stderr)


def test_offset_datetimes_are_accepted(url: str) -> None:
    """An explicit offset is fine."""
    start = (NOW - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%S-05:00")
    result = run(*at(url, "requests", "--start", start, "--end", END))
    assert result.exit_code == 0, result.stderr


# --- harvest and stats -----------------------------------------------------------------------


def test_harvest_to_stdout_as_json_lines(city: FakeCity, url: str) -> None:
    """`harvest` writes one JSON object per request to stdout, a count to stderr."""
    city.generate_requests(25)
    result = run(*at(url, "harvest", "--start", START, "--end", END))
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 25
    assert len({line["service_request_id"] for line in lines}) == 25
    assert "harvested 25 requests" in result.stderr


def test_harvest_to_a_file_then_stats_from_it(city: FakeCity, url: str, tmp_path: Path) -> None:
    """`harvest --output` writes a file that `stats --from-file` summarises per service."""
    city.generate_requests(40)
    output = tmp_path / "harvest.jsonl"
    result = run(*at(url, "harvest", "--start", START, "--end", END, "--output", str(output)))
    assert result.exit_code == 0, result.stderr
    assert f"Wrote 40 requests to {output}" in result.stdout
    stats = run("stats", "--from-file", str(output))
    assert stats.exit_code == 0, stats.stderr
    assert "TOTAL" in stats.stdout
    assert "Pothole" in stats.stdout
    as_json = json.loads(run("--json", "stats", "--from-file", str(output)).stdout)
    assert as_json["total"]["count"] == 40
    assert sum(s["count"] for s in as_json["services"]) == 40


def test_harvest_requires_dates(url: str) -> None:
    """`harvest` without --start/--end is a usage error."""
    result = run(*at(url, "harvest"))
    assert result.exit_code == 2


def test_stats_from_a_live_harvest(city: FakeCity, url: str) -> None:
    """`stats --start --end` harvests from the city and prints the table."""
    city.generate_requests(30)
    result = run("--json", *at(url, "stats", "--start", START, "--end", END))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["total"]["count"] == 30


def test_stats_needs_a_source() -> None:
    """`stats` needs --start/--end or --from-file (not both, not neither)."""
    assert run("stats").exit_code == 2


def test_stats_from_a_bad_file_exits_2(tmp_path: Path) -> None:
    """A --from-file line that is not a harvested request is an input error naming the line."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"service_request_id": "1"}\nnot json\n', encoding="utf-8")
    result = run("stats", "--from-file", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:2" in result.stderr


# --- discovery and health --------------------------------------------------------------------


def test_discover_lists_the_endpoints(url: str) -> None:
    """`discover URL` shows the document and the GeoReport v2 endpoints to use."""
    document = FakeCity.discovery_url_for(url)
    result = run("discover", document)
    assert result.exit_code == 0, result.stderr
    assert f"civic311 --endpoint {url} services" in result.stdout
    as_json = json.loads(run("--json", "discover", document).stdout)
    assert as_json["chosen"] == [{"url": url, "format": "json"}]


def test_discover_without_a_matching_endpoint_exits_1(url: str) -> None:
    """A document with no GeoReport v2 endpoint of that environment: exit 1, said why."""
    result = run("discover", FakeCity.discovery_url_for(url), "--environment", "test")
    assert result.exit_code == 1
    assert "DecodeError" in result.stderr


def test_health_after_a_probe(url: str) -> None:
    """`health` probes the city and shows each endpoint up, with its latency."""
    result = run("--json", *at(url, "health"))
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["endpoints"][0]["url"] == url
    assert report["endpoints"][0]["state"] == "up"
    table = run(*at(url, "health"))
    assert "up" in table.stdout


def test_health_with_the_primary_down(url: str) -> None:
    """With a dead primary and a live fallback, health shows the primary failing: exit 0."""
    dead = closed_url()
    result = run("--json", "--endpoint", dead, "--endpoint", url, "--timeout", "5", "health")
    assert result.exit_code == 0, result.stderr
    states = {h["url"]: h for h in json.loads(result.stdout)["endpoints"]}
    assert states[dead]["failures"] >= 1
    assert states[url]["state"] == "up"


def test_health_when_nothing_answers_exits_3() -> None:
    """`health` still shows the table when nothing answers, then exits 3."""
    dead = closed_url()
    result = run(*at(dead, "health"))
    assert result.exit_code == 3
    assert "down" in result.stdout
    assert "TransportError" in result.stderr  # one endpoint: the refusal itself (issue 11.9)


# --- watch and the ledger --------------------------------------------------------------------


def test_watch_prints_changes_until_closed(city: FakeCity, url: str, env: Path) -> None:
    """`watch` prints each status change and stops when every request is closed."""
    done = city.add_request("001", description="done", closed=True)
    later = city.add_request("002", description="later")
    timer = threading.Timer(0.4, city.close_request, [later.service_request_id, "Fixed."])
    timer.start()
    try:
        result = run(
            *at(
                url,
                "watch",
                done.service_request_id,
                later.service_request_id,
                "--interval",
                "0.1",
                "--timeout",
                "20",
            )
        )
    finally:
        timer.cancel()
    assert result.exit_code == 0, result.stderr
    assert f"{done.service_request_id}  closed" in result.stdout
    assert f"{later.service_request_id}  open" in result.stdout
    assert f"{later.service_request_id}  open → closed: Fixed." in result.stdout
    with Ledger(env) as ledger:
        assert {o.service_request_id for o in ledger.latest_statuses(closed=True)} == {
            done.service_request_id,
            later.service_request_id,
        }


def test_watch_json_lines_and_timeout(city: FakeCity, url: str) -> None:
    """`--json watch` prints JSON Lines; --timeout ends a watch of open requests."""
    still_open = city.add_request("001", description="open")
    result = run(
        "--json",
        *at(url, "watch", still_open.service_request_id, "--interval", "0.1", "--timeout", "0.3"),
    )
    assert result.exit_code == 0, result.stderr
    [change] = [json.loads(line) for line in result.stdout.splitlines()]
    assert change["service_request_id"] == still_open.service_request_id
    assert change["status"] == "open"
    assert change["first_seen"] is True


def _file_two(city: FakeCity, url: str, key_file: Path) -> list[str]:
    ids = []
    for description in ("first hole", "second hole"):
        result = run(
            "--json",
            "--api-key-file",
            str(key_file),
            *at(
                url,
                "submit",
                "--service-code",
                "001",
                "--address",
                "1 Main",
                "--description",
                description,
            ),
        )
        assert result.exit_code == 0, result.stderr
        ids.append(json.loads(result.stdout)["service_request_id"])
    return ids


def test_ledger_list_and_filters(city: FakeCity, url: str, key_file: Path) -> None:
    """`ledger list` shows submissions; --status and --changed-since filter by what was seen."""
    first, second = _file_two(city, url, key_file)
    city.close_request(first, "Patched.")
    assert run(*at(url, "bulk", "track")).exit_code == 0
    listed = run("ledger", "list")
    assert listed.exit_code == 0, listed.stderr
    assert "first hole" in listed.stdout
    assert "second hole" in listed.stdout
    closed = json.loads(run("--json", "ledger", "list", "--status", "Closed").stdout)
    assert [e["service_request_id"] for e in closed] == [first]
    assert closed[0]["submission"]["request"]["description"] == "first hole"
    assert closed[0]["latest_status"]["status_notes"] == "Patched."
    future = (NOW + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert json.loads(run("--json", "ledger", "list", "--changed-since", future).stdout) == []
    since = json.loads(run("--json", "ledger", "list", "--changed-since", START).stdout)
    assert {e["service_request_id"] for e in since} == {first, second}
    sent = json.loads(run("--json", "ledger", "list", "--state", "failed").stdout)
    assert sent == []


def test_ledger_list_naive_changed_since_exits_2() -> None:
    """--changed-since needs a zone too."""
    assert run("ledger", "list", "--changed-since", "2026-01-01T00:00").exit_code == 2


def test_ledger_list_empty(env: Path) -> None:
    """An empty ledger says so, naming its file."""
    result = run("ledger", "list")
    assert result.exit_code == 0
    assert str(env) in result.stderr


def test_ledger_export_csv_and_jsonl(
    city: FakeCity, url: str, key_file: Path, tmp_path: Path
) -> None:
    """`ledger export` writes CSV to stdout and JSON Lines to a 0600 file."""
    _file_two(city, url, key_file)
    exported = run("ledger", "export", "--format", "csv")
    assert exported.exit_code == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["description"] for r in rows] == ["first hole", "second hole"]
    target = tmp_path / "export.jsonl"
    written = run("--json", "ledger", "export", "--format", "jsonl", "--output", str(target))
    assert json.loads(written.stdout) == {"output": str(target), "format": "jsonl", "count": 2}
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [line["state"] for line in lines] == ["sent", "sent"]
    assert target.stat().st_mode & 0o777 == 0o600
    assert KEY not in target.read_text(encoding="utf-8")


def test_ledger_option_beats_the_environment(
    city: FakeCity, url: str, key_file: Path, tmp_path: Path, env: Path
) -> None:
    """--ledger PATH is used instead of $CIVIC311_LEDGER."""
    chosen = tmp_path / "elsewhere" / "mine.sqlite"
    result = run("--ledger", str(chosen), "--api-key-file", str(key_file), *at(url, *submit_args()))
    assert result.exit_code == 0, result.stderr
    assert chosen.exists()
    assert not env.exists()
    with Ledger(chosen) as ledger:
        assert len(ledger.submissions()) == 1


def test_ledger_defaults_to_the_data_directory(
    city: FakeCity, url: str, key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --ledger or $CIVIC311_LEDGER the ledger is $XDG_DATA_HOME/civic311/ledger.sqlite,
    created (with its directory, 0700) on demand."""
    monkeypatch.delenv("CIVIC311_LEDGER")
    expected = tmp_path / "xdg" / "civic311" / "ledger.sqlite"
    assert not expected.exists()
    assert run(*at(url, "services")).exit_code == 0
    assert not expected.parent.exists()  # reading from the city never touches the ledger
    result = run("--api-key-file", str(key_file), *at(url, *submit_args()))
    assert result.exit_code == 0, result.stderr
    assert expected.exists()
    assert expected.parent.stat().st_mode & 0o777 == 0o700


def test_default_ledger_path_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$CIVIC311_LEDGER, then $XDG_DATA_HOME, then ~/.local/share."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_ledger_path({"CIVIC311_LEDGER": "/x/l.sqlite", "XDG_DATA_HOME": "/d"}) == Path(
        "/x/l.sqlite"
    )
    assert default_ledger_path({"XDG_DATA_HOME": "/d"}) == Path("/d/civic311/ledger.sqlite")
    assert default_ledger_path({}) == tmp_path / "home" / ".local/share/civic311/ledger.sqlite"


# --- bulk ------------------------------------------------------------------------------------

ROWS = """ref,service_code,lat,long,description,attribute.DEPTH
a1,001,39.1,-86.5,hole one,5
a2,001,39.2,-86.5,hole two,
a3,004,39.3,-86.5,party noise,
"""


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text(ROWS, encoding="utf-8")
    return path


def test_bulk_submit_files_each_row_once(
    city: FakeCity, url: str, rows_file: Path, monkeypatch: pytest.MonkeyPatch, env: Path
) -> None:
    """`bulk submit` files every row, and a re-run skips them all."""
    monkeypatch.setenv("CIVIC311_API_KEY", KEY)
    result = run(*at(url, "bulk", "submit", str(rows_file), "--key-column", "ref"))
    assert result.exit_code == 0, result.stderr
    assert "3 rows processed: 3 filed" in result.stdout
    assert city.count_created() == 3
    again = run("--json", *at(url, "bulk", "submit", str(rows_file), "--key-column", "ref"))
    assert again.exit_code == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["counts"] == {"skipped": 3}
    assert summary["ok"] is True
    assert city.count_created() == 3
    with Ledger(env) as ledger:
        assert [s.key for s in ledger.submissions()] == ["a1", "a2", "a3"]
    no_key(result)
    no_key(again)


def test_bulk_dry_run_with_an_invalid_row_exits_2(city: FakeCity, url: str, tmp_path: Path) -> None:
    """--dry-run checks rows against the definitions; an invalid row makes it exit 2."""
    path = tmp_path / "rows.csv"
    path.write_text(ROWS + "a4,001,39.4,-86.5,hole four,deep\n", encoding="utf-8")
    result = run(
        "--json", *at(url, "bulk", "submit", str(path), "--key-column", "ref", "--dry-run")
    )
    assert result.exit_code == 2
    summary = json.loads(result.stdout)
    assert summary["dry_run"] is True
    assert summary["counts"] == {"valid": 3, "invalid": 1}
    [bad] = [r for r in summary["results"] if r["outcome"] == "invalid"]
    assert bad["key"] == "a4"
    assert "DEPTH" in bad["detail"]
    assert city.count_created() == 0


def test_bulk_refused_rows_exit_1(city: FakeCity, url: str, rows_file: Path) -> None:
    """Rows the city refuses (here: no api key, 403) make `bulk submit` exit 1."""
    result = run(
        *at(
            url,
            "bulk",
            "submit",
            str(rows_file),
            "--key-column",
            "ref",
            "--concurrency",
            "2",
            "--rate",
            "50",
        )
    )
    assert result.exit_code == 1
    assert "3 failed" in result.stdout
    assert "Rows that need attention" in result.stdout


def test_bulk_queued_when_unreachable_exits_3(rows_file: Path) -> None:
    """Rows that could not reach the city are queued for a re-run: exit 3."""
    result = run(
        *at(closed_url(), "bulk", "submit", str(rows_file), "--key-column", "ref", "--no-validate")
    )
    assert result.exit_code == 3
    assert "3 queued" in result.stdout


def test_bulk_warns_about_emergency_rows(url: str, tmp_path: Path) -> None:
    """Rows whose description sounds like an emergency are named on stderr (a dry run here)."""
    path = tmp_path / "rows.csv"
    path.write_text(ROWS + f"a4,001,39.4,-86.5,{EMERGENCY},\n", encoding="utf-8")
    result = run(*at(url, "bulk", "submit", str(path), "--key-column", "ref", "--dry-run"))
    assert result.exit_code == 0, result.stderr
    assert "row(s) 4 sound like an emergency" in result.stderr
    assert "call 911" in result.stderr


def test_bulk_unknown_column_exits_2(url: str, tmp_path: Path) -> None:
    """A file with an unknown column is refused whole: exit 2, naming the column."""
    path = tmp_path / "typo.csv"
    path.write_text("service_code,address_string,descripton\n001,1 Main,x\n", encoding="utf-8")
    result = run(*at(url, "bulk", "submit", str(path)))
    assert result.exit_code == 2
    assert "descripton" in result.stderr


def test_bulk_progress_bar_on_a_terminal(
    city: FakeCity, url: str, rows_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal the progress bar is drawn on stderr; stdout keeps the summary."""
    monkeypatch.setenv("CIVIC311_API_KEY", KEY)
    monkeypatch.setattr(Scrubbed, "isatty", lambda self: True)
    result = run(*at(url, "bulk", "submit", str(rows_file), "--key-column", "ref"))
    assert result.exit_code == 0, result.stderr
    assert "3 filed" in result.stdout
    assert city.count_created() == 3


def test_bulk_track_records_changes(
    city: FakeCity, url: str, rows_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bulk track` refreshes what the ledger filed, and reports only what changed."""
    monkeypatch.setenv("CIVIC311_API_KEY", KEY)
    assert run(*at(url, "bulk", "submit", str(rows_file), "--key-column", "ref")).exit_code == 0
    first = run("--json", *at(url, "bulk", "track"))
    assert first.exit_code == 0, first.stderr
    tracked = json.loads(first.stdout)
    assert tracked["open"] == tracked["requests"] >= 2
    realtime = [r for r in city.created if r.service_code == "001"]
    city.close_request(realtime[0].service_request_id, "Patched.")
    second = run(*at(url, "bulk", "track"))
    assert second.exit_code == 0, second.stderr
    assert f"{realtime[0].service_request_id}  open → closed: Patched." in second.stdout


# --- secrets ---------------------------------------------------------------------------------


def test_key_never_in_help(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--help, for the group and each command, never shows the key (from file or env)."""
    monkeypatch.setenv("CIVIC311_API_KEY", KEY)
    for args in (
        ["--help"],
        ["--api-key-file", str(key_file), "--help"],
        ["--api-key-file", str(key_file), "submit", "--help"],
        ["bulk", "submit", "--help"],
        ["ledger", "export", "--help"],
    ):
        result = run(*args)
        assert result.exit_code == 0
        no_key(result)


def test_key_never_in_errors_or_json(
    url: str, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Errors, --json output and exit-3 messages never carry the key."""
    monkeypatch.setenv("CIVIC311_API_KEY", KEY)
    outcomes = [
        run("--json", *at(url, *submit_args())),
        run("--json", *at(url, *submit_args("--attribute", "DEPTH=x"))),
        run("--api-key-file", str(key_file), *at(closed_url(), *submit_args("--no-validate"))),
        run("--json", "--api-key-file", str(key_file), *at(url, "request", "0")),
    ]
    assert [r.exit_code for r in outcomes] == [0, 2, 3, 1]
    for result in outcomes:
        no_key(result)


class _Echo(BaseHTTPRequestHandler):
    """A city that echoes the whole POST body (api_key included) in its 400 error."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        payload = json.dumps([{"code": 400, "description": f"cannot parse {body}"}]).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_key_masked_even_when_the_city_echoes_it(key_file: Path) -> None:
    """A city that echoes the key in its error body still cannot make the CLI print it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/open311/v2"
        result = run("--api-key-file", str(key_file), *at(base, *submit_args("--no-validate")))
        debug = CliRunner().invoke(
            cli,
            ["--debug", "--api-key-file", str(key_file), *at(base, *submit_args("--no-validate"))],
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1
    assert "cannot parse" in result.stderr
    no_key(result)
    assert isinstance(debug.exception, civic311.BadRequestError)


def test_scrubbed_masks_every_secret() -> None:
    """The output stream masks each secret, longest first (short keys: tests/test_security.py)."""
    sink = io.StringIO()
    stream = Scrubbed(sink, ["abcdefgh", "abcdefghijkl"])
    stream.write("x abcdefghijkl y abcdefgh z")
    assert sink.getvalue() == "x *** y *** z"


def test_unreadable_or_empty_key_file_exits_2(tmp_path: Path) -> None:
    """A key file that is missing or empty is a usage error naming the file only."""
    missing = run("--api-key-file", str(tmp_path / "nope"), "cities")
    assert missing.exit_code == 2
    assert "nope" in missing.stderr
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    result = run("--api-key-file", str(empty), "cities")
    assert result.exit_code == 2
    assert "empty" in result.stderr


def test_world_readable_key_file_warns(tmp_path: Path) -> None:
    """A key file others can read gets a warning (not the key) on stderr."""
    path = tmp_path / "open-key"
    path.write_text(KEY, encoding="utf-8")
    path.chmod(0o644)
    result = run("--api-key-file", str(path), "cities", "koln")
    assert result.exit_code == 0
    assert "chmod 600" in result.stderr
    no_key(result)


# --- global options and error handling -------------------------------------------------------


def test_jurisdiction_is_sent() -> None:
    """--jurisdiction is sent on every call; without it this city answers 400 (exit 1)."""
    city = FakeCity(seed=3, jurisdiction_id="city.test")
    with city.serve() as base:
        assert run(*at(base, "services")).exit_code == 1
        assert run("--jurisdiction", "city.test", *at(base, "services")).exit_code == 0


def test_registry_city_with_endpoint_override_warns_when_questioned(url: str) -> None:
    """--city with --endpoint uses the given URL; a questioned entry warns on stderr."""
    city = cities.City(
        key="doubtville",
        name="Doubtville",
        country="Nowhere",
        production=("https://doubtville.example/open311/v2",),
        status="questioned",
        status_reason="nobody checked since 2015",
    )
    cities.register(city)
    try:
        result = run("--city", "doubtville", *at(url, "services"))
    finally:
        cities.unregister("doubtville")
    assert result.exit_code == 0, result.stderr
    assert "warning: CityStatusWarning" in result.stderr
    assert "nobody checked since 2015" in result.stderr
    assert "Pothole" in result.stdout


def test_retired_city_exits_2() -> None:
    """A retired registry city is refused before any call: exit 2."""
    city = cities.City(
        key="goneville",
        name="Goneville",
        country="Nowhere",
        production=("https://goneville.example/open311/v2",),
        status="retired",
        status_reason="API switched off",
    )
    cities.register(city)
    try:
        result = run("--city", "goneville", "services")
    finally:
        cities.unregister("goneville")
    assert result.exit_code == 2
    assert "RetiredCityError" in result.stderr


def test_debug_shows_the_exception(url: str) -> None:
    """--debug lets the exception through (a traceback) instead of one line."""
    result = CliRunner().invoke(cli, ["--debug", *at(url, "request", "0")])
    assert isinstance(result.exception, civic311.NotFoundError)


def test_unexpected_errors_are_one_line(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug is reported as an internal error in one line, exit 1, pointing at --debug."""

    def boom(self: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(civic311.Client, "list_services", boom)
    result = run(*at(url, "services"))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: internal error: RuntimeError: boom (run with --debug for the traceback)"
    )


def test_interrupt_exits_130(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C ends the command with exit 130 and a short note."""

    def interrupted(self: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(civic311.Client, "list_services", interrupted)
    result = run(*at(url, "services"))
    assert result.exit_code == 130
    assert "interrupted" in result.stderr


def test_demo_json() -> None:
    """`--json demo` runs the demo and reports its transcript as JSON."""
    result = run("--json", "demo")
    assert result.exit_code == 0, result.stderr
    demo = json.loads(result.stdout)
    assert demo["ok"] is True
    assert any("The primary goes down" in line for line in demo["transcript"])


def test_jsonable_handles_sdk_objects() -> None:
    """Every object the commands print becomes plain JSON data."""
    health = civic311.Client("https://city.example/open311/v2").health()
    data = jsonable({"health": health, "delta": timedelta(minutes=2), "path": Path("/x")})
    assert json.loads(json.dumps(data))["health"][0]["state"] == "up"
    assert data["delta"] == 120.0
    assert data["path"] == "/x"


# --- the real console script -----------------------------------------------------------------


def _script(*args: str, env: Path, extra_env: dict[str, str] | None = None) -> Any:
    environ = {**os.environ, "CIVIC311_LEDGER": str(env), **(extra_env or {})}
    environ.pop("CIVIC311_API_KEY", None)
    environ.update(extra_env or {})
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environ,
    )


def test_console_script_services_json(url: str, env: Path) -> None:
    """The installed `civic311` script prints services as JSON."""
    done = _script("--json", *at(url, "services"), env=env)
    assert done.returncode == 0, done.stderr
    assert [s["service_code"] for s in json.loads(done.stdout)][:2] == ["001", "002"]


def test_console_script_submit_then_request(city: FakeCity, url: str, env: Path) -> None:
    """The installed script files a report (key from the environment), then reads it back."""
    filed = _script(
        "--json", *at(url, *submit_args()), env=env, extra_env={"CIVIC311_API_KEY": KEY}
    )
    assert filed.returncode == 0, filed.stderr
    no_key(filed)
    request_id = json.loads(filed.stdout)["service_request_id"]
    assert city.count_created() == 1
    shown = _script("--json", *at(url, "request", request_id), env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["description"] == "Deep pothole in the right lane"


def test_console_script_unreachable_exits_3(env: Path) -> None:
    """The installed script exits 3 with one error line when nothing answers."""
    done = _script(*at(closed_url(), "--timeout", "2", "services"), env=env)
    assert done.returncode == 3
    assert done.stderr.startswith("error: TransportError")  # one endpoint (issue 11.9)
    assert "Traceback" not in done.stderr


def test_python_m_runs_the_command() -> None:
    """`python -m civic311.cli --help` works."""
    done = subprocess.run(
        [sys.executable, "-m", "civic311.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "Exit codes" in done.stdout


def test_click_and_rich_stay_in_the_cli_package() -> None:
    """Only civic311.cli imports click or rich, and rich only inside functions (lazily)."""
    package = Path(civic311.__file__).parent
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inside_cli = "cli" in path.relative_to(package).parts
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            roots = {name.split(".")[0] for name in names}
            if not inside_cli:
                assert not roots & {"click", "rich"}, path
            elif "rich" in roots:
                assert node not in tree.body, f"{path}: rich imported at module level"
