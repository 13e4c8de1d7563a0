"""`kedro sweep`: one MLflow run per configuration of the grid in the parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from linear_nets.cli import expand_grid, nest, sweep
from tests.support import mlflow_client


def test_expand_grid_takes_every_combination():
    grid = {"a.x": [1, 2], "a.y": [None], "b": ["s", "t"]}
    assert expand_grid(grid) == [
        {"a.x": 1, "a.y": None, "b": "s"},
        {"a.x": 1, "a.y": None, "b": "t"},
        {"a.x": 2, "a.y": None, "b": "s"},
        {"a.x": 2, "a.y": None, "b": "t"},
    ]
    assert nest({"a.x": 1, "a.y": None, "b": "s"}) == {"a": {"x": 1, "y": None}, "b": "s"}


def test_sweep_records_one_run_per_configuration(kedro_project: Path):
    # conf/local deep-merges over the grid in conf/base, one key at a time
    (kedro_project / "conf/local/parameters_sweep.yml").write_text(
        "boston_sweep:\n"
        "  boston.train.optimizer: [sgd, adam]\n"
        "  boston.train.lr: [0.05, 50.0]\n"
        "  boston.train.batch_size: [null]\n"
        "  boston.train.epochs: [40]\n"
    )
    result = CliRunner().invoke(sweep, [], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "4 runs of 'boston'" in result.output
    assert "optimizer=sgd lr=50.0 batch_size=None epochs=40" in result.output
    assert "FAILED: training diverged" in result.output  # SGD at lr 50; the sweep goes on

    client = mlflow_client(kedro_project)
    experiment = client.get_experiment_by_name("linear_nets")
    runs = client.search_runs([experiment.experiment_id], "tags.sweep != ''")
    assert len(runs) == 4
    assert len({run.data.tags["sweep"] for run in runs}) == 1
    by_name = {run.info.run_name: run for run in runs}
    assert set(by_name) == {
        f"boston optimizer={opt} lr={lr} batch_size=None epochs=40"
        for opt in ("sgd", "adam")
        for lr in (0.05, 50.0)
    }
    good = by_name["boston optimizer=adam lr=0.05 batch_size=None epochs=40"]
    assert good.info.status == "FINISHED"
    assert good.data.params["boston.train.optimizer"] == "adam"
    assert good.data.params["boston.train.epochs"] == "40"
    assert len(client.get_metric_history(good.info.run_id, "train_loss")) == 40
    assert by_name["boston optimizer=sgd lr=50.0 batch_size=None epochs=40"].info.status == "FAILED"


def test_sweep_without_a_grid_is_a_usage_error(kedro_project: Path):
    result = CliRunner().invoke(sweep, ["--pipeline", "landscape"])
    assert result.exit_code == 2
    assert "no 'landscape_sweep' grid" in result.output


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
