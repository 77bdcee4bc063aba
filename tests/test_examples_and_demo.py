"""The examples and `civic311 demo` run as written, in process and as real subprocesses."""

from __future__ import annotations

import asyncio
import io
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from civic311.cli import main
from civic311.cli.demo import run_demo
from civic311.testing import FakeCity

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"


def test_quickstart_against_a_served_city() -> None:
    """examples/quickstart.py files a report on a loopback FakeCity and returns its id."""
    module = runpy.run_path(str(EXAMPLES / "quickstart.py"))
    city = FakeCity(seed=5)
    with city.serve() as url:
        request_id = module["main"](url)
    assert city.get(request_id) is not None
    assert city.count_created() == 1


def test_quickstart_async_against_a_served_city() -> None:
    """examples/quickstart_async.py files three reports concurrently."""
    module = runpy.run_path(str(EXAMPLES / "quickstart_async.py"))
    city = FakeCity(seed=6)
    with city.serve() as url:
        ids = asyncio.run(module["main"](url))
    assert len(set(ids)) == 3
    assert city.count_created() == 3


@pytest.mark.parametrize("script", ["quickstart.py", "quickstart_async.py"])
def test_examples_run_as_scripts(script: str) -> None:
    """Each example runs as a plain script with no arguments (it starts its own FakeCity)."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "open" in done.stdout


def test_demo_transcript() -> None:
    """The demo files once, fails over, resolves the token and follows to closed."""
    out = io.StringIO()
    assert run_demo(seed=311, out=out) == 0
    text = out.getvalue()
    assert "The primary goes down" in text
    assert "answered by the mirror" in text
    assert "Health: primary down, mirror up" in text
    assert "closed" in text
    assert text.rstrip().endswith("through the primary's outage.")
    assert "filed once" in text


def test_demo_as_the_console_script() -> None:
    """`civic311 demo` runs as an installed console script and exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "civic311.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Done: the report was filed once" in done.stdout


def test_command_without_arguments_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`civic311` alone prints usage and exits 2."""
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out
