"""The fashion_mnist pipeline end to end: a Kedro session downloading a tiny IDX set over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from kedro.validation.exceptions import ParameterValidationError

from linear_nets.datasets import FashionMNISTFileError
from linear_nets.datasets.fashion_mnist import FILES
from tests.pipelines.fashion_mnist.fake_data import make_tiny_fashion_mnist, serve
from tests.support import mlflow_client, run_pipeline

EPOCHS = 3
CLASS_KEYS = {
    f"test_accuracy_{slug}"
    for slug in (
        "t_shirt",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle_boot",
    )
}
HISTORY_KEYS = {"train_loss", "train_accuracy", "test_loss", "test_accuracy"}


def _params(mirror: str, md5: dict[str, str], **train: object) -> dict[str, object]:
    return {
        "fashion_mnist": {
            "source": {"mirror": mirror, "md5": md5},
            "train": {"device": "cpu", "epochs": EPOCHS, "batch_size": 64, **train},
        }
    }


def test_full_run_downloads_trains_and_tracks(kedro_project: Path, tmp_path: Path):
    tiny = make_tiny_fashion_mnist(tmp_path / "mirror")

    with serve(tiny.folder) as (url, requested):
        run_pipeline(kedro_project, "fashion_mnist", params=_params(url, tiny.md5))
    assert {path.lstrip("/") for path in requested} == set(FILES)

    raw = kedro_project / "data/01_raw/fashion_mnist"
    assert all((raw / name.removesuffix(".gz")).is_file() for name in FILES)
    for name in ("curves", "confusion_matrix", "test_predictions"):
        assert (kedro_project / "data/08_reporting" / f"fashion_mnist_{name}.png").is_file()
    reporting = kedro_project / "data/08_reporting"
    history = json.loads((reporting / "fashion_mnist_history.json").read_text())
    assert set(history) == HISTORY_KEYS
    assert history["test_accuracy"][-1] > 0.9

    versions = list((kedro_project / "data/06_models/fashion_mnist_model.pt").iterdir())
    assert len(versions) == 1
    state = torch.load(versions[0] / "fashion_mnist_model.pt", weights_only=True)
    assert {key: tuple(value.shape) for key, value in state.items()} == {
        "net.1.weight": (10, 784),
        "net.1.bias": (10,),
    }

    client = mlflow_client(kedro_project)
    experiment = client.get_experiment_by_name("linear_nets")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    for key in ("train_loss", "train_accuracy", "test_accuracy"):
        points = client.get_metric_history(run.info.run_id, key)
        assert sorted(point.step for point in points) == list(range(1, EPOCHS + 1)), key
    metrics = run.data.metrics
    assert set(metrics) == HISTORY_KEYS | CLASS_KEYS | {"final_test_accuracy", "final_test_loss"}
    assert metrics["final_test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert metrics["test_accuracy"] == pytest.approx(history["test_accuracy"][-1])
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id, "fashion_mnist")}
    assert artifacts == {
        "fashion_mnist/fashion_mnist_curves.png",
        "fashion_mnist/fashion_mnist_confusion_matrix.png",
        "fashion_mnist/fashion_mnist_test_predictions.png",
    }
    assert run.data.params["fashion_mnist.train.batch_size"] == "64"
    assert run.data.params["fashion_mnist.model.kind"] == "linear"


def test_a_corrupt_mirror_file_stops_the_run_naming_it(kedro_project: Path, tmp_path: Path):
    tiny = make_tiny_fashion_mnist(tmp_path / "mirror")
    pins = {**tiny.md5, "train-images-idx3-ubyte.gz": "0" * 32}

    corrupt = r"train-images-idx3-ubyte\.gz is corrupt: md5 [0-9a-f]{32}, expected 0{32}"
    with pytest.raises(FashionMNISTFileError, match=corrupt):
        run_pipeline(kedro_project, "fashion_mnist", params=_params(str(tiny.folder), pins))


def test_a_wrong_parameter_fails_before_any_download(kedro_project: Path, tmp_path: Path):
    tiny = make_tiny_fashion_mnist(tmp_path / "mirror")

    with pytest.raises(ParameterValidationError, match=r"fashion_mnist\.train"):
        run_pipeline(
            kedro_project, "fashion_mnist", params=_params(str(tiny.folder), tiny.md5, loss="mse")
        )
    assert not (kedro_project / "data/01_raw/fashion_mnist").exists()
