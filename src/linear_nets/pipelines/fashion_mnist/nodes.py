"""Softmax regression on Fashion-MNIST: tensors in, a trained classifier and its report out.

Every node is a pure function of its inputs and parameters. The one that fetches the data calls
the source handle the catalog gives it, so the file and network access stays in the dataset.
Model selection is honest: a seeded validation split is carved out of the 60 000 training
images, the per-epoch curves (and so every choice of preprocessing, schedule or epochs) use it,
and the test split is scored once, by :func:`evaluate_softmax_regression`, at the end.
matplotlib is imported inside the plotting nodes, since ``find_pipelines`` imports this module on
every ``kedro run``; the figures are therefore typed ``Any``, as every annotation here must
resolve for Kedro to validate the ``params:`` inputs.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

import torch
from pydantic import Field, field_validator

from linear_nets.datasets.fashion_mnist import DEFAULT_LIMITS, FILES, FashionMNISTSource
from linear_nets.engine import ModelConfig, TrainConfig, build_model, train
from linear_nets.engine.config import StrictModel
from linear_nets.engine.losses import get_loss
from linear_nets.engine.metrics import accuracy, confusion_matrix, per_class_accuracy
from linear_nets.pipelines.download_limits import DownloadLimitsConfig
from linear_nets.reporting import plot_epoch_curves, training_title
from linear_nets.serving.pyfunc import PyfuncPackage
from linear_nets.tracking.registry import ClassifierRegistryConfig, classification_gate

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


class FashionMnistSourceConfig(DownloadLimitsConfig):
    """Where the four IDX archives come from, their md5 pins and the limits of each download."""

    mirror: str | None = Field(
        None, description="base URL or local directory with the four .gz files; null: torchvision's"
    )
    md5: dict[str, str] | None = Field(
        None, description="expected md5 of each of the four files; null: torchvision's pins"
    )
    deadline_s: float = Field(
        DEFAULT_LIMITS.deadline_s,
        gt=0,
        description="the longest one file's download may take (a read in progress: + timeout_s)",
    )
    max_bytes: int = Field(
        DEFAULT_LIMITS.max_bytes, gt=0, description="the largest file accepted (26.4 MB at most)"
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


class ValidationSplitConfig(StrictModel):
    """The validation images carved out of the training split, and the seed that picks them."""

    val_size: int = Field(10_000, gt=0, description="training images held out for validation")
    seed: int = Field(0, ge=0, description="seed of the permutation that picks them")


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


def load_fashion_mnist(source: FashionMNISTSource, params: FashionMnistSourceConfig) -> Tensors:
    """Fetch (when missing or corrupt) and read both splits, md5-checked.

    Args:
        source: the dataset's handle on ``data/01_raw/fashion_mnist``.
        params: the mirror, md5 pins and download limits.

    Returns:
        uint8 ``train_images``/``test_images`` (n, 28, 28), int64 ``train_labels``/``test_labels``.
    """
    return source(mirror=params.mirror, md5=params.md5, limits=params.limits(DEFAULT_LIMITS.param))


def split_fashion_mnist(raw: Tensors, params: ValidationSplitConfig) -> Tensors:
    """Carve a seeded validation split out of the training images; the test split is untouched.

    Args:
        raw: the output of :func:`load_fashion_mnist`.
        params: how many training images to hold out, and the seed that picks them.

    Returns:
        ``train_*``, ``val_*`` and ``test_*`` images (uint8) and labels (int64).

    Raises:
        ValueError: ``val_size`` leaves no training image, naming the parameter.
    """
    n = len(raw["train_images"])
    if params.val_size >= n:
        raise ValueError(
            f"fashion_mnist.split.val_size={params.val_size} leaves no training image: "
            f"the training split holds {n}"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(params.seed))
    val, train_rows = order[: params.val_size], order[params.val_size :]
    return {
        "train_images": raw["train_images"][train_rows],
        "train_labels": raw["train_labels"][train_rows],
        "val_images": raw["train_images"][val],
        "val_labels": raw["train_labels"][val],
        "test_images": raw["test_images"],
        "test_labels": raw["test_labels"],
    }


def fit_pixel_statistics(pixels: torch.Tensor, params: PreprocessConfig) -> Tensors:
    """The standardisation statistics of ``params``, fitted on training pixels only.

    Args:
        pixels: uint8 training images, (n, 28, 28) or (n, 784).
        params: gamma and the kind of standardisation.

    Returns:
        ``{"mean": …, "std": …}`` (one value, or one per pixel), or ``{}`` for ``none``.
    """
    if params.standardize == "none":
        return {}
    X = _unit_pixels(pixels, params.gamma)
    if params.standardize == "per_pixel":
        mean, std = X.mean(dim=0), X.std(dim=0)
    else:
        mean, std = X.mean(), X.std()
    # A pixel that is black in every training image has no spread to divide by.
    return {"mean": mean, "std": std.clamp_min(1.0 / PIXEL_MAX)}


def preprocess_pixels(
    pixels: torch.Tensor, params: PreprocessConfig, statistics: Tensors
) -> torch.Tensor:
    """Raw 0-255 pixels to model features: / 255, ** gamma, then standardised by ``statistics``.

    The one definition of the features, used for training, validation, test and any model that
    takes raw pixels.

    Args:
        pixels: uint8 (or integer-valued) images, (n, 28, 28) or (n, 784).
        params: gamma and the kind of standardisation.
        statistics: the output of :func:`fit_pixel_statistics` (``{}`` for ``none``).

    Returns:
        float32 features of the same shape.
    """
    X = _unit_pixels(pixels, params.gamma)
    if params.standardize == "none":
        return X
    mean, std = statistics["mean"], statistics["std"]
    if mean.dim():  # per pixel: match (n, 784) as well as (n, 28, 28)
        mean, std = mean.reshape(X.shape[1:]), std.reshape(X.shape[1:])
    return X.sub_(mean).div_(std)


def _unit_pixels(pixels: torch.Tensor, gamma: float) -> torch.Tensor:
    # in place on the fresh float copy: a second 60 000-image tensor costs more than the maths
    X = pixels.to(torch.float32, copy=True).div_(PIXEL_MAX)
    return X.pow_(gamma) if gamma != 1.0 else X


def preprocess_fashion_mnist(splits: Tensors, params: PreprocessConfig) -> tuple[torch.Tensor, ...]:
    """Features for the three splits, with statistics fitted on the training split only.

    Args:
        splits: the output of :func:`split_fashion_mnist`.
        params: gamma and the standardisation.

    Returns:
        Training, validation and test images (float32 (n, 28, 28)) each followed by its labels,
        then the fitted statistics (``{}`` without standardisation).
    """
    statistics = fit_pixel_statistics(splits["train_images"], params)
    outputs: list[Any] = []
    for split in ("train", "val", "test"):
        outputs += [
            preprocess_pixels(splits[f"{split}_images"], params, statistics),
            splits[f"{split}_labels"].long(),
        ]
    return (*outputs, statistics)


def train_softmax_regression(
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_val: torch.Tensor,
    y_val: torch.Tensor,
    *,
    model: ModelConfig,
    params: SoftmaxTrainConfig,
) -> tuple[torch.nn.Module, Metrics]:
    """Fit a softmax classifier with the shared engine, scoring the validation split each epoch.

    Args:
        X_train, y_train: training images and labels.
        X_val, y_val: validation images and labels (never the test split).
        model: ``scratch`` or ``linear``.
        params: device, optimizer, learning rate, epochs, batch size and seed.

    Returns:
        The trained model on the CPU, and the history ``train_loss``, ``train_accuracy``,
        ``val_loss``, ``val_accuracy`` (one value per epoch).
    """
    result = train(
        model.kind,
        X_train,
        y_train,
        params,
        n_classes=N_CLASSES,
        val=(X_val, y_val),
        metrics={"accuracy": accuracy},
        name="fashion_mnist.train",
    )
    logger.info(
        "Validation accuracy %.4f after %d epochs (%.2f s on %s)",
        result.history["val_accuracy"][-1],
        params.epochs,
        result.seconds,
        result.device,
    )
    return result.model.cpu(), result.history


@torch.no_grad()
def evaluate_softmax_regression(
    state_dict: dict[str, torch.Tensor],
    X_test: torch.Tensor,
    y_test: torch.Tensor,
    model: ModelConfig,
) -> tuple[torch.Tensor, torch.Tensor, Metrics]:
    """Score the persisted model on the test split: the one time the test split is used.

    Args:
        state_dict: the trained parameters, as loaded from the catalog.
        X_test, y_test: test images and labels.
        model: the kind the parameters belong to.

    Returns:
        The predicted labels, the confusion matrix (true rows, predicted columns) and
        ``test_accuracy``, ``test_loss`` and ``test_accuracy_<class>`` per class.
    """
    classifier = build_model(model.kind, X_test[0].numel(), n_outputs=N_CLASSES)
    classifier.load_state_dict(state_dict)
    logits = classifier.eval()(X_test)
    predicted = logits.argmax(dim=1)
    matrix = confusion_matrix(y_test, predicted, N_CLASSES)
    loss = get_loss("cross_entropy", scratch=getattr(classifier, "scratch", False))
    metrics: Metrics = {
        "test_accuracy": float(accuracy(logits, y_test)),
        "test_loss": float(loss(logits, y_test)),
    }
    for label, value in zip(LABELS, per_class_accuracy(matrix).tolist(), strict=True):
        metrics[f"test_accuracy_{_slug(label)}"] = value
    logger.info("Test accuracy %.4f (scored once, after training)", metrics["test_accuracy"])
    return predicted, matrix, metrics


def plot_fashion_mnist_curves(
    history: Metrics, test_metrics: Metrics, params: SoftmaxTrainConfig
) -> Any:
    """Loss and accuracy per epoch on training and validation, side by side.

    Args:
        history: per-epoch ``train_loss``, ``val_loss``, ``train_accuracy``, ``val_accuracy``.
        test_metrics: the one test score, drawn as a single point after the last epoch.
        params: the training settings, shown in the title.

    Returns:
        A matplotlib figure: cross-entropy on the left axes, accuracy on the right.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, metric, ylabel in (
        (loss_axes, "loss", "cross-entropy loss"),
        (accuracy_axes, "accuracy", "accuracy"),
    ):
        plot_epoch_curves(
            {"training": history[f"train_{metric}"], "validation": history[f"val_{metric}"]},
            title=metric,
            ylabel=ylabel,
            log_scale=False,
            axes=axes,
        )
    test = float(test_metrics["test_accuracy"])  # type: ignore[arg-type]
    accuracy_axes.plot(
        [len(history["val_accuracy"])],
        [test],
        "k*",
        markersize=10,
        label=f"test, scored once: {test:.2%}",
    )
    accuracy_axes.yaxis.set_major_formatter("{x:.0%}")
    accuracy_axes.legend(loc="lower right")
    figure.suptitle(f"Fashion-MNIST softmax regression: {training_title(params)}")
    return figure


def plot_fashion_mnist_confusion_matrix(matrix: torch.Tensor) -> Any:
    """Counts of true (rows) against predicted (columns) test classes, labelled with class names.

    Args:
        matrix: the (10, 10) confusion matrix.

    Returns:
        A matplotlib heat map with each count written in its cell and a labelled colour bar.
    """
    from matplotlib.figure import Figure

    counts = matrix.cpu().numpy()
    figure = Figure(figsize=(8, 7), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes, shrink=0.8, label="test images (count)")
    ticks = range(N_CLASSES)
    axes.set_xticks(ticks, LABELS, rotation=45, ha="right")
    axes.set_yticks(ticks, LABELS)
    share = counts.trace() / max(counts.sum(), 1)
    axes.set(
        xlabel="predicted class",
        ylabel="true class",
        title=f"Fashion-MNIST test confusion matrix (accuracy {share:.2%})",
    )
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


def plot_fashion_mnist_predictions(
    raw: Tensors, predicted: torch.Tensor, params: ReportConfig
) -> Any:
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
        axes.set(xticks=[], yticks=[])  # hidden ticks are still laid out: half the drawing time
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


def package_fashion_pyfunc_model(
    state_dict: dict[str, torch.Tensor],
    splits: Tensors,
    statistics: Tensors,
    X_train: torch.Tensor,
    history: Metrics,
    *,
    model: ModelConfig,
    preprocess: PreprocessConfig,
    registry: ClassifierRegistryConfig,
) -> PyfuncPackage:
    """Bundle the classifier with its pixel transform as a models-from-code pyfunc model that
    takes raw 0–255 pixels (784 columns ``pixel0`` … ``pixel783``), with the gate's verdict.

    Args:
        state_dict: the trained parameters.
        splits: the uint8 images of each split (the output of :func:`split_fashion_mnist`).
        statistics: the standardisation fitted on the training split (``{}`` without one).
        X_train: the training features, which the stored transform must reproduce.
        history: the per-epoch ``train_loss`` and the champion metric (validation).
        model: the kind the parameters belong to.
        preprocess: gamma and standardisation used in training.
        registry: the gate and the champion metric.

    Returns:
        The ``PyfuncPackage`` that ``MlflowPyfuncModelDataset`` logs, registers and maybe
        promotes.

    Raises:
        ValueError: the stored transform does not reproduce the training features.
    """
    import pandas as pd

    from linear_nets.serving.classifier import PixelClassifier, pixel_transform

    images = splits["train_images"]
    classifier = build_model(model.kind, images[0].numel(), n_outputs=N_CLASSES)
    classifier.load_state_dict(state_dict)
    weight, bias = classifier.coefficients()
    coefficients = {"weight": weight.clone(), "bias": bias.clone()}
    transform = pixel_transform(statistics, preprocess.gamma, images[0].numel(), list(LABELS))

    def rows(batch: torch.Tensor) -> pd.DataFrame:
        return pd.DataFrame(batch.reshape(len(batch), -1).numpy(), columns=transform["columns"])

    sample = slice(0, 256)
    served = PixelClassifier(transform, coefficients).features(rows(images[sample]))
    trained = X_train[sample].reshape(len(served), -1).double().numpy()
    if abs(served - trained).max() > 1e-4:
        raise ValueError("the served pixel transform does not reproduce the training features")
    return PyfuncPackage(
        model_code="classifier_model.py",
        weights=coefficients,
        config=transform,
        input_example=rows(splits["test_images"][:2]),
        output_type="long",
        candidate=classification_gate(history, registry, name="fashion_mnist.registry"),
    )
