"""A linear regression on raw feature rows: strict checks, the scaler, then ``X w + b``.

The arithmetic is float64 numpy on the float32 weights, so a value near float32's limit
cannot overflow on the way to the prediction; the scaler is folded into the weights when the
model loads, so predicting is one product over the rows.
"""

from __future__ import annotations

from typing import Any

from linear_nets.serving.features import FeatureError, check_features, check_model_arrays


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
        check_model_arrays(
            len(self.columns),
            {"scaler mean": self.mean, "scaler std": self.std, "weights": self.weight},
            bias=self.bias,
        )
        if not (self.std > 0).all():
            raise ValueError("the model's scaler std holds a value that is not positive")
        # ((x - mean) / std) @ w + b, folded: x @ (w / std) + (b - mean @ (w / std)); one pass
        # over the rows instead of three (the scaling costs ten times the product)
        self.raw_weight = self.weight / self.std
        self.raw_bias = self.bias - float(self.mean @ self.raw_weight)

    def predict(self, rows: Any) -> Any:
        """Predictions (float64 array) for ``rows`` of raw features; other columns are ignored.

        Raises:
            FeatureError: naming the column and row of a missing, non-numeric, empty,
                infinite or float32-overflowing value.
        """
        import numpy as np

        # einsum, not `@`: one thread, so a busy machine's other threads cannot stall it
        features = check_features(rows, self.columns)
        predicted = np.einsum("ij,j->i", features, self.raw_weight) + self.raw_bias
        if not np.isfinite(predicted).all():
            row = int((~np.isfinite(predicted)).argmax())
            raise FeatureError(f"row {row + 1}: the prediction is not finite ({predicted[row]})")
        return predicted
