"""Softmax regression on Fashion-MNIST: tensors in, a trained classifier and its report out.

Every node is a pure function of its inputs and parameters. The one that fetches the data calls
the source handle the catalog gives it, so the file and network access stays in the dataset.
matplotlib is imported inside the plotting nodes (and torchvision only by the dataset), since
``find_pipelines`` imports this module on every ``kedro run``; the figures are therefore typed
``Any``, as every annotation here must resolve for Kedro to validate the ``params:`` inputs.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

import torch
from pydantic import Field, field_validator

from linear_nets.datasets.fashion_mnist import FILES, FashionMNISTSource
from linear_nets.engine import ModelConfig, TrainConfig, build_model, train
from linear_nets.engine.config import StrictModel
from linear_nets.engine.losses import get_loss
from linear_nets.engine.metrics import accuracy, confusion_matrix, per_class_accuracy

logger = logging.getLogger(__name__)

LABELS = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
"""The ten classes, by label index, as the tutorials spell them."""
N_CLASSES = len(LABELS)
PIXEL_MAX = 255.0
_MD5 = re.compile(r"^[0-9a-f]{32}$")

Tensors = dict[str, torch.Tensor]
Metrics = dict[str, float | list[float]]


class SourceConfig(StrictModel):
    """Where the four IDX files come from."""

    mirror: str | None = Field(
        None, description="base URL or local directory with the four .gz files; null: torchvision's"
    )
    md5: dict[str, str] | None = Field(
        None, description="expected md5 of each of the four files; null: torchvision's pins"
    )

    @field_validator("md5")
    @classmethod
    def _four_pins(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if set(value) != set(FILES):
            raise ValueError(f"md5 must pin exactly {list(FILES)}, got {sorted(value)}")
        for name, digest in value.items():
            if not _MD5.match(digest):
                raise ValueError(f"md5 of {name} must be 32 lowercase hex digits, got {digest!r}")
        return value


class PreprocessConfig(StrictModel):
    """How pixels become features: to [0, 1], to the power ``gamma``, optionally standardised."""

    gamma: float = Field(
        1.0,
        gt=0,
        description="exponent applied to the [0, 1] pixels; 1 keeps them linear, 0.5 (square "
        "root) spreads the dark and mid tones where the garments differ",
    )
    standardize: Literal["none", "global", "per_pixel"] = Field(
        "none",
        description="none; global: one training mean and std; per_pixel: one per pixel",
    )


class SoftmaxTrainConfig(TrainConfig):
    """The engine's training settings, with the tutorial's defaults (SGD, lr 0.1, batch 256,
    10 epochs) and the one loss a classifier takes."""

    lr: float = Field(0.1, gt=0, description="learning rate")
    epochs: int = Field(10, gt=0)
    batch_size: int | None = Field(256, gt=0, description="null trains on the full batch")
    loss: Literal["cross_entropy"] = "cross_entropy"


class ReportConfig(StrictModel):
    """The grid of captioned test images."""

    n_images: int = Field(18, gt=0, le=100, description="how many test images the grid shows")
    columns: int = Field(6, gt=0)


def load_fashion_mnist(source: FashionMNISTSource, params: SourceConfig) -> Tensors:
    """Fetch (when missing) and read both splits.

    Args:
        source: the dataset's handle on ``data/01_raw/fashion_mnist``.
        params: the mirror and md5 pins.

    Returns:
        uint8 ``train_images``/``test_images`` (n, 28, 28), int64 ``train_labels``/``test_labels``.
    """
    return source(mirror=params.mirror, md5=params.md5)


def scale_images(
    raw: Tensors, params: PreprocessConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Turn uint8 pixels into float features in [0, 1] (to the power ``gamma``), then standardise.

    Args:
        raw: the output of :func:`load_fashion_mnist`.
        params: the standardisation.

    Returns:
        Training images, training labels, test images, test labels; images float32 (n, 28, 28).
    """
    X_train = raw["train_images"].float() / PIXEL_MAX
    X_test = raw["test_images"].float() / PIXEL_MAX
    if params.gamma != 1.0:
        X_train, X_test = X_train.pow(params.gamma), X_test.pow(params.gamma)
    if params.standardize != "none":
        if params.standardize == "per_pixel":
            mean, std = X_train.mean(dim=0), X_train.std(dim=0)
        else:
            mean, std = X_train.mean(), X_train.std()
        # A pixel that is black in every training image has no spread to divide by.
        std = std.clamp_min(1.0 / PIXEL_MAX)
        X_train = (X_train - mean) / std
        X_test = (X_test - mean) / std
    return X_train, raw["train_labels"].long(), X_test, raw["test_labels"].long()


def train_softmax_regression(
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    model: ModelConfig,
    params: SoftmaxTrainConfig,
) -> tuple[torch.nn.Module, Metrics]:
    """Fit a softmax classifier with the shared engine, scoring the test split after each epoch.

    Args:
        X_train, y_train: training images and labels.
        X_test, y_test: test images and labels.
        model: ``scratch`` or ``linear``.
        params: device, optimizer, learning rate, epochs, batch size and seed.

    Returns:
        The trained model on the CPU, and the history ``train_loss``, ``train_accuracy``,
        ``test_loss``, ``test_accuracy`` (one value per epoch).
    """
    result = train(
        model.kind,
        X_train,
        y_train,
        params,
        n_classes=N_CLASSES,
        val=(X_test, y_test),
        metrics={"accuracy": accuracy},
        name="fashion_mnist.train",
    )
    history = {key.replace("val_", "test_", 1): values for key, values in result.history.items()}
    logger.info(
        "Test accuracy %.4f after %d epochs (%.2f s on %s)",
        history["test_accuracy"][-1],
        params.epochs,
        result.seconds,
        result.device,
    )
    return result.model.cpu(), history


@torch.no_grad()
def evaluate_softmax_regression(
    state_dict: dict[str, torch.Tensor],
    X_test: torch.Tensor,
    y_test: torch.Tensor,
    model: ModelConfig,
) -> tuple[torch.Tensor, torch.Tensor, Metrics]:
    """Score the persisted model on the test split.

    Args:
        state_dict: the trained parameters, as loaded from the catalog.
        X_test, y_test: test images and labels.
        model: the kind the parameters belong to.

    Returns:
        The predicted labels, the confusion matrix (true rows, predicted columns) and
        ``final_test_accuracy``, ``final_test_loss`` and ``test_accuracy_<class>`` per class.
    """
    classifier = build_model(model.kind, X_test[0].numel(), n_outputs=N_CLASSES)
    classifier.load_state_dict(state_dict)
    logits = classifier.eval()(X_test)
    predicted = logits.argmax(dim=1)
    matrix = confusion_matrix(y_test, predicted, N_CLASSES)
    loss = get_loss("cross_entropy", scratch=getattr(classifier, "scratch", False))
    metrics: Metrics = {
        "final_test_accuracy": float(accuracy(logits, y_test)),
        "final_test_loss": float(loss(logits, y_test)),
    }
    for label, value in zip(LABELS, per_class_accuracy(matrix).tolist(), strict=True):
        metrics[f"test_accuracy_{_slug(label)}"] = value
    return predicted, matrix, metrics


def plot_training_curves(history: Metrics) -> Any:
    """The tutorial's animated training plot, drawn once at the end.

    Args:
        history: per-epoch ``train_loss``, ``train_accuracy`` and ``test_accuracy``.

    Returns:
        A matplotlib figure with the three curves against the epoch.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    for key, style in (("train_loss", "-"), ("train_accuracy", "--"), ("test_accuracy", "-.")):
        values = history[key]
        axes.plot(range(1, len(values) + 1), values, style, label=key.replace("_", " "))
    axes.set(xlabel="epoch", title="Fashion-MNIST softmax regression")
    axes.grid(alpha=0.3)
    axes.legend()
    return figure


def plot_confusion_matrix(matrix: torch.Tensor) -> Any:
    """Counts of true (rows) against predicted (columns) classes, labelled with class names.

    Args:
        matrix: the (10, 10) confusion matrix.

    Returns:
        A matplotlib heat map with each count written in its cell.
    """
    from matplotlib.figure import Figure

    counts = matrix.cpu().numpy()
    figure = Figure(figsize=(8, 7), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes, shrink=0.8)
    ticks = range(N_CLASSES)
    axes.set_xticks(ticks, LABELS, rotation=45, ha="right")
    axes.set_yticks(ticks, LABELS)
    axes.set(xlabel="predicted", ylabel="true", title="Fashion-MNIST test confusion matrix")
    threshold = counts.max() / 2
    for row in ticks:
        for column in ticks:
            colour = "white" if counts[row, column] > threshold else "black"
            axes.text(
                column,
                row,
                int(counts[row, column]),
                ha="center",
                va="center",
                fontsize=7,
                color=colour,
            )
    return figure


def plot_test_predictions(raw: Tensors, predicted: torch.Tensor, params: ReportConfig) -> Any:
    """The first test images, each captioned "predicted / true"; mistakes in red.

    Args:
        raw: the uint8 images and labels, shown as they were downloaded.
        predicted: the predicted label of every test image.
        params: how many images and columns.

    Returns:
        A matplotlib figure: the grid of captioned images.
    """
    from matplotlib.figure import Figure

    images, labels = raw["test_images"], raw["test_labels"]
    count = min(params.n_images, len(images))
    columns = min(params.columns, count)
    rows = -(-count // columns)
    figure = Figure(figsize=(1.6 * columns, 1.9 * rows), layout="constrained")
    for index, axes in enumerate(figure.subplots(rows, columns, squeeze=False).flat):
        axes.set_axis_off()
        if index >= count:
            continue
        guess, truth = int(predicted[index]), int(labels[index])
        axes.imshow(images[index].numpy(), cmap="gray_r", vmin=0, vmax=PIXEL_MAX)
        axes.set_title(
            f"{LABELS[guess]} / {LABELS[truth]}",
            fontsize=8,
            color="black" if guess == truth else "red",
        )
    figure.suptitle("predicted / true")
    return figure


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
