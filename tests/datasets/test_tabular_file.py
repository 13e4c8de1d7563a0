"""The user's table, read by extension, with errors that name the file."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from linear_nets.datasets.tabular_file import TabularFileDataset, TabularFileError


def test_reads_csv_and_parquet_alike(tmp_path: Path):
    table = pd.DataFrame({"rooms": [3, 4, 2], "price": [250.5, 310.0, 180.25]})
    table.to_csv(tmp_path / "houses.csv", index=False)
    table.to_parquet(tmp_path / "houses.PARQUET")
    for name in ("houses.csv", "houses.PARQUET"):
        dataset = TabularFileDataset(filepath=str(tmp_path / name))
        assert dataset.exists()
        pd.testing.assert_frame_equal(dataset.load(), table)


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
            "houses.xlsx",
            b"whatever",
            "houses.xlsx: unknown extension '.xlsx'; expected .csv or .parquet",
        ),
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
