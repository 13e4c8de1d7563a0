"""MlflowMetricsDataset and the deferred MLflow logging it relies on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from kedro.io import DatasetError, Version

from linear_nets.datasets import MlflowMetricsDataset
from linear_nets.tracking import deferred


@pytest.fixture
def run(tmp_path: Path) -> Iterator[mlflow.ActiveRun]:
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.MlflowClient().create_experiment("metrics")
    with mlflow.start_run(experiment_id=experiment) as active:
        yield active
    mlflow.set_tracking_uri(previous)


def _history(run_id: str, key: str) -> list[tuple[int, float]]:
    points = mlflow.MlflowClient().get_metric_history(run_id, key)
    return sorted((point.step, point.value) for point in points)


def test_saves_json_and_logs_histories_with_epoch_steps(tmp_path: Path, run):
    dataset = MlflowMetricsDataset(filepath=str(tmp_path / "m.json"))
    dataset.save({"train_loss": [3.0, 2.0, 1.0], "test_mse": 0.5})
    assert json.loads((tmp_path / "m.json").read_text()) == {
        "train_loss": [3.0, 2.0, 1.0],
        "test_mse": 0.5,
    }
    assert dataset.load()["test_mse"] == 0.5
    assert _history(run.info.run_id, "train_loss") == [(1, 3.0), (2, 2.0), (3, 1.0)]
    assert _history(run.info.run_id, "test_mse") == [(0, 0.5)]


def test_more_points_than_one_batch_all_arrive(tmp_path: Path, run):
    values = [float(i) for i in range(2500)]
    MlflowMetricsDataset(filepath=str(tmp_path / "m.json")).save({"loss": values})
    assert len(_history(run.info.run_id, "loss")) == 2500


def test_a_non_number_is_refused_naming_the_metric(tmp_path: Path):
    with pytest.raises(DatasetError, match="metric 'acc' must be a number"):
        MlflowMetricsDataset(filepath=str(tmp_path / "m.json")).save({"acc": "high"})


def test_logging_waits_for_the_runs_deferred_log(tmp_path: Path, run):
    run_id = run.info.run_id
    dataset = MlflowMetricsDataset(filepath=str(tmp_path / "m.json"), prefix="p")
    log = deferred.DeferredLog(run_id)
    token = deferred.activate(log)
    try:
        dataset.save({"a": 1.0})
        assert _history(run_id, "p.a") == []
        log.commit()
        assert _history(run_id, "p.a") == [(0, 1.0)]
    finally:
        deferred.deactivate(token)


def test_versioned_each_run_writes_and_reads_its_own_file(tmp_path: Path):
    filepath = str(tmp_path / "m.json")
    first = MlflowMetricsDataset(filepath=filepath, version=Version("v1", "v1"))
    second = MlflowMetricsDataset(filepath=filepath, version=Version("v2", "v2"))
    first.save({"a": 1.0})
    second.save({"a": 2.0})
    assert first.load() == {"a": 1.0}
    assert second.load() == {"a": 2.0}
    assert (tmp_path / "m.json" / "v1" / "m.json").is_file()
    assert MlflowMetricsDataset(filepath=filepath, version=Version(None, None)).load() == {"a": 2.0}
    with pytest.raises(DatasetError, match="must not exist"):
        first.save({"a": 3.0})
