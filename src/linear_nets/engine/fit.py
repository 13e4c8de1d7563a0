"""The fit loop: the only training loop in the project."""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Mapping

import torch
from torch import nn

from linear_nets.engine import distributed
from linear_nets.engine.config import DistributedConfig, TrainConfig
from linear_nets.engine.devices import resolve_device
from linear_nets.engine.losses import get_loss
from linear_nets.engine.models import build_model
from linear_nets.engine.optim import build_optimizer, get_schedule, set_lr
from linear_nets.engine.solvers import SOLVERS
from linear_nets.engine.sources import PartitionSource, Source, TensorSource
from linear_nets.engine.training import (
    EpochCallback,
    FitResult,
    Metric,
    announce,
    evaluate,
    guard,
    progress_bar,
)

logger = logging.getLogger(__name__)

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
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Build a ``kind`` model for tensors ``X`` (seeded by ``config.seed``) and fit it in
    shuffled minibatches of ``config.batch_size``; see :func:`fit`."""
    n_features = X[0].numel()
    model = build_model(kind, n_features, n_outputs=n_classes, seed=config.seed)
    source = TensorSource(X, y, config.batch_size, seed=config.seed)
    return fit(model, source, config, val=val, metrics=metrics, name=name, on_epoch=on_epoch)


def fit(
    model: nn.Module,
    source: Source,
    config: TrainConfig,
    *,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    metrics: Mapping[str, Metric] | None = None,
    name: str = "train",
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Fit ``model`` to the batches of ``source`` with ``config`` and record a per-epoch history.

    The history holds ``train_loss`` (the mean minibatch loss of the epoch), ``val_loss`` when
    ``val`` is given, and ``train_<metric>`` / ``val_<metric>`` for each entry of ``metrics``.
    Inside a torch.distributed job (see :mod:`linear_nets.engine.distributed`) the model is
    wrapped in ``DistributedDataParallel``, the epoch's sums are added up over the ranks, and
    only rank 0 logs and shows progress.

    Args:
        model: the model; a ``scratch`` model is paired with the hand-written loss.
        source: the training batches (:class:`TensorSource`, :class:`PartitionSource`).
        config: device, optimizer, learning rate and its schedule, epochs, loss; an
            optimizer of :data:`linear_nets.engine.solvers.SOLVERS` (``lstsq``, ``lbfgs``)
            is handed to that solver.
        val: optional held-out data, evaluated after every epoch.
        metrics: extra per-epoch metrics, each ``fn(outputs, targets) -> 0-d tensor``.
        name: parameter prefix used in messages, e.g. ``boston.train``.
        on_epoch: called after every epoch as ``on_epoch(epoch, model, values)`` with the
            epoch's history values, e.g. to record a parameter's path.

    Raises:
        TrainingDivergedError: if the loss becomes non-finite or explodes.
        DeviceError: if ``config.device`` is not available.
    """
    if config.optimizer in SOLVERS:  # an exact solve, or L-BFGS: not minibatch steps
        return SOLVERS[config.optimizer](
            model, source, config, val=val, metrics=metrics, name=name, on_epoch=on_epoch
        )
    metrics = dict(metrics or {})
    device = resolve_device(config.device)
    main = distributed.rank() == 0
    model = model.to(device)
    stepped = distributed.wrap(model, device)
    source = source.to(device)
    if val is not None:
        val = (val[0].to(device), val[1].to(device))
    loss_fn = get_loss(config.loss, scratch=getattr(model, "scratch", False))
    optimizer = build_optimizer(config.optimizer, model.parameters(), config.lr)
    schedule = get_schedule(config.lr_schedule)

    history: dict[str, list[float]] = {"train_loss": []}
    if main:
        announce(model, device, config)
    started = time.perf_counter()
    first_loss: float | None = None
    step, total_steps, lr = 0, config.epochs * len(source), None
    with progress_bar(name, enabled=main) as progress:
        task = progress.add_task(name, total=config.epochs, loss="")
        for epoch in range(1, config.epochs + 1):
            stepped.train()
            # The loss and metrics summed on the device (one host sync per epoch), each with
            # one in-place op per step: a few small ops per step are a tenth of a small epoch.
            loss_sum, metric_sums, rows = *_zero_sums(device, len(metrics)), 0
            with distributed.join(stepped):
                for X_batch, y_batch in source:
                    if (step_lr := schedule(config.lr, step, total_steps)) != lr:
                        set_lr(optimizer, step_lr)  # only when the schedule changes it
                        lr = step_lr
                    step += 1
                    outputs = stepped(X_batch)
                    loss = loss_fn(outputs, y_batch)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    rows += (batch_rows := y_batch.shape[0])  # len(tensor): a Python call more
                    loss_sum.add_(loss.detach(), alpha=batch_rows)
                    for i, metric in enumerate(metrics.values()):
                        metric_sums[i].add_(metric(outputs.detach(), y_batch), alpha=batch_rows)
            values = _epoch_values(loss_sum, rows, metric_sums, metrics)
            epoch_loss = values["train_loss"]
            first_loss = epoch_loss if first_loss is None else first_loss
            guard(epoch_loss, first_loss, epoch, config, name)
            if val is not None:
                scores = evaluate(model, val, loss_fn, metrics)
                values.update({f"val_{key}": value for key, value in scores.items()})
            for key, value in values.items():
                history.setdefault(key, []).append(value)
            if on_epoch is not None:
                on_epoch(epoch, model, values)
            progress.update(task, advance=1, loss=f"loss {epoch_loss:.5g}")
    seconds = time.perf_counter() - started
    if main:
        logger.info("Trained in %.2f s; final train loss %.6g", seconds, history["train_loss"][-1])
    return FitResult(model=model.eval(), history=history, device=device, seconds=seconds)


def fit_parallel(
    model: nn.Module,
    source: PartitionSource,
    config: TrainConfig,
    parallel: DistributedConfig,
    *,
    name: str = "train",
) -> FitResult:
    """Fit ``model`` on ``source`` in this process, or as a DDP job when ``parallel.enabled``.

    The job is :func:`linear_nets.engine.distributed.launch` running :func:`_fit_rank`: each
    rank fits on its share of the partitions.

    Returns:
        The fit of rank 0 (model on the CPU for a job).

    Raises:
        TrainingDivergedError: if the loss diverges (on every rank alike).
        WorkerNodeFinished: on a machine of a multi-machine job that does not hold rank 0.
    """
    if not parallel.enabled:
        return fit(model, source, config, name=name)
    source.shard(0, parallel.nproc_per_node * parallel.nnodes)  # too few partitions: refused now
    # Plain pickle bytes, not the module: torch.multiprocessing would hand every rank the
    # same shared-memory tensors, and each rank's optimizer step would land on all of them.
    frozen = pickle.dumps(model.cpu())
    device = resolve_device(config.device)
    return distributed.launch(
        _fit_rank, (frozen, source, config, name), parallel, device, name=name
    )


def _fit_rank(
    device: torch.device, frozen: bytes, source: PartitionSource, config: TrainConfig, name: str
) -> FitResult:
    """One rank of :func:`fit_parallel`: its own copy of the model, fitted on its share."""
    model = pickle.loads(frozen)
    share = source.shard(distributed.rank(), distributed.world_size())
    result = fit(model, share, config.model_copy(update={"device": str(device)}), name=name)
    return FitResult(
        model=result.model.cpu(),
        history=result.history,
        device=result.device,
        seconds=result.seconds,
    )


def _epoch_values(
    loss_sum: torch.Tensor, rows: int, metric_sums: torch.Tensor, metrics: Mapping[str, Metric]
) -> dict[str, float]:
    """``train_loss`` and ``train_<metric>``: the sums of the epoch's loss, rows and metrics
    (each weighted by its batch's rows) of every rank added up, divided by the rows."""
    counted = torch.tensor([rows], device=loss_sum.device, dtype=loss_sum.dtype)
    sums = torch.cat([loss_sum.reshape(1), counted, metric_sums])
    sums = distributed.all_reduce_sum(sums)
    totals = (sums / sums[1].clamp_min(1)).tolist()
    values = {"train_loss": totals[0]}
    values.update({f"train_{key}": totals[i] for i, key in enumerate(metrics, start=2)})
    return values


def _zero_sums(device: torch.device, n_metrics: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A zero loss sum and ``n_metrics`` zero metric sums on ``device``."""
    dtype = _sum_dtype(device)
    loss_sum = torch.zeros((), device=device, dtype=dtype)
    return loss_sum, torch.zeros(n_metrics, device=device, dtype=dtype)


def _sum_dtype(device: torch.device) -> torch.dtype:
    """float64 for the epoch's sums, except on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


