"""The synthetic_large pipeline through a real Kedro session: partitions on disk, streamed fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import mlflow_client, run_pipeline

SMALL = {
    "data": {"n": 40_000, "d": 4, "partition_rows": 10_000},
    "train": {"epochs": 3, "batch_size": 512, "shuffle_buffer": 15_000},
}


@pytest.mark.slow
def test_a_small_run_streams_to_the_optimum(kedro_project: Path) -> None:
    run_pipeline(kedro_project, "synthetic_large", {"synthetic_large": SMALL})

    parts = sorted((kedro_project / "data/01_raw/synthetic_large").glob("*.parquet"))
    assert [path.name for path in parts] == [f"part-{i:06d}.parquet" for i in range(4)]
    (solved_file,) = (kedro_project / "data/05_model_input").glob(
        "synthetic_large_least_squares.json/*/synthetic_large_least_squares.json"
    )  # a version of the run's own, as every file a run writes but the partitions
    solved = json.loads(solved_file.read_text())
    assert solved["rows"] == 40_000 and len(solved["R"]) == 6  # (d + 2)²: [1 X y]

    client = mlflow_client(kedro_project)
    experiment = client.get_experiment_by_name("linear_nets.synthetic_large")
    (run,) = client.search_runs([experiment.experiment_id])
    metrics = run.data.metrics
    assert 0 <= metrics["mse_gap_pct"] <= 0.1
    assert metrics["optimum_mse"] == pytest.approx(0.25, rel=0.05)  # noise 0.5
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [point.step for point in history] == [1, 2, 3]
    assert run.data.params["synthetic_large.train.distributed.enabled"] == "False"


@pytest.mark.slow
def test_a_smaller_n_replaces_the_partitions_of_a_larger_one(kedro_project: Path) -> None:
    tiny = {"data": {"n": 8_000, "d": 2, "partition_rows": 2_000}, "train": {"epochs": 1}}
    run_pipeline(kedro_project, "synthetic_large", {"synthetic_large": tiny})
    smaller = {**tiny, "data": {**tiny["data"], "n": 4_000}}
    run_pipeline(kedro_project, "synthetic_large", {"synthetic_large": smaller})
    assert len(list((kedro_project / "data/01_raw/synthetic_large").glob("*.parquet"))) == 2
