"""Figures the pipelines share: the per-epoch curve every training pipeline draws.

matplotlib is imported inside the functions: ``find_pipelines`` imports every pipeline module,
and so this one, on each ``kedro run``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from linear_nets.engine.config import TrainConfig


def training_title(config: TrainConfig) -> str:
    """The run's configuration in a few words: optimizer, learning rate, batch and epochs.

    Args:
        config: the training settings.

    Returns:
        e.g. ``"sgd, lr 0.1, full batch, 500 epochs"`` (the schedule when it is not constant).
    """
    schedule = "" if config.lr_schedule == "constant" else f" ({config.lr_schedule})"
    batch = f"batch {config.batch_size}" if config.batch_size else "full batch"
    return f"{config.optimizer}, lr {config.lr:g}{schedule}, {batch}, {config.epochs} epochs"


def plot_epoch_curves(
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    ylabel: str = "loss",
    optimum: tuple[float, str] | None = None,
    log_scale: bool = True,
    first_epoch: int = 1,
    axes: Axes | None = None,
) -> Figure:
    """One line per series against the epoch, optionally with a dashed optimum line.

    Args:
        series: label → one value per epoch (an empty series is left out).
        title: the axes' title, e.g. the run's configuration (:func:`training_title`).
        ylabel: what the values are.
        optimum: ``(value, label)`` of a horizontal dashed line, e.g. the closed-form optimum.
        log_scale: a logarithmic value axis.
        first_epoch: the epoch of each series' first value (0 when it starts before training).
        axes: draw on these axes (e.g. one panel of a larger figure) instead of a new figure.

    Returns:
        The figure drawn on.
    """
    if axes is None:
        from matplotlib.figure import Figure

        axes = Figure(figsize=(6, 4), layout="constrained").subplots()
    markers = "os^vD"
    for index, (label, values) in enumerate((k, v) for k, v in series.items() if len(v)):
        epochs = range(first_epoch, first_epoch + len(values))
        marker = markers[index % len(markers)] if len(values) <= 50 else None
        axes.plot(epochs, list(values), marker=marker, markersize=3, label=label)
    if optimum is not None:
        value, label = optimum
        axes.axhline(value, color="black", linestyle="--", linewidth=1, label=label)
    axes.set(xlabel="epoch", ylabel=ylabel, title=title)
    if log_scale:
        axes.set_yscale("log")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    axes.legend()
    figure: Any = axes.figure
    return figure
