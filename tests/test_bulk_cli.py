"""`civic311 bulk` at a terminal and in a log (issue 14.7): progress with counts, a line every
few seconds off a terminal, Ctrl-C that says how to resume, filed rows first (blackbox ones
too), problems last, row numbers in the export, plain tables in pipes."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import civic311
from civic311 import bulk
from civic311.cli import _bulk
from civic311.cli._app import cli
from civic311.cli._output import Scrubbed
from civic311.ledger import Ledger
from civic311.testing import FakeCity, Fault, VirtualClock

#: Row 1 a realtime service, row 2 a blackbox one (no id, no token), row 3 a service the city
#: does not have (refused: 404).
ROWS = """service_code,lat,long,description
001,39.1,-86.5,hole one
005,39.2,-86.5,missed pick-up
999,39.3,-86.5,no such service
"""


@pytest.fixture(autouse=True)
def ledger_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CIVIC311_API_KEY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    path = tmp_path / "ledger.sqlite"
    monkeypatch.setenv("CIVIC311_LEDGER", str(path))
    return path


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text(ROWS, encoding="utf-8")
    return path


@pytest.fixture
def url() -> Iterator[str]:
    with FakeCity(seed=11).serve() as base:
        yield base


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--endpoint", url, "--timeout", "5", *args], catch_exceptions=False
    )


def test_filed_rows_come_first_blackbox_included_and_problems_last(
    url: str, rows_file: Path
) -> None:
    """The filed table lists the blackbox row by its number; the problems table comes after it."""
    result = run(url, "bulk", "submit", str(rows_file), "--no-validate")
    assert result.exit_code == 1, result.stderr
    out = result.stdout
    assert out.index("Filed") < out.index("Rows that need attention")
    filed = out[out.index("Filed") : out.index("Rows that need attention")]
    assert "(none: a blackbox service)" in filed
    assert any(line.split()[:1] == ["2"] for line in filed.splitlines())  # the blackbox row
    problems = out[out.index("Rows that need attention") :]
    assert any(line.split()[:1] == ["3"] for line in problems.splitlines())


def test_tables_are_not_padded_to_a_width_in_a_pipe(url: str, rows_file: Path) -> None:
    """Off a terminal, table lines are as wide as their cells, not padded to a screen width."""
    result = run(url, "bulk", "submit", str(rows_file), "--no-validate")
    longest_cell = max(len(cell) for cell in ROWS.replace("\n", ",").split(","))
    widest = max(len(line) for line in result.stdout.splitlines())
    assert widest < 200
    assert all(not line.endswith(" " * 20) for line in result.stdout.splitlines())
    assert longest_cell < widest


def test_off_a_terminal_progress_is_a_line_every_few_seconds(
    url: str, rows_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a log, progress is a plain line on stderr with n/total and filed/failed counts."""
    monkeypatch.setattr(_bulk, "PROGRESS_EVERY", 0.0)  # every row, instead of every 5 s
    result = run(url, "bulk", "submit", str(rows_file), "--no-validate", "--concurrency", "1")
    lines = [line for line in result.stderr.splitlines() if line.startswith("filing:")]
    assert lines[0] == "filing: 1/3 rows: 1 filed, 0 failed"
    assert lines[-1] == "filing: 2/3 rows: 2 filed, 0 failed"
    assert "\x1b[" not in result.stderr  # no terminal escapes in a log


def test_on_a_terminal_the_bar_counts_rows_and_outcomes(
    url: str, rows_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a terminal the progress bar shows n/total and the filed/failed counts."""
    monkeypatch.setattr(Scrubbed, "isatty", lambda self: True)
    result = run(url, "bulk", "submit", str(rows_file), "--no-validate")
    assert result.exit_code == 1, result.stderr
    assert "3/3" in result.stderr
    assert "2 filed, 1 failed" in result.stderr


def test_ctrl_c_says_how_many_were_filed_and_how_to_resume(
    url: str, rows_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C mid-run prints how many rows were filed and that a re-run resumes safely."""

    async def interrupted(
        client: object, rows: list[bulk.Row], *, on_row: Callable[[Any], None], **_: object
    ) -> bulk.BulkSummary:
        for row in rows[:2]:
            on_row(bulk.RowResult(row.number, row.key, "filed", None, "1"))
        raise KeyboardInterrupt

    monkeypatch.setattr(bulk, "submit_all", interrupted)
    result = run(url, "bulk", "submit", str(rows_file), "--no-validate")
    assert result.exit_code == 130
    assert "interrupted after 2 of 3 rows (2 filed)" in result.stderr
    assert "Run the same command again to resume: nothing will be filed twice." in result.stderr


def test_an_empty_service_code_cell_says_so(tmp_path: Path) -> None:
    """A row with an empty service_code is invalid with a message naming the field."""
    path = tmp_path / "rows.csv"
    path.write_text("service_code,lat,long\n,39.1,-86.5\n", encoding="utf-8")
    [row] = bulk.read_rows(path)
    assert row.error is not None
    assert row.error.startswith("service_code: is empty")
    assert "positional argument" not in row.error


def test_the_export_carries_the_csv_row_number(
    url: str, rows_file: Path, ledger_path: Path
) -> None:
    """`ledger export` has a row_number column: each submission's row in the bulk file."""
    assert run(url, "bulk", "submit", str(rows_file), "--no-validate").exit_code == 1
    exported = CliRunner().invoke(cli, ["ledger", "export"], catch_exceptions=False)
    assert exported.exit_code == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["row_number"], r["service_code"]) for r in rows] == [
        ("1", "001"),
        ("2", "005"),
        ("3", "999"),
    ]
    with Ledger(ledger_path) as ledger:
        assert [s.row_number for s in ledger.submissions()] == [1, 2, 3]


def test_an_uncertain_row_names_resend_after(tmp_path: Path) -> None:
    """A row whose outcome stayed unknown says when it will be sent again: --resend-after."""
    clock = VirtualClock()
    city = FakeCity(clock=clock)
    city.inject(Fault.hang(), times=1, method="POST")
    city.inject(Fault.status(500), times=None, method="GET")
    rows = list(bulk.read_rows(io.StringIO("service_code,address_id\n001,7\n")))

    async def go() -> bulk.BulkSummary:
        async with civic311.AsyncClient(
            city.base_url,
            transport=city.transport(),
            clock=clock,
            retry=civic311.RetryPolicy.no_wait(attempts=2),
            reconcile_wait=2,
        ) as client:
            with Ledger(tmp_path / "l.sqlite") as ledger:
                return await bulk.submit_all(client, rows, ledger=ledger, validate=False)

    [result] = asyncio.run(go()).results
    assert result.outcome == "uncertain"
    assert result.detail is not None
    assert "--resend-after" in result.detail
