"""Strict checks of the raw feature rows a served model is given.

The models declare no input types to MLflow (MLflow's check refuses the int64 columns
``pd.read_csv`` makes of RAD, TAX and CHAS where a signature says double, and checks untyped
columns one value at a time), so the model checks its rows itself, vectorised: one float64
conversion of the needed columns and one finiteness test of the block. Every value must be an
int or float (not a bool, not text, not a list), finite and within float32's range. Only when
that test fails does the check look at columns one by one, to name the first bad one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

FLOAT32_MAX = 3.4028234663852886e38
NUMBER_KINDS = "iuf"
"""numpy dtype kinds taken as numbers: signed and unsigned ints, floats (not bool, complex)."""


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
        FeatureError: a column is missing or given twice, or a value is not a number (text,
            a bool, a list), is empty (NaN/None), infinite, or beyond float32's range. Rows
            are counted from 1, as a CSV's data lines are.
    """
    import numpy as np
    import pandas as pd

    rows = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    columns = list(columns)
    if not rows.columns.is_unique:  # a needed column twice: which one is meant?
        twice = [column for column in rows.columns[rows.columns.duplicated()] if column in columns]
        if twice:
            raise FeatureError(f"column(s) {list(dict.fromkeys(twice))} given more than once")
    missing = [column for column in columns if column not in rows.columns]
    if missing:
        raise FeatureError(f"missing feature column(s) {missing}; the model needs {columns}")
    dtypes = rows.dtypes
    if all(dtypes[column].kind in NUMBER_KINDS for column in columns):
        if list(rows.columns) == columns:
            block = rows.to_numpy(dtype="float64", na_value=np.nan)
        else:
            block = rows[columns].to_numpy(dtype="float64", na_value=np.nan)
        # NaN fails both comparisons, ±inf and float32 overflow one of them
        if len(block) == 0 or (block.max() <= FLOAT32_MAX and block.min() >= -FLOAT32_MAX):
            return block
    # column by column, to name the first column (and row) that holds a bad value
    checked = np.empty((len(rows), len(columns)), dtype="float64")
    for position, column in enumerate(columns):
        checked[:, position] = _checked_column(rows[column], column)
    return checked


def _checked_column(values: Any, column: str) -> Any:
    """``values`` as float64, or a FeatureError naming its first bad value."""
    import numpy as np

    if values.dtype.kind == "b":
        raise FeatureError(f"column {column!r} must hold numbers, not booleans")
    if values.dtype.kind in NUMBER_KINDS:
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    else:  # object or another dtype: each value must be a Python or numpy int or float
        raw = values.to_numpy(dtype=object)
        numbers = np.empty(len(raw), dtype="float64")
        for row, value in enumerate(raw):
            numbers[row] = _as_float(value, column, row)
    bad = ~(np.abs(numbers) <= FLOAT32_MAX)
    if bad.any():
        row = int(bad.argmax())
        value = numbers[row]
        if np.isnan(value):
            _refuse(column, row, values.iloc[row], "is empty (NaN/None)")
        elif np.isinf(value):
            _refuse(column, row, value, "is not finite")
        _refuse(column, row, value, f"overflows float32 (|x| > {FLOAT32_MAX:.4g})")
    return numbers


def _as_float(value: Any, column: str, row: int) -> float:
    """One value of a column that pandas did not type as numbers: an int or float, or empty."""
    import numbers

    import pandas as pd

    if value is None or value is pd.NA:
        return float("nan")
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        _refuse(column, row, value, "is not a number")
    try:
        return float(value)
    except OverflowError:  # an int beyond float64
        _refuse(column, row, value, f"overflows float32 (|x| > {FLOAT32_MAX:.4g})")


def _refuse(column: str, row: int, value: Any, what: str) -> NoReturn:
    import numpy as np

    value = value.item() if isinstance(value, np.generic) else value  # np.float64(x) → x
    shown = repr(value)
    if len(shown) > 40:
        shown = f"{shown[:37]}..."
    if isinstance(value, str):
        try:
            float(value)
            what = "is text, not a number (send numbers unquoted)"
        except ValueError:
            pass
    raise FeatureError(f"column {column!r}, row {row + 1}: value {shown} {what}")


def check_model_arrays(n_columns: int, arrays: dict[str, Any], bias: Any = 0.0) -> None:
    """Refuse a model whose arrays do not fit its ``n_columns`` input columns or are not all
    finite, when it loads, not when it first predicts (where a 400 would blame the client).

    Args:
        n_columns: the number of input columns the model's config names.
        arrays: ``{what: array}``; each has one entry per column (its first axis), or is a
            single value (a global mean or std).
        bias: the intercept(s), which must be finite.

    Raises:
        ValueError: naming the array that has the wrong length or a non-finite value.
    """
    import numpy as np

    if n_columns == 0:
        raise ValueError("the model's config names no input columns")
    for what, given in arrays.items():
        values = np.asarray(given, dtype="float64")
        if values.ndim and values.shape[0] != n_columns:
            raise ValueError(
                f"the model's {what} has {values.shape[0]} entries for {n_columns} input columns"
            )
        if not np.isfinite(values).all():
            raise ValueError(f"the model's {what} holds a value that is not finite")
    if not np.isfinite(np.asarray(bias, dtype="float64")).all():
        raise ValueError("the model's bias is not finite")
