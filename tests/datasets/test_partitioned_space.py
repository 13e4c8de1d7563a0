"""One run at a time holds a partitioned folder that each run replaces and then streams."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from tests.support import parquet_partitions

# Another process: saves its own partition into the folder, and with "hold" keeps it.
OTHER_RUN = """
import sys, time, logging
logging.basicConfig(level=logging.WARNING)
import pandas as pd
from linear_nets.datasets.partitioned_space import SpaceCheckedPartitionedDataset
dataset = SpaceCheckedPartitionedDataset(
    path=sys.argv[1], dataset="pandas.ParquetDataset", filename_suffix=".parquet", overwrite=True
)
print("start", flush=True)
dataset.save({"theirs": pd.DataFrame({"x": [2.0], "y": [3.0]})})
print("saved", flush=True)
if sys.argv[2:] == ["hold"]:
    time.sleep(120)
"""


def _other_run(folder: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", OTHER_RUN, str(folder), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_run_waits_until_the_first_is_done_with_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    ours = parquet_partitions(folder)
    ours.save({"ours": pd.DataFrame({"x": [1.0], "y": [1.0]})})
    other = _other_run(folder)
    try:
        assert other.stdout.readline().strip() == "start"
        time.sleep(1.5)
        assert other.poll() is None  # waiting: our partitions are still there for us to read
        assert list(ours.load()) == ["ours"]
        # another catalog of this same process shares the hold instead of waiting for it
        assert list(parquet_partitions(folder).load()) == ["ours"]
        ours.release()  # what Kedro does after the last node that reads it
        out, err = other.communicate(timeout=120)
    finally:
        other.kill()
    assert other.returncode == 0 and out.strip() == "saved"
    assert "Waiting for another process that is using" in err and f"{folder}.lock" in err
    assert list(parquet_partitions(folder).load()) == ["theirs"]


def test_a_run_that_dies_gives_the_folder_back(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    holder = _other_run(folder, "hold")
    try:
        assert holder.stdout.readline().strip() == "start"
        assert holder.stdout.readline().strip() == "saved"
        holder.kill()  # SIGKILL: no clean-up code runs, the OS drops its lock
        holder.wait(timeout=60)
        started = time.monotonic()
        assert list(parquet_partitions(folder).load()) == ["theirs"]
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
