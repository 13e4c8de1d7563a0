"""The tabular pipeline end to end on files a user could have, through a Kedro session."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.validation.exceptions import ParameterValidationError

from linear_nets.pipelines.tabular.nodes import TableError
from tests.support import latest_output, mlflow_client, run_pipeline

TRUE = {"area": 1.8, "rooms": 12.0, "age": -0.7}
TRUE_INTERCEPT = 35.0


def _houses(n: int = 300, seed: int = 1) -> pd.DataFrame:
    """A user-like table: a text column, integer and float features, y linear in them."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "town": rng.choice(["Leeds", "York", "Hull"], n),
            "area": rng.integers(40, 200, n),
            "rooms": rng.integers(1, 8, n),
            "age": rng.uniform(0, 90, n).round(1),
        }
    )
    noise = rng.normal(0, 0.5, n)
    table["value"] = sum(w * table[name] for name, w in TRUE.items()) + TRUE_INTERCEPT + noise
    return table


def _runs(project: Path):
    client = mlflow_client(project)
    experiment = client.get_experiment_by_name("linear_nets.tabular")
    return client, client.search_runs([experiment.experiment_id])


def _params(path: Path, **extra) -> dict:
    return {"tabular": {"source": {"filepath": str(path)}, "target": "value", **extra}}


@pytest.mark.slow
def test_recovers_known_coefficients_from_a_csv(kedro_project: Path):
    path = kedro_project / "houses.csv"
    _houses().to_csv(path, index=False)

    run_pipeline(kedro_project, "tabular", params=_params(path))

    coefficients = pd.read_csv(
        latest_output(kedro_project, "data/08_reporting/tabular_coefficients.csv")
    ).set_index("feature")
    assert list(coefficients.index) == ["area", "rooms", "age", "intercept"]  # town left out
    for name, true in [*TRUE.items(), ("intercept", TRUE_INTERCEPT)]:
        row = coefficients.loc[name]
        assert row["model"] == pytest.approx(true, abs=max(0.02 * abs(true), 0.2)), name
        assert row["ci_low"] < true < row["ci_high"], name
        assert row["model"] == pytest.approx(row["ols"], rel=1e-3, abs=1e-3), name

    metrics = json.loads(
        latest_output(kedro_project, "data/08_reporting/tabular_metrics.json").read_text()
    )
    assert metrics["test_r2"] > 0.999
    assert metrics["train_mse"] <= metrics["ols_train_mse"] * 1.001
    for plot in ("loss_curve", "predictions", "residuals", "coefficients"):
        assert latest_output(kedro_project, f"data/08_reporting/tabular_{plot}.png").is_file()

    client, runs = _runs(kedro_project)
    [run] = runs
    assert run.info.status == "FINISHED"
    assert run.data.params["tabular.source.filepath"] == str(path)
    assert run.data.params["tabular.train.lr"] == "0.1"
    assert run.data.metrics["test_r2"] == pytest.approx(metrics["test_r2"])
    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"tabular_coefficients.csv", "tabular_coefficients.png"} <= artifacts
    [version] = client.search_model_versions("name='tabular_linear_regression'")
    assert version.run_id == run.info.run_id


@pytest.mark.slow
def test_parquet_with_chosen_features_under_a_name_of_ones_own(kedro_project: Path):
    path = kedro_project / "houses.parquet"
    _houses(n=120).to_parquet(path)
    params = _params(
        path,
        features=["rooms", "area"],
        registered_model_name="my_houses",
        train={"epochs": 200},
    )

    run_pipeline(kedro_project, "tabular", params=params)

    coefficients = pd.read_csv(
        latest_output(kedro_project, "data/08_reporting/tabular_coefficients.csv")
    )
    assert coefficients["feature"].tolist() == ["rooms", "area", "intercept"]
    client, _ = _runs(kedro_project)
    assert len(client.search_model_versions("name='my_houses'")) == 1
    assert client.search_model_versions("name='tabular_linear_regression'") == []


@pytest.mark.slow
def test_a_bad_file_fails_the_run_naming_file_column_and_line(kedro_project: Path):
    table = _houses(n=30)
    table["area"] = table["area"].astype(str)
    table.loc[6, "area"] = "big"
    path = kedro_project / "houses.csv"
    table.to_csv(path, index=False)

    with pytest.raises(TableError, match=r"houses\.csv: column 'area', line 8: holds 'big'"):
        run_pipeline(kedro_project, "tabular", params=_params(path))

    client, runs = _runs(kedro_project)
    assert [run.info.status for run in runs] == ["FAILED"]
    assert runs[0].data.metrics == {}
    assert client.search_model_versions("name='tabular_linear_regression'") == []


def test_a_classification_loss_is_refused_before_any_work(kedro_project: Path):
    params = _params(kedro_project / "houses.csv", train={"loss": "cross_entropy"})
    with pytest.raises(ParameterValidationError, match=r"tabular\.train[\s\S]*not a regression"):
        run_pipeline(kedro_project, "tabular", params=params)
    assert not any((kedro_project / "data/02_intermediate").iterdir())


@pytest.mark.slow
def test_an_excel_sheet_trains_and_csv_options_reach_the_dataset(kedro_project: Path):
    from kedro.framework.session import KedroSession
    from openpyxl import Workbook

    table = _houses(n=60).drop(columns="town")
    book = Workbook()
    book.active.title = "notes"
    sheet = book.create_sheet("houses")
    sheet.append(list(table.columns))
    for row in table.itertuples(index=False):
        sheet.append([float(value) for value in row])
    path = kedro_project / "houses.xlsx"
    book.save(path)

    params = _params(path)
    params["tabular"]["source"]["sheet"] = "houses"
    run_pipeline(kedro_project, "tabular", params=params)
    coefficients = pd.read_csv(
        latest_output(kedro_project, "data/08_reporting/tabular_coefficients.csv")
    ).set_index("feature")
    assert coefficients.loc["area", "ols"] == pytest.approx(TRUE["area"], abs=0.05)

    # the catalog reads sep and decimal from --params, as it reads the file path
    params = {"tabular": {"source": {"sep": "semicolon", "decimal": "comma"}}}
    with KedroSession.create(project_path=kedro_project, runtime_params=params) as session:
        described = session.load_context().catalog.get("tabular.source")._describe()
    assert (described["sep"], described["decimal"], described["sheet"]) == (";", ",", 0)


@pytest.mark.slow
def test_defaults_register_an_exact_fit_of_a_collinear_real_table(kedro_project: Path):
    """Longley's 16 rows, 6 collinear predictors (condition number 4.9e9 before
    standardization): the defaults (lstsq) register a model; ``test_size=0`` gives NIST's
    certified table to 7 digits, in the ols column and in the model's (what is served)."""
    from tests.engine.certified import (
        LONGLEY_CERTIFIED,
        LONGLEY_FEATURES,
        LONGLEY_TARGET,
        longley,
        significant_digits,
    )

    path = kedro_project / "longley.csv"
    longley().to_csv(path, index=False, float_format="%.17g")
    params = {"tabular": {"source": {"filepath": str(path)}, "target": LONGLEY_TARGET}}
    run_pipeline(kedro_project, "tabular", params=params)
    client, runs = _runs(kedro_project)
    [run] = runs
    assert "registry.not_registered" not in run.data.tags
    [version] = client.search_model_versions("name='tabular_linear_regression'")
    assert version.tags["champion_metric"] == "cv_rmse"
    assert run.data.metrics["train_mse"] == pytest.approx(run.data.metrics["ols_train_mse"])

    full = {"tabular": {**params["tabular"], "split": {"test_size": 0}}}
    run_pipeline(kedro_project, "tabular", params=full)
    table = pd.read_csv(
        latest_output(kedro_project, "data/08_reporting/tabular_coefficients.csv")
    ).set_index("feature")
    names = [*LONGLEY_FEATURES, "intercept"]
    certified = pd.DataFrame(LONGLEY_CERTIFIED, index=["estimate", "se"]).T.loc[names]
    assert significant_digits(table.loc[names, "ols"], certified["estimate"]) >= 7
    assert significant_digits(table.loc[names, "std_error"], certified["se"]) >= 7
    assert significant_digits(table.loc[names, "model"], certified["estimate"]) >= 7
    metrics = json.loads(
        latest_output(kedro_project, "data/08_reporting/tabular_metrics.json").read_text()
    )
    assert "test_rmse" not in metrics and metrics["cv_rmse"] > 0
    # the registered model, as MLflow serves it, predicts with the certified coefficients
    import mlflow

    versions = client.search_model_versions("name='tabular_linear_regression'")
    newest = max(versions, key=lambda v: int(v.version))
    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    served = mlflow.pyfunc.load_model(f"models:/tabular_linear_regression/{newest.version}")
    rows = longley()
    expected = rows[LONGLEY_FEATURES].to_numpy() @ certified["estimate"].to_numpy()[:-1]
    expected += certified.loc["intercept", "estimate"]
    assert significant_digits(served.predict(rows[LONGLEY_FEATURES]), expected) >= 7
