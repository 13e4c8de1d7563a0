"""What every fit of the engine shares, gradient descent (:mod:`.fit`) and the exact solvers
(:mod:`.solvers`) alike: the result, the divergence guard, evaluation on held-out rows, the
progress bar and the line that announces a training."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from linear_nets.engine import distributed
from linear_nets.engine.config import TrainConfig

if TYPE_CHECKING:
    from linear_nets.engine.sources import Source

logger = logging.getLogger("linear_nets.engine.fit")


Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
EpochCallback = Callable[[int, nn.Module, dict[str, float]], None]
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


def announce(model: nn.Module, device: torch.device, config: TrainConfig) -> None:
    processes = distributed.world_size()
    logger.info(
        "Training %s on %s%s: %s optimizer, lr=%g, %d epochs, batch size %s",
        type(model).__name__,
        device,
        f" x {processes} processes" if processes > 1 else "",
        config.optimizer,
        config.lr,
        config.epochs,
        config.batch_size or "full",
    )


@torch.no_grad()
def evaluate(
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


def guard(
    loss: float,
    first_loss: float,
    epoch: int,
    config: TrainConfig,
    name: str,
    *,
    source: Source | None = None,
) -> None:
    """Stop a fit whose epoch ``loss`` is not finite or exploded from the ``first_loss``.

    A loss that is not finite is first blamed on the data when they hold a NaN, infinite or
    missing value: ``source`` (the fit's :class:`~linear_nets.engine.sources.Source`) is asked
    where, if it can say (``find_non_finite()``), since no learning rate would help then. In a
    data-parallel job each rank looks in its own share and every rank names what the first
    one found.

    Raises:
        ValueError: naming where the data hold a value that is not finite.
        TrainingDivergedError: naming the learning rate otherwise.
    """
    if math.isfinite(loss) and loss <= DIVERGENCE_FACTOR * max(first_loss, 1e-12):
        return
    find = getattr(source, "find_non_finite", None)
    where = find() if find is not None and not math.isfinite(loss) else None
    if not math.isfinite(loss):  # the loss is the job's: every rank is here, each with its share
        where = distributed.first_found(where)
    if where is not None:
        raise ValueError(
            f"{name}: the train loss is not finite because the training data are not: {where} "
            "(a missing value reads as nan); remove or fill such values"
        )
    what = (
        "is not finite"
        if not math.isfinite(loss)
        else (f"exploded to {loss:.4g} from {first_loss:.4g} in the first epoch")
    )
    raise TrainingDivergedError(
        f"training diverged at epoch {epoch}: the train loss {what}. "
        f"The learning rate {name}.lr={config.lr:g} ({config.optimizer}) is too high; lower it."
    )


def progress_bar(name: str, *, enabled: bool = True) -> Progress:
    """A rich progress bar that stays silent when the output is not a terminal (or not
    ``enabled``: another rank of the job shows it); the loss appears once an epoch ends."""
    from rich.console import Console

    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs  {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=False,
    )
