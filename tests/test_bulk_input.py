"""Bulk input files as people save them: byte order marks, other encodings, very long cells
(issue 12.9). Nothing ends as an "internal error": a file civic311 cannot read is refused,
naming the row and the fix, with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from civic311 import InvalidRequestError
from civic311.bulk import MAX_FIELD_BYTES, read_rows
from civic311.cli._app import cli
from civic311.testing import FakeCity

HEADER = "service_code,address_string,description\n"
ROWS = HEADER + "001,1 Rue de la Paix,Nid-de-poule devant le café\n002,2 Elm St,Light out\n"


@pytest.fixture(autouse=True)
def _ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIVIC311_API_KEY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CIVIC311_LEDGER", str(tmp_path / "ledger.sqlite"))


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b"\xef\xbb\xbf"),
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-32-le", b"\xff\xfe\x00\x00"),
    ],
)
def test_a_byte_order_mark_names_the_encoding(tmp_path: Path, encoding: str, bom: bytes) -> None:
    """UTF-8, UTF-16 and UTF-32 files with a BOM (as spreadsheets save them) read as written."""
    path = tmp_path / "rows.csv"
    path.write_bytes(bom + ROWS.encode(encoding))
    rows = list(read_rows(path))
    assert [r.error for r in rows] == [None, None]
    assert rows[0].request is not None
    assert rows[0].request.description == "Nid-de-poule devant le café"


def test_latin_1_without_a_bom_is_refused_naming_the_row_and_the_fix(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 raise InvalidRequestError naming the row and --encoding; with
    encoding="latin-1" the same file reads."""
    path = tmp_path / "rows.csv"
    path.write_bytes(ROWS.encode("latin-1"))
    with pytest.raises(InvalidRequestError) as caught:
        list(read_rows(path))
    message = str(caught.value)
    assert caught.value.field == "encoding"
    assert "row 1 (line 2)" in message
    assert "--encoding" in message
    assert str(path) in message
    rows = list(read_rows(path, encoding="latin-1"))
    assert rows[0].request is not None
    assert rows[0].request.description == "Nid-de-poule devant le café"


def test_an_unknown_encoding_is_refused_naming_it(tmp_path: Path) -> None:
    """encoding= that Python does not know raises InvalidRequestError naming it."""
    path = tmp_path / "rows.csv"
    path.write_text(ROWS, encoding="utf-8")
    with pytest.raises(InvalidRequestError, match="klingon"):
        list(read_rows(path, encoding="klingon"))


def test_a_cell_over_the_csv_modules_128_kib_default_is_read(tmp_path: Path) -> None:
    """A 200 KiB cell is read (the limit is the body cap, not csv's 128 KiB): the row then
    meets the request's own rules, which name the field, and the next row is unaffected."""
    path = tmp_path / "rows.csv"
    long_text = "x" * (200 * 1024)
    path.write_text(f"{HEADER}001,1 Main St,{long_text}\n002,2 Elm St,ok\n", encoding="utf-8")
    first, second = list(read_rows(path))
    assert first.error is not None
    assert first.error.startswith("description: is 204800 characters")
    assert second.request is not None


def test_a_cell_over_the_body_cap_is_refused_naming_the_row(tmp_path: Path) -> None:
    """A cell larger than MAX_FIELD_BYTES raises InvalidRequestError naming the row."""
    path = tmp_path / "rows.csv"
    huge = "y" * (MAX_FIELD_BYTES + 10)
    path.write_text(f"{HEADER}001,1 Main St,ok\n002,2 Main St,{huge}\n", encoding="utf-8")
    with pytest.raises(InvalidRequestError, match=r"row 2 .*cannot be read as CSV"):
        list(read_rows(path))


def test_cli_refuses_latin_1_with_exit_2_and_reads_it_with_encoding(tmp_path: Path) -> None:
    """`bulk submit` on Latin-1 bytes exits 2 naming the row and --encoding (no traceback);
    with --encoding latin-1 the dry run passes."""
    path = tmp_path / "rows.csv"
    path.write_bytes(ROWS.encode("latin-1"))
    city = FakeCity(seed=9)
    with city.serve() as url:
        runner = CliRunner()
        refused = runner.invoke(cli, ["--endpoint", url, "bulk", "submit", str(path), "--dry-run"])
        assert refused.exit_code == 2
        assert "row 1" in refused.stderr
        assert "--encoding" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert "internal error" not in refused.stderr
        read = runner.invoke(
            cli,
            ["--endpoint", url, "bulk", "submit", str(path), "--dry-run", "--encoding", "latin-1"],
        )
        assert read.exit_code == 0, read.stderr
        assert "2 valid" in read.stdout
    assert city.count_created() == 0
