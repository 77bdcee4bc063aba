"""The console script without the ``[cli]`` extra: one line of advice and exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from civic311.cli import NEEDS_CLI_EXTRA

#: Runs the installed console-script entry point (as pip's wrapper does) with *modules* made
#: unimportable: ``sys.modules[name] = None`` is how Python marks a module as absent.
ENTRY_POINT = """
import sys
for name in sys.argv[1:]:
    sys.modules[name] = None
from importlib.metadata import entry_points
(script,) = [e for e in entry_points(group="console_scripts") if e.name == "civic311"]
raise SystemExit(script.load()())
"""


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=60, check=False, env=env
    )


@pytest.mark.parametrize("missing", [["click"], ["rich"], ["click", "rich"]])
def test_entry_point_without_the_extra_says_how_to_install_it(missing: list[str]) -> None:
    """The entry point with click or rich unimportable prints the pip advice and exits 2."""
    done = _run(sys.executable, "-c", ENTRY_POINT, *missing)
    assert done.returncode == 2
    assert done.stderr.strip() == NEEDS_CLI_EXTRA
    assert done.stdout == ""
    assert "Traceback" not in done.stderr


def test_console_script_without_click(tmp_path: Path) -> None:
    """The installed ``civic311`` script, with a click that cannot be imported, exits 2."""
    script = Path(sys.executable).parent / "civic311"
    if not script.exists():
        pytest.skip("the console script is not installed next to this Python")
    (tmp_path / "click.py").write_text(
        'raise ModuleNotFoundError("No module named \'click\'", name="click")\n', encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = _run(str(script), "--help", env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == NEEDS_CLI_EXTRA
    assert "Traceback" not in done.stderr


def test_importing_the_cli_package_needs_no_click() -> None:
    """``import civic311.cli`` (what the console script does first) works without click."""
    code = "import sys; sys.modules['click'] = None; import civic311.cli; print('ok')"
    done = _run(sys.executable, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_python_dash_m_without_click() -> None:
    """``python -m civic311.cli`` without click gives the same advice and exit code 2."""
    code = (
        "import sys, runpy; sys.modules['click'] = None; "
        "runpy.run_module('civic311.cli', run_name='__main__')"
    )
    done = _run(sys.executable, "-c", code)
    assert done.returncode == 2
    assert done.stderr.strip() == NEEDS_CLI_EXTRA
