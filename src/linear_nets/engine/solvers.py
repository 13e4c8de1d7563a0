"""The fits that are not minibatch gradient steps, chosen by ``train.optimizer`` beside the
steppers of :mod:`linear_nets.engine.optim` (:data:`SOLVERS` lists them once):

- ``lstsq``: the exact least-squares solution (the ``mse`` loss) by a QR factorisation of
  [1 X y] in float64 on the configured device, one pass over the data: the rows in memory at
  once, or partition after partition (a streamed tall-skinny QR whose memory does not grow with
  n). It reports the condition number and the rank, and refuses a rank-deficient table naming
  the collinear columns. There are no epochs: the history holds the one train loss reached.
- ``lbfgs``: ``torch.optim.LBFGS`` with a strong-Wolfe line search, in float64, on the full
  data (L-BFGS needs the same function at every evaluation, so no minibatches): each epoch is
  one L-BFGS step of up to :data:`LBFGS_MAX_ITER` iterations; for ``mae``, ``huber`` or any
  loss. ``lr`` scales the step (1 is L-BFGS's natural step).

:func:`linear_nets.engine.fit.fit` hands these choices here, so every pipeline reaches them
through the one ``fit``/``train`` entry point.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn

from linear_nets.engine.closed_form import StreamedQR, factor_partitions
from linear_nets.engine.devices import resolve_device
from linear_nets.engine.losses import get_loss
from linear_nets.engine.sources import PartitionSource, Source, TensorSource, read_partitions

if TYPE_CHECKING:
    from linear_nets.engine.config import TrainConfig
    from linear_nets.engine.training import EpochCallback, FitResult, Metric

logger = logging.getLogger(__name__)

LBFGS_MAX_ITER = 20
"""Iterations (function evaluations, about) per L-BFGS step, i.e. per epoch."""

Batch = tuple[torch.Tensor, torch.Tensor]


def chunks(source: Source) -> Iterator[Batch]:
    """Every row of ``source`` once, in large chunks: a tensor source's whole data, a partition
    source's partitions (its share, in id order, read ahead in threads), else its batches."""
    if isinstance(source, TensorSource):
        yield source.X, source.y
    elif isinstance(source, PartitionSource):
        reads = read_partitions(
            source.partitions, source.target, source.share, features=source.features
        )
        for _name, X, y in reads:
            yield X, y
    else:
        yield from source


def _float_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64


def _on(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``tensor`` on ``device``, in ``dtype`` when it holds floats (class labels stay ints)."""
    return tensor.to(device, dtype) if tensor.is_floating_point() else tensor.to(device)


def _single_process(config: TrainConfig) -> None:
    from linear_nets.engine import distributed

    if distributed.world_size() > 1:
        raise ValueError(
            f"optimizer {config.optimizer!r} runs in one process: turn distributed training off"
        )


@torch.no_grad()
def _scores(
    model: nn.Module,
    source: Source,
    loss_fn: Callable,
    metrics: Mapping[str, Metric],
    *,
    device: torch.device,
    dtype: torch.dtype,
) -> dict[str, float]:
    """The loss and ``metrics`` over every row of ``source`` (row-weighted means)."""
    sums = torch.zeros(2 + len(metrics), dtype=torch.float64)
    for X_chunk, y_chunk in chunks(source):
        X, y = _on(X_chunk, device, dtype), _on(y_chunk, device, dtype)
        outputs = model(X)
        sums[0] += float(loss_fn(outputs, y)) * len(y)
        sums[1] += len(y)
        for i, metric in enumerate(metrics.values(), start=2):
            sums[i] += float(metric(outputs, y)) * len(y)
    totals = (sums / sums[1].clamp_min(1)).tolist()
    values = {"train_loss": totals[0]}
    values.update({f"train_{key}": totals[i] for i, key in enumerate(metrics, start=2)})
    return values


def _finish(
    model: nn.Module,
    values: dict[str, float],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    *,
    loss_fn: Callable,
    metrics: Mapping[str, Metric],
    device: torch.device,
    dtype: torch.dtype,
) -> dict[str, float]:
    """``values`` with the ``val_`` scores of ``val`` added."""
    from linear_nets.engine.training import evaluate

    if val is not None:
        data = (_on(val[0], device, dtype), _on(val[1], device, dtype))
        scores = evaluate(model, data, loss_fn, metrics)
        values.update({f"val_{key}": value for key, value in scores.items()})
    return values


def solve_lstsq(
    model: nn.Module,
    source: Source,
    config: TrainConfig,
    *,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    metrics: Mapping[str, Metric] | None = None,
    name: str = "train",
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Set a linear regression ``model`` to the exact least-squares solution on ``source``.

    The model comes back in float64 (float32 on MPS), so the coefficients it serves are the
    solution's, not a float32 rounding of them.

    Raises:
        RankDeficientError: naming the collinear columns (x1 … xd, intercept).
        ValueError: for a classifier, or a loss other than ``mse``.
    """
    from linear_nets.engine.training import FitResult

    if not hasattr(model, "coefficients") or model.coefficients()[0].ndim != 1:
        raise ValueError(f"{name}.optimizer=lstsq fits a linear regression only")
    if config.loss != "mse":
        raise ValueError(
            f"{name}.optimizer=lstsq solves least squares, the mse loss; for {config.loss!r} "
            "use lbfgs or a gradient optimizer"
        )
    _single_process(config)
    metrics = dict(metrics or {})
    device = resolve_device(config.device)
    dtype = _float_dtype(device)
    started = time.perf_counter()
    n_features = model.coefficients()[0].numel()
    if isinstance(source, PartitionSource):  # each column copied once, from Arrow's decoding
        qr, _ = factor_partitions(
            source.partitions, source.target, source.share, n_features=n_features, device=device
        )
    else:
        qr = StreamedQR(n_features, device)
        for X, y in chunks(source):
            qr.add(X, y)
    conditioning = qr.check_full_rank()
    w, b = qr.solve()
    mse = get_loss("mse")
    model = model.to(device, dtype)
    with torch.no_grad():
        weight, bias = model.coefficients()  # views of the parameters: written in place
        weight.copy_(w.reshape(weight.shape))
        bias.copy_(b.reshape(bias.shape))
    if metrics:
        values = _scores(model, source, mse, metrics, device=device, dtype=dtype)
    else:
        values = {"train_loss": qr.rss / qr.rows}
    values = _finish(model, values, val, loss_fn=mse, metrics=metrics, device=device, dtype=dtype)
    if on_epoch is not None:
        on_epoch(1, model, values)
    seconds = time.perf_counter() - started
    logger.info(
        "Solved least squares exactly (%s.optimizer=lstsq: QR in %s on %s) on %d rows in "
        "%.3f s, no epochs; condition number %.3g, rank %d of %d; train MSE %.6g",
        name,
        dtype,
        device,
        qr.rows,
        seconds,
        conditioning.condition_number,
        conditioning.rank,
        conditioning.columns,
        values["train_loss"],
    )
    history = {key: [value] for key, value in values.items()}
    return FitResult(model=model.eval(), history=history, device=device, seconds=seconds)


def fit_lbfgs(
    model: nn.Module,
    source: Source,
    config: TrainConfig,
    *,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    metrics: Mapping[str, Metric] | None = None,
    name: str = "train",
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Fit ``model`` with L-BFGS on the full data of ``source``: ``config.epochs`` steps.

    Raises:
        ValueError: if the loss is not finite because the data hold a NaN, infinite or
            missing value (the source says where).
        TrainingDivergedError: if the loss becomes non-finite or explodes otherwise.
    """
    from linear_nets.engine.training import FitResult, announce, guard, progress_bar

    _single_process(config)
    metrics = dict(metrics or {})
    device = resolve_device(config.device)
    dtype = _float_dtype(device)
    model = model.to(device, dtype)
    loss_fn = get_loss(config.loss, scratch=getattr(model, "scratch", False))
    optimizer = torch.optim.LBFGS(
        model.parameters(),
        lr=config.lr,
        max_iter=LBFGS_MAX_ITER,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        line_search_fn="strong_wolfe",
    )
    if isinstance(source, TensorSource):
        rows = len(source.y)
    else:
        rows = sum(len(y) for _, y in chunks(source))

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        total = torch.zeros((), dtype=dtype, device=device)
        for X_chunk, y_chunk in chunks(source):
            X, y = _on(X_chunk, device, dtype), _on(y_chunk, device, dtype)
            loss = loss_fn(model(X), y) * (len(y) / rows)
            loss.backward()
            total += loss.detach()
        return total

    announce(model, device, config)
    history: dict[str, list[float]] = {"train_loss": []}
    started = time.perf_counter()
    first_loss: float | None = None
    with progress_bar(name) as progress:
        task = progress.add_task(name, total=config.epochs, loss="")
        for epoch in range(1, config.epochs + 1):
            model.train()
            optimizer.step(closure)
            values = _scores(model.eval(), source, loss_fn, metrics, device=device, dtype=dtype)
            epoch_loss = values["train_loss"]
            first_loss = epoch_loss if first_loss is None else first_loss
            guard(epoch_loss, first_loss, epoch, config, name, source=source)
            values = _finish(
                model, values, val, loss_fn=loss_fn, metrics=metrics, device=device, dtype=dtype
            )
            for key, value in values.items():
                history.setdefault(key, []).append(value)
            if on_epoch is not None:
                on_epoch(epoch, model, values)
            progress.update(task, advance=1, loss=f"loss {epoch_loss:.5g}")
    seconds = time.perf_counter() - started
    logger.info("Trained in %.2f s; final train loss %.6g", seconds, history["train_loss"][-1])
    return FitResult(model=model.eval(), history=history, device=device, seconds=seconds)


SOLVERS: dict[str, Callable[..., FitResult]] = {"lstsq": solve_lstsq, "lbfgs": fit_lbfgs}
"""The fits ``train.optimizer`` names beside :data:`linear_nets.engine.optim.OPTIMIZERS`;
each is called as :func:`linear_nets.engine.fit.fit` is."""
