"""Reading bulk files: CSV and JSON Lines rows become NewRequests, or say why not."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import civic311
from civic311.bulk import Row, read_rows, row_key
from civic311.ledger import content_key

HEADER = (
    "service_code,lat,long,address_string,description,email,"
    "attribute.SURFACE,attribute.SURFACE,attribute.DEPTH\n"
)
CSV = (
    HEADER
    + """001,39.16,-86.52,,Pothole by the school,a@b.example,,,12
003,,,12 Elm St,Tag on the wall,,wall,fence,
003,,,12 Elm St,Tag on the fence,,wall|fence|bench,,
001,north,-86.5,,Bad latitude,,,,
004,,,,No location,,,,

002,95,-86.5,,Latitude out of range,,,,
001,39.16,-86.52,,Pothole by the school,a@b.example,,,12
"""
)


def rows(text: str, **kwargs: object) -> list[Row]:
    return list(read_rows(io.StringIO(text), **kwargs))  # type: ignore[arg-type]


def test_csv_rows_become_requests_with_row_numbers() -> None:
    """Valid CSV rows become NewRequests; invalid ones say which column and why."""
    found = rows(CSV)
    assert [r.number for r in found] == [1, 2, 3, 4, 5, 7, 8]
    first, second, third, bad_lat, no_location, out_of_range, duplicate = found
    assert first.request == civic311.NewRequest(
        service_code="001",
        lat=39.16,
        long=-86.52,
        description="Pothole by the school",
        email="a@b.example",
        attributes={"DEPTH": "12"},
    )
    assert second.request is not None
    assert second.request.attributes == {"SURFACE": ("wall", "fence")}
    assert third.request is not None
    assert third.request.attributes == {"SURFACE": ("wall", "fence", "bench")}
    assert bad_lat.error == "lat: 'north' is not a number"
    assert no_location.error is not None
    assert no_location.error.startswith("location:")
    assert out_of_range.error is not None
    assert out_of_range.error.startswith("lat:")
    assert duplicate.error == "duplicate row: the same content as an earlier row"
    assert first.key == row_key(first.request)


def test_jsonl_rows_with_lists_and_attribute_objects(tmp_path: Path) -> None:
    """JSON Lines rows take lists and an attributes object; bad lines are row errors."""
    path = tmp_path / "reports.jsonl"
    path.write_text(
        '{"service_code": "003", "address_id": "A1", "attributes": {"SURFACE": ["wall"]}}\n'
        '{"service_code": "001", "lat": 39.1, "long": -86.5, "attribute.DEPTH": "4"}\n'
        "not json\n"
        "[1, 2]\n"
        '{"service_code": "001", "address_id": "A2", "attributes": "x"}\n',
        encoding="utf-8",
    )
    found = list(read_rows(path))
    assert found[0].request is not None
    assert found[0].request.attributes == {"SURFACE": ("wall",)}
    assert found[1].request is not None
    assert found[1].request.lat == 39.1
    assert [r.error is not None for r in found] == [False, False, True, True, True]
    assert found[2].error is not None
    assert found[2].error.startswith("not JSON")


def test_key_column_names_rows_and_must_be_unique() -> None:
    """A key column names rows; a repeated or empty key is a row error."""
    text = "ref,service_code,address_id\nA-1,001,x\nA-2,001,y\nA-1,001,z\n,001,w\n"
    found = rows(text, key_column="ref")
    assert [r.key for r in found[:2]] == ["A-1", "A-2"]
    assert found[2].error == "duplicate row: ref 'A-1'"
    assert found[3].error == "ref: empty key"


def test_unknown_columns_refuse_the_whole_file() -> None:
    """A misspelled column is refused up front, naming it and the known columns."""
    with pytest.raises(civic311.InvalidRequestError, match="'descripton'"):
        rows("service_code,descripton\n001,x\n")
    with pytest.raises(civic311.InvalidRequestError, match="key_column"):
        rows("service_code,address_id\n001,x\n", key_column="ref")


def test_bad_arguments() -> None:
    """A wrong source or format is an InvalidRequestError."""
    with pytest.raises(civic311.InvalidRequestError, match="source"):
        list(read_rows(42))  # type: ignore[arg-type]
    with pytest.raises(civic311.InvalidRequestError, match="format"):
        rows("a\n", format="xlsx")


def test_a_row_with_too_many_cells_is_an_error() -> None:
    """Extra cells beyond the header make that row an error, not a silent truncation."""
    found = rows("service_code,address_id\n001,x,extra\n")
    assert found[0].error == "row has 3 cells, the header 2"


def test_keys_are_stable_across_runs() -> None:
    """The same content gives the same key, so a re-run recognises its rows."""
    a = rows("service_code,address_id\n001,x\n")[0]
    b = rows("service_code,address_id\n001,x\n")[0]
    assert a.key == b.key
    assert a.request is not None
    assert a.key == content_key(a.request)  # the journal's one content key
