"""A registered model's files are verified before any of them runs: publishing records their
sha256 on the version, and the project's loaders refuse a changed, missing or added file by
name before MLflow executes the models-from-code file. MLflow's own loader runs it first."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest

from linear_nets.serving.integrity import FILES_TAG, load_verified
from linear_nets.serving.pyfunc import IntegrityError
from linear_nets.serving.server import main
from linear_nets.tracking.publish import Publication

from .conftest import boston_package, boston_rows, expected

NAME = "boston_linear_regression"
URI = f"models:/{NAME}@champion"
# what a changed code file does when it runs: leave a marker
pytestmark = pytest.mark.slow  # publishes a model (about 10 s)

PAYLOAD = "\nimport os, pathlib\npathlib.Path(os.environ['MARKER']).write_text('ran')\n"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SQLite store holding version 1 of the boston package, published as the pipelines
    publish it (``@champion``); yields the version's folder in the artifact store."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(root)  # ./mlruns: the artifact store
        mlflow.set_tracking_uri(uri)
        client = mlflow.MlflowClient()
        with mlflow.start_run() as run:
            Publication(run.info.run_id).log_model(NAME, boston_package())
        client.set_registered_model_alias(NAME, "champion", "1")
        yield Path(client.get_model_version_download_uri(NAME, "1").removeprefix("file://"))
        mlflow.set_tracking_uri(None)


@pytest.fixture
def registered(
    published: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The published version's folder, which the test may change: put back afterwards."""
    monkeypatch.setenv("MARKER", str(tmp_path / "marker"))
    kept = shutil.copytree(published, tmp_path / "kept")
    yield published
    shutil.rmtree(published)
    shutil.copytree(kept, published)


def test_publishing_records_every_file_and_loading_verifies_them(registered: Path):
    tag = mlflow.MlflowClient().get_model_version(NAME, "1").tags[FILES_TAG]
    recorded = json.loads(tag)["sha256"]
    assert {"MLmodel", "regression_model.py", "artifacts/weights.pt"} <= set(recorded)
    assert "code/linear_nets/serving/features.py" in recorded
    rows = boston_rows()
    np.testing.assert_allclose(load_verified(URI).predict(rows), expected(rows), rtol=1e-12)


def test_a_changed_code_file_is_refused_before_it_runs(registered: Path, tmp_path: Path):
    with (registered / "regression_model.py").open("a") as code:
        code.write(PAYLOAD)
    with pytest.raises(IntegrityError, match=(
        f"model file regression_model.py of {NAME} version 1 changed since the model was "
        "published"
    )):  # fmt: skip
        load_verified(URI)
    assert not (tmp_path / "marker").exists()
    # MLflow's own loader (and `mlflow models serve`) runs the file, then the manifest refuses
    with pytest.raises(IntegrityError, match="model file regression_model.py changed"):
        mlflow.pyfunc.load_model(URI)
    assert (tmp_path / "marker").read_text() == "ran"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("add code/linear_nets/extra.py", "model file code/linear_nets/extra.py of .* was added"),
        ("remove artifacts/config.json", "model file artifacts/config.json of .* is missing"),
        ("change MLmodel", "model file MLmodel of .* changed"),
    ],
)
def test_an_added_removed_or_changed_file_is_named(registered: Path, change: str, message: str):
    verb, name = change.split(" ", 1)
    path = registered / name
    if verb == "add":
        path.write_text(PAYLOAD)
    elif verb == "remove":
        path.unlink()
    else:
        path.write_text(path.read_text() + "\n")
    with pytest.raises(IntegrityError, match=message):
        load_verified(URI)


def test_compiled_caches_are_not_trusted(registered: Path):
    cache = registered / "code/linear_nets/__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "evil.cpython-311.pyc").write_bytes(b"\0" * 16)
    load_verified(URI)  # the caches are dropped from the verified copy, never loaded


def test_the_project_server_refuses_to_start_naming_the_file(registered: Path, tmp_path: Path):
    with (registered / "regression_model.py").open("a") as code:
        code.write(PAYLOAD)
    with pytest.raises(SystemExit) as stopped:
        main(["-m", URI, "--port", "1"])
    assert str(stopped.value.code).startswith(
        f"Error: model file regression_model.py of {NAME} version 1 changed since the model "
        "was published"
    )
    assert not (tmp_path / "marker").exists()
