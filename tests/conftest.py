"""Shared fixtures: a throw-away copy of the project, with its own MLflow store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest

from tests.support import kedro_viz_build, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_RAW_FILES = ("boston.txt", "boston_new_rows.csv")  # the only committed data
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


def make_project_copy(project: Path, empty_store: Path) -> Path:
    """Copy conf/, the committed raw data and pyproject.toml to ``project``.

    ``src`` stays empty: the package is installed from this checkout and imported from there.
    The MLflow store is the copy's own ``mlflow.db``, named by its absolute path: MLflow caches
    stores by URI, so a relative ``sqlite:///mlflow.db`` would reach the previous test's file.
    """
    local = ROOT / "conf" / "local"

    def local_settings(directory: str, names: list[str]) -> list[str]:
        """A fresh clone has no conf/local settings: keep the developer's out of the tests."""
        return [name for name in names if name != ".gitkeep"] if Path(directory) == local else []

    shutil.copytree(ROOT / "conf", project / "conf", ignore=local_settings)
    mlflow_yml = project / "conf" / "base" / "mlflow.yml"
    mlflow_yml.write_text(
        mlflow_yml.read_text().replace("sqlite:///mlflow.db", f"sqlite:///{project / 'mlflow.db'}")
    )
    shutil.copy(empty_store, project / "mlflow.db")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()
    for layer in DATA_LAYERS:
        (project / "data" / layer).mkdir(parents=True)
    for shipped in SHIPPED_RAW_FILES:
        shutil.copy(ROOT / "data" / "01_raw" / shipped, project / "data" / "01_raw" / shipped)
    return project


@contextmanager
def inside(project: Path) -> Iterator[Path]:
    """Work in ``project`` (cwd, no telemetry) and leave MLflow's global state as it was."""
    previous_uri = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        patch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
        try:
            yield project
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.set_tracking_uri(previous_uri)


@pytest.fixture
def kedro_project(tmp_path: Path, empty_mlflow_store: Path) -> Iterator[Path]:
    """A fresh copy of the project in ``tmp_path``, as the working directory."""
    with inside(make_project_copy(tmp_path / "project", empty_mlflow_store)) as project:
        yield project


@pytest.fixture(scope="module")
def trained_boston(
    tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path
) -> Iterator[Path]:
    """A project copy in which ``kedro run --pipeline=boston`` has run once with the defaults."""
    project = make_project_copy(tmp_path_factory.mktemp("trained") / "project", empty_mlflow_store)
    with inside(project):
        run_pipeline(project, "boston")
        yield project


@pytest.fixture(scope="session")
def viz_build(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path) -> Path:
    """``kedro viz build`` of a fresh project copy, once per session (it takes half a minute);
    shared by the export tests and the browser tests, none of which writes to it."""
    project = make_project_copy(tmp_path_factory.mktemp("viz") / "project", empty_mlflow_store)
    return kedro_viz_build(project)
