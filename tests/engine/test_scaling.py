"""Standardisation column by column, checked against pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from linear_nets.engine.scaling import apply_scaler, column_moments, scaler_from


def fit_scaler(table: pd.DataFrame, columns: list[str]) -> dict[str, list]:
    return scaler_from(column_moments([table[c].to_numpy() for c in columns]), columns)


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    table = pd.DataFrame(rng.normal(5, 3, (200, 3)), columns=["a", "b", "y"])
    table["b"] = 7.0  # constant
    return table


def test_the_scaler_is_pandas_mean_and_population_std_with_std_1_for_a_constant():
    table = _table()
    scaler = fit_scaler(table, ["a", "b"])
    assert scaler["columns"] == ["a", "b"]
    np.testing.assert_allclose(scaler["mean"], table[["a", "b"]].mean(), rtol=1e-12)
    np.testing.assert_allclose(scaler["std"], [table["a"].std(ddof=0), 1.0], rtol=1e-12)
    assert column_moments([table["b"].to_numpy()]).constant.tolist() == [True]


def test_applying_it_standardises_its_columns_and_passes_the_others_as_one_block():
    table = _table()
    scaler = fit_scaler(table, ["a"])
    scaled = apply_scaler(table, scaler)
    expected = table.assign(a=(table["a"] - scaler["mean"][0]) / scaler["std"][0])
    pd.testing.assert_frame_equal(scaled, expected)
    assert scaled.to_numpy().base is not None  # one float64 block, not one per column
    with pytest.raises(ValueError, match=r"cannot standardise: columns \['z'\] are missing"):
        apply_scaler(table, {"columns": ["z"], "mean": [0.0], "std": [1.0]})
