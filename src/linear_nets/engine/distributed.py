"""Data-parallel training with torch.distributed, started by PyTorch's elastic launcher.

:func:`fit_parallel` runs :func:`linear_nets.engine.fit.fit` in ``nproc_per_node`` processes
on each of ``nnodes`` machines, through ``torch.distributed.launcher.api.elastic_launch``
(what ``torchrun`` runs). Each process (rank) reads its own share of the partitions, the model
is wrapped in ``DistributedDataParallel``, which all-reduces the gradients, and only rank 0
returns the trained model, logs and shows progress.

Outside such a job the helpers below are no-ops, so the one fit loop serves both cases.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn

from linear_nets.engine.config import DistributedConfig
from linear_nets.engine.devices import DeviceError, resolve_device

if TYPE_CHECKING:
    from linear_nets.engine.config import TrainConfig
    from linear_nets.engine.fit import FitResult
    from linear_nets.engine.sources import PartitionSource

logger = logging.getLogger(__name__)


class WorkerNodeFinished(RuntimeError):
    """This machine trained its share; rank 0, on another machine, keeps the model."""


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the job; 0 outside one."""
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    """Processes in the job; 1 outside one."""
    return dist.get_world_size() if _active() else 1


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` inside a job, else ``model`` itself."""
    if not _active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


@contextlib.contextmanager
def join(module: nn.Module) -> Iterator[None]:
    """Let ranks with fewer batches finish an epoch early (``torch.distributed``'s Join)."""
    from torch.nn.parallel import DistributedDataParallel

    if not isinstance(module, DistributedDataParallel):
        yield
        return
    from torch.distributed.algorithms.join import Join

    with Join([module]):
        yield


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over every rank, in place, inside a job; unchanged outside one."""
    if _active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def choose_backend(device: torch.device, backend: str) -> str:
    """``nccl`` for cuda and ``gloo`` otherwise when ``backend`` is auto; checks the pair.

    Raises:
        DeviceError: for nccl without cuda, or a device that torch.distributed cannot use.
    """
    if device.type == "mps":
        raise DeviceError("torch.distributed cannot train on mps: set the device to 'cpu'")
    chosen = ("nccl" if device.type == "cuda" else "gloo") if backend == "auto" else backend
    if chosen == "nccl" and device.type != "cuda":
        raise DeviceError(f"backend 'nccl' needs a cuda device, not {device.type!r}")
    return chosen


def fit_parallel(
    model: nn.Module,
    source: PartitionSource,
    config: TrainConfig,
    parallel: DistributedConfig,
    *,
    name: str = "train",
) -> FitResult:
    """Fit ``model`` on ``source`` in this process, or as a DDP job when ``parallel.enabled``.

    Returns:
        The fit of rank 0 (model on the CPU for a job).

    Raises:
        TrainingDivergedError: if the loss diverges (on every rank alike).
        WorkerNodeFinished: on a machine of a multi-machine job that does not hold rank 0.
    """
    from linear_nets.engine.fit import fit

    if not parallel.enabled:
        return fit(model, source, config, name=name)
    device = resolve_device(config.device)
    backend = choose_backend(device, parallel.backend)
    if backend == "nccl" and device.index is None:
        available = torch.cuda.device_count()
        if parallel.nproc_per_node > available:
            raise DeviceError(
                f"{name}.distributed.nproc_per_node={parallel.nproc_per_node} needs as many "
                f"GPUs for nccl, but this machine has {available}"
            )
    total = parallel.nproc_per_node * parallel.nnodes
    source.shard(0, total)  # refuses too few partitions before any process starts
    # Plain pickle bytes, not the module: torch.multiprocessing would hand every rank the
    # same shared-memory tensors, and each rank's optimizer step would land on all of them.
    frozen = pickle.dumps(model.cpu())
    results = _launch(parallel, (frozen, source, config, backend, name))
    failures = [value for value in results.values() if isinstance(value, BaseException)]
    if failures:
        # A rank's own error explains more than a peer's broken connection caused by it.
        raise min(failures, key=lambda exc: isinstance(exc, dist.DistError))
    if 0 not in results:
        raise WorkerNodeFinished(
            f"this machine ran ranks {sorted(results)} of {total} and finished its share; "
            "the machine that ran rank 0 saves the model and logs the run"
        )
    return results[0]


def _launch(parallel: DistributedConfig, args: tuple) -> dict[int, Any]:
    """Run :func:`_worker` with ``args`` on every local rank; their results by global rank."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    launch = LaunchConfig(
        min_nodes=parallel.nnodes,
        max_nodes=parallel.nnodes,
        nproc_per_node=parallel.nproc_per_node,
        run_id=parallel.rdzv_id,
        rdzv_backend="c10d",
        rdzv_endpoint=parallel.rdzv_endpoint,
        rdzv_configs={"join_timeout": parallel.rdzv_timeout_s},
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
    )
    logger.info(
        "Launching %d x %d %s processes (rendezvous %s)",
        parallel.nnodes,
        parallel.nproc_per_node,
        args[3],
        parallel.rdzv_endpoint,
    )
    elastic = logging.getLogger("torch.distributed.elastic")
    level = elastic.level
    elastic.setLevel(logging.WARNING)  # the agent's per-step INFO lines say nothing to a user
    try:
        return elastic_launch(launch, _worker)(*args)
    except ChildFailedError as exc:
        raise RuntimeError(f"{args[4]}: a training process failed:\n{exc}") from None
    finally:
        elastic.setLevel(level)


def _worker(
    frozen: bytes, source: PartitionSource, config: TrainConfig, backend: str, name: str
) -> FitResult | BaseException | None:
    """One rank: join the process group, fit on this rank's share, hand back rank 0's fit."""
    from linear_nets.engine.fit import fit

    model = pickle.loads(frozen)  # this rank's own copy of the parameters
    local_rank = int(os.environ["LOCAL_RANK"])
    local_world = int(os.environ["LOCAL_WORLD_SIZE"])
    device = resolve_device(config.device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank if device.index is None else device.index)
        torch.cuda.set_device(device)
    else:  # the machine's cores are shared by its ranks
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    dist.init_process_group(backend)
    try:
        share = source.shard(dist.get_rank(), dist.get_world_size())
        result = fit(model, share, config.model_copy(update={"device": str(device)}), name=name)
        if dist.get_rank() != 0:
            return None
        from linear_nets.engine.fit import FitResult

        return FitResult(
            model=result.model.cpu(),
            history=result.history,
            device=result.device,
            seconds=result.seconds,
        )
    except Exception as exc:  # handed back to the launching process, which raises it
        return exc
    finally:
        dist.destroy_process_group()
