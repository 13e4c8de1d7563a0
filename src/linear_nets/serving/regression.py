"""A linear regression on raw feature rows: strict checks, the scaler, then ``X w + b``.

The arithmetic is float64 numpy on the float32 weights, so a value near float32's limit
cannot overflow on the way to the prediction.
"""

from __future__ import annotations

from typing import Any

from linear_nets.serving.features import FeatureError, check_features


class RegressionPredictor:
    """A fitted scaler and the model's coefficients, applied to raw feature rows.

    Args:
        scaler: ``{"columns": [...], "mean": [...], "std": [...]}``.
        coefficients: ``{"weight": (d,) tensor, "bias": scalar tensor}``.
    """

    def __init__(self, scaler: dict[str, list], coefficients: dict[str, Any]) -> None:
        import numpy as np

        self.columns: list[str] = list(scaler["columns"])
        self.mean = np.asarray(scaler["mean"], dtype="float64")
        self.std = np.asarray(scaler["std"], dtype="float64")
        self.weight = np.asarray(coefficients["weight"].double().reshape(-1), dtype="float64")
        self.bias = float(coefficients["bias"])
        if len(self.weight) != len(self.columns):
            raise ValueError(f"{len(self.weight)} weights for {len(self.columns)} scaler columns")

    def predict(self, rows: Any) -> Any:
        """Predictions (float64 array) for ``rows`` of raw features; other columns are ignored.

        Raises:
            FeatureError: naming the column and row of a missing, non-numeric, empty,
                infinite or float32-overflowing value.
        """
        import numpy as np

        features = (check_features(rows, self.columns) - self.mean) / self.std
        predicted = features @ self.weight + self.bias
        if not np.isfinite(predicted).all():
            row = int((~np.isfinite(predicted)).argmax())
            raise FeatureError(f"row {row}: the prediction is not finite ({predicted[row]})")
        return predicted
