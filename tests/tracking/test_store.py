"""The embedded store: its lock, and its artifact roots following the project folder."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner

from linear_nets.tracking.cli import runs
from linear_nets.tracking.store import relocate, sqlite_path, store_lock
from tests.conftest import inside


def test_sqlite_path_of_relative_absolute_and_other_uris():
    assert sqlite_path("sqlite:///mlflow.db?timeout=60") == Path("mlflow.db")
    assert sqlite_path("sqlite:////srv/x/mlflow.db") == Path("/srv/x/mlflow.db")
    assert sqlite_path("http://127.0.0.1:5000") is None
    assert sqlite_path("postgresql://u@h/db") is None


def test_the_lock_file_sits_beside_the_store(tmp_path: Path):
    with store_lock(f"sqlite:///{tmp_path / 'sub' / 'mlflow.db'}"):
        assert (tmp_path / "sub" / "mlflow.db.lock").is_file()


def _locations(database: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return [
            value
            for table, column in (
                ("experiments", "artifact_location"),
                ("runs", "artifact_uri"),
                ("model_versions", "storage_location"),
                ("logged_models", "artifact_location"),
            )
            for (value,) in connection.execute(f"SELECT {column} FROM {table}")
            if value
        ]


@pytest.mark.slow
def test_a_moved_project_still_loads_its_registered_model(trained_boston: Path, tmp_path: Path):
    copied = shutil.copytree(trained_boston, tmp_path / "before")
    moved = Path(shutil.move(copied, tmp_path / "after"))
    mlflow_yml = moved / "conf/base/mlflow.yml"  # the test copy names its store absolutely
    mlflow_yml.write_text(mlflow_yml.read_text().replace(str(trained_boston), str(moved)))
    assert any(str(trained_boston) in location for location in _locations(moved / "mlflow.db"))

    with inside(moved):
        result = CliRunner().invoke(runs, ["relocate"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert f"-> {moved / 'mlruns'}" in result.output
        assert all(
            location.removeprefix("file://").startswith(str(moved))
            for location in _locations(moved / "mlflow.db")
        )
        mlflow.set_tracking_uri(f"sqlite:///{moved / 'mlflow.db'}")
        (version,) = mlflow.MlflowClient().search_model_versions(
            "name = 'boston_linear_regression'"
        )
        model = mlflow.pyfunc.load_model(f"models:/boston_linear_regression/{version.version}")
        rows = pd.read_csv(moved / "data/01_raw/boston_new_rows.csv").astype("float64")
        assert len(model.predict(rows)) == len(rows)


def test_relocation_rewrites_only_the_recorded_root(tmp_path: Path, empty_mlflow_store: Path):
    database = tmp_path / "mlflow.db"
    shutil.copy(empty_mlflow_store, database)
    client = mlflow.MlflowClient(f"sqlite:///{database}")
    uri = f"sqlite:///{database}"
    relocate(uri, tmp_path / "old")  # the store was created elsewhere: it now lives in old/
    assert relocate(uri, tmp_path / "old") == []
    ours = client.create_experiment("ours", artifact_location=str(tmp_path / "old/mlruns/1"))
    elsewhere = client.create_experiment("shared", artifact_location="/srv/team/mlruns/7")

    moved = relocate(uri, tmp_path / "new")
    assert moved == [f"{tmp_path / 'old/mlruns'} -> {tmp_path / 'new/mlruns'}"]
    assert client.get_experiment(ours).artifact_location.endswith(f"{tmp_path}/new/mlruns/1")
    assert client.get_experiment(elsewhere).artifact_location.endswith("/srv/team/mlruns/7")
