"""Publishing a run: the model logged and registered through the client, metrics in batches,
and everything undone when a step fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from kedro.io import DataCatalog, Version
from kedro.pipeline import Node, Pipeline

from linear_nets.datasets import MetricsDataset, PyfuncPackageDataset
from linear_nets.process import set_up
from linear_nets.serving.pyfunc import PyfuncPackage
from linear_nets.tracking.publish import ARTIFACT, Publication, find_outputs
from linear_nets.tracking.registry import CHAMPION, Candidate
from tests.support import inside, run_pipeline

COLUMNS = ["a", "b"]


def _package(value: float = 1.0, refusal: str | None = None, bias: float = 0.5) -> PyfuncPackage:
    return PyfuncPackage(
        model_code="regression_model.py",
        weights={"weight": torch.tensor([[2.0, -1.0]]), "bias": torch.tensor([bias])},
        config={"columns": COLUMNS, "mean": [0.0, 0.0], "std": [1.0, 1.0]},
        input_example=pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}),
        output_type="double",
        candidate=Candidate(
            metric="test_rmse", value=value, higher_is_better=False, gate="test", refusal=refusal
        ),
    )


@pytest.fixture
def store(tmp_path: Path, empty_mlflow_store: Path) -> Iterator[Path]:
    shutil.copy(empty_mlflow_store, tmp_path / "mlflow.db")
    (tmp_path / "uv.lock").write_text("version = 1\n")  # never copied into a model
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\n')
    with inside(tmp_path):
        set_up()  # what every kedro command does first
        mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
        yield tmp_path
        while mlflow.active_run():
            mlflow.end_run()


def _catalog(folder: Path, package: PyfuncPackage, metrics: dict) -> tuple[Pipeline, DataCatalog]:
    version = Version("v1", "v1")
    catalog = DataCatalog(
        {
            "model": PyfuncPackageDataset(
                filepath=str(folder / "pyfunc"), registered_model_name="tiny", version=version
            ),
            "metrics": MetricsDataset(filepath=str(folder / "metrics.json"), version=version),
        }
    )
    catalog.save("model", package)
    catalog.save("metrics", metrics)
    pipeline = Pipeline([Node(lambda: None, None, ["model", "metrics"], name="make")])
    return pipeline, catalog


def test_outputs_are_sorted_by_their_dataset(tmp_path: Path):
    pipeline, catalog = _catalog(tmp_path, _package(), {"m": 1.0})
    found = find_outputs(pipeline, catalog)
    assert (found.models, found.metrics, found.artifacts) == (["model"], ["metrics"], [])


def test_the_package_folder_round_trips(tmp_path: Path):
    dataset = PyfuncPackageDataset(
        filepath=str(tmp_path / "pyfunc"), registered_model_name="tiny", version=Version("v", "v")
    )
    dataset.save(_package(2.5))
    loaded = dataset.load()
    assert loaded.candidate == _package(2.5).candidate
    assert torch.equal(loaded.weights["weight"], torch.tensor([[2.0, -1.0]]))
    pd.testing.assert_frame_equal(loaded.input_example, _package().input_example)
    assert sorted(p.name for p in (tmp_path / "pyfunc" / "v" / "pyfunc").iterdir()) == [
        "config.json",
        "input_example.parquet",
        "package.json",
        "weights.pt",
    ]
    assert not [p for p in (tmp_path / "pyfunc" / "v").iterdir() if p.name.startswith(".")]


@pytest.mark.slow  # logs and registers a real model (several seconds)
def test_a_run_is_published_model_metrics_and_champion(
    store: Path, capsys: pytest.CaptureFixture[str]
):
    history = [float(i) for i in range(2500)]  # more points than one log_batch takes
    pipeline, catalog = _catalog(store, _package(), {"loss": history, "test_rmse": 1.0})
    client = mlflow.MlflowClient()
    run = mlflow.start_run(experiment_id=client.create_experiment("x"))
    Publication(run.info.run_id).publish(pipeline, catalog)
    mlflow.end_run()

    assert len(client.get_metric_history(run.info.run_id, "loss")) == 2500
    assert client.get_run(run.info.run_id).data.metrics["test_rmse"] == 1.0
    champion = client.get_model_version_by_alias("tiny", CHAMPION)
    assert (str(champion.version), champion.run_id) == ("1", run.info.run_id)
    assert capsys.readouterr().err == ""  # registering through the client prints nothing
    local = Path(mlflow.artifacts.download_artifacts("models:/tiny/1", dst_path="model"))
    assert not (local / "uv.lock").exists()  # MLFLOW_UV_AUTO_DETECT=false (process set-up)
    assert not (local / "pyproject.toml").exists()
    requirements = (local / "requirements.txt").read_text().split()
    assert f"torch=={version('torch')}" in requirements
    rows = pd.DataFrame({"a": [1.0], "b": [1.0]})
    assert list(mlflow.pyfunc.load_model("models:/tiny/1").predict(rows)) == [1.5]
    assert os.environ["MLFLOW_UV_AUTO_DETECT"] == "false"


@pytest.mark.slow  # logs and registers real models
def test_a_failure_after_registering_deletes_the_version_and_restores_the_champion(
    store: Path,
):
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("x")
    pipeline, catalog = _catalog(store / "first", _package(2.0), {"test_rmse": 2.0})
    first = mlflow.start_run(experiment_id=experiment)
    Publication(first.info.run_id).publish(pipeline, catalog)
    mlflow.end_run()

    pipeline, catalog = _catalog(store / "second", _package(1.0, bias=0.25), {"test_rmse": 1.0})
    (store / "second/metrics.json/v1/metrics.json").write_text('{"test_rmse": "broken"}')
    second = mlflow.start_run(experiment_id=experiment)
    publication = Publication(second.info.run_id)
    with pytest.raises(Exception, match="must be a number"):
        publication.publish(pipeline, catalog)
    assert sorted(str(v.version) for v in client.search_model_versions("name = 'tiny'")) == [
        "1",
        "2",
    ]
    assert publication.rollback() == ["tiny/2"]
    mlflow.end_run("FAILED")
    tags = client.get_run(second.info.run_id).data.tags
    assert "registry.version" not in tags  # it no longer holds
    assert "registry.champion" not in tags
    assert [str(v.version) for v in client.search_model_versions("name = 'tiny'")] == ["1"]
    assert str(client.get_model_version_by_alias("tiny", CHAMPION).version) == "1"
    # the failed run's logged model is gone with its files; the first run's stays
    [kept] = client.search_logged_models([experiment])
    assert kept.source_run_id == first.info.run_id
    models = Path(mlflow.get_experiment(experiment).artifact_location.removeprefix("file://"))
    assert [p.parent.name for p in (models / "models").glob("*/artifacts")] == [kept.model_id]


@pytest.mark.slow
def test_a_refused_model_is_not_registered_and_the_run_says_why(store: Path):
    pipeline, catalog = _catalog(store, _package(refusal="not converged"), {"test_rmse": 1.0})
    client = mlflow.MlflowClient()
    run = mlflow.start_run(experiment_id=client.create_experiment("x"))
    Publication(run.info.run_id).publish(pipeline, catalog)
    mlflow.end_run()
    assert client.search_model_versions("name = 'tiny'") == []
    assert client.get_run(run.info.run_id).data.tags["registry.not_registered"] == "not converged"


@pytest.mark.slow
def test_an_identical_retrain_registers_nothing_and_names_the_version_it_equals(store: Path):
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("x")
    runs = []
    for folder in ("first", "second"):
        pipeline, catalog = _catalog(store / folder, _package(), {"test_rmse": 1.0})
        run = mlflow.start_run(experiment_id=experiment)
        Publication(run.info.run_id).publish(pipeline, catalog)
        mlflow.end_run()
        runs.append(run.info.run_id)
    assert [str(v.version) for v in client.search_model_versions("name = 'tiny'")] == ["1"]
    assert client.get_run(runs[1]).data.tags["registry.not_registered"].startswith(
        "identical to tiny version 1"
    )
    # another model (other weights) is new
    pipeline, catalog = _catalog(store / "third", _package(bias=0.25), {"test_rmse": 1.0})
    run = mlflow.start_run(experiment_id=experiment)
    Publication(run.info.run_id).publish(pipeline, catalog)
    mlflow.end_run()
    assert len(client.search_model_versions("name = 'tiny'")) == 2


@pytest.mark.slow  # logs and registers real models
def test_undoing_a_promotion_gives_the_alias_back_unless_another_run_moved_it(store: Path):
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("x")

    def published(folder: str, value: float, bias: float) -> Publication:
        pipeline, catalog = _catalog(store / folder, _package(value, bias=bias), {"m": 1.0})
        run = mlflow.start_run(experiment_id=experiment)
        publication = Publication(run.info.run_id)
        publication.publish(pipeline, catalog)
        mlflow.end_run()
        return publication

    def champion() -> str:
        return str(client.get_model_version_by_alias("tiny", CHAMPION).version)

    published("first", 3.0, bias=0.1)
    second = published("second", 2.0, bias=0.2)  # better: version 2 is champion
    assert champion() == "2"
    second.rollback()
    assert champion() == "1"  # given back

    third = published("third", 2.0, bias=0.3)  # version 3, champion
    published("fourth", 1.0, bias=0.4)  # another run promotes version 4 meanwhile
    third.rollback()
    assert champion() == "4"  # the other run's promotion stands


@pytest.mark.slow  # logs a real model
def test_a_full_disk_mid_copy_leaves_no_half_copied_model(store: Path, small_disk: Path):
    from tests.support import leftovers

    (small_disk / "filler").write_bytes(bytes(48 * 1024))  # 16 KiB left: a few files fit
    client = mlflow.MlflowClient()
    artifacts = small_disk / "artifacts"
    experiment = client.create_experiment("x", artifact_location=artifacts.as_uri())
    pipeline, catalog = _catalog(store, _package(), {"test_rmse": 1.0})
    run = mlflow.start_run(experiment_id=experiment)
    # a model the run held before (a notebook's run): not the publication's to delete
    own = mlflow.create_external_model(name="own", source_run_id=run.info.run_id)
    publication = Publication(run.info.run_id)
    with pytest.raises(OSError, match="No space left on device"):
        publication.publish(pipeline, catalog)
    [model] = [m for m in client.search_logged_models([experiment]) if m.name == "model"]
    own_files = [f"models/{own.model_id}/artifacts/MLmodel"]  # its stub
    copied = [path for path in leftovers(artifacts) if path not in own_files]
    assert copied, "the copy should have stopped part-way"  # what the rollback must remove
    assert all(path.startswith(f"models/{model.model_id}/artifacts/") for path in copied)

    assert publication.rollback() == []  # nothing was registered
    mlflow.end_run("FAILED")  # what the tracking hook does next
    assert leftovers(artifacts) == own_files
    assert [m.model_id for m in client.search_logged_models([experiment])] == [own.model_id]
    ended = client.get_run(run.info.run_id)
    assert (ended.info.status, ended.data.metrics) == ("FAILED", {})
    assert client.search_model_versions("name = 'tiny'") == []


def test_a_kedro_run_whose_model_does_not_fit_ends_failed_with_nothing_left(
    kedro_project: Path, small_disk: Path
):
    """``kedro run --pipeline=boston`` with its MLflow store (``mlflow.db`` and ``mlruns/``) on a
    disk with 400 KiB free: copying the model (~800 KB, its code is the whole package) stops
    part-way, and the store cannot record anything more until the rollback frees the space.
    The run ends FAILED, with no model files, metrics or versions, and the message says why."""
    from linear_nets.terminal import short_message
    from tests.support import leftovers

    size = (kedro_project / "mlflow.db").stat().st_size + 400 * 1024
    subprocess.run(["mount", "-o", f"remount,size={size}", str(small_disk)], check=True)
    store = small_disk / "mlflow.db"
    shutil.move(kedro_project / "mlflow.db", store)
    mlflow_yml = kedro_project / "conf" / "base" / "mlflow.yml"
    uri = f"sqlite:///{kedro_project / 'mlflow.db'}"
    mlflow_yml.write_text(mlflow_yml.read_text().replace(uri, f"sqlite:///{store}"))
    (small_disk / "mlruns").mkdir()
    (kedro_project / "mlruns").symlink_to(small_disk / "mlruns")
    with pytest.raises(Exception) as raised:  # MLflow wraps the OSError
        run_pipeline(kedro_project, "boston")

    assert short_message(raised.value).endswith("No space left on device")
    assert leftovers(small_disk / "mlruns") == []  # no half-copied model folder
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}")
    [run] = client.search_runs(["1"])
    assert (run.info.status, run.data.metrics) == ("FAILED", {})  # recorded once space was freed
    assert client.search_logged_models(["1"]) == []
    assert client.search_model_versions() == []


def test_a_failed_publication_deletes_the_files_it_logged_to_the_run(store: Path):
    catalog = DataCatalog.from_config(
        {
            "table": {
                "type": "pandas.CSVDataset",
                "filepath": str(store / "table.csv"),
                "versioned": True,
                "metadata": {"mlflow": ARTIFACT, "mlflow_artifact_path": "tables"},
            },
            "metrics": {
                "type": "linear_nets.datasets.MetricsDataset",
                "filepath": str(store / "metrics.json"),
            },
        },
        save_version="v1",
    )
    catalog.save("table", pd.DataFrame({"a": [1.0]}))
    (store / "metrics.json").write_text('{"test_rmse": "broken"}')
    pipeline = Pipeline([Node(lambda: None, None, ["table", "metrics"], name="make")])
    client = mlflow.MlflowClient()
    run = mlflow.start_run(experiment_id=client.create_experiment("x"))
    publication = Publication(run.info.run_id)
    with pytest.raises(Exception, match="must be a number"):
        publication.publish(pipeline, catalog)
    assert [a.path for a in client.list_artifacts(run.info.run_id, "tables")] == [
        "tables/table.csv"
    ]
    publication.rollback()
    mlflow.end_run("FAILED")
    assert client.list_artifacts(run.info.run_id, "tables") == []
