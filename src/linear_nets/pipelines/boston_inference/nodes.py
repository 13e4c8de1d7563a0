"""Nodes of the boston_inference pipeline."""

from __future__ import annotations

import pandas as pd
import torch

from linear_nets.serving import RegressionPredictor

PREDICTION = "MEDV_predicted"


def predict_prices(
    new_rows: pd.DataFrame, scaler: dict[str, list], state_dict: dict[str, torch.Tensor]
) -> pd.DataFrame:
    """Predict MEDV for raw feature rows with the scaler and model the boston pipeline saved.

    Args:
        new_rows: the 13 raw feature columns (CRIM … LSTAT); other columns are carried along.
        scaler: the standardisation fitted on the training rows.
        state_dict: the trained linear model.

    Returns:
        ``new_rows`` with a ``MEDV_predicted`` column (in $1000s).
    """
    predictions = new_rows.copy()
    predictions[PREDICTION] = RegressionPredictor(scaler, state_dict).predict(new_rows)
    return predictions
