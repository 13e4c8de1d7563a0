"""The embedded store: its lock, and a moved project reported instead of silently split."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest

from linear_nets.tracking.store import MovedProjectError, sqlite_path, store_lock
from tests.support import inside, run_pipeline


def test_sqlite_path_of_relative_absolute_and_other_uris():
    assert sqlite_path("sqlite:///mlflow.db?timeout=60") == Path("mlflow.db")
    assert sqlite_path("sqlite:////srv/x/mlflow.db") == Path("/srv/x/mlflow.db")
    assert sqlite_path("http://127.0.0.1:5000") is None
    assert sqlite_path("postgresql://u@h/db") is None


def test_the_lock_file_sits_beside_the_store(tmp_path: Path):
    with store_lock(f"sqlite:///{tmp_path / 'sub' / 'mlflow.db'}"):
        assert (tmp_path / "sub" / "mlflow.db.lock").is_file()


@pytest.mark.slow
def test_a_copied_project_is_refused_naming_what_to_do(trained_boston: Path, tmp_path: Path):
    copied = Path(shutil.copytree(trained_boston, tmp_path / "copied"))
    mlflow_yml = copied / "conf/base/mlflow.yml"  # the test copy names its store absolutely
    mlflow_yml.write_text(mlflow_yml.read_text().replace(str(trained_boston), str(copied)))
    with inside(copied), pytest.raises(MovedProjectError) as refused:
        run_pipeline(copied, "boston")
    message = str(refused.value)
    assert f"{trained_boston}/mlruns" in message
    assert f"ln -s {copied} {trained_boston}" in message
    # nothing was recorded: the copied store has the original run only
    client = mlflow.MlflowClient(f"sqlite:///{copied / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("linear_nets.boston")
    assert len(client.search_runs([experiment.experiment_id])) == 1
