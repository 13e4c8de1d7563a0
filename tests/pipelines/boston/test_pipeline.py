"""The boston pipeline end to end, through a Kedro session in a copy of the project."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.framework.project import pipelines
from kedro.validation.exceptions import ParameterValidationError

from linear_nets.engine import TrainingDivergedError
from linear_nets.pipelines.boston.nodes import FEATURES
from tests.support import (
    COEFFICIENT_TABLE_COLUMNS,
    HEADLINE_METRICS,
    latest_output,
    mlflow_client,
    run_pipeline,
)


def _runs(project: Path):
    client = mlflow_client(project)
    experiment = client.get_experiment_by_name("linear_nets.boston")
    return client, client.search_runs(
        [experiment.experiment_id], order_by=["attribute.start_time ASC"]
    )


def test_pipeline_nodes_are_named_in_order():
    from linear_nets.pipelines.boston import create_pipeline

    names = [node.name for node in create_pipeline().nodes]
    assert names == [
        "boston.download_boston_data",
        "boston.parse_statlib_records",
        "boston.split_train_test",
        "boston.cross_validate",
        "boston.standardize_features",
        "boston.train_linear_model",
        "boston.evaluate_model",
        "boston.tabulate_coefficients",
        "boston.package_pyfunc_model",
        "boston.plot_coefficients",
        "boston.plot_report",
    ]
    for node in create_pipeline().nodes:  # a grep from kedro-viz's node name finds the function
        assert node.name == f"boston.{node.func.__name__}"


@pytest.mark.slow
def test_full_run_is_tracked_and_persisted(kedro_project: Path):
    run_pipeline(kedro_project, "boston")

    metrics = json.loads(
        latest_output(kedro_project, "data/08_reporting/boston_metrics.json").read_text()
    )
    assert set(metrics) == HEADLINE_METRICS
    # the figures boston printed before it became an instance of the regression pipeline
    assert metrics["train_mse"] == pytest.approx(22.776318, abs=5e-6)
    assert metrics["ols_train_mse"] == pytest.approx(22.776311, abs=5e-6)
    assert metrics["test_rmse"] == pytest.approx(4.3070, abs=5e-5)
    for path in (
        "data/02_intermediate/boston_table.parquet",
        "data/03_primary/boston_train.parquet",
        "data/03_primary/boston_test.parquet",
        "data/05_model_input/boston_scaler.json",
        "data/05_model_input/boston_train_scaled.parquet",
        "data/05_model_input/boston_test_scaled.parquet",
        "data/07_model_output/boston_test_predictions.csv",
        "data/08_reporting/boston_history.json",
        "data/08_reporting/boston_loss_curve.png",
        "data/08_reporting/boston_predictions.png",
        "data/08_reporting/boston_residuals.png",
        "data/08_reporting/boston_coefficients.png",
        "data/08_reporting/boston_evaluation.json",
    ):
        assert latest_output(kedro_project, path).is_file(), path
    assert len(list((kedro_project / "data/06_models/boston_model.pt").iterdir())) == 1

    coefficients = pd.read_csv(
        latest_output(kedro_project, "data/08_reporting/boston_coefficients.csv")
    )
    assert list(coefficients.columns) == COEFFICIENT_TABLE_COLUMNS
    assert coefficients["feature"].tolist() == [*FEATURES, "intercept"]
    # the trained network, mapped back to original units, sits on least squares
    np.testing.assert_allclose(coefficients["model"], coefficients["ols"], rtol=2e-3, atol=1e-3)
    rm = coefficients.set_index("feature").loc["RM"]
    assert rm["ci_low"] < rm["ols"] < rm["ci_high"]
    assert rm["p_value"] < 1e-10

    client, runs = _runs(kedro_project)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == "boston"
    assert run.info.status == "FINISHED"
    assert set(run.data.metrics) == HEADLINE_METRICS | {"train_loss"}
    assert run.data.metrics["test_rmse"] == pytest.approx(metrics["test_rmse"])
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert sorted(point.step for point in history) == list(range(1, 501))
    assert run.data.params["boston.train.lr"] == "0.1"
    assert run.data.params["boston.split.seed"] == "73"
    assert run.data.tags["device"] == "cpu"
    assert "torch_version" in run.data.tags
    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {
        "boston_loss_curve.png",
        "boston_predictions.png",
        "boston_residuals.png",
        "boston_coefficients.png",
        "boston_coefficients.csv",
    } <= artifacts
    assert client.search_model_versions("name='boston_linear_regression'")


@pytest.mark.slow
def test_test_size_zero_prints_the_published_full_data_table(
    kedro_project: Path, caplog: pytest.LogCaptureFixture
):
    """lm(MEDV ~ ., Boston): the 13 features on all 506 rows, 492 residual df."""
    from linear_nets.engine.inference import ols_inference

    with caplog.at_level(logging.INFO, logger="linear_nets"):
        run_pipeline(kedro_project, "boston", params={"boston": {"split": {"test_size": 0}}})
    printed = caplog.text  # what the terminal shows through Kedro's logging
    assert "Coefficients on 506 rows" in printed and "492 residual df" in printed
    table = pd.read_csv(
        latest_output(kedro_project, "data/08_reporting/boston_coefficients.csv")
    ).set_index("feature")
    published = {
        "intercept": (36.459488, 5.103459),
        "RM": (3.809865, 0.417925),
        "LSTAT": (-0.524758, 0.050715),
    }
    for name, (estimate, std_error) in published.items():
        assert table.loc[name, "ols"] == pytest.approx(estimate, abs=5e-7), name
        assert table.loc[name, "std_error"] == pytest.approx(std_error, abs=5e-7), name
    rows = pd.read_parquet(latest_output(kedro_project, "data/03_primary/boston_train.parquet"))
    assert len(rows) == 506
    inference = ols_inference(rows[list(FEATURES)].to_numpy(), rows["MEDV"].to_numpy(), FEATURES)
    assert (inference.df_resid, round(inference.residual_std_error, 3)) == (492, 4.745)
    assert round(inference.r2, 4) == 0.7406
    metrics = json.loads(
        latest_output(kedro_project, "data/08_reporting/boston_metrics.json").read_text()
    )
    assert not [key for key in metrics if key.startswith("test_")]
    _, runs = _runs(kedro_project)
    assert "registry.not_registered" not in runs[0].data.tags  # the GD seed recipe converges


@pytest.mark.slow
def test_a_diverging_run_fails_without_metrics_and_keeps_the_earlier_model(kedro_project: Path):
    run_pipeline(kedro_project, "boston", params={"boston": {"train": {"epochs": 20}}})
    models = kedro_project / "data/06_models/boston_model.pt"
    scalers = kedro_project / "data/06_models/boston_model_scaler.json"
    versions_before = sorted(models.iterdir())
    assert [v.name for v in scalers.iterdir()] == [v.name for v in versions_before]

    with pytest.raises(TrainingDivergedError, match=r"boston\.train\.lr=3"):
        run_pipeline(kedro_project, "boston", params={"boston": {"train": {"lr": 3.0}}})

    assert sorted(models.iterdir()) == versions_before
    assert [v.name for v in scalers.iterdir()] == [v.name for v in versions_before]
    _, runs = _runs(kedro_project)
    assert [run.info.status for run in runs] == ["FINISHED", "FAILED"]
    assert runs[1].data.metrics == {}


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"split": {"test_size": 1.5}}, "test_size"),
        ({"train": {"lr": -0.1}}, "lr"),
        ({"train": {"epochs": 0}}, "epochs"),
        ({"train": {"optimizer": "rmsprop"}}, "optimizer"),
        ({"train": {"device": "tpu"}}, "device"),
        ({"train": {"learning_rate": 0.1}}, "learning_rate"),
        ({"train": {"loss": "cross_entropy"}}, "not a regression loss"),
    ],
)
def test_bad_parameters_fail_before_any_work(kedro_project: Path, override: dict, field: str):
    with pytest.raises(ParameterValidationError, match=field):
        run_pipeline(kedro_project, "boston", params={"boston": override})
    assert not any((kedro_project / "data/02_intermediate").iterdir())


def test_pipeline_is_registered_as_default():
    from kedro.framework.project import configure_project

    configure_project("linear_nets")
    assert "boston" in pipelines
    assert pipelines["__default__"].nodes == pipelines["boston"].nodes


@pytest.mark.slow
def test_a_run_failing_after_evaluation_logs_no_metrics_and_registers_no_model(
    kedro_project: Path,
):
    # a dangling link where the last plot's version folders go makes the final node fail on
    # save (a plain file there would be kept as the dataset's first version instead)
    (kedro_project / "data/08_reporting/boston_residuals.png").symlink_to(kedro_project / "gone")
    with pytest.raises(Exception, match="boston_residuals"):
        run_pipeline(kedro_project, "boston", params={"boston": {"train": {"epochs": 20}}})

    assert latest_output(kedro_project, "data/08_reporting/boston_metrics.json").is_file()
    client, runs = _runs(kedro_project)
    assert [run.info.status for run in runs] == ["FAILED"]
    assert runs[0].data.metrics == {}
    assert client.search_model_versions("name='boston_linear_regression'") == []
