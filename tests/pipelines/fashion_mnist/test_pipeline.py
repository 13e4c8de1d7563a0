"""The fashion_mnist pipeline end to end: a Kedro session downloading a tiny IDX set over HTTP."""

from __future__ import annotations

import gzip
import json
import shutil
import socket
import time
from pathlib import Path

import pytest
import torch
from kedro.validation.exceptions import ParameterValidationError

from linear_nets.datasets import FashionMNISTFileError
from linear_nets.datasets.fashion_mnist import FILES
from tests.pipelines.fashion_mnist.fake_data import make_tiny_fashion_mnist, serve
from tests.support import latest_output, mlflow_client, run_pipeline

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
HISTORY_KEYS = {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
VAL_SIZE = 60


def _params(mirror: str, md5: dict[str, str], **train: object) -> dict[str, object]:
    return {
        "fashion_mnist": {
            "source": {"mirror": mirror, "md5": md5},
            "split": {"val_size": VAL_SIZE, "seed": 0},
            "train": {"device": "cpu", "epochs": EPOCHS, "batch_size": 64, **train},
        }
    }


@pytest.mark.slow
def test_full_run_downloads_trains_and_tracks(kedro_project: Path, tmp_path: Path):
    tiny = make_tiny_fashion_mnist(tmp_path / "mirror")

    with serve(tiny.folder) as (url, requested):
        run_pipeline(kedro_project, "fashion_mnist", params=_params(url, tiny.md5))
    assert {path.lstrip("/") for path in requested} == set(FILES)

    raw = kedro_project / "data/01_raw/fashion_mnist"
    assert sorted(path.name for path in raw.iterdir()) == sorted(FILES)  # the archives only
    for name in ("curves", "confusion_matrix", "test_predictions"):
        assert latest_output(kedro_project, f"data/08_reporting/fashion_mnist_{name}.png").is_file()
    history_file = latest_output(kedro_project, "data/08_reporting/fashion_mnist_history.json")
    history = json.loads(history_file.read_text())
    assert set(history) == HISTORY_KEYS  # per epoch: training and validation, never test
    assert history["val_accuracy"][-1] > 0.9
    metrics_file = latest_output(kedro_project, "data/08_reporting/fashion_mnist_test_metrics.json")
    test_metrics = json.loads(metrics_file.read_text())
    assert set(test_metrics) == CLASS_KEYS | {"test_accuracy", "test_loss"}

    versions = list((kedro_project / "data/06_models/fashion_mnist_model.pt").iterdir())
    assert len(versions) == 1
    state = torch.load(versions[0] / "fashion_mnist_model.pt", weights_only=True)
    assert {key: tuple(value.shape) for key, value in state.items()} == {
        "net.1.weight": (10, 784),
        "net.1.bias": (10,),
    }

    client = mlflow_client(kedro_project)
    experiment = client.get_experiment_by_name("linear_nets.fashion_mnist")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    for key in HISTORY_KEYS:
        points = client.get_metric_history(run.info.run_id, key)
        assert sorted(point.step for point in points) == list(range(1, EPOCHS + 1)), key
    for key in ("test_accuracy", "test_loss"):  # scored once, after training
        (point,) = client.get_metric_history(run.info.run_id, key)
        assert point.value == pytest.approx(test_metrics[key])
    metrics = run.data.metrics
    assert set(metrics) == HISTORY_KEYS | CLASS_KEYS | {"test_accuracy", "test_loss"}
    assert metrics["val_accuracy"] == pytest.approx(history["val_accuracy"][-1])
    assert metrics["test_accuracy"] > 0.9
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id, "fashion_mnist")}
    assert artifacts == {
        "fashion_mnist/fashion_mnist_curves.png",
        "fashion_mnist/fashion_mnist_confusion_matrix.png",
        "fashion_mnist/fashion_mnist_test_predictions.png",
    }
    assert run.data.params["fashion_mnist.train.batch_size"] == "64"
    assert run.data.params["fashion_mnist.model.kind"] == "linear"
    assert run.data.params["fashion_mnist.split.val_size"] == str(VAL_SIZE)


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


@pytest.mark.slow
def test_an_altered_cached_archive_stops_the_run_naming_it(kedro_project: Path, tmp_path: Path):
    """The issue's case: 150 cached labels zeroed, and no mirror that can replace the file."""
    tiny = make_tiny_fashion_mnist(tmp_path / "mirror")
    raw = kedro_project / "data/01_raw/fashion_mnist"
    raw.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(tiny.folder / name, raw / name)
    labels = raw / "train-labels-idx1-ubyte.gz"
    payload = bytearray(gzip.decompress(labels.read_bytes()))
    payload[8:158] = bytes(150)
    labels.write_bytes(gzip.compress(bytes(payload), mtime=0))
    (tiny.folder / "train-labels-idx1-ubyte.gz").unlink()

    with pytest.raises(FashionMNISTFileError) as caught:
        run_pipeline(kedro_project, "fashion_mnist", params=_params(str(tiny.folder), tiny.md5))

    message = str(caught.value)
    assert "the cached data/01_raw/fashion_mnist/train-labels-idx1-ubyte.gz is corrupt" in message
    assert f"expected {tiny.md5['train-labels-idx1-ubyte.gz']}" in message
    assert not (kedro_project / "data/06_models/fashion_mnist_model.pt").exists()


def test_a_mirror_that_never_answers_stops_the_run_at_the_deadline(kedro_project: Path):
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    params = {"fashion_mnist": {"source": {"mirror": url, "deadline_s": 0.5}}}
    started = time.monotonic()
    try:
        with pytest.raises(FashionMNISTFileError, match=r"deadline_s=0\.5 s") as caught:
            run_pipeline(kedro_project, "fashion_mnist", params=params)
    finally:
        listener.close()

    assert time.monotonic() - started < 60  # the session's own start-up included
    assert f"{url}train-images-idx3-ubyte.gz" in str(caught.value)
