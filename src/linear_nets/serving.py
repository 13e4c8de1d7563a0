"""The trained boston model as something to deploy: raw feature rows in, predictions out.

:class:`RegressionPredictor` applies the persisted scaler and model to rows of raw features;
the ``boston_inference`` pipeline uses it, and :class:`PyfuncRegressionModel` wraps it as an
MLflow pyfunc model, so ``mlflow.pyfunc.load_model`` and ``mlflow models serve`` answer with
exactly the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch

from linear_nets.engine.models import model_from_state_dict
from linear_nets.engine.scaling import apply_scaler


class FeatureError(ValueError):
    """Input rows lack a feature column or hold a value that is not a number."""


def check_features(rows: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Return ``rows[columns]`` as float64, or raise naming the missing or non-numeric column."""
    missing = [column for column in columns if column not in rows.columns]
    if missing:
        raise FeatureError(f"missing feature column(s) {missing}; the model needs {list(columns)}")
    checked = {}
    for column in columns:
        values = pd.to_numeric(rows[column], errors="coerce")
        bad = values.isna()  # not a number, or empty
        if bad.any():
            row = bad.idxmax()
            raise FeatureError(
                f"column {column!r} must hold numbers; row {row} has {rows[column][row]!r}"
            )
        checked[column] = values.astype("float64")
    return pd.DataFrame(checked, index=rows.index)


class RegressionPredictor:
    """A fitted scaler and a linear regression ``state_dict``, applied to raw feature rows."""

    def __init__(self, scaler: dict[str, list], state_dict: dict[str, torch.Tensor]) -> None:
        self.scaler = scaler
        self.columns: list[str] = list(scaler["columns"])
        self.model = model_from_state_dict(state_dict)

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        """Predictions for ``rows``, which hold the raw (unscaled) feature columns."""
        features = apply_scaler(check_features(rows, self.columns), self.scaler)
        X = torch.tensor(features[self.columns].to_numpy(), dtype=torch.float32)
        with torch.no_grad():
            return self.model(X).double().numpy()


class PyfuncRegressionModel(mlflow.pyfunc.PythonModel):
    """The predictor as an MLflow pyfunc model; ``input_example`` is logged with it."""

    def __init__(
        self,
        scaler: dict[str, list],
        state_dict: dict[str, torch.Tensor],
        input_example: pd.DataFrame,
    ) -> None:
        self.scaler = scaler
        self.state_dict = {key: value.detach().cpu() for key, value in state_dict.items()}
        self.input_example = input_example
        self._predictor: RegressionPredictor | None = None

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        if self._predictor is None:
            self._predictor = RegressionPredictor(self.scaler, self.state_dict)
        return self._predictor.predict(pd.DataFrame(model_input))
