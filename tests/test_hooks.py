"""Project hooks: flattened typed parameters, run tags and the end-of-run summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from linear_nets.engine import ModelConfig, TrainConfig
from linear_nets.hooks import _find, flatten, git_commit
from tests.support import mlflow_client, run_pipeline


def test_flatten_walks_models_and_dicts():
    config = {"train": TrainConfig(lr=0.1, epochs=3), "model": ModelConfig(kind="scratch")}
    flat = flatten("boston", config)
    assert flat["boston.train.lr"] == 0.1
    assert flat["boston.train.batch_size"] is None
    assert flat["boston.model.kind"] == "scratch"


def test_find_looks_inside_nested_parameter_models():
    inner = TrainConfig(lr=0.1, epochs=3)
    assert _find({"a": {"b": inner}, "c": 1}, TrainConfig) == [inner]


def test_git_commit_outside_a_repository_is_unknown(tmp_path: Path):
    assert git_commit(tmp_path) == "unknown"


def test_a_run_ends_with_a_summary_and_is_tagged(
    kedro_project: Path, capsys: pytest.CaptureFixture[str]
):
    run_pipeline(kedro_project, "synthetic")
    printed = capsys.readouterr().out
    assert "kedro run --pipelines=synthetic: done" in printed
    assert "w_max_abs_error" in printed
    assert "data/06_models/synthetic_model.pt/" in printed
    assert "mlflow run" in printed

    client = mlflow_client(kedro_project)
    run = client.search_runs([client.get_experiment_by_name("linear_nets").experiment_id])[0]
    assert run.info.run_id in printed
    assert run.data.tags["device"] == "cpu"
    assert run.data.params["synthetic.train.optimizer"] == "manual_sgd"
