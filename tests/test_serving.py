"""The boston model as a deployable artifact: predictor, pyfunc, `mlflow models serve`."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from linear_nets.engine.models import LinearRegressionScratch, model_from_state_dict
from linear_nets.pipelines.boston.nodes import FEATURES
from linear_nets.serving import FeatureError, RegressionPredictor, check_features
from tests.support import LOOPBACK, free_port, mlflow_client, process_group, wait_for_http

MODEL_URI = "models:/boston_linear_regression/latest"


def _raw_test_rows(project: Path) -> pd.DataFrame:
    return pd.read_parquet(project / "data/03_primary/boston_test.parquet")


def _run_metrics(project: Path) -> dict[str, float]:
    return json.loads((project / "data/08_reporting/boston_metrics.json").read_text())


class TestCheckFeatures:
    def test_missing_column_is_named(self):
        rows = pd.DataFrame({"a": [1.0], "c": [2.0]})
        with pytest.raises(FeatureError, match=r"missing feature column\(s\) \['b'\]"):
            check_features(rows, ["a", "b", "c"])

    def test_non_numeric_value_names_column_and_row(self):
        rows = pd.DataFrame({"a": [1.0, 2.0], "b": ["3", "three"]})
        with pytest.raises(FeatureError, match=r"column 'b' must hold numbers; row 1 has 'three'"):
            check_features(rows, ["a", "b"])

    def test_empty_value_is_rejected(self):
        rows = pd.DataFrame({"a": [1.0, None]})
        with pytest.raises(FeatureError, match=r"column 'a' must hold numbers; row 1"):
            check_features(rows, ["a"])

    def test_numeric_strings_are_converted(self):
        checked = check_features(pd.DataFrame({"a": ["1.5"], "b": [2]}), ["a", "b"])
        assert checked.dtypes.tolist() == [np.float64, np.float64]


def test_predictor_scales_raw_rows_then_applies_the_model():
    scratch = LinearRegressionScratch(2)
    with torch.no_grad():
        scratch.w.copy_(torch.tensor([[2.0], [-1.0]]))
        scratch.b.fill_(0.5)
    scaler = {"columns": ["x1", "x2"], "mean": [10.0, 0.0], "std": [2.0, 4.0]}
    rows = pd.DataFrame({"x1": [10.0, 14.0], "x2": [4.0, -8.0], "id": ["a", "b"]})
    predicted = RegressionPredictor(scaler, scratch.state_dict()).predict(rows)
    # standardized: (0, 1) and (2, -2) → 2*0 - 1 + 0.5 and 2*2 + 2 + 0.5
    np.testing.assert_allclose(predicted, [-0.5, 6.5])


def test_model_from_state_dict_rejects_foreign_keys():
    with pytest.raises(ValueError, match="not a linear regression state_dict"):
        model_from_state_dict({"weight": torch.zeros(1, 3)})


def test_registered_pyfunc_reproduces_the_run_test_rmse(trained_boston: Path):
    mlflow.set_tracking_uri(f"sqlite:///{trained_boston / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(MODEL_URI)
    test = _raw_test_rows(trained_boston)
    predicted = model.predict(test[list(FEATURES)])
    rmse = float(np.sqrt(np.mean((predicted - test["MEDV"].to_numpy()) ** 2)))
    assert rmse == pytest.approx(_run_metrics(trained_boston)["test_rmse"], rel=1e-6)
    assert model.metadata.get_input_schema().input_names() == list(FEATURES)
    assert model.metadata.saved_input_example_info is not None

    versions = mlflow_client(trained_boston).search_model_versions(
        "name='boston_linear_regression'"
    )
    assert len(versions) == 1

    with pytest.raises(mlflow.exceptions.MlflowException, match=r"missing inputs \['RM'\]"):
        model.predict(test[list(FEATURES)].drop(columns="RM"))
    with pytest.raises(mlflow.exceptions.MlflowException, match="column TAX"):
        model.predict(test[list(FEATURES)].assign(TAX="high"))


def test_served_model_answers_invocations(trained_boston: Path):
    port = free_port()
    bin_dir = Path(sys.executable).parent  # the server execs uvicorn from the environment
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{trained_boston / 'mlflow.db'}",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [
        str(bin_dir / "mlflow"), "models", "serve", "-m", MODEL_URI,
        "--env-manager", "local", "--host", LOOPBACK, "--port", str(port),
    ]  # fmt: skip
    log = trained_boston / "serve.log"
    with process_group(command, cwd=trained_boston, log=log, env=env) as server:
        base = f"http://{LOOPBACK}:{port}"
        wait_for_http(f"{base}/ping", timeout_s=90, process=server, log=log)
        test = _raw_test_rows(trained_boston)
        body = {"dataframe_split": test[list(FEATURES)].to_dict(orient="split", index=False)}
        request = urllib.request.Request(
            f"{base}/invocations",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            served = np.array(json.loads(response.read())["predictions"], dtype=float)

    mlflow.set_tracking_uri(f"sqlite:///{trained_boston / 'mlflow.db'}")
    local = mlflow.pyfunc.load_model(MODEL_URI).predict(test[list(FEATURES)])
    np.testing.assert_allclose(served, local, rtol=1e-9)
