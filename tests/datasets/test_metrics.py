"""MetricsDataset: a plain JSON file of numbers, checked when saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kedro.io import DatasetError, Version

from linear_nets.datasets import MetricsDataset
from linear_nets.datasets.metrics import metric_entries


def test_saves_json_and_reads_it_back(tmp_path: Path):
    dataset = MetricsDataset(filepath=str(tmp_path / "m.json"))
    dataset.save({"train_loss": [3.0, 2.0, 1.0], "test_mse": 0.5})
    assert json.loads((tmp_path / "m.json").read_text()) == {
        "train_loss": [3.0, 2.0, 1.0],
        "test_mse": 0.5,
    }
    assert dataset.load()["test_mse"] == 0.5


def test_points_are_numbers_at_step_0_or_lists_with_epoch_steps():
    assert metric_entries({"train_loss": [3.0, 2.0], "test_mse": 0.5}, prefix="p") == [
        ("p.train_loss", 3.0, 1),
        ("p.train_loss", 2.0, 2),
        ("p.test_mse", 0.5, 0),
    ]


def test_a_non_number_is_refused_naming_the_metric_and_nothing_is_written(tmp_path: Path):
    with pytest.raises(DatasetError, match="metric 'acc' must be a number"):
        MetricsDataset(filepath=str(tmp_path / "m.json")).save({"acc": "high"})
    with pytest.raises(DatasetError, match="metric 'ok' must be a number"):
        MetricsDataset(filepath=str(tmp_path / "m.json")).save({"ok": [1.0, True]})
    assert not (tmp_path / "m.json").exists()


def test_versioned_each_run_writes_and_reads_its_own_file(tmp_path: Path):
    filepath = str(tmp_path / "m.json")
    first = MetricsDataset(filepath=filepath, version=Version("v1", "v1"))
    second = MetricsDataset(filepath=filepath, version=Version("v2", "v2"))
    first.save({"a": 1.0})
    second.save({"a": 2.0})
    assert first.load() == {"a": 1.0}
    assert second.load() == {"a": 2.0}
    assert (tmp_path / "m.json" / "v1" / "m.json").is_file()
    assert MetricsDataset(filepath=filepath, version=Version(None, None)).load() == {"a": 2.0}
    with pytest.raises(DatasetError, match="must not exist"):
        first.save({"a": 3.0})
