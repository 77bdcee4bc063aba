"""The README's code blocks run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_has_a_quickstart() -> None:
    """The README shows Python code, and both commands."""
    text = README.read_text(encoding="utf-8")
    assert BLOCKS
    assert "make demo" in text
    assert "make test" in text


def test_readme_blocks_run_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's python blocks run top to bottom, as a reader would; the quickstart prints
    the new request's status."""
    namespace: dict[str, object] = {"__name__": "readme"}
    for code in BLOCKS:
        exec(compile(code, str(README), "exec"), namespace)
    assert capsys.readouterr().out.strip() == "open"
    client = namespace["client"]
    close = client.close
    close()
