"""Feature standardisation fitted on training rows and stored as plain JSON-able numbers.

The work goes column by column over float64 arrays, so a table of n rows costs one column of
temporaries, never a second copy of the table: tables of millions of rows are standardised in
the memory they already take.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from linear_nets.frames import float_frame


class Moments(NamedTuple):
    """Per-column mean and population std (ddof 0) and whether the column is constant."""

    mean: np.ndarray
    std: np.ndarray
    constant: np.ndarray


def column_moments(columns: Sequence[np.ndarray]) -> Moments:
    """Mean, population std and constancy of each column (a float64 array, e.g. ``X[:, j]``);
    a constant column (every value equal) gets std 1, so standardising it cannot divide by 0."""
    d = len(columns)
    mean, std, constant = np.empty(d), np.empty(d), np.zeros(d, dtype=bool)
    for j, values in enumerate(columns):
        mean[j] = values.mean()
        std[j] = values.std()
        constant[j] = len(values) > 0 and values.min() == values.max()
    std[constant | (std == 0.0)] = 1.0
    return Moments(mean, std, constant)


def standardize_columns(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(X - mean) / std`` written over ``X``'s first ``len(mean)`` columns, in place."""
    for j in range(len(mean)):
        column = X[:, j]
        column -= mean[j]
        column /= std[j]
    return X


def scaler_from(moments: Moments, columns: Sequence[str]) -> dict[str, list]:
    """The JSON-able scaler of ``columns`` with these moments."""
    return {"columns": list(columns), "mean": moments.mean.tolist(), "std": moments.std.tolist()}


def apply_scaler(table: pd.DataFrame, scaler: dict[str, list]) -> pd.DataFrame:
    """Standardise the scaler's columns of ``table``; other columns pass through unchanged.

    A table of numbers comes back as one float64 block, filled column by column.
    """
    columns = scaler["columns"]
    _check_columns(table, columns, "cannot standardise")
    if not all(pd.api.types.is_numeric_dtype(dtype) for dtype in table.dtypes):
        scaled = table.copy()
        mean = pd.Series(scaler["mean"], index=columns)
        std = pd.Series(scaler["std"], index=columns)
        scaled[columns] = (table[columns].astype("float64") - mean) / std
        return scaled
    position = {name: i for i, name in enumerate(columns)}
    names = [str(name) for name in table.columns]

    def column(j: int) -> np.ndarray:
        values = table.iloc[:, j].to_numpy("float64")
        i = position.get(names[j])
        return values if i is None else (values - scaler["mean"][i]) / scaler["std"][i]

    return float_frame(names, len(table), column, index=table.index)


def _check_columns(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"{what}: columns {missing} are missing")
