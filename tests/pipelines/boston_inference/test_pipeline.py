"""boston_inference runs right after boston, on the shipped sample of new rows."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from linear_nets.pipelines.boston.nodes import FEATURES
from linear_nets.pipelines.boston_inference.nodes import PREDICTION
from tests.support import run_pipeline


def test_predicts_new_rows_with_the_latest_model(trained_boston: Path):
    run_pipeline(trained_boston, "boston_inference")

    new_rows = pd.read_csv(trained_boston / "data/01_raw/boston_new_rows.csv")
    predictions = pd.read_csv(trained_boston / "data/07_model_output/boston_new_predictions.csv")
    assert len(predictions) == len(new_rows) == 8
    pd.testing.assert_frame_equal(predictions[list(FEATURES)], new_rows[list(FEATURES)])

    mlflow.set_tracking_uri(f"sqlite:///{trained_boston / 'mlflow.db'}")
    pyfunc = mlflow.pyfunc.load_model("models:/boston_linear_regression/latest")
    np.testing.assert_allclose(predictions[PREDICTION], pyfunc.predict(new_rows), rtol=1e-6)
    # first sample row is the first StatLib record (MEDV 24.0): a sane house price
    assert 15 < predictions[PREDICTION].iloc[0] < 40
