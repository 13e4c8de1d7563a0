"""The landscape pipeline through a real Kedro session, read back from MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import mlflow_client, run_pipeline


def test_defaults_find_w_2_both_ways(kedro_project: Path) -> None:
    run_pipeline(kedro_project, "landscape")

    client = mlflow_client(kedro_project)
    experiment = client.get_experiment_by_name("linear_nets.landscape")
    (run,) = client.search_runs([experiment.experiment_id])
    metrics = run.data.metrics
    assert metrics["grid_best_w"] == pytest.approx(2.0)
    assert metrics["gd_final_w"] == pytest.approx(2.0, abs=1e-3)
    assert run.data.params["landscape.descent.lr"] == "0.01"

    w_history = client.get_metric_history(run.info.run_id, "gd_w")
    assert sorted(point.step for point in w_history) == list(range(1, 101))
    loss_history = client.get_metric_history(run.info.run_id, "gd_loss")
    loss_history.sort(key=lambda point: point.step)
    assert loss_history[-1].value < loss_history[0].value
    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"landscape_mse.png", "landscape_loss_curve.png"} <= artifacts
