"""`kedro sweep`: one `kedro run` process per configuration of a grid, checked before it starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from kedro.framework.cli.utils import _split_params

from linear_nets.cli import sweep
from linear_nets.sweep import (
    SweepError,
    check_size,
    configurations,
    expand_grid,
    failure_reason,
    grid_size,
)
from tests.support import mlflow_client

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def write_grid(project: Path, grid: str) -> None:
    """Override the boston grid in conf/local (local parameters deep-merge over conf/base)."""
    (project / "conf/local/parameters_sweep.yml").write_text(f"boston_sweep:\n{grid}")


def sweep_runs(project: Path) -> list:
    client = mlflow_client(project)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    return client.search_runs(experiments, "tags.sweep != ''")


def test_expand_grid_takes_every_combination():
    grid = {"a.x": [1, 2], "a.y": [None], "b": ["s", "t"]}
    assert grid_size(grid) == 4
    assert expand_grid(grid) == [
        {"a.x": 1, "a.y": None, "b": "s"},
        {"a.x": 1, "a.y": None, "b": "t"},
        {"a.x": 2, "a.y": None, "b": "s"},
        {"a.x": 2, "a.y": None, "b": "t"},
    ]
    with pytest.raises(SweepError, match="'a.x' must be a non-empty list"):
        grid_size({"a.x": []})


def test_each_configuration_is_a_kedro_run_with_its_params_and_the_sweep_id():
    grid = {"boston.train.optimizer": ["sgd", "adam"], "boston.train.batch_size": [None]}
    first, second = configurations(grid, "boston", "team", "20260101-000000")
    assert first.label == "optimizer=sgd batch_size=None"
    assert first.command[-4:-2] == ["--pipeline=boston", "--env=team"]
    assert _split_params(None, None, second.command[-1]) == {
        "boston": {"train": {"optimizer": "adam", "batch_size": None}},
        "sweep": {"id": "20260101-000000", "label": "optimizer=adam batch_size=None"},
    }
    assert second.reproduce == (
        "kedro run --pipeline=boston --env=team "
        "--params 'boston.train.optimizer=\"adam\",boston.train.batch_size=null'"
    )


def test_sizes_above_the_threshold_ask_and_impossible_ones_are_refused():
    assert check_size(50, workers=1, assume_yes=False) is None
    question = check_size(64, workers=2, assume_yes=False)
    assert question.startswith("64 runs ≈ 0.1 h with 2 worker(s)")
    assert check_size(64, workers=2, assume_yes=True) is None
    with pytest.raises(SweepError) as error:
        check_size(80_000, workers=1, assume_yes=True)
    assert "80000 runs ≈ 333.3 h" in str(error.value)
    assert "the limit is 10000 runs" in str(error.value)


def test_the_failure_reason_is_the_whole_final_exception():
    output = (
        "INFO Running node: train_linear_model\n"
        "│ ❱ 12 │ raise TrainingDiverged(message) │\n"
        "TrainingDivergedError: training diverged at epoch 3: loss inf;\n"
        "lower boston.train.lr (50.0)\n"
    )
    assert failure_reason(output) == (
        "TrainingDivergedError: training diverged at epoch 3: loss inf; "
        "lower boston.train.lr (50.0)"
    )


def test_a_typo_in_the_grid_stops_the_sweep_before_any_run(kedro_project: Path):
    write_grid(kedro_project, "  boston.train.lr: [0.1]\n  boston.trian.epochs: [1, 100000]\n")
    result = CliRunner().invoke(sweep, [])
    assert result.exit_code == 2, result.output
    assert "unknown parameter 'boston.trian.epochs' (sweep grid)" in result.output
    assert "did you mean 'boston.train.epochs'?" in result.output
    assert sweep_runs(kedro_project) == []


def test_a_grid_above_the_threshold_needs_yes_and_a_huge_one_is_refused(kedro_project: Path):
    lrs = ", ".join(str(0.01 * step) for step in range(1, 9))
    write_grid(kedro_project, f"  boston.train.lr: [{lrs}]\n  boston.split.seed: [{lrs}]\n")
    result = CliRunner().invoke(sweep, ["--workers", "2"])
    assert result.exit_code == 2, result.output
    # 8 × 8 here × the 2 × 2 of conf/base's grid
    assert "Not started: 256 runs ≈ 0.5 h with 2 worker(s)" in result.output
    assert "pass --yes to start it" in result.output

    seeds = ", ".join(str(seed) for seed in range(101))
    steps = ", ".join(str(step) for step in range(1, 101))
    write_grid(kedro_project, f"  boston.split.seed: [{seeds}]\n  boston.train.epochs: [{steps}]\n")
    result = CliRunner().invoke(sweep, ["--yes"])
    assert result.exit_code == 2, result.output
    assert "80800 runs ≈ 336.7 h" in result.output
    assert "the limit is 10000 runs" in result.output
    assert sweep_runs(kedro_project) == []


def test_the_champion_metric_cannot_be_swept(kedro_project: Path):
    write_grid(kedro_project, "  boston.registry.champion_metric: [cv_rmse, test_rmse]\n")
    result = CliRunner().invoke(sweep, [])
    assert result.exit_code == 2, result.output
    assert "['boston.registry.champion_metric'] change what the runs are compared on" in (
        result.output
    )
    assert sweep_runs(kedro_project) == []


@pytest.mark.slow
def test_a_parallel_sweep_records_every_configuration_and_fails_if_any_failed(
    kedro_project: Path,
):
    write_grid(
        kedro_project,
        "  boston.train.optimizer: [sgd, adam]\n"
        "  boston.train.lr: [0.05, 50.0]\n"
        "  boston.train.batch_size: [null]\n"
        "  boston.train.epochs: [40]\n",
    )
    result = CliRunner().invoke(sweep, ["--workers", "2"], catch_exceptions=False)
    output = result.output
    assert result.exit_code == 1, output
    assert "4 runs of 'boston', 2 at a time" in output
    assert "3 of 4 runs succeeded" in output or "2 of 4 runs succeeded" in output, output
    failed_block = output.split("configuration(s) failed:", 1)[1]
    # SGD at lr 50 diverges: the listing names it, why in full, and how to reproduce it
    assert "optimizer=sgd lr=50.0 batch_size=None epochs=40" in failed_block
    assert "diverged" in failed_block
    assert "reproduce: kedro run --pipeline=boston --params" in failed_block

    runs = sweep_runs(kedro_project)
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
    assert good.data.tags["reproduce"] == (
        'kedro run --pipeline=boston --params \'boston.train.optimizer="adam",'
        "boston.train.lr=0.05,boston.train.batch_size=null,boston.train.epochs=40'"
    )
    assert "test_mse" in good.data.metrics
    client = mlflow_client(kedro_project)
    assert len(client.get_metric_history(good.info.run_id, "train_loss")) == 40
    diverged = by_name["boston optimizer=sgd lr=50.0 batch_size=None epochs=40"]
    assert diverged.info.status == "FAILED"
    assert "test_mse" not in diverged.data.metrics
