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
from linear_nets.engine.losses import cross_entropy, log_sum_exp, softmax
from linear_nets.engine.metrics import accuracy
from linear_nets.pipelines.fashion_mnist import nodes
from linear_nets.pipelines.fashion_mnist.nodes import (
    LABELS,
    PreprocessConfig,
    ReportConfig,
    SoftmaxTrainConfig,
    SourceConfig,
    evaluate_softmax_regression,
    plot_confusion_matrix,
    plot_test_predictions,
    plot_training_curves,
    scale_images,
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


def _defaults() -> dict[str, typing.Any]:
    return yaml.safe_load(PARAMETERS.read_text())["fashion_mnist"]


def test_default_parameters_validate_with_the_issues_defaults():
    params = _defaults()
    SourceConfig.model_validate(params["source"])
    PreprocessConfig.model_validate(params["preprocess"])
    ReportConfig.model_validate(params["report"])
    assert ModelConfig.model_validate(params["model"]).kind == "linear"
    train = SoftmaxTrainConfig.model_validate(params["train"])
    assert (train.batch_size, train.epochs, train.loss) == (256, 10, "cross_entropy")
    assert params["source"]["mirror"] is None


def test_train_parameters_refuse_a_regression_loss():
    with pytest.raises(ValidationError, match="loss"):
        SoftmaxTrainConfig.model_validate({**FAST, "loss": "mse"})


def test_md5_pins_must_cover_the_four_files():
    with pytest.raises(ValidationError, match="exactly"):
        SourceConfig(md5={"train-images-idx3-ubyte.gz": "0" * 32})
    pins = dict.fromkeys(nodes.FILES, "0" * 32)
    assert SourceConfig(md5=pins).md5 == pins
    with pytest.raises(ValidationError, match="32 lowercase hex"):
        SourceConfig(md5={**pins, nodes.FILES[0]: "xyz"})


def test_every_node_annotation_resolves_so_kedro_validates_the_params():
    """Kedro skips, silently, a node whose type hints cannot be resolved."""
    from linear_nets.pipelines.fashion_mnist import create_pipeline

    for node in create_pipeline().nodes:
        typing.get_type_hints(node.func)


def test_pipeline_nodes_are_named_in_order():
    from linear_nets.pipelines.fashion_mnist import create_pipeline

    assert [node.name for node in create_pipeline().nodes] == [
        "load_fashion_mnist",
        "scale_fashion_mnist_images",
        "train_softmax_regression",
        "evaluate_softmax_regression",
        "plot_fashion_mnist_training_curves",
        "plot_fashion_mnist_confusion_matrix",
        "plot_fashion_mnist_test_predictions",
    ]


def test_load_calls_the_source_with_the_mirror_and_pins():
    calls = []
    pins = dict.fromkeys(nodes.FILES, "0" * 32)

    def source(mirror, md5):
        calls.append((mirror, md5))
        return {}

    nodes.load_fashion_mnist(source, SourceConfig(mirror="http://mirror/", md5=pins))
    assert calls == [("http://mirror/", pins)]


def test_scaling_without_standardisation_maps_pixels_to_unit_range(raw):
    X_train, y_train, X_test, y_test = scale_images(raw, PreprocessConfig(standardize="none"))

    assert X_train.dtype == X_test.dtype == torch.float32
    assert X_train.shape == (300, 28, 28)
    assert torch.equal(X_train * 255, raw["train_images"].float())
    assert float(X_test.min()) >= 0.0 and float(X_test.max()) <= 1.0
    assert y_train.dtype == y_test.dtype == torch.int64


@pytest.mark.parametrize("mode", ["global", "per_pixel"])
def test_standardisation_uses_the_training_statistics(raw, mode):
    X_train, _, X_test, _ = scale_images(raw, PreprocessConfig(standardize=mode))

    dims = 0 if mode == "per_pixel" else None
    mean = X_train.mean() if dims is None else X_train.mean(dim=dims)
    assert torch.allclose(mean, torch.zeros(()), atol=1e-5)
    assert abs(float(X_test.mean())) < 0.2  # the test split is scaled by the training values
    assert torch.isfinite(X_train).all() and torch.isfinite(X_test).all()


def test_a_constant_pixel_does_not_divide_by_zero():
    images = torch.zeros(4, 28, 28, dtype=torch.uint8)
    images[:, 0, 0] = torch.tensor([0, 10, 20, 30], dtype=torch.uint8)
    raw = {
        "train_images": images,
        "test_images": images + 1,
        "train_labels": torch.zeros(4, dtype=torch.int64),
        "test_labels": torch.zeros(4, dtype=torch.int64),
    }

    X_train, _, X_test, _ = scale_images(raw, PreprocessConfig(standardize="per_pixel"))
    assert torch.isfinite(X_train).all() and torch.isfinite(X_test).all()


def test_scratch_and_library_softmax_agree_on_the_same_batch(raw):
    X, _, _, _ = scale_images(raw, PreprocessConfig(standardize="per_pixel"))
    X, y = X[:64], raw["train_labels"][:64]
    scratch = build_model("scratch", 784, n_outputs=10, seed=3)
    library = build_model("linear", 784, n_outputs=10, seed=3)

    logits = scratch(X)
    assert torch.allclose(logits, library(X), atol=1e-5)
    assert torch.allclose(softmax(logits), torch.softmax(logits, dim=1), atol=1e-6)
    loss = cross_entropy(logits, y)
    library_loss = F.cross_entropy(library(X), y)
    assert torch.allclose(loss, library_loss, atol=1e-6)

    loss.backward()
    library_loss.backward()
    W, b = library.coefficients()
    assert torch.allclose(scratch.W.grad, library.net[1].weight.grad.T, atol=1e-6)
    assert torch.allclose(scratch.b.grad, library.net[1].bias.grad, atol=1e-6)
    assert W.shape == (784, 10) and b.shape == (10,)


def test_hand_written_softmax_is_stable_for_huge_logits():
    """exp(1000) overflows float32; shifted by the row maximum it never does."""
    logits = torch.tensor([[1000.0, 0.0, -1000.0], [-1000.0, -999.0, -1000.0]])
    labels = torch.tensor([0, 1])

    assert torch.isinf(torch.exp(logits)).any()
    assert torch.isfinite(softmax(logits)).all()
    assert torch.allclose(softmax(logits), torch.softmax(logits, dim=1))
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
    assert metrics["final_test_accuracy"] == pytest.approx(6 / 8)
    assert metrics["test_accuracy_t_shirt"] == pytest.approx(0.5)
    assert metrics["test_accuracy_trouser"] == pytest.approx(1.0)
    assert metrics["test_accuracy_ankle_boot"] == pytest.approx(2 / 3)
    assert metrics["test_accuracy_dress"] != metrics["test_accuracy_dress"]  # no rows: NaN
    assert len([key for key in metrics if key.startswith("test_accuracy_")]) == 10


@pytest.mark.parametrize("kind", ["scratch", "linear"])
def test_training_learns_the_tiny_set_and_records_per_epoch_history(raw, kind):
    X_train, y_train, X_test, y_test = scale_images(raw, PreprocessConfig())

    model, history = train_softmax_regression(
        X_train,
        y_train,
        X_test,
        y_test,
        model=ModelConfig(kind=kind),
        params=SoftmaxTrainConfig(**FAST),
    )

    assert set(history) == {"train_loss", "train_accuracy", "test_loss", "test_accuracy"}
    assert all(len(values) == 3 for values in history.values())
    assert history["test_accuracy"][-1] > 0.9
    assert all(p.device.type == "cpu" for p in model.parameters())
    _, _, metrics = evaluate_softmax_regression(
        model.state_dict(), X_test, y_test, ModelConfig(kind=kind)
    )
    assert metrics["final_test_accuracy"] == pytest.approx(history["test_accuracy"][-1])


def test_scratch_and_linear_models_train_to_the_same_weights(raw):
    X_train, y_train, X_test, y_test = scale_images(raw, PreprocessConfig())
    fitted = {
        kind: train_softmax_regression(
            X_train,
            y_train,
            X_test,
            y_test,
            model=ModelConfig(kind=kind),
            params=SoftmaxTrainConfig(**FAST),
        )
        for kind in ("scratch", "linear")
    }
    W_scratch, b_scratch = fitted["scratch"][0].coefficients()
    W_linear, b_linear = fitted["linear"][0].coefficients()

    assert torch.allclose(W_scratch, W_linear, atol=1e-4)
    assert torch.allclose(b_scratch, b_linear, atol=1e-4)


def test_plots_are_figures_with_class_names_and_captions(raw):
    history = {"train_loss": [0.9, 0.6], "train_accuracy": [0.7, 0.8], "test_accuracy": [0.7, 0.8]}
    curves = plot_training_curves(history)
    assert [line.get_label() for line in curves.axes[0].lines] == [
        "train loss",
        "train accuracy",
        "test accuracy",
    ]

    matrix = torch.diag(torch.arange(1, 11))
    confusion = plot_confusion_matrix(matrix)
    assert [tick.get_text() for tick in confusion.axes[0].get_xticklabels()] == list(LABELS)

    predicted = raw["test_labels"].clone()
    predicted[1] = (predicted[1] + 1) % 10
    grid = plot_test_predictions(raw, predicted, ReportConfig(n_images=5, columns=3))
    titles = [axes.get_title() for axes in grid.axes if axes.get_title()]
    assert len(titles) == 5
    truth = LABELS[int(raw["test_labels"][0])]
    assert titles[0] == f"{truth} / {truth}"
    wrong = LABELS[int(predicted[1])]
    assert titles[1] == f"{wrong} / {LABELS[int(raw['test_labels'][1])]}"
    assert grid.axes[1].title.get_color() == "red"
