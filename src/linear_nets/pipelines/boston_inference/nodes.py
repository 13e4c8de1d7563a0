"""Nodes of the boston_inference pipeline."""

from __future__ import annotations

from typing import Any

import pandas as pd

PREDICTION = "MEDV_predicted"


def predict_prices(new_rows: pd.DataFrame, model: Any) -> pd.DataFrame:
    """Predict MEDV for raw feature rows with the registered ``@champion`` model.

    Args:
        new_rows: the 13 raw feature columns (CRIM … LSTAT), int or float; other columns are
            carried along to the output untouched.
        model: the ``@champion`` pyfunc model, the one ``mlflow models serve`` answers with.

    Returns:
        ``new_rows`` with a ``MEDV_predicted`` column (in $1000s).
    """
    predictions = new_rows.copy()
    predictions[PREDICTION] = model.predict(new_rows)
    return predictions
