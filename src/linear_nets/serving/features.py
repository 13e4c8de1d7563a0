"""Strict checks of the raw feature rows a served model is given.

MLflow's own schema check would refuse an int64 column (``pd.read_csv`` reads RAD, TAX and
CHAS as int64) where the signature says double, so the models declare their columns loosely
and check here instead: every value must be a finite number that fits a float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FLOAT32_MAX = 3.4028234663852886e38


class FeatureError(ValueError):
    """Input rows lack a feature column or hold a value the model cannot take."""


def check_features(rows: Any, columns: Sequence[str]) -> Any:
    """Return ``rows[columns]`` as a float64 array, or raise naming the column and row.

    Args:
        rows: a DataFrame (or anything ``pandas.DataFrame`` accepts) of raw features; other
            columns are ignored.
        columns: the feature columns the model needs, in its order.

    Returns:
        A ``(len(rows), len(columns))`` float64 numpy array.

    Raises:
        FeatureError: a column is missing, or a value is not a number, is empty (NaN/None),
            infinite, or beyond float32's range.
    """
    import numpy as np
    import pandas as pd

    rows = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    missing = [column for column in columns if column not in rows.columns]
    if missing:
        raise FeatureError(f"missing feature column(s) {missing}; the model needs {list(columns)}")
    frame = rows[list(columns)]
    if all(_plain_numbers(frame[column]) for column in columns):
        # one conversion and one check for the whole block (a Fashion-MNIST row has 784 columns)
        checked = frame.to_numpy(dtype="float64", na_value=np.nan)
        if not (~np.isfinite(checked) | (np.abs(checked) > FLOAT32_MAX)).any():
            return checked
    # column by column, to name the first column (and row) that holds a bad value
    checked = np.empty((len(rows), len(columns)), dtype="float64")
    for position, column in enumerate(columns):
        raw = rows[column]
        if pd.api.types.is_bool_dtype(raw):
            raise FeatureError(f"column {column!r} must hold numbers, not booleans")
        values = pd.to_numeric(raw, errors="coerce").astype("float64").to_numpy()
        bad = ~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX)
        if bad.any():
            row = int(bad.argmax())
            value = raw.iloc[row]
            value = value.item() if hasattr(value, "item") else value  # np.float64(x) → x
            if pd.isna(value):
                what = "is empty (NaN/None)"
            elif np.isnan(values[row]):
                what = "is not a number"
            elif np.isinf(values[row]):
                what = "is not finite"
            else:
                what = f"overflows float32 (|x| > {FLOAT32_MAX:.4g})"
            label = rows.index[row]
            raise FeatureError(f"column {column!r}, row {label!r}: value {value!r} {what}")
        checked[:, position] = values
    return checked


def _plain_numbers(column: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
