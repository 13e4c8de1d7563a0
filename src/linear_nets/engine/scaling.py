"""Feature standardisation fitted on training rows and stored as plain JSON-able numbers."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def fit_scaler(table: pd.DataFrame, columns: Sequence[str]) -> dict[str, list]:
    """Mean and population std of ``columns`` in ``table``; a constant column gets std 1.

    Returns:
        ``{"columns": [...], "mean": [...], "std": [...]}``, ready to save as JSON.
    """
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"cannot fit a scaler: columns {missing} are missing")
    values = table[list(columns)].astype("float64")
    std = values.std(ddof=0).replace(0.0, 1.0)
    return {"columns": list(columns), "mean": values.mean().tolist(), "std": std.tolist()}


def apply_scaler(table: pd.DataFrame, scaler: dict[str, list]) -> pd.DataFrame:
    """Standardise the scaler's columns of ``table``; other columns pass through unchanged."""
    columns = scaler["columns"]
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"cannot standardise: columns {missing} are missing")
    scaled = table.copy()
    mean = pd.Series(scaler["mean"], index=columns)
    std = pd.Series(scaler["std"], index=columns)
    scaled[columns] = (table[columns].astype("float64") - mean) / std
    return scaled
