"""The saved model as MLflow loads it: no input types, the model's own checks, short refusals,
and a manifest that refuses changed files."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pytest
import torch
import yaml
from mlflow.exceptions import MlflowException

from linear_nets.pipelines.boston.nodes import FEATURES
from linear_nets.serving.pyfunc import IntegrityError, save_model

from .conftest import boston_package, boston_rows, expected


def _load(folder: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Add type hints to the predict method" or others
        return mlflow.pyfunc.load_model(str(folder))


def _copy(saved_model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved_model, tmp_path / "model"))


def test_ints_and_floats_give_the_same_predictions(saved_model: Path):
    model = _load(saved_model)
    rows = boston_rows()
    as_ints = model.predict(rows)
    np.testing.assert_allclose(as_ints, expected(rows), rtol=1e-12)
    np.testing.assert_array_equal(model.predict(rows.astype("float64")), as_ints)
    np.testing.assert_array_equal(model.predict(rows.assign(id="x")), as_ints)


def test_signature_types_the_output_and_the_example_shows_the_columns(saved_model: Path):
    model = _load(saved_model)
    assert model.metadata.get_input_schema() is None
    assert model.metadata.get_output_schema().input_types()[0].name == "double"
    example = json.loads((saved_model / "input_example.json").read_text())
    assert example["columns"] == list(FEATURES)


def test_refusals_are_short_and_count_rows_from_one(saved_model: Path):
    model = _load(saved_model)
    rows = boston_rows().head(4)
    cases = {
        "column 'TAX', row 1: value 'high' is not a number": rows.assign(TAX="high"),
        "column 'RM', row 4: value nan is empty (NaN/None)": rows.assign(
            RM=rows["RM"].where(rows.index != 3)
        ),
        "column 'CRIM', row 1: value '0.5' is text, not a number (send numbers unquoted)": (
            rows.assign(CRIM="0.5")
        ),
    }
    for message, bad in cases.items():
        with pytest.raises(MlflowException) as refused:
            model.predict(bad)
        assert refused.value.message == message
        assert json.loads(refused.value.serialize_as_json()) == {
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": message,
        }


def test_the_manifest_lists_every_file_and_loading_checks_it(saved_model: Path, tmp_path: Path):
    recorded = json.loads((saved_model / "artifacts/manifest.json").read_text())["sha256"]
    assert {"regression_model.py", "artifacts/weights.pt", "artifacts/config.json"} <= set(
        recorded
    )
    assert "code/linear_nets/serving/regression.py" in recorded
    mlmodel = yaml.safe_load((saved_model / "MLmodel").read_text())
    assert "manifest" in mlmodel["flavors"]["python_function"]["artifacts"]

    folder = _copy(saved_model, tmp_path)
    weights = torch.load(folder / "artifacts/weights.pt", weights_only=True)
    torch.save({**weights, "weight": weights["weight"] * 10}, folder / "artifacts/weights.pt")
    with pytest.raises(IntegrityError, match="model file artifacts/weights.pt changed since"):
        mlflow.pyfunc.load_model(str(folder))


@pytest.mark.parametrize(
    "name", ["regression_model.py", "code/linear_nets/serving/features.py", "artifacts/config.json"]
)
def test_a_changed_or_missing_file_is_refused_by_name(saved_model: Path, tmp_path: Path, name):
    folder = _copy(saved_model, tmp_path)
    with (folder / name).open("a") as changed:
        changed.write("\n")
    with pytest.raises(IntegrityError, match=f"model file {name} changed"):
        mlflow.pyfunc.load_model(str(folder))
    (folder / name).unlink()
    with pytest.raises((IntegrityError, MlflowException, OSError)):
        mlflow.pyfunc.load_model(str(folder))


def test_a_bad_scaler_fails_at_load_not_at_predict(tmp_path: Path):
    # (every check of the scaler and weights: tests/serving/test_features.py)
    twelve = {"columns": list(FEATURES), "mean": [1.0] * 12, "std": [2.0] * 13}
    folder = save_model(boston_package(scaler=twelve), tmp_path / "model")
    with pytest.raises(ValueError, match="scaler mean has 12 entries for 13 input columns"):
        mlflow.pyfunc.load_model(str(folder))
