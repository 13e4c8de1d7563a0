"""A softmax classifier on raw 0–255 pixels: strict checks, the pixel transform, then argmax.

The transform is the training one, stored as JSON: pixels / 255, then ``** gamma``, then
optionally standardised (one mean and std, or one per pixel). Arithmetic is float64 numpy.
"""

from __future__ import annotations

from typing import Any

from linear_nets.serving.features import FeatureError, check_features, check_model_arrays

PIXEL_MAX = 255.0


def pixel_columns(n_pixels: int) -> list[str]:
    """The input column names: ``pixel0`` … ``pixel<n-1>``, row-major."""
    return [f"pixel{index}" for index in range(n_pixels)]


def pixel_transform(
    statistics: dict[str, Any], gamma: float, n_pixels: int, labels: list[str]
) -> dict[str, Any]:
    """The JSON-able transform from raw pixels to features, as the model stores it.

    Args:
        statistics: ``{"mean": tensor, "std": tensor}`` (one value, or one per pixel) fitted
            on the training images, or ``{}`` without standardisation.
        gamma: the exponent applied to pixels / 255.
        n_pixels: pixels per image.
        labels: the class names, by label index.

    Returns:
        ``{"columns", "gamma", "mean", "std", "labels"}``; ``mean``/``std`` are null without
        standardisation, numbers for one value and flat lists for one per pixel.
    """

    def plain(value: Any) -> Any:
        """A tensor as JSON: one number, or a flat list (one per pixel)."""
        if value is None:
            return None
        return value.double().reshape(-1).tolist() if value.dim() else float(value)

    return {
        "columns": pixel_columns(n_pixels),
        "gamma": gamma,
        "mean": plain(statistics.get("mean")),
        "std": plain(statistics.get("std")),
        "labels": list(labels),
    }


class PixelClassifier:
    """The transform and the softmax regression's coefficients, applied to raw pixel rows.

    Args:
        transform: the output of :func:`pixel_transform`.
        coefficients: ``{"weight": (d, k) tensor, "bias": (k,) tensor}``.
    """

    def __init__(self, transform: dict[str, Any], coefficients: dict[str, Any]) -> None:
        import numpy as np

        self.columns: list[str] = list(transform["columns"])
        self.gamma = float(transform["gamma"])
        self.mean = None if transform["mean"] is None else np.asarray(transform["mean"], "float64")
        self.std = None if transform["std"] is None else np.asarray(transform["std"], "float64")
        self.weight = coefficients["weight"].double().numpy()
        self.bias = coefficients["bias"].double().numpy()
        statistics = {"weights": self.weight, "mean": self.mean, "std": self.std}
        check_model_arrays(
            len(self.columns),
            {what: array for what, array in statistics.items() if array is not None},
            bias=self.bias,
        )
        if self.std is not None and not (self.std > 0).all():
            raise ValueError("the model's pixel std holds a value that is not positive")

    def features(self, rows: Any) -> Any:
        """The model's features for raw pixel rows (checked: numbers in [0, 255])."""
        import numpy as np

        pixels = check_features(rows, self.columns)
        outside = (pixels < 0) | (pixels > PIXEL_MAX)
        if outside.any():
            row, column = (int(i) for i in np.argwhere(outside)[0])
            raise FeatureError(
                f"column {self.columns[column]!r}, row {row + 1}: value {pixels[row, column]:g} "
                f"is not a pixel value in [0, {PIXEL_MAX:g}]"
            )
        features = (pixels / PIXEL_MAX) ** self.gamma
        if self.mean is not None:
            features = (features - self.mean) / self.std
        return features

    def predict(self, rows: Any) -> Any:
        """The predicted label index (int64) of each row of raw pixels."""
        return (self.features(rows) @ self.weight + self.bias).argmax(axis=1)
