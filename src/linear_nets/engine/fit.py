"""The fit loop: the only training loop in the project."""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable, Mapping

import torch
from torch import nn

from linear_nets.engine import distributed
from linear_nets.engine.config import DistributedConfig, TrainConfig
from linear_nets.engine.devices import resolve_device
from linear_nets.engine.losses import Loss, get_loss, get_loss_gradient
from linear_nets.engine.models import build_model
from linear_nets.engine.optim import Optimizer, build_optimizer, get_schedule, set_lr
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

Step = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""One minibatch step: ``step(X, y) -> (outputs, loss)``, both detached, parameters updated."""


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
    only rank 0 logs and shows progress. A ``torch.nn`` linear model outside a job is stepped
    with its gradient written out instead of autograd's (see :func:`_minibatch_step`).

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
        ValueError: if the loss is not finite because the data hold a NaN, infinite or
            missing value (the source says where, when it can).
        TrainingDivergedError: if the loss becomes non-finite or explodes otherwise.
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
    take_step = _minibatch_step(model, stepped, config.loss, loss_fn, optimizer)
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
                    outputs, loss = take_step(X_batch, y_batch)
                    rows += (batch_rows := y_batch.shape[0])  # len(tensor): a Python call more
                    loss_sum.add_(loss, alpha=batch_rows)
                    for i, metric in enumerate(metrics.values()):
                        metric_sums[i].add_(metric(outputs, y_batch), alpha=batch_rows)
            values = _epoch_values(loss_sum, rows, metric_sums, metrics)
            epoch_loss = values["train_loss"]
            first_loss = epoch_loss if first_loss is None else first_loss
            guard(epoch_loss, first_loss, epoch, config, name, source=source)
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


def _minibatch_step(
    model: nn.Module, stepped: nn.Module, loss: str, loss_fn: Loss, optimizer: Optimizer
) -> Step:
    """The minibatch step for ``model``: autograd's backward pass, or the gradient written out.

    A ``torch.nn`` linear model (one with ``affine()``, the ``nn.Linear`` it is) trained outside
    a job takes the written-out gradient: with G = d loss / d outputs (:data:`LOSSES`'
    ``gradient``) and the inputs X as rows, the layer's weight gradient is Gᵀ X and its bias
    gradient the column sums of G, which is what autograd computes, in three tensor operations
    instead of autograd's graph (a third of the time of a small step). A ``scratch`` model
    keeps autograd, as the tutorials teach it; inside a job, ``DistributedDataParallel`` sums
    the gradients over the ranks in autograd's backward pass, so that keeps it too.
    """
    layer = model.affine() if hasattr(model, "affine") and stepped is model else None
    if layer is None or not all(param.requires_grad for param in layer.parameters()):

        def autograd_step(X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            outputs = stepped(X)
            loss = loss_fn(outputs, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return outputs.detach(), loss.detach()

        return autograd_step

    gradient, weight, bias = get_loss_gradient(loss), layer.weight, layer.bias

    def written_out_step(X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            outputs = model(X)
            loss, d_outputs = gradient(outputs, y)
            if d_outputs.shape != outputs.shape:  # autograd's loss would broadcast, and warn
                raise ValueError(
                    f"targets of shape {tuple(y.shape)} do not match the model's outputs "
                    f"{tuple(outputs.shape)}"
                )
            rows = X.shape[0]
            d_rows = d_outputs.reshape(rows, -1)  # (rows, outputs of the layer)
            weight.grad = torch.mm(d_rows.T, X.reshape(rows, -1))
            if bias is not None:
                bias.grad = d_rows.sum(0)
        optimizer.step()
        return outputs, loss

    return written_out_step


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
