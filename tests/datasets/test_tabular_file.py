"""The user's table, read by extension, with errors that name the file."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from linear_nets.datasets.tabular_file import TabularFileDataset, TabularFileError


def test_reads_csv_and_parquet_alike_a_table_of_numbers_as_one_float_block(tmp_path: Path):
    table = pd.DataFrame({"rooms": [3, 4, 2], "price": [250.5, 310.0, 180.25]})
    table.to_csv(tmp_path / "houses.csv", index=False)
    table.to_parquet(tmp_path / "houses.PARQUET")
    for name in ("houses.csv", "houses.PARQUET"):
        dataset = TabularFileDataset(filepath=str(tmp_path / name))
        assert dataset.exists()
        loaded = dataset.load()
        pd.testing.assert_frame_equal(loaded, table.astype("float64"))
        values = loaded.to_numpy()
        assert values.base is not None and values.strides[0] == 8  # a view of one block


def test_a_csv_read_in_chunks_keeps_every_row_and_its_line(tmp_path: Path, monkeypatch):
    from linear_nets.datasets import tabular_file

    monkeypatch.setattr(tabular_file, "CSV_CHUNK_ROWS", 4)
    path = tmp_path / "long.csv"
    path.write_text("a,b\n" + "".join(f"{i},{2 * i}\n" for i in range(9)) + "\n7,word\n")
    loaded = TabularFileDataset(filepath=str(path)).load()
    assert len(loaded) == 11 and loaded["a"].iloc[8] == 8
    assert loaded.iloc[9].isna().all()  # the blank line 11 stays row 9
    assert loaded["b"].iloc[10] == "word" and loaded["b"].iloc[3] == 6  # mixed: kept as written


def test_keeps_blank_csv_lines_as_empty_rows_so_positions_stay_lines(tmp_path: Path):
    path = tmp_path / "gaps.csv"
    path.write_text("a,b\n1,2\n\n3,4\n")
    loaded = TabularFileDataset(filepath=str(path)).load()
    assert len(loaded) == 3
    assert loaded.iloc[1].isna().all()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "houses.xls",
            b"whatever",
            "houses.xls: unknown extension '.xls'; expected .csv, .parquet or .xlsx",
        ),
        ("broken.xlsx", b"PK not really", "broken.xlsx: cannot be read as Excel"),
        (
            "index.csv",
            b",a,b\n0,1,2\n",
            "index.csv: column 1 has no name in the header line (pandas would call it "
            "'Unnamed: 0'); name it, or delete the column",
        ),
        ("gap.csv", b"a, ,b\n1,2,3\n", "gap.csv: column 2 has no name in the header line"),
        ("houses", b"a,b\n1,2\n", "houses: unknown extension '(none)'"),
        ("missing.csv", None, "missing.csv: no such file"),
        ("empty.csv", b"", "empty.csv: empty file; expected a header line"),
        (
            "ragged.csv",
            b"a,b\n1,2\n3,4,5\n",
            "ragged.csv: cannot be read as CSV: Error tokenizing data",
        ),
        ("latin.csv", "a,b\n1,\u00e9\n".encode("latin-1"), "latin.csv: cannot be read as CSV"),
        ("broken.parquet", b"PAR1 not really", "broken.parquet: cannot be read as Parquet"),
        (
            "twice.csv",
            b"a,b,a\n1,2,3\n",
            "twice.csv: column name 'a' appears twice (columns 1 and 3)",
        ),
    ],
)
def test_unreadable_files_are_refused_naming_them(
    tmp_path: Path, name: str, content: bytes | None, message: str
):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TabularFileError, match=re.escape(message)):
        TabularFileDataset(filepath=str(path)).load()


def test_duplicate_parquet_columns_are_refused(tmp_path: Path):
    path = tmp_path / "twice.parquet"
    pq.write_table(pa.table([[1.0], [2.0]], names=["x", "x"]), path)
    with pytest.raises(
        TabularFileError, match=r"column name 'x' appears twice \(columns 1 and 2\)"
    ):
        TabularFileDataset(filepath=str(path)).load()


def test_is_read_only(tmp_path: Path):
    with pytest.raises(Exception, match="read-only"):
        TabularFileDataset(filepath=str(tmp_path / "x.csv")).save(pd.DataFrame())


EUROPEAN = "rooms;area;price\n3;85,5;250,5\n4;120;310\n2;60,25;180,25\n"


@pytest.mark.parametrize(
    ("text", "options"),
    [
        (EUROPEAN, {}),  # found from the file
        (EUROPEAN, {"sep": ";", "decimal": "comma"}),
        (EUROPEAN, {"sep": "semicolon", "decimal": ","}),
        (EUROPEAN.replace(";", "\t"), {}),
        (EUROPEAN.replace(";", "\t"), {"sep": "tab"}),
        (EUROPEAN.replace(";", "|").replace(",", "."), {}),
        (EUROPEAN.replace(",", "."), {"sep": ";", "decimal": "point"}),
    ],
)
def test_semicolon_tab_and_decimal_comma_csvs_read_as_numbers(
    tmp_path: Path, text: str, options: dict
):
    path = tmp_path / "houses.csv"
    path.write_text(text)
    loaded = TabularFileDataset(filepath=str(path), **options).load()
    expected = pd.DataFrame({"rooms": [3, 4, 2], "area": [85.5, 120, 60.25]})
    expected["price"] = [250.5, 310.0, 180.25]
    pd.testing.assert_frame_equal(loaded, expected.astype("float64"))


def test_a_comma_csv_with_quoted_decimal_commas_keeps_them_as_text(tmp_path: Path):
    """With a comma separator the decimal mark stays a point: "2,5" is text, which the tabular
    node then refuses naming the cell."""
    path = tmp_path / "houses.csv"
    path.write_text('rooms,price\n3,"2,5"\n4,3.5\n')
    loaded = TabularFileDataset(filepath=str(path)).load()
    assert loaded["price"].tolist() == ["2,5", "3.5"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sep": ";;"}, "unknown separator ';;'"),
        ({"decimal": "dot"}, "unknown decimal mark 'dot'; expected auto, point or comma"),
    ],
)
def test_unknown_separators_and_decimal_marks_are_refused(
    tmp_path: Path, options: dict, message: str
):
    with pytest.raises(TabularFileError, match=re.escape(message)):
        TabularFileDataset(filepath=str(tmp_path / "x.csv"), **options)


def test_a_decimal_comma_needs_another_separator(tmp_path: Path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(TabularFileError, match="separator and the decimal mark are both ','"):
        TabularFileDataset(filepath=str(path), decimal="comma").load()


def _workbook(path: Path, rows: list[list], sheet: str = "Sheet") -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = sheet
    for row in rows:
        book.active.append(row)
    book.create_sheet("notes").append(["written by", "hand"])
    book.save(path)


def test_reads_an_excel_sheet_by_position_or_name(tmp_path: Path):
    path = tmp_path / "houses.xlsx"
    _workbook(path, [["rooms", "price"], [3, 250.5], [], [2, 180.25]], sheet="prices")
    for sheet in (0, "prices"):
        loaded = TabularFileDataset(filepath=str(path), sheet=sheet).load()
        assert list(loaded.columns) == ["rooms", "price"]
        assert loaded["price"].iloc[0] == 250.5
        assert len(loaded) == 3 and loaded.iloc[1].isna().all()  # sheet row 3 stays row 3
    with pytest.raises(TabularFileError, match="houses.xlsx: cannot be read as Excel: .*nowhere"):
        TabularFileDataset(filepath=str(path), sheet="nowhere").load()


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["rooms", None, "price"], "column 2 has no name in the header row"),
        (["rooms", "price", "rooms"], "column name 'rooms' appears twice (columns 1 and 3)"),
    ],
)
def test_excel_header_names_are_checked(tmp_path: Path, header: list, message: str):
    path = tmp_path / "houses.xlsx"
    _workbook(path, [header, [3, 4, 250.5], [2, 5, 180.0]])
    with pytest.raises(TabularFileError, match=re.escape(message)):
        TabularFileDataset(filepath=str(path)).load()
