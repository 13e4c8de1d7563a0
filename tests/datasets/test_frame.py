"""Tables between the nodes: Parquet read into one float64 block, written whole or not at all."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from kedro.io import DatasetError, Version

from linear_nets.datasets.frame import FrameDataset
from tests.support import leftovers


def _rows(n: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.standard_normal((n, 3)), columns=["x1", "x2", "y"])
    return table.iloc[rng.permutation(n)].rename_axis("row")  # an index of row numbers


def test_a_table_of_floats_round_trips_with_its_index_as_one_block(tmp_path: Path):
    table = _rows()
    dataset = FrameDataset(filepath=str(tmp_path / "rows.parquet"))
    dataset.save(table)
    loaded = dataset.load()
    pd.testing.assert_frame_equal(loaded, table, check_index_type=False)
    values = loaded.to_numpy()
    assert values.base is not None and values.flags.f_contiguous  # a view of the one block
    assert pq.read_table(tmp_path / "rows.parquet").to_pandas().equals(table)  # plain Parquet


def test_other_columns_load_as_pandas_reads_them(tmp_path: Path):
    table = pd.DataFrame({"label": [1, 2, 3], "name": ["a", "b", "c"], "x": [0.5, 1.5, 2.5]})
    dataset = FrameDataset(filepath=str(tmp_path / "mixed.parquet"))
    dataset.save(table)
    pd.testing.assert_frame_equal(dataset.load(), table)


def test_versioned_each_run_reads_its_own_table_and_the_preview_shows_the_first_rows(
    tmp_path: Path,
):
    path = str(tmp_path / "rows.parquet")
    first, second = _rows(), _rows() * 2
    FrameDataset(filepath=path, version=Version(None, "2026-01-01T00.00.00.000Z")).save(first)
    FrameDataset(filepath=path, version=Version(None, "2026-01-02T00.00.00.000Z")).save(second)
    old = FrameDataset(filepath=path, version=Version("2026-01-01T00.00.00.000Z", None))
    pd.testing.assert_frame_equal(old.load(), first, check_index_type=False)
    latest = FrameDataset(filepath=path, version=Version(None, None))
    assert latest.exists()
    preview = latest.preview(nrows=2)
    assert preview["columns"] == ["x1", "x2", "y"] and len(preview["data"]) == 2


def test_a_full_disk_leaves_no_file_behind(small_disk: Path):
    dataset = FrameDataset(filepath=str(small_disk / "rows.parquet"))
    with pytest.raises(DatasetError, match="No space left on device") as raised:
        dataset.save(_rows(20_000))  # ~500 KB on a 64 KiB disk
    assert raised.value.__cause__.errno == errno.ENOSPC
    assert leftovers(small_disk) == []
    assert not dataset.exists()


def test_a_csv_path_writes_csv_with_the_index_first_and_reads_it_back(tmp_path: Path):
    table = pd.DataFrame(
        {"actual": [1.5, 2.25, 1e-7], "predicted": [0.1 + 0.2, 3.0, -4.5]},
        index=pd.Index([5, 3, 9]),
    )
    dataset = FrameDataset(filepath=str(tmp_path / "predictions.csv"), index_label="row")
    dataset.save(table)
    lines = (tmp_path / "predictions.csv").read_text().splitlines()
    assert lines[0].replace('"', "") == "row,actual,predicted"
    assert lines[1] == "5,1.5,0.30000000000000004"  # every digit a float64 needs
    table = table.rename_axis("row")
    pd.testing.assert_frame_equal(dataset.load(), table)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "predictions.csv", index_col="row"), table)
    assert dataset.preview(nrows=1)["index"] == [5]
