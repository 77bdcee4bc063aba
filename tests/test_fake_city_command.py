"""``civic311 fake-city`` and ``python -m civic311.testing``: a FakeCity served from the shell."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

import civic311
from civic311.cli._app import cli
from civic311.cli._commands import _DIALECT_NAMES
from civic311.testing import Fault
from civic311.testing._command import DIALECTS, build_city, parse_fault, serve_forever

CONSOLE_SCRIPT = Path(sys.executable).with_name("civic311")
LOOPBACK = "http://127.0.0.1:"


# --- the shared parts ------------------------------------------------------------------------


def _first_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The process's first line of stdout, waiting at most *timeout* seconds for it."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            proc.kill()
            raise AssertionError(f"no line on stdout within {timeout} s")
    return proc.stdout.readline().strip()


def test_fault_syntax() -> None:
    """``--fault`` values parse to the Fault and where and how often it applies."""
    spec = parse_fault("status:502,times=2,method=post,path=requests")
    assert spec.fault == Fault.status(502)
    assert (spec.times, spec.method, spec.path) == (2, "POST", "requests")
    assert parse_fault("status").fault == Fault.status(503)
    assert parse_fault("latency:0.25").fault == Fault.latency(0.25)
    assert parse_fault("Drop_After_Create").fault == Fault.drop_after_create()
    assert parse_fault("flaky:0.5").fault.kind == "flaky"
    assert parse_fault("hang").times is None


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("bogus", "no fault kind 'bogus'"),
        ("latency", "needs an ARG"),
        ("latency:soon", "'soon' is not a number"),
        ("status:999", "not an HTTP status"),
        ("flaky:2", "fraction"),
        ("hang:3", "takes no ARG"),
        ("reset,times=0", "times must be a whole number"),
        ("reset,method=PUT", "method must be GET or POST"),
        ("reset,every=2", "'every=2' is not times=N"),
    ],
)
def test_bad_fault_is_named(text: str, names: str) -> None:
    """A bad ``--fault`` raises ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=names):
        parse_fault(text)


def test_build_city_options() -> None:
    """build_city applies seed, dialect (any case), uploads, faults and a generated history."""
    city = build_city(
        seed=4, dialect="CHICAGO", uploads="single", requests=12, faults=[parse_fault("reset")]
    )
    assert city.dialect.paging == "page"
    assert city.dialect.media == "single"
    assert len(city.requests) == 12
    assert len(city.faults.active) == 1
    with pytest.raises(ValueError, match="no dialect 'klingon'"):
        build_city(dialect="klingon")
    with pytest.raises(ValueError, match="uploads must be one of"):
        build_city(uploads="some")


def test_cli_dialect_names_match_the_presets() -> None:
    """The CLI's --dialect choices are exactly the presets build_city knows."""
    assert list(DIALECTS) == _DIALECT_NAMES


@pytest.fixture
def served() -> Iterator[str]:
    """serve_forever in a thread (as the commands run it), stopped by an event."""
    stop = threading.Event()
    city = build_city(seed=3, faults=[parse_fault("status:503,times=1,method=GET")])
    out, err = _Lines(), _Lines()
    thread = threading.Thread(
        target=serve_forever, args=(city,), kwargs={"out": out, "err": err, "stop": stop}
    )
    thread.start()
    try:
        assert out.ready.wait(5)
        yield out.text.splitlines()[0]
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert "FakeCity stopped." in err.text


class _Lines:
    """A text sink that says when its first line arrived."""

    def __init__(self) -> None:
        self.text = ""
        self.ready = threading.Event()

    def write(self, text: str) -> int:
        self.text += text
        if "\n" in self.text:
            self.ready.set()
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_served_city_answers_the_sync_client(served: str, fmt: str) -> None:
    """The served city answers Client in both formats, its injected 503 retried."""
    assert served.startswith(LOOPBACK)
    with civic311.Client(served, format=fmt, timeout=5) as client:
        assert [s.service_code for s in client.list_services()][:2] == ["001", "002"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_served_city_answers_the_async_client(served: str, fmt: str) -> None:
    """The served city answers AsyncClient in both formats."""

    async def run() -> str:
        async with civic311.AsyncClient(served, format=fmt, timeout=5) as client:
            receipt = await client.submit(
                civic311.NewRequest(service_code="001", lat=39.1, long=-86.5, description="hole")
            )
            assert receipt.service_request_id is not None
            return (await client.get_request(receipt.service_request_id)).status or ""

    assert anyio.run(run) == "open"


# --- through click ---------------------------------------------------------------------------


def test_cli_fake_city_prints_its_url_and_stops() -> None:
    """``civic311 fake-city --stop-after`` prints a loopback URL first and exits 0."""
    result = CliRunner().invoke(
        cli, ["fake-city", "--seed", "5", "--dialect", "FixMyStreet", "--stop-after", "0.2"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith(LOOPBACK)
    assert result.stdout.splitlines()[0].endswith("/open311/v2")
    assert "Ctrl-C stops it" in result.stderr


def test_cli_fake_city_refuses_a_bad_fault() -> None:
    """A bad --fault is a usage error (exit 2) naming the fault."""
    result = CliRunner().invoke(cli, ["fake-city", "--fault", "status:teapot"])
    assert result.exit_code == 2
    assert "'teapot' is not a number" in result.output


def test_cli_fake_city_port_in_use() -> None:
    """A port already taken is one line on stderr and exit 2, no traceback."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["fake-city", "--port", str(port), "--stop-after", "1"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "in use" in result.stderr


# --- real processes --------------------------------------------------------------------------


def _start(*command: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return proc, _first_line(proc)


def _stop(proc: subprocess.Popen[str], how: signal.Signals) -> tuple[int, str]:
    proc.send_signal(how)
    try:
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    return proc.returncode, err


@pytest.mark.parametrize(
    "command",
    [
        [str(CONSOLE_SCRIPT), "fake-city"],
        [sys.executable, "-m", "civic311.testing"],
    ],
    ids=["civic311 fake-city", "python -m civic311.testing"],
)
def test_process_serves_until_ctrl_c(command: list[str]) -> None:
    """Started as a process it prints its URL, answers a client, and exits 0 on SIGINT."""
    if not Path(command[0]).exists():
        pytest.skip("the console script is not installed next to this Python")
    proc, url = _start(*command, "--seed", "9", "--requests", "3", "--fault", "status:503,times=1")
    try:
        assert url.startswith(LOOPBACK), url
        with civic311.Client(url, timeout=5) as client:
            assert len(client.list_services()) == 5
            assert client.list_requests(status="open") is not None
    finally:
        code, err = _stop(proc, signal.SIGINT)
    assert code == 0, err
    assert "FakeCity stopped." in err
    assert "Traceback" not in err


def test_process_stops_on_sigterm() -> None:
    """``python -m civic311.testing`` ends cleanly (exit 0) on SIGTERM too."""
    proc, url = _start(sys.executable, "-m", "civic311.testing", "--dialect", "ureport")
    try:
        with civic311.Client(url, format="xml", timeout=5) as client:
            assert client.get_service_definition("001").service_code == "001"
    finally:
        code, err = _stop(proc, signal.SIGTERM)
    assert code == 0, err
