"""A saved boston regression model (a local MLflow model folder, no run or registry) and the
raw boston rows it takes, shared by the serving tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from linear_nets.pipelines.boston.nodes import FEATURES, parse_statlib_records
from linear_nets.serving.pyfunc import PyfuncPackage, save_model
from linear_nets.tracking.registry import Candidate

ROOT = Path(__file__).resolve().parents[2]
INT_COLUMNS = ["CHAS", "RAD", "TAX"]


def boston_package(scaler: dict | None = None, weight: torch.Tensor | None = None) -> PyfuncPackage:
    """A regression package on the 13 boston columns: scaler mean 1, std 2, weights 1 … 13."""
    columns = list(FEATURES)
    return PyfuncPackage(
        model_code="regression_model.py",
        weights={
            "weight": torch.arange(1.0, 14.0).reshape(1, -1) if weight is None else weight,
            "bias": torch.tensor([0.5]),
        },
        config=scaler or {"columns": columns, "mean": [1.0] * 13, "std": [2.0] * 13},
        input_example=boston_rows().head(3),
        output_type="double",
        candidate=Candidate(metric="test_rmse", value=1.0, higher_is_better=False, gate="test"),
    )


def boston_rows() -> pd.DataFrame:
    """The 506 raw boston rows' features, RAD, TAX and CHAS as int64 (as ``pd.read_csv`` has
    them)."""
    table = parse_statlib_records((ROOT / "data/01_raw/boston.txt").read_bytes())
    return table[list(FEATURES)].astype({column: "int64" for column in INT_COLUMNS})


def expected(rows: pd.DataFrame) -> pd.Series:
    """What ``boston_package()`` predicts: ((x - 1) / 2) @ (1 … 13) + 0.5."""
    return ((rows.astype("float64") - 1.0) / 2.0) @ list(range(1, 14)) + 0.5


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``boston_package()`` saved as a local MLflow model folder (never written to)."""
    return save_model(boston_package(), tmp_path_factory.mktemp("saved") / "model")
