"""The fit loop: the only training loop in the project."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from linear_nets.engine.batching import Batches
from linear_nets.engine.config import TrainConfig
from linear_nets.engine.devices import resolve_device
from linear_nets.engine.losses import get_loss
from linear_nets.engine.models import build_model
from linear_nets.engine.optim import build_optimizer, cosine_lr, set_lr

logger = logging.getLogger(__name__)

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
DIVERGENCE_FACTOR = 1e4
"""An epoch whose loss exceeds the first epoch's by this factor is taken as divergence."""


class TrainingDivergedError(RuntimeError):
    """The loss became non-finite or exploded: the learning rate is too high."""


@dataclass(frozen=True)
class FitResult:
    """A trained model (on the training device), its per-epoch history and the time taken."""

    model: nn.Module
    history: dict[str, list[float]]
    device: torch.device
    seconds: float

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The trained parameters, copied to the CPU for saving."""
        return {key: value.detach().cpu() for key, value in self.model.state_dict().items()}


def train(
    kind: str,
    X: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    n_classes: int | None = None,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    metrics: Mapping[str, Metric] | None = None,
    name: str = "train",
) -> FitResult:
    """Build a ``kind`` model for ``X`` (seeded by ``config.seed``) and fit it; see :func:`fit`."""
    n_features = X[0].numel()
    model = build_model(kind, n_features, n_outputs=n_classes, seed=config.seed)
    return fit(model, X, y, config, val=val, metrics=metrics, name=name)


def fit(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    metrics: Mapping[str, Metric] | None = None,
    name: str = "train",
) -> FitResult:
    """Fit ``model`` to ``(X, y)`` with ``config`` and record a per-epoch history.

    The history holds ``train_loss`` (the mean minibatch loss of the epoch), ``val_loss`` when
    ``val`` is given, and ``train_<metric>`` / ``val_<metric>`` for each entry of ``metrics``.

    Args:
        model: the model; a ``scratch`` model is paired with the hand-written loss.
        X, y: training data; moved once to the training device.
        config: device, optimizer, learning rate and its schedule, epochs, batch size, loss, seed.
        val: optional held-out data, evaluated after every epoch.
        metrics: extra per-epoch metrics, each ``fn(outputs, targets) -> 0-d tensor``.
        name: parameter prefix used in messages, e.g. ``boston.train``.

    Raises:
        TrainingDivergedError: if the loss becomes non-finite or explodes.
        DeviceError: if ``config.device`` is not available.
    """
    metrics = dict(metrics or {})
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    model = model.to(device)
    batches = Batches(X.to(device), y.to(device), config.batch_size, seed=config.seed)
    if val is not None:
        val = (val[0].to(device), val[1].to(device))
    loss_fn = get_loss(config.loss, scratch=getattr(model, "scratch", False))
    optimizer = build_optimizer(config.optimizer, model.parameters(), config.lr)

    history: dict[str, list[float]] = {"train_loss": []}
    logger.info(
        "Training %s on %s: %d rows, %s optimizer, lr=%g, %d epochs, batch size %s",
        type(model).__name__,
        device,
        batches.n,
        config.optimizer,
        config.lr,
        config.epochs,
        config.batch_size or "full",
    )
    started = time.perf_counter()
    first_loss: float | None = None
    step, total_steps = 0, config.epochs * len(batches)
    with _progress(name) as progress:
        task = progress.add_task(name, total=config.epochs, loss=float("nan"))
        for epoch in range(1, config.epochs + 1):
            model.train()
            loss_sum = torch.zeros((), device=device)
            metric_sums = {key: torch.zeros((), device=device) for key in metrics}
            for X_batch, y_batch in batches:
                if config.lr_schedule == "cosine":
                    set_lr(optimizer, cosine_lr(config.lr, step, total_steps))
                step += 1
                outputs = model(X_batch)
                loss = loss_fn(outputs, y_batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                rows = len(y_batch)
                loss_sum += loss.detach() * rows
                for key, metric in metrics.items():
                    metric_sums[key] += metric(outputs.detach(), y_batch) * rows
            epoch_loss = float(loss_sum) / batches.n
            first_loss = epoch_loss if first_loss is None else first_loss
            _guard(epoch_loss, first_loss, epoch, config, name)
            history["train_loss"].append(epoch_loss)
            for key, total in metric_sums.items():
                history.setdefault(f"train_{key}", []).append(float(total) / batches.n)
            if val is not None:
                for key, value in _evaluate(model, val, loss_fn, metrics).items():
                    history.setdefault(f"val_{key}", []).append(value)
            progress.update(task, advance=1, loss=epoch_loss)
    seconds = time.perf_counter() - started
    logger.info("Trained in %.2f s; final train loss %.6g", seconds, history["train_loss"][-1])
    return FitResult(model=model.eval(), history=history, device=device, seconds=seconds)


@torch.no_grad()
def _evaluate(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    metrics: Mapping[str, Metric],
) -> dict[str, float]:
    model.eval()
    outputs = model(data[0])
    scores = {"loss": loss_fn(outputs, data[1])}
    scores.update({key: metric(outputs, data[1]) for key, metric in metrics.items()})
    return {key: float(value) for key, value in scores.items()}


def _guard(loss: float, first_loss: float, epoch: int, config: TrainConfig, name: str) -> None:
    if math.isfinite(loss) and loss <= DIVERGENCE_FACTOR * max(first_loss, 1e-12):
        return
    what = (
        "is not finite"
        if not math.isfinite(loss)
        else (f"exploded to {loss:.4g} from {first_loss:.4g} in the first epoch")
    )
    raise TrainingDivergedError(
        f"training diverged at epoch {epoch}: the train loss {what}. "
        f"The learning rate {name}.lr={config.lr:g} ({config.optimizer}) is too high; lower it."
    )


def _progress(name: str) -> Progress:
    """A rich progress bar that stays silent when the output is not a terminal."""
    from rich.console import Console

    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs  loss {task.fields[loss]:.5g}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=False,
    )
