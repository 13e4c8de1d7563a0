"""The fashion_mnist nodes, called directly on generated images."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from pydantic import ValidationError

from linear_nets.engine import ModelConfig, build_model
from linear_nets.engine.losses import cross_entropy, log_sum_exp
from linear_nets.engine.metrics import accuracy
from linear_nets.pipelines.fashion_mnist import nodes
from linear_nets.pipelines.fashion_mnist.nodes import (
    LABELS,
    FashionMnistSourceConfig,
    PreprocessConfig,
    ReportConfig,
    SoftmaxTrainConfig,
    ValidationSplitConfig,
    evaluate_softmax_regression,
    fit_pixel_statistics,
    plot_fashion_mnist_confusion_matrix,
    plot_fashion_mnist_curves,
    plot_fashion_mnist_predictions,
    preprocess_fashion_mnist,
    preprocess_pixels,
    split_fashion_mnist,
    train_softmax_regression,
)
from tests.pipelines.fashion_mnist.fake_data import TinyFashionMNIST, make_tiny_fashion_mnist

PARAMETERS = Path(__file__).resolve().parents[3] / "conf" / "base" / "parameters_fashion_mnist.yml"
FAST = {"device": "cpu", "optimizer": "sgd", "lr": 0.1, "epochs": 3, "batch_size": 64}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyFashionMNIST:
    return make_tiny_fashion_mnist(tmp_path_factory.mktemp("mirror"))


@pytest.fixture(scope="module")
def raw(tiny: TinyFashionMNIST) -> dict[str, torch.Tensor]:
    return {
        "train_images": tiny.train_images,
        "train_labels": tiny.train_labels,
        "test_images": tiny.test_images,
        "test_labels": tiny.test_labels,
    }


@pytest.fixture(scope="module")
def splits(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return split_fashion_mnist(raw, ValidationSplitConfig(val_size=60, seed=0))


def _features(splits, **preprocess: typing.Any) -> tuple[torch.Tensor, ...]:
    return preprocess_fashion_mnist(splits, PreprocessConfig(**preprocess))[:6]


def _defaults() -> dict[str, typing.Any]:
    return yaml.safe_load(PARAMETERS.read_text())["fashion_mnist"]


def test_default_parameters_validate_with_the_issues_defaults():
    params = _defaults()
    FashionMnistSourceConfig.model_validate(params["source"])
    PreprocessConfig.model_validate(params["preprocess"])
    ReportConfig.model_validate(params["report"])
    split = ValidationSplitConfig.model_validate(params["split"])
    assert split == ValidationSplitConfig(val_size=10_000, seed=0)
    assert ModelConfig.model_validate(params["model"]).kind == "linear"
    train = SoftmaxTrainConfig.model_validate(params["train"])
    assert (train.batch_size, train.epochs, train.loss) == (256, 10, "cross_entropy")
    assert params["source"]["mirror"] is None


def test_train_parameters_refuse_a_regression_loss():
    with pytest.raises(ValidationError, match="loss"):
        SoftmaxTrainConfig.model_validate({**FAST, "loss": "mse"})


def test_md5_pins_must_cover_the_four_files():
    with pytest.raises(ValidationError, match="exactly"):
        FashionMnistSourceConfig(md5={"train-images-idx3-ubyte.gz": "0" * 32})
    pins = dict.fromkeys(nodes.FILES, "0" * 32)
    assert FashionMnistSourceConfig(md5=pins).md5 == pins
    with pytest.raises(ValidationError, match="32 lowercase hex"):
        FashionMnistSourceConfig(md5={**pins, nodes.FILES[0]: "xyz"})


def test_every_node_annotation_resolves_so_kedro_validates_the_params():
    """Kedro skips, silently, a node whose type hints cannot be resolved."""
    from linear_nets.pipelines.fashion_mnist import create_pipeline

    for node in create_pipeline().nodes:
        typing.get_type_hints(node.func)


def test_pipeline_nodes_are_named_after_their_functions():
    from linear_nets.pipelines.fashion_mnist import create_pipeline

    pipeline_nodes = create_pipeline().nodes
    assert {node.name for node in pipeline_nodes} == {
        "load_fashion_mnist",
        "split_fashion_mnist",
        "preprocess_fashion_mnist",
        "train_softmax_regression",
        "evaluate_softmax_regression",
        "plot_fashion_mnist_curves",
        "plot_fashion_mnist_confusion_matrix",
        "plot_fashion_mnist_predictions",
        "package_fashion_pyfunc_model",
    }
    assert all(node.name == node.func.__name__ for node in pipeline_nodes)


def test_only_evaluation_reads_the_test_split():
    from linear_nets.pipelines.fashion_mnist import create_pipeline

    readers = {
        node.name
        for node in create_pipeline().nodes
        if {"fashion_mnist_X_test", "fashion_mnist_y_test"} & set(node.inputs)
    }
    assert readers == {"evaluate_softmax_regression"}


def test_load_calls_the_source_with_the_mirror_pins_and_limits():
    calls = []
    pins = dict.fromkeys(nodes.FILES, "0" * 32)

    def source(mirror, md5, limits):
        calls.append((mirror, md5, limits))
        return {}

    params = FashionMnistSourceConfig(
        mirror="http://mirror/", md5=pins, deadline_s=5, max_bytes=1000
    )
    nodes.load_fashion_mnist(source, params)
    ((mirror, md5, limits),) = calls
    assert (mirror, md5) == ("http://mirror/", pins)
    assert (limits.timeout_s, limits.deadline_s, limits.max_bytes) == (30, 5, 1000)
    assert limits.param == "fashion_mnist.source"


def test_the_validation_split_is_seeded_disjoint_and_leaves_the_test_split_alone(raw):
    first = split_fashion_mnist(raw, ValidationSplitConfig(val_size=60, seed=1))
    again = split_fashion_mnist(raw, ValidationSplitConfig(val_size=60, seed=1))
    other = split_fashion_mnist(raw, ValidationSplitConfig(val_size=60, seed=2))

    assert first["val_images"].shape == (60, 28, 28)
    assert first["train_images"].shape == (240, 28, 28)
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not torch.equal(first["val_labels"], other["val_labels"])
    assert first["test_images"] is raw["test_images"]
    # together, the two parts are the training split, each image once
    together = torch.cat([first["train_images"], first["val_images"]]).reshape(300, -1)
    assert sorted(map(bytes, together.numpy())) == sorted(
        map(bytes, raw["train_images"].reshape(300, -1).numpy())
    )


def test_a_validation_split_that_takes_every_image_is_refused(raw):
    with pytest.raises(ValueError, match=r"fashion_mnist\.split\.val_size=300 leaves no training"):
        split_fashion_mnist(raw, ValidationSplitConfig(val_size=300))


def test_preprocessing_without_standardisation_maps_pixels_to_unit_range(splits):
    X_train, y_train, X_val, _, X_test, y_test, statistics = preprocess_fashion_mnist(
        splits, PreprocessConfig(standardize="none")
    )

    assert statistics == {}
    assert X_train.dtype == X_val.dtype == X_test.dtype == torch.float32
    assert X_train.shape == (240, 28, 28)
    assert torch.equal(X_train * 255, splits["train_images"].float())
    assert float(X_test.min()) >= 0.0 and float(X_test.max()) <= 1.0
    assert y_train.dtype == y_test.dtype == torch.int64


@pytest.mark.parametrize("mode", ["global", "per_pixel"])
def test_standardisation_uses_the_training_statistics_only(splits, mode):
    X_train, _, X_val, _, X_test, _, statistics = preprocess_fashion_mnist(
        splits, PreprocessConfig(standardize=mode, gamma=0.5)
    )

    dims = 0 if mode == "per_pixel" else None
    mean = X_train.mean() if dims is None else X_train.mean(dim=dims)
    assert torch.allclose(mean, torch.zeros(()), atol=1e-5)
    assert abs(float(X_test.mean())) < 0.2  # scaled by the training values, not its own
    assert abs(float(X_val.mean())) < 0.2
    assert torch.isfinite(X_train).all() and torch.isfinite(X_test).all()
    assert set(statistics) == {"mean", "std"}


@pytest.mark.parametrize("mode", ["none", "global", "per_pixel"])
def test_preprocessing_raw_pixel_rows_matches_the_pipeline(splits, mode):
    """The features of 784 raw pixel columns equal the pipeline's: one definition, reusable."""
    config = PreprocessConfig(standardize=mode, gamma=0.5)
    X_test, statistics = (
        preprocess_fashion_mnist(splits, config)[4],
        preprocess_fashion_mnist(splits, config)[6],
    )

    rows = preprocess_pixels(splits["test_images"].reshape(-1, 784), config, statistics)
    assert torch.equal(rows, X_test.reshape(-1, 784))
    assert statistics.keys() == fit_pixel_statistics(splits["train_images"], config).keys()


def test_a_constant_pixel_does_not_divide_by_zero():
    images = torch.zeros(4, 28, 28, dtype=torch.uint8)
    images[:, 0, 0] = torch.tensor([0, 10, 20, 30], dtype=torch.uint8)
    config = PreprocessConfig(standardize="per_pixel")

    statistics = fit_pixel_statistics(images, config)
    assert torch.isfinite(preprocess_pixels(images, config, statistics)).all()
    assert torch.isfinite(preprocess_pixels(images + 1, config, statistics)).all()


def softmax(logits: torch.Tensor) -> torch.Tensor:
    """The softmax the scratch cross-entropy implies: exp(logits − log Σ exp(logits))."""
    return torch.exp(logits - log_sum_exp(logits).unsqueeze(1))


def test_scratch_and_library_softmax_agree_on_the_same_batch(splits):
    X, y = _features(splits, standardize="per_pixel")[:2]
    X, y = X[:64], y[:64]
    scratch = build_model("scratch", 784, n_outputs=10, seed=3)
    library = build_model("linear", 784, n_outputs=10, seed=3)

    logits = scratch(X)
    assert torch.allclose(logits, library(X), atol=1e-5)
    loss = cross_entropy(logits, y)
    library_loss = F.cross_entropy(library(X), y)
    assert torch.allclose(loss, library_loss, atol=1e-6)

    loss.backward()
    library_loss.backward()
    W, b = library.coefficients()
    assert torch.allclose(scratch.W.grad, library.net[1].weight.grad.T, atol=1e-6)
    assert torch.allclose(scratch.b.grad, library.net[1].bias.grad, atol=1e-6)
    assert W.shape == (784, 10) and b.shape == (10,)


def test_hand_written_cross_entropy_is_stable_for_huge_logits():
    """exp(1000) overflows float32; shifted by the row maximum it never does."""
    logits = torch.tensor([[1000.0, 0.0, -1000.0], [-1000.0, -999.0, -1000.0]])
    labels = torch.tensor([0, 1])

    assert torch.isinf(torch.exp(logits)).any()
    assert torch.allclose(log_sum_exp(logits), torch.logsumexp(logits, dim=1))
    expected = F.cross_entropy(logits, labels)
    assert torch.allclose(cross_entropy(logits, labels), expected, atol=1e-4)


def test_accuracy_counts_rows_whose_top_logit_is_the_label():
    logits = torch.tensor([[0.1, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, 0.2, 0.1], [5.0, 0.0, 9.0]])
    labels = torch.tensor([1, 0, 2, 2])

    assert float(accuracy(logits, labels)) == pytest.approx(0.75)


def test_evaluation_reports_accuracy_per_class_and_the_confusion_matrix():
    # A "model" that copies the first ten pixels as logits: its predictions are chosen exactly.
    state = build_model("linear", 784, n_outputs=10).state_dict()
    state["net.1.weight"] = torch.eye(10, 784)
    state["net.1.bias"] = torch.zeros(10)
    labels = torch.tensor([0, 0, 1, 1, 2, 9, 9, 9])
    predicted = torch.tensor([0, 1, 1, 1, 2, 9, 9, 0])
    X = F.one_hot(predicted, 784).float().reshape(-1, 28, 28)

    got, matrix, metrics = evaluate_softmax_regression(state, X, labels, ModelConfig(kind="linear"))

    assert torch.equal(got, predicted)
    assert matrix.shape == (10, 10)
    assert matrix[0, 0] == 1 and matrix[0, 1] == 1 and matrix[9, 0] == 1 and matrix[9, 9] == 2
    assert int(matrix.sum()) == 8
    assert metrics["test_accuracy"] == pytest.approx(6 / 8)
    assert metrics["test_accuracy_t_shirt"] == pytest.approx(0.5)
    assert metrics["test_accuracy_trouser"] == pytest.approx(1.0)
    assert metrics["test_accuracy_ankle_boot"] == pytest.approx(2 / 3)
    assert metrics["test_accuracy_dress"] != metrics["test_accuracy_dress"]  # no rows: NaN
    assert len([key for key in metrics if key.startswith("test_accuracy_")]) == 10


@pytest.mark.parametrize("kind", ["scratch", "linear"])
def test_training_is_scored_on_validation_and_the_test_split_once_after(splits, kind):
    X_train, y_train, X_val, y_val, X_test, y_test = _features(splits)

    model, history = train_softmax_regression(
        X_train,
        y_train,
        X_val,
        y_val,
        model=ModelConfig(kind=kind),
        params=SoftmaxTrainConfig(**FAST),
    )

    assert set(history) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 3 for values in history.values())
    assert history["val_accuracy"][-1] > 0.9
    assert all(p.device.type == "cpu" for p in model.parameters())
    _, _, metrics = evaluate_softmax_regression(
        model.state_dict(), X_test, y_test, ModelConfig(kind=kind)
    )
    assert metrics["test_accuracy"] > 0.9
    assert not any(key.startswith("val_") for key in metrics)


def test_scratch_and_linear_models_train_to_the_same_weights(splits):
    X_train, y_train, X_val, y_val = _features(splits)[:4]
    fitted = {
        kind: train_softmax_regression(
            X_train,
            y_train,
            X_val,
            y_val,
            model=ModelConfig(kind=kind),
            params=SoftmaxTrainConfig(**FAST),
        )
        for kind in ("scratch", "linear")
    }
    W_scratch, b_scratch = fitted["scratch"][0].coefficients()
    W_linear, b_linear = fitted["linear"][0].coefficients()

    assert torch.allclose(W_scratch, W_linear, atol=1e-4)
    assert torch.allclose(b_scratch, b_linear, atol=1e-4)


def test_curves_put_loss_and_accuracy_on_separate_labelled_axes(raw):
    history = {
        "train_loss": [0.9, 0.6],
        "val_loss": [0.95, 0.7],
        "train_accuracy": [0.7, 0.8],
        "val_accuracy": [0.68, 0.77],
    }
    curves = plot_fashion_mnist_curves(history, {"test_accuracy": 0.76}, SoftmaxTrainConfig(**FAST))

    loss_axes, accuracy_axes = curves.axes
    assert loss_axes.get_ylabel() == "cross-entropy loss"
    assert accuracy_axes.get_ylabel() == "accuracy"
    assert loss_axes.get_xlabel() == accuracy_axes.get_xlabel() == "epoch"
    assert [line.get_label() for line in loss_axes.lines] == ["training", "validation"]
    assert [list(line.get_ydata()) for line in loss_axes.lines] == [[0.9, 0.6], [0.95, 0.7]]
    labels = [line.get_label() for line in accuracy_axes.lines]
    assert labels == ["training", "validation", "test, scored once: 76.00%"]
    assert "sgd, lr 0.1" in curves.get_suptitle()


def test_the_confusion_matrix_has_class_names_and_a_labelled_colour_bar():
    matrix = torch.diag(torch.arange(1, 11))

    confusion = plot_fashion_mnist_confusion_matrix(matrix)

    heat_map, colour_bar = confusion.axes
    assert [tick.get_text() for tick in heat_map.get_xticklabels()] == list(LABELS)
    assert (heat_map.get_xlabel(), heat_map.get_ylabel()) == ("predicted class", "true class")
    assert colour_bar.get_ylabel() == "test images (count)"
    assert "accuracy 100.00%" in heat_map.get_title()


def test_the_prediction_grid_captions_each_image(raw):
    predicted = raw["test_labels"].clone()
    predicted[1] = (predicted[1] + 1) % 10
    grid = plot_fashion_mnist_predictions(raw, predicted, ReportConfig(n_images=5, columns=3))
    titles = [axes.get_title() for axes in grid.axes if axes.get_title()]
    assert len(titles) == 5
    truth = LABELS[int(raw["test_labels"][0])]
    assert titles[0] == f"{truth} / {truth}"
    wrong = LABELS[int(predicted[1])]
    assert titles[1] == f"{wrong} / {LABELS[int(raw['test_labels'][1])]}"
    assert grid.axes[1].title.get_color() == "red"
