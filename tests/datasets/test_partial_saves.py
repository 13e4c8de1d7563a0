"""PartialSaveHook: a save that did not finish leaves nothing a later run could load.

Kedro's own runner and hook manager run the nodes; kedro-datasets' datasets (which write in
place) save onto a real 64 KiB tmpfs, so the disk really fills up in the middle of a save.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kedro.framework.hooks import _create_hook_manager
from kedro.io import DataCatalog, DatasetError
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner

from linear_nets.datasets.partial_saves import PartialSaveHook, SaveTarget, save_target
from tests.support import leftovers

VERSION = "2026-12-06T22.00.00.000Z"


def _large_table() -> pd.DataFrame:
    """About 160 KB as CSV or Parquet: more than the 64 KiB disk holds."""
    return pd.DataFrame(np.random.default_rng(0).random((2000, 8)), columns=list("abcdefgh"))


def _small_table() -> pd.DataFrame:
    return pd.DataFrame({"a": [1.0, 2.0]})


def _run(hook: PartialSaveHook, outputs: dict[str, Any], config: dict[str, dict]) -> None:
    """Run one node that returns ``outputs`` with the catalog ``config`` as a Kedro session
    does: ``before_pipeline_run``, the runner, ``on_pipeline_error`` when it failed (not on
    Ctrl-C), ``after_pipeline_run`` when it did not."""
    catalog = DataCatalog.from_config(config, save_version=VERSION)
    pipeline = Pipeline([Node(lambda: dict(outputs), None, {n: n for n in outputs}, name="make")])
    manager = _create_hook_manager()
    manager.register(hook)
    manager.hook.before_pipeline_run(run_params={}, pipeline=pipeline, catalog=catalog)
    try:
        SequentialRunner().run(pipeline, catalog, manager)
    except Exception as error:
        manager.hook.on_pipeline_error(
            error=error, run_params={}, pipeline=pipeline, catalog=catalog
        )
        raise
    manager.hook.after_pipeline_run(
        run_params={}, run_result={}, pipeline=pipeline, catalog=catalog
    )


def test_the_save_target_follows_kedros_versioned_layout(tmp_path: Path):
    catalog = DataCatalog.from_config(
        {
            "table": {"type": "pandas.CSVDataset", "filepath": "data/t.csv", "versioned": True},
            "plain": {"type": "pandas.CSVDataset", "filepath": "file:///abs/p.csv"},
            "remote": {"type": "pandas.CSVDataset", "filepath": "s3://bucket/r.csv"},
            "memory": {"type": "MemoryDataset"},
        },
        save_version=VERSION,
    )
    assert save_target(catalog, "table") == SaveTarget(
        Path(f"data/t.csv/{VERSION}/t.csv"), Path(f"data/t.csv/{VERSION}")
    )
    assert save_target(catalog, "plain") == SaveTarget(Path("/abs/p.csv"))
    assert save_target(catalog, "remote") is None
    assert save_target(catalog, "memory") is None
    assert save_target(catalog, "not_in_the_catalog") is None


@pytest.mark.parametrize(
    ("kind", "name"), [("pandas.CSVDataset", "rows.csv"), ("pandas.ParquetDataset", "rows.pq")]
)
def test_a_full_disk_mid_save_leaves_no_partial_version(small_disk: Path, kind: str, name: str):
    config = {
        "small": {"type": kind, "filepath": str(small_disk / "small" / name), "versioned": True},
        "large": {"type": kind, "filepath": str(small_disk / "large" / name), "versioned": True},
    }
    hook = PartialSaveHook()
    with pytest.raises(DatasetError, match="No space left on device"):
        _run(hook, {"small": _small_table(), "large": _large_table()}, config)

    assert hook.remove_unfinished() == []  # on_pipeline_error removed it already
    # the finished save stays; the half-written file and its version folder are gone
    assert leftovers(small_disk) == [f"small/{name}/{VERSION}/{name}"]
    assert not (small_disk / "large" / name / VERSION).exists()
    catalog = DataCatalog.from_config(config)
    assert catalog.load("small").equals(_small_table())
    with pytest.raises(DatasetError, match="Did not find any versions"):
        catalog.load("large")  # Kedro finds no version: nothing half-written to read


def test_without_the_cleanup_the_partial_file_would_be_the_latest_version(small_disk: Path):
    """What the hook prevents: kedro-datasets writes in place, so the failed save leaves a
    partial file that Kedro then loads as the newest version."""
    config = {"large": {"type": "pandas.CSVDataset", "filepath": str(small_disk / "l.csv")}}
    config["large"]["versioned"] = True
    catalog = DataCatalog.from_config(config, save_version=VERSION)
    with pytest.raises(DatasetError, match="No space left on device"):
        catalog.save("large", _large_table())
    partial = small_disk / "l.csv" / VERSION / "l.csv"
    assert 0 < partial.stat().st_size < len(_large_table().to_csv(index=False))
    assert len(DataCatalog.from_config(config).load("large")) < len(_large_table())


def test_a_failed_overwrite_of_a_plain_file_removes_the_truncated_file(small_disk: Path):
    target = small_disk / "rows.csv"
    config = {"rows": {"type": "pandas.CSVDataset", "filepath": str(target)}}
    DataCatalog.from_config(config).save("rows", _small_table())
    with pytest.raises(DatasetError, match="No space left on device"):
        _run(PartialSaveHook(), {"rows": _large_table()}, config)
    assert leftovers(small_disk) == []  # a truncated table would load without an error


def test_a_save_refused_before_writing_keeps_what_was_there(tmp_path: Path):
    path = str(tmp_path / "r.csv")
    config = {"rows": {"type": "pandas.CSVDataset", "filepath": path, "versioned": True}}
    DataCatalog.from_config(config, save_version=VERSION).save("rows", _small_table())
    with pytest.raises(DatasetError, match="must not exist"):
        _run(PartialSaveHook(), {"rows": _large_table()}, config)  # the same version again: refused
    assert DataCatalog.from_config(config).load("rows").equals(_small_table())


def test_an_interrupted_save_is_removed_when_the_next_run_starts(tmp_path: Path):
    """Ctrl-C (or SIGTERM, which the tracking hook turns into KeyboardInterrupt) mid-save:
    Kedro calls no error hook; the next run of the process (a notebook) or the exit cleans."""

    def interrupt(value: object) -> None:
        raise KeyboardInterrupt

    config = {
        "doc": {
            "type": "json.JSONDataset",
            "filepath": str(tmp_path / "doc.json"),
            "versioned": True,
            "save_args": {"default": interrupt},  # json.dump has written the head already
        }
    }
    hook = PartialSaveHook()
    with pytest.raises(KeyboardInterrupt):
        _run(hook, {"doc": {"head": list(range(3000)), "tail": object()}}, config)
    partial = tmp_path / "doc.json" / VERSION / "doc.json"
    assert partial.read_text().endswith('"tail": ')  # half-written: no value, no closing brace

    hook.before_pipeline_run(catalog=DataCatalog.from_config(config))  # the next run
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "doc.json" / VERSION).exists()


def test_a_kedro_run_on_a_full_disk_fails_and_leaves_no_partial_table(
    kedro_project: Path, small_disk: Path
):
    """``kedro run --pipeline=boston`` with ``data/02_intermediate`` on a disk with 8 KiB left:
    the table's Parquet file (pandas.ParquetDataset, written in place) does not fit."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from tests.support import mlflow_client

    (small_disk / "filler").write_bytes(bytes(56 * 1024))  # 8 KiB left of 64
    layer = kedro_project / "data" / "02_intermediate"
    layer.rmdir()
    layer.symlink_to(small_disk)
    bootstrap_project(kedro_project)
    with (
        KedroSession.create(project_path=kedro_project) as session,
        pytest.raises(DatasetError, match="boston.table") as raised,
    ):
        session.run(pipeline_names=["boston"])

    assert "No space left on device" in str(raised.value.__cause__)
    assert leftovers(small_disk) == ["filler"]  # no half-written boston_table.parquet
    assert list((layer / "boston_table.parquet").iterdir()) == []  # no empty version folder
    [run] = mlflow_client(kedro_project).search_runs(["1"])
    assert run.info.status == "FAILED"


INTERRUPTED_RUN = r"""
import sys, time
from kedro.framework.hooks import _create_hook_manager
from kedro.io import DataCatalog
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner
from linear_nets.datasets.partial_saves import PartialSaveHook

def stall(value):
    print("saving", flush=True)  # json.dump has written the head of the file
    time.sleep(60)

entry = {"type": "json.JSONDataset", "filepath": sys.argv[1], "versioned": True}
entry["save_args"] = {"default": stall}
catalog = DataCatalog.from_config({"doc": entry}, save_version="v1")
data = {"head": list(range(3000)), "tail": object()}
pipeline = Pipeline([Node(lambda: data, None, "doc", name="make")])
manager = _create_hook_manager()
manager.register(PartialSaveHook())
manager.hook.before_pipeline_run(run_params={}, pipeline=pipeline, catalog=catalog)
SequentialRunner().run(pipeline, catalog, manager)
"""


@pytest.mark.slow  # a Python process importing Kedro and pandas
def test_ctrl_c_in_the_middle_of_a_save_removes_the_partial_file_at_exit(tmp_path: Path):
    import signal
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_RUN, str(tmp_path / "doc.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = iter(process.stdout.readline, "")  # Kedro logs to stdout too
        assert "saving\n" in lines
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert "KeyboardInterrupt" in stderr
    assert "Removed what unfinished saves" in stdout + stderr  # the exit handler ran
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "doc.json" / "v1").exists()
