"""Shared fixtures: a throw-away copy of the project, with its own MLflow store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_LAYERS = (
    "01_raw",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
)


@pytest.fixture(scope="session")
def empty_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its schema created once: migrating a new one takes seconds."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def kedro_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_mlflow_store: Path
) -> Iterator[Path]:
    """A copy of conf/, the committed raw data and pyproject.toml in ``tmp_path``, as the cwd.

    ``src`` stays empty: the package is installed from this checkout and imported from there.
    The MLflow store is the copy's own ``mlflow.db``, named by its absolute path: MLflow caches
    stores by URI, so a relative ``sqlite:///mlflow.db`` would reach the previous test's file.
    """
    project = tmp_path / "project"
    shutil.copytree(ROOT / "conf", project / "conf")
    mlflow_yml = project / "conf" / "base" / "mlflow.yml"
    mlflow_yml.write_text(
        mlflow_yml.read_text().replace("sqlite:///mlflow.db", f"sqlite:///{project / 'mlflow.db'}")
    )
    shutil.copy(empty_mlflow_store, project / "mlflow.db")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()
    for layer in DATA_LAYERS:
        (project / "data" / layer).mkdir(parents=True)
    for shipped in (ROOT / "data" / "01_raw").iterdir():
        if shipped.is_file() and shipped.name != ".gitkeep":
            shutil.copy(shipped, project / "data" / "01_raw" / shipped.name)
    monkeypatch.chdir(project)
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    previous_uri = mlflow.get_tracking_uri()
    yield project
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(previous_uri)
