"""The documentation runs as written: every Python block, every example, the site build.

Rules for docs/*.md (so a page can be checked, and a reader can trust it):

- every ```python block runs; the blocks of one page run top to bottom in one namespace, in a
  fresh temporary directory, against FakeCity, with warnings as errors;
- a ```text block that directly follows a ```python block is that block's expected output;
- a block whose first line is ``# doc: no-run`` is shown but not run (keep these rare);
- a block titled ``test_….py`` (```python title="test_app.py") is a pytest file: the blocks
  with the same title are joined and run with pytest in a subprocess, which loads the civic311
  plugin as an installed user's pytest would.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import civic311.cities
import civic311.discovery

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
PAGES = sorted(DOCS.rglob("*.md"))
NO_RUN = "# doc: no-run"

#: Examples that tests/test_examples_and_demo.py already runs as scripts.
RUN_ELSEWHERE = {"quickstart.py", "quickstart_async.py"}

#: Modules that are internal layers, not documented in the API reference.
INTERNAL_MODULES = {"protocol", "wire", "cli", "client", "async_client"}

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.DOTALL | re.MULTILINE,
)
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    lang: str
    title: str | None
    code: str
    output: str | None = None  # the ```text block that follows a python block

    @property
    def runs(self) -> bool:
        return (
            self.lang == "python"
            and not self.code.startswith(NO_RUN)
            and not (self.title or "").startswith("test_")
        )


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of *page*, each python block with the text block that follows it."""
    text = page.read_text(encoding="utf-8")
    found: list[Block] = []
    previous_end = -1
    for match in _FENCE.finditer(text):
        title = _TITLE.search(match["info"])
        block = Block(
            page=page,
            line=text.count("\n", 0, match.start()) + 1,
            lang=match["lang"],
            title=title["title"] if title else None,
            code=textwrap.dedent(match["body"]),
        )
        follows = found and not text[previous_end : match.start()].strip()
        if block.lang == "text" and follows and found[-1].lang == "python":
            last = found[-1]
            found[-1] = Block(last.page, last.line, last.lang, last.title, last.code, block.code)
        else:
            found.append(block)
        previous_end = match.end()
    return found


def _runnable_pages() -> Iterator[Path]:
    for page in PAGES:
        if any(block.runs for block in blocks(page)):
            yield page


def _name(page: Path) -> str:
    return str(page.relative_to(DOCS))


def _normalized(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def test_every_guide_page_has_runnable_examples() -> None:
    """Every guide page outside reference/ shows Python that runs."""
    guides = [p for p in PAGES if p.parent == DOCS]
    missing = [_name(p) for p in guides if not any(b.runs for b in blocks(p))]
    assert not missing


@pytest.mark.parametrize("page", list(_runnable_pages()), ids=_name)
def test_page_examples_run(
    page: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A page's python blocks run top to bottom in one namespace; each printed output matches
    the text block shown after it."""
    monkeypatch.chdir(tmp_path)
    # Each page starts from the bundled registry and an empty discovery cache.
    monkeypatch.setattr(civic311.cities, "_cities", None)
    civic311.discovery.default_cache.clear()
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in blocks(page):
        if not block.runs:
            continue
        where = f"{_name(page)}:{block.line}"
        exec(compile(block.code, where, "exec"), namespace)
        printed = capsys.readouterr().out
        if block.output is not None:
            assert _normalized(printed) == _normalized(block.output), where


def test_pytest_examples_pass(tmp_path: Path) -> None:
    """The test files the pages show (blocks titled test_….py) pass under pytest."""
    files: dict[str, list[str]] = {}
    for page in PAGES:
        for block in blocks(page):
            if block.lang == "python" and (block.title or "").startswith("test_"):
                files.setdefault(block.title or "", []).append(block.code)
    assert files, "the testing page shows at least one pytest file"
    for title, parts in files.items():
        (tmp_path / title).write_text("\n\n".join(parts), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout


@pytest.mark.parametrize(
    "script",
    sorted(p.name for p in EXAMPLES.glob("*.py") if p.name not in RUN_ELSEWHERE),
)
def test_example_runs_as_a_script(script: str, tmp_path: Path) -> None:
    """Each examples/ file not run elsewhere runs as a plain script and exits 0."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


#: Global options of `civic311` that take a value (the word after them is not a command).
CLI_VALUE_OPTIONS = {
    "--city",
    "--endpoint",
    "--jurisdiction",
    "--format",
    "--profile",
    "--ledger",
    "--api-key-file",
    "--timeout",
}

#: Commands that group sub-commands (`civic311 bulk submit`).
CLI_GROUPS = {"bulk", "ledger"}


def _cli_commands() -> list[str]:
    """The sub-commands the CLI page's console blocks run, as "submit" or "bulk submit"."""
    commands: list[str] = []
    for block in blocks(DOCS / "cli.md"):
        if block.lang != "console":
            continue
        for line in block.code.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split(" #", 1)[0].strip())
            if "civic311" not in words:
                continue
            rest = words[words.index("civic311") + 1 :]
            command: list[str] = []
            skip = False
            for word in rest:
                if skip:
                    skip = False
                elif word in CLI_VALUE_OPTIONS:
                    skip = True
                elif not word.startswith("-"):
                    command.append(word)
                    if command[0] not in CLI_GROUPS or len(command) == 2:
                        break
            name = " ".join(command)
            if name and name not in commands:
                commands.append(name)
    return commands


def test_cli_page_shows_every_command() -> None:
    """The command-line page shows every sub-command `civic311 --help` lists."""
    from civic311.cli import main

    shown = {name.split()[0] for name in _cli_commands()}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["--help"]) == 0
    listed = re.findall(r"^  (\w[\w-]*)  ", out.getvalue().split("Commands:", 1)[-1], re.MULTILINE)
    assert listed
    assert not set(listed) - shown


@pytest.mark.parametrize("command", _cli_commands())
def test_cli_page_commands_exist(command: str) -> None:
    """Every sub-command the CLI page shows answers --help with exit code 0."""
    from civic311.cli import main

    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main([*command.split(), "--help"])
    assert code == 0, out.getvalue()
    assert "Usage: civic311 " + command in out.getvalue()


def test_reference_covers_every_public_module() -> None:
    """Every public module of civic311 has an API reference entry (`::: civic311.…`)."""
    reference = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "reference").glob("*.md"))
    package = ROOT / "src" / "civic311"
    modules = {p.stem for p in package.glob("*.py")} | {
        p.name for p in package.iterdir() if (p / "__init__.py").exists()
    }
    public = sorted(m for m in modules if not m.startswith("_") and m not in INTERNAL_MODULES)
    missing = [m for m in public if f"::: civic311.{m}" not in reference]
    assert not missing
    assert "::: civic311.Client" in reference
    assert "::: civic311.AsyncClient" in reference


def test_readme_links_the_guides() -> None:
    """The README's "What's where" table links pages that exist."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert "docs/quickstart.md" in links
    assert all((ROOT / link).exists() for link in links)


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="mkdocs and mkdocstrings are not installed (pip install -e '.[docs]')",
)
def test_site_builds_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict` succeeds: no broken link, no page left out, no docstring error."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "index.html").exists()


def test_readme_links_stay_inside_the_clone() -> None:
    """Every relative link of the README names a file of the repository (none reach outside
    a clone, as ../shared/DESIGN.md did)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = [
        link
        for link in re.findall(r"\]\(([^)#\s]+)", readme)
        if not link.startswith(("http://", "https://", "mailto:"))
    ]
    assert "docs/architecture.md" in links
    outside = [link for link in links if not (ROOT / link).resolve().is_relative_to(ROOT)]
    assert outside == []
    assert [link for link in links if not (ROOT / link).exists()] == []


def test_every_page_is_in_the_nav() -> None:
    """Every page under docs/ (but the build helpers) is reachable from mkdocs.yml's nav."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = set(re.findall(r"^\s+- (?:[^:\n]+: )?([\w/-]+\.md)\s*$", config, re.MULTILINE))
    pages = {str(p.relative_to(DOCS)) for p in PAGES if not p.name.startswith("_")}
    assert pages - nav == set()


def test_reference_lists_every_model_field() -> None:
    """The models reference asks for the field tables, and they name every field of every
    model `to_dict` takes (docs/_hooks/model_fields.py makes them from attrs.fields)."""
    import attrs

    from civic311._wire.converter import MODELS

    spec = importlib.util.spec_from_file_location(
        "model_fields", DOCS / "_hooks" / "model_fields.py"
    )
    assert spec is not None
    assert spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    assert hook.MARKER in (DOCS / "reference" / "models.md").read_text(encoding="utf-8")
    tables = hook.on_page_markdown(hook.MARKER)
    for model in MODELS:
        assert f"### {model.__name__}" in tables
        for field in attrs.fields(model):
            assert f"| `{field.name}` |" in tables, f"{model.__name__}.{field.name}"
