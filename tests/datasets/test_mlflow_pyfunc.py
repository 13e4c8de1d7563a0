"""Logging a models-from-code pyfunc: the model carries its pinned requirements, not the
project's uv files (issue #11: they were copied into every version)."""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path

import mlflow
import mlflow.pyfunc
import mlflow.utils.environment
import pandas as pd
import pytest
import torch

from linear_nets.datasets.mlflow_pyfunc import UV_AUTO_DETECT, MlflowPyfuncModelDataset
from linear_nets.serving.pyfunc import PyfuncPackage
from linear_nets.tracking.registry import Candidate
from tests.support import inside

COLUMNS = ["a", "b"]


def _package() -> PyfuncPackage:
    return PyfuncPackage(
        model_code="regression_model.py",
        weights={"weight": torch.tensor([[2.0, -1.0]]), "bias": torch.tensor([0.5])},
        config={"columns": COLUMNS, "mean": [0.0, 0.0], "std": [1.0, 1.0]},
        input_example=pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}),
        output_type="double",
        candidate=Candidate(metric="test_rmse", value=1.0, higher_is_better=False, gate="test"),
    )


@pytest.mark.slow  # logs and registers a real model (several seconds)
def test_logged_model_has_pinned_requirements_and_no_uv_files(
    tmp_path: Path,
    empty_mlflow_store: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    (tmp_path / "uv.lock").write_text("version = 1\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\n')
    store = tmp_path / "mlflow.db"
    store.write_bytes(empty_mlflow_store.read_bytes())
    monkeypatch.delenv(UV_AUTO_DETECT, raising=False)
    dataset = MlflowPyfuncModelDataset(registered_model_name="tiny")

    with inside(tmp_path):
        mlflow.set_tracking_uri(f"sqlite:///{store}")
        with mlflow.start_run() as run:
            assert dataset._log(run.info.run_id, _package()) == "1"
        printed = capsys.readouterr().err
        assert "Successfully registered model" not in printed  # the summary says it
        assert "Created version" not in printed
        assert UV_AUTO_DETECT not in os.environ  # MLflow's default is back for everything else
        local = Path(mlflow.artifacts.download_artifacts("models:/tiny/1", dst_path="model"))
        assert not (local / "uv.lock").exists()
        assert not (local / "pyproject.toml").exists()
        requirements = (local / "requirements.txt").read_text().split()
        assert f"torch=={version('torch')}" in requirements
        assert f"mlflow=={version('mlflow')}" in requirements
        rows = pd.DataFrame({"a": [1.0], "b": [1.0]})
        assert list(mlflow.pyfunc.load_model("models:/tiny/1").predict(rows)) == [1.5]


@pytest.mark.slow  # logs and registers a real model per case
@pytest.mark.parametrize("pins", [None, ["numpy==0.0.1"]], ids=["environment", "given"])
def test_mlflow_checks_only_the_pins_a_user_gives(
    tmp_path: Path, empty_mlflow_store: Path, monkeypatch: pytest.MonkeyPatch, pins: list | None
):
    # pins read from this environment match it by construction; pins passed in may not
    checked: list[list[str]] = []
    for module in (mlflow.utils.environment, mlflow.pyfunc):
        monkeypatch.setattr(module, "warn_dependency_requirement_mismatches", checked.append)
    store = tmp_path / "mlflow.db"
    store.write_bytes(empty_mlflow_store.read_bytes())
    dataset = MlflowPyfuncModelDataset(registered_model_name="tiny", pip_requirements=pins)

    with inside(tmp_path):
        mlflow.set_tracking_uri(f"sqlite:///{store}")
        with mlflow.start_run() as run:
            assert dataset._log(run.info.run_id, _package()) == "1"

    if pins is None:
        assert checked == []
    else:
        assert checked and all("numpy==0.0.1" in requirements for requirements in checked)
